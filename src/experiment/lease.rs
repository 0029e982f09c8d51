//! Leases on the jobs of a study, kept as files in the report directory so
//! that workers on different machines need nothing but a shared filesystem.
//!
//! A job's lease is a series of generations, `ID.lease.1`, `ID.lease.2`, …,
//! each created with `O_EXCL` (`create_new`): of two workers that try to
//! create the same generation, exactly one succeeds, whatever the timing.
//! The holder of the newest generation keeps it alive by touching it (its
//! modification time is the heartbeat); a generation not touched for the
//! lease's duration has expired, and the next generation may be claimed —
//! again by exactly one worker. A worker that finds a newer generation than
//! its own has lost the job (it stalled past its lease) and says so.
//!
//! Why not `flock`: advisory locks are unreliable or absent on the network
//! filesystems clusters share (NFS, Lustre), and a killed worker's lock
//! must expire by time, not by the death of a process on another machine.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// Who holds a lease (written into its file, for people and for messages).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Holder {
    pub worker: String,
    pub host: String,
    pub pid: u32,
}

impl Holder {
    /// This process, named by `$SLURM_JOB_ID`/`$SLURM_ARRAY_TASK_ID` where
    /// Slurm runs it, else by host and pid.
    pub fn this_process() -> Holder {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| "localhost".into());
        let pid = std::process::id();
        let worker = match (std::env::var("SLURM_ARRAY_JOB_ID"), std::env::var("SLURM_ARRAY_TASK_ID"), std::env::var("SLURM_JOB_ID")) {
            (Ok(array), Ok(task), _) => format!("slurm {array}_{task}"),
            (_, _, Ok(job)) => format!("slurm {job}"),
            _ => format!("{host}:{pid}"),
        };
        Holder { worker, host, pid }
    }
}

/// The lease files of a study: `DIR/<job id, '/' as '~'>.lease.<generation>`.
#[derive(Debug, Clone)]
pub struct Leases {
    pub dir: PathBuf,
    /// A lease not touched for this long has expired.
    pub duration: Duration,
}

/// What a try to claim a job found.
#[derive(Debug)]
pub enum Claim {
    /// The job is this worker's until the guard is dropped.
    Held(Lease),
    /// Another worker holds it (its lease is alive).
    Busy(Holder),
}

impl Leases {
    pub fn new(dir: impl Into<PathBuf>, duration: Duration) -> Leases {
        Leases { dir: dir.into(), duration }
    }

    fn file(&self, job: &str, generation: u64) -> PathBuf {
        self.dir.join(format!("{}.lease.{generation}", job.replace('/', "~")))
    }

    /// The newest generation of `job`'s lease, if any was ever claimed.
    fn newest(&self, job: &str) -> Result<Option<u64>> {
        let prefix = format!("{}.lease.", job.replace('/', "~"));
        let mut newest = None;
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).with_context(|| format!("reading {}", self.dir.display())),
        };
        for entry in entries {
            let name = entry?.file_name();
            if let Some(g) = name.to_str().and_then(|n| n.strip_prefix(&prefix)).and_then(|g| g.parse::<u64>().ok()) {
                newest = newest.max(Some(g));
            }
        }
        Ok(newest)
    }

    /// Whether a live lease on `job` is held by someone (this process included).
    pub fn holder(&self, job: &str) -> Result<Option<Holder>> {
        let Some(g) = self.newest(job)? else { return Ok(None) };
        let path = self.file(job, g);
        Ok(if self.expired(&path) { None } else { read_holder(&path) })
    }

    fn expired(&self, path: &Path) -> bool {
        // A file gone between listing and reading counts as expired: its
        // generation is past, and the next create_new decides.
        let Ok(modified) = std::fs::metadata(path).and_then(|m| m.modified()) else { return true };
        SystemTime::now().duration_since(modified).is_ok_and(|age| age > self.duration)
    }

    /// Claims `job` for `holder` unless a live lease holds it.
    pub fn try_claim(&self, job: &str, holder: &Holder) -> Result<Claim> {
        std::fs::create_dir_all(&self.dir).with_context(|| format!("creating {}", self.dir.display()))?;
        let next = match self.newest(job)? {
            None => 1,
            Some(g) => {
                let path = self.file(job, g);
                if !self.expired(&path) {
                    return Ok(Claim::Busy(read_holder(&path).unwrap_or_else(|| holder_unknown())));
                }
                g + 1
            }
        };
        let path = self.file(job, next);
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(mut file) => {
                file.write_all(serde_json::to_string(holder)?.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
                Ok(Claim::Held(Lease::start(path, self.duration)))
            }
            // Another worker created this generation first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Claim::Busy(read_holder(&path).unwrap_or_else(|| holder_unknown()))),
            Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
        }
    }

    /// Removes every lease file of `job` (once it is done, nobody needs them).
    pub fn clear(&self, job: &str) {
        if let Ok(Some(newest)) = self.newest(job) {
            for g in 1..=newest {
                let _ = std::fs::remove_file(self.file(job, g));
            }
        }
    }
}

