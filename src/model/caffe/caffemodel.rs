//! `.caffemodel` files: Caffe's binary `NetParameter`, read for the layer
//! names and parameter blobs (the structure comes from the prototxt).
//!
//! Messages are declared here with prost from the public field numbers of
//! `caffe.proto` (only the fields deepsent reads; prost skips the rest). The
//! top level is walked by hand so that a truncated or corrupt file is
//! reported with the layer it breaks in.

use crate::model::weights::{Blob, Weights};
use prost::bytes::Buf;
use prost::encoding::{decode_key, decode_varint, WireType};
use prost::Message;
use std::path::Path;

#[derive(Clone, PartialEq, prost::Message)]
struct BlobShapePb {
    #[prost(int64, repeated, tag = "1")]
    dim: Vec<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct BlobProtoPb {
    #[prost(int32, optional, tag = "1")]
    num: Option<i32>,
    #[prost(int32, optional, tag = "2")]
    channels: Option<i32>,
    #[prost(int32, optional, tag = "3")]
    height: Option<i32>,
    #[prost(int32, optional, tag = "4")]
    width: Option<i32>,
    #[prost(float, repeated, tag = "5")]
    data: Vec<f32>,
    #[prost(message, optional, tag = "7")]
    shape: Option<BlobShapePb>,
    #[prost(double, repeated, tag = "8")]
    double_data: Vec<f64>,
}

/// Current (V2) layer: name 1, type 2, blobs 7.
#[derive(Clone, PartialEq, prost::Message)]
struct LayerPb {
    #[prost(string, optional, tag = "1")]
    name: Option<String>,
    #[prost(string, optional, tag = "2")]
    kind: Option<String>,
    #[prost(message, repeated, tag = "7")]
    blobs: Vec<BlobProtoPb>,
}

/// Old (V1) layer, as in the model zoo's CaffeNet: name 4, type 5 (an enum), blobs 6.
#[derive(Clone, PartialEq, prost::Message)]
struct V1LayerPb {
    #[prost(string, optional, tag = "4")]
    name: Option<String>,
    #[prost(int32, optional, tag = "5")]
    kind: Option<i32>,
    #[prost(message, repeated, tag = "6")]
    blobs: Vec<BlobProtoPb>,
}

const NET_LAYERS_V1: u32 = 2;
const NET_LAYER_V2: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum CaffemodelError {
    #[error("{file}: cannot read: {source}")]
    Io { file: String, source: std::io::Error },
    #[error("{file}: truncated in layer {layer} (byte {offset} of {len}): the file is incomplete")]
    Truncated { file: String, layer: String, offset: usize, len: usize },
    #[error("{file}: corrupt at byte {offset}{}: {message}", .layer.as_deref().map(|l| format!(" (layer {l})")).unwrap_or_default())]
    Corrupt { file: String, offset: usize, layer: Option<String>, message: String },
    #[error("{file}: layer {layer}: blob {blob} has {count} values but its shape {shape:?} needs {expected}")]
    BlobSize { file: String, layer: String, blob: usize, shape: Vec<usize>, count: usize, expected: usize },
    #[error("{file}: no layers found: not a Caffe model")]
    Empty { file: String },
}

/// Reads the parameter blobs of every layer that has some.
pub fn read(path: &Path) -> Result<Weights, CaffemodelError> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| CaffemodelError::Io { file: file.clone(), source })?;
    decode(&bytes, &file)
}

