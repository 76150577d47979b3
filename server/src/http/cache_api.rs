//! The cache operations over HTTP, on `/api/v1/cache/global/...` and
//! `/api/v1/cache/users/{user}/...`, and locks on `/api/v1/locks/{key}`.
//!
//! Values travel as `{"value": "text"}` when they are UTF-8, otherwise as
//! `{"value_base64": "..."}`; requests may use either. `ttl` is a number of
//! seconds (fractions allowed, 0 expires at once), `"none"` for no expiry, or
//! absent for the default.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, PathParams, QueryParams};
use crate::control::{Principal, Space, check_name};
use nscache::{Expiry, Keyspace, LockToken, Ttl};

/// A value in a request: text or base64, exactly one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    value: Option<String>,
    value_base64: Option<String>,
    #[serde(default)]
    ttl: Option<TtlSpec>,
}

/// `ttl` in a request.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum TtlSpec {
    /// Seconds.
    Seconds(f64),
    /// `"none"` (no expiry) or `"default"`.
    Word(String),
}

fn expiry(ttl: Option<TtlSpec>) -> Result<Expiry, ApiError> {
    match ttl {
        None => Ok(Expiry::Default),
        Some(TtlSpec::Seconds(s)) if s.is_finite() && (0.0..1e12).contains(&s) => {
            Ok(Expiry::After(Duration::from_secs_f64(s)))
        }
        Some(TtlSpec::Seconds(s)) => Err(ApiError::invalid(format!(
            "ttl {s} is not a number of seconds >= 0"
        ))),
        Some(TtlSpec::Word(w)) if w == "none" => Ok(Expiry::Never),
        Some(TtlSpec::Word(w)) if w == "default" => Ok(Expiry::Default),
        Some(TtlSpec::Word(w)) => Err(ApiError::invalid(format!(
            "ttl {w:?} is not a number of seconds, \"none\" or \"default\""
        ))),
    }
}

fn value_bytes(value: Option<String>, value_base64: Option<String>) -> Result<Vec<u8>, ApiError> {
    match (value, value_base64) {
        (Some(v), None) => Ok(v.into_bytes()),
        (None, Some(b)) => STANDARD
            .decode(b.as_bytes())
            .map_err(|e| ApiError::invalid(format!("value_base64 is not base64: {e}"))),
        _ => Err(ApiError::invalid(
            "give exactly one of value and value_base64",
        )),
    }
}

/// A value in a response.
#[derive(Debug, Serialize)]
pub struct ValueOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

impl ValueOut {
    fn from_bytes(bytes: Vec<u8>) -> ValueOut {
        match String::from_utf8(bytes) {
            Ok(s) => ValueOut {
                value: Some(s),
                value_base64: None,
            },
            Err(e) => ValueOut {
                value: None,
                value_base64: Some(STANDARD.encode(e.as_bytes())),
            },
        }
    }
}

fn space(params: &PathParams) -> Result<Space, ApiError> {
    match params.0.get("user") {
        Some(user) => {
            check_name("user id", user)?;
            Ok(Space::User(user.clone()))
        }
        None => Ok(Space::Global),
    }
}

/// The keyspace and key of a `/keys/{key}` route, checked against the caller.
fn target(
    state: &AppState,
    who: &Principal,
    params: &PathParams,
) -> Result<(Keyspace, String), ApiError> {
    let keyspace = state.control.keyspace(who, &space(params)?)?;
    let key = params.get("key")?;
    check_name("key", key)?;
    Ok((keyspace, key.to_owned()))
}

fn keyspace(state: &AppState, who: &Principal, params: &PathParams) -> Result<Keyspace, ApiError> {
    Ok(state.control.keyspace(who, &space(params)?)?)
}

/// `GET .../keys/{key}`: 404 `miss` when absent.
pub async fn get_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    match ks.get(&key).await? {
        Some(v) => Ok(Json(
            json!({ "key": key, "value": ValueOut::from_bytes(v) }),
        )),
        None => Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "miss",
            format!("no value for {key:?}"),
        )),
    }
}

/// `PUT .../keys/{key}`: set.
pub async fn set_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<ValueBody>,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    ks.set(&key, value_bytes(body.value, body.value_base64)?, ttl)
        .await?;
    Ok(Json(json!({ "key": key, "stored": true })))
}

/// `DELETE .../keys/{key}`
pub async fn delete_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(
        json!({ "key": key, "deleted": ks.delete(&key).await? }),
    ))
}

/// `POST .../keys/{key}/add`
pub async fn add_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<ValueBody>,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    let added = ks
        .add(&key, value_bytes(body.value, body.value_base64)?, ttl)
        .await?;
    Ok(Json(json!({ "key": key, "added": added })))
}

/// Body of `incr`/`decr`.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct DeltaBody {
    #[serde(default = "one")]
    delta: i64,
}

fn one() -> i64 {
    1
}

/// `POST .../keys/{key}/incr`
pub async fn incr_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<DeltaBody>,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(
        json!({ "key": key, "value": ks.incr(&key, body.delta).await? }),
    ))
}

