//! The fine-tuning loop: Caffe's solver over the training stream, with
//! micro-batches, checkpoints every iteration, a log line per epoch, and a
//! stop with a clear message when the loss turns NaN or explodes.

use super::checkpoint;
use super::solver::{Augment, BatchNormMode, Sgd, SolverSettings};
use super::stream::{self, Purpose};
use super::train_dir::TrainDir;
use crate::model::net::{to_f32s, update_running_stats, Mode, Net, Params};
use crate::preprocess::{augment, crops, Preprocess};
use anyhow::{bail, Result};
use burn::prelude::*;
use burn::tensor::activation::log_softmax;
use burn::tensor::TensorData;
use image::RgbImage;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::Path;


/// One line of the training log (`log.jsonl`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochLog {
    pub epoch: usize,
    pub iteration: usize,
    pub lr: f64,
    /// Mean training loss over the iterations of this epoch.
    pub loss: f64,
    /// Centre-crop test accuracy after this epoch, when a test set is given.
    pub test_acc: Option<f64>,
    pub seconds: f64,
}

pub struct FitConfig<'a> {
    pub settings: &'a SolverSettings,
    pub seed: u64,
    /// Where the checkpoint and log live; the run resumes from them.
    pub run_dir: &'a TrainDir,
    /// Names the run in progress and errors (e.g. "fold 1").
    pub name: String,
    /// Stop (resumably) after this many iterations in this call.
    pub stop_after: Option<usize>,
    /// Layers new to the network (surgery): with L2-SP they decay toward
    /// zero, the pretrained ones toward their starting weights.
    pub new_layers: &'a [String],
}

/// How far each micro-batch moves BatchNorm's running statistics (PyTorch's default).
const BATCHNORM_MOMENTUM: f32 = 0.1;

/// A loss this large means training diverged (ln 2 ≈ 0.69 is chance for 2 classes).
const EXPLODED_LOSS: f64 = 1e4;

