//! The library's modules import only from their own layer of the pipeline
//! and those below it (scripts/check_layers.py names the order).

#[test]
fn no_module_imports_from_a_layer_above_it() {
    let out = std::process::Command::new("python3")
        .arg("scripts/check_layers.py")
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("python3 runs scripts/check_layers.py");
    assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no upward references"));
}
