//! Decoding image files to 8-bit RGB, with a pixel limit against
//! decompression bombs.
//!
//! Like Caffe (OpenCV `imread` as Caffe calls it when building its
//! databases), no EXIF orientation is applied: pixels are used in stored
//! order. Grayscale becomes three equal channels; an alpha channel is dropped
//! (not composited), as OpenCV does.

use crate::data::image_files::SUPPORTED_FORMATS;
use image::{ImageFormat, ImageReader, RgbImage};
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

/// Default limit on width × height: 64 megapixels, far above any photo of the
/// datasets and far below a decompression bomb (a 20,000² PNG is 400 Mpx).
pub const DEFAULT_MAX_PIXELS: u64 = 64_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: {width}×{height} = {pixels} pixels is above the limit of {limit} (a decompression bomb?)", pixels = *width as u64 * *height as u64)]
    TooLarge { path: PathBuf, width: u32, height: u32, limit: u64 },
    #[error("{path}: unsupported image format{}: use JPEG, PNG or BMP", .format.as_deref().map(|f| format!(" {f}")).unwrap_or_default())]
    Unsupported { path: PathBuf, format: Option<String> },
    #[error("{path}: corrupt or truncated image: {source}")]
    Corrupt { path: PathBuf, source: image::ImageError },
    #[error("{path}: truncated JPEG: no end-of-image marker after the image data")]
    TruncatedJpeg { path: PathBuf },
    #[error("{path}: more than {limit} bytes, more than an image within the pixel limit can take")]
    FileTooLarge { path: PathBuf, limit: u64 },
}

impl DecodeError {
    pub fn path(&self) -> &Path {
        match self {
            DecodeError::Io { path, .. }
            | DecodeError::TooLarge { path, .. }
            | DecodeError::Unsupported { path, .. }
            | DecodeError::Corrupt { path, .. }
            | DecodeError::TruncatedJpeg { path }
            | DecodeError::FileTooLarge { path, .. } => path,
        }
    }
}

/// Bytes read before the format is known: enough for every supported header.
const SNIFF_BYTES: u64 = 64 << 10;

/// The most bytes an image file within `max_pixels` can need: an
/// uncompressed 32-bit BMP, plus room for headers and metadata.
pub fn max_file_bytes(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(4).saturating_add(1 << 20)
}

/// Reads and decodes a file. The format is recognised from its first bytes
/// before the rest is read, and no more than [`max_file_bytes`] are read:
/// a device or a huge file that is no image (`/dev/zero`) is refused at once.
pub fn decode_file(path: &Path, max_pixels: u64) -> Result<RgbImage, DecodeError> {
    decode_bytes(&read_image_file(path, max_pixels)?, path, max_pixels)
}

/// Checks a file as [`decode_file`] would up to its pixels: readable, a
/// supported format, a header within `max_pixels`. Returns width × height.
/// Cheap (no pixel is decoded): what `data check` runs on every image.
pub fn check_file(path: &Path, max_pixels: u64) -> Result<(u32, u32), DecodeError> {
    let bytes = read_image_file(path, max_pixels)?;
    let (width, height) = dimensions(&bytes, path)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(DecodeError::TooLarge { path: path.into(), width, height, limit: max_pixels });
    }
    Ok((width, height))
}

/// The bytes of an image file, its format recognised before more than the
/// first bytes are read, and at most [`max_file_bytes`] read.
fn read_image_file(path: &Path, max_pixels: u64) -> Result<Vec<u8>, DecodeError> {
    let io = |source| DecodeError::Io { path: path.into(), source };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    (&mut file).take(SNIFF_BYTES).read_to_end(&mut bytes).map_err(io)?;
    supported_format(&bytes, path)?;
    let limit = max_file_bytes(max_pixels);
    file.take((limit + 1).saturating_sub(bytes.len() as u64)).read_to_end(&mut bytes).map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(DecodeError::FileTooLarge { path: path.into(), limit });
    }
    Ok(bytes)
}

/// The image format of `bytes` from their first bytes, if deepsent reads it.
fn supported_format(bytes: &[u8], name: &Path) -> Result<ImageFormat, DecodeError> {
    match image::guess_format(bytes) {
        Ok(f) if SUPPORTED_FORMATS.contains(&f) => Ok(f),
        other => Err(DecodeError::Unsupported { path: name.into(), format: other.ok().map(|f| format!("{f:?}")) }),
    }
}

/// Width and height from the image's header, without decoding a pixel.
pub fn dimensions(bytes: &[u8], name: &Path) -> Result<(u32, u32), DecodeError> {
    let format = supported_format(bytes, name)?;
    ImageReader::with_format(Cursor::new(bytes), format).into_dimensions().map_err(|source| DecodeError::Corrupt { path: name.into(), source })
}