fn read_holder(path: &Path) -> Option<Holder> {
    std::fs::read_to_string(path).ok().and_then(|t| serde_json::from_str(&t).ok())
}

/// A lease whose file was created but not yet written (or was unreadable).
fn holder_unknown() -> Holder {
    Holder { worker: "another worker".into(), host: String::new(), pid: 0 }
}

/// A held lease: a thread touches its file every quarter of the lease's
/// duration until the guard is dropped.
#[derive(Debug)]
pub struct Lease {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicBool>,
    heartbeat: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn start(path: PathBuf, duration: Duration) -> Lease {
        let (stop, lost) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let heartbeat = {
            let (path, stop, lost) = (path.clone(), stop.clone(), lost.clone());
            std::thread::spawn(move || {
                let beat = duration / 4;
                let tick = Duration::from_millis(50).min(beat);
                let mut last = std::time::Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(tick);
                    if last.elapsed() < beat {
                        continue;
                    }
                    last = std::time::Instant::now();
                    // The file is gone or a newer generation exists: the job
                    // was taken over after this worker stalled past its lease.
                    let touched = OpenOptions::new().write(true).open(&path).and_then(|f| f.set_modified(SystemTime::now()));
                    if touched.is_err() || superseded(&path) {
                        lost.store(true, Ordering::Relaxed);
                        eprintln!("warning: lost the lease {} (another worker took the job over)", path.display());
                        return;
                    }
                }
            })
        };
        Lease { path, stop, lost, heartbeat: Some(heartbeat) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether another worker took the job over while this one held it.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed) || superseded(&self.path)
    }
}

/// Whether the generation after `path`'s exists.
fn superseded(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let Some((stem, g)) = name.rsplit_once('.') else { return false };
    g.parse::<u64>().is_ok_and(|g| path.with_file_name(format!("{stem}.{}", g + 1)).exists())
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.heartbeat.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(name: &str) -> Holder {
        Holder { worker: name.into(), host: "h".into(), pid: 1 }
    }

    #[test]
    fn one_worker_holds_a_job_and_a_live_lease_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let leases = Leases::new(dir.path(), Duration::from_millis(400));
        let Claim::Held(lease) = leases.try_claim("finetune/fold1", &holder("a")).unwrap() else { panic!("free job") };
        assert!(lease.path().ends_with("finetune~fold1.lease.1"));
        // The heartbeat keeps it alive well past its duration.
        std::thread::sleep(Duration::from_millis(1000));
        match leases.try_claim("finetune/fold1", &holder("b")).unwrap() {
            Claim::Busy(h) => assert_eq!(h.worker, "a"),
            Claim::Held(_) => panic!("a live lease was taken"),
        }
        assert_eq!(leases.holder("finetune/fold1").unwrap().unwrap().worker, "a");
        assert!(!lease.lost());
    }

    #[test]
    fn an_expired_lease_is_taken_over_by_exactly_one_worker() {
        let dir = tempfile::tempdir().unwrap();
        let leases = Leases::new(dir.path(), Duration::from_millis(300));
        let Claim::Held(first) = leases.try_claim("j", &holder("a")).unwrap() else { panic!() };
        // A worker that dies: its heartbeat stops, the file is no longer touched.
        first.stop.store(true, Ordering::Relaxed);
        drop(first);
        std::thread::sleep(Duration::from_millis(500));
        assert!(leases.holder("j").unwrap().is_none(), "expired");
        // Eight workers race for the expired job: one wins.
        let winners: Vec<bool> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8).map(|i| s.spawn({ let leases = &leases; move || matches!(leases.try_claim("j", &holder(&format!("w{i}"))).unwrap(), Claim::Held(_)) })).collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(winners.iter().filter(|&&w| w).count(), 1, "{winners:?}");
    }

    #[test]
    fn a_worker_that_stalled_past_its_lease_learns_it_lost_the_job() {
        let dir = tempfile::tempdir().unwrap();
        let leases = Leases::new(dir.path(), Duration::from_millis(200));
        let Claim::Held(stalled) = leases.try_claim("j", &holder("a")).unwrap() else { panic!() };
        // Simulate a stall: the heartbeat is stopped, time passes, b takes over.
        stalled.stop.store(true, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(400));
        let Claim::Held(_taken) = leases.try_claim("j", &holder("b")).unwrap() else { panic!("expired lease not taken over") };
        assert!(stalled.lost());
        leases.clear("j");
        assert!(leases.newest("j").unwrap().is_none());
    }
}
