//! `nscache.Cache`: the Python handle on a cache.

use std::sync::Arc;

use nscache::{CacheError, LockToken, Settings};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::args::{SettingsArgs, positive_secs, store_url, user_id};
use crate::errors::{profile_error, to_py};
use crate::keyspace::Keyspace;
use crate::process::Shared;

/// A cache handle. Construction connects to nothing and builds nothing:
/// each process builds its runtime and connections on its first call.
#[pyclass(frozen, module = "nscache")]
pub(crate) struct Cache {
    pub(crate) shared: Arc<Shared>,
}

impl Cache {
    fn new(settings: Settings, default_never: bool) -> Cache {
        Cache {
            shared: Arc::new(Shared::new(settings, default_never)),
        }
    }

    /// Run `op` on this process's cache with the GIL released.
    fn call<T, F, Fut>(&self, py: Python<'_>, op: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(nscache::Cache) -> Fut + Send,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        py.detach(|| {
            let process = self.shared.process()?;
            process.run(op(process.cache.clone()))
        })
        .map_err(to_py)
    }
}

#[pymethods]
impl Cache {
    /// A cache on Redis (`redis://...`) or on the embedded memory store
    /// (`memory://`). See the type stubs for every option.
    #[staticmethod]
    #[pyo3(signature = (
        url, *, key_prefix=None, key_version=None, namespace_root=None, default_ttl=Some(300.0),
        l1=false, l1_max_bytes=None, l1_ttl=None, pool_size=None, timeout=None,
        connect_timeout=None, max_key_bytes=None, max_value_bytes=None, max_reply_bytes=None,
        namespace_quota_bytes=None, max_namespace_ttl=None, memory_capacity=None,
        profiles_url=None, profile_table=None, profile_user_column=None,
        profile_flag_column=None, profile_max_age=None,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn from_url(
        url: &str,
        key_prefix: Option<&str>,
        key_version: Option<u64>,
        namespace_root: Option<&str>,
        default_ttl: Option<f64>,
        l1: bool,
        l1_max_bytes: Option<u64>,
        l1_ttl: Option<f64>,
        pool_size: Option<usize>,
        timeout: Option<f64>,
        connect_timeout: Option<f64>,
        max_key_bytes: Option<u32>,
        max_value_bytes: Option<u32>,
        max_reply_bytes: Option<u64>,
        namespace_quota_bytes: Option<u64>,
        max_namespace_ttl: Option<f64>,
        memory_capacity: Option<usize>,
        profiles_url: Option<&str>,
        profile_table: Option<&str>,
        profile_user_column: Option<&str>,
        profile_flag_column: Option<&str>,
        profile_max_age: Option<f64>,
    ) -> PyResult<Cache> {
        let mut settings = Settings {
            redis_url: store_url(url).map_err(to_py)?,
            l1,
            ..Settings::default()
        };
        let seconds = |what: &str, v: Option<f64>| -> PyResult<Option<String>> {
            v.map(|s| positive_secs(what, s).map(|d| d.as_secs_f64().to_string()))
                .transpose()
        };
        let default_ttl = match default_ttl {
            // Zero is allowed here: DEFAULT writes then store nothing.
            Some(0.0) => Some("0".to_owned()),
            other => seconds("default_ttl", other)?,
        };
        let options: [(&str, Option<String>); 20] = [
            ("prefix", key_prefix.map(str::to_owned)),
            ("key-version", key_version.map(|v| v.to_string())),
            ("namespace-root", namespace_root.map(str::to_owned)),
            ("default-ttl", default_ttl.clone()),
            ("l1-capacity", l1_max_bytes.map(|v| v.to_string())),
            ("l1-max-age", seconds("l1_ttl", l1_ttl)?),
            ("pool-size", pool_size.map(|v| v.to_string())),
            ("socket-timeout", seconds("timeout", timeout)?),
            (
                "connect-timeout",
                seconds("connect_timeout", connect_timeout)?,
            ),
            ("max-key-bytes", max_key_bytes.map(|v| v.to_string())),
            ("max-value-bytes", max_value_bytes.map(|v| v.to_string())),
            ("max-reply-bytes", max_reply_bytes.map(|v| v.to_string())),
            (
                "namespace-quota-bytes",
                namespace_quota_bytes.map(|v| v.to_string()),
            ),
            (
                "max-namespace-ttl",
                seconds("max_namespace_ttl", max_namespace_ttl)?,
            ),
            ("memory-capacity", memory_capacity.map(|v| v.to_string())),
            ("database-url", profiles_url.map(str::to_owned)),
            ("profile-table", profile_table.map(str::to_owned)),
            (
                "profile-user-column",
                profile_user_column.map(str::to_owned),
            ),
            (
                "profile-flag-column",
                profile_flag_column.map(str::to_owned),
            ),
            (
                "profile-max-age",
                seconds("profile_max_age", profile_max_age)?,
            ),
        ];
        for (name, value) in options {
            if let Some(value) = value {
                settings.set(name, &value).map_err(to_py)?;
            }
        }
        settings.validate().map_err(to_py)?;
        Ok(Cache::new(settings, default_ttl.is_none()))
    }

