//! A sentiment map drawn over its image: red where the network sees
//! positive, blue where it sees negative, stronger where the map is
//! stronger (scaled to the map's own peak), with a caption strip that gives
//! the score. The same picture serves `predict --maps`, `deepsent maps`,
//! the service's `/v1/explain` and the report.

use super::plot::{register_font, FONT};
use crate::eval::maps::Grid;
use image::{Rgb, RgbImage};
use plotters::prelude::*;

/// Largest side of an overlay: a map has a few dozen cells per side, and a
/// 20-megapixel overlay would show nothing more.
pub const MAX_SIDE: u32 = 1024;

const POSITIVE_COLOUR: [f32; 3] = [230.0, 40.0, 20.0];
const NEGATIVE_COLOUR: [f32; 3] = [20.0, 90.0, 240.0];
/// Opacity of the colour where the map is at its peak.
const MAX_ALPHA: f32 = 0.65;

/// The image (scaled to at most `max_side`) with `map` (any size: it is
/// resampled to the image) over it, and a strip below with `caption` (none if empty).
pub fn overlay(image: &RgbImage, map: &Grid, caption: &str, max_side: u32) -> anyhow::Result<RgbImage> {
    let (w, h) = image.dimensions();
    let scale = (max_side as f32 / w.max(h) as f32).min(1.0);
    let (w, h) = (((w as f32 * scale).round() as u32).max(1), ((h as f32 * scale).round() as u32).max(1));
    let base = if scale < 1.0 { image::imageops::resize(image, w, h, image::imageops::FilterType::Triangle) } else { image.clone() };
    let map = map.resized(w as usize, h as usize);
    let peak = map.peak().max(f32::MIN_POSITIVE);
    // No strip without a caption.
    let strip = if caption.is_empty() { 0 } else { 22.max(h / 14) };
    let mut canvas = RgbImage::from_pixel(w, h + strip, Rgb([255, 255, 255]));
    for (x, y, p) in base.enumerate_pixels() {
        let v = map.values[(y * w + x) as usize] / peak;
        let (colour, alpha) = if v >= 0.0 { (POSITIVE_COLOUR, v * MAX_ALPHA) } else { (NEGATIVE_COLOUR, -v * MAX_ALPHA) };
        let px = std::array::from_fn(|c| ((1.0 - alpha) * p[c] as f32 + alpha * colour[c]).round().clamp(0.0, 255.0) as u8);
        canvas.put_pixel(x, y, Rgb(px));
    }
    if caption.is_empty() {
        return Ok(canvas);
    }
    register_font();
    {
        let mut buffer = canvas.as_flat_samples_mut();
        let root = BitMapBackend::with_buffer(buffer.as_mut_slice(), (w, h + strip)).into_drawing_area();
        // DejaVu Sans averages about 0.55 em a character: the caption fits the width.
        let size = (strip as f64 * 0.62).min(w as f64 / (caption.chars().count().max(1) as f64 * 0.56)).max(7.0);
        root.draw_text(caption, &TextStyle::from((FONT, size).into_font()).color(&BLACK), (4, (h + strip / 5) as i32)).map_err(|e| anyhow::anyhow!("drawing the caption: {e}"))?;
        root.present().map_err(|e| anyhow::anyhow!("drawing the caption: {e}"))?;
    }
    Ok(canvas)
}

/// PNG bytes of an image.
pub fn png_bytes(image: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
    Ok(bytes)
}

/// The caption of a map: the score and what the colours mean.
pub fn caption(p_positive: f32, label: &str, views: usize) -> String {
    let views = if views > 1 { format!(", {views} views") } else { String::new() };
    format!("{label}: P(positive) {p_positive:.2}{views} — red: positive, blue: negative")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn red_where_positive_blue_where_negative_and_a_caption_below() {
        let image = RgbImage::from_pixel(40, 20, Rgb([128, 128, 128]));
        // Left half positive, right half negative.
        let map = Grid { height: 1, width: 2, values: vec![1.0, -1.0] };
        let out = overlay(&image, &map, "positive: P(positive) 0.90", 1024).unwrap();
        assert_eq!(out.width(), 40);
        assert!(out.height() > 20);
        let left = out.get_pixel(2, 10);
        let right = out.get_pixel(37, 10);
        assert!(left[0] > left[2] + 50, "{left:?}");
        assert!(right[2] > right[0] + 50, "{right:?}");
        // The strip holds dark text pixels.
        assert!((20..out.height()).any(|y| (0..40).any(|x| out.get_pixel(x, y)[0] < 100)));
        // Large images are scaled down.
        let big = RgbImage::new(3000, 1500);
        let out = overlay(&big, &map, "x", 1024).unwrap();
        assert_eq!(out.width(), 1024);
    }
}
