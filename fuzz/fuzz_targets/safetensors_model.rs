#![no_main]

#[allow(dead_code)]
#[path = "../targets.rs"]
mod targets;

#[global_allocator]
static ALLOCATOR: targets::Capped = targets::Capped;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::safetensors_model(data));
