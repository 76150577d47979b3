//! Builds the cache component (`core/` for `wasm32-wasip2`) so that the host
//! can embed it: `cargo build` and `cargo test` need nothing but
//! `rustup target add wasm32-wasip2`.
//!
//! The nested cargo uses its own target directory (`target/wasm-component`):
//! sharing the outer one would deadlock on its lock.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("host/ sits in the workspace")
        .to_path_buf();
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

    let target_dir = env::var_os("NSCACHE_COMPONENT_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target").join("wasm-component"));
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(&cargo)
        .current_dir(&root)
        .args([
            "rustc",
            "--quiet",
            "-p",
            "nscache-core",
            "--lib",
            "--profile",
            "component",
            "--crate-type",
            "cdylib",
        ])
        .args(["--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .status()
        .unwrap_or_else(|e| panic!("could not run {cargo} to build the cache component: {e}"));
    if !status.success() {
        if !target_installed() {
            panic!(
                "the cache component needs the {TARGET} target: run `rustup target add {TARGET}`"
            );
        }
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

fn target_installed() -> bool {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok();
    sysroot.is_some_and(|o| {
        Path::new(String::from_utf8_lossy(&o.stdout).trim())
            .join("lib/rustlib")
            .join(TARGET)
            .exists()
    })
}
