//! The conformance kit (`tests/conformance/`) run by the Rust hosts: the
//! native core (`native.rs`) and the component on wasmtime over the host
//! library's stores, memory and Redis (`component.rs`).
//!
//! This file reads the scenarios and judges a run; a driver only makes the
//! calls. Each driver provides what `tests/conformance/README.md` asks of a
//! host: the clock fixed at the file's `clock-micros`, the faults of a step
//! injected at the named import call, the users' flags, and a snapshot of
//! every storage key the scenario touched.

mod component;
mod native;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::{Value, json};

/// The kit's file.
pub fn scenarios_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance/scenarios.json")
}

/// The whole kit file, parsed.
pub struct Kit {
    /// `store.now-micros` answers this, always.
    pub clock_micros: u64,
    /// How far below the expected value a remaining lifetime may be.
    pub ttl_tolerance_ms: u64,
    /// The scenarios, in file order.
    pub scenarios: Vec<Value>,
}

impl Kit {
    /// Read `tests/conformance/scenarios.json`.
    pub fn load() -> Kit {
        let path = scenarios_path();
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let file: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()));
        Kit {
            clock_micros: file["clock-micros"].as_u64().expect("clock-micros"),
            ttl_tolerance_ms: file["ttl-tolerance-ms"].as_u64().expect("ttl-tolerance-ms"),
            scenarios: file["scenarios"].as_array().expect("scenarios").clone(),
        }
    }
}

/// Every import of the world, as the kit names them.
pub const IMPORTS: &[&str] = &[
    "store.get",
    "store.set",
    "store.delete",
    "store.exists",
    "store.expire",
    "store.ttl",
    "store.now-micros",
    "batch.get-many",
    "batch.set-many",
    "batch.delete-many",
    "batch.get-indirect",
    "atomics.increment",
    "atomics.set-if-absent",
    "atomics.swap-if",
    "atomics.delete-if",
    "atomics.put-counted",
    "profiles.cache-enabled",
];

/// A failure to inject: the `call`-th call (1-based; 0 = every call) of
/// `import` during one step fails with the store error `with`.
#[derive(Debug, Clone)]
pub struct Fault {
    pub import: String,
    pub call: u32,
    pub with: String,
}

/// The faults of one step, and how often each import was called.
#[derive(Debug, Default)]
pub struct Faults {
    planned: Vec<Fault>,
    calls: BTreeMap<String, u32>,
    fired: BTreeSet<usize>,
}

impl Faults {
    fn new(step: &Value) -> Faults {
        let planned = step["fail"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|f| {
                        let import = f["import"].as_str().expect("fail.import").to_owned();
                        assert!(
                            import == "*" || IMPORTS.contains(&import.as_str()),
                            "no import {import}"
                        );
                        Fault {
                            import,
                            call: match &f["call"] {
                                Value::String(all) if all == "all" => 0,
                                n => n.as_u64().expect("fail.call: a number or \"all\"") as u32,
                            },
                            with: f["with"].as_str().unwrap_or("unavailable").to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        Faults {
            planned,
            ..Faults::default()
        }
    }

    /// Count a call of `import`; the store error case to fail it with, if
    /// the step planned one for this call.
    pub fn on_call(&mut self, import: &str) -> Option<String> {
        let n = self.calls.entry(import.to_owned()).or_default();
        *n += 1;
        let n = *n;
        let (i, fault) = self.planned.iter().enumerate().find(|(_, f)| {
            let named =
                f.import == import || (f.import == "*" && import != "profiles.cache-enabled");
            named && (f.call == 0 || f.call == n)
        })?;
        self.fired.insert(i);
        Some(fault.with.clone())
    }

    /// The planned faults that never fired (the import was called fewer times).
    fn unfired(&self) -> Vec<String> {
        self.planned
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.fired.contains(i))
            .map(|(_, f)| format!("{} call {}", f.import, f.call))
            .collect()
    }
}

/// What a host keeps for the kit while a scenario runs: faults, flags, and
/// every storage key touched.
#[derive(Debug, Default)]
pub struct Bench {
    pub faults: Faults,
    pub disabled: BTreeSet<String>,
    pub touched: BTreeSet<String>,
}

impl Bench {
    /// Record the keys of an import call.
    pub fn touch<'a>(&mut self, keys: impl IntoIterator<Item = &'a str>) {
        self.touched.extend(keys.into_iter().map(str::to_owned));
    }
}

/// A storage key's content in a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    pub value: Vec<u8>,
    /// Remaining lifetime in ms; `None`: never expires.
    pub ttl_ms: Option<u64>,
}

