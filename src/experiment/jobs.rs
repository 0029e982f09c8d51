//! A study as a set of independent jobs, so that several workers — processes
//! on one machine, or tasks of a Slurm array on many — can share it through
//! the report directory alone:
//!
//! ```text
//! finetune/fold1/point2    point 2 of fold 1's nested search (Table 1's run)
//! finetune/fold1           fold 1 trained with the chosen point, scored
//! probe-pretrained         Table 2 on the ImageNet model (one extraction for all folds)
//! probe/fold1              Table 2 on fold 1's fine-tuned model
//! surgery/fire9-2/fold1    a surgery variant's fold (and its points)
//! ```
//!
//! A job is done when its run files say so (a point's `score.json`, a fold's
//! `result.json`, a probe's `foldK.json`): the same files a single process
//! resumes from, so a study may be started by one command, continued by a
//! cluster and finished by the first command again. Each job is claimed
//! with a lease (`super::lease`) before it runs: two workers never run the
//! same job, and the job of a worker that died is taken over once its lease
//! expires (it resumes from the dead worker's last checkpoint).

use super::lease::{Claim, Holder, Leases};
use super::runner::Study;
use anyhow::{bail, Context, Result};
use serde::Serialize;
use std::time::Duration;

/// How long a lease lives without a heartbeat, unless set
/// (`--lease-seconds`): long enough for a loaded machine's pauses.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(120);

/// What a job does.
#[derive(Debug, Clone, PartialEq)]
pub enum Work {
    /// Point `point` (from 1) of the nested search of `run`'s fold `fold`.
    SearchPoint { run: usize, fold: usize, point: usize },
    /// Fold `fold` of `run` (index into `Study::runs`).
    Fold { run: usize, fold: usize },
    /// The probes of the pretrained model, every fold.
    ProbePretrained,
    /// The probes of Table 1's fine-tuned model of one fold.
    ProbeFinetuned { fold: usize },
}

#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Place in the plan (from 0): a Slurm array's task index.
    pub index: usize,
    pub id: String,
    /// Jobs that must be done before this one starts.
    pub needs: Vec<String>,
    #[serde(skip)]
    pub work: Work,
}

/// The jobs of a study in an order where every job comes after what it needs.
pub fn plan(study: &Study) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut push = |id: String, needs: Vec<String>, work: Work| {
        let index = jobs.len();
        jobs.push(Job { index, id, needs, work });
    };
    let fold_id = |run: usize, k: usize| format!("{}/fold{k}", study.runs[run].name);
    for (r, run) in study.runs.iter().enumerate() {
        let trained_by = study.crossval(run).search_trained_by();
        for &k in &study.folds {
            let point_ids: Vec<String> = (1..=trained_by.len()).map(|j| format!("{}/point{j}", fold_id(r, k))).collect();
            for (j, id) in point_ids.iter().enumerate() {
                // A point another one's training serves waits for it, then finds its score kept.
                let needs = if trained_by[j] == j + 1 { Vec::new() } else { vec![point_ids[trained_by[j] - 1].clone()] };
                push(id.clone(), needs, Work::SearchPoint { run: r, fold: k, point: j + 1 });
            }
            push(fold_id(r, k), point_ids, Work::Fold { run: r, fold: k });
        }
        // Table 2 right after Table 1, as the report orders them.
        if r == 0 {
            for pretrained in study.probe_kinds() {
                if pretrained {
                    push("probe-pretrained".into(), Vec::new(), Work::ProbePretrained);
                } else {
                    for &k in &study.folds {
                        push(format!("probe/fold{k}"), vec![fold_id(0, k)], Work::ProbeFinetuned { fold: k });
                    }
                }
            }
        }
    }
    jobs
}

/// Whether the job's files are there.
pub fn done(study: &Study, job: &Job) -> Result<bool> {
    let run_dir = |r: usize| crate::eval::run_dir::RunDir::new(&study.runs[r].dir);
    let finetune_probe_stem = |pretrained| run_dir(0).probe_stem(pretrained);
    Ok(match job.work {
        Work::SearchPoint { run, fold, point } => run_dir(run).fold(fold).search_score(point).exists(),
        Work::Fold { run, fold } => run_dir(run).fold(fold).result().exists(),
        Work::ProbePretrained => {
            let probe = study.probe(study.folds.clone());
            let stem = finetune_probe_stem(true);
            study.folds.iter().try_fold(true, |all, &k| Ok::<_, anyhow::Error>(all && probe.fold_done(&stem, k)?))?
        }
        Work::ProbeFinetuned { fold } => study.probe(vec![fold]).fold_done(&finetune_probe_stem(false), fold)?,
    })
}

/// Runs the job in this process (its needs must be done).
pub fn run(study: &Study, job: &Job) -> Result<()> {
    match job.work {
        Work::SearchPoint { run, fold, point } => {
            let r = &study.runs[run];
            study.crossval(r).run_search_point(&r.dir, fold, point)?;
        }
        Work::Fold { run, fold } => {
            let r = &study.runs[run];
            study.crossval(r).run_one_fold(&r.dir, fold)?;
        }
        Work::ProbePretrained | Work::ProbeFinetuned { .. } => {
            let pretrained = job.work == Work::ProbePretrained;
            let folds = match job.work {
                Work::ProbeFinetuned { fold } => vec![fold],
                _ => study.folds.clone(),
            };
            let ft = crate::eval::run_dir::RunDir::new(&study.runs[0].dir);
            let stem = ft.probe_stem(pretrained);
            let probe = study.probe(folds);
            match pretrained {
                true => probe.run(&crate::eval::probe::Models::Shared(&study.bench.backbone), &study.runs[0].config.backbone, &stem)?,
                false => probe.run(&crate::eval::probe::Models::PerFold(&ft.path), &study.runs[0].config.backbone, &stem)?,
            };
        }
    }
    Ok(())
}

