//! Datasets: the real Twitter counts and folds, and every bad-input case.

mod common;

use deepsent::data::{self, DataRequest, FoldSource, Label, Subset};
use deepsent::preprocess::{ImageCache, Preprocess};
use std::collections::HashSet;
use std::path::Path;

fn twitter(subset: Subset) -> data::Dataset {
    let req = DataRequest { root: common::twitter_root(), subset, folds: FoldSource::default(), extra_train: None };
    data::load(&req).into_result().expect("the real dataset has no problems")
}

#[test]
fn twitter_subsets_have_the_published_counts() {
    let five = twitter(Subset::Five);
    let c = five.all_counts();
    assert_eq!((c.images, c.positive, c.negative), (882, 581, 301));
    assert_eq!(twitter(Subset::Four).all_counts().images, 1116);
    assert_eq!(twitter(Subset::Three).all_counts().images, 1269);
}

#[test]
fn five_agree_folds_are_disjoint_and_cover_880_images() {
    let five = twitter(Subset::Five);
    assert_eq!(five.folds.len(), 5);
    let mut all_test = HashSet::new();
    // Counted independently with awk over the fold files.
    let expected = [(115, 61), (113, 63), (124, 52), (121, 55), (106, 70)];
    for (fold, (pos, neg)) in five.folds.iter().zip(expected) {
        assert_eq!((fold.train.len(), fold.test.len()), (704, 176));
        let test: HashSet<usize> = fold.test.iter().copied().collect();
        assert!(fold.train.iter().all(|i| !test.contains(i)));
        let t = five.counts(fold.test.iter().copied());
        assert_eq!((t.positive, t.negative), (pos, neg), "fold {}", fold.number);
        for i in test {
            assert!(all_test.insert(i), "test folds overlap");
        }
    }
    assert_eq!(all_test.len(), 880);
    // The two left out are positives (the dataset README says so).
    assert_eq!(five.left_out.len(), 2);
    assert!(five.left_out.iter().all(|&i| five.items[i].label == Label::Positive));
}

#[test]
fn data_check_json_on_the_real_dataset() {
    let out = common::deepsent()
        .args(["data", "check", "--json", "--root"])
        .arg(common::twitter_root())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["subsets"]["five"]["images"], 882);
    assert_eq!(v["subsets"]["five"]["positive"], 581);
    assert_eq!(v["folds"]["five"][0]["train"], 704);
    assert_eq!(v["folds"]["five"][4]["test_negative"], 70);
    assert_eq!(v["folds"]["four"].as_array().unwrap().len(), 5);
}

#[test]
fn extra_training_images_join_every_training_part_and_no_test_part() {
    let five = twitter(Subset::Five);
    let three = twitter(Subset::Three);
    let req = DataRequest { root: common::twitter_root(), subset: Subset::Five, folds: FoldSource::default(), extra_train: Some(Subset::Three) };
    let both = data::load(&req).into_result().expect("five + three has no problems");
    assert_eq!(both.name, "twitter/five+three");
    // 1,269 − 882 images on which only 3 or 4 of the 5 annotators agree.
    assert_eq!(both.items.len(), 1269);
    let five_names: HashSet<&str> = five.items.iter().map(|i| i.name.as_str()).collect();
    let extra: Vec<usize> = (0..both.items.len()).filter(|&i| !five_names.contains(both.items[i].name.as_str())).collect();
    assert_eq!(extra.len(), 387);
    let three_label: std::collections::HashMap<&str, Label> = three.items.iter().map(|i| (i.name.as_str(), i.label)).collect();
    assert!(extra.iter().all(|&i| three_label[both.items[i].name.as_str()] == both.items[i].label));
    let names = |ds: &data::Dataset, ix: &[usize]| ix.iter().map(|&i| ds.items[i].name.clone()).collect::<HashSet<_>>();
    for (f5, fb) in five.folds.iter().zip(&both.folds) {
        assert_eq!(names(&both, &fb.test), names(&five, &f5.test), "fold {}: the test part is the published one", fb.number);
        assert_eq!(fb.train.len(), 704 + 387);
        let train = names(&both, &fb.train);
        assert!(names(&five, &f5.train).is_subset(&train));
        assert!(extra.iter().all(|i| fb.train.contains(i) && !fb.test.contains(i)));
    }
    assert_eq!(names(&both, &both.left_out), names(&five, &five.left_out));
    let four = data::load(&DataRequest { extra_train: Some(Subset::Four), ..req.clone() }).into_result().unwrap();
    assert_eq!(four.folds[0].train.len(), 704 + (1116 - 882));
    // A subset no larger adds nothing: refused, not silently a no-op.
    let err = data::load(&DataRequest { extra_train: Some(Subset::Five), ..req }).into_result().unwrap_err().to_string();
    assert!(err.contains("twitter_five_agrees.txt") && err.contains("adds no images"), "{err}");
}

