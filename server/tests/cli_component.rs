//! `nscache component`: its help shows only what concerns it, and the file
//! it writes is the component with no WASI import.

use std::process::Command;

#[test]
fn component_help_shows_only_its_own_option() {
    let out = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(["component", "--help"])
        .output()
        .expect("run nscache");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("--out <FILE>"), "{help}");
    assert!(help.contains("nscache:cache@0.1.0"), "{help}");
    for unrelated in [
        "--redis-url",
        "--prefix",
        "--pool-size",
        "--data-dir",
        "Cache settings",
    ] {
        assert!(!help.contains(unrelated), "{unrelated} in:\n{help}");
    }
    // The other commands keep the settings in their help.
    let get = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(["get", "--help"])
        .output()
        .expect("run nscache");
    assert!(String::from_utf8_lossy(&get.stdout).contains("--redis-url"));
}

#[test]
fn component_out_writes_the_component_without_wasi() {
    let dir = std::env::temp_dir().join(format!("nscache-component-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("nscache.wasm");
    let out = Command::new(env!("CARGO_BIN_EXE_nscache"))
        .args(["component", "--out"])
        .arg(&path)
        .output()
        .expect("run nscache");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let wasm = std::fs::read(&path).expect("the file");
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(wasm, nscache::COMPONENT_WASM);
    // A component (layer 1), not a core module.
    assert_eq!(&wasm[..8], b"\0asm\x0d\0\x01\0");
    assert!(!wasm.windows(5).any(|w| w == b"wasi:"));
}
