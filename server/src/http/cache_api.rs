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
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, JsonBody, PathParams, QueryParams};
use super::limits::{Reservation, encode_within, held_json};
use super::openapi::TtlSchema;
use crate::control::{Principal, check_name};
use nscache::{Expiry, Keyspace, LockToken, Scope, Ttl};

/// A value to store: exactly one of `value` (text) and `value_base64`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ValueBody {
    /// The value as text.
    value: Option<String>,
    /// The value as base64 (any bytes).
    value_base64: Option<String>,
    /// Expiry; absent for the default.
    #[serde(default)]
    #[schema(value_type = Option<TtlSchema>)]
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

/// `ttl` as an [`Expiry`], with the library's one TTL parser.
fn expiry(ttl: Option<TtlSpec>) -> Result<Expiry, ApiError> {
    match ttl {
        None => Ok(Expiry::Default),
        Some(TtlSpec::Seconds(s)) => Expiry::from_secs_f64(s),
        Some(TtlSpec::Word(w)) => w.parse(),
    }
    .map_err(|e| ApiError::invalid(format!("ttl: {e}")))
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

/// A stored value: `{"value": text}` when it is UTF-8, otherwise
/// `{"value_base64": ...}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum CacheValue {
    /// UTF-8 text.
    Text {
        /// The value.
        value: String,
    },
    /// Any bytes.
    Base64 {
        /// The value, base64-encoded.
        value_base64: String,
    },
}

impl CacheValue {
    fn from_bytes(bytes: Vec<u8>) -> CacheValue {
        match String::from_utf8(bytes) {
            Ok(value) => CacheValue::Text { value },
            Err(e) => CacheValue::Base64 {
                value_base64: STANDARD.encode(e.as_bytes()),
            },
        }
    }
}

/// `GET .../keys/{key}`: the value.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyValue {
    /// The key.
    key: String,
    /// Its value.
    value: CacheValue,
}

/// `PUT .../keys/{key}`: stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyStored {
    /// The key.
    key: String,
    /// Always true (a write to a user whose cache is off is skipped silently).
    stored: bool,
}

/// `DELETE .../keys/{key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyDeleted {
    /// The key.
    key: String,
    /// Whether it existed.
    deleted: bool,
}

/// `POST .../keys/{key}/add`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyAdded {
    /// The key.
    key: String,
    /// False when the key already had a value (nothing changed).
    added: bool,
}

/// `POST .../keys/{key}/incr` and `decr`: the new value.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyCounter {
    /// The key.
    key: String,
    /// The value after the change.
    value: i64,
}

/// `POST .../keys/{key}/touch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyTouched {
    /// The key.
    key: String,
    /// False when the key does not exist.
    touched: bool,
}

/// `POST .../keys/{key}/persist`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPersisted {
    /// The key.
    key: String,
    /// False when the key does not exist or already had no expiry.
    persisted: bool,
}

/// The state of a key's expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TtlState {
    /// The key does not exist.
    Missing,
    /// The key never expires.
    Forever,
    /// The key expires in `ttl` seconds.
    Expires,
}

/// `GET .../keys/{key}/ttl`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyTtl {
    /// The key.
    key: String,
    /// Whether it exists and expires.
    state: TtlState,
    /// Seconds left when it `expires`, otherwise null.
    #[schema(required = true)]
    ttl: Option<f64>,
}

/// `GET .../keys/{key}/exists`.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyExists {
    /// The key.
    key: String,
    /// Whether it has a value.
    exists: bool,
}

/// `POST .../get-many`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManyValues {
    /// The values in the order of the keys asked, null for misses.
    values: Vec<Option<CacheValue>>,
}

/// `POST .../set-many`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManyStored {
    /// How many entries were written.
    stored: u64,
}

/// `POST .../delete-many`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManyDeleted {
    /// How many of the keys existed.
    deleted: u32,
}

/// `GET /api/v1/cache/users/{user}/version`.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserVersion {
    /// The user's namespace id.
    user_id: String,
    /// The namespace version (null: nothing cached yet).
    #[schema(required = true)]
    version: Option<u64>,
}

/// `POST /api/v1/locks/{key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockTaken {
    /// The lock's key.
    key: String,
    /// Whether the lock was taken (false: someone else holds it).
    acquired: bool,
    /// The owner token to release it with, when acquired.
    #[schema(required = true)]
    owner: Option<String>,
}

/// `DELETE /api/v1/locks/{key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LockReleased {
    /// The lock's key.
    key: String,
    /// False when the lock was not held by that owner.
    released: bool,
}

fn scope(params: &PathParams) -> Result<Scope, ApiError> {
    match params.0.get("user") {
        Some(user) => {
            check_name("user id", user)?;
            Ok(Scope::User(user.clone()))
        }
        None => Ok(Scope::Global),
    }
}