#[test]
fn an_extra_training_image_labelled_differently_is_a_problem_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    tiny_twitter(dir.path(), GOOD_LABELS, "d.png 0\ne.png 1\n", "a.png 1\nb.png 0\nc.png 1\n");
    std::fs::write(dir.path().join("ground_truth/twitter_three_agrees.txt"), "a.png 1\nb.png 1\nf.png 0\n").unwrap();
    let req = DataRequest { root: dir.path().to_path_buf(), subset: Subset::Five, folds: FoldSource::default(), extra_train: Some(Subset::Three) };
    let loaded = data::load(&req);
    let problems: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("twitter_three_agrees.txt:2") && problems[0].contains("b.png is positive here but negative"), "{problems:?}");
    // f.png, in three only, joined both training parts.
    let f = loaded.dataset.items.iter().position(|i| i.name == "f.png").unwrap();
    assert!(loaded.dataset.folds.iter().all(|fold| fold.train.contains(&f) && !fold.test.contains(&f)));
}

/// A small Twitter-layout dataset in a temp dir: images a..f, two folds.
fn tiny_twitter(dir: &Path, labels: &str, fold1_train: &str, fold1_test: &str) {
    for name in ["a", "b", "c", "d", "e", "f"] {
        common::write_png(&dir.join(format!("images/{name}.png")), 4, 4, [9, 9, 9]);
    }
    std::fs::create_dir_all(dir.join("ground_truth")).unwrap();
    std::fs::write(dir.join("ground_truth/twitter_five_agrees.txt"), labels).unwrap();
    let f = dir.join("folds/five_agree");
    for (k, train, test) in [(1, fold1_train, fold1_test), (2, "a.png 1\nb.png 0\nc.png 1\n", "d.png 0\ne.png 1\n")] {
        std::fs::create_dir_all(f.join(format!("fold{k}"))).unwrap();
        std::fs::write(f.join(format!("fold{k}/train.txt")), train).unwrap();
        std::fs::write(f.join(format!("fold{k}/test.txt")), test).unwrap();
    }
}

const GOOD_LABELS: &str = "a.png 1\nb.png 0\nc.png 1\nd.png 0\ne.png 1\n";

fn problems_of(dir: &Path) -> Vec<String> {
    let req = DataRequest { root: dir.to_path_buf(), subset: Subset::Five, folds: FoldSource::default(), extra_train: None };
    data::load(&req).problems.iter().map(|p| p.to_string()).collect()
}

#[test]
fn a_good_tiny_dataset_has_no_problems() {
    let dir = tempfile::tempdir().unwrap();
    tiny_twitter(dir.path(), GOOD_LABELS, "d.png 0\ne.png 1\n", "a.png 1\nb.png 0\nc.png 1\n");
    assert_eq!(problems_of(dir.path()), Vec::<String>::new());
    // A byte-order mark (as Windows editors write) is not part of the first name.
    let bom = tempfile::tempdir().unwrap();
    tiny_twitter(bom.path(), &format!("\u{feff}{GOOD_LABELS}"), "\u{feff}d.png 0\ne.png 1\n", "a.png 1\nb.png 0\nc.png 1\n");
    assert_eq!(problems_of(bom.path()), Vec::<String>::new());
}