/// Decodes caffemodel bytes; `file` names them in errors.
pub fn decode(bytes: &[u8], file: &str) -> Result<Weights, CaffemodelError> {
    let mut weights = Weights::default();
    let mut layer_count = 0;
    let mut buf: &[u8] = bytes;
    let offset = |buf: &[u8]| bytes.len() - buf.len();
    let corrupt = |at: usize, layer: Option<String>, message: String| CaffemodelError::Corrupt { file: file.into(), offset: at, layer, message };
    while buf.has_remaining() {
        let at = offset(buf);
        let (tag, wire) = decode_key(&mut buf).map_err(|e| corrupt(at, None, e.to_string()))?;
        match wire {
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).map_err(|e| corrupt(at, None, e.to_string()))? as usize;
                let start = offset(buf);
                let is_layer = tag == NET_LAYERS_V1 || tag == NET_LAYER_V2;
                if len > buf.len() {
                    if is_layer {
                        let layer = peek_name(buf, tag).unwrap_or_else(|| format!("#{}", layer_count + 1));
                        return Err(CaffemodelError::Truncated { file: file.into(), layer, offset: start, len: bytes.len() });
                    }
                    return Err(corrupt(at, None, format!("field {tag} runs past the end of the file")));
                }
                let body = &buf[..len];
                if is_layer {
                    layer_count += 1;
                    let (name, blobs) = decode_layer(body, tag).map_err(|e| {
                        corrupt(start, Some(peek_name(body, tag).unwrap_or_else(|| format!("#{layer_count}"))), e.to_string())
                    })?;
                    if !blobs.is_empty() {
                        let blobs = blobs
                            .into_iter()
                            .enumerate()
                            .map(|(i, b)| to_blob(b, file, &name, i))
                            .collect::<Result<Vec<_>, _>>()?;
                        weights.layers.insert(name, blobs);
                    }
                }
                buf.advance(len);
            }
            WireType::Varint => {
                decode_varint(&mut buf).map_err(|e| corrupt(at, None, e.to_string()))?;
            }
            WireType::SixtyFourBit | WireType::ThirtyTwoBit => {
                let n = if wire == WireType::SixtyFourBit { 8 } else { 4 };
                if buf.len() < n {
                    return Err(corrupt(at, None, "value runs past the end of the file".into()));
                }
                buf.advance(n);
            }
            other => return Err(corrupt(at, None, format!("unexpected wire type {other:?}"))),
        }
    }
    if layer_count == 0 {
        return Err(CaffemodelError::Empty { file: file.into() });
    }
    Ok(weights)
}

fn decode_layer(body: &[u8], tag: u32) -> Result<(String, Vec<BlobProtoPb>), prost::DecodeError> {
    if tag == NET_LAYER_V2 {
        let l = LayerPb::decode(body)?;
        Ok((l.name.unwrap_or_default(), l.blobs))
    } else {
        let l = V1LayerPb::decode(body)?;
        Ok((l.name.unwrap_or_default(), l.blobs))
    }
}

/// The layer name from the start of a (possibly cut) layer message.
fn peek_name(mut buf: &[u8], layer_tag: u32) -> Option<String> {
    let name_tag = if layer_tag == NET_LAYER_V2 { 1 } else { 4 };
    while buf.has_remaining() {
        let (tag, wire) = decode_key(&mut buf).ok()?;
        match wire {
            WireType::LengthDelimited => {
                let len = decode_varint(&mut buf).ok()? as usize;
                if len > buf.len() {
                    return None;
                }
                if tag == name_tag {
                    return String::from_utf8(buf[..len].to_vec()).ok();
                }
                buf.advance(len);
            }
            WireType::Varint => {
                decode_varint(&mut buf).ok()?;
            }
            WireType::ThirtyTwoBit if buf.len() >= 4 => buf.advance(4),
            WireType::SixtyFourBit if buf.len() >= 8 => buf.advance(8),
            _ => return None,
        }
    }
    None
}

fn to_blob(b: BlobProtoPb, file: &str, layer: &str, index: usize) -> Result<Blob, CaffemodelError> {
    let shape: Vec<usize> = match &b.shape {
        Some(s) => s.dim.iter().map(|&d| d.max(0) as usize).collect(),
        None => [b.num, b.channels, b.height, b.width].iter().map(|d| d.unwrap_or(1).max(0) as usize).collect(),
    };
    let data: Vec<f32> = if b.data.is_empty() && !b.double_data.is_empty() {
        b.double_data.iter().map(|&d| d as f32).collect()
    } else {
        b.data
    };
    // A shape whose product overflows cannot match any data: usize::MAX stands for it.
    let expected = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX);
    if data.len() != expected {
        return Err(CaffemodelError::BlobSize { file: file.into(), layer: layer.into(), blob: index, shape, count: data.len(), expected });
    }
    Ok(Blob { shape, data })
}

