//! One function per parser of untrusted input, taking raw bytes: what the
//! fuzzer (`fuzz/fuzz_targets/*.rs`, cargo-fuzz) and the corpus replay in
//! the tests (`tests/fuzz_corpus.rs`) both run. Each must return (an `Ok` or
//! an error, ignored here) for every input: a panic, an abort, a hang or a
//! runaway allocation is the bug the fuzzer looks for.

use deepsent::data::{folders, list_file};
use deepsent::experiment::Experiment;
use deepsent::model::caffe::{caffemodel, prototxt};
use deepsent::model::saved::SavedModel;
use deepsent::model::zoo::Arch;
use deepsent::model::{deep_compression, torch_checkpoint, NetSpec};
use deepsent::preprocess::decode::decode_bytes;
use deepsent::preprocess::DEFAULT_MAX_PIXELS;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The largest single allocation a parser may make on any input.
pub const MAX_ALLOCATION: usize = 2 << 30;

/// The system allocator, aborting on any single request over
/// [`MAX_ALLOCATION`]: the fuzz targets' global allocator. libFuzzer's own
/// `-malloc_limit_mb` needs a sanitizer's hooks, and its RSS limit misses a
/// huge allocation that is reserved but not yet touched.
pub struct Capped;

unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

fn check(size: usize) {
    if size > MAX_ALLOCATION {
        // No formatting here: it could allocate.
        std::process::abort();
    }
}

/// Every target, by name (the names of `fuzz/fuzz_targets/*.rs` and of the corpus folders).
pub const TARGETS: [(&str, fn(&[u8])); 9] = [
    ("prototxt", prototxt),
    ("caffemodel", caffemodel),
    ("deep_compression", deep_compression),
    ("torch_pickle", torch_pickle),
    ("safetensors_model", safetensors_model),
    ("label_file", label_file),
    ("csv_dataset", csv_dataset),
    ("experiment_toml", experiment_toml),
    ("image", image),
];

pub fn prototxt(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = prototxt::parse(text, "fuzz.prototxt");
    }
}

pub fn caffemodel(bytes: &[u8]) {
    let _ = caffemodel::decode(bytes, "fuzz.caffemodel");
}

pub fn deep_compression(bytes: &[u8]) {
    let _ = deep_compression::decode(bytes, squeezenet(), "fuzz.net");
}

pub fn torch_pickle(bytes: &[u8]) {
    let path = scratch("fuzz.pth", bytes);
    if let Ok(tensors) = torch_checkpoint::read_state_dict(&path) {
        let _ = torch_checkpoint::weights_for_spec(tensors, efficientnet(), "fuzz.pth");
    }
}

pub fn safetensors_model(bytes: &[u8]) {
    let _ = SavedModel::load(&scratch("fuzz.safetensors", bytes));
}

pub fn label_file(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = list_file::parse(Path::new("fuzz.txt"), text);
    }
}

pub fn csv_dataset(bytes: &[u8]) {
    let _ = folders::load_csv(&scratch("fuzz.csv", bytes), &mut Vec::new());
}

pub fn experiment_toml(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = Experiment::parse(text, Path::new("fuzz.toml"));
    }
}

pub fn image(bytes: &[u8]) {
    let _ = decode_bytes(bytes, Path::new("fuzz.img"), DEFAULT_MAX_PIXELS);
}

fn squeezenet() -> &'static NetSpec {
    static SPEC: OnceLock<NetSpec> = OnceLock::new();
    SPEC.get_or_init(|| Arch::SqueezeNet10.spec().expect("the built-in spec parses"))
}

fn efficientnet() -> &'static NetSpec {
    static SPEC: OnceLock<NetSpec> = OnceLock::new();
    SPEC.get_or_init(|| Arch::EfficientNetLite0.spec().expect("the built-in spec parses"))
}

/// `bytes` written to a file of this process (for the parsers that read a
/// path), in a temporary folder that lives as long as the process.
fn scratch(name: &str, bytes: &[u8]) -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    let path = DIR.get_or_init(|| tempfile::tempdir().expect("a temporary folder")).path().join(name);
    std::fs::write(&path, bytes).expect("writing the input");
    path
}