/// A missing label file is the one problem reported, not the cause printed
/// after a "not in the label file" for every fold line.
#[test]
fn a_missing_label_file_is_the_only_problem_reported() {
    let dir = tempfile::tempdir().unwrap();
    tiny_twitter(dir.path(), GOOD_LABELS, "d.png 0\ne.png 1\n", "a.png 1\nb.png 0\nc.png 1\n");
    std::fs::remove_file(dir.path().join("ground_truth/twitter_five_agrees.txt")).unwrap();
    let problems = problems_of(dir.path());
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("twitter_five_agrees.txt: cannot read"), "{problems:#?}");
}

#[test]
fn each_bad_label_line_is_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let labels = "a.png 1\nb.png 0\nc.png 1\nd.png 0\ne.png 1\nmissing.png 1\nc.png 1\nf.png 7\nf.png\n";
    tiny_twitter(dir.path(), labels, "d.png 0\ne.png 1\n", "a.png 1\nb.png 0\nc.png 1\n");
    let problems = problems_of(dir.path());
    let want = [
        ("twitter_five_agrees.txt:6:", "missing.png not found"),
        ("twitter_five_agrees.txt:7:", "duplicate entry c.png (first at line 3)"),
        ("twitter_five_agrees.txt:8:", "label \"7\""),
        ("twitter_five_agrees.txt:9:", "garbled line"),
    ];
    assert_eq!(problems.len(), want.len(), "{problems:#?}");
    for (p, (loc, msg)) in problems.iter().zip(want) {
        assert!(p.contains(loc) && p.contains(msg), "{p} should name {loc} and say {msg}");
    }
}

#[test]
fn fold_problems_are_reported_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    // fold 1: d.png in train and test; e.png (in fold 2's test) missing from fold 1;
    // x.png unknown; b.png with the wrong label.
    tiny_twitter(dir.path(), GOOD_LABELS, "d.png 0\nx.png 1\n", "a.png 1\nb.png 1\nc.png 1\nd.png 0\n");
    let problems = problems_of(dir.path());
    let has = |loc: &str, msg: &str| problems.iter().any(|p| p.contains(loc) && p.contains(msg));
    assert!(has("fold1/train.txt:2:", "x.png is not in the dataset's label file"), "{problems:#?}");
    assert!(has("fold1/test.txt:2:", "b.png has label 1 here but 0"), "{problems:#?}");
    assert!(has("fold1/test.txt:4:", "d.png is in both train and test of fold 1"), "{problems:#?}");
    assert!(has("fold2/test.txt:1:", "d.png is also in the test part of fold 1 (line 4)"), "{problems:#?}");
    assert!(has("fold1/train.txt", "fold 1 does not cover the images of the other folds: 1 missing (e.png)"), "{problems:#?}");
}

#[test]
fn data_check_fails_on_any_problem() {
    let dir = tempfile::tempdir().unwrap();
    tiny_twitter(dir.path(), "a.png 1\nb.png 0\nc.png 1\nd.png 0\ne.png x\n", "d.png 0\n", "a.png 1\nb.png 0\nc.png 1\n");
    let out = common::deepsent().args(["data", "check", "--root"]).arg(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("twitter_five_agrees.txt:5: label \"x\""), "{text}");
}

