//! The component's type, read with wasmtime: exactly the `nscache:cache`
//! imports and exports of `wit/world.wit`, nothing from WASI, and a host
//! that refuses a component of another WIT version.

use nscache::COMPONENT_WASM;
use nscache::wit_version::{self, IncompatibleComponent};
use wasmtime::component::Component;
use wasmtime::{Config, Engine};

fn engine() -> Engine {
    Engine::new(&Config::new()).expect("engine")
}

fn names<'a, T>(list: impl Iterator<Item = (&'a str, T)>) -> Vec<String> {
    let mut names: Vec<String> = list.map(|(name, _)| name.to_string()).collect();
    names.sort();
    names
}

#[test]
fn imports_exactly_the_four_nscache_interfaces_and_nothing_from_wasi() {
    let engine = engine();
    let component = Component::new(&engine, COMPONENT_WASM).expect("the component compiles");
    let ty = component.component_type();
    assert_eq!(
        names(ty.imports(&engine)),
        [
            "nscache:cache/atomics@0.1.0",
            "nscache:cache/batch@0.1.0",
            "nscache:cache/profiles@0.1.0",
            "nscache:cache/store@0.1.0",
            // Shared types, imported because the imports above use them.
            "nscache:cache/types@0.1.0",
        ]
    );
    assert_eq!(
        names(ty.exports(&engine)),
        [
            "nscache:cache/cache@0.1.0",
            "nscache:cache/config@0.1.0",
            "nscache:cache/invalidation@0.1.0",
            "nscache:cache/locks@0.1.0",
            "nscache:cache/queries@0.1.0",
        ]
    );
    // Not even a name: no `wasi:` string anywhere in the binary.
    assert!(
        !COMPONENT_WASM.windows(5).any(|w| w == b"wasi:"),
        "the component mentions a WASI interface"
    );
}

#[test]
fn a_component_of_another_wit_version_is_refused_with_a_clear_error() {
    let engine = engine();
    // The same component with every `@0.1.0` renamed `@0.2.0` (same length,
    // so the binary stays valid): what a newer nscache would ship.
    let from = b"nscache:cache/";
    let mut newer = COMPONENT_WASM.to_vec();
    let mut renamed = 0;
    let mut i = 0;
    while i + from.len() < newer.len() {
        if &newer[i..i + from.len()] == from {
            let rest = &newer[i + from.len()..];
            let at = rest
                .iter()
                .position(|&b| b == b'@')
                .expect("a versioned name");
            let version = i + from.len() + at + 1;
            if &newer[version..version + 5] == b"0.1.0" {
                newer[version..version + 5].copy_from_slice(b"0.2.0");
                renamed += 1;
            }
        }
        i += 1;
    }
    assert!(renamed >= 10, "renamed only {renamed} names");
    let component = Component::new(&engine, &newer).expect("still a valid component");
    let err = wit_version::check(&engine, &component).unwrap_err();
    assert!(
        matches!(err, IncompatibleComponent::Version { .. }),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains("nscache:cache@0.2.0") && message.contains("nscache:cache@0.1.x"),
        "{message}"
    );
    // The component the host embeds passes the same check.
    let ours = Component::new(&engine, COMPONENT_WASM).expect("compiles");
    assert_eq!(wit_version::check(&engine, &ours), Ok(()));
}
