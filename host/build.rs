//! Builds the cache component (`core/` for `wasm32-wasip2`) so that the host
//! can embed it: `cargo build` needs nothing else (the target is added with
//! rustup when it is missing, see `nscache-build`).
//!
//! The nested cargo uses its own target directory (`target/wasm-component`):
//! sharing the outer one would deadlock on its lock.

use std::env;
use std::path::PathBuf;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let root = nscache_build::workspace_root();
    for path in [
        "wit",
        "core/src",
        "core/Cargo.toml",
        "Cargo.toml",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(path).display());
    }
    println!("cargo:rerun-if-env-changed=NSCACHE_COMPONENT_TARGET_DIR");
    nscache_build::ensure_target(TARGET, "the cache component");

    let target_dir = env::var_os("NSCACHE_COMPONENT_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm-component"));
    let status = nscache_build::nested_cargo(&root)
        .args([
            "rustc",
            "--quiet",
            "-p",
            "nscache-core",
            "--lib",
            "--profile",
            "component",
        ])
        .args(["--crate-type", "cdylib", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .status()
        .unwrap_or_else(|e| panic!("could not run cargo to build the cache component: {e}"));
    if !status.success() {
        panic!("building the cache component (core/ for {TARGET}) failed: see the errors above");
    }
    let wasm = target_dir
        .join(TARGET)
        .join("component")
        .join("nscache_core.wasm");
    assert!(
        wasm.exists(),
        "the component build produced no {}",
        wasm.display()
    );
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("nscache_cache.wasm");
    std::fs::copy(&wasm, &out)
        .unwrap_or_else(|e| panic!("copying {} to {}: {e}", wasm.display(), out.display()));
    println!("cargo:rustc-env=NSCACHE_COMPONENT_WASM={}", out.display());
}
