//! Server functions: the only way the pages reach the server. Each one reads
//! the request from Leptos context and calls the [`UiBackend`], which checks
//! the session, the CSRF token and the permission.
//!
//! They work both ways a page can send them: as `fetch` calls from the
//! hydrated page (the result comes back as JSON and is shown in place), and
//! as plain form posts without JavaScript (then the outcome is left in a
//! short-lived flash cookie and the browser is sent back to the page).
//!
//! [`UiBackend`]: crate::backend::UiBackend

use leptos::prelude::*;

use crate::model::{Dashboard, Done, Me, PageContext, UiError, UsersPage};

/// Where the server functions are mounted.
pub const PREFIX: &str = "/ui/fn";

/// Rows per page of the users table unless asked otherwise.
pub const DEFAULT_PER_PAGE: u64 = 25;

#[cfg(feature = "ssr")]
pub(crate) mod serve {
    //! Helpers for the server-side bodies of the server functions.

    use std::sync::Arc;

    use axum::http::header::{ACCEPT, COOKIE, SET_COOKIE};
    use axum::http::request::Parts;
    use axum::http::{HeaderValue, StatusCode};
    use leptos::prelude::*;
    use leptos_axum::ResponseOptions;

    use crate::backend::{BackendHandle, UiBackend};
    use crate::model::{Flash, UiError};

    /// The flash cookie's name.
    pub const FLASH_COOKIE: &str = "nscache_flash";

    /// The backend and the request's head.
    pub fn context() -> Result<(Arc<dyn UiBackend>, Parts), UiError> {
        let backend = use_context::<BackendHandle>()
            .ok_or_else(|| UiError::Internal("the UI backend is not in context".into()))?;
        let parts = use_context::<Parts>()
            .ok_or_else(|| UiError::Internal("the request is not in context".into()))?;
        Ok((backend.0, parts))
    }

    /// True for a plain form post (no JavaScript): the browser wants HTML back.
    pub fn is_form_post(parts: &Parts) -> bool {
        parts
            .headers
            .get(ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    }

    /// Set the response status (server-side rendering).
    pub fn set_status(status: u16) {
        if let (Some(response), Ok(code)) = (
            use_context::<ResponseOptions>(),
            StatusCode::from_u16(status),
        ) {
            response.set_status(code);
        }
    }

    /// Add a `Set-Cookie` header to the response.
    pub fn set_cookie(value: &str) {
        if let (Some(response), Ok(value)) = (
            use_context::<ResponseOptions>(),
            HeaderValue::from_str(value),
        ) {
            response.append_header(SET_COOKIE, value);
        }
    }

    /// After a plain form post, leave the outcome for the next page and send
    /// people who are not signed in to the login page. `fetch` calls get the
    /// result as it is.
    pub fn finish<T>(
        parts: &Parts,
        result: Result<T, UiError>,
        message: impl FnOnce(&T) -> String,
    ) -> Result<T, UiError> {
        if is_form_post(parts) {
            let flash = match &result {
                Ok(value) => Flash {
                    error: false,
                    message: message(value),
                },
                Err(e) => Flash {
                    error: true,
                    message: e.to_string(),
                },
            };
            set_cookie(&format!(
                "{FLASH_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age=60",
                encode(&flash)
            ));
            if matches!(result, Err(UiError::Unauthenticated)) {
                leptos_axum::redirect("/login");
            }
        }
        result
    }

    /// The flash left by the previous request, if any (and clear it).
    pub fn take_flash(parts: &Parts) -> Option<Flash> {
        let raw = parts
            .headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(k, v)| (k == FLASH_COOKIE).then_some(v))?;
        set_cookie(&format!(
            "{FLASH_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"
        ));
        decode(raw)
    }

