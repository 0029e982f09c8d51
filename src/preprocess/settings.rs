//! The input transform of a network: resize, crop size, channel order, mean
//! and scale. Each model spec carries its own (CaffeNet and SqueezeNet use
//! Caffe's; EfficientNet its own), so the transform is a setting, not code.

use super::crops::Crop;
use image::RgbImage;
use serde::{Deserialize, Serialize};

/// Per-channel mean of Caffe's `ilsvrc_2012_mean.npy`, in B, G, R order: the
/// mean CaffeNet was trained with.
pub const IMAGENET_MEAN_BGR: [f32; 3] = [104.006_99, 116.668_77, 122.678_91];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelOrder {
    /// Caffe's order (OpenCV decodes to BGR).
    Bgr,
    Rgb,
}

/// How a decoded image is brought to a fixed size before cropping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "size")]
pub enum Resize {
    /// Warp to a square of this side (aspect ratio not kept), then crop: Caffe's way.
    Warp(usize),
    /// Resize straight to the crop size: one view, no cropping.
    Direct,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocess {
    pub resize: Resize,
    /// Side of the square the network sees (227 for CaffeNet and SqueezeNet).
    pub crop: usize,
    pub channel_order: ChannelOrder,
    /// Subtracted per channel, in `channel_order`.
    pub mean: [f32; 3],
    /// Multiplies after the mean is subtracted (Caffe's `scale`).
    pub scale: f32,
}

/// Largest side of a network's input and of a stored (warped) image: far
/// above any ImageNet network (224–331), far below a size whose one image
/// would not fit in memory.
pub const MAX_SIDE: usize = 4096;

impl Preprocess {
    /// Whether this transform can feed a network whose input is
    /// `[channels, height, width]` (a model file's settings are checked when
    /// it is loaded, not when the first image fails): a crop of the network's
    /// input size, within the stored image, finite numbers.
    pub fn check(&self, [channels, height, width]: [usize; 3]) -> Result<(), String> {
        let stored = self.stored_size();
        if self.crop == 0 || self.crop > MAX_SIDE {
            return Err(format!("crop {} must be between 1 and {MAX_SIDE}", self.crop));
        }
        if stored < self.crop || stored > MAX_SIDE {
            return Err(format!("the stored image side {stored} must be between the crop ({}) and {MAX_SIDE}", self.crop));
        }
        if (height, width) != (self.crop, self.crop) {
            return Err(format!("crop {0}×{0} differs from the network's input {height}×{width}", self.crop));
        }
        if channels != 3 {
            return Err(format!("the network's input has {channels} channels; images give 3"));
        }
        if !self.mean.iter().chain([&self.scale]).all(|v| v.is_finite()) || self.scale == 0.0 {
            return Err(format!("mean {:?} and scale {} must be finite, the scale non-zero", self.mean, self.scale));
        }
        Ok(())
    }

    /// Caffe's ImageNet transform: warp to 256, BGR minus the ImageNet mean, 0–255 values.
    pub fn caffe(crop: usize) -> Self {
        Preprocess {
            resize: Resize::Warp(256),
            crop,
            channel_order: ChannelOrder::Bgr,
            mean: IMAGENET_MEAN_BGR,
            scale: 1.0,
        }
    }

    /// Side of the stored (warped) image.
    pub fn stored_size(&self) -> usize {
        match self.resize {
            Resize::Warp(s) => s,
            Resize::Direct => self.crop,
        }
    }

    /// Number of floats of one view (3 × crop × crop).
    pub fn view_len(&self) -> usize {
        3 * self.crop * self.crop
    }

    /// Brings a decoded image to the stored size.
    pub fn resize_image(&self, img: &RgbImage) -> RgbImage {
        let s = self.stored_size() as u32;
        super::warp::resize_bilinear(img, s, s)
    }