/// Encodes weights as a V1 caffemodel (the model zoo's CaffeNet format):
/// used by the tests to write a file with known weights, and by anyone who
/// wants to hand deepsent weights back to Caffe.
pub fn encode_v1(weights: &Weights, spec: &crate::model::spec::NetSpec) -> Vec<u8> {
    #[derive(Clone, PartialEq, prost::Message)]
    struct NetPb {
        #[prost(string, optional, tag = "1")]
        name: Option<String>,
        #[prost(message, repeated, tag = "2")]
        layers: Vec<V1LayerPb>,
    }
    let layers = spec
        .layers
        .iter()
        .map(|l| V1LayerPb {
            name: Some(l.name.clone()),
            kind: Some(v1_type_code(l.kind.type_name())),
            blobs: weights
                .layers
                .get(&l.name)
                .map(|bs| {
                    bs.iter()
                        .map(|b| {
                            // Legacy 4-D num/channels/height/width, padded with leading 1s.
                            let mut d = vec![1usize; 4usize.saturating_sub(b.shape.len())];
                            d.extend(&b.shape);
                            BlobProtoPb {
                                num: Some(d[0] as i32),
                                channels: Some(d[1] as i32),
                                height: Some(d[2] as i32),
                                width: Some(d[3] as i32),
                                data: b.data.clone(),
                                shape: None,
                                double_data: vec![],
                            }
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    NetPb { name: Some(spec.name.clone()), layers }.encode_to_vec()
}

/// V1 `LayerType` enum values (public facts of caffe.proto).
fn v1_type_code(type_name: &str) -> i32 {
    match type_name {
        "Concat" => 3,
        "Convolution" => 4,
        "Dropout" => 6,
        "Flatten" => 8,
        "InnerProduct" => 14,
        "LRN" => 15,
        "Pooling" => 17,
        "ReLU" => 18,
        "Softmax" => 20,
        "Eltwise" => 25,
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same blob with its floats unpacked (one tag per value), as old
    /// writers produce, and with a `shape` message instead of num/channels/….
    #[derive(Clone, PartialEq, prost::Message)]
    struct UnpackedBlob {
        #[prost(float, repeated, packed = "false", tag = "5")]
        data: Vec<f32>,
        #[prost(message, optional, tag = "7")]
        shape: Option<BlobShapePb>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct UnpackedLayer {
        #[prost(string, optional, tag = "1")]
        name: Option<String>,
        #[prost(message, repeated, tag = "7")]
        blobs: Vec<UnpackedBlob>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    struct UnpackedNet {
        #[prost(message, repeated, tag = "100")]
        layer: Vec<UnpackedLayer>,
    }

    #[test]
    fn unpacked_floats_and_shape_messages_decode() {
        let net = UnpackedNet {
            layer: vec![UnpackedLayer {
                name: Some("fc".into()),
                blobs: vec![UnpackedBlob { data: vec![1.0, -2.0, 3.5, 0.25, 5.0, 6.0], shape: Some(BlobShapePb { dim: vec![2, 3] }) }],
            }],
        };
        let w = decode(&net.encode_to_vec(), "u.caffemodel").unwrap();
        assert_eq!(w.layers["fc"][0], Blob { shape: vec![2, 3], data: vec![1.0, -2.0, 3.5, 0.25, 5.0, 6.0] });

        let bad = UnpackedNet { layer: vec![UnpackedLayer { name: Some("fc".into()), blobs: vec![UnpackedBlob { data: vec![1.0], shape: Some(BlobShapePb { dim: vec![2, 3] }) }] }] };
        let err = decode(&bad.encode_to_vec(), "b.caffemodel").unwrap_err().to_string();
        assert!(err.contains("layer fc: blob 0 has 1 values but its shape [2, 3] needs 6"), "{err}");
    }
}
