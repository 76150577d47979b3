//! [`Control`]: what people and applications may do, checked in one place.
//! The HTTP API and the admin UI both call these functions; neither has
//! permission logic of its own.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::{self, LoginLimiter, PasswordChecks, SESSION_LIFETIME};
use crate::directory::{
    Account, DEVICE_LIFETIME, Directory, DirectoryError, NewAccount, Role, TokenInfo, unix_now,
    username_key,
};
use nscache::profiles::{CachedProfiles, ProfileError, ProfileSource};
use nscache::{Cache, CacheError, Keyspace, Scope};

/// Who is asking, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The account.
    pub account: Account,
    /// How it authenticated.
    pub via: Via,
}

/// How a principal authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Via {
    /// A browser session (cookie): state-changing requests need its CSRF token.
    Session {
        /// The session's CSRF token.
        csrf_token: String,
        /// SHA-256 of the session token (to end it).
        token_hash: Vec<u8>,
    },
    /// An API token (`Authorization: Bearer nsc_...`).
    ApiToken,
}

/// Why a request was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// No valid credentials.
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// Authenticated, but not allowed.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such user or thing.
    #[error("not found: {0}")]
    NotFound(String),
    /// Bad input.
    #[error("{0}")]
    Invalid(String),
    /// Already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// Too many failed logins; retry after this long.
    #[error("too many failed logins; retry in {} s", .0.as_secs().max(1))]
    RateLimited(Duration),
    /// Too many sign-ins being checked at once; retry after this long.
    #[error("too many sign-ins are being checked; retry in {} s", .0.as_secs().max(1))]
    LoginBusy(Duration),
    /// The cache failed.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The directory (database) failed.
    #[error(transparent)]
    Directory(DirectoryError),
}

impl From<ProfileError> for ControlError {
    fn from(e: ProfileError) -> Self {
        DirectoryError::from(e).into()
    }
}

impl From<DirectoryError> for ControlError {
    fn from(e: DirectoryError) -> Self {
        match e {
            DirectoryError::NotFound(m) => ControlError::NotFound(m),
            DirectoryError::Conflict(m) => ControlError::Conflict(m),
            DirectoryError::Invalid(m) => ControlError::Invalid(m),
            other => ControlError::Directory(other),
        }
    }
}

/// A successful sign-in.
#[derive(Debug, Clone)]
pub struct SignIn {
    /// Who signed in (via the new session).
    pub principal: Principal,
    /// The session token (for the session cookie).
    pub session_token: String,
    /// How long the session lasts.
    pub lifetime: Duration,
    /// A new device cookie for this browser, when it sent none valid for
    /// this account (lasts [`DEVICE_LIFETIME`]).
    pub device_token: Option<String>,
}

/// What a signed-in person sees about themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MeView {
    /// Login name.
    pub username: String,
    /// Role.
    pub role: &'static str,
    /// Their namespace id.
    pub user_id: String,
    /// Whether their data is cached.
    pub cache_enabled: bool,
    /// Their namespace version (`None`: nothing cached, or unknown).
    #[schema(required = true)]
    pub namespace_version: Option<u64>,
}

/// One user as admins see them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UserView {
    /// Namespace id.
    pub user_id: String,
    /// Login name, if the user has an nscache account.
    #[schema(required = true)]
    pub username: Option<String>,
    /// Role, if the user has an nscache account.
    #[schema(required = true)]
    pub role: Option<&'static str>,
    /// The profile flag.
    pub cache_enabled: bool,
    /// Namespace version (`None`: nothing cached, or the cache is down).
    #[schema(required = true)]
    pub namespace_version: Option<u64>,
}

/// A page of users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct UsersPage {
    /// The users on this page.
    pub users: Vec<UserView>,
    /// Users matching the search.
    pub total: u64,
    /// This page (from 1).
    pub page: u64,
    /// Page size.
    pub per_page: u64,
    /// False when the cache could not be asked for versions.
    pub versions_available: bool,
}

/// The state of one dependency.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct DependencyHealth {
    /// Which backend (`redis`, `memory`, `postgres`, `sqlite`).
    pub backend: &'static str,
    /// Whether it answered.
    pub ok: bool,
    /// Round-trip time, if it answered.
    #[schema(required = true)]
    pub latency_ms: Option<f64>,
    /// What went wrong, if it did not.
    #[schema(required = true)]
    pub error: Option<String>,
}

