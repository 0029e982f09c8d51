//! Reading PyTorch's *legacy* (pre-1.6, non-zip) `torch.save` files: a state
//! dict of float tensors.
//!
//! The file is five things back to back: three small pickles (magic number,
//! protocol version, system info), the pickled state dict, whose tensors
//! point at storages by key (`BINPERSID`), a pickled list of storage keys,
//! then each storage's raw data (a little-endian u64 element count, then the
//! elements). Written by hand because the Rust pickle crates do not resolve
//! torch's persistent storages, and this format needs only a small pickle
//! machine: the opcodes below, `collections.OrderedDict` and
//! `torch._utils._rebuild_tensor_v2`. Tensors are gathered through their
//! saved strides (as `torch.load` does): a view over storage in another order
//! (e.g. TensorFlow's (kh, kw, in, out) under a PyTorch (out, in, kh, kw)
//! shape) comes out right.

use std::collections::HashMap;

/// One tensor of the state dict, contiguous in its shape's (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct TorchTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct TorchError {
    pub file: String,
    pub message: String,
}

/// Pickle values as read (some, such as booleans, are read but never used).
#[derive(Debug, Clone)]
#[allow(dead_code)]
enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    Dict(Vec<(Value, Value)>),
    Global(String),
    /// A persistent id: torch's ('storage', type, key, location, size).
    Storage { key: String, float: bool },
    Tensor { storage: String, float: bool, offset: usize, shape: Vec<usize>, stride: Vec<usize> },
    Mark,
}

/// The state dict of a legacy `.pth` file's bytes, in file order; `file` names errors.
pub fn read_state_dict(bytes: &[u8], file: &str) -> Result<Vec<(String, TorchTensor)>, TorchError> {
    let err = |message: String| TorchError { file: file.to_string(), message };
    let mut pos = 0;
    // Element size of each storage, by key.
    let mut sizes: HashMap<String, usize> = HashMap::new();
    for what in ["magic number", "protocol version", "system info"] {
        let (_, next) = unpickle(bytes, pos, &mut sizes).map_err(|m| err(format!("{what}: {m}")))?;
        pos = next;
    }
    let (dict, next) = unpickle(bytes, pos, &mut sizes).map_err(|m| err(format!("state dict: {m}")))?;
    let (keys, mut pos) = unpickle(bytes, next, &mut sizes).map_err(|m| err(format!("storage keys: {m}")))?;
    let Value::List(keys) = keys else { return Err(err("the storage key list is not a list (not a legacy torch file?)".into())) };
    let mut storages: HashMap<String, Vec<f32>> = HashMap::new();
    for key in keys {
        let Value::Str(key) = key else { return Err(err("a storage key is not a string".into())) };
        let size = *sizes.get(&key).ok_or_else(|| err(format!("storage {key} is listed but no tensor uses it")))?;
        let count = bytes.get(pos..pos + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap()) as usize).ok_or_else(|| err(format!("truncated before storage {key}")))?;
        let data = bytes.get(pos + 8..pos + 8 + count * size).ok_or_else(|| err(format!("truncated in storage {key} ({count} elements)")))?;
        if size == 4 {
            storages.insert(key, data.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect());
        }
        pos += 8 + count * size;
    }
    let Value::Dict(items) = dict else { return Err(err("the saved object is not a state dict".into())) };
    let mut out = Vec::with_capacity(items.len());
    for (name, value) in items {
        let Value::Str(name) = name else { return Err(err("a state dict key is not a string".into())) };
        match value {
            // Integer tensors (BatchNorm's num_batches_tracked) are counters, not weights.
            Value::Tensor { float: false, .. } => {}
            Value::Tensor { storage, offset, shape, stride, .. } => {
                let data = storages.get(&storage).ok_or_else(|| err(format!("{name}: storage {storage} is missing")))?;
                out.push((name.clone(), gather(data, offset, &shape, &stride).ok_or_else(|| err(format!("{name}: strides reach past its storage")))?));
            }
            // Counters such as BatchNorm's num_batches_tracked: not weights.
            Value::Int(_) | Value::None => {}
            other => return Err(err(format!("{name}: unexpected {other:?}"))),
        }
    }
    Ok(out)
}

/// Bytes per element of torch's storage types.
fn element_size(kind: &str) -> Option<usize> {
    Some(match kind.strip_prefix("torch.")? {
        "FloatStorage" | "IntStorage" => 4,
        "DoubleStorage" | "LongStorage" => 8,
        "HalfStorage" | "ShortStorage" | "BFloat16Storage" => 2,
        "ByteStorage" | "CharStorage" | "BoolStorage" => 1,
        _ => return None,
    })
}

