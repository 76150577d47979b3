//! Operator routes: `/health`, `/metrics`, the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::ApiError;
use super::extract::Caller;
use super::{AppState, openapi};

/// `GET /health`: 200 when every dependency answers, 503 naming the ones
/// that do not.
pub async fn health(State(state): State<AppState>) -> Response {
    let report = state.control.health().await;
    let status = if report.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(report)).into_response()
}

/// `GET /metrics`: Prometheus text (admins and services).
pub async fn metrics(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> Result<Response, ApiError> {
    let text = state.control.metrics(&who)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// `GET /api/v1/openapi.json`
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(openapi::document())
}