/// The keyspace and key of a `/keys/{key}` route, checked against the caller.
fn target(
    state: &AppState,
    who: &Principal,
    params: &PathParams,
) -> Result<(Keyspace, String), ApiError> {
    let keyspace = state.control.keyspace(who, &scope(params)?)?;
    let key = params.get("key")?;
    check_name("key", key)?;
    Ok((keyspace, key.to_owned()))
}

fn keyspace(state: &AppState, who: &Principal, params: &PathParams) -> Result<Keyspace, ApiError> {
    Ok(state.control.keyspace(who, &scope(params)?)?)
}

/// `GET .../keys/{key}`: 404 `miss` when absent.
pub async fn get_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Response, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let mut held = state.replies.reserve(worst_reply(&state, 1)).await?;
    let Some(value) = ks.get(&key).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "miss",
            format!("no value for {key:?}"),
        ));
    };
    let reply = KeyValue {
        key,
        value: CacheValue::from_bytes(value),
    };
    hold_for_encoding(&state, &reply, &mut held).await?;
    let bytes = encode_within(&reply, state.control.cache().max_reply_bytes())?;
    drop(reply);
    held.resize(bytes.len() as u64).await?;
    Ok(held_json(bytes, held))
}

/// The most a reply for `distinct` keys may hold before its values are read:
/// their raw bytes, bounded by the reply budget.
fn worst_reply(state: &AppState, distinct: usize) -> u64 {
    let cache = state.control.cache();
    (distinct as u64 * u64::from(cache.max_value_bytes())).min(cache.max_reply_bytes())
}

/// Hold room for `reply` and its JSON (at most the budget) while it is encoded.
async fn hold_for_encoding<T: ValuesOf>(
    state: &AppState,
    reply: &T,
    held: &mut Reservation,
) -> Result<(), ApiError> {
    let raw = reply.value_bytes();
    let budget = state.control.cache().max_reply_bytes();
    held.resize(raw + budget.min(raw.saturating_mul(6) + 4096))
        .await
}

/// The bytes of values a reply holds.
trait ValuesOf {
    fn value_bytes(&self) -> u64;
}

impl CacheValue {
    fn len(&self) -> u64 {
        match self {
            CacheValue::Text { value } => value.len() as u64,
            CacheValue::Base64 { value_base64 } => value_base64.len() as u64,
        }
    }
}

impl ValuesOf for KeyValue {
    fn value_bytes(&self) -> u64 {
        self.value.len()
    }
}

impl ValuesOf for ManyValues {
    fn value_bytes(&self) -> u64 {
        self.values.iter().flatten().map(CacheValue::len).sum()
    }
}

/// `PUT .../keys/{key}`: set.
pub async fn set_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<ValueBody>,
) -> Result<Json<KeyStored>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    ks.set(&key, value_bytes(body.value, body.value_base64)?, ttl)
        .await?;
    Ok(Json(KeyStored { key, stored: true }))
}

/// `DELETE .../keys/{key}`
pub async fn delete_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<KeyDeleted>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let deleted = ks.delete(&key).await?;
    Ok(Json(KeyDeleted { key, deleted }))
}

/// `POST .../keys/{key}/add`
pub async fn add_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<ValueBody>,
) -> Result<Json<KeyAdded>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    let added = ks
        .add(&key, value_bytes(body.value, body.value_base64)?, ttl)
        .await?;
    Ok(Json(KeyAdded { key, added }))
}

/// Body of `incr`/`decr`.
#[derive(Debug, Deserialize, Default, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeltaBody {
    /// How much to add (`incr`) or subtract (`decr`); 1 when absent.
    #[serde(default = "one")]
    #[schema(default = 1)]
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
) -> Result<Json<KeyCounter>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let value = ks.incr(&key, body.delta).await?;
    Ok(Json(KeyCounter { key, value }))
}

/// `POST .../keys/{key}/decr`
pub async fn decr_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<DeltaBody>,
) -> Result<Json<KeyCounter>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let value = ks.decr(&key, body.delta).await?;
    Ok(Json(KeyCounter { key, value }))
}

/// Body of `touch`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TouchBody {
    /// The new expiry; absent for the default.
    #[serde(default)]
    #[schema(value_type = Option<TtlSchema>)]
    ttl: Option<TtlSpec>,
}

/// `POST .../keys/{key}/touch`
pub async fn touch_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<TouchBody>,
) -> Result<Json<KeyTouched>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let ttl = expiry(body.ttl)?;
    let touched = ks.touch(&key, ttl).await?;
    Ok(Json(KeyTouched { key, touched }))
}

