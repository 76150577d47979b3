//! Servers for the tests: a per-test Postgres schema, the shared Redis with a
//! unique prefix and namespace root, and helpers to make accounts and send
//! requests through the router in process.

use std::str::FromStr;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use nscache_server::directory::{
    Directory, PostgresDirectory, ProfileTable, Role, SqliteDirectory,
};
use nscache_server::server::{Server, ServerConfig};
use serde_json::Value;
use sqlx::postgres::{PgConnectOptions, PgPool};
use tower::ServiceExt;

use crate::{openapi, redis_url, unique};

/// The Postgres the tests use (`NSCACHE_TEST_DATABASE_URL`, default the
/// `test` database on 127.0.0.1 as `postgres`).
pub fn postgres_url() -> String {
    std::env::var("NSCACHE_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// A schema of the test's own; everything the test creates lives in it.
pub struct PgSchema {
    /// The schema name.
    pub name: String,
    admin: PgPool,
}

impl PgSchema {
    /// Create a fresh, empty schema.
    pub async fn create() -> PgSchema {
        let admin = PgPool::connect(&postgres_url())
            .await
            .expect("Postgres is running (.ci/run starts it)");
        let name = unique("s").to_lowercase();
        sqlx::query(&format!("CREATE SCHEMA \"{name}\""))
            .execute(&admin)
            .await
            .expect("create schema");
        PgSchema { name, admin }
    }

    /// Connection options whose `search_path` is this schema.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::from_str(&postgres_url())
            .expect("valid URL")
            .options([("search_path", self.name.as_str())])
    }

    /// A URL whose `search_path` is this schema (for child processes).
    pub fn url(&self) -> String {
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options[search_path]={}", self.name)
    }

    /// A pool on this schema.
    pub async fn pool(&self) -> PgPool {
        PgPool::connect_with(self.options()).await.expect("connect")
    }

    /// Drop the schema and everything in it.
    pub async fn drop(self) {
        let _ = sqlx::query(&format!("DROP SCHEMA \"{}\" CASCADE", self.name))
            .execute(&self.admin)
            .await;
    }
}

/// Credentials for a request.
#[derive(Debug, Clone)]
pub enum Creds {
    /// None at all.
    Anonymous,
    /// A browser session: cookie and CSRF token.
    Session {
        /// `nscache_session=...`
        cookie: String,
        /// The session's CSRF token.
        csrf: String,
    },
    /// A session cookie without the CSRF header (a forged cross-site request).
    CookieOnly(String),
    /// An API token.
    Bearer(String),
}

/// A response: status and JSON body (`Value::Null` when not JSON).
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: StatusCode,
    /// The body, parsed.
    pub json: Value,
    /// The body as text.
    pub text: String,
    /// `Set-Cookie`, if any (the first).
    pub set_cookie: Option<String>,
    /// Every `Set-Cookie`.
    pub cookies: Vec<String>,
    /// `Location`, if any.
    pub location: Option<String>,
    /// Every header of the response.
    pub headers: axum::http::HeaderMap,
}

/// A server built in process on real backends.
pub struct TestServer {
    /// The server.
    pub server: Server,
    /// Its router.
    pub router: Router,
    /// The Postgres schema, when on Postgres.
    pub schema: Option<PgSchema>,
}

impl TestServer {
    /// On Postgres (a fresh schema, migrated) and the shared Redis.
    pub async fn postgres() -> TestServer {
        Self::postgres_with(ProfileTable::default()).await
    }

    /// On Postgres with a given profile table, and the shared Redis.
    pub async fn postgres_with(profiles: ProfileTable) -> TestServer {
        Self::postgres_custom(profiles, None, ServerConfig::default()).await
    }

    /// On Postgres, reached through `port` on 127.0.0.1 when given (a proxy),
    /// with the shared Redis and `base` for the other settings.
    pub async fn postgres_custom(
        profiles: ProfileTable,
        port: Option<u16>,
        base: ServerConfig,
    ) -> TestServer {
        let schema = PgSchema::create().await;
        let mut options = schema.options();
        if let Some(port) = port {
            options = options.host("127.0.0.1").port(port);
        }
        let directory = PostgresDirectory::with_options(
            options,
            profiles,
            format!("test schema {}", schema.name),
        );
        directory.migrate().await.expect("migrate");
        let mut config = base;
        config.cache.redis_url = Some(redis_url());
        config.cache.pool_size = 4;
        config.cache.key_prefix = Some(unique("p"));
        config.cache.namespace_root = Some(unique("ns"));
        let server = Server::with_directory(config, Arc::new(directory))
            .await
            .expect("server");
        TestServer {
            router: server.router(),
            server,
            schema: Some(schema),
        }
    }

