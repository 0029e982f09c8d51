//! Which files are images: by their name, before anything is decoded (the
//! folder layout and `predict DIR` list them; `preprocess::decode` reads them).

use image::ImageFormat;
use std::path::Path;

/// The formats this build decodes.
pub const SUPPORTED_FORMATS: [ImageFormat; 3] = [ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Bmp];

/// What a file name says about a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// JPEG, PNG or BMP: decoded.
    Supported,
    /// An image format this build does not decode (GIF, WebP, TIFF …).
    Unsupported(&'static str),
    NotImage,
}

/// Classifies a path by its extension (case-insensitive).
pub fn is_image_path(path: &Path) -> ImageKind {
    match ImageFormat::from_path(path) {
        Ok(f) if SUPPORTED_FORMATS.contains(&f) => ImageKind::Supported,
        Ok(f) => ImageKind::Unsupported(f.extensions_str().first().copied().unwrap_or("unknown")),
        Err(_) => ImageKind::NotImage,
    }
}

/// Every entry under `dir`, recursive, sorted by name, symbolic links
/// followed (an image linked into a folder counts like a copy; a link loop is
/// an error of the walk, named by walkdir).
pub fn walk(dir: &Path) -> walkdir::IntoIter {
    walkdir::WalkDir::new(dir).sort_by_file_name().follow_links(true).into_iter()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_files_by_extension() {
        assert_eq!(is_image_path(Path::new("a/B.JPG")), ImageKind::Supported);
        assert_eq!(is_image_path(Path::new("a.bmp")), ImageKind::Supported);
        assert!(matches!(is_image_path(Path::new("a.gif")), ImageKind::Unsupported(_)));
        assert_eq!(is_image_path(Path::new("notes.txt")), ImageKind::NotImage);
    }
}
