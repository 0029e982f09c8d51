//! `deepsent reproduce` on a tiny experiment (20 real Twitter images,
//! SqueezeNet, a fraction of an epoch): the report is complete, an
//! interrupted run resumes without redoing finished folds, and the HTML
//! references only embedded data.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

fn experiment(dir: &Path) -> PathBuf {
    common::tiny_experiment(dir, "tiny", "base_lr = 1e-5", "[[surgery]]\nname = \"fire9-2\"\nbase_lr = 1e-6\n\n[[surgery]]\nname = \"conv10-1000\"")
}

fn reproduce(exp: &Path, out: &Path) -> std::process::Command {
    let mut cmd = common::deepsent();
    cmd.args(["reproduce", "--quick", "--eval-batch", "8"]).arg(exp).arg("--out").arg(out);
    cmd
}

/// scripts/check-report-html.sh, when a chromium is installed.
fn chromium_check() -> Option<impl Fn(&Path) -> std::process::Output> {
    let found = ["chromium", "chromium-browser", "google-chrome"].iter().any(|b| std::process::Command::new("sh").args(["-c", &format!("command -v {b}")]).output().is_ok_and(|o| o.status.success()));
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/check-report-html.sh");
    found.then(move || move |html: &Path| std::process::Command::new("bash").arg(&script).arg(html).output().unwrap())
}

fn mtime(p: &Path) -> SystemTime {
    std::fs::metadata(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())).modified().unwrap()
}

