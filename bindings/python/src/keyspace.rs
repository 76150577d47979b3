//! `nscache.Keyspace`: the global keyspace or a user's namespace, and the
//! bridge that runs Python loaders for `get_or_set` and `query`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc;

use nscache::{CacheError, Expiry, GetOrSetError, Ttl};
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyBytes, PyDict};

use crate::args::TtlArg;
use crate::errors::{InternalError, to_py};
use crate::process::{Process, Shared};

/// A view on the global keyspace or on one user's namespace.
#[pyclass(frozen, module = "nscache")]
pub(crate) struct Keyspace {
    shared: Arc<Shared>,
    /// `None`: the global keyspace.
    user: Option<String>,
    /// The global key version (`None`: the cache's).
    version: Option<u64>,
}

/// A message from a `get_or_set`/`query` task to the Python thread waiting for it.
enum FromTask {
    /// Run the loader and send its result back.
    Load(tokio::sync::oneshot::Sender<PyResult<Vec<u8>>>),
    /// The answer.
    Done(Result<Vec<u8>, GetOrSetError<PyErr>>),
}

impl Keyspace {
    pub(crate) fn user(shared: Arc<Shared>, user: String) -> Keyspace {
        Keyspace {
            shared,
            user: Some(user),
            version: None,
        }
    }

    pub(crate) fn global(shared: Arc<Shared>, version: Option<u64>) -> Keyspace {
        Keyspace {
            shared,
            user: None,
            version,
        }
    }

    /// This keyspace in this process (building it on first use).
    fn keyspace(&self, process: &Process) -> Result<nscache::Keyspace, CacheError> {
        Ok(match &self.user {
            Some(user) => process.cache.user(user.as_str()),
            None => process.cache_for(self.version)?.global(),
        })
    }

    fn expiry(&self, ttl: TtlArg) -> PyResult<Expiry> {
        ttl.expiry(self.shared.default_never)
    }

    /// Run `op` on this keyspace in this process, with the GIL released.
    fn call<T, F, Fut>(&self, py: Python<'_>, op: F) -> PyResult<T>
    where
        T: Send,
        F: FnOnce(nscache::Keyspace) -> Fut + Send,
        Fut: Future<Output = Result<T, CacheError>>,
    {
        py.detach(|| {
            let process = self.shared.process()?;
            let keyspace = self.keyspace(&process)?;
            process.run(op(keyspace))
        })
        .map_err(to_py)
    }

    /// Run `op` (a `get_or_set`-like operation taking a loader) on the
    /// runtime's workers, and `loader` here, with the GIL, outside any lock
    /// and outside the runtime — so the loader may use the cache itself.
    /// The GIL is released while waiting.
    fn with_loader<F, Fut>(
        &self,
        py: Python<'_>,
        loader: &Bound<'_, PyAny>,
        op: F,
    ) -> PyResult<Py<PyBytes>>
    where
        F: FnOnce(nscache::Keyspace, LoadFromPython) -> Fut + Send,
        Fut: Future<Output = Result<Vec<u8>, GetOrSetError<PyErr>>> + Send + 'static,
    {
        let (to_caller, from_task) = mpsc::channel::<FromTask>();
        // Kept until the answer: a concurrent `close()` must not drop the
        // runtime under the task.
        let process = py
            .detach(|| -> Result<Arc<Process>, CacheError> {
                let process = self.shared.process()?;
                let load = LoadFromPython(to_caller.clone());
                let task = op(self.keyspace(&process)?, load);
                process.spawn(async move {
                    let result = task.await;
                    let _ = to_caller.send(FromTask::Done(result));
                });
                Ok(process)
            })
            .map_err(to_py)?;
        let answer = serve_loader(py, loader, from_task);
        // The last reference may be this one (after `close()`): drop it
        // without the GIL, as dropping a runtime waits for its threads.
        py.detach(move || drop(process));
        answer
    }
}

/// Run the loader each time the task asks, until it answers.
fn serve_loader(
    py: Python<'_>,
    loader: &Bound<'_, PyAny>,
    mut from_task: mpsc::Receiver<FromTask>,
) -> PyResult<Py<PyBytes>> {
    loop {
        // The receiver is `Send` but not `Sync`: move it in and out.
        let (message, receiver) = py.detach(move || (from_task.recv(), from_task));
        from_task = receiver;
        match message {
            Ok(FromTask::Load(reply)) => {
                let value = loader.call0().and_then(|v| {
                    v.extract::<PyBackedBytes>()
                        .map(|b| b.to_vec())
                        .map_err(|_| {
                            pyo3::exceptions::PyTypeError::new_err("the loader must return bytes")
                        })
                });
                let _ = reply.send(value);
            }
            Ok(FromTask::Done(Ok(value))) => return Ok(PyBytes::new(py, &value).unbind()),
            Ok(FromTask::Done(Err(GetOrSetError::Load(e)))) => return Err(e),
            Ok(FromTask::Done(Err(GetOrSetError::Cache(e)))) => return Err(to_py(e)),
            Err(_) => {
                return Err(InternalError::new_err(
                    "the cache task ended without an answer",
                ));
            }
        }
    }
}

/// A loader that asks the waiting Python thread to run the Python callable.
pub(crate) struct LoadFromPython(mpsc::Sender<FromTask>);

impl LoadFromPython {
    async fn load(self) -> PyResult<Vec<u8>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        if self.0.send(FromTask::Load(reply)).is_err() {
            return Err(InternalError::new_err("the waiting thread is gone"));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(InternalError::new_err("the loader was not run")))
    }
}