/// `POST .../keys/{key}/persist`
pub async fn persist_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<KeyPersisted>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let persisted = ks.persist(&key).await?;
    Ok(Json(KeyPersisted { key, persisted }))
}

/// `GET .../keys/{key}/ttl`: `{"state": "missing"|"forever"|"expires", "ttl": seconds}`.
pub async fn ttl_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<KeyTtl>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let (state, ttl) = match ks.ttl(&key).await? {
        Ttl::Missing => (TtlState::Missing, None),
        Ttl::Forever => (TtlState::Forever, None),
        Ttl::Remaining(d) => (TtlState::Expires, Some(d.as_secs_f64())),
    };
    Ok(Json(KeyTtl { key, state, ttl }))
}

/// `GET .../keys/{key}/exists`
pub async fn exists_key(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<KeyExists>, ApiError> {
    let (ks, key) = target(&state, &who, &params)?;
    let exists = ks.has_key(&key).await?;
    Ok(Json(KeyExists { key, exists }))
}

/// Body of `get-many` / `delete-many`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct KeysBody {
    /// The keys (at most 1000).
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
) -> Result<Response, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    check_batch(&body.keys)?;
    let distinct = body
        .keys
        .iter()
        .collect::<std::collections::HashSet<_>>()
        .len();
    let mut held = state.replies.reserve(worst_reply(&state, distinct)).await?;
    let values = ks
        .get_many(&body.keys)
        .await?
        .into_iter()
        .map(|v| v.map(CacheValue::from_bytes))
        .collect();
    let reply = ManyValues { values };
    hold_for_encoding(&state, &reply, &mut held).await?;
    let bytes = encode_within(&reply, state.control.cache().max_reply_bytes())?;
    drop(reply);
    held.resize(bytes.len() as u64).await?;
    Ok(held_json(bytes, held))
}

/// One entry of `set-many`: a key and exactly one of `value` and
/// `value_base64`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EntryBody {
    /// The key.
    key: String,
    /// The value as text.
    value: Option<String>,
    /// The value as base64 (any bytes).
    value_base64: Option<String>,
}

/// Body of `set-many`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetManyBody {
    /// The entries (at most 1000).
    entries: Vec<EntryBody>,
    /// Expiry of every entry; absent for the default.
    #[serde(default)]
    #[schema(value_type = Option<TtlSchema>)]
    ttl: Option<TtlSpec>,
}

/// `POST .../set-many`: all entries atomically.
pub async fn set_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<SetManyBody>,
) -> Result<Json<ManyStored>, ApiError> {
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
    Ok(Json(ManyStored {
        stored: entries.len() as u64,
    }))
}

/// `POST .../delete-many`
pub async fn delete_many(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<KeysBody>,
) -> Result<Json<ManyDeleted>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    check_batch(&body.keys)?;
    let deleted = ks.delete_many(&body.keys).await?;
    Ok(Json(ManyDeleted { deleted }))
}

/// `GET /api/v1/cache/users/{user}/version`
pub async fn user_version(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<UserVersion>, ApiError> {
    let ks = keyspace(&state, &who, &params)?;
    let user_id = ks
        .user_id()
        .ok_or_else(|| ApiError::internal("version route without a user"))?
        .to_owned();
    let version = state.control.cache().version_of(&user_id).await?;
    Ok(Json(UserVersion { user_id, version }))
}

/// Body of `POST /api/v1/locks/{key}`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LockBody {
    /// How long the lock holds unless released, in milliseconds (> 0).
    timeout_ms: u64,
    /// The owner token to take it as (a worker name); absent: a random one.
    owner: Option<String>,
}

/// `POST /api/v1/locks/{key}`: `{"acquired": bool, "owner": token}`.
pub async fn lock(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    JsonBody(body): JsonBody<LockBody>,
) -> Result<Json<LockTaken>, ApiError> {
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
    Ok(Json(LockTaken {
        key: key.to_owned(),
        acquired,
        owner: acquired.then(|| owner.as_str().to_owned()),
    }))
}

/// Query of `DELETE /api/v1/locks/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UnlockQuery {
    /// The owner token the lock was taken with.
    owner: String,
}

/// `DELETE /api/v1/locks/{key}?owner=...`
pub async fn unlock(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
    QueryParams(q): QueryParams<UnlockQuery>,
) -> Result<Json<LockReleased>, ApiError> {
    state.control.check_locks(&who)?;
    let key = params.get("key")?;
    check_name("key", key)?;
    let released = state
        .control
        .cache()
        .unlock(key, &LockToken::from_owner(q.owner))
        .await?;
    Ok(Json(LockReleased {
        key: key.to_owned(),
        released,
    }))
}
