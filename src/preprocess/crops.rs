//! Where views are cut from a warped image: random crops for training, the
//! centre crop for testing, and Caffe's 10-crop oversampling.

use rand::Rng;

/// A square crop at (`y`, `x`) of side `size`, optionally mirrored left–right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crop {
    pub y: usize,
    pub x: usize,
    pub size: usize,
    pub mirror: bool,
}

/// Caffe's test crop: offset `(image − crop) / 2`, rounded down (14 for 227 of 256).
pub fn center(image: usize, crop: usize) -> Crop {
    let o = (image - crop) / 2;
    Crop { y: o, x: o, size: crop, mirror: false }
}

/// Caffe's training crop: uniform position, mirrored with probability ½.
pub fn random(image: usize, crop: usize, rng: &mut impl Rng) -> Crop {
    let span = image - crop + 1;
    Crop { y: rng.gen_range(0..span), x: rng.gen_range(0..span), size: crop, mirror: rng.gen_bool(0.5) }
}

/// The 10 views of Caffe's `oversample`: the four corners (top-left,
/// top-right, bottom-left, bottom-right), the centre, then the mirror of each
/// in the same order.
pub fn ten(image: usize, crop: usize) -> [Crop; 10] {
    let far = image - crop;
    let c = center(image, crop);
    let plain = [(0, 0), (0, far), (far, 0), (far, far), (c.y, c.x)];
    std::array::from_fn(|i| {
        let (y, x) = plain[i % 5];
        Crop { y, x, size: crop, mirror: i >= 5 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn caffe_offsets_for_227_of_256() {
        assert_eq!(center(256, 227), Crop { y: 14, x: 14, size: 227, mirror: false });
        let views = ten(256, 227);
        let pos: Vec<(usize, usize, bool)> = views.iter().map(|c| (c.y, c.x, c.mirror)).collect();
        assert_eq!(
            pos,
            [
                (0, 0, false), (0, 29, false), (29, 0, false), (29, 29, false), (14, 14, false),
                (0, 0, true), (0, 29, true), (29, 0, true), (29, 29, true), (14, 14, true),
            ]
        );
    }

    #[test]
    fn random_crops_cover_every_offset_and_both_mirrors() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let crops: Vec<Crop> = (0..4000).map(|_| random(256, 227, &mut rng)).collect();
        assert_eq!(crops.iter().map(|c| c.y).max(), Some(29));
        assert_eq!(crops.iter().map(|c| c.x).min(), Some(0));
        let mirrored = crops.iter().filter(|c| c.mirror).count();
        assert!((1800..2200).contains(&mirrored));
    }
}