#[test]
fn folder_layout_split_is_stratified_and_written_back() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..12 {
        common::write_png(&dir.path().join(format!("positive/p{i:02}.png")), 3, 3, [200, 0, 0]);
    }
    for i in 0..8 {
        common::write_png(&dir.path().join(format!("negative/sub/n{i:02}.jpg")), 3, 3, [0, 0, 200]);
    }
    std::fs::write(dir.path().join("positive/notes.txt"), "not an image").unwrap();
    let req = DataRequest { root: dir.path().to_path_buf(), subset: Subset::Five, folds: FoldSource::Drawn { k: 4, seed: 3 }, extra_train: None };
    let ds = data::load(&req).into_result().unwrap();
    assert_eq!(ds.items.len(), 20);
    assert!(ds.items.iter().any(|it| it.name == "negative/sub/n03.jpg"));
    for f in &ds.folds {
        let c = ds.counts(f.test.iter().copied());
        assert_eq!((c.positive, c.negative), (3, 2));
    }
    // Written out and read back, the split is the same.
    let folds_dir = dir.path().join("myfolds");
    data::split::write_folds(&folds_dir, &ds.items, &ds.folds).unwrap();
    let again = data::load(&DataRequest { folds: FoldSource::Dir(folds_dir), ..req.clone() }).into_result().unwrap();
    assert_eq!(again.folds, ds.folds);
    // Fewer than two folds is a problem that names the dataset, not a panic.
    for k in [0, 1] {
        let err = data::load(&DataRequest { folds: FoldSource::Drawn { k, seed: 3 }, ..req.clone() }).into_result().unwrap_err().to_string();
        assert!(err.contains(&format!("needs k ≥ 2 folds, not {k}")) && err.contains(&dir.path().display().to_string()), "{err}");
    }
}

#[test]
fn csv_layout_reports_bad_rows() {
    let dir = tempfile::tempdir().unwrap();
    common::write_png(&dir.path().join("img/a.png"), 3, 3, [1, 2, 3]);
    common::write_png(&dir.path().join("img/b.png"), 3, 3, [1, 2, 3]);
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "path,label\nimg/a.png,1\nimg/b.png,0\nimg/c.png,1\nimg/a.png,0\nimg/b.png,yes\n").unwrap();
    let loaded = data::load(&DataRequest { root: csv, subset: Subset::Five, folds: FoldSource::Drawn { k: 2, seed: 0 }, extra_train: None });
    let p: Vec<String> = loaded.problems.iter().map(|p| p.to_string()).collect();
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].contains("list.csv:4:") && p[0].contains("img/c.png not found"));
    assert!(p[1].contains("list.csv:5:") && p[1].contains("duplicate entry img/a.png"));
    assert!(p[2].contains("list.csv:6:") && p[2].contains("label \"yes\""));
}

/// `data check` reads every listed image's header: a CSV may list any file,
/// and one that is no image, or a decompression bomb, is a problem there,
/// not a failure hours later when training decodes it.
#[test]
fn data_check_refuses_listed_files_that_are_no_usable_image() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["a", "b", "c", "d"] {
        common::write_png(&dir.path().join(format!("img/{name}.png")), 3, 3, [1, 2, 3]);
    }
    std::fs::write(dir.path().join("img/hostname"), "myhost\n").unwrap();
    // A real PNG of 1 × 1 pixel whose header is edited to announce 20,000 × 20,000.
    let mut bomb = std::fs::read(dir.path().join("img/a.png")).unwrap();
    bomb[16..24].copy_from_slice(&[0, 0, 0x4e, 0x20, 0, 0, 0x4e, 0x20]);
    let crc = common::crc32(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.to_be_bytes());
    std::fs::write(dir.path().join("img/bomb.png"), bomb).unwrap();
    let csv = dir.path().join("list.csv");
    std::fs::write(&csv, "path,label\nimg/a.png,1\nimg/b.png,0\nimg/c.png,1\nimg/d.png,0\nimg/hostname,1\nimg/bomb.png,0\n").unwrap();
    let out = common::deepsent().args(["data", "check", "--k", "2", "--root"]).arg(&csv).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("2 problem(s)"), "{text}");
    assert!(text.contains("img/hostname: unsupported image format"), "{text}");
    assert!(text.contains("img/bomb.png: 20000×20000 = 400000000 pixels is above the limit"), "{text}");
}


