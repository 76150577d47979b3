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
    use std::path::PathBuf;

    const TARGET: &str = "wasm32-unknown-unknown";

    pub fn build() {
        let root = nscache_build::workspace_root();
        for path in ["ui/src", "ui/Cargo.toml", "Cargo.toml", "Cargo.lock"] {
            println!("cargo:rerun-if-changed={}", root.join(path).display());
        }
        println!("cargo:rerun-if-env-changed=NSCACHE_UI_TARGET_DIR");
        nscache_build::ensure_target(TARGET, "the admin UI's browser bundle");
        let target_dir = env::var_os("NSCACHE_UI_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target").join("wasm-ui"));
        let release = env::var("PROFILE").is_ok_and(|p| p == "release");
        let (profile, profile_dir) = if release {
            ("wasm-release", "wasm-release")
        } else {
            ("dev", "debug")
        };
        let status = nscache_build::nested_cargo(&root)
            .args([
                "rustc",
                "--quiet",
                "-p",
                "nscache-ui",
                "--lib",
                "--crate-type",
                "cdylib",
            ])
            .args(["--no-default-features", "--features", "hydrate"])
            .args(["--profile", profile, "--target", TARGET])
            .arg("--target-dir")
            .arg(&target_dir)
            .status()
            .unwrap_or_else(|e| panic!("could not run cargo to build the UI bundle: {e}"));
        if !status.success() {
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
}
