//! [`ControlBackend`]: the admin UI's [`UiBackend`], implemented on
//! [`Control`] so that the UI and the HTTP API share one set of permission
//! checks. This file only translates: it reads the session cookie, checks the
//! form's CSRF token against the session's (in constant time), calls
//! `Control`, and turns its answers into the UI's plain types.

use std::sync::Arc;

use axum::http::request::Parts;
use nscache_ui::backend::{SignedIn, UiBackend};
use nscache_ui::model::{
    CheckRow, ChecksState, Dashboard, DependencyState, L1State, Me, MemoryState, Sample, Totals,
    UiError, UserRow, UsersPage, UsersQuery, Viewer,
};

use crate::auth::constant_time_eq;
use crate::control::{ControlError, DependencyHealth, MeView, Principal, Via};
use crate::dashboard::DashboardSampler;
use crate::directory::Role;
use crate::http::extract::{DEVICE_COOKIE, client_address, cookie, session_cookie_name};
use crate::http::{ApiError, AppState, device_cookie, session_cookie};

/// How long the UI waits for a purge before saying it goes on in the background.
const PURGE_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The UI's backend: [`Control`](crate::control::Control) plus the dashboard's sampler.
#[derive(Debug, Clone)]
pub struct ControlBackend {
    state: AppState,
    dashboard: Arc<DashboardSampler>,
}

impl ControlBackend {
    /// A backend over the API's state (the same `Control`, cookie settings
    /// and proxy trust) and a dashboard sampler.
    pub fn new(state: AppState, dashboard: Arc<DashboardSampler>) -> ControlBackend {
        ControlBackend { state, dashboard }
    }

    /// The principal of the request's session cookie. API tokens are not
    /// accepted here: the UI is for people.
    async fn principal(&self, request: &Parts) -> Result<Principal, UiError> {
        let name = session_cookie_name(self.state.secure_cookies);
        let token = cookie(request, name).ok_or(UiError::Unauthenticated)?;
        self.state
            .control
            .session(token)
            .await
            .map_err(ui_error)?
            .ok_or(UiError::Unauthenticated)
    }

    /// The principal, if the form carried its session's CSRF token.
    async fn checked(&self, request: &Parts, csrf_token: &str) -> Result<Principal, UiError> {
        let who = self.principal(request).await?;
        match &who.via {
            Via::Session {
                csrf_token: expected,
                ..
            } if constant_time_eq(csrf_token.as_bytes(), expected.as_bytes()) => Ok(who),
            _ => Err(UiError::Csrf),
        }
    }
}

impl ControlBackend {
    /// The Checks panel: the background run of the cheap checks, and the
    /// SCAN-based checks of the last recorded `nscache doctor` (one GET).
    async fn checks(&self) -> ChecksState {
        let cheap = self.dashboard.last_checks();
        let recorded = match crate::doctor::last_recorded(self.state.control.cache()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "reading the last doctor run");
                None
            }
        };
        ChecksState {
            cheap: cheap
                .as_ref()
                .map(|r| check_rows(r.checks.iter().filter(|c| !c.scan)))
                .unwrap_or_default(),
            cheap_at_unix_ms: cheap.as_ref().map(|r| r.ran_at_unix_ms),
            scanned: recorded
                .as_ref()
                .map(|r| check_rows(r.checks.iter().filter(|c| c.scan)))
                .unwrap_or_default(),
            scanned_at_unix_ms: recorded.as_ref().map(|r| r.ran_at_unix_ms),
        }
    }
}

/// `Control`'s refusal, as the UI shows it. Messages come from the HTTP
/// API's mapping, so internal details are logged there and never shown.
fn ui_error(e: ControlError) -> UiError {
    match e {
        ControlError::Unauthenticated => UiError::Unauthenticated,
        ControlError::BadCredentials => UiError::BadCredentials,
        ControlError::Forbidden(m) => UiError::Forbidden(m),
        other => {
            let api = ApiError::from(other);
            match api.status.as_u16() {
                404 => UiError::NotFound(api.message),
                429 => UiError::RateLimited(api.message),
                503 => UiError::Unavailable(api.message),
                400 | 409 | 413 | 422 => UiError::Invalid(api.message),
                _ => UiError::Internal(api.message),
            }
        }
    }
}

