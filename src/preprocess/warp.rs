//! Bilinear resizing as OpenCV's `cv::resize(INTER_LINEAR)`, which Caffe uses
//! to warp images to 256×256 when it builds its databases.
//!
//! Written by hand because the `image` crate's bilinear ("Triangle") filter
//! widens its kernel when shrinking (it smooths, like Pillow), while OpenCV
//! samples the two nearest source pixels only; the paper's numbers come from
//! the latter. Sample positions use pixel centres: `src = (dst + ½)·in/out − ½`,
//! clamped to the image.

use image::RgbImage;

/// Precomputed source index and weight for each output coordinate.
fn taps(input: usize, output: usize) -> Vec<(usize, usize, f32)> {
    let scale = input as f64 / output as f64;
    (0..output)
        .map(|o| {
            let src = ((o as f64 + 0.5) * scale - 0.5).max(0.0);
            let i0 = (src.floor() as usize).min(input - 1);
            let i1 = (i0 + 1).min(input - 1);
            let w1 = (src - i0 as f64).clamp(0.0, 1.0) as f32;
            (i0, i1, w1)
        })
        .collect()
}

/// Resizes an RGB image to `width × height` (aspect ratio not kept), rounding
/// to 8 bits as Caffe stores the warped images.
pub fn resize_bilinear(img: &RgbImage, width: u32, height: u32) -> RgbImage {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let xs = taps(w, width as usize);
    let ys = taps(h, height as usize);
    let src = img.as_raw();
    let mut out = vec![0u8; width as usize * height as usize * 3];
    for (oy, &(y0, y1, wy)) in ys.iter().enumerate() {
        let row0 = &src[y0 * w * 3..(y0 + 1) * w * 3];
        let row1 = &src[y1 * w * 3..(y1 + 1) * w * 3];
        let out_row = &mut out[oy * width as usize * 3..(oy + 1) * width as usize * 3];
        for (ox, &(x0, x1, wx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = row0[x0 * 3 + c] as f32 * (1.0 - wx) + row0[x1 * 3 + c] as f32 * wx;
                let bottom = row1[x0 * 3 + c] as f32 * (1.0 - wx) + row1[x1 * 3 + c] as f32 * wx;
                let v = top * (1.0 - wy) + bottom * wy;
                out_row[ox * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
    RgbImage::from_raw(width, height, out).expect("buffer has width × height × 3 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halving_averages_pixel_pairs_without_smoothing_wider() {
        // 4×1 → 2×1: output 0 samples at x = 0.5 (between pixels 0 and 1),
        // output 1 at x = 2.5. A smoothing filter would mix in more pixels.
        let img = RgbImage::from_raw(4, 1, vec![0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]).unwrap();
        let out = resize_bilinear(&img, 2, 1);
        assert_eq!(out.as_raw(), &vec![50, 50, 50, 228, 228, 228]); // (200+255)/2 = 227.5 → 228
    }

    #[test]
    fn doubling_interpolates_and_clamps_at_the_border() {
        // 2×1 → 4×1: sample positions −0.25 (clamped to 0), 0.25, 0.75, 1.25 (→ 1).
        let img = RgbImage::from_raw(2, 1, vec![0, 10, 20, 100, 110, 120]).unwrap();
        let out = resize_bilinear(&img, 4, 1);
        let red: Vec<u8> = out.as_raw().chunks(3).map(|p| p[0]).collect();
        assert_eq!(red, [0, 25, 75, 100]);
        let blue: Vec<u8> = out.as_raw().chunks(3).map(|p| p[2]).collect();
        assert_eq!(blue, [20, 45, 95, 120]);
    }

    #[test]
    fn same_size_is_identity() {
        let img = RgbImage::from_fn(5, 3, |x, y| image::Rgb([x as u8 * 40, y as u8 * 70, 9]));
        assert_eq!(resize_bilinear(&img, 5, 3), img);
    }
}