/// `POST .../keys/{key}/decr`
pub async fn decr_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<DeltaBody>,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(
        json!({ "key": key, "value": ks.decr(&key, body.delta).await? }),
    ))
}

/// Body of `touch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TouchBody {
    #[serde(default)]
    ttl: Option<TtlSpec>,
}

/// `POST .../keys/{key}/touch`
pub async fn touch_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<TouchBody>,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    Ok(Json(
        json!({ "key": key, "touched": ks.touch(&key, ttl).await? }),
    ))
}

/// `POST .../keys/{key}/persist`
pub async fn persist_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(
        json!({ "key": key, "persisted": ks.persist(&key).await? }),
    ))
}

/// `GET .../keys/{key}/ttl`: `{"state": "missing"|"forever"|"expires", "ttl": seconds}`.
pub async fn ttl_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(match ks.ttl(&key).await? {
        Ttl::Missing => json!({ "key": key, "state": "missing", "ttl": null }),
        Ttl::Forever => json!({ "key": key, "state": "forever", "ttl": null }),
        Ttl::Remaining(d) => json!({ "key": key, "state": "expires", "ttl": d.as_secs_f64() }),
    }))
}

/// `GET .../keys/{key}/exists`
pub async fn exists_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    Ok(Json(
        json!({ "key": key, "exists": ks.has_key(&key).await? }),
    ))
}

/// Body of `get-many` / `delete-many`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    keys: Vec<String>,
}

const MAX_BATCH: usize = 1000;

fn check_batch(keys: &[String]) -> Result<(), ApiError> {
    if keys.len() > MAX_BATCH {
        return Err(ApiError::new(
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!("{} keys, at most {MAX_BATCH} per request", keys.len()),
        ));
    }
    keys.iter()
        .try_for_each(|k| check_name("key", k).map_err(ApiError::from))
}

/// `POST .../get-many`: values in order, `null` for misses.
pub async fn get_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<KeysBody>,
) -> Result<Json<Value>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    check_batch(&body.keys)?;
    let values: Vec<Option<ValueOut>> = ks
        .get_many(&body.keys)
        .await?
        .into_iter()
        .map(|v| v.map(ValueOut::from_bytes))
        .collect();
    Ok(Json(json!({ "values": values })))
}

/// One entry of `set-many`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    key: String,
    value: Option<String>,
    value_base64: Option<String>,
}

/// Body of `set-many`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetManyBody {
    entries: Vec<EntryBody>,
    #[serde(default)]
    ttl: Option<TtlSpec>,
}

/// `POST .../set-many`: all entries atomically.
pub async fn set_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<SetManyBody>,
) -> Result<Json<Value>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    let keys: Vec<String> = body.entries.iter().map(|e| e.key.clone()).collect();
    check_batch(&keys)?;
    let entries = body
        .entries
        .into_iter()
        .map(|e| Ok((e.key, value_bytes(e.value, e.value_base64)?)))
        .collect::<Result<Vec<(String, Vec<u8>)>, ApiError>>()?;
    ks.set_many(&entries, ttl).await?;
    Ok(Json(json!({ "stored": entries.len() })))
}

/// `POST .../delete-many`
pub async fn delete_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<KeysBody>,
) -> Result<Json<Value>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    check_batch(&body.keys)?;
    Ok(Json(
        json!({ "deleted": ks.delete_many(&body.keys).await? }),
    ))
}

/// `GET /api/v1/cache/users/{user}/version`
pub async fn user_version(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<Value>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    let user = ks
        .user_id()
        .ok_or_else(|| ApiError::internal("version route without a user"))?
        .to_owned();
    Ok(Json(
        json!({ "user_id": user, "version": state.control.cache().version_of(&user).await? }),
    ))
}

/// Body of `POST /api/v1/locks/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    timeout_ms: u64,
    owner: Option<String>,
}

/// `POST /api/v1/locks/{key}`: `{"acquired": bool, "owner": token}`.
pub async fn lock(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<LockBody>,
) -> Result<Json<Value>, ApiError> {
    state.control.check_locks(&who)?;
    let key = params.get("key")?;
    check_name("key", key)?;
    let owner = match body.owner {
        Some(o) => {
            check_name("owner", &o)?;
            LockToken::from_owner(o)
        }
        None => LockToken::random(),
    };
    let acquired = state
        .control
        .cache()
        .lock_as(key, &owner, Duration::from_millis(body.timeout_ms))
        .await?;
    Ok(Json(
        json!({ "key": key, "acquired": acquired, "owner": acquired.then(|| owner.as_str().to_owned()) }),
    ))
}

/// Query of `DELETE /api/v1/locks/{key}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockQuery {
    owner: String,
}

/// `DELETE /api/v1/locks/{key}?owner=...`
pub async fn unlock(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    QueryParams(q): QueryParams<UnlockQuery>,
) -> Result<Json<Value>, ApiError> {
    state.control.check_locks(&who)?;
    let key = params.get("key")?;
    check_name("key", key)?;
    let released = state
        .control
        .cache()
        .unlock(key, &LockToken::from_owner(q.owner))
        .await?;
    Ok(Json(json!({ "key": key, "released": released })))
}
