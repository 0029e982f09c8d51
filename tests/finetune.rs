//! Fine-tuning recipes that move the network, and the nested search that
//! chooses them without looking at the outer test part.

mod common;

use deepsent::data::{self, Dataset, DataRequest, FoldSource, Fold, Item, Label, Subset};
use deepsent::eval::crossval::{Crossval, CrossvalConfig, BARELY_MOVED};
use deepsent::eval::finetune::{FineTuning, Trained};
use deepsent::eval::search;
use deepsent::model::caffe::prototxt;
use deepsent::model::saved::{ModelCard, SavedModel};
use deepsent::model::surgery::parse_ops;
use deepsent::model::{load, Arch};
use deepsent::preprocess::{ImageCache, Preprocess, Resize};
use deepsent::train::solver::{Augment, DecayTarget, Schedule};
use deepsent::train::{HeadInit, Recipe, SolverSettings, TrainDir};
use deepsent::eval::run_dir::RunDir;

/// SqueezeNet v1.0 with its ImageNet weights and `n` real Twitter training images.
fn squeezenet_and_images(n: usize) -> (SavedModel, ImageCache, Vec<usize>) {
    let arch = Arch::SqueezeNet10;
    let model = load::load_model(Some(&arch), &arch.default_weights(&common::models_dir()).expect("SqueezeNet weights")).unwrap();
    let ds = data::load(&DataRequest { root: common::twitter_root(), subset: Subset::Five, folds: FoldSource::default(), extra_train: None }).into_result().unwrap();
    let pick: Vec<usize> = ds.folds[0].train[..n].to_vec();
    let paths: Vec<_> = pick.iter().map(|&i| ds.items[i].path.clone()).collect();
    let cache = ImageCache::build(&paths, &model.preprocess, 1 << 26).unwrap();
    let labels = pick.iter().map(|&i| ds.items[i].label.index()).collect();
    (model, cache, labels)
}

#[test]
fn a_large_enough_rate_moves_the_weights_and_the_loss_a_tiny_one_does_not() {
    let (model, cache, labels) = squeezenet_and_images(16);
    let images: Vec<&image::RgbImage> = cache.images.iter().collect();
    let ops = parse_ops("append:pool_final:fc9:2,remove:drop9").unwrap();
    let train = |base_lr: f64, dir: &std::path::Path| {
        // Every option of the solver at once: warm-up, cosine, layer-wise
        // decay, two frozen bottom layers, L2-SP, SWA over the last epoch.
        let solver = SolverSettings {
            base_lr,
            batch: 4,
            micro_batch: 4,
            epochs: 3.0,
            schedule: Schedule::Cosine,
            warmup_epochs: 1.0,
            layer_decay: 0.95,
            freeze_layers: 2,
            decay_to: DecayTarget::Pretrained,
            swa_epochs: 1.0,
            augment: Augment::Paper,
            ..Default::default()
        };
        let recipe = Recipe { solver, ..Recipe::default() };
        FineTuning { backbone: &model, ops: &ops, recipe: &recipe, eval_batch: 8, device: &deepsent::model::device::cpu() }.train("t", 0, &images, &labels, &TrainDir::new(dir), |_| None).unwrap()
    };
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let moved = train(2e-3, a.path());
    let still = train(1e-9, b.path());
    let change = |t: &Trained, layer: &str| t.movement.iter().find(|m| m.layer == layer).unwrap().relative_change;
    // conv1 and fire2's squeeze are the two frozen weight layers.
    assert_eq!(change(&moved, "conv1"), 0.0);
    assert_eq!(change(&moved, "fire2/conv1x1_1"), 0.0);
    for layer in ["fire8/conv3x3_2", "fire9/conv1x1_2", "conv_final"] {
        assert!(change(&moved, layer) > BARELY_MOVED, "{layer} moved only {}", change(&moved, layer));
        assert!(change(&still, layer) < BARELY_MOVED, "{layer} moved {} at a rate of 1e-9", change(&still, layer));
    }
    assert!(change(&moved, "fire3/conv1x1_2") > 0.0);
    let losses = |t: &Trained| t.log.iter().map(|e| e.loss).collect::<Vec<_>>();
    assert!((moved.log.last().unwrap().loss - moved.log[0].loss).abs() > 0.02, "the loss did not change: {:?}", losses(&moved));
    assert!((still.log.last().unwrap().loss - still.log[0].loss).abs() < 0.02, "a rate of 1e-9 changed the loss: {:?}", losses(&still));
}

