//! Running the component: one compiled copy per process, and a pool of
//! instances so that calls run concurrently.
//!
//! A wasmtime instance runs one call at a time, so each call leases an idle
//! instance (or instantiates a new one, ~10–20 µs) and returns it when the
//! call completes. A call that traps, or whose future is dropped half-way,
//! takes its instance with it: an instance is never reused in an unknown state.

use std::path::Path;
use std::sync::{Mutex, OnceLock};

use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, OptLevel, Store};

use crate::bindings::exports::nscache::cache::config::Settings;
use crate::bindings::{CacheComponent, CacheComponentPre};
use crate::error::CacheError;
use crate::imports::HostState;

/// The cache component, built from `core/` (for `wasm32-unknown-unknown`,
/// then encoded as a component). It imports only the `nscache:cache`
/// interfaces `store`, `batch`, `atomics` and `profiles`, nothing from WASI:
/// load it in any component host together with the WIT in `wit/` (world
/// `cache-component`).
pub const COMPONENT_WASM: &[u8] = include_bytes!(env!("NSCACHE_COMPONENT_WASM"));

/// The component compiled for this process, with its imports linked.
struct Compiled {
    engine: Engine,
    pre: CacheComponentPre<HostState>,
}

fn compile(cache_dir: Option<&Path>) -> Result<Compiled, String> {
    let mut config = Config::new();
    config.cranelift_opt_level(OptLevel::Speed);
    let engine = Engine::new(&config).map_err(|e| format!("wasmtime engine: {e:#}"))?;
    let (component, origin) =
        crate::compile_cache::load_or_compile(&engine, COMPONENT_WASM, cache_dir)?;
    tracing::debug!(?origin, "cache component ready");
    crate::wit_version::check(&engine, &component).map_err(|e| e.to_string())?;
    // The component imports only `nscache:cache` interfaces (no WASI): the
    // generated `add_to_linker` covers every one of them.
    let mut linker = Linker::<HostState>::new(&engine);
    CacheComponent::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |state| state)
        .map_err(|e| format!("linking the imports: {e:#}"))?;
    let pre = linker
        .instantiate_pre(&component)
        .map_err(|e| format!("pre-instantiating: {e:#}"))?;
    let pre = CacheComponentPre::new(pre).map_err(|e| format!("component exports: {e:#}"))?;
    Ok(Compiled { engine, pre })
}

/// The process's compiled component; the first call compiles it (or loads it
/// from `cache_dir`), later calls share it whatever they pass.
fn compiled(cache_dir: Option<&Path>) -> Result<&'static Compiled, CacheError> {
    static COMPILED: OnceLock<Result<Compiled, String>> = OnceLock::new();
    COMPILED
        .get_or_init(|| compile(cache_dir))
        .as_ref()
        .map_err(|e| CacheError::Component(e.clone()))
}

/// The names the compiled component exports (`nscache:cache/config@0.1.0`,
/// …): it is compiled or loaded from `cache_dir` if this process has not yet
/// done so. The version after `@` is the WIT package's.
pub fn component_exports(cache_dir: Option<&Path>) -> Result<Vec<String>, CacheError> {
    let compiled = compiled(cache_dir)?;
    let component = compiled.pre.instance_pre().component();
    Ok(component
        .component_type()
        .exports(&compiled.engine)
        .map(|(name, _)| name.to_owned())
        .collect())
}

/// One instance of the component with its store.
pub(crate) struct Instance {
    pub store: Store<HostState>,
    pub api: CacheComponent,
}

/// Idle instances of the component, all bound to the same backends.
pub(crate) struct InstancePool {
    compiled: &'static Compiled,
    state: HostState,
    settings: Settings,
    idle: Mutex<Vec<Instance>>,
    max_idle: usize,
}

impl std::fmt::Debug for InstancePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InstancePool")
            .field("idle", &self.idle_count())
            .field("max_idle", &self.max_idle)
            .finish()
    }
}

/// Most bytes the guest may hand the host in one import call.
const HOSTCALL_FUEL: usize = 32 << 20;

/// The limits of one instance: its linear memory holds at most a reply of
/// `max_reply_bytes` a few times over (the values read, their copy in the
/// answer), plus the component's own needs.
pub(crate) fn instance_limits(max_reply_bytes: u64) -> wasmtime::StoreLimits {
    let reply = usize::try_from(max_reply_bytes).unwrap_or(usize::MAX);
    wasmtime::StoreLimitsBuilder::new()
        .memory_size((32usize << 20).saturating_add(reply.saturating_mul(3)))
        .instances(4)
        .trap_on_grow_failure(true)
        .build()
}

/// The component's default settings.
pub(crate) async fn default_settings(cache_dir: Option<&Path>) -> Result<Settings, CacheError> {
    let compiled = compiled(cache_dir)?;
    let state = HostState {
        store: std::sync::Arc::new(crate::store::MemoryStore::new(0)),
        profiles: std::sync::Arc::new(crate::profiles::StaticProfiles::new()),
        stats: Default::default(),
        limits: instance_limits(0),
    };
    let mut store = Store::new(&compiled.engine, state);
    let api = compiled
        .pre
        .instantiate_async(&mut store)
        .await
        .map_err(|e| CacheError::Component(format!("{e:#}")))?;
    api.nscache_cache_config()
        .call_defaults(&mut store)
        .await
        .map_err(|e| CacheError::Component(format!("{e:#}")))
}

impl InstancePool {
    /// A pool whose instances use `state` and `settings`. Instantiates one
    /// instance at once, so that bad settings are reported here.
    /// `cache_dir`: see [`compiled`].
    pub async fn new(
        state: HostState,
        settings: Settings,
        max_idle: usize,
        cache_dir: Option<&Path>,
    ) -> Result<InstancePool, CacheError> {
        let pool = InstancePool {
            compiled: compiled(cache_dir)?,
            state,
            settings,
            idle: Mutex::new(Vec::new()),
            max_idle,
        };
        let first = pool.instantiate().await?;
        pool.give_back(first);
        Ok(pool)
    }

    async fn instantiate(&self) -> Result<Instance, CacheError> {
        let mut store = Store::new(&self.compiled.engine, self.state.clone());
        store.limiter(|state| &mut state.limits);
        // What the guest may hand the host in one call: the largest write
        // (a set-many of values) is bounded by the body limits upstream; a
        // reply never travels this way (host to guest is not counted).
        store.set_hostcall_fuel(HOSTCALL_FUEL);
        let api = self
            .compiled
            .pre
            .instantiate_async(&mut store)
            .await
            .map_err(|e| CacheError::Component(format!("instantiating: {e:#}")))?;
        api.nscache_cache_config()
            .call_configure(&mut store, &self.settings)
            .await
            .map_err(|e| CacheError::Component(format!("configuring: {e:#}")))??;
        Ok(Instance { store, api })
    }

    /// An instance for one call: an idle one, or a new one.
    pub async fn lease(&self) -> Result<Instance, CacheError> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match idle {
            Some(instance) => Ok(instance),
            None => self.instantiate().await,
        }
    }

    /// Return an instance after a call that completed (trapped ones are dropped).
    pub fn give_back(&self, instance: Instance) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(instance);
        }
    }

    /// How many instances are idle.
    pub fn idle_count(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}