fn viewer(who: &Principal) -> Viewer {
    Viewer {
        username: who.account.username.clone(),
        role: who.account.role.as_str().to_owned(),
        is_admin: who.account.role == Role::Admin,
        csrf_token: match &who.via {
            Via::Session { csrf_token, .. } => csrf_token.clone(),
            Via::ApiToken => String::new(),
        },
    }
}

fn me(view: MeView) -> Me {
    Me {
        username: view.username,
        user_id: view.user_id,
        role: view.role.to_owned(),
        cache_enabled: view.cache_enabled,
        namespace_version: view.namespace_version,
    }
}

fn check_rows<'a>(checks: impl Iterator<Item = &'a crate::doctor::Check>) -> Vec<CheckRow> {
    checks
        .map(|c| CheckRow {
            id: c.id.clone(),
            status: match c.status {
                crate::doctor::Status::Ok => "ok",
                crate::doctor::Status::Skip => "skip",
                crate::doctor::Status::Warn => "warn",
                crate::doctor::Status::Fail => "fail",
            }
            .to_owned(),
            message: c.message.clone(),
            fix: c.fix.clone(),
        })
        .collect()
}

fn dependency(d: &DependencyHealth) -> DependencyState {
    DependencyState {
        backend: d.backend.to_owned(),
        ok: d.ok,
        latency_ms: d.latency_ms,
        error: d.error.clone(),
    }
}

#[async_trait::async_trait]
impl UiBackend for ControlBackend {
    async fn sign_in(
        &self,
        request: &Parts,
        username: &str,
        password: &str,
    ) -> Result<SignedIn, UiError> {
        let address = client_address(request, self.state.trusted_proxies);
        let signed_in = self
            .state
            .control
            .login(username, password, address, cookie(request, DEVICE_COOKIE))
            .await
            .map_err(ui_error)?;
        let device_cookie = match &signed_in.device_token {
            Some(device) => Some(
                device_cookie(&self.state, device)
                    .map_err(|e| UiError::Internal(e.message))?
                    .to_str()
                    .map_err(|e| UiError::Internal(e.to_string()))?
                    .to_owned(),
            ),
            None => None,
        };
        let (who, token, lifetime) = (
            signed_in.principal,
            signed_in.session_token,
            signed_in.lifetime,
        );
        let set_cookie = session_cookie(&self.state, &token, lifetime.as_secs())
            .map_err(|e| UiError::Internal(e.message))?;
        let set_cookie = set_cookie
            .to_str()
            .map_err(|e| UiError::Internal(e.to_string()))?
            .to_owned();
        Ok(SignedIn {
            viewer: viewer(&who),
            set_cookie,
            device_cookie,
        })
    }

