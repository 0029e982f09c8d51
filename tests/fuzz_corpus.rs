//! The fuzz targets (`fuzz/targets.rs`) on their seed corpus
//! (`fuzz/corpus/<target>/`) and on a bounded number of deterministic
//! mutations of it: what CI runs of the fuzzing, in seconds and without a
//! nightly compiler. The long runs (a million inputs per target, libFuzzer)
//! are `scripts/fuzz.sh`; every crash they find is added to the corpus, so
//! it is replayed here from then on.

#[allow(dead_code)] // the fuzz binaries' allocator
#[path = "../fuzz/targets.rs"]
mod targets;

use rand::{Rng, SeedableRng};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn corpus_dir(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target)
}

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir(target)).unwrap_or_else(|e| panic!("{}: {e}", corpus_dir(target).display())).map(|e| e.unwrap().path()).collect();
    files.sort();
    files.into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

/// One random edit of the kinds libFuzzer makes: flip a bit, set a byte to
/// an extreme, insert or delete a run, truncate, duplicate a slice.
fn mutate(bytes: &mut Vec<u8>, rng: &mut impl Rng) {
    let n = bytes.len();
    match rng.gen_range(0..6) {
        0 if n > 0 => bytes[rng.gen_range(0..n)] ^= 1 << rng.gen_range(0..8),
        1 if n > 0 => bytes[rng.gen_range(0..n)] = [0, 0x7f, 0x80, 0xff][rng.gen_range(0..4)],
        2 => {
            let at = rng.gen_range(0..=n);
            let run: Vec<u8> = (0..rng.gen_range(1..8)).map(|_| rng.gen()).collect();
            bytes.splice(at..at, run);
        }
        3 if n > 0 => {
            let at = rng.gen_range(0..n);
            let end = (at + rng.gen_range(1..16)).min(n);
            bytes.drain(at..end);
        }
        4 if n > 0 => bytes.truncate(rng.gen_range(0..n)),
        _ if n > 0 => {
            let at = rng.gen_range(0..n);
            let end = (at + rng.gen_range(1..64)).min(n);
            let copy = bytes[at..end].to_vec();
            let to = rng.gen_range(0..=n);
            bytes.splice(to..to, copy);
        }
        _ => bytes.push(rng.gen()),
    }
}

/// Replays the corpus of every target, then mutates it for a bounded time
/// per target; a panic names the target and the input's origin.
#[test]
fn every_parser_survives_its_corpus_and_mutations_of_it() {
    let budget = Duration::from_millis(std::env::var("DEEPSENT_FUZZ_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(1500));
    for (name, target) in targets::TARGETS {
        let seeds = corpus(name);
        assert!(!seeds.is_empty(), "fuzz/corpus/{name} has no seed");
        for (path, bytes) in &seeds {
            let t0 = Instant::now();
            target(bytes);
            assert!(t0.elapsed() < Duration::from_secs(10), "{name}: {} took {:?}", path.display(), t0.elapsed());
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let t0 = Instant::now();
        let mut runs = 0;
        while t0.elapsed() < budget {
            let (path, seed) = &seeds[runs % seeds.len()];
            let mut input = seed.clone();
            for _ in 0..rng.gen_range(1..5) {
                mutate(&mut input, &mut rng);
            }
            let result = std::panic::catch_unwind(|| target(&input));
            assert!(result.is_ok(), "{name}: a mutation of {} panicked; input (hex): {}", path.display(), hex::encode(&input));
            runs += 1;
        }
        eprintln!("{name}: {} seeds, {runs} mutations", seeds.len());
    }
}

/// Writes the generated seeds (tiny models in each format deepsent reads).
/// Run once, by hand, when a format changes:
/// `cargo test --release --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore]
fn write_seed_corpus() {
    use deepsent::model::caffe::{caffemodel, prototxt};
    use deepsent::model::saved::{ModelCard, SavedModel};
    let tiny = "name: \"tiny\"\ninput: \"data\"\ninput_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8\n\
        layer { name: \"conv1\" type: \"Convolution\" bottom: \"data\" top: \"conv1\" convolution_param { num_output: 4 kernel_size: 3 stride: 2 pad: 1 } }\n\
        layer { name: \"relu1\" type: \"ReLU\" bottom: \"conv1\" top: \"conv1\" }\n\
        layer { name: \"pool1\" type: \"Pooling\" bottom: \"conv1\" top: \"pool1\" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n\
        layer { name: \"fc\" type: \"InnerProduct\" bottom: \"pool1\" top: \"fc\" inner_product_param { num_output: 2 } }\n";
    let spec = prototxt::parse(tiny, "tiny").unwrap();
    let weights = deepsent::model::init::random_weights(&spec, 0);
    let write = |target: &str, name: &str, bytes: &[u8]| {
        std::fs::create_dir_all(corpus_dir(target)).unwrap();
        std::fs::write(corpus_dir(target).join(name), bytes).unwrap();
    };
    write("prototxt", "tiny.prototxt", tiny.as_bytes());
    write("caffemodel", "tiny.caffemodel", &caffemodel::encode_v1(&weights, &spec));
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("m.safetensors");
    let card = ModelCard { backbone: "tiny".into(), ..Default::default() };
    SavedModel { spec, weights, preprocess: deepsent::preprocess::Preprocess::caffe(8), card }.save(&model).unwrap();
    write("safetensors_model", "tiny.safetensors", &std::fs::read(&model).unwrap());
}
