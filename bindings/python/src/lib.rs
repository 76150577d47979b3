//! `nscache._native`: the `nscache` library as a CPython extension module
//! (abi3, CPython >= 3.10). The package `nscache` (python/nscache/) re-exports
//! it; the type stubs (`__init__.pyi`) document the API.
//!
//! Every call releases the GIL while it waits; each process builds its own
//! runtime and cache on first use (see `process.rs`), so a cache created
//! before `fork()` works in the parent and in the child.

mod args;
mod cache;
mod errors;
mod keyspace;
mod process;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<cache::Cache>()?;
    m.add_class::<keyspace::Keyspace>()?;
    m.add_class::<args::DefaultTtl>()?;
    m.add("DEFAULT", Py::new(m.py(), args::DefaultTtl)?)?;
    errors::register(m)?;
    Ok(())
}