    /// `e` or `o`, then the message percent-encoded (cookie-safe).
    pub fn encode(flash: &Flash) -> String {
        let mut out = String::from(if flash.error { "e" } else { "o" });
        for b in flash.message.bytes().take(400) {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// The inverse of [`encode`]; `None` for anything it did not write.
    pub fn decode(raw: &str) -> Option<Flash> {
        let (kind, rest) = raw.split_at_checked(1)?;
        let error = match kind {
            "e" => true,
            "o" => false,
            _ => return None,
        };
        let mut bytes = Vec::with_capacity(rest.len());
        let mut iter = rest.bytes();
        while let Some(b) = iter.next() {
            if b == b'%' {
                let hex = [iter.next()?, iter.next()?];
                bytes.push(u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?);
            } else {
                bytes.push(b);
            }
        }
        Some(Flash {
            error,
            message: String::from_utf8(bytes).ok()?,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn flash_round_trips_through_a_cookie_value() {
            for (error, message) in [
                (false, "Cache turned off."),
                (true, "unavailable: Redis; said \"no\" = 100%"),
                (false, "ünïcode ✓"),
            ] {
                let flash = Flash {
                    error,
                    message: message.to_owned(),
                };
                let encoded = encode(&flash);
                assert!(
                    encoded
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b)),
                    "{encoded}"
                );
                assert_eq!(decode(&encoded), Some(flash));
            }
            assert_eq!(decode("x123"), None);
            assert_eq!(decode("e%4"), None);
            assert_eq!(decode(""), None);
        }
    }
}

/// Who is looking, and the message the previous form post left, if any.
#[server(prefix = "/ui/fn", endpoint = "page-context")]
pub async fn get_page_context() -> Result<PageContext, UiError> {
    let (backend, parts) = serve::context()?;
    let flash = serve::take_flash(&parts);
    let viewer = match backend.viewer(&parts).await {
        Ok(v) => Some(v),
        Err(UiError::Unauthenticated) => None,
        Err(e) => return Err(e),
    };
    Ok(PageContext { viewer, flash })
}

/// Sign in with a password; sets the session cookie and goes to "My settings".
#[server(prefix = "/ui/fn", endpoint = "sign-in")]
pub async fn sign_in(username: String, password: String) -> Result<(), UiError> {
    let (backend, parts) = serve::context()?;
    let result = if username.len() > 256 || password.len() > 1024 {
        Err(UiError::BadCredentials)
    } else {
        backend.sign_in(&parts, &username, &password).await
    };
    match result {
        Ok(signed_in) => {
            serve::set_cookie(&signed_in.set_cookie);
            if let Some(device) = &signed_in.device_cookie {
                serve::set_cookie(device);
            }
            leptos_axum::redirect("/me");
            Ok(())
        }
        Err(e) => {
            let _ = serve::finish::<()>(&parts, Err(e.clone()), |_| String::new());
            leptos_axum::redirect("/login");
            Err(e)
        }
    }
}

/// End the session; goes to the login page.
#[server(prefix = "/ui/fn", endpoint = "sign-out")]
pub async fn sign_out(csrf_token: String) -> Result<(), UiError> {
    let (backend, parts) = serve::context()?;
    let result = backend.sign_out(&parts, &csrf_token).await;
    if let Ok(clear) = &result {
        serve::set_cookie(clear);
        leptos_axum::redirect("/login");
    }
    serve::finish(&parts, result.map(|_| ()), |_| "Signed out.".into())
}

/// The signed-in person's settings.
#[server(prefix = "/ui/fn", endpoint = "me")]
pub async fn get_me() -> Result<Me, UiError> {
    let (backend, parts) = serve::context()?;
    backend.me(&parts).await
}

/// Turn one's own cache on or off.
#[server(prefix = "/ui/fn", endpoint = "set-my-cache")]
pub async fn set_my_cache(csrf_token: String, enabled: bool) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = backend
        .set_my_cache(&parts, &csrf_token, enabled)
        .await
        .map(|me| {
            Done::new(if me.cache_enabled {
                "Your cache is on: your data is cached again."
            } else {
                "Your cache is off: nothing of yours is cached until you turn it on."
            })
        });
    serve::finish(&parts, result, |d| d.message.clone())
}

/// Invalidate one's own namespace.
#[server(prefix = "/ui/fn", endpoint = "clear-my-cache")]
pub async fn clear_my_cache(csrf_token: String) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = backend
        .clear_my_cache(&parts, &csrf_token)
        .await
        .map(|v| Done::new(format!("Your cache was cleared (namespace version {v}).")));
    serve::finish(&parts, result, |d| d.message.clone())
}

