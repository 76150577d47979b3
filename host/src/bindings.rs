//! The one `bindgen!` of the host: Rust types and traits for `wit/`.
//!
//! Imports are `async` (they do I/O on the store) and return plain values:
//! a backend failure is an `store-error` value for the guest, never a trap.

wasmtime::component::bindgen!({
    world: "cache-component",
    path: "../wit",
    imports: { default: async },
    exports: { default: async },
});