/// A small conv net on 12×12 stored images cropped to 10×10, as a backbone.
fn tiny_backbone() -> SavedModel {
    let text = r#"input: "data" input_dim: 1 input_dim: 3 input_dim: 10 input_dim: 10
        layer { name: "conv" type: "Convolution" bottom: "data" top: "conv" convolution_param { num_output: 4 kernel_size: 3 stride: 2 } }
        layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
        layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc" inner_product_param { num_output: 3 } }
        layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }"#;
    let spec = prototxt::parse(text, "tiny").unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 9);
    let card = ModelCard {
        backbone: "tiny".into(),
        pretrained_from: "random".into(),
        trained_on: "nothing".into(),
        surgery: String::new(),
        settings: serde_json::Value::Null,
        cv_accuracy: None,
        test_accuracy: None,
        created: String::new(),
        deepsent_version: String::new(),
        ..Default::default()
    };
    SavedModel { spec, weights, preprocess: Preprocess { resize: Resize::Warp(12), crop: 10, ..Preprocess::caffe(10) }, card }
}

/// 30 training and 10 test items; the images of `poisoned` are 1×1, so any
/// attempt to cut a 10×10 view from one panics.
fn tiny_dataset(poisoned: impl Fn(usize) -> bool) -> (Dataset, ImageCache) {
    let items: Vec<Item> = (0..40)
        .map(|i| Item { name: format!("{i}.png"), path: format!("{i}.png").into(), label: if i % 2 == 0 { Label::Negative } else { Label::Positive } })
        .collect();
    let images = (0..40u32)
        .map(|i| {
            if poisoned(i as usize) {
                return image::RgbImage::new(1, 1);
            }
            let red = if i % 2 == 1 { 200 } else { 40 } + (i * 3 % 17) as u8;
            image::RgbImage::from_fn(12, 12, |x, y| image::Rgb([red, ((x * 13 + y * 7 + i) % 255) as u8, 90]))
        })
        .collect();
    let fold = Fold { number: 1, train: (0..30).collect(), test: (30..40).collect() };
    (Dataset { name: "tiny".into(), items, folds: vec![fold], left_out: vec![] }, ImageCache { images })
}

fn config() -> CrossvalConfig {
    CrossvalConfig {
        backbone: "tiny".into(),
        weights: "random".into(),
        dataset: "tiny".into(),
        recipe: Recipe {
            surgery: "replace:fc:2".into(),
            solver: SolverSettings { epochs: 2.0, batch: 6, micro_batch: 6, base_lr: 0.01, ..Default::default() },
            head_init: HeadInit::Probe,
            new_lr_mult: 1.0,
            seed: 0,
            wise_alpha: 1.0,
        },
        folds: vec![1],
        search: vec!["base_lr=0.001,0.01".parse().unwrap(), "schedule=step,cosine".parse().unwrap()],
        holdout: 0.2,
        inner_folds: 0,
    }
}

#[test]
fn the_search_never_reads_the_outer_test_part() {
    let backbone = tiny_backbone();
    let ops = parse_ops("replace:fc:2").unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Every test image poisoned: the search succeeds.
    let (dataset, cache) = tiny_dataset(|i| i >= 30);
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config: config(), eval_batch: 8, device: &deepsent::model::device::cpu() };
    let (chosen, record) = search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(dir.path()).fold(1)).unwrap();
    assert_eq!(record.points.len(), 4);
    assert_eq!((record.inner_train, record.inner_val), (24, 6));
    assert_eq!(serde_json::to_value(chosen.solver.base_lr).unwrap(), record.chosen_values()["base_lr"]);
    assert!(record.points.iter().all(|p| p.images_trained == 2 * 24 && p.val_accuracy_before.is_some()));
    // The poison works: one poisoned training image stops the search.
    let (dataset, cache) = tiny_dataset(|i| i == 3 || i >= 30);
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config: config(), eval_batch: 8, device: &deepsent::model::device::cpu() };
    let other = tempfile::tempdir().unwrap();
    let touched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(other.path()).fold(1))));
    assert!(touched.is_err() || touched.unwrap().is_err(), "a poisoned training image went unnoticed");
}

#[test]
fn a_search_by_inner_folds_reads_only_the_training_part_and_averages_its_folds() {
    let backbone = tiny_backbone();
    let ops = parse_ops("replace:fc:2").unwrap();
    let config = CrossvalConfig { search: vec!["base_lr=0.001,0.01".parse().unwrap()], inner_folds: 3, ..config() };
    // Every test image poisoned: the search succeeds, each point over 3 inner folds of the 30 training images.
    let (dataset, cache) = tiny_dataset(|i| i >= 30);
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config: config.clone(), eval_batch: 8, device: &deepsent::model::device::cpu() };
    let dir = tempfile::tempdir().unwrap();
    let (_, record) = search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(dir.path()).fold(1)).unwrap();
    assert_eq!((record.inner_folds, record.inner_train, record.inner_val), (3, 20, 10));
    for p in &record.points {
        assert_eq!(p.split_accuracies.len(), 3);
        let mean = p.split_accuracies.iter().sum::<f64>() / 3.0;
        assert!((p.val_accuracy - mean).abs() < 1e-12, "{} vs the mean {mean}", p.val_accuracy);
        assert_eq!(p.images_trained, 3 * config.recipe.solver.iterations(20) * config.recipe.solver.batch);
    }
    // Read back, not trained again: the same record.
    let (_, again) = search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(dir.path()).fold(1)).unwrap();
    assert_eq!(serde_json::to_string(&again).unwrap(), serde_json::to_string(&record).unwrap());
    // One poisoned training image stops it: every training image is scored in some inner fold.
    let (dataset, cache) = tiny_dataset(|i| i == 3 || i >= 30);
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config, eval_batch: 8, device: &deepsent::model::device::cpu() };
    let other = tempfile::tempdir().unwrap();
    let touched = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(other.path()).fold(1))));
    assert!(touched.is_err() || touched.unwrap().is_err(), "a poisoned training image went unnoticed");
}