#[test]
fn one_corrupt_image_among_good_ones_fails_the_whole_cache() {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for i in 0..5 {
        let p = dir.path().join(format!("{i}.png"));
        common::write_png(&p, 30, 20, [10 * i as u8, 0, 0]);
        paths.push(p);
    }
    std::fs::write(&paths[3], b"\x89PNG\r\n\x1a\nthis is not the rest of a PNG").unwrap();
    let err = ImageCache::build(&paths, &Preprocess::caffe(227), 1 << 26).err().expect("must fail");
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].path(), paths[3].as_path());
    assert!(err.to_string().contains("3.png: corrupt"), "{err}");

    paths.remove(3);
    let cache = ImageCache::build(&paths, &Preprocess::caffe(227), 1 << 26).unwrap();
    assert_eq!(cache.len(), 4);
    assert_eq!(cache.images[2].dimensions(), (256, 256));
    assert_eq!(cache.images[2].get_pixel(100, 100).0, [20, 0, 0]);
}

/// An image linked into a class folder counts like a copy (not skipped).
#[test]
fn folder_layout_follows_symbolic_links() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("elsewhere.png");
    common::write_png(&outside, 3, 3, [200, 0, 0]);
    common::write_png(&dir.path().join("data/positive/p.png"), 3, 3, [200, 0, 0]);
    std::os::unix::fs::symlink(&outside, dir.path().join("data/positive/linked.png")).unwrap();
    for i in 0..2 {
        common::write_png(&dir.path().join(format!("data/negative/n{i}.png")), 3, 3, [0, 0, 200]);
    }
    let ds = data::load(&DataRequest { root: dir.path().join("data"), subset: Subset::Five, folds: FoldSource::Drawn { k: 2, seed: 0 }, extra_train: None }).into_result().unwrap();
    assert!(ds.items.iter().any(|it| it.name == "positive/linked.png"), "{:?}", ds.items.iter().map(|i| &i.name).collect::<Vec<_>>());
    assert_eq!(ds.items.len(), 4);
}

/// An option that does not apply to the dataset's layout is refused with the
/// reason, never ignored: on the real Twitter root the published folds are
/// used whatever --k says, and a folder dataset has no agreement subsets.
#[test]
fn options_that_do_not_apply_to_the_layout_are_refused() {
    let run = |args: &[&str]| {
        let out = common::deepsent().args(args).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    let twitter = common::twitter_root();
    let twitter = twitter.to_str().unwrap();
    for flags in [&["--k", "3"][..], &["--split-seed", "7"], &["--folds", "/no/such/folder"]] {
        let mut args = vec!["data", "check", "--root", twitter];
        args.extend_from_slice(flags);
        let (code, err) = run(&args);
        assert_eq!(code, Some(1), "{flags:?}: {err}");
        assert!(err.contains("published folds") && err.contains(flags[0]), "{flags:?}: {err}");
    }
    let dir = tempfile::tempdir().unwrap();
    for (i, class) in ["positive", "negative", "positive", "negative"].iter().enumerate() {
        common::write_png(&dir.path().join(format!("{class}/{i}.png")), 3, 3, [9, 9, 9]);
    }
    let (code, err) = run(&["data", "check", "--subset", "four", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--subset applies only to the Twitter dataset"), "{err}");
    let (code, err) = run(&["data", "check", "--extra-train", "three", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--extra-train applies only to the Twitter dataset"), "{err}");
    // The same folder with the options that apply to it still works.
    let (code, err) = run(&["data", "check", "--k", "2", "--root", dir.path().to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = run(&["surgery", "--arch", "caffenet", "--weights", "/no/such.caffemodel"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--weights /no/such.caffemodel does not apply"), "{err}");
}