/// Fine-tunes `net` on labelled stored images; `evaluate` is called after each
/// epoch (e.g. test accuracy for the log). Returns the epoch log.
pub fn fit(
    net: &mut Net,
    pre: &Preprocess,
    images: &[&RgbImage],
    labels: &[usize],
    cfg: &FitConfig,
    mut evaluate: impl FnMut(&Net) -> Option<f64>,
) -> Result<Vec<EpochLog>> {
    let s = cfg.settings;
    s.check().map_err(anyhow::Error::msg)?;
    let n = images.len();
    let iterations = s.iterations(n);
    let ckpt_path = cfg.run_dir.checkpoint();
    let log_path = cfg.run_dir.log();
    std::fs::create_dir_all(cfg.run_dir.path())?;

    // Built before a checkpoint is loaded: the L2-SP anchor is the starting point.
    let mut sgd = Sgd::for_settings(&net.spec, &net.params, s, cfg.new_layers);
    let swa_points = s.swa_points(n);
    let mut swa: Option<(Params, usize)> = None;
    let mut start = 0;
    let mut log: Vec<EpochLog> = Vec::new();
    let mut epoch_losses: Vec<f64> = Vec::new();
    if ckpt_path.exists() {
        let c = checkpoint::load(&ckpt_path, net)?;
        net.params = c.params;
        sgd.history = c.history;
        start = c.iteration;
        epoch_losses = c.epoch_losses;
        swa = c.swa;
        // Keep the log lines the checkpoint covers (a line written after the
        // last checkpoint is redone).
        if let Ok(text) = std::fs::read_to_string(&log_path) {
            log = text.lines().filter_map(|l| serde_json::from_str::<EpochLog>(l).ok()).filter(|e| e.iteration <= start).collect();
        }
    }
    rewrite_log(&log_path, &log)?;
    if start >= iterations {
        if let Some((mean, _)) = swa {
            net.params = mean;
        }
        return Ok(log);
    }

    let train_device = net.device().clone().autodiff();
    let logits_name = net.spec.logits_blob().to_string();
    let bar = crate::progress::bar(iterations as u64, &cfg.name);
    bar.set_position(start as u64);
    let t0 = std::time::Instant::now();
    let micro_per_iter = s.batch / s.micro_batch;
    let end = cfg.stop_after.map_or(iterations, |k| (start + k).min(iterations));
    for it in start..end {
        let lr = s.lr_at(it, n);
        let mut acc: Vec<Vec<Option<Tensor<1>>>> = net.params.iter().map(|b| vec![None; b.len()]).collect();
        let mut loss_sum = 0.0;
        for m in 0..micro_per_iter {
            let first = it * s.batch + m * s.micro_batch;
            let picks = stream::positions(cfg.seed, n, first, s.micro_batch);
            let mut views = vec![0.0f32; s.micro_batch * pre.view_len()];
            for (j, (&img, view)) in picks.iter().zip(views.chunks_mut(pre.view_len())).enumerate() {
                let mut r = stream::rng(cfg.seed, Purpose::Crop, (first + j) as u64);
                match s.augment {
                    Augment::Paper => pre.write_view(images[img], crops::random(pre.stored_size(), pre.crop, &mut r), view),
                    Augment::Strong => augment::write_strong_view(pre, images[img], &mut r, view),
                }
            }
            let batch_labels: Vec<usize> = picks.iter().map(|&i| labels[i]).collect();
            let tracked = track(net, &sgd.layer_rates, &train_device);
            let input = net.input(views, &train_device);
            let mut dropout_rng = stream::rng(cfg.seed, Purpose::Dropout, (it * micro_per_iter + m) as u64);
            let mut batch_stats = Vec::new();
            let update_bn = s.batchnorm == BatchNormMode::Batch;
            let mut mode = Mode::Train { rng: &mut dropout_rng, batch_stats: update_bn.then_some(&mut batch_stats) };
            let mut blobs = net.forward_with(&tracked, input, &mut mode, &[logits_name.as_str()]);
            let logits = blobs.remove(&logits_name).expect("logits computed");
            let loss = cross_entropy(logits, &batch_labels, s.label_smoothing, &train_device);
            let value = to_f32s(&loss)[0] as f64;
            if !value.is_finite() || value > EXPLODED_LOSS {
                bar.abandon();
                bail!("{}: the loss is {value} at iteration {it} (micro-batch {m}): training diverged; lower the learning rate (base_lr)", cfg.name);
            }
            loss_sum += value;
            let grads = loss.backward();
            update_running_stats(&mut net.params, &batch_stats, BATCHNORM_MOMENTUM);
            for (l, blobs) in tracked.iter().enumerate() {
                for (b, t) in blobs.iter().enumerate() {
                    if let Some(g) = t.grad(&grads) {
                        acc[l][b] = Some(match acc[l][b].take() {
                            Some(a) => a + g,
                            None => g,
                        });
                    }
                }
            }
        }
        // Caffe's iter_size: the gradient is the mean over micro-batches.
        let scale = 1.0 / micro_per_iter as f64;
        let grads: Vec<Vec<Option<Tensor<1>>>> = acc.into_iter().map(|b| b.into_iter().map(|g| g.map(|g| g.mul_scalar(scale))).collect()).collect();
        sgd.step(&net.spec, &mut net.params, &grads, lr, s);
        if swa_points.contains(&(it + 1)) {
            swa = Some(match swa.take() {
                None => (net.params.clone(), 1),
                Some((mean, k)) => (running_mean(mean, &net.params, k), k + 1),
            });
        }
        let loss = loss_sum / micro_per_iter as f64;
        epoch_losses.push(loss);
        bar.set_message(format!("{} it {}/{} loss {loss:.4} lr {lr:.0e}", cfg.name, it + 1, iterations));
        bar.inc(1);

        let epoch_of = |i: usize| i * s.batch / n;
        if epoch_of(it + 1) > epoch_of(it) || it + 1 == iterations {
            let entry = EpochLog {
                epoch: epoch_of(it + 1).max(1),
                iteration: it + 1,
                lr,
                loss: epoch_losses.iter().sum::<f64>() / epoch_losses.len() as f64,
                test_acc: evaluate(net),
                seconds: t0.elapsed().as_secs_f64(),
            };
            if !bar.is_hidden() {
                bar.println(format!("{}: epoch {} loss {:.4} scored {}", cfg.name, entry.epoch, entry.loss, entry.test_acc.map_or("-".into(), |a| format!("{a:.3}"))));
            } else {
                eprintln!("{}: epoch {} iteration {} loss {:.4} lr {:.0e} scored {} ({:.0} s)", cfg.name, entry.epoch, entry.iteration, entry.loss, lr, entry.test_acc.map_or("-".into(), |a| format!("{a:.3}")), entry.seconds);
            }
            append_log(&log_path, &entry)?;
            log.push(entry);
            epoch_losses.clear();
        }
        checkpoint::save(&ckpt_path, net, &sgd.history, swa.as_ref(), it + 1, &epoch_losses)?;
    }
    bar.finish_and_clear();
    if end == iterations {
        if let Some((mean, _)) = swa {
            net.params = mean;
        }
    }
    Ok(log)
}

