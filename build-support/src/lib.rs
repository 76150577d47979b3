//! What the workspace's build scripts share (`host/build.rs` builds the cache
//! component, `ui/build.rs` the admin UI's browser bundle): a nested cargo
//! build of one workspace crate for a wasm target, and the target itself.
//!
//! **Targets install themselves.** A machine with only rustup's stable
//! toolchain has no wasm targets, and rustup does not add the `targets` of
//! `rust-toolchain.toml` to a toolchain that is already installed. So before
//! a nested build, [`ensure_target`] looks for the target in the sysroot of
//! the compiler cargo runs and, when it is missing and rustup manages that
//! compiler, runs `rustup target add` for that very toolchain (once, under a
//! lock, whatever the number of build scripts asking at the same time). The
//! README's first commands then work with nothing typed before them.
#![deny(missing_docs)]

use std::env;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root of the crate whose build script is running.
pub fn workspace_root() -> PathBuf {
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .expect("every crate sits one level below the workspace root")
        .to_path_buf()
}

/// The sysroot of the compiler cargo uses for this build.
fn sysroot() -> Option<PathBuf> {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// True when the standard library for `target` is installed.
pub fn target_installed(target: &str) -> bool {
    sysroot().is_some_and(|root| root.join("lib/rustlib").join(target).join("lib").is_dir())
}

/// Make sure `target` is installed for the toolchain of this build: add it
/// with rustup if it is missing. `why` says what needs it, for the messages.
///
/// Panics with the command to run by hand when it cannot be added (no rustup,
/// no network).
pub fn ensure_target(target: &str, why: &str) {
    if target_installed(target) {
        return;
    }
    // Build scripts of several crates may ask at once: one rustup at a time.
    let lock_path = workspace_root()
        .join("target")
        .join(".rustup-target-add.lock");
    let _ = std::fs::create_dir_all(lock_path.parent().expect("a parent"));
    let lock = File::create(&lock_path).ok();
    if let Some(file) = &lock {
        let _ = file.lock();
    }
    if target_installed(target) {
        return; // another build script added it while we waited
    }
    let toolchain = env::var("RUSTUP_TOOLCHAIN").ok();
    let mut rustup = Command::new(env::var("RUSTUP").unwrap_or_else(|_| "rustup".into()));
    rustup.args(["target", "add", target]);
    if let Some(toolchain) = &toolchain {
        rustup.args(["--toolchain", toolchain]);
    }
    let added = rustup
        .current_dir(workspace_root())
        .status()
        .is_ok_and(|s| s.success());
    let by_hand = match &toolchain {
        Some(t) => format!("rustup target add {target} --toolchain {t}"),
        None => format!("rustup target add {target}"),
    };
    if !added || !target_installed(target) {
        panic!(
            "{why} needs the {target} target, which is not installed and could not be added: run `{by_hand}`"
        );
    }
    println!("cargo:warning=installed the {target} target for {why} (`{by_hand}`)");
}

/// A `cargo` command for a nested build of this workspace, with the outer
/// build's flags and wrappers removed. Give it its own `--target-dir`:
/// sharing the outer one would deadlock on cargo's lock.
pub fn nested_cargo(root: &Path) -> Command {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET");
    command
}
