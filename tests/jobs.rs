//! A study split into jobs (`deepsent reproduce --plan / --job / --worker`)
//! on the tiny study (20 real Twitter images, SqueezeNet): workers share it
//! through the report directory, a killed worker's job is taken over once
//! its lease expires, and the report has the numbers of one process.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

fn reproduce(exp: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = common::deepsent();
    cmd.args(["reproduce", "--quick", "--eval-batch", "8"]).arg(exp).arg("--out").arg(out).args(extra);
    cmd
}

fn run_ok(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{cmd:?} failed:\n{stderr}");
    String::from_utf8_lossy(&out.stdout).to_string() + &stderr
}

fn plan(exp: &Path, out: &Path) -> Vec<serde_json::Value> {
    run_ok(reproduce(exp, out, &["--plan"])).lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn spawn_worker(exp: &Path, out: &Path, lease_s: &str, log: &Path) -> Child {
    reproduce(exp, out, &["--worker", "--lease-seconds", lease_s]).stdout(Stdio::null()).stderr(std::fs::File::create(log).unwrap()).spawn().unwrap()
}

fn lease_files(out: &Path) -> Vec<(PathBuf, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(out.join("jobs")) else { return Vec::new() };
    entries.filter_map(|e| e.ok()).filter(|e| e.file_name().to_string_lossy().contains(".lease.")).filter_map(|e| Some((e.path(), e.metadata().ok()?.created().or_else(|_| e.metadata()?.modified()).ok()?))).collect()
}

#[test]
fn workers_share_a_study_survive_a_killed_worker_and_give_the_numbers_of_one_process() {
    let dir = tempfile::tempdir().unwrap();
    let exp = common::tiny_study(dir.path());

    // The plan: every job after what it needs, nothing done yet.
    let one = dir.path().join("one-process");
    let jobs = plan(&exp, &one);
    let ids: Vec<&str> = jobs.iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(jobs.len(), 15, "{ids:?}"); // 2 folds × (2 points + fold) × 2 runs + 1 + 2 probe jobs
    for (i, j) in jobs.iter().enumerate() {
        assert_eq!(j["index"], i);
        assert_eq!(j["done"], false);
        for need in j["needs"].as_array().unwrap() {
            assert!(ids[..i].contains(&need.as_str().unwrap()), "{} needs {need}, planned after it", ids[i]);
        }
    }
    assert!(ids.contains(&"finetune/fold2/point2") && ids.contains(&"probe/fold1") && ids.contains(&"surgery/fire9-2/fold1"));

    // One process, as without a cluster.
    run_ok(reproduce(&exp, &one, &[]));
    let expected = common::report_numbers(&one);
    assert!(plan(&exp, &one).iter().all(|j| j["done"] == true));

    // One job by id, then by index: it brings what it needs, and no more.
    let by_job = dir.path().join("by-job");
    let log = run_ok(reproduce(&exp, &by_job, &["--job", "finetune/fold1"]));
    assert!(log.contains("finetune/fold1/point1") && log.contains("finetune/fold1/point2"), "{log}");
    let done: Vec<bool> = plan(&exp, &by_job).iter().map(|j| j["done"] == true).collect();
    assert_eq!(done.iter().filter(|&&d| d).count(), 3, "{done:?}");
    run_ok(reproduce(&exp, &by_job, &["--job", "6"])); // probe-pretrained
    assert_eq!(plan(&exp, &by_job)[6]["done"], true);
    let err = reproduce(&exp, &by_job, &["--job", "finetune/fold9"]).output().unwrap();
    assert!(!err.status.success() && String::from_utf8_lossy(&err.stderr).contains("no job \"finetune/fold9\""));

    // Two workers at once, then the plain command assembles the report.
    let two = dir.path().join("two-workers");
    let logs = [dir.path().join("a.log"), dir.path().join("b.log")];
    let mut workers: Vec<Child> = logs.iter().map(|log| spawn_worker(&exp, &two, "60", log)).collect();
    for w in &mut workers {
        assert!(w.wait().unwrap().success());
    }
    let ran: Vec<Vec<String>> = logs.iter().map(|l| std::fs::read_to_string(l).unwrap().lines().filter(|l| l.starts_with("[job ")).map(str::to_string).collect()).collect();
    assert_eq!(ran[0].len() + ran[1].len(), 15, "each job ran once: {ran:?}");
    assert!(!ran[0].is_empty() && !ran[1].is_empty(), "both workers worked: {ran:?}");
    run_ok(reproduce(&exp, &two, &[]));
    assert_eq!(common::report_numbers(&two), expected, "two workers changed the numbers");

    // A worker killed in the middle of a job: its lease stays behind, and a
    // second worker takes the job over once the lease expires.
    let killed = dir.path().join("killed");
    let mut victim = spawn_worker(&exp, &killed, "3", &dir.path().join("victim.log"));
    let t0 = Instant::now();
    let orphan = loop {
        assert!(t0.elapsed() < Duration::from_secs(180), "the worker never held a lease");
        // A lease held for 300 ms: the worker is inside that job (each takes over a second).
        if let Some((path, _)) = lease_files(&killed).into_iter().find(|(_, t)| t.elapsed().is_ok_and(|a| a > Duration::from_millis(300))) {
            victim.kill().unwrap();
            victim.wait().unwrap();
            if path.exists() {
                break path;
            }
            // The job ended just as the worker was killed: start another victim.
            victim = spawn_worker(&exp, &killed, "3", &dir.path().join("victim.log"));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let job = orphan.file_name().unwrap().to_string_lossy().split(".lease.").next().unwrap().replace('~', "/");
    let rescuer_log = dir.path().join("rescuer.log");
    assert!(spawn_worker(&exp, &killed, "3", &rescuer_log).wait().unwrap().success());
    let log = std::fs::read_to_string(&rescuer_log).unwrap();
    assert!(log.contains(&format!("] {job} (")), "the orphaned job {job} was not taken over:\n{log}");
    assert!(lease_files(&killed).is_empty(), "leases left behind");
    run_ok(reproduce(&exp, &killed, &[]));
    assert_eq!(common::report_numbers(&killed), expected, "the takeover changed the numbers");
}
