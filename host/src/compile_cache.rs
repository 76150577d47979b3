//! The compiled component, kept on disk between processes.
//!
//! Compiling the component with Cranelift takes most of a CLI command's
//! time (tens of milliseconds); loading code compiled earlier takes about a
//! millisecond. Loading compiled code is `unsafe` in wasmtime — the file is
//! machine code that will run — so an artifact is only ever loaded when this
//! user wrote it:
//!
//! - the directory is created with mode 0700 and used only if it is owned by
//!   this user and nobody else can write to or read it;
//! - an artifact is written to a fresh temporary file (mode 0600, `O_EXCL`),
//!   synced, then renamed into place, so it is whole or absent;
//! - it is opened without following symbolic links and loaded only if it is
//!   a regular file owned by this user with no permission for others;
//! - its name holds the SHA-256 of the component and a hash of the engine's
//!   compatibility (wasmtime version, compiler settings, CPU features), so an
//!   artifact of another build is never even opened; wasmtime checks the same
//!   again when loading.
//!
//! Anything wrong (a foreign file, a corrupt one, a directory others can
//! write to) means compiling in memory, as without a cache.

use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// How the component came to be compiled (for tests and the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Loaded from an artifact written earlier.
    Loaded,
    /// Compiled now and written for next time.
    CompiledAndStored,
    /// Compiled now; not stored (no cache, or the cache is unusable).
    Compiled,
}

/// The component compiled for `engine`, loaded from `dir` when an artifact
/// this user wrote is there, else compiled (and stored there).
pub(crate) fn load_or_compile(
    engine: &Engine,
    wasm: &[u8],
    dir: Option<&Path>,
) -> Result<(Component, Origin), String> {
    let compile = || {
        Component::new(engine, wasm).map_err(|e| format!("compiling the cache component: {e:#}"))
    };
    let Some(dir) = dir else {
        return Ok((compile()?, Origin::Compiled));
    };
    #[cfg(unix)]
    {
        let path = match private_dir(dir) {
            Ok(()) => dir.join(artifact_name(engine, wasm)),
            Err(why) => {
                tracing::warn!(dir = %dir.display(), "compile cache not used: {why}");
                return Ok((compile()?, Origin::Compiled));
            }
        };
        match read_own_file(&path) {
            Ok(Some(bytes)) => {
                // SAFETY: the bytes come from a regular file that this user
                // wrote through `store` (owned by us, 0600, in a directory
                // only we can write to), named after this very component and
                // engine; wasmtime checks the header and compatibility again.
                match unsafe { Component::deserialize(engine, &bytes) } {
                    Ok(component) => return Ok((component, Origin::Loaded)),
                    Err(e) => tracing::warn!(
                        path = %path.display(),
                        "compiled component unusable, compiling again: {e:#}"
                    ),
                }
            }
            Ok(None) => {}
            Err(why) => tracing::warn!(path = %path.display(), "not loaded: {why}"),
        }
        let component = compile()?;
        let stored = component
            .serialize()
            .map_err(|e| e.to_string())
            .and_then(|bytes| store(&path, &bytes));
        match stored {
            Ok(()) => {
                prune(dir, &path);
                Ok((component, Origin::CompiledAndStored))
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), "compiled component not stored: {why}");
                Ok((component, Origin::Compiled))
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok((compile()?, Origin::Compiled))
    }
}

/// `component-{sha256 of the wasm}-{engine compatibility}.cwasm`.
fn artifact_name(engine: &Engine, wasm: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    use std::hash::Hash;

    /// Feeds whatever `Hash` writes into SHA-256: stable across Rust
    /// releases, unlike `DefaultHasher`.
    struct Sha(Sha256);
    impl std::hash::Hasher for Sha {
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
        fn finish(&self) -> u64 {
            unreachable!("only the digest is read")
        }
    }
    let mut compat = Sha(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut compat);
    let compat = compat.0.finalize();
    let wasm = Sha256::digest(wasm);
    format!("component-{}-{}.cwasm", hex(&wasm), hex(&compat[..8]))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The default directory: `$NSCACHE_COMPILE_CACHE`… is read by the settings;
/// this is `$XDG_CACHE_HOME/nscache`, else `~/.cache/nscache`.
pub(crate) fn default_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    var("XDG_CACHE_HOME")
        .map(|d| d.join("nscache"))
        .or_else(|| var("HOME").map(|h| h.join(".cache").join("nscache")))
}

#[cfg(unix)]
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Create `dir` (mode 0700) if missing; `Err` unless it is a directory owned
/// by this user that nobody else can write to or read.
#[cfg(unix)]
fn private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("creating it: {e}"))?;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("not a directory (a symbolic link is refused)".into());
    }
    ours_alone(&meta).map_err(|why| format!("{why} (chmod 700 it)"))
}

/// `Err` unless `meta` is owned by this user and gives others no access.
#[cfg(unix)]
fn ours_alone(meta: &std::fs::Metadata) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    if meta.uid() != euid() {
        return Err(format!("owned by uid {}, not by this user", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "mode {:o}: others have access",
            meta.mode() & 0o777
        ));
    }
    Ok(())
}