    async fn sign_out(&self, request: &Parts, csrf_token: &str) -> Result<String, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state.control.logout(&who).await.map_err(ui_error)?;
        let clear = session_cookie(&self.state, "", 0).map_err(|e| UiError::Internal(e.message))?;
        Ok(clear
            .to_str()
            .map_err(|e| UiError::Internal(e.to_string()))?
            .to_owned())
    }

    async fn viewer(&self, request: &Parts) -> Result<Viewer, UiError> {
        Ok(viewer(&self.principal(request).await?))
    }

    async fn me(&self, request: &Parts) -> Result<Me, UiError> {
        let who = self.principal(request).await?;
        Ok(me(self.state.control.me(&who).await.map_err(ui_error)?))
    }

    async fn set_my_cache(
        &self,
        request: &Parts,
        csrf_token: &str,
        enabled: bool,
    ) -> Result<Me, UiError> {
        let who = self.checked(request, csrf_token).await?;
        Ok(me(self
            .state
            .control
            .set_my_cache(&who, enabled)
            .await
            .map_err(ui_error)?))
    }

    async fn clear_my_cache(&self, request: &Parts, csrf_token: &str) -> Result<u64, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .clear_my_cache(&who)
            .await
            .map_err(ui_error)
    }

    async fn list_users(&self, request: &Parts, query: &UsersQuery) -> Result<UsersPage, UiError> {
        let who = self.principal(request).await?;
        let page = self
            .state
            .control
            .list_users(&who, &query.search, query.page, query.per_page)
            .await
            .map_err(ui_error)?;
        Ok(UsersPage {
            users: page
                .users
                .into_iter()
                .map(|u| UserRow {
                    user_id: u.user_id,
                    username: u.username,
                    role: u.role.map(str::to_owned),
                    cache_enabled: u.cache_enabled,
                    namespace_version: u.namespace_version,
                })
                .collect(),
            total: page.total,
            page: page.page,
            per_page: page.per_page,
            versions_available: page.versions_available,
        })
    }

    async fn set_user_cache(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
        enabled: bool,
    ) -> Result<(), UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .set_user_cache(&who, user_id, enabled)
            .await
            .map_err(ui_error)
    }

    async fn invalidate_user(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
    ) -> Result<u64, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .invalidate_user(&who, user_id)
            .await
            .map_err(ui_error)
    }

    async fn invalidate_table(
        &self,
        request: &Parts,
        csrf_token: &str,
        table: &str,
    ) -> Result<u64, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .invalidate_table(&who, table)
            .await
            .map_err(ui_error)
    }

    async fn purge_user(
        &self,
        request: &Parts,
        csrf_token: &str,
        user_id: &str,
    ) -> Result<Option<u64>, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .purge_user(&who, user_id, PURGE_WAIT)
            .await
            .map_err(ui_error)
    }

    async fn invalidate_all(&self, request: &Parts, csrf_token: &str) -> Result<u64, UiError> {
        let who = self.checked(request, csrf_token).await?;
        self.state
            .control
            .invalidate_all(&who)
            .await
            .map_err(ui_error)
    }

    async fn dashboard(&self, request: &Parts) -> Result<Dashboard, UiError> {
        let who = self.principal(request).await?;
        self.state.control.check_dashboard(&who).map_err(ui_error)?;
        let cache = self.state.control.cache();
        let metrics = cache.metrics().snapshot();
        let store = cache.store_stats();
        let (checked_at, health) = self.dashboard.health().await;
        let samples = self
            .dashboard
            .intervals()
            .into_iter()
            .map(|i| Sample {
                at_unix_ms: i.end_unix_ms,
                hit_rate: i.hit_rate,
                ops_per_sec: i.ops_per_sec,
                errors: i.errors,
                degraded: i.degraded,
            })
            .collect();
        Ok(Dashboard {
            samples,
            interval_secs: self.dashboard.interval().as_secs_f64(),
            totals: Totals {
                hits: metrics.hits,
                misses: metrics.misses,
                operations: metrics.operations,
                errors: metrics.errors,
                degraded: store.unavailable,
            },
            cache_store: dependency(&health.cache_store),
            database: dependency(&health.database),
            memory: health.cache_memory.as_ref().map(|m| MemoryState {
                used_bytes: m.used_bytes,
                max_bytes: m.max_bytes,
                eviction_policy: m.eviction_policy.clone(),
                evicted_keys: m.evicted_keys,
                version: m.version.clone(),
            }),
            component_ok: health.component,
            l1: self
                .state
                .control
                .cache()
                .settings()
                .l1_options()
                .map(|l1| L1State {
                    capacity_bytes: l1.capacity_bytes,
                    max_age_ms: u64::try_from(l1.max_age.as_millis()).unwrap_or(u64::MAX),
                }),
            checked_at_unix_ms: checked_at,
            checks: self.checks().await,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::DirectoryError;
    use nscache::CacheError;

    #[test]
    fn refusals_keep_their_meaning_and_hide_internals() {
        assert_eq!(
            ui_error(ControlError::Unauthenticated),
            UiError::Unauthenticated
        );
        assert_eq!(
            ui_error(ControlError::Forbidden("admins only".into())),
            UiError::Forbidden("admins only".into())
        );
        assert!(
            matches!(ui_error(ControlError::Invalid("bad".into())), UiError::Invalid(m) if m == "bad")
        );
        assert!(matches!(
            ui_error(ControlError::RateLimited(std::time::Duration::from_secs(
                30
            ))),
            UiError::RateLimited(_)
        ));
        assert!(
            matches!(ui_error(ControlError::Cache(CacheError::Unavailable("connection refused at 10.0.0.1".into()))), UiError::Unavailable(m) if !m.contains("10.0.0.1"))
        );
        assert!(
            matches!(ui_error(ControlError::Directory(DirectoryError::Unavailable("pg down".into()))), UiError::Unavailable(m) if !m.contains("pg down"))
        );
        assert!(
            matches!(ui_error(ControlError::Cache(CacheError::Component("trap at 0x1f".into()))), UiError::Internal(m) if !m.contains("0x1f"))
        );
    }
}