/// Decodes bytes; `name` is used in errors. The format is sniffed from the
/// content, and the header's size is checked before any pixel is decoded.
pub fn decode_bytes(bytes: &[u8], name: &Path, max_pixels: u64) -> Result<RgbImage, DecodeError> {
    let corrupt = |source| DecodeError::Corrupt { path: name.into(), source };
    let format = supported_format(bytes, name)?;
    let reader = || ImageReader::with_format(Cursor::new(bytes), format);
    let (width, height) = reader().into_dimensions().map_err(corrupt)?;
    if width as u64 * height as u64 > max_pixels {
        return Err(DecodeError::TooLarge { path: name.into(), width, height, limit: max_pixels });
    }
    let mut r = reader();
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(DecodeError::TruncatedJpeg { path: name.into() });
    }
    let mut limits = image::Limits::default();
    limits.max_alloc = Some(max_pixels.saturating_mul(8).max(1 << 20));
    r.limits(limits);
    let img = r.decode().map_err(corrupt)?;
    Ok(img.to_rgb8())
}

/// Whether a JPEG's data ends with its end-of-image marker. The JPEG decoder
/// fills a cut-off file with grey and reports success, so this is checked by
/// hand: walk the marker segments to the first start-of-scan (skipping APPn
/// segments, which may hold an EXIF thumbnail with its own end marker), then
/// look for FF D9 after it.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let mut i = 2; // after SOI
    while i + 4 <= bytes.len() {
        if bytes[i] != 0xff {
            return false;
        }
        let marker = bytes[i + 1];
        if marker == 0xff {
            i += 1; // fill byte
            continue;
        }
        if (0xd0..=0xd8).contains(&marker) || marker == 0x01 {
            i += 2; // markers without a length
            continue;
        }
        let length = u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]) as usize;
        if marker == 0xda {
            let scan = i + 2 + length;
            return scan <= bytes.len() && bytes[scan..].windows(2).any(|w| w == [0xff, 0xd9]);
        }
        i += 2 + length;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let img = RgbImage::from_pixel(width, height, image::Rgb([1, 2, 3]));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).unwrap();
        out
    }

    #[test]
    fn files_are_read_within_a_byte_limit_after_their_format_is_known() {
        // A device that never ends and is no image: refused from its first bytes.
        if Path::new("/dev/zero").exists() {
            let t = std::time::Instant::now();
            let err = decode_file(Path::new("/dev/zero"), DEFAULT_MAX_PIXELS).unwrap_err();
            assert!(matches!(err, DecodeError::Unsupported { .. }), "{err}");
            assert!(t.elapsed().as_secs() < 5, "read on for {:?}", t.elapsed());
        }
        // A PNG with 2 MB of trailing bytes under a 1-pixel limit (4 B + 1 MiB of slack).
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("padded.png");
        let mut bytes = png(1, 1);
        bytes.extend(vec![0u8; 2 << 20]);
        std::fs::write(&path, &bytes).unwrap();
        let err = decode_file(&path, 1).unwrap_err();
        assert!(matches!(err, DecodeError::FileTooLarge { limit, .. } if limit == max_file_bytes(1)), "{err}");
        assert!(err.to_string().contains("padded.png"), "{err}");
        // The same file within a limit it fits is decoded.
        assert_eq!(decode_file(&path, 1 << 20).unwrap().dimensions(), (1, 1));
    }

    #[test]
    fn decodes_and_refuses_big_or_broken_images() {
        let ok = decode_bytes(&png(4, 3), Path::new("a.png"), 100).unwrap();
        assert_eq!(ok.dimensions(), (4, 3));
        assert_eq!(ok.get_pixel(0, 0).0, [1, 2, 3]);

        let err = decode_bytes(&png(20, 20), Path::new("big.png"), 100).unwrap_err();
        assert!(matches!(err, DecodeError::TooLarge { width: 20, height: 20, .. }), "{err}");
        assert!(err.to_string().starts_with("big.png: 20×20"));

        let mut truncated = png(16, 16);
        truncated.truncate(truncated.len() / 2);
        let err = decode_bytes(&truncated, Path::new("cut.png"), 1000).unwrap_err();
        assert!(matches!(err, DecodeError::Corrupt { .. }), "{err}");

        let mut jpeg = Vec::new();
        RgbImage::from_fn(64, 48, |x, y| image::Rgb([x as u8 * 4, y as u8 * 5, 7])).write_to(&mut Cursor::new(&mut jpeg), ImageFormat::Jpeg).unwrap();
        assert!(decode_bytes(&jpeg, Path::new("whole.jpg"), 1 << 20).is_ok());
        let cut = &jpeg[..jpeg.len() * 2 / 3];
        let err = decode_bytes(cut, Path::new("cut.jpg"), 1 << 20).unwrap_err();
        assert!(matches!(err, DecodeError::TruncatedJpeg { .. }), "{err}");
        assert!(err.to_string().starts_with("cut.jpg: truncated JPEG"));

        let err = decode_bytes(b"not an image at all", Path::new("x.jpg"), 1000).unwrap_err();
        assert!(matches!(err, DecodeError::Unsupported { .. }), "{err}");
        assert_eq!(err.path(), Path::new("x.jpg"));
    }
}