/// Which jobs a worker takes.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every job of the study.
    All,
    /// One job (by id, or by its index in the plan) and whatever it needs.
    One(String),
}

/// The lease settings of a study's workers.
pub fn leases(study: &Study, duration: Duration) -> Leases {
    Leases::new(study.out.join("jobs"), duration)
}

/// Works on the target's jobs until they are all done: takes each job
/// whose needs are done and that no live lease holds, runs it, and when
/// every job left is held by another worker (or waits for one that is),
/// waits for them. Fails with the first job that fails (its lease is
/// dropped, so another worker may try it again).
pub fn work(study: &Study, target: &Target) -> Result<()> {
    work_with(study, target, &leases(study, study.options.lease), &Holder::this_process())
}

pub fn work_with(study: &Study, target: &Target, leases: &Leases, holder: &Holder) -> Result<()> {
    let all = plan(study);
    let wanted = wanted(&all, target)?;
    let poll = (leases.duration / 8).clamp(Duration::from_millis(200), Duration::from_secs(10));
    let mut waiting_said = false;
    loop {
        let mut pending = Vec::new();
        for job in all.iter().filter(|j| wanted.contains(&j.index)) {
            if !done(study, job)? {
                pending.push(job);
            }
        }
        if pending.is_empty() {
            return Ok(());
        }
        let is_pending = |id: &String| pending.iter().any(|p| &p.id == id);
        let mut ran = false;
        let mut held = Vec::new();
        for job in pending.iter().filter(|j| !j.needs.iter().any(is_pending)) {
            match leases.try_claim(&job.id, holder)? {
                Claim::Busy(h) => held.push(format!("{} ({})", job.id, h.worker)),
                Claim::Held(lease) => {
                    // Done meanwhile by the worker whose lease just ended.
                    if !done(study, job)? {
                        eprintln!("\n[job {}/{}] {} ({})", job.index + 1, all.len(), job.id, holder.worker);
                        run(study, job).with_context(|| format!("job {}", job.id))?;
                        if lease.lost() {
                            eprintln!("warning: job {} was taken over by another worker while this one ran it; both wrote the same files", job.id);
                        }
                    }
                    drop(lease);
                    leases.clear(&job.id);
                    ran = true;
                    waiting_said = false;
                    break;
                }
            }
        }
        if !ran {
            if !waiting_said {
                let blocked = pending.len() - held.len();
                eprintln!("waiting for other workers: {} running{}", held.join(", "), if blocked > 0 { format!(", {blocked} waiting for them") } else { String::new() });
                waiting_said = true;
            }
            std::thread::sleep(poll);
        }
    }
}

/// The plan indices the target covers: one job and, transitively, what it needs.
fn wanted(all: &[Job], target: &Target) -> Result<Vec<usize>> {
    let Target::One(which) = target else { return Ok((0..all.len()).collect()) };
    let first = match which.parse::<usize>() {
        Ok(i) => all.get(i).with_context(|| format!("the plan has {} jobs (0 to {}), not {i}", all.len(), all.len().saturating_sub(1)))?,
        Err(_) => match all.iter().find(|j| &j.id == which) {
            Some(j) => j,
            None => bail!("no job {which:?} in the plan (e.g. {}); `--plan` lists them", all.iter().take(3).map(|j| j.id.as_str()).collect::<Vec<_>>().join(", ")),
        },
    };
    let mut wanted = vec![first.index];
    let mut i = 0;
    while i < wanted.len() {
        for need in &all[wanted[i]].needs {
            let j = all.iter().find(|j| &j.id == need).expect("needs name planned jobs").index;
            if !wanted.contains(&j) {
                wanted.push(j);
            }
        }
        i += 1;
    }
    wanted.sort_unstable();
    Ok(wanted)
}

/// The plan as JSON lines, each with whether the job is done and who holds it.
pub fn plan_lines(study: &Study) -> Result<Vec<String>> {
    let leases = leases(study, study.options.lease);
    plan(study)
        .iter()
        .map(|job| {
            let mut v = serde_json::to_value(job)?;
            v["done"] = done(study, job)?.into();
            v["held_by"] = leases.holder(&job.id)?.map(|h| h.worker).into();
            Ok(serde_json::to_string(&v)?)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(index: usize, id: &str, needs: &[&str]) -> Job {
        Job { index, id: id.into(), needs: needs.iter().map(|s| s.to_string()).collect(), work: Work::ProbePretrained }
    }

    #[test]
    fn one_job_brings_what_it_needs() {
        let all = [job(0, "f/fold1/point1", &[]), job(1, "f/fold1/point2", &[]), job(2, "f/fold1", &["f/fold1/point1", "f/fold1/point2"]), job(3, "probe/fold1", &["f/fold1"]), job(4, "probe-pretrained", &[])];
        assert_eq!(wanted(&all, &Target::One("probe/fold1".into())).unwrap(), [0, 1, 2, 3]);
        assert_eq!(wanted(&all, &Target::One("4".into())).unwrap(), [4]);
        assert_eq!(wanted(&all, &Target::All).unwrap(), [0, 1, 2, 3, 4]);
        let err = wanted(&all, &Target::One("f/fold9".into())).unwrap_err().to_string();
        assert!(err.contains("no job \"f/fold9\"") && err.contains("--plan"), "{err}");
        assert!(wanted(&all, &Target::One("5".into())).unwrap_err().to_string().contains("0 to 4"));
    }
}