/// The cache store's memory, for the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct StoreMemory {
    /// Bytes used.
    pub used_bytes: u64,
    /// Limit, if any.
    #[schema(required = true)]
    pub max_bytes: Option<u64>,
    /// Eviction policy.
    pub eviction_policy: String,
    /// Keys evicted since the store started.
    pub evicted_keys: u64,
    /// Server version, if any.
    #[schema(required = true)]
    pub version: Option<String>,
}

/// What `/health` reports.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct HealthReport {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// The cache component is loaded and answering.
    pub component: bool,
    /// The cache store.
    pub cache_store: DependencyHealth,
    /// The cache store's memory (when it answered).
    #[schema(required = true)]
    pub cache_memory: Option<StoreMemory>,
    /// The database of accounts and profiles.
    pub database: DependencyHealth,
    /// Whether profile changes from other processes are heard (`None`: single process).
    #[schema(required = true)]
    pub profile_feed_live: Option<bool>,
    /// Which dependencies are down.
    pub failing: Vec<&'static str>,
}

impl HealthReport {
    /// True when every dependency answered.
    pub fn is_ok(&self) -> bool {
        self.failing.is_empty()
    }
}

/// The operations of the server, each checking who may do it.
#[derive(Debug)]
pub struct Control {
    cache: Cache,
    directory: Arc<dyn Directory>,
    profiles: Arc<CachedProfiles>,
    limiter: LoginLimiter,
    /// Argon2 verifications in flight (bounded: each holds ~19 MiB).
    checks: PasswordChecks,
    /// Credentials verified against the database, by secret hash: used only
    /// while the database is unreachable, and only for the first
    /// `outage_grace` of an outage, so that applications and signed-in people
    /// ride out a short one (revocations made during it apply when it ends,
    /// or at the latest when the grace runs out).
    verified: std::sync::RwLock<std::collections::HashMap<Vec<u8>, (Principal, i64)>>,
    /// When the database was first found unreachable in the current outage.
    outage_since: std::sync::Mutex<Option<Instant>>,
    /// How long into an outage remembered verifications are honoured.
    outage_grace: Duration,
}

/// How long into a database outage credentials verified before it are
/// still honoured (then 503 until the database answers again).
pub const OUTAGE_GRACE: Duration = Duration::from_secs(60);

/// Reject a name (user id, table, key) with control characters coming from
/// outside: names travel in URLs and logs. Emptiness and length are the
/// component's rules and are checked there.
pub fn check_name(what: &str, name: &str) -> Result<(), ControlError> {
    if name.chars().any(char::is_control) {
        return Err(ControlError::Invalid(format!(
            "{what} contains control characters"
        )));
    }
    Ok(())
}

fn require(who: &Principal, roles: &[Role], what: &str) -> Result<(), ControlError> {
    if roles.contains(&who.account.role) {
        Ok(())
    } else {
        Err(ControlError::Forbidden(format!(
            "{what} needs the {} role",
            roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        )))
    }
}

impl Control {
    /// Control over `cache`, whose profile source is `profiles` (flags kept
    /// in `directory`, where the accounts are).
    pub fn new(
        cache: Cache,
        directory: Arc<dyn Directory>,
        profiles: Arc<CachedProfiles>,
    ) -> Control {
        Control {
            cache,
            directory,
            profiles,
            limiter: LoginLimiter::default(),
            checks: PasswordChecks::per_core(),
            verified: Default::default(),
            outage_since: Default::default(),
            outage_grace: OUTAGE_GRACE,
        }
    }

    /// Replace the login limiter.
    pub fn with_limiter(mut self, limiter: LoginLimiter) -> Control {
        self.limiter = limiter;
        self
    }

    /// Honour remembered verifications for `grace` into a database outage
    /// (default [`OUTAGE_GRACE`]).
    pub fn with_outage_grace(mut self, grace: Duration) -> Control {
        self.outage_grace = grace;
        self
    }