/// What the kit asks of a host.
pub trait Driver {
    /// Call the export `func` (`interface.function`) with the kit's JSON
    /// arguments; the result in the kit's JSON encoding (`{"ok": ..}` or
    /// `{"err": "case"}`).
    async fn call(&mut self, func: &str, args: &[Value]) -> Value;
    /// The kit's state for this scenario.
    fn bench(&mut self) -> &mut Bench;
    /// Write a storage key directly (no fault, no component).
    async fn put(&mut self, key: &str, value: &[u8]);
    /// Remove a storage key directly (eviction, a lost key).
    async fn remove(&mut self, key: &str);
    /// The content of a storage key, read directly.
    async fn read(&mut self, key: &str) -> Option<Stored>;
    /// Clean up after the scenario (keys on a shared store).
    async fn finish(&mut self) {}
}

/// The kit's bytes: a JSON string (UTF-8), or `{"hex": "..."}` for bytes
/// that are not UTF-8.
pub fn bytes(v: &Value) -> Vec<u8> {
    if let Some(s) = v.as_str() {
        return s.as_bytes().to_vec();
    }
    let hex = v["hex"]
        .as_str()
        .expect("bytes: a string or {\"hex\": ...}");
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex digits"))
        .collect()
}

/// Bytes as the kit writes them.
pub fn text(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "hex": b.iter().map(|x| format!("{x:02x}")).collect::<String>() }),
    }
}

/// Run every scenario on drivers made by `make`; returns one line per
/// failure (empty: the host conforms).
pub async fn run<D: Driver>(mut make: impl AsyncFnMut(&Kit, &Value) -> D) -> Vec<String> {
    let kit = Kit::load();
    let mut failures = Vec::new();
    assert!(!kit.scenarios.is_empty(), "the kit has no scenario");
    for scenario in &kit.scenarios {
        let name = scenario["name"].as_str().expect("scenario name");
        let mut driver = make(&kit, scenario).await;
        let outcome = run_scenario(&kit, scenario, &mut driver).await;
        if std::env::var_os("NSCACHE_KIT_PRINT_STORE").is_some() {
            println!("STORE {name} {}", snapshot(&mut driver).await);
        }
        driver.finish().await;
        if let Err(e) = outcome {
            failures.push(format!("{name}: {e}"));
        }
    }
    failures
}

async fn run_scenario<D: Driver>(
    kit: &Kit,
    scenario: &Value,
    driver: &mut D,
) -> Result<(), String> {
    for user in scenario["disabled-users"].as_array().into_iter().flatten() {
        driver
            .bench()
            .disabled
            .insert(user.as_str().expect("user").to_owned());
    }
    let steps = scenario["steps"].as_array().expect("steps");
    for (i, step) in steps.iter().enumerate() {
        let at = format!(
            "step {} ({})",
            i + 1,
            step.get("call")
                .or(step.get("host"))
                .unwrap_or(&Value::Null)
        );
        if let Some(op) = step["host"].as_str() {
            match op {
                "put" => {
                    let key = step["key"].as_str().expect("key");
                    driver.bench().touch([key]);
                    driver.put(key, &bytes(&step["value"])).await;
                }
                "remove" => driver.remove(step["key"].as_str().expect("key")).await,
                "cache-enabled" => {
                    let user = step["user"].as_str().expect("user").to_owned();
                    if step["enabled"].as_bool().expect("enabled") {
                        driver.bench().disabled.remove(&user);
                    } else {
                        driver.bench().disabled.insert(user);
                    }
                }
                other => panic!("{at}: unknown host step {other}"),
            }
            continue;
        }
        let func = step["call"].as_str().expect("call");
        let args = step["args"].as_array().cloned().unwrap_or_default();
        driver.bench().faults = Faults::new(step);
        let got = driver.call(func, &args).await;
        let unfired = driver.bench().faults.unfired();
        if !unfired.is_empty() {
            return Err(format!(
                "{at}: planned faults never happened: {unfired:?} (calls made: {:?})",
                driver.bench().faults.calls
            ));
        }
        driver.bench().faults = Faults::default();
        if let Some(expected) = step.get("expect") {
            matches(expected, &got, kit.ttl_tolerance_ms)
                .map_err(|e| format!("{at}: expected {expected}, got {got}: {e}"))?;
        }
        if let Some(expected) = step.get("store") {
            check_store(kit, expected, driver)
                .await
                .map_err(|e| format!("{at}: {e}"))?;
        }
    }
    if let Some(expected) = scenario.get("store") {
        check_store(kit, expected, driver)
            .await
            .map_err(|e| format!("at the end: {e}"))?;
    }
    Ok(())
}

