//! Admin routes: the users list and invalidation.

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::error::ApiError;
use super::extract::{Caller, PathParams, QueryParams};
use crate::control::UsersPage;

/// `GET /api/v1/users` query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// Prefix of the namespace id or login name (empty: everyone).
    #[serde(default)]
    search: String,
    /// The page, from 1.
    #[serde(default = "first_page")]
    #[param(default = 1, minimum = 1)]
    page: u64,
    /// Users per page, 1 to 200.
    #[serde(default = "default_per_page")]
    #[param(default = 25, minimum = 1, maximum = 200)]
    per_page: u64,
}

/// `POST /api/v1/users/{user}/invalidate`: the namespace's new version.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInvalidated {
    /// The user's namespace id.
    user_id: String,
    /// The namespace's new version.
    version: u64,
}

/// `POST /api/v1/tables/{table}/invalidate`: the table's new version.
#[derive(Debug, Serialize, ToSchema)]
pub struct TableInvalidated {
    /// The table.
    table: String,
    /// The table's new version.
    version: u64,
}

/// `POST /api/v1/invalidate-all`: the new namespace floor.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllInvalidated {
    /// Every namespace version below this is stale.
    floor: u64,
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
) -> Result<Json<UserInvalidated>, ApiError> {
    let user = params.get("user")?;
    let version = state.control.invalidate_user(&who, user).await?;
    Ok(Json(UserInvalidated {
        user_id: user.to_owned(),
        version,
    }))
}

/// `POST /api/v1/tables/{table}/invalidate`
pub async fn invalidate_table(
    State(state): State<AppState>,
    Caller(who): Caller,
    params: PathParams,
) -> Result<Json<TableInvalidated>, ApiError> {
    let table = params.get("table")?;
    let version = state.control.invalidate_table(&who, table).await?;
    Ok(Json(TableInvalidated {
        table: table.to_owned(),
        version,
    }))
}

/// `POST /api/v1/invalidate-all`
pub async fn invalidate_all(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Json<AllInvalidated>, ApiError> {
    let floor = state.control.invalidate_all(&who).await?;
    Ok(Json(AllInvalidated { floor }))
}