#[test]
fn interrupted_reproduce_resumes_and_writes_the_whole_report() {
    let dir = tempfile::tempdir().unwrap();
    let exp = experiment(dir.path());
    let out = dir.path().join("report");

    // Start, and stop it as soon as the first fold of Table 1 is done.
    let mut child = reproduce(&exp, &out).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let first = out.join("runs/finetune/fold1/result.json");
    let t0 = Instant::now();
    while !first.exists() {
        assert!(child.try_wait().unwrap().is_none(), "reproduce ended before fold 1 was done");
        assert!(t0.elapsed() < Duration::from_secs(600), "fold 1 never finished");
        std::thread::sleep(Duration::from_millis(200));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let first_bytes = std::fs::read(&first).unwrap();
    let first_time = mtime(&first);

    // Again: finishes, without redoing fold 1.
    let run = reproduce(&exp, &out).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(std::fs::read(&first).unwrap(), first_bytes);
    assert_eq!(mtime(&first), first_time, "fold 1 was redone");
    for f in ["index.md", "index.html", "results.json", "experiment.toml", "plots/training-finetune.png", "plots/confusion-finetune.png", "plots/probe.png", "plots/probe-pretrained.png", "plots/confusion-fire9-2.png"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    assert!(!out.join("runs/surgery/conv10-1000").exists(), "--quick ran a variant it should have left out");

    // The numbers: Table 1 over the two quick folds, probes for both layers,
    // the variant, the paper's figures beside ours.
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("results.json")).unwrap()).unwrap();
    assert_eq!(json["quick"], true);
    assert_eq!(json["table1"]["folds"].as_array().unwrap().len(), 2);
    // Measured at each fold's start and kept, so a fold resumed from its
    // checkpoint still reports it.
    assert!(json["table1"]["folds"].as_array().unwrap().iter().all(|f| f["acc_center_before"].is_f64()), "{}", json["table1"]["folds"]);
    let acc = json["table1"]["mean_oversample"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&acc));
    assert_eq!(json["probes"].as_array().unwrap().len(), 2);
    assert_eq!(json["probes"][0]["layers"].as_array().unwrap().len(), 4, "2 layers × 2 classifiers");
    assert_eq!(json["surgery"][0]["name"], "fire9-2");
    let confusion: usize = json["confusion_oversample"].as_array().unwrap().iter().flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize)).sum();
    let tested: usize = json["table1"]["folds"].as_array().unwrap().iter().map(|f| f["oversample"]["images"].as_u64().unwrap() as usize).sum();
    assert_eq!(confusion, tested, "every test image in the confusion matrix");
    let baseline = json["majority_baseline"].as_f64().unwrap();
    assert!((0.5..=1.0).contains(&baseline), "majority baseline {baseline}");
    let md = std::fs::read_to_string(out.join("index.md")).unwrap();
    for needle in ["Quick version", "Table 1", "0.830 ± 0.034", "Table 2", "Tables 3–4", "fire9-2", "Most confidently positive", "Worst mistakes", "```toml"] {
        assert!(md.contains(needle), "index.md lacks {needle:?}");
    }
    // Sample predictions name the dataset's own files, which a reader can open.
    let samples = &md[md.find("## Sample predictions").unwrap()..];
    let shown: Vec<&str> = samples.lines().filter(|l| l.starts_with("| `")).map(|l| l.split('`').nth(1).unwrap()).collect();
    assert!(!shown.is_empty());
    assert!(shown.iter().all(|p| Path::new(p).is_file()), "a sample is not a file: {shown:?}");

    // The HTML stands alone: every picture is embedded.
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    let srcs: Vec<&str> = html.split("src=\"").skip(1).map(|s| s.split('"').next().unwrap()).collect();
    assert!(srcs.len() >= 6, "{} pictures", srcs.len());
    assert!(srcs.iter().all(|s| s.starts_with("data:image/")), "a picture is not embedded: {:?}", srcs.iter().find(|s| !s.starts_with("data:")));
    assert!(!html.contains("href=\"/") && !html.contains("file://"), "the HTML links outside itself");
    // Each sample shown with its sentiment map from the fold model that held it out.
    let maps = html.matches("alt=\"sentiment map of ").count();
    assert!(maps >= shown.len() && !html.contains("no map:"), "{maps} maps for {} samples", shown.len());

    // Headless Chromium renders it with every picture (where chromium is
    // installed: .ci/run installs it), and catches a broken picture.
    if let Some(check) = chromium_check() {
        let ok = check(&out.join("index.html"));
        assert!(ok.status.success(), "{}{}", String::from_utf8_lossy(&ok.stdout), String::from_utf8_lossy(&ok.stderr));
        assert!(out.join("index-screenshot.png").is_file());
        let broken = out.join("broken.html");
        let i = html.find("data:image/png;base64,").unwrap() + "data:image/png;base64,".len();
        std::fs::write(&broken, format!("{}AAAA{}", &html[..i], &html[i + 200..])).unwrap();
        let bad = check(&broken);
        assert!(!bad.status.success(), "a broken picture passed the check");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("missing"), "{}", String::from_utf8_lossy(&bad.stderr));
    } else {
        eprintln!("chromium not installed: the rendering check is skipped");
    }

    // A third run finds everything complete.
    let index_time = mtime(&out.join("runs/finetune/fold2/result.json"));
    let again = reproduce(&exp, &out).output().unwrap();
    assert!(again.status.success());
    assert_eq!(mtime(&out.join("runs/finetune/fold2/result.json")), index_time);

    // Another experiment in the same directory is refused.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, std::fs::read_to_string(&exp).unwrap().replace("base_lr = 1e-6", "base_lr = 2e-6")).unwrap();
    let refused = reproduce(&other, &out).output().unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("another experiment"));
}

#[test]
fn experiment_files_are_checked_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "title = \"x\"\nbackbone = \"squeezenet1.0\"\n\n[finetune]\nepochs = \"many\"\n").unwrap();
    let out = common::deepsent().args(["reproduce"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.toml:5:"), "{err}");

    std::fs::write(&bad, "title = \"x\"\nbackbone = \"squeezenet1.0\"\n[[surgery]]\nname = \"fc7-2\"\n").unwrap();
    let out = common::deepsent().args(["reproduce"]).arg(&bad).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("bad.toml") && err.contains("fc7-2"), "{err}");
}

/// Every committed experiment file reads, and its recipes are valid (the
/// searched settings included), so `deepsent reproduce` does not fail hours in.
#[test]
fn every_committed_experiment_file_reads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let e = deepsent::experiment::Experiment::load(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            let recipe = e.finetune.recipe(&e.backbone).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            for point in deepsent::eval::search::grid(&deepsent::eval::search::parse_keys(e.finetune.search.as_deref().unwrap_or_default()).unwrap()) {
                deepsent::eval::search::apply(&recipe, &point).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            }
            read += 1;
        }
    }
    assert!(read >= 3, "read {read} experiment files");
}
