//! Seeded stratified k-fold splits for datasets that come without published
//! folds, written in the Twitter fold-file format so a split can be reused
//! and published.

use super::dataset::{Fold, Item};
use super::label::Label;
use super::list_file;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::path::Path;

/// Splits items into `k` folds with (as nearly as possible) the class ratio of
/// the whole in each test part. Each class is shuffled with the seed and dealt
/// round-robin, continuing where the previous class stopped so test parts
/// differ in size by at most one.
pub fn stratified_k_fold(items: &[Item], k: usize, seed: u64) -> Vec<Fold> {
    assert!(k >= 2, "k-fold needs k >= 2");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut tests: Vec<Vec<usize>> = vec![Vec::new(); k];
    let mut next = 0;
    for label in Label::ALL {
        let mut class: Vec<usize> = (0..items.len()).filter(|&i| items[i].label == label).collect();
        class.shuffle(&mut rng);
        for i in class {
            tests[next % k].push(i);
            next += 1;
        }
    }
    (0..k)
        .map(|f| {
            let mut test = tests[f].clone();
            test.sort_unstable();
            let mut train: Vec<usize> =
                (0..k).filter(|&g| g != f).flat_map(|g| tests[g].iter().copied()).collect();
            train.sort_unstable();
            Fold { number: f + 1, train, test }
        })
        .collect()
}

/// Writes `DIR/fold<K>/{train,test}.txt`.
pub fn write_folds(dir: &Path, items: &[Item], folds: &[Fold]) -> std::io::Result<()> {
    for fold in folds {
        let fold_dir = dir.join(format!("fold{}", fold.number));
        std::fs::create_dir_all(&fold_dir)?;
        for (file, part) in [("train.txt", &fold.train), ("test.txt", &fold.test)] {
            if let Some(i) = part.iter().find(|&&i| items[i].name.split_whitespace().count() != 1) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("{:?} contains white space, which fold files cannot hold", items[*i].name),
                ));
            }
            let text = list_file::format(part.iter().map(|&i| (items[i].name.as_str(), items[i].label)));
            std::fs::write(fold_dir.join(file), text)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(pos: usize, neg: usize) -> Vec<Item> {
        (0..pos + neg)
            .map(|i| Item {
                name: format!("{i}.jpg"),
                path: format!("{i}.jpg").into(),
                label: if i < pos { Label::Positive } else { Label::Negative },
            })
            .collect()
    }

    #[test]
    fn folds_are_stratified_disjoint_and_seeded() {
        let items = items(66, 34);
        let folds = stratified_k_fold(&items, 5, 7);
        let mut seen = vec![0; items.len()];
        for f in &folds {
            assert_eq!(f.test.len(), 20);
            assert_eq!(f.train.len(), 80);
            let pos = f.test.iter().filter(|&&i| items[i].label == Label::Positive).count();
            assert!((13..=14).contains(&pos), "fold {} has {pos} positives", f.number);
            for &i in &f.test {
                seen[i] += 1;
                assert!(!f.train.contains(&i));
            }
        }
        assert!(seen.iter().all(|&n| n == 1));
        assert_eq!(folds, stratified_k_fold(&items, 5, 7));
        assert_ne!(folds, stratified_k_fold(&items, 5, 8));
    }
}
