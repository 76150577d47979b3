//! The component's bindings (`wit_bindgen::generate!` in `src/component.rs`)
//! are generated from `../wit` at compile time, and the macro does not tell
//! cargo so: without this, a changed WIT file would leave a stale component.

fn main() {
    println!("cargo:rerun-if-changed=../wit");
    println!("cargo:rerun-if-changed=build.rs");
}
