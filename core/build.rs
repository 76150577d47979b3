//! The component's bindings (`wit_bindgen::generate!` in `src/component.rs`)
//! are generated from `../wit` at compile time, and the macro does not tell
//! cargo so: without this, a changed WIT file would leave a stale component.

// The build script runs on the build machine, not in the component: its
// output is how it talks to cargo (`clippy.toml`'s bans are for the guest).
#![allow(clippy::disallowed_macros)]

fn main() {
    println!("cargo:rerun-if-changed=../wit");
    println!("cargo:rerun-if-changed=build.rs");
}
