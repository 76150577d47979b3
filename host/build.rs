//! Builds the cache component so that the host can embed it: `cargo build`
//! needs nothing else (the target is added with rustup when it is missing,
//! see `nscache-build`).
//!
//! Two steps, both inside cargo:
//! 1. `core/` is compiled as a plain WebAssembly module for
//!    `wasm32-unknown-unknown`, a target without WASI: the module imports
//!    only what the WIT world `cache-component` declares (wit-bindgen's
//!    `component-type` custom section describes it).
//! 2. The `wit-component` library wraps that module into a component. The
//!    result imports exactly `nscache:cache/{store,batch,atomics,profiles}`,
//!    so any host can instantiate it without supplying WASI.
//!
//! The nested cargo uses its own target directory (`target/wasm-component`):
//! sharing the outer one would deadlock on its lock.

use std::env;
use std::path::PathBuf;

/// A target without WASI: std's clocks, randomness and stdio trap or do
/// nothing there, so the guest takes time only from the `store.now-micros`
/// import (core's `clippy.toml` forbids the std calls).
const TARGET: &str = "wasm32-unknown-unknown";

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
    let module_path = target_dir
        .join(TARGET)
        .join("component")
        .join("nscache_core.wasm");
    let module = std::fs::read(&module_path).unwrap_or_else(|e| {
        panic!(
            "the component build produced no {}: {e}",
            module_path.display()
        )
    });
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|encoder| encoder.validate(true).encode())
        .unwrap_or_else(|e| {
            panic!(
                "encoding {} as a component failed: {e:#}",
                module_path.display()
            )
        });
    // Beside the nested build, for other hosts (`nscache component --out`
    // writes the same bytes), and in OUT_DIR for `include_bytes!`.
    let shipped = target_dir.join("nscache_cache.wasm");
    let out =
        PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("nscache_cache.wasm");
    for path in [&shipped, &out] {
        std::fs::write(path, &component)
            .unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }
    println!("cargo:rustc-env=NSCACHE_COMPONENT_WASM={}", out.display());
}
