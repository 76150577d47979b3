//! With the `bundle` feature: build this crate for the browser (feature
//! `hydrate`, target `wasm32-unknown-unknown`) and run wasm-bindgen on it,
//! leaving `$OUT_DIR/pkg/nscache_ui.js` and `nscache_ui_bg.wasm` for the
//! server to embed. Nothing is downloaded: wasm-bindgen is a library here,
//! pinned to the same version as the `wasm-bindgen` dependency.
//!
//! The nested cargo uses its own target directory (`target/wasm-ui`):
//! sharing the outer one would deadlock on its lock. Outer release builds
//! get the `wasm-release` profile (size-optimized, LTO); others the dev
//! profile, which builds faster.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "bundle")]
    bundle::build();
}

#[cfg(feature = "bundle")]
mod bundle {
    use std::env;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    const TARGET: &str = "wasm32-unknown-unknown";

    pub fn build() {
        let manifest_dir =
            PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
        let root = manifest_dir
            .parent()
            .expect("ui/ sits in the workspace")
            .to_path_buf();
        for path in ["ui/src", "ui/Cargo.toml", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", root.join(path).display());
        }
        println!("cargo:rerun-if-env-changed=NSCACHE_UI_TARGET_DIR");
        let target_dir = env::var_os("NSCACHE_UI_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target").join("wasm-ui"));
        let release = env::var("PROFILE").is_ok_and(|p| p == "release");
        let (profile, profile_dir) = if release {
            ("wasm-release", "wasm-release")
        } else {
            ("dev", "debug")
        };
        let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(&cargo)
            .current_dir(&root)
            .args([
                "rustc",
                "--quiet",
                "-p",
                "nscache-ui",
                "--lib",
                "--crate-type",
                "cdylib",
                "--no-default-features",
                "--features",
                "hydrate",
            ])
            .args(["--profile", profile, "--target", TARGET])
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
            .unwrap_or_else(|e| panic!("could not run {cargo} to build the UI bundle: {e}"));
        if !status.success() {
            if !target_installed() {
                panic!("the UI bundle needs the {TARGET} target: run `rustup target add {TARGET}`");
            }
            panic!("building the UI bundle (ui/ for {TARGET}) failed: see the errors above");
        }
        let wasm = target_dir
            .join(TARGET)
            .join(profile_dir)
            .join("nscache_ui.wasm");
        assert!(
            wasm.exists(),
            "the UI bundle build produced no {}",
            wasm.display()
        );
        let out = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("pkg");
        std::fs::create_dir_all(&out).unwrap_or_else(|e| panic!("creating {}: {e}", out.display()));
        wasm_bindgen_cli_support::Bindgen::new()
            .input_path(&wasm)
            .out_name("nscache_ui")
            .web(true)
            .and_then(|b| {
                b.typescript(false)
                    .remove_name_section(release)
                    .remove_producers_section(release)
                    .generate(&out)
            })
            .unwrap_or_else(|e| panic!("wasm-bindgen on {}: {e}", wasm.display()));
        for file in ["nscache_ui.js", "nscache_ui_bg.wasm"] {
            assert!(out.join(file).exists(), "wasm-bindgen produced no {file}");
        }
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
}