fn bytes(py: Python<'_>, value: Option<Vec<u8>>) -> Option<Py<PyBytes>> {
    value.map(|v| PyBytes::new(py, &v).unbind())
}

#[pymethods]
impl Keyspace {
    /// The user of this namespace; None for the global keyspace.
    #[getter]
    fn user_id(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// The value at `key`, or None on a miss.
    fn get(&self, py: Python<'_>, key: &str) -> PyResult<Option<Py<PyBytes>>> {
        let value = self.call(py, |ks| async move { ks.get(key).await })?;
        Ok(bytes(py, value))
    }

    /// The values found among `keys` (missing keys are absent).
    fn get_many<'py>(&self, py: Python<'py>, keys: Vec<String>) -> PyResult<Bound<'py, PyDict>> {
        let values = self.call(py, |ks| {
            let keys = &keys;
            async move { ks.get_many(keys).await }
        })?;
        let found = PyDict::new(py);
        for (key, value) in keys.iter().zip(values) {
            if let Some(value) = value {
                found.set_item(key, PyBytes::new(py, &value))?;
            }
        }
        Ok(found)
    }

    /// Store `value` at `key`.
    #[pyo3(signature = (key, value, ttl=TtlArg::Default))]
    fn set(&self, py: Python<'_>, key: &str, value: &[u8], ttl: TtlArg) -> PyResult<()> {
        let ttl = self.expiry(ttl)?;
        self.call(py, |ks| async move { ks.set(key, value, ttl).await })
    }

    /// Store every entry, atomically, with the same TTL.
    #[pyo3(signature = (mapping, ttl=TtlArg::Default))]
    fn set_many(
        &self,
        py: Python<'_>,
        mapping: HashMap<String, PyBackedBytes>,
        ttl: TtlArg,
    ) -> PyResult<()> {
        let ttl = self.expiry(ttl)?;
        let entries: Vec<(String, PyBackedBytes)> = mapping.into_iter().collect();
        self.call(py, |ks| async move { ks.set_many(&entries, ttl).await })
    }

    /// Store `value` only if `key` is absent. True if stored.
    #[pyo3(signature = (key, value, ttl=TtlArg::Default))]
    fn add(&self, py: Python<'_>, key: &str, value: &[u8], ttl: TtlArg) -> PyResult<bool> {
        let ttl = self.expiry(ttl)?;
        self.call(py, |ks| async move { ks.add(key, value, ttl).await })
    }

    /// Remove `key`. True if it existed.
    fn delete(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        self.call(py, |ks| async move { ks.delete(key).await })
    }

    /// Remove every key in `keys`; returns how many existed.
    fn delete_many(&self, py: Python<'_>, keys: Vec<String>) -> PyResult<u32> {
        self.call(py, |ks| async move { ks.delete_many(&keys).await })
    }

    /// True if `key` exists.
    fn has_key(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        self.call(py, |ks| async move { ks.has_key(key).await })
    }

    /// Add `delta` to the integer at `key`.
    #[pyo3(signature = (key, delta=1))]
    fn incr(&self, py: Python<'_>, key: &str, delta: i64) -> PyResult<i64> {
        self.call(py, |ks| async move { ks.incr(key, delta).await })
    }

    /// Subtract `delta` from the integer at `key`.
    #[pyo3(signature = (key, delta=1))]
    fn decr(&self, py: Python<'_>, key: &str, delta: i64) -> PyResult<i64> {
        self.call(py, |ks| async move { ks.decr(key, delta).await })
    }

    /// Give an existing key a new TTL. True if the key exists.
    #[pyo3(signature = (key, ttl=TtlArg::Default))]
    fn touch(&self, py: Python<'_>, key: &str, ttl: TtlArg) -> PyResult<bool> {
        let ttl = self.expiry(ttl)?;
        self.call(py, |ks| async move { ks.touch(key, ttl).await })
    }

    /// Seconds `key` has left: None if missing, math.inf if it never expires.
    fn ttl(&self, py: Python<'_>, key: &str) -> PyResult<Option<f64>> {
        let ttl = self.call(py, |ks| async move { ks.ttl(key).await })?;
        Ok(match ttl {
            Ttl::Missing => None,
            Ttl::Forever => Some(f64::INFINITY),
            Ttl::Remaining(d) => Some(d.as_secs_f64()),
        })
    }

    /// Remove the expiry of an existing key. True if the key exists.
    fn persist(&self, py: Python<'_>, key: &str) -> PyResult<bool> {
        self.call(py, |ks| async move { ks.persist(key).await })
    }

    /// The value at `key`; on a miss, call `loader()` and store its result
    /// (single-flight within the process).
    #[pyo3(signature = (key, loader, ttl=TtlArg::Default))]
    fn get_or_set(
        &self,
        py: Python<'_>,
        key: String,
        loader: &Bound<'_, PyAny>,
        ttl: TtlArg,
    ) -> PyResult<Py<PyBytes>> {
        let ttl = self.expiry(ttl)?;
        self.with_loader(py, loader, move |ks, load| async move {
            ks.get_or_set(&key, ttl, || load.load()).await
        })
    }

    /// The cached result of `query` with `params` over `tables`; on a miss,
    /// call `loader()` and store its result.
    #[pyo3(signature = (query, params, tables, loader, ttl=TtlArg::Default))]
    fn query(
        &self,
        py: Python<'_>,
        query: String,
        params: Vec<u8>,
        tables: Vec<String>,
        loader: &Bound<'_, PyAny>,
        ttl: TtlArg,
    ) -> PyResult<Py<PyBytes>> {
        let ttl = self.expiry(ttl)?;
        self.with_loader(py, loader, move |ks, load| async move {
            let tables: Vec<&str> = tables.iter().map(String::as_str).collect();
            ks.get_or_load(&query, &params, &tables, ttl, || load.load())
                .await
        })
    }

    fn __repr__(&self) -> String {
        match &self.user {
            Some(user) => format!("<nscache.Keyspace user={user:?}>"),
            None => match self.version {
                Some(v) => format!("<nscache.Keyspace global version={v}>"),
                None => "<nscache.Keyspace global>".to_owned(),
            },
        }
    }
}