    /// Writes one view of a stored image into `out` (3 × crop × crop floats,
    /// channel-major: the network's NCHW layout for one image).
    pub fn write_view(&self, stored: &RgbImage, crop: Crop, out: &mut [f32]) {
        let side = stored.width() as usize;
        assert_eq!(crop.size, self.crop, "crop size differs from the network's input");
        assert!(crop.y + crop.size <= side && crop.x + crop.size <= side, "crop outside the image");
        assert_eq!(out.len(), self.view_len());
        let src = stored.as_raw();
        let plane = crop.size * crop.size;
        // Network channel k reads RGB channel `from[k]`.
        let from = match self.channel_order {
            ChannelOrder::Bgr => [2, 1, 0],
            ChannelOrder::Rgb => [0, 1, 2],
        };
        for y in 0..crop.size {
            let row = (crop.y + y) * side;
            for x in 0..crop.size {
                let sx = if crop.mirror { crop.x + crop.size - 1 - x } else { crop.x + x };
                let p = (row + sx) * 3;
                for (k, &c) in from.iter().enumerate() {
                    out[k * plane + y * crop.size + x] = (src[p + c] as f32 - self.mean[k]) * self.scale;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bgr_order_mean_and_mirroring_by_hand() {
        // 3×3 stored image; pixel (y, x) has R = 10y + x, G = 100, B = 200.
        let img = RgbImage::from_fn(3, 3, |x, y| image::Rgb([(10 * y + x) as u8, 100, 200]));
        let p = Preprocess {
            resize: Resize::Warp(3),
            crop: 2,
            channel_order: ChannelOrder::Bgr,
            mean: [1.0, 2.0, 3.0],
            scale: 0.5,
        };
        let mut out = vec![0.0; 12];
        p.write_view(&img, Crop { y: 1, x: 1, size: 2, mirror: false }, &mut out);
        // channel 0 = B: (200 − 1)·½; channel 1 = G: (100 − 2)·½; channel 2 = R: (R − 3)·½
        assert_eq!(&out[0..4], &[99.5; 4]);
        assert_eq!(&out[4..8], &[49.0; 4]);
        assert_eq!(&out[8..12], &[4.0, 4.5, 9.0, 9.5]); // R = 11, 12, 21, 22
        p.write_view(&img, Crop { y: 1, x: 1, size: 2, mirror: true }, &mut out);
        assert_eq!(&out[8..12], &[4.5, 4.0, 9.5, 9.0]);

        let rgb = Preprocess { channel_order: ChannelOrder::Rgb, ..p };
        rgb.write_view(&img, Crop { y: 0, x: 0, size: 2, mirror: false }, &mut out);
        assert_eq!(&out[0..4], &[-0.5, 0.0, 4.5, 5.0]); // R = 0, 1, 10, 11 minus mean 1
    }

    #[test]
    fn transforms_that_cannot_feed_the_network_are_named() {
        let input = [3, 227, 227];
        assert_eq!(Preprocess::caffe(227).check(input), Ok(()));
        let bad = [
            (Preprocess { crop: 0, ..Preprocess::caffe(227) }, "crop 0"),
            (Preprocess { crop: 300, ..Preprocess::caffe(227) }, "stored image side 256"),
            (Preprocess { resize: Resize::Warp(0), ..Preprocess::caffe(227) }, "stored image side 0"),
            (Preprocess { resize: Resize::Warp(1 << 40), ..Preprocess::caffe(227) }, "stored image side 1099511627776"),
            (Preprocess { crop: 224, ..Preprocess::caffe(227) }, "differs from the network's input 227×227"),
            (Preprocess { scale: f32::NAN, ..Preprocess::caffe(227) }, "finite"),
        ];
        for (p, want) in bad {
            let e = p.check(input).unwrap_err();
            assert!(e.contains(want), "{p:?}: {e}");
        }
        assert!(Preprocess::caffe(227).check([1, 227, 227]).unwrap_err().contains("1 channels"));
    }
}