/// The bytes of `path` if it is a regular file owned by this user that
/// nobody else may touch; `Ok(None)` if there is none.
#[cfg(unix)]
fn read_own_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = match std::fs::OpenOptions::new()
        .read(true)
        // Not a link, and a FIFO planted there cannot block the start.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("opening it: {e}")),
    };
    // Checked on the open file, not the name: nothing can swap it in between.
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.is_file() {
        return Err("not a regular file".into());
    }
    ours_alone(&meta)?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    Ok(Some(bytes))
}

/// Artifacts kept besides the one in use: other builds of nscache on the
/// machine (each compiles its own once) without the directory growing with
/// every upgrade.
const KEEP_OTHERS: usize = 4;

/// Remove the oldest artifacts beyond [`KEEP_OTHERS`] (never `current`), and
/// temporary files a crashed writer left over an hour ago.
#[cfg(unix)]
fn prune(dir: &Path, current: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let now = std::time::SystemTime::now();
    let mut artifacts = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Ok(meta) = entry.metadata() else { continue };
        let modified = meta.modified().unwrap_or(now);
        let stale_tmp = name.starts_with(".component-")
            && name.ends_with(".tmp")
            && now
                .duration_since(modified)
                .is_ok_and(|age| age.as_secs() > 3600);
        if stale_tmp {
            let _ = std::fs::remove_file(&path);
        } else if name.starts_with("component-") && name.ends_with(".cwasm") && path != current {
            artifacts.push((modified, path));
        }
    }
    artifacts.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
    for (_, old) in artifacts.into_iter().skip(KEEP_OTHERS) {
        let _ = std::fs::remove_file(old);
    }
}

/// Write `bytes` to `path` atomically: a new 0600 file beside it, synced,
/// then renamed over `path`.
#[cfg(unix)]
fn store(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| e.to_string())?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("component");
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", hex(&nonce)));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e.to_string());
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn engine() -> Engine {
        Engine::new(&wasmtime::Config::new()).unwrap()
    }

    fn wasm() -> &'static [u8] {
        crate::runtime::COMPONENT_WASM
    }

    fn temp_dir(name: &str) -> PathBuf {
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce).unwrap();
        std::env::temp_dir().join(format!("nscache-cc-{name}-{}", hex(&nonce)))
    }

    fn artifact(dir: &Path, engine: &Engine) -> PathBuf {
        dir.join(artifact_name(engine, wasm()))
    }

    #[test]
    fn compiles_once_then_loads_a_private_artifact() {
        let engine = engine();
        let root = temp_dir("once");
        let dir = root.join("a/b");
        let (_, first) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(first, Origin::CompiledAndStored);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700, "the directory is private");
        assert_eq!(
            mode(&artifact(&dir, &engine)),
            0o600,
            "the artifact is private"
        );
        let (_, second) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(second, Origin::Loaded);
        // Only the artifact: no temporary file left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn a_file_others_could_have_written_is_never_loaded() {
        let engine = engine();
        let dir = temp_dir("foreign");
        load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        let path = artifact(&dir, &engine);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, origin) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(origin, Origin::CompiledAndStored, "recompiled and replaced");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        // A symbolic link in its place is not followed.
        let elsewhere = dir.join("elsewhere.cwasm");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(read_own_file(&path).is_err());
        let (_, origin) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(origin, Origin::CompiledAndStored);
        assert!(!std::fs::symlink_metadata(&path).unwrap().is_symlink());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_to_is_not_used() {
        let engine = engine();
        let dir = temp_dir("open");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (_, origin) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(origin, Origin::Compiled);
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "nothing written"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_corrupt_artifact_is_compiled_again() {
        let engine = engine();
        let dir = temp_dir("corrupt");
        load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        let path = artifact(&dir, &engine);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() / 2);
        std::fs::write(&path, &bytes).unwrap();
        let (_, origin) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(origin, Origin::CompiledAndStored);
        let (_, origin) = load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        assert_eq!(origin, Origin::Loaded);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn old_artifacts_are_pruned() {
        let engine = engine();
        let dir = temp_dir("prune");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        for i in 0..10 {
            std::fs::write(dir.join(format!("component-old{i}-x.cwasm")), b"old").unwrap();
        }
        std::fs::write(dir.join("unrelated.txt"), b"kept").unwrap();
        load_or_compile(&engine, wasm(), Some(&dir)).unwrap();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1 + KEEP_OTHERS + 1, "{names:?}");
        assert!(names.contains(&artifact_name(&engine, wasm())));
        assert!(names.contains(&"unrelated.txt".to_owned()));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn another_engine_configuration_uses_another_artifact() {
        let mut config = wasmtime::Config::new();
        config.cranelift_opt_level(wasmtime::OptLevel::None);
        let other = Engine::new(&config).unwrap();
        assert_ne!(
            artifact_name(&engine(), wasm()),
            artifact_name(&other, wasm())
        );
        assert_ne!(
            artifact_name(&engine(), wasm()),
            artifact_name(&engine(), b"\0asm")
        );
    }
}