    /// Replace the bound on password checks in flight.
    pub fn with_password_checks(mut self, checks: PasswordChecks) -> Control {
        self.checks = checks;
        self
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.directory
    }

    /// The profile source.
    pub fn profiles(&self) -> &Arc<CachedProfiles> {
        &self.profiles
    }

    // --- accounts -------------------------------------------------------

    /// Create an account. Users and admins need a password; services have
    /// none. With an application's profile table, a user or admin must be
    /// one of its users (`user_id`); otherwise an account without one gets a
    /// namespace of its own (see
    /// [`ACCOUNT_NAMESPACE_PREFIX`](crate::directory::ACCOUNT_NAMESPACE_PREFIX)).
    pub async fn create_account(
        &self,
        username: &str,
        role: Role,
        password: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Account, ControlError> {
        if user_id.is_none() && role != Role::Service && self.directory().application_profiles() {
            return Err(ControlError::Invalid(format!(
                "the flags live in the application's profile table, so a {} account is one of \
                 its users: pass --user-id ID (the application's id of that person)",
                role.as_str()
            )));
        }
        self.create_account_unchecked(username, role, password, user_id)
            .await
    }

    /// [`Control::create_account`] without the profile-table rule (the first
    /// admin, who gets a namespace of their own).
    async fn create_account_unchecked(
        &self,
        username: &str,
        role: Role,
        password: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<Account, ControlError> {
        let password_hash = match (role, password) {
            (Role::Service, None) => None,
            (Role::Service, Some(_)) => {
                return Err(ControlError::Invalid(
                    "service accounts use API tokens, not passwords".into(),
                ));
            }
            (_, None) => {
                return Err(ControlError::Invalid(
                    "users and admins need a password".into(),
                ));
            }
            (_, Some(p)) if p.chars().count() < 8 => {
                return Err(ControlError::Invalid(
                    "a password has at least 8 characters".into(),
                ));
            }
            (_, Some(p)) => Some(auth::hash_password(p).map_err(ControlError::Invalid)?),
        };
        if let Some(u) = user_id {
            crate::directory::check_account_user_id(u)?;
        }
        crate::directory::check_username(username)?;
        Ok(self
            .directory()
            .create_account(&NewAccount {
                username: username.to_owned(),
                role,
                user_id: user_id.map(str::to_owned),
                password_hash,
            })
            .await?)
    }

    /// If there is no admin, create `admin` with a random password and return it.
    pub async fn ensure_admin(&self) -> Result<Option<(String, String)>, ControlError> {
        if self.directory().count_admins().await? > 0 {
            return Ok(None);
        }
        let password = auth::random_secret(12);
        let name = if self
            .directory()
            .account_by_username("admin")
            .await?
            .is_none()
        {
            "admin".to_owned()
        } else {
            format!("admin-{}", &auth::random_secret(3))
        };
        self.create_account_unchecked(&name, Role::Admin, Some(&password), None)
            .await?;
        Ok(Some((name, password)))
    }

    /// Create an API token for `username`'s account; returns it (shown once).
    pub async fn create_token(&self, username: &str, name: &str) -> Result<String, ControlError> {
        self.create_token_expiring(username, name, None).await
    }

    /// Create an API token that is refused after `lifetime` (`None`: valid
    /// until revoked); returns it (shown once).
    pub async fn create_token_expiring(
        &self,
        username: &str,
        name: &str,
        lifetime: Option<Duration>,
    ) -> Result<String, ControlError> {
        let account = self
            .directory()
            .account_by_username(username)
            .await?
            .ok_or_else(|| ControlError::NotFound(format!("account {username:?}")))?;
        let expires_at = lifetime
            .map(|l| unix_now().saturating_add(i64::try_from(l.as_secs()).unwrap_or(i64::MAX)));
        let token = auth::new_api_token();
        self.directory()
            .create_token(account.id, name, &auth::secret_hash(&token), expires_at)
            .await?;
        Ok(token)
    }

    /// Every API token (never the tokens themselves).
    pub async fn list_tokens(&self) -> Result<Vec<TokenInfo>, ControlError> {
        Ok(self.directory().list_tokens().await?)
    }

    /// Revoke the token with this id: refused from the next request on.
    pub async fn revoke_token(&self, id: i64) -> Result<(), ControlError> {
        if !self.directory().revoke_token(id).await? {
            return Err(ControlError::NotFound(format!("token {id}")));
        }
        self.forget_verified(|_| true);
        Ok(())
    }

    /// Set `username`'s password (at least 8 characters); their sessions end.
    pub async fn set_password(&self, username: &str, password: &str) -> Result<(), ControlError> {
        if password.chars().count() < 8 {
            return Err(ControlError::Invalid(
                "a password has at least 8 characters".into(),
            ));
        }
        let hash = auth::hash_password(password).map_err(ControlError::Invalid)?;
        self.directory().set_password(username, &hash).await?;
        self.forget_verified(|p| username_key(&p.account.username) == username_key(username));
        Ok(())
    }

    /// Disable (sessions end, tokens and sign-in refused) or enable an account.
    pub async fn set_disabled(&self, username: &str, disabled: bool) -> Result<(), ControlError> {
        self.directory().set_disabled(username, disabled).await?;
        self.forget_verified(|p| username_key(&p.account.username) == username_key(username));
        Ok(())
    }

    /// Delete an account; its sessions, tokens and device cookies go with it.
    pub async fn delete_account(&self, username: &str) -> Result<(), ControlError> {
        self.directory().delete_account(username).await?;
        self.forget_verified(|p| username_key(&p.account.username) == username_key(username));
        Ok(())
    }

    /// Drop remembered verifications matching `which`.
    fn forget_verified(&self, which: impl Fn(&Principal) -> bool) {
        self.verified
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|_, (p, _)| !which(p));
    }

    // --- authentication -------------------------------------------------

    /// Check a password; on success open a session. `device` is the
    /// browser's device cookie, if it sent one (see [`LoginLimiter`]).
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        address: IpAddr,
        device: Option<&str>,
    ) -> Result<SignIn, ControlError> {
        let account = self.directory().account_by_username(username).await?;
        let device_hash = device.map(auth::secret_hash);
        let trusted = match (&account, &device_hash) {
            (Some(a), Some(hash)) => {
                self.directory().device_account(hash, unix_now()).await? == Some(a.id)
            }
            _ => false,
        };
        let attempt = self
            .limiter
            .reserve(
                &username_key(username),
                address,
                device_hash.as_deref().filter(|_| trusted),
            )
            .map_err(ControlError::RateLimited)?;
        let hash = account.as_ref().and_then(|a| a.password_hash.clone());
        let checked = self
            .checks
            .verify(
                hash.unwrap_or_else(|| auth::dummy_hash().to_owned()),
                password.to_owned(),
            )
            .await;
        let ok = match checked {
            Ok(ok) => ok,
            Err(auth::Busy) => {
                self.limiter.release(attempt);
                return Err(ControlError::LoginBusy(Duration::from_secs(1)));
            }
        };
        let account = match account {
            Some(a) if ok && a.password_hash.is_some() => a,
            // A failure stays counted.
            _ => return Err(ControlError::BadCredentials),
        };
        self.limiter.succeeded(attempt);
        let device_token = if trusted {
            None
        } else {
            let token = auth::random_secret(32);
            self.directory()
                .create_device(
                    &auth::secret_hash(&token),
                    account.id,
                    unix_now() + DEVICE_LIFETIME.as_secs() as i64,
                )
                .await?;
            Some(token)
        };
        let token = auth::random_secret(32);
        let csrf_token = auth::random_secret(32);
        let token_hash = auth::secret_hash(&token);
        self.directory()
            .create_session(
                &token_hash,
                account.id,
                &csrf_token,
                unix_now() + SESSION_LIFETIME.as_secs() as i64,
            )
            .await?;
        Ok(SignIn {
            principal: Principal {
                account,
                via: Via::Session {
                    csrf_token,
                    token_hash,
                },
            },
            session_token: token,
            lifetime: SESSION_LIFETIME,
            device_token,
        })
    }