#[test]
fn a_searched_crossval_records_the_grid_the_choice_the_pairs_and_the_movement() {
    let backbone = tiny_backbone();
    let ops = parse_ops("replace:fc:2").unwrap();
    let (dataset, cache) = tiny_dataset(|_| false);
    let dir = tempfile::tempdir().unwrap();
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config: config(), eval_batch: 8, device: &deepsent::model::device::cpu() };
    let r = cv.run(dir.path()).unwrap();
    let f = &r.folds[0];
    let record = f.search.as_ref().expect("a search record");
    assert_eq!(record.grid.len(), 2);
    assert_eq!(record.points.len(), 4);
    assert!(f.acc_center_before.is_some());
    assert_eq!(f.movement.iter().map(|m| (m.layer.as_str(), m.new)).collect::<Vec<_>>(), [("conv", false), ("fc", true)]);
    let md = deepsent::report::tables::crossval_table(&r, "cmd");
    assert!(md.contains("## Nested search") && md.contains("**(chosen)**") && md.contains("## How far each layer moved"), "{md}");
    // One fold: no paired interval.
    assert!(r.paired_center.is_none());
    // The run resumes from what it wrote: the same results again.
    let again = cv.run(dir.path()).unwrap();
    assert_eq!(serde_json::to_string(&again.folds).unwrap(), serde_json::to_string(&r.folds).unwrap());
}

#[test]
fn points_that_differ_only_in_the_interpolation_share_one_training() {
    let backbone = tiny_backbone();
    let ops = parse_ops("replace:fc:2").unwrap();
    let (dataset, cache) = tiny_dataset(|i| i >= 30);
    for inner_folds in [0, 2] {
        let config = CrossvalConfig { search: vec!["base_lr=0.05".parse().unwrap(), "wise_alpha=0,0.5,1".parse().unwrap()], inner_folds, ..config() };
        let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config: config.clone(), eval_batch: 8, device: &deepsent::model::device::cpu() };
        let dir = tempfile::tempdir().unwrap();
        let (_, record) = search::choose(&cv, &dataset.folds[0], 1, &RunDir::new(dir.path()).fold(1)).unwrap();
        let [none, half, all] = &record.points[..] else { panic!("3 points: {:?}", record.points.len()) };
        // One training, counted once.
        let splits = inner_folds.max(1);
        let one = splits * config.recipe.solver.iterations(record.inner_train) * config.recipe.solver.batch;
        assert_eq!((all.images_trained, half.images_trained, none.images_trained), (0, 0, one), "inner folds {inner_folds}");
        assert_eq!(record.images_trained, one);
        // α = 0 is the start: its held-out accuracy is the accuracy before training.
        assert_eq!(none.largest_pretrained_change, Some(0.0));
        assert!((none.val_accuracy - none.val_accuracy_before.unwrap()).abs() < 1e-12);
        // α = 0.5 is half way: every layer's change halves.
        let (h, a) = (half.largest_pretrained_change.unwrap(), all.largest_pretrained_change.unwrap());
        assert!(a > 1e-3 && (h - a / 2.0).abs() < 1e-4 * a, "half {h} against the whole {a}");
        assert_eq!(half.val_curve, all.val_curve, "the same training");
    }
}

#[test]
fn a_run_at_wise_alpha_zero_ends_where_it_started() {
    let backbone = tiny_backbone();
    let ops = parse_ops("replace:fc:2").unwrap();
    let (dataset, cache) = tiny_dataset(|_| false);
    let dir = tempfile::tempdir().unwrap();
    let mut config = CrossvalConfig { search: vec![], ..config() };
    config.recipe.wise_alpha = 0.0;
    let cv = Crossval { backbone: &backbone, ops: &ops, dataset: &dataset, cache: &cache, config, eval_batch: 8, device: &deepsent::model::device::cpu() };
    let r = cv.run(dir.path()).unwrap();
    let f = &r.folds[0];
    assert_eq!(Some(f.acc_center), f.acc_center_before);
    assert!(f.movement.iter().all(|m| m.relative_change == 0.0), "{:?}", f.movement);
    // The training itself moved the loss: the log is the trained network's.
    assert!(f.final_loss.is_some());
}