    /// The embedded default: SQLite in a temp directory and the memory store.
    pub async fn embedded() -> TestServer {
        let dir = std::env::temp_dir().join(unique("data"));
        let directory = SqliteDirectory::open(&dir.join("nscache.db"), ProfileTable::default())
            .await
            .expect("sqlite");
        directory.migrate().await.expect("migrate");
        let config = ServerConfig {
            data_dir: dir,
            ..ServerConfig::default()
        };
        let server = Server::with_directory(config, Arc::new(directory))
            .await
            .expect("server");
        TestServer {
            router: server.router(),
            server,
            schema: None,
        }
    }

    /// The directory.
    pub fn directory(&self) -> &Arc<dyn Directory> {
        self.server.control().directory()
    }

    /// Create an account; returns its namespace id.
    pub async fn account(&self, name: &str, role: Role) -> String {
        let password = (role != Role::Service).then_some("correct horse battery");
        self.server
            .control()
            .create_account(name, role, password, None)
            .await
            .expect("create account")
            .user_id
    }

    /// Sign in as `name` (password `correct horse battery`).
    pub async fn login(&self, name: &str) -> Creds {
        let reply = self
            .call(
                Method::POST,
                "/api/v1/session",
                &Creds::Anonymous,
                Some(serde_json::json!({ "username": name, "password": "correct horse battery" })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login {name}: {}", reply.text);
        let cookie = reply
            .set_cookie
            .expect("a session cookie")
            .split(';')
            .next()
            .expect("cookie pair")
            .to_owned();
        Creds::Session {
            cookie,
            csrf: reply.json["csrf_token"]
                .as_str()
                .expect("csrf token")
                .to_owned(),
        }
    }

    /// An API token for `name`.
    pub async fn token(&self, name: &str) -> Creds {
        Creds::Bearer(
            self.server
                .control()
                .create_token(name, "test")
                .await
                .expect("token"),
        )
    }

    /// Send a request with a JSON body (or none).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        creds: &Creds,
        body: Option<Value>,
    ) -> Reply {
        let body = body.map(|b| b.to_string());
        self.raw(
            method,
            path,
            creds,
            body.as_deref(),
            body.is_some().then_some("application/json"),
        )
        .await
    }

    /// Send a request with a raw body and content type.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        creds: &Creds,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> Reply {
        let headers: Vec<(&str, &str)> = content_type
            .map(|ct| ("content-type", ct))
            .into_iter()
            .collect();
        self.send(method, path, creds, body, &headers).await
    }

    /// Send a request with a raw body and extra headers (as a browser would:
    /// `accept`, `referer`, a form's content type). Every answer from the API
    /// is checked against the OpenAPI document: one it does not describe
    /// fails the test (see [`openapi`](crate::openapi)).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        creds: &Creds,
        body: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method_name = method.to_string();
        let mut request = Request::builder().method(method).uri(path);
        match creds {
            Creds::Anonymous => {}
            Creds::Session { cookie, csrf } => {
                request = request
                    .header(header::COOKIE, cookie)
                    .header("x-csrf-token", csrf)
            }
            Creds::CookieOnly(cookie) => request = request.header(header::COOKIE, cookie),
            Creds::Bearer(token) => {
                request = request.header(header::AUTHORIZATION, format!("Bearer {token}"))
            }
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned())))
            .expect("request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("infallible router");
        let status = response.status();
        let set_cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let cookies = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let location = response
            .headers()
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let content_type = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let response_headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        if openapi::is_api(path) {
            openapi::assert_documented(&openapi::Response {
                method: &method_name,
                path,
                status: status.as_u16(),
                content_type: content_type.as_deref(),
                body: &bytes,
            });
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        Reply {
            status,
            json: serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
            set_cookie,
            cookies,
            location,
            headers: response_headers,
        }
    }

    /// Drop the schema, if any.
    pub async fn cleanup(self) {
        if let Some(schema) = self.schema {
            schema.drop().await;
        }
    }
}
