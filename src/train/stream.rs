//! The training stream: epochs of the training images, each shuffled, cut
//! into iterations of `batch` images, each image with a random crop and
//! mirror. Every random choice is drawn from a generator seeded by (seed,
//! what, index), so any iteration can be regenerated without replaying the
//! ones before it: a resumed run sees exactly the data an uninterrupted run
//! would, and the checkpoint needs no RNG state.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

/// Streams of random numbers, kept apart.
#[derive(Clone, Copy)]
pub enum Purpose {
    Shuffle = 1,
    Crop = 2,
    Dropout = 3,
}

/// A generator for (seed, purpose, index), independent of every other.
pub fn rng(seed: u64, purpose: Purpose, index: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(((purpose as u64) << 56) ^ index);
    r
}

/// Positions `start..start+len` of the endless stream of shuffled epochs over
/// `n` images, as image indices (0..n).
pub fn positions(seed: u64, n: usize, start: usize, len: usize) -> Vec<usize> {
    let mut out = Vec::with_capacity(len);
    let mut epoch_cache: Option<(usize, Vec<usize>)> = None;
    for p in start..start + len {
        let epoch = p / n;
        if epoch_cache.as_ref().map(|c| c.0) != Some(epoch) {
            let mut order: Vec<usize> = (0..n).collect();
            order.shuffle(&mut rng(seed, Purpose::Shuffle, epoch as u64));
            epoch_cache = Some((epoch, order));
        }
        out.push(epoch_cache.as_ref().unwrap().1[p % n]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_epoch_is_a_permutation_and_any_slice_regenerates() {
        let all = positions(5, 10, 0, 30);
        for e in 0..3 {
            let mut epoch: Vec<usize> = all[e * 10..(e + 1) * 10].to_vec();
            epoch.sort();
            assert_eq!(epoch, (0..10).collect::<Vec<_>>());
        }
        assert_ne!(all[0..10], all[10..20]);
        assert_eq!(positions(5, 10, 7, 9), all[7..16]);
        assert_ne!(positions(6, 10, 0, 10), all[0..10]);
    }
}