/// The mean of `k` snapshots updated with one more.
fn running_mean(mean: Params, next: &Params, k: usize) -> Params {
    let w = 1.0 / (k + 1) as f64;
    mean.into_iter().zip(next).map(|(m, n)| m.into_iter().zip(n).map(|(m, n)| m.clone() + (n.clone() - m).mul_scalar(w)).collect()).collect()
}

/// Parameters on the training device; learnable blobs with a non-zero rate
/// require gradients, the rest (frozen layers, BatchNorm statistics) are constants.
fn track(net: &Net, layer_rates: &[f64], device: &Device) -> Params {
    net.spec
        .layers
        .iter()
        .zip(&net.params)
        .zip(layer_rates)
        .map(|((layer, blobs), &layer_rate)| {
            blobs
                .iter()
                .enumerate()
                .map(|(b, t)| {
                    let t = t.clone().to_device(device).autodiff();
                    if layer.kind.is_learnable() && layer.param_mult(b).lr_mult != 0.0 && layer_rate != 0.0 {
                        t.require_grad()
                    } else {
                        t
                    }
                })
                .collect()
        })
        .collect()
}

/// Mean softmax cross-entropy of N × K logits (N × K × 1 × 1) against class
/// indices, each target smoothed (Szegedy et al. 2016) to `1 − smoothing`
/// on its class plus `smoothing / K` on every class; 0: the plain one-hot.
pub fn cross_entropy(logits: Tensor<4>, labels: &[usize], smoothing: f64, device: &Device) -> Tensor<1> {
    let [n, k, _, _] = logits.dims();
    let logp = log_softmax(logits.reshape([n, k]), 1);
    let mut target = vec![(smoothing / k as f64) as f32; n * k];
    for (i, &y) in labels.iter().enumerate() {
        target[i * k + y] += (1.0 - smoothing) as f32;
    }
    let target = Tensor::<2>::from_data(TensorData::new(target, [n, k]), device);
    (logp * target).sum().mul_scalar(-1.0 / n as f64)
}

fn rewrite_log(path: &Path, log: &[EpochLog]) -> Result<()> {
    let mut text = String::new();
    for e in log {
        text.push_str(&serde_json::to_string(e)?);
        text.push('\n');
    }
    Ok(crate::atomic_write::write(path, text)?)
}

fn append_log(path: &Path, e: &EpochLog) -> Result<()> {
    let mut f = std::fs::OpenOptions::new().append(true).create(true).open(path)?;
    writeln!(f, "{}", serde_json::to_string(e)?)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_with_and_without_smoothing_by_hand() {
        let device = Device::flex();
        // One image, logits (0, ln 3): P = (1/4, 3/4), class 1.
        let logits = || Tensor::<4>::from_data(TensorData::new(vec![0.0f32, 3f32.ln()], [1, 2, 1, 1]), &device);
        let plain = to_f32s(&cross_entropy(logits(), &[1], 0.0, &device))[0] as f64;
        assert!((plain + 0.75f64.ln()).abs() < 1e-6, "{plain}");
        // Smoothing 0.2 over 2 classes: targets (0.1, 0.9).
        let smoothed = to_f32s(&cross_entropy(logits(), &[1], 0.2, &device))[0] as f64;
        let by_hand = -(0.1 * 0.25f64.ln() + 0.9 * 0.75f64.ln());
        assert!((smoothed - by_hand).abs() < 1e-6, "{smoothed} vs {by_hand}");
    }
}
