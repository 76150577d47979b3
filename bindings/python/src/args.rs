//! Python arguments into the library's types: TTLs, user ids, settings.

use std::time::Duration;

use nscache::{CacheError, Expiry, Settings};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt, PyString};

use crate::errors::{InvalidArgument, to_py};

/// The type of `nscache.DEFAULT`: "the cache's default TTL".
#[pyclass(frozen, module = "nscache")]
pub(crate) struct DefaultTtl;

#[pymethods]
impl DefaultTtl {
    fn __repr__(&self) -> &'static str {
        "nscache.DEFAULT"
    }
}

/// A `ttl` argument: `DEFAULT`, `None` (never expires) or seconds (>= 0).
#[derive(Debug, Clone, Copy)]
pub(crate) enum TtlArg {
    Default,
    Never,
    Secs(f64),
}

impl<'a, 'py> FromPyObject<'a, 'py> for TtlArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'a, 'py, PyAny>) -> PyResult<TtlArg> {
        if obj.is_none() {
            Ok(TtlArg::Never)
        } else if obj.is_instance_of::<DefaultTtl>() {
            Ok(TtlArg::Default)
        } else if obj.is_instance_of::<PyBool>() {
            Err(pyo3::exceptions::PyTypeError::new_err(
                "ttl must be nscache.DEFAULT, None or a number of seconds, not a bool",
            ))
        } else {
            Ok(TtlArg::Secs(obj.extract::<f64>()?))
        }
    }
}

impl TtlArg {
    /// The expiry this argument means; `default_never`: the cache was made
    /// with `default_ttl=None`.
    pub(crate) fn expiry(self, default_never: bool) -> PyResult<Expiry> {
        match self {
            TtlArg::Default if default_never => Ok(Expiry::Never),
            TtlArg::Default => Ok(Expiry::Default),
            TtlArg::Never => Ok(Expiry::Never),
            // Zero expires at once (the write removes the key), as in the library.
            TtlArg::Secs(0.0) => Ok(Expiry::After(Duration::ZERO)),
            TtlArg::Secs(secs) => Ok(Expiry::After(positive_secs("ttl", secs)?)),
        }
    }
}

/// `secs` as a duration: finite and more than zero.
pub(crate) fn positive_secs(what: &str, secs: f64) -> PyResult<Duration> {
    if secs.is_finite() && secs > 0.0 && secs < 1e12 {
        Ok(Duration::from_secs_f64(secs))
    } else {
        Err(InvalidArgument::new_err(format!(
            "{what} must be a number of seconds more than zero, not {secs}"
        )))
    }
}

/// A user id: a string, or an int used as its decimal string.
pub(crate) fn user_id(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = obj.cast::<PyString>() {
        Ok(s.to_str()?.to_owned())
    } else if obj.is_instance_of::<PyInt>() && !obj.is_instance_of::<PyBool>() {
        Ok(obj.str()?.to_str()?.to_owned())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a user id is a str or an int, not {}",
            obj.get_type().name()?
        )))
    }
}

/// A setting value given from Python, as the environment would give it.
pub(crate) fn setting_text(value: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(b) = value.cast::<PyBool>() {
        Ok(if b.is_true() { "true" } else { "false" }.to_owned())
    } else if let Ok(s) = value.cast::<PyString>() {
        Ok(s.to_str()?.to_owned())
    } else if value.is_instance_of::<PyInt>() {
        Ok(value.str()?.to_str()?.to_owned())
    } else if let Ok(f) = value.extract::<f64>() {
        // Rust prints floats without an exponent, as the parser wants them.
        Ok(f.to_string())
    } else {
        Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "a setting is a str, int, float or bool, not {}",
            value.get_type().name()?
        )))
    }
}

/// Settings being built from Python options, each through the one parser
/// the environment and the server's command line use (`Settings::set`).
pub(crate) struct SettingsArgs(pub(crate) Settings);

impl SettingsArgs {
    /// Set option `name` (the CLI's name, `_` allowed for `-`) unless `value` is None.
    pub(crate) fn set(&mut self, name: &str, value: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        match value {
            Some(value) if !value.is_none() => {
                let text = setting_text(value)?;
                self.0.set(&name.replace('_', "-"), &text).map_err(to_py)
            }
            _ => Ok(()),
        }
    }

    /// The settings, validated.
    pub(crate) fn finish(self) -> PyResult<Settings> {
        self.0.validate().map_err(to_py)?;
        Ok(self.0)
    }
}

/// A Redis URL, or `memory://` for the embedded store (`None`).
pub(crate) fn store_url(url: &str) -> Result<Option<String>, CacheError> {
    match url.split_once("://") {
        Some(("memory", "")) => Ok(None),
        Some(("redis" | "rediss" | "unix" | "redis+unix", _)) => Ok(Some(url.to_owned())),
        _ => Err(CacheError::Config(format!(
            "{} is not a redis:// or memory:// URL",
            nscache::settings::redact_url(url)
        ))),
    }
}
