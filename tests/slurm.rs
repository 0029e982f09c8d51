//! The Slurm scripts on a real cluster: `scripts/slurm/submit.sh` runs the
//! tiny study (20 real Twitter images, 15 jobs) as an array of at most 2
//! tasks at once, then assembles the report, whose numbers must be those of
//! one process. CI starts a one-node cluster first
//! (`scripts/slurm/local-cluster.sh`); elsewhere the test runs where `sinfo`
//! answers and says it was skipped where it does not.

mod common;

use std::path::Path;
use std::process::Command;

fn cluster_up() -> bool {
    Command::new("sinfo").args(["-h", "-o", "%t"]).output().is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).lines().any(|s| s.starts_with("idle") || s.starts_with("mix")))
}

#[test]
fn a_study_runs_as_a_slurm_array_with_the_numbers_of_one_process() {
    if !cluster_up() {
        assert!(std::env::var("CI").is_err(), "CI starts a one-node Slurm cluster (.ci/run), but sinfo shows no idle node");
        eprintln!("skipped: no Slurm cluster answers (scripts/slurm/local-cluster.sh starts one)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let exp = common::tiny_study(dir.path());
    let one = dir.path().join("one-process");
    let status = common::deepsent().args(["reproduce", "--quick", "--eval-batch", "8"]).arg(&exp).arg("--out").arg(&one).output().unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));

    let report = dir.path().join("slurm");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/submit.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(&exp)
        .arg(&report)
        .args(["--quick", "--eval-batch", "8"])
        .env("DEEPSENT", env!("CARGO_BIN_EXE_deepsent"))
        .env("PARALLEL", "2")
        .env("WAIT", "1")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let logs = || std::fs::read_dir(report.join("slurm")).map(|d| d.filter_map(|e| e.ok()).map(|e| format!("{}:\n{}", e.path().display(), std::fs::read_to_string(e.path()).unwrap_or_default())).collect::<Vec<_>>().join("\n")).unwrap_or_default();
    assert!(out.status.success(), "submit.sh failed: {said}\n{}", logs());
    assert!(said.contains("15 jobs, at most 2 at once"), "{said}");

    // Every array task ran as Slurm's (the worker is named by its array task),
    // each job exactly once.
    let mut ran = Vec::new();
    for k in 0..15 {
        let log = std::fs::read_to_string(report.join(format!("slurm/job-{k}.out"))).unwrap_or_else(|e| panic!("task {k}'s log: {e}\n{}", logs()));
        ran.extend(log.lines().filter(|l| l.starts_with("[job ")).map(|l| {
            assert!(l.contains("(slurm "), "{l}");
            l.split(' ').nth(2).unwrap().to_string()
        }));
    }
    ran.sort();
    let mut unique = ran.clone();
    unique.dedup();
    assert_eq!((ran.len(), unique.len()), (15, 15), "{ran:?}");
    assert_eq!(common::report_numbers(&report), common::report_numbers(&one), "the Slurm run changed the numbers");
}
