//! Stronger training views than Caffe's, for fine-tuning on few images: a
//! random-resized crop (a random part of the stored image, of random area
//! and aspect, resized to the network's input) with a mirror, then colour
//! jitter. Written here rather than taken from a crate because each view is
//! drawn from the training stream's seeded generator (see `train/stream.rs`),
//! so a resumed run sees the same views.

use super::crops::Crop;
use super::settings::Preprocess;
use image::RgbImage;
use rand::Rng;

/// Fraction of the stored image's area a crop covers.
const AREA: (f64, f64) = (0.25, 1.0);
/// Aspect ratio (width / height) of a crop, drawn log-uniformly.
const ASPECT: (f64, f64) = (3.0 / 4.0, 4.0 / 3.0);
/// Brightness, contrast and saturation factors are drawn from 1 ± this.
const JITTER: f64 = 0.4;

/// Writes one strongly augmented view of `stored` into `out` (the layout of
/// `Preprocess::write_view`).
pub fn write_strong_view(pre: &Preprocess, stored: &RgbImage, rng: &mut impl Rng, out: &mut [f32]) {
    let (sw, sh) = (stored.width() as f64, stored.height() as f64);
    let area = rng.gen_range(AREA.0..=AREA.1) * sw * sh;
    let aspect = rng.gen_range(ASPECT.0.ln()..=ASPECT.1.ln()).exp();
    let w = ((area * aspect).sqrt().round() as u32).clamp(1, stored.width());
    let h = ((area / aspect).sqrt().round() as u32).clamp(1, stored.height());
    let x = rng.gen_range(0..=stored.width() - w);
    let y = rng.gen_range(0..=stored.height() - h);
    let mirror = rng.gen_bool(0.5);
    let part = image::imageops::crop_imm(stored, x, y, w, h).to_image();
    let mut view = super::warp::resize_bilinear(&part, pre.crop as u32, pre.crop as u32);
    let mut factor = || rng.gen_range(1.0 - JITTER..=1.0 + JITTER) as f32;
    jitter(&mut view, factor(), factor(), factor());
    pre.write_view(&view, Crop { y: 0, x: 0, size: pre.crop, mirror }, out);
}

/// Brightness (scales every value), contrast (scales the distance to the
/// image's mean grey) and saturation (scales each pixel's distance to its grey).
fn jitter(img: &mut RgbImage, brightness: f32, contrast: f32, saturation: f32) {
    let grey = |p: &[u8]| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
    let pixels = (img.width() * img.height()).max(1) as f32;
    let mean_grey = img.as_raw().chunks_exact(3).map(grey).sum::<f32>() * brightness / pixels;
    for p in img.as_mut().chunks_exact_mut(3) {
        let g = grey(p) * brightness;
        for v in p.iter_mut() {
            let bright = *v as f32 * brightness;
            let saturated = g + (bright - g) * saturation;
            *v = (mean_grey + (saturated - mean_grey) * contrast).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn jitter_by_hand() {
        let mut img = RgbImage::from_fn(2, 1, |x, _| if x == 0 { image::Rgb([100, 100, 100]) } else { image::Rgb([200, 50, 0]) });
        // Brightness alone scales every value.
        let mut b = img.clone();
        jitter(&mut b, 1.2, 1.0, 1.0);
        assert_eq!(b.as_raw(), &[120, 120, 120, 240, 60, 0]);
        // Saturation 0 turns each pixel into its grey (0.299·200 + 0.587·50 = 89.15).
        jitter(&mut img, 1.0, 1.0, 0.0);
        assert_eq!(img.as_raw(), &[100, 100, 100, 89, 89, 89]);
    }

    #[test]
    fn strong_views_differ_and_are_reproducible() {
        let stored = RgbImage::from_fn(32, 32, |x, y| image::Rgb([(x * 8) as u8, (y * 8) as u8, 128]));
        let pre = Preprocess { crop: 16, resize: super::super::Resize::Warp(32), ..Preprocess::caffe(16) };
        let view = |seed| {
            let mut out = vec![0.0; pre.view_len()];
            write_strong_view(&pre, &stored, &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed), &mut out);
            out
        };
        assert_eq!(view(1), view(1));
        assert_ne!(view(1), view(2));
        assert!(view(3).iter().all(|v| v.is_finite()));
    }
}
