//! Which versions of the WIT package `nscache:cache` this host runs.
//!
//! **Policy** (also in the README and `wit/world.wit`): the package version
//! is semver over the contract, with the 0.x rule that the minor number is
//! the breaking one. A change that only rewords documentation bumps the
//! patch number; any change a host or guest can observe (a function, a
//! type, a field, an error case, the meaning of a call, or the storage key
//! layout) bumps the minor number before 1.0 (the major after). A host runs
//! a component whose package version has the same major.minor as the WIT it
//! was built from, whatever the patch; anything else is refused before
//! instantiation, with the two versions in the message, instead of failing
//! later on a missing export or misreading data.

use wasmtime::Engine;
use wasmtime::component::Component;

/// The WIT package this host was built from (`wit/`, declared in `types.wit`).
pub const PACKAGE: &str = "nscache:cache";

/// The version of [`PACKAGE`] this host was built from.
pub const VERSION: &str = "0.1.0";

/// Why a component cannot run on this host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IncompatibleComponent {
    /// The component speaks another version of the package.
    #[error(
        "the component implements {PACKAGE}@{found}, this host supports {PACKAGE}@{supported} \
         (same major.minor, any patch): use a component and host built from the same WIT version"
    )]
    Version {
        /// The version the component's imports and exports name.
        found: String,
        /// The range this host accepts, e.g. `0.1.x`.
        supported: String,
    },
    /// The component names several versions of the package at once.
    #[error("the component mixes versions of {PACKAGE}: {0}")]
    Mixed(String),
    /// The component has no `nscache:cache` export at all.
    #[error("not an nscache component: it exports nothing from {PACKAGE}")]
    NotNscache,
}

/// `major.minor` of a semver string, or the whole string if it has no dot.
fn series(version: &str) -> (&str, &str) {
    let mut parts = version.splitn(3, '.');
    (parts.next().unwrap_or(""), parts.next().unwrap_or(""))
}

/// The range of versions this host accepts, e.g. `0.1.x`.
pub fn supported_range() -> String {
    let (major, minor) = series(VERSION);
    format!("{major}.{minor}.x")
}

/// The `nscache:cache` version an import or export name carries
/// (`nscache:cache/store@0.1.0` → `0.1.0`, `""` when unversioned); `None`
/// for another package's name.
pub fn version_named(name: &str) -> Option<&str> {
    let rest = name.strip_prefix(PACKAGE)?.strip_prefix('/')?;
    Some(rest.split_once('@').map_or("", |(_, version)| version))
}

/// Check the `nscache:cache` version named by a component's imports and
/// exports (names like `nscache:cache/store@0.1.0`): every one must carry
/// the same version, of this host's major.minor.
pub fn check_names<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<(), IncompatibleComponent> {
    let mut versions: Vec<&str> = names.into_iter().filter_map(version_named).collect();
    versions.sort_unstable();
    versions.dedup();
    match versions.as_slice() {
        [] => Err(IncompatibleComponent::NotNscache),
        [found] if series(found) == series(VERSION) => Ok(()),
        [found] => Err(IncompatibleComponent::Version {
            found: if found.is_empty() {
                "(unversioned)".into()
            } else {
                (*found).to_string()
            },
            supported: supported_range(),
        }),
        several => Err(IncompatibleComponent::Mixed(several.join(", "))),
    }
}

/// Check a loaded component against this host's WIT version (see the module
/// documentation for the policy).
pub fn check(engine: &Engine, component: &Component) -> Result<(), IncompatibleComponent> {
    let ty = component.component_type();
    let imports: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    // Exports decide whether this is an nscache component at all.
    check_names(exports.iter().map(String::as_str))?;
    check_names(imports.iter().chain(&exports).map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_series_any_patch_is_accepted() {
        assert_eq!(
            check_names(["nscache:cache/cache@0.1.0", "nscache:cache/store@0.1.0"]),
            Ok(())
        );
        assert_eq!(check_names(["nscache:cache/cache@0.1.7"]), Ok(()));
    }

    #[test]
    fn another_minor_or_major_is_refused_with_both_versions() {
        for found in ["0.2.0", "1.1.0", ""] {
            let err = check_names([format!("nscache:cache/cache@{found}").as_str()]).unwrap_err();
            let message = err.to_string();
            assert!(message.contains("nscache:cache@0.1.x"), "{message}");
            assert!(
                matches!(err, IncompatibleComponent::Version { .. }),
                "{found}"
            );
        }
    }

    #[test]
    fn mixed_and_foreign_components_are_refused() {
        assert!(matches!(
            check_names(["nscache:cache/cache@0.1.0", "nscache:cache/store@0.2.0"]),
            Err(IncompatibleComponent::Mixed(_))
        ));
        assert_eq!(
            check_names(["wasi:cli/run@0.2.0"]),
            Err(IncompatibleComponent::NotNscache)
        );
    }

    #[test]
    fn the_wit_directory_declares_this_version() {
        let world = include_str!("../../wit/types.wit");
        assert!(
            world.contains(&format!("package {PACKAGE}@{VERSION};")),
            "wit/types.wit (the package line) and wit_version::VERSION disagree"
        );
    }
}
