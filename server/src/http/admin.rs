//! Admin routes: the users list and invalidation.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, PathParams, QueryParams};
use crate::control::UsersPage;

/// `GET /api/v1/users` query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersQuery {
    #[serde(default)]
    search: String,
    #[serde(default = "first_page")]
    page: u64,
    #[serde(default = "default_per_page")]
    per_page: u64,
}

fn first_page() -> u64 {
    1
}

fn default_per_page() -> u64 {
    25
}

/// List users with their flag and namespace version.
pub async fn list_users(
    State(state): State<AppState>,
    Caller(who): Caller,
    QueryParams(q): QueryParams<UsersQuery>,
) -> Result<Json<UsersPage>, ApiError> {
    Ok(Json(
        state
            .control
            .list_users(&who, &q.search, q.page, q.per_page)
            .await?,
    ))
}

/// `POST /api/v1/users/{user}/invalidate`
pub async fn invalidate_user(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let user = params.get("user")?;
    let version = state.control.invalidate_user(&who, user).await?;
    Ok(Json(json!({ "user_id": user, "version": version })))
}

/// `POST /api/v1/tables/{table}/invalidate`
pub async fn invalidate_table(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<serde_json::Value>, ApiError> {
    let table = params.get("table")?;
    let version = state.control.invalidate_table(&who, table).await?;
    Ok(Json(json!({ "table": table, "version": version })))
}

/// `POST /api/v1/invalidate-all`
pub async fn invalidate_all(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    let floor = state.control.invalidate_all(&who).await?;
    Ok(Json(json!({ "floor": floor })))
}