/// A page of users (admins).
#[server(prefix = "/ui/fn", endpoint = "users")]
pub async fn list_users(search: String, page: u64, per_page: u64) -> Result<UsersPage, UiError> {
    let (backend, parts) = serve::context()?;
    backend
        .list_users(
            &parts,
            &crate::model::UsersQuery {
                search,
                page,
                per_page,
            },
        )
        .await
}

/// Override a user's flag (admins).
#[server(prefix = "/ui/fn", endpoint = "set-user-cache")]
pub async fn set_user_cache(
    csrf_token: String,
    user_id: String,
    enabled: bool,
) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = backend
        .set_user_cache(&parts, &csrf_token, &user_id, enabled)
        .await
        .map(|()| {
            Done::new(format!(
                "Cache of {user_id} turned {}.",
                if enabled { "on" } else { "off" }
            ))
        });
    serve::finish(&parts, result, |d| d.message.clone())
}

/// Invalidate a user's namespace (admins).
#[server(prefix = "/ui/fn", endpoint = "invalidate-user")]
pub async fn invalidate_user(csrf_token: String, user_id: String) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = backend
        .invalidate_user(&parts, &csrf_token, &user_id)
        .await
        .map(|v| Done::new(format!("Cache of {user_id} invalidated (version {v}).")));
    serve::finish(&parts, result, |d| d.message.clone())
}

/// Invalidate a table's cached queries (admins).
#[server(prefix = "/ui/fn", endpoint = "invalidate-table")]
pub async fn invalidate_table(csrf_token: String, table: String) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let table = table.trim().to_owned();
    let result = if table.is_empty() {
        Err(UiError::Invalid("enter a table name".into()))
    } else {
        backend
            .invalidate_table(&parts, &csrf_token, &table)
            .await
            .map(|v| {
                Done::new(format!(
                    "Cached queries over table {table} invalidated (version {v})."
                ))
            })
    };
    serve::finish(&parts, result, |d| d.message.clone())
}

/// Physically delete a user's entries of every version (admins), once
/// confirmed.
#[server(prefix = "/ui/fn", endpoint = "purge-user")]
pub async fn purge_user(
    csrf_token: String,
    user_id: String,
    confirm: String,
) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = if confirm != "yes" {
        Err(UiError::Invalid("purging needs the confirmation".into()))
    } else {
        backend
            .purge_user(&parts, &csrf_token, &user_id)
            .await
            .map(|removed| match removed {
                Some(n) => Done::new(format!("Deleted {n} keys of {user_id} (every version).")),
                None => Done::new(format!(
                    "The purge of {user_id} goes on in the background; the server logs its count."
                )),
            })
    };
    if result.is_ok() && serve::is_form_post(&parts) {
        leptos_axum::redirect("/admin");
    }
    serve::finish(&parts, result, |d| d.message.clone())
}

/// Invalidate every namespace (admins), once confirmed.
#[server(prefix = "/ui/fn", endpoint = "invalidate-all")]
pub async fn invalidate_all(csrf_token: String, confirm: String) -> Result<Done, UiError> {
    let (backend, parts) = serve::context()?;
    let result = if confirm != "yes" {
        Err(UiError::Invalid(
            "invalidating everything needs the confirmation".into(),
        ))
    } else {
        backend
            .invalidate_all(&parts, &csrf_token)
            .await
            .map(|floor| Done::new(format!("Every namespace was invalidated (floor {floor}).")))
    };
    if result.is_ok() && serve::is_form_post(&parts) {
        leptos_axum::redirect("/admin");
    }
    serve::finish(&parts, result, |d| d.message.clone())
}

/// The dashboard's series and health (admins).
#[server(prefix = "/ui/fn", endpoint = "dashboard")]
pub async fn get_dashboard() -> Result<Dashboard, UiError> {
    let (backend, parts) = serve::context()?;
    backend.dashboard(&parts).await
}