/// The elements of a strided view, in row-major order of its shape.
fn gather(storage: &[f32], offset: usize, shape: &[usize], stride: &[usize]) -> Option<TorchTensor> {
    let count: usize = shape.iter().product();
    let last = offset + shape.iter().zip(stride).map(|(&n, &s)| n.saturating_sub(1) * s).sum::<usize>();
    if count > 0 && last >= storage.len() {
        return None;
    }
    let mut data = Vec::with_capacity(count);
    let mut index = vec![0usize; shape.len()];
    for _ in 0..count {
        data.push(storage[offset + index.iter().zip(stride).map(|(i, s)| i * s).sum::<usize>()]);
        for axis in (0..shape.len()).rev() {
            index[axis] += 1;
            if index[axis] < shape[axis] {
                break;
            }
            index[axis] = 0;
        }
    }
    Some(TorchTensor { shape: shape.to_vec(), data })
}

fn ints(v: &Value) -> Result<Vec<usize>, String> {
    match v {
        Value::Tuple(items) => items.iter().map(|i| if let Value::Int(n) = i { Ok(*n as usize) } else { Err(format!("expected an int, found {i:?}")) }).collect(),
        other => Err(format!("expected a tuple of ints, found {other:?}")),
    }
}

/// Runs one pickle from `start`; returns its value and the position after STOP.
fn unpickle(b: &[u8], start: usize, sizes: &mut HashMap<String, usize>) -> Result<(Value, usize), String> {
    let mut stack: Vec<Value> = Vec::new();
    let mut memo: HashMap<u32, Value> = HashMap::new();
    let mut p = start;
    let take = |p: &mut usize, n: usize| -> Result<&[u8], String> {
        let s = b.get(*p..*p + n).ok_or("truncated pickle")?;
        *p += n;
        Ok(s)
    };
    let pop_mark = |stack: &mut Vec<Value>| -> Result<Vec<Value>, String> {
        let at = stack.iter().rposition(|v| matches!(v, Value::Mark)).ok_or("MARK missing")?;
        let items = stack.split_off(at + 1);
        stack.pop();
        Ok(items)
    };
    loop {
        let op = take(&mut p, 1)?[0];
        match op {
            0x80 => {
                take(&mut p, 1)?; // PROTO
            }
            b'.' => return stack.pop().map(|v| (v, p)).ok_or_else(|| "empty stack at STOP".into()),
            b'(' => stack.push(Value::Mark),
            b'N' => stack.push(Value::None),
            0x88 => stack.push(Value::Bool(true)),
            0x89 => stack.push(Value::Bool(false)),
            b'K' => stack.push(Value::Int(take(&mut p, 1)?[0] as i64)),
            b'M' => stack.push(Value::Int(u16::from_le_bytes(take(&mut p, 2)?.try_into().unwrap()) as i64)),
            b'J' => stack.push(Value::Int(i32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as i64)),
            0x8a => {
                // LONG1: little-endian two's complement of n bytes.
                let n = take(&mut p, 1)?[0] as usize;
                let raw = take(&mut p, n)?;
                let mut v: i128 = 0;
                for (i, &byte) in raw.iter().enumerate().take(16) {
                    v |= (byte as i128) << (8 * i);
                }
                if n > 0 && n < 16 && raw[n - 1] & 0x80 != 0 {
                    v -= 1i128 << (8 * n);
                }
                stack.push(Value::Int(v as i64));
            }
            b'G' => stack.push(Value::Float(f64::from_be_bytes(take(&mut p, 8)?.try_into().unwrap()))),
            b'X' => {
                let n = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap()) as usize;
                stack.push(Value::Str(String::from_utf8_lossy(take(&mut p, n)?).into_owned()));
            }
            0x8c => {
                let n = take(&mut p, 1)?[0] as usize;
                stack.push(Value::Str(String::from_utf8_lossy(take(&mut p, n)?).into_owned()));
            }
            b'c' => {
                let line = |p: &mut usize| -> Result<String, String> {
                    let end = b[*p..].iter().position(|&c| c == b'\n').ok_or("GLOBAL without newline")?;
                    let s = String::from_utf8_lossy(&b[*p..*p + end]).into_owned();
                    *p += end + 1;
                    Ok(s)
                };
                let module = line(&mut p)?;
                let name = line(&mut p)?;
                stack.push(Value::Global(format!("{module}.{name}")));
            }
            b')' => stack.push(Value::Tuple(Vec::new())),
            b']' => stack.push(Value::List(Vec::new())),
            b'}' => stack.push(Value::Dict(Vec::new())),
            b't' => {
                let items = pop_mark(&mut stack)?;
                stack.push(Value::Tuple(items));
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let items = stack.split_off(stack.len().checked_sub(n).ok_or("stack underflow")?);
                stack.push(Value::Tuple(items));
            }
            b'q' => {
                let k = take(&mut p, 1)?[0] as u32;
                memo.insert(k, stack.last().ok_or("BINPUT on empty stack")?.clone());
            }
            b'r' => {
                let k = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap());
                memo.insert(k, stack.last().ok_or("LONG_BINPUT on empty stack")?.clone());
            }
            b'h' => {
                let k = take(&mut p, 1)?[0] as u32;
                stack.push(memo.get(&k).cloned().ok_or(format!("memo {k} missing"))?);
            }
            b'j' => {
                let k = u32::from_le_bytes(take(&mut p, 4)?.try_into().unwrap());
                stack.push(memo.get(&k).cloned().ok_or(format!("memo {k} missing"))?);
            }
            b'Q' => {
                // BINPERSID: torch's ('storage', type, key, location, size[, view]).
                let id = stack.pop().ok_or("BINPERSID on empty stack")?;
                match id {
                    Value::Tuple(items) if items.len() >= 3 => match (&items[1], &items[2]) {
                        (Value::Global(kind), Value::Str(key)) => {
                            let float = kind == "torch.FloatStorage";
                            element_size(kind).ok_or(format!("storage type {kind} is not known"))?;
                            sizes.insert(key.clone(), element_size(kind).unwrap());
                            stack.push(Value::Storage { key: key.clone(), float });
                        }
                        _ => return Err("malformed persistent id".into()),
                    },
                    other => return Err(format!("unexpected persistent id {other:?}")),
                }
            }
            b'R' => {
                let args = stack.pop().ok_or("REDUCE without arguments")?;
                let callable = stack.pop().ok_or("REDUCE without callable")?;
                let Value::Tuple(args) = args else { return Err("REDUCE arguments are not a tuple".into()) };
                let value = match callable {
                    Value::Global(g) if g == "collections.OrderedDict" => Value::Dict(Vec::new()),
                    Value::Global(g) if g == "torch._utils._rebuild_tensor_v2" || g == "torch._utils._rebuild_tensor" => {
                        let Some(Value::Storage { key: storage, float }) = args.first() else { return Err("tensor without storage".into()) };
                        let offset = match args.get(1) {
                            Some(Value::Int(o)) => *o as usize,
                            _ => return Err("tensor without offset".into()),
                        };
                        Value::Tensor { storage: storage.clone(), float: *float, offset, shape: ints(args.get(2).ok_or("tensor without shape")?)?, stride: ints(args.get(3).ok_or("tensor without stride")?)? }
                    }
                    Value::Global(g) => return Err(format!("cannot rebuild {g}: not a plain state dict of tensors")),
                    other => return Err(format!("REDUCE on {other:?}")),
                };
                stack.push(value);
            }
            b's' => {
                let v = stack.pop().ok_or("SETITEM underflow")?;
                let k = stack.pop().ok_or("SETITEM underflow")?;
                match stack.last_mut() {
                    Some(Value::Dict(items)) => items.push((k, v)),
                    _ => return Err("SETITEM on a non-dict".into()),
                }
            }
            b'u' => {
                let kv = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::Dict(items)) => items.extend(kv.chunks_exact(2).map(|c| (c[0].clone(), c[1].clone()))),
                    _ => return Err("SETITEMS on a non-dict".into()),
                }
            }
            b'a' => {
                let v = stack.pop().ok_or("APPEND underflow")?;
                match stack.last_mut() {
                    Some(Value::List(items)) => items.push(v),
                    _ => return Err("APPEND on a non-list".into()),
                }
            }
            b'e' => {
                let vs = pop_mark(&mut stack)?;
                match stack.last_mut() {
                    Some(Value::List(items)) => items.extend(vs),
                    _ => return Err("APPENDS on a non-list".into()),
                }
            }
            b'b' => {
                // BUILD: the OrderedDict's attributes (torch's `_metadata`); not needed.
                stack.pop().ok_or("BUILD underflow")?;
            }
            other => return Err(format!("unsupported pickle opcode 0x{other:02x} at byte {}", p - 1)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_views_are_gathered_in_shape_order() {
        // Storage holds a 2×3 matrix transposed (column-major): the view (2, 3) with stride (1, 2).
        let storage = [1.0, 4.0, 2.0, 5.0, 3.0, 6.0];
        let t = gather(&storage, 0, &[2, 3], &[1, 2]).unwrap();
        assert_eq!(t.data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(gather(&storage, 4, &[2, 3], &[1, 2]).is_none(), "past the storage");
    }

    /// A legacy file made by hand: {"w": tensor (2, 2) over a transposed storage of 4 floats}.
    fn tiny_file() -> Vec<u8> {
        let mut f = Vec::new();
        f.extend(b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19."); // magic
        f.extend(b"\x80\x02M\xe9\x03."); // protocol 1001
        f.extend(b"\x80\x02}q\x00."); // system info (empty)
        f.extend(b"\x80\x02ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00wq\x02ctorch._utils\n_rebuild_tensor_v2\nq\x03((X\x07\x00\x00\x00storageq\x04ctorch\nFloatStorage\nq\x05X\x01\x00\x00\x000q\x06X\x03\x00\x00\x00cpuq\x07K\x04Ntq\x08QK\x00K\x02K\x02\x86q\x09K\x01K\x02\x86q\x0a\x89h\x00)Rq\x0btq\x0cRq\x0dX\x13\x00\x00\x00num_batches_trackedq\x0eK\x07u.");
        f.extend(b"\x80\x02]q\x00X\x01\x00\x00\x000q\x01a.");
        f.extend(4u64.to_le_bytes());
        for v in [1.0f32, 3.0, 2.0, 4.0] {
            f.extend(v.to_le_bytes());
        }
        f
    }

    #[test]
    fn reads_a_hand_made_legacy_file() {
        let tensors = read_state_dict(&tiny_file(), "tiny.pth").unwrap();
        assert_eq!(tensors.len(), 1, "the integer counter is not a tensor");
        assert_eq!(tensors[0].0, "w");
        assert_eq!(tensors[0].1.shape, vec![2, 2]);
        assert_eq!(tensors[0].1.data, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn truncated_files_are_errors_naming_the_file() {
        let f = tiny_file();
        let err = read_state_dict(&f[..f.len() - 3], "cut.pth").unwrap_err().to_string();
        assert!(err.starts_with("cut.pth: truncated in storage 0"), "{err}");
        let err = read_state_dict(&f[..40], "short.pth").unwrap_err().to_string();
        assert!(err.starts_with("short.pth: "), "{err}");
    }
}

/// The weights of `spec` from a PyTorch state dict whose parameter prefixes
/// are the spec's layer names (as `zoo/efficientnet-lite0.prototxt`):
/// Convolution / InnerProduct ← `NAME.weight` (+ `NAME.bias`); BatchNorm ←
/// `NAME.running_mean`, `NAME.running_var` (Caffe's third blob, the scale
/// factor, 1); Scale `NAME/scale` ← `NAME.weight`, `NAME.bias`.
pub fn weights_for_spec(tensors: Vec<(String, TorchTensor)>, spec: &super::NetSpec, file: &str) -> Result<super::Weights, TorchError> {
    use super::{Blob, LayerKind};
    let mut by_name: HashMap<String, TorchTensor> = tensors.into_iter().collect();
    let mut take = |key: String| -> Result<Blob, TorchError> {
        let t = by_name.remove(&key).ok_or_else(|| TorchError { file: file.to_string(), message: format!("no tensor {key} for the network's layer") })?;
        Ok(Blob::new(t.shape, t.data))
    };
    let mut weights = super::Weights::default();
    for layer in &spec.layers {
        let name = &layer.name;
        let blobs = match &layer.kind {
            LayerKind::Convolution { bias, .. } | LayerKind::InnerProduct { bias, .. } => {
                let mut b = vec![take(format!("{name}.weight"))?];
                if *bias {
                    b.push(take(format!("{name}.bias"))?);
                }
                b
            }
            LayerKind::BatchNorm { .. } => vec![take(format!("{name}.running_mean"))?, take(format!("{name}.running_var"))?, Blob::new(vec![1], vec![1.0])],
            LayerKind::Scale { bias } => {
                let base = name.strip_suffix("/scale").unwrap_or(name);
                let mut b = vec![take(format!("{base}.weight"))?];
                if *bias {
                    b.push(take(format!("{base}.bias"))?);
                }
                b
            }
            _ => continue,
        };
        weights.layers.insert(name.clone(), blobs);
    }
    Ok(weights)
}