    /// A cache configured like the nscache server: option names as the CLI's.
    #[staticmethod]
    fn from_settings(options: &Bound<'_, PyDict>) -> PyResult<Cache> {
        let mut args = SettingsArgs(Settings::default());
        for (name, value) in options.iter() {
            let name: String = name.extract()?;
            args.set(&name, Some(&value))?;
        }
        Ok(Cache::new(args.finish()?, false))
    }

    /// A cache configured from the environment, like the nscache server.
    #[staticmethod]
    fn from_env() -> PyResult<Cache> {
        Ok(Cache::new(Settings::from_env().map_err(to_py)?, false))
    }

    /// A cache on the embedded memory store.
    #[staticmethod]
    fn memory() -> Cache {
        Cache::new(Settings::default(), false)
    }

    /// The global keyspace, with the cache's key version or `version`.
    #[pyo3(signature = (version=None))]
    fn global_(&self, version: Option<u64>) -> Keyspace {
        Keyspace::global(self.shared.clone(), version)
    }

    /// The namespace of `user`.
    fn user(&self, user: &Bound<'_, PyAny>) -> PyResult<Keyspace> {
        Ok(Keyspace::user(self.shared.clone(), user_id(user)?))
    }

    /// Take the global lock `key` for at most `timeout` seconds, with a
    /// fresh random token or `token`.
    #[pyo3(signature = (key, timeout, *, token=None))]
    fn lock(
        &self,
        py: Python<'_>,
        key: &str,
        timeout: f64,
        token: Option<&str>,
    ) -> PyResult<Option<String>> {
        let timeout = positive_secs("timeout", timeout)?;
        let token = token.map_or_else(LockToken::random, LockToken::from_owner);
        let taken = self.call(py, |c| {
            let token = &token;
            async move { c.lock_as(key, token, timeout).await }
        })?;
        Ok(taken.then(|| token.as_str().to_owned()))
    }

    /// Release the lock `key` if `token` holds it.
    fn unlock(&self, py: Python<'_>, key: &str, token: &str) -> PyResult<bool> {
        let token = LockToken::from_owner(token);
        self.call(py, |c| async move { c.unlock(key, &token).await })
    }

    /// Hide every entry of `user`'s namespace. Returns the new version.
    fn invalidate_user(&self, py: Python<'_>, user: &Bound<'_, PyAny>) -> PyResult<u64> {
        let user = user_id(user)?;
        self.call(py, |c| async move { c.invalidate_user(&user).await })
    }

    /// Hide every cached query over `table`. Returns its new version.
    fn invalidate_table(&self, py: Python<'_>, table: &str) -> PyResult<u64> {
        self.call(py, |c| async move { c.invalidate_table(table).await })
    }

    /// Hide every user namespace at once. Returns the new floor.
    fn invalidate_all(&self, py: Python<'_>) -> PyResult<u64> {
        self.call(py, |c| async move { c.invalidate_all().await })
    }

    /// The version of `user`'s namespace; None if it holds nothing.
    fn version_of(&self, py: Python<'_>, user: &Bound<'_, PyAny>) -> PyResult<Option<u64>> {
        let user = user_id(user)?;
        self.call(py, |c| async move { c.version_of(&user).await })
    }

    /// `user`'s cache_enabled flag (True without a profiles source).
    fn cache_enabled(&self, py: Python<'_>, user: &Bound<'_, PyAny>) -> PyResult<bool> {
        let user = user_id(user)?;
        self.call(py, |c| async move {
            c.profiles()
                .cache_enabled(&user)
                .await
                .map_err(profile_error)
        })
    }

    /// Round-trip time to the store, in seconds.
    fn ping(&self, py: Python<'_>) -> PyResult<f64> {
        self.call(py, |c| async move { c.ping().await })
            .map(|d| d.as_secs_f64())
    }

    /// This process's counters and latencies, Prometheus text.
    fn metrics(&self, py: Python<'_>) -> PyResult<String> {
        self.call(py, |c| async move { Ok(c.render_metrics()) })
    }

    /// Run the table watcher on `database_url` in this process (and, lazily,
    /// in forked children).
    fn watch_tables(&self, py: Python<'_>, database_url: &str) -> PyResult<()> {
        py.detach(|| self.shared.watch(database_url)).map_err(to_py)
    }

    /// Drop this process's runtime and connections.
    fn close(&self, py: Python<'_>) {
        py.detach(|| self.shared.close());
    }

    fn __repr__(&self) -> String {
        "<nscache.Cache>".to_owned()
    }
}