/// The storage keys touched so far that exist, in the kit's encoding.
pub async fn snapshot<D: Driver>(driver: &mut D) -> Value {
    let keys: Vec<String> = driver.bench().touched.iter().cloned().collect();
    let mut out = serde_json::Map::new();
    for key in keys {
        if let Some(stored) = driver.read(&key).await {
            let ttl = match stored.ttl_ms {
                None => json!("forever"),
                Some(ms) => json!({ "remaining-ms": ms }),
            };
            out.insert(key, json!({ "value": text(&stored.value), "ttl": ttl }));
        }
    }
    Value::Object(out)
}

async fn check_store<D: Driver>(kit: &Kit, expected: &Value, driver: &mut D) -> Result<(), String> {
    let got = snapshot(driver).await;
    matches(expected, &got, kit.ttl_tolerance_ms)
        .map_err(|e| format!("store: {e}\n  expected {expected}\n  found    {got}"))
}

/// Whether `got` is what `expected` describes: equal, except that a
/// `remaining-ms` may be up to `tolerance` below the expected one.
pub fn matches(expected: &Value, got: &Value, tolerance: u64) -> Result<(), String> {
    match (expected, got) {
        (Value::Object(e), Value::Object(g)) => {
            let ek: BTreeSet<&String> = e.keys().collect();
            let gk: BTreeSet<&String> = g.keys().collect();
            if ek != gk {
                return Err(format!("keys {ek:?} != {gk:?}"));
            }
            for (k, ev) in e {
                if k == "remaining-ms" {
                    let (Some(want), Some(have)) = (ev.as_u64(), g[k].as_u64()) else {
                        return Err(format!("remaining-ms {ev} / {}", g[k]));
                    };
                    if have > want || have + tolerance < want {
                        return Err(format!(
                            "remaining-ms {have}, expected {want} (at most {tolerance} less)"
                        ));
                    }
                    continue;
                }
                matches(ev, &g[k], tolerance).map_err(|err| format!("{k}: {err}"))?;
            }
            Ok(())
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                return Err(format!("{} items, expected {}", g.len(), e.len()));
            }
            for (i, (ev, gv)) in e.iter().zip(g).enumerate() {
                matches(ev, gv, tolerance).map_err(|err| format!("[{i}]: {err}"))?;
            }
            Ok(())
        }
        (e, g) if e == g => Ok(()),
        (e, g) => Err(format!("{g} != {e}")),
    }
}

#[test]
fn the_kit_names_only_real_imports_and_calls_every_export() {
    let kit = Kit::load();
    let mut called = BTreeSet::new();
    for scenario in &kit.scenarios {
        for step in scenario["steps"].as_array().expect("steps") {
            if let Some(call) = step["call"].as_str() {
                called.insert(call.to_owned());
            }
            for f in step["fail"].as_array().into_iter().flatten() {
                let import = f["import"].as_str().expect("import");
                assert!(
                    import == "*" || IMPORTS.contains(&import),
                    "unknown import {import}"
                );
            }
        }
    }
    // Every `name: func(` of the exported interfaces is called somewhere.
    let mut missing = Vec::new();
    for (interface, file) in ["cache", "locks", "invalidation", "queries", "config"]
        .iter()
        .map(|i| {
            (
                i,
                std::fs::read_to_string(
                    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../wit/{i}.wit")),
                )
                .expect("wit"),
            )
        })
    {
        for line in file.lines() {
            if let Some((name, _)) = line.trim().split_once(": func(") {
                let export = format!("{interface}.{name}");
                if !called.contains(&export) {
                    missing.push(export);
                }
            }
        }
    }
    assert!(
        missing.is_empty(),
        "exports the kit never calls: {missing:?}"
    );
    // Every case of the `error` variant is expected somewhere.
    let types =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../wit/types.wit"))
            .expect("wit");
    let variant = types
        .split("variant error {")
        .nth(1)
        .expect("the error variant");
    let variant = variant.split('}').next().expect("its end");
    let expected: BTreeSet<String> = kit
        .scenarios
        .iter()
        .flat_map(|s| s["steps"].as_array().expect("steps").iter())
        .filter_map(|step| step["expect"]["err"].as_str().map(str::to_owned))
        .collect();
    let uncovered: Vec<&str> = variant
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("//") && !l.is_empty())
        .map(|l| l.split(['(', ',']).next().unwrap_or(l))
        .filter(|case| !expected.contains(*case))
        .collect();
    assert!(
        uncovered.is_empty(),
        "error cases no scenario expects: {uncovered:?}"
    );
}