    /// End a session.
    pub async fn logout(&self, who: &Principal) -> Result<(), ControlError> {
        if let Via::Session { token_hash, .. } = &who.via {
            self.verified
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(token_hash);
            self.directory().delete_session(token_hash).await?;
        }
        Ok(())
    }

    /// Remember (or forget) what the database said about a credential; when
    /// it cannot be asked, answer from memory.
    fn verified(
        &self,
        hash: &[u8],
        answer: Result<Option<(Principal, i64)>, DirectoryError>,
    ) -> Result<Option<Principal>, ControlError> {
        let in_grace = {
            let mut since = self.outage_since.lock().unwrap_or_else(|p| p.into_inner());
            match &answer {
                Err(DirectoryError::Unavailable(_)) => {
                    since.get_or_insert_with(Instant::now).elapsed() <= self.outage_grace
                }
                _ => {
                    *since = None;
                    true
                }
            }
        };
        let mut verified = self.verified.write().unwrap_or_else(|p| p.into_inner());
        match answer {
            Ok(Some((principal, expires_at))) => {
                if verified.len() > 100_000 {
                    verified.retain(|_, (_, exp)| *exp > unix_now());
                }
                verified.insert(hash.to_vec(), (principal.clone(), expires_at));
                Ok(Some(principal))
            }
            Ok(None) => {
                verified.remove(hash);
                Ok(None)
            }
            Err(DirectoryError::Unavailable(e)) => match verified.get(hash) {
                Some((principal, expires_at)) if in_grace && *expires_at > unix_now() => {
                    Ok(Some(principal.clone()))
                }
                _ => Err(ControlError::Directory(DirectoryError::Unavailable(e))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The principal of a session token, if it is live.
    pub async fn session(&self, token: &str) -> Result<Option<Principal>, ControlError> {
        let token_hash = auth::secret_hash(token);
        let answer = self
            .directory()
            .session(&token_hash, unix_now())
            .await
            .map(|found| {
                found.map(|s| {
                    (
                        Principal {
                            account: s.account,
                            via: Via::Session {
                                csrf_token: s.csrf_token,
                                token_hash: token_hash.clone(),
                            },
                        },
                        s.expires_at,
                    )
                })
            });
        self.verified(&token_hash, answer)
    }

    /// The principal of an API token.
    pub async fn api_token(&self, token: &str) -> Result<Option<Principal>, ControlError> {
        if !token.starts_with(auth::TOKEN_PREFIX) {
            return Ok(None);
        }
        let hash = auth::secret_hash(token);
        let answer = self
            .directory()
            .account_by_token(&hash, unix_now())
            .await
            .map(|found| {
                found.map(|holder| {
                    (
                        Principal {
                            account: holder.account,
                            via: Via::ApiToken,
                        },
                        // Remembered no longer than the token lives, also
                        // through a database outage.
                        holder.expires_at.unwrap_or(i64::MAX),
                    )
                })
            });
        self.verified(&hash, answer)
    }

    // --- the signed-in person -------------------------------------------

    /// What `who` sees about themselves.
    pub async fn me(&self, who: &Principal) -> Result<MeView, ControlError> {
        let user_id = &who.account.user_id;
        let cache_enabled = self.profiles.cache_enabled(user_id).await?;
        let namespace_version = self.cache.version_of(user_id).await.ok().flatten();
        Ok(MeView {
            username: who.account.username.clone(),
            role: who.account.role.as_str(),
            user_id: user_id.clone(),
            cache_enabled,
            namespace_version,
        })
    }

    /// Turn `who`'s own cache on or off.
    pub async fn set_my_cache(
        &self,
        who: &Principal,
        enabled: bool,
    ) -> Result<MeView, ControlError> {
        require(
            who,
            &[Role::User, Role::Admin],
            "changing your cache setting",
        )?;
        self.toggle(&who.account.user_id, enabled).await?;
        self.me(who).await
    }

    /// Invalidate `who`'s own namespace ("Clear my cache").
    pub async fn clear_my_cache(&self, who: &Principal) -> Result<u64, ControlError> {
        require(who, &[Role::User, Role::Admin], "clearing your cache")?;
        Ok(self.cache.invalidate_user(&who.account.user_id).await?)
    }

    /// Change a flag: the namespace is invalidated first (nothing written
    /// while the flag was in its other state survives the change; if the
    /// cache is down, nothing changes), then the flag is saved and announced.
    async fn toggle(&self, user_id: &str, enabled: bool) -> Result<(), ControlError> {
        self.cache.invalidate_user(user_id).await?;
        self.profiles.set_cache_enabled(user_id, enabled).await?;
        Ok(())
    }

    // --- admins ----------------------------------------------------------

    /// Users matching `search` (prefix of id or name), a page at a time.
    pub async fn list_users(
        &self,
        who: &Principal,
        search: &str,
        page: u64,
        per_page: u64,
    ) -> Result<UsersPage, ControlError> {
        require(who, &[Role::Admin], "listing users")?;
        if !(1..=200).contains(&per_page) || page == 0 || page > 1_000_000 {
            return Err(ControlError::Invalid(
                "page starts at 1 and per_page is 1 to 200".into(),
            ));
        }
        if search.len() > 256 || search.chars().any(char::is_control) {
            return Err(ControlError::Invalid(
                "search is at most 256 bytes, without control characters".into(),
            ));
        }
        let found = self
            .directory()
            .list_users(search, (page - 1) * per_page, per_page)
            .await?;
        let ids: Vec<&str> = found.users.iter().map(|u| u.user_id.as_str()).collect();
        let versions = self.cache.versions_of(&ids).await;
        let versions_available = versions.is_ok();
        let versions = versions.unwrap_or_else(|_| vec![None; ids.len()]);
        let users = found
            .users
            .into_iter()
            .zip(versions)
            .map(|(u, namespace_version)| UserView {
                user_id: u.user_id,
                username: u.username,
                role: u.role.map(Role::as_str),
                cache_enabled: u.cache_enabled,
                namespace_version,
            })
            .collect();
        Ok(UsersPage {
            users,
            total: found.total,
            page,
            per_page,
            versions_available,
        })
    }

    /// Override a user's flag.
    pub async fn set_user_cache(
        &self,
        who: &Principal,
        user_id: &str,
        enabled: bool,
    ) -> Result<(), ControlError> {
        require(who, &[Role::Admin], "changing another user's cache setting")?;
        check_name("user id", user_id)?;
        self.toggle(user_id, enabled).await
    }

    /// Invalidate a user's namespace.
    pub async fn invalidate_user(
        &self,
        who: &Principal,
        user_id: &str,
    ) -> Result<u64, ControlError> {
        require(
            who,
            &[Role::Admin, Role::Service],
            "invalidating a user's cache",
        )?;
        check_name("user id", user_id)?;
        Ok(self.cache.invalidate_user(user_id).await?)
    }

    /// Invalidate a table's cached queries.
    pub async fn invalidate_table(
        &self,
        who: &Principal,
        table: &str,
    ) -> Result<u64, ControlError> {
        require(who, &[Role::Admin, Role::Service], "invalidating a table")?;
        check_name("table name", table)?;
        Ok(self.cache.invalidate_table(table).await?)
    }

    /// Invalidate every namespace.
    pub async fn invalidate_all(&self, who: &Principal) -> Result<u64, ControlError> {
        require(
            who,
            &[Role::Admin, Role::Service],
            "invalidating everything",
        )?;
        Ok(self.cache.invalidate_all().await?)
    }

    /// Physically delete every key of `user_id`'s namespace, every version
    /// (admins; right to erasure). The SCAN runs in a background task: the
    /// count when it ends within `wait`, else `None` (the task goes on and
    /// logs its count). O(keys in the database): an admin's command, never
    /// a request path of the cache API.
    pub async fn purge_user(
        &self,
        who: &Principal,
        user_id: &str,
        wait: Duration,
    ) -> Result<Option<u64>, ControlError> {
        require(who, &[Role::Admin], "purging a user's entries")?;
        check_name("user id", user_id)?;
        let mut maintenance =
            crate::maintenance::Maintenance::connect(&self.cache.resolved_settings())
                .await
                .map_err(|e| match e {
                    crate::maintenance::MaintenanceError::Refused(m) => ControlError::Invalid(m),
                    other => ControlError::Cache(CacheError::Unavailable(other.to_string())),
                })?;
        let user = user_id.to_owned();
        let by = who.account.username.clone();
        let task = tokio::spawn(async move {
            let result = maintenance.purge_user(&user).await;
            match &result {
                Ok(n) => {
                    tracing::info!(user = %user, by = %by, removed = n, "purged a user's entries")
                }
                Err(e) => {
                    tracing::warn!(user = %user, by = %by, error = %e, "purging a user's entries failed")
                }
            }
            result
        });
        match tokio::time::timeout(wait, task).await {
            Ok(Ok(Ok(n))) => Ok(Some(n)),
            Ok(Ok(Err(e))) => Err(ControlError::Cache(CacheError::Unavailable(e.to_string()))),
            Ok(Err(join)) => Err(ControlError::Cache(CacheError::Internal(join.to_string()))),
            Err(_) => Ok(None),
        }
    }

    /// May `who` read the admin dashboard (admins)?
    pub fn check_dashboard(&self, who: &Principal) -> Result<(), ControlError> {
        require(who, &[Role::Admin], "reading the dashboard")
    }

    /// The metrics text (admins and services).
    pub fn metrics(&self, who: &Principal) -> Result<String, ControlError> {
        require(who, &[Role::Admin, Role::Service], "reading metrics")?;
        Ok(self.cache.render_metrics())
    }

    // --- cache data ------------------------------------------------------

    /// The keyspace `who` may use for `space`: services any; users and admins
    /// only their own namespace.
    pub fn keyspace(&self, who: &Principal, scope: &Scope) -> Result<Keyspace, ControlError> {
        match (who.account.role, scope) {
            (Role::Service, Scope::Global) => Ok(self.cache.global()),
            (Role::Service, Scope::User(u)) => Ok(self.cache.user(u.clone())),
            (_, Scope::User(u)) if *u == who.account.user_id => Ok(self.cache.user(u.clone())),
            (_, Scope::User(_)) => Err(ControlError::Forbidden(
                "users reach only their own namespace".into(),
            )),
            (_, Scope::Global) => Err(ControlError::Forbidden(
                "the global keyspace needs the service role".into(),
            )),
        }
    }

    /// Locks are for services.
    pub fn check_locks(&self, who: &Principal) -> Result<(), ControlError> {
        require(who, &[Role::Service], "taking locks")
    }

    // --- health ----------------------------------------------------------

    /// Reachability and latency of every dependency.
    pub async fn health(&self) -> HealthReport {
        let store = self.cache.store();
        let (ping, memory) = tokio::join!(store.ping(), store.memory_info());
        let cache_store = DependencyHealth {
            backend: store.kind(),
            ok: ping.is_ok(),
            latency_ms: ping.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
            error: ping.as_ref().err().map(ToString::to_string),
        };
        let cache_memory = memory.ok().map(|m| StoreMemory {
            used_bytes: m.used_bytes,
            max_bytes: m.max_bytes,
            eviction_policy: m.eviction_policy,
            evicted_keys: m.evicted_keys,
            version: m.version,
        });
        let started = Instant::now();
        let db = tokio::time::timeout(Duration::from_secs(5), self.directory().ping()).await;
        let database = match db {
            Ok(Ok(_)) => DependencyHealth {
                backend: self.directory().kind(),
                ok: true,
                latency_ms: Some(started.elapsed().as_secs_f64() * 1000.0),
                error: None,
            },
            Ok(Err(e)) => DependencyHealth {
                backend: self.directory().kind(),
                ok: false,
                latency_ms: None,
                error: Some(e.to_string()),
            },
            Err(_) => DependencyHealth {
                backend: self.directory().kind(),
                ok: false,
                latency_ms: None,
                error: Some("no answer within 5 s".into()),
            },
        };
        let component = !matches!(
            self.cache.version_of("health-check").await,
            Err(CacheError::Component(_))
        );
        let mut failing = Vec::new();
        if !cache_store.ok {
            failing.push(if cache_store.backend.starts_with("redis") {
                "redis"
            } else {
                "cache store"
            });
        }
        if !database.ok {
            failing.push(if database.backend == "postgres" {
                "postgres"
            } else {
                "database"
            });
        }
        if !component {
            failing.push("component");
        }
        HealthReport {
            status: if failing.is_empty() { "ok" } else { "degraded" },
            component,
            cache_store,
            cache_memory,
            database,
            profile_feed_live: self.profiles.feed_live(),
            failing,
        }
    }
}
