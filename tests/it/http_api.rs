//! The HTTP API on Postgres and Redis: the toggle, the authorization matrix,
//! bad input; and the embedded default end to end.

use axum::http::{Method, StatusCode};
use nscache_server::directory::{ProfileTable, Role};
use nscache_server::http::openapi::{Access, routes};
use nscache_tests::openapi::{self, Response, check_response, check_value};
use nscache_tests::server::{Creds, Reply, TestServer};
use serde_json::{Value, json};

#[tokio::test]
async fn a_user_toggling_their_cache_off_bypasses_only_their_namespace() {
    let t = TestServer::postgres().await;
    let alice = t.account("alice", Role::User).await;
    t.account("app", Role::Service).await;
    let me = t.login("alice").await;
    let app = t.token("app").await;
    let key = format!("/api/v1/cache/users/{alice}/keys/dashboard");

    let set = t
        .call(Method::PUT, &key, &app, Some(json!({ "value": "v1" })))
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text);
    assert_eq!(
        t.call(Method::GET, &key, &app, None).await.json["value"]["value"],
        "v1"
    );

    let off = t
        .call(
            Method::PUT,
            "/api/v1/me/cache",
            &me,
            Some(json!({ "enabled": false })),
        )
        .await;
    assert_eq!(off.status, StatusCode::OK, "{}", off.text);
    assert_eq!(off.json["cache_enabled"], false);
    assert_eq!(
        t.call(Method::GET, &key, &app, None).await.status,
        StatusCode::NOT_FOUND,
        "the next namespaced get misses"
    );
    t.call(Method::PUT, &key, &app, Some(json!({ "value": "v2" })))
        .await;
    assert_eq!(
        t.call(Method::GET, &key, &app, None).await.status,
        StatusCode::NOT_FOUND,
        "set is skipped"
    );
    // Global keys still work.
    t.call(
        Method::PUT,
        "/api/v1/cache/global/keys/invoice_seq:2026",
        &app,
        Some(json!({ "value": "1" })),
    )
    .await;
    assert_eq!(
        t.call(
            Method::POST,
            "/api/v1/cache/global/keys/invoice_seq:2026/incr",
            &app,
            Some(json!({}))
        )
        .await
        .json["value"],
        2
    );

    let on = t
        .call(
            Method::PUT,
            "/api/v1/me/cache",
            &me,
            Some(json!({ "enabled": true })),
        )
        .await;
    assert_eq!(on.json["cache_enabled"], true);
    assert_eq!(
        t.call(Method::GET, &key, &app, None).await.status,
        StatusCode::NOT_FOUND,
        "nothing from before comes back"
    );
    t.call(Method::PUT, &key, &app, Some(json!({ "value": "v3" })))
        .await;
    assert_eq!(
        t.call(Method::GET, &key, &app, None).await.json["value"]["value"],
        "v3",
        "caching resumes"
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &me, None).await.json["me"]["cache_enabled"],
        true
    );
    t.cleanup().await;
}

/// Principals of the matrix.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anonymous,
    User,
    OtherUser,
    Admin,
    Service,
}

struct Matrix {
    t: TestServer,
    alice: String,
    creds: Vec<(Who, Creds)>,
}

impl Matrix {
    async fn new() -> Matrix {
        let t = TestServer::postgres().await;
        let alice = t.account("alice", Role::User).await;
        t.account("bob", Role::User).await;
        t.account("root", Role::Admin).await;
        t.account("app", Role::Service).await;
        let creds = vec![
            (Who::Anonymous, Creds::Anonymous),
            (Who::User, t.login("alice").await),
            (Who::OtherUser, t.login("bob").await),
            (Who::Admin, t.login("root").await),
            (Who::Service, t.token("app").await),
        ];
        Matrix { t, alice, creds }
    }

    /// Everything an unauthorized request could have changed.
    async fn fingerprint(&self) -> Value {
        let cache = self.t.server.control().cache();
        let store = cache.store();
        let root = cache.namespace_root().to_owned();
        let dir = self.t.directory();
        let raw = |key: String| async move {
            store
                .get(&key)
                .await
                .unwrap()
                .map(|v| String::from_utf8_lossy(&v).into_owned())
        };
        json!({
            "versions": cache.versions_of(&[self.alice.as_str(), "2", "3", "4"]).await.unwrap(),
            "floor": raw(format!("{root}_namespace_floor")).await,
            "table": raw(format!("{root}_table_version:invoices")).await,
            "global": cache.global().get_many(&["k", "lk"]).await.unwrap(),
            "alice": cache.user(self.alice.clone()).get_many(&["k"]).await.unwrap(),
            "flags": [dir.cache_enabled(&self.alice).await.unwrap(), dir.cache_enabled("2").await.unwrap()],
        })
    }
}

fn allowed(access: Access, path: &str, who: Who) -> bool {
    let role = match who {
        Who::Anonymous => return access == Access::Public,
        Who::User | Who::OtherUser => "user",
        Who::Admin => "admin",
        Who::Service => "service",
    };
    match access {
        Access::Public => true,
        Access::Roles(roles) => {
            // On a user's namespace, people reach only their own: the path names alice.
            let own_only = path.starts_with("/api/v1/cache/users/{user}") && role != "service";
            roles.contains(&role) && (!own_only || who == Who::User)
        }
    }
}

#[tokio::test]
async fn authorization_matrix_every_route_and_principal() {
    let m = Matrix::new().await;
    // Something to protect.
    let service = m.creds[4].1.clone();
    m.t.call(
        Method::PUT,
        "/api/v1/cache/global/keys/k",
        &service,
        Some(json!({ "value": "g" })),
    )
    .await;
    m.t.call(
        Method::PUT,
        &format!("/api/v1/cache/users/{}/keys/k", m.alice),
        &service,
        Some(json!({ "value": "a" })),
    )
    .await;

    let mut table = Vec::new();
    let mut failures = Vec::new();
    // Sign-out last: it ends the sessions the other cells use.
    let mut all: Vec<_> = routes().collect();
    all.sort_by_key(|r| r.path == "/api/v1/session" && r.method == "DELETE");
    for route in all {
        let path = route
            .path
            .replace("{user}", &m.alice)
            .replace("{key}", "k")
            .replace("{table}", "invoices");
        let path = if route.path == "/api/v1/locks/{key}" && route.method == "DELETE" {
            format!("{path}?owner=someone")
        } else {
            path
        };
        let body: Option<Value> = route
            .request
            .map(|r| serde_json::from_str(r.example).unwrap());
        let mut row = format!("{:<6} {:<45}", route.method, route.path);
        for (who, creds) in &m.creds {
            let expected = allowed(route.access, route.path, *who);
            let before = if expected {
                Value::Null
            } else {
                m.fingerprint().await
            };
            let method = Method::from_bytes(route.method.as_bytes()).unwrap();
            let reply: Reply = m.t.call(method, &path, creds, body.clone()).await;
            let denied = matches!(
                reply.status,
                StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
            );
            row.push_str(&format!(" {:?}={}", who, reply.status.as_u16()));
            if route.path == "/api/v1/session" && route.method == "POST" {
                continue; // signing in is open to all; the body's account does not exist
            }
            if expected && denied {
                failures.push(format!(
                    "{who:?} was refused {} {path}: {}",
                    route.method, reply.text
                ));
            }
            if !expected {
                let want = if *who == Who::Anonymous {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::FORBIDDEN
                };
                if reply.status != want {
                    failures.push(format!(
                        "{who:?} on {} {path}: expected {want}, got {}: {}",
                        route.method, reply.status, reply.text
                    ));
                }
                if reply.json["error"]["code"].as_str().is_none() {
                    failures.push(format!(
                        "{who:?} on {} {path}: no JSON error body",
                        route.method
                    ));
                }
                let after = m.fingerprint().await;
                if after != before {
                    failures.push(format!(
                        "{who:?} on {} {path} changed state: {before} -> {after}",
                        route.method
                    ));
                }
            }
        }
        table.push(row);
    }
    println!(
        "authorization matrix (status per principal):\n{}",
        table.join("\n")
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    m.t.cleanup().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx_and_stores_nothing() {
    let t = TestServer::postgres().await;
    let alice = t.account("alice", Role::User).await;
    t.account("root", Role::Admin).await;
    t.account("app", Role::Service).await;
    let app = t.token("app").await;
    let me = t.login("alice").await;
    let admin = t.login("root").await;
    let cookie_only = match &me {
        Creds::Session { cookie, .. } => Creds::CookieOnly(cookie.clone()),
        _ => unreachable!(),
    };
    let long_key = "k".repeat(1025);
    let big_value = "v".repeat((1 << 20) + 1);
    let huge_body = "v".repeat(3 << 20);
    let user_key = format!("/api/v1/cache/users/{alice}/keys/target");
    // (what, method, path, credentials, body, content type, expected status)
    type Case<'a> = (
        &'a str,
        Method,
        String,
        Creds,
        Option<String>,
        Option<&'a str>,
        StatusCode,
    );
    let mut cases: Vec<Case> = vec![
        (
            "oversized key",
            Method::PUT,
            format!("/api/v1/cache/global/keys/{long_key}"),
            app.clone(),
            Some(r#"{"value":"x"}"#.into()),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "oversized value",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(json!({ "value": big_value }).to_string()),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "body over the limit",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(format!(r#"{{"value":"{huge_body}"}}"#)),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "control character in key",
            Method::PUT,
            "/api/v1/cache/global/keys/tar%01get".into(),
            app.clone(),
            Some(r#"{"value":"x"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "control character in user id",
            Method::PUT,
            "/api/v1/cache/users/a%00b/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "invalid UTF-8 in path",
            Method::PUT,
            "/api/v1/cache/global/keys/%FF".into(),
            app.clone(),
            Some(r#"{"value":"x"}"#.into()),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad JSON",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value": "x""#.into()),
            Some("application/json"),
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong type",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value": 5}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "unknown field",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x","colour":"red"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "both value forms",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x","value_base64":"eA=="}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "bad base64",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value_base64":"!!"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "negative ttl",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x","ttl":-1}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "ttl word",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x","ttl":"soon"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "no content type",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some(r#"{"value":"x"}"#.into()),
            None,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "form body",
            Method::PUT,
            "/api/v1/cache/global/keys/target".into(),
            app.clone(),
            Some("value=x".into()),
            Some("application/x-www-form-urlencoded"),
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
        ),
        (
            "delta not an integer",
            Method::POST,
            "/api/v1/cache/global/keys/target/incr".into(),
            app.clone(),
            Some(r#"{"delta":"1"}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "too many keys",
            Method::POST,
            "/api/v1/cache/global/get-many".into(),
            app.clone(),
            Some(json!({ "keys": vec!["k"; 1001] }).to_string()),
            Some("application/json"),
            StatusCode::PAYLOAD_TOO_LARGE,
        ),
        (
            "lock timeout 0",
            Method::POST,
            "/api/v1/locks/target".into(),
            app.clone(),
            Some(r#"{"timeout_ms":0}"#.into()),
            Some("application/json"),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "missing CSRF token",
            Method::PUT,
            "/api/v1/me/cache".into(),
            cookie_only.clone(),
            Some(r#"{"enabled":false}"#.into()),
            Some("application/json"),
            StatusCode::FORBIDDEN,
        ),
        (
            "missing CSRF token on a cache write",
            Method::PUT,
            user_key.clone(),
            cookie_only,
            Some(r#"{"value":"x"}"#.into()),
            Some("application/json"),
            StatusCode::FORBIDDEN,
        ),
        (
            "unknown user",
            Method::PUT,
            "/api/v1/users/nobody-at-all/cache".into(),
            admin.clone(),
            Some(r#"{"enabled":false}"#.into()),
            Some("application/json"),
            StatusCode::NOT_FOUND,
        ),
        (
            "page 0",
            Method::GET,
            "/api/v1/users?page=0".into(),
            admin.clone(),
            None,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "per_page too large",
            Method::GET,
            "/api/v1/users?per_page=5000".into(),
            admin.clone(),
            None,
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "page not a number",
            Method::GET,
            "/api/v1/users?page=two".into(),
            admin.clone(),
            None,
            None,
            StatusCode::BAD_REQUEST,
        ),
        (
            "wrong password",
            Method::POST,
            "/api/v1/session".into(),
            Creds::Anonymous,
            Some(r#"{"username":"alice","password":"nope"}"#.into()),
            Some("application/json"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown account",
            Method::POST,
            "/api/v1/session".into(),
            Creds::Anonymous,
            Some(r#"{"username":"mallory","password":"whatever1"}"#.into()),
            Some("application/json"),
            StatusCode::UNAUTHORIZED,
        ),
        (
            "bad bearer token",
            Method::GET,
            "/api/v1/me".into(),
            Creds::Bearer("nsc_forged".into()),
            None,
            None,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no such route",
            Method::GET,
            "/api/v1/nothing".into(),
            app.clone(),
            None,
            None,
            StatusCode::NOT_FOUND,
        ),
        (
            "wrong method",
            Method::PATCH,
            "/api/v1/me".into(),
            me.clone(),
            None,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
    ];
    // The user's own namespace key, with a value over the limit from the user's session.
    cases.push((
        "oversized value in a namespace",
        Method::PUT,
        user_key.clone(),
        me.clone(),
        Some(json!({ "value": "v".repeat((1 << 20) + 1) }).to_string()),
        Some("application/json"),
        StatusCode::PAYLOAD_TOO_LARGE,
    ));

    let mut failures = Vec::new();
    for (name, method, path, creds, body, content_type, want) in cases {
        let reply = t
            .raw(method, &path, &creds, body.as_deref(), content_type)
            .await;
        if reply.status != want {
            failures.push(format!(
                "{name}: expected {want}, got {} {}",
                reply.status,
                reply.text.chars().take(200).collect::<String>()
            ));
        } else if reply.json["error"]["code"].as_str().is_none()
            || reply.json["error"]["message"]
                .as_str()
                .is_none_or(str::is_empty)
        {
            failures.push(format!(
                "{name}: no JSON error body: {}",
                reply.text.chars().take(200).collect::<String>()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Nothing was stored, and alice's flag is unchanged.
    let exists = t
        .call(
            Method::GET,
            "/api/v1/cache/global/keys/target/exists",
            &app,
            None,
        )
        .await;
    assert_eq!(exists.json["exists"], false);
    assert_eq!(
        t.call(Method::GET, &format!("{user_key}/exists"), &app, None)
            .await
            .json["exists"],
        false
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &me, None).await.json["me"]["cache_enabled"],
        true
    );
    t.cleanup().await;
}

#[tokio::test]
async fn repeated_wrong_passwords_are_rate_limited() {
    let t = TestServer::postgres().await;
    t.account("alice", Role::User).await;
    let wrong = json!({ "username": "alice", "password": "wrong password" });
    for _ in 0..5 {
        assert_eq!(
            t.call(
                Method::POST,
                "/api/v1/session",
                &Creds::Anonymous,
                Some(wrong.clone())
            )
            .await
            .status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": "alice", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_eq!(limited.json["error"]["code"], "rate_limited");
    t.cleanup().await;
}

#[tokio::test]
async fn session_cookie_is_http_only_and_sign_out_ends_it() {
    let t = TestServer::postgres().await;
    t.account("alice", Role::User).await;
    let reply = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": "alice", "password": "correct horse battery" })),
        )
        .await;
    let cookie = reply.set_cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    let me = Creds::Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: reply.json["csrf_token"].as_str().unwrap().to_owned(),
    };
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &me, None).await.status,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/session", &me, None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &me, None).await.status,
        StatusCode::UNAUTHORIZED
    );
    t.cleanup().await;
}

#[tokio::test]
async fn health_metrics_and_the_openapi_document() {
    let t = TestServer::postgres().await;
    t.account("app", Role::Service).await;
    let app = t.token("app").await;
    let health = t
        .call(Method::GET, "/health", &Creds::Anonymous, None)
        .await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    assert_eq!(health.json["cache_store"]["backend"], "redis");
    assert_eq!(health.json["database"]["backend"], "postgres");
    assert!(health.json["cache_memory"]["eviction_policy"].is_string());
    t.call(Method::GET, "/api/v1/cache/global/keys/x", &app, None)
        .await;
    let metrics = t.call(Method::GET, "/metrics", &app, None).await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(
        metrics.text.contains("nscache_cache_misses_total 1"),
        "{}",
        metrics.text
    );
    assert!(
        metrics
            .text
            .contains("nscache_operation_duration_seconds_bucket{op=\"get\"")
    );
    let doc = t
        .call(Method::GET, "/api/v1/openapi.json", &Creds::Anonymous, None)
        .await;
    assert_eq!(doc.json["openapi"], "3.1.0");
    for route in routes() {
        assert!(
            doc.json["paths"][route.path][route.method.to_lowercase()].is_object(),
            "{} {} documented",
            route.method,
            route.path
        );
    }
    t.cleanup().await;
}

#[test]
fn every_operation_is_typed_and_every_example_matches_its_request_schema() {
    let doc = openapi::document();
    let mut ids = Vec::new();
    for route in routes() {
        let operation = &doc["paths"][route.path][route.method.to_lowercase()];
        let name = format!("{} {}", route.method, route.path);
        ids.push(operation["operationId"].as_str().expect("an operationId"));
        let responses = operation["responses"].as_object().expect("responses");
        for (status, response) in responses {
            let content = response["content"].as_object().expect("content");
            for (media, body) in content {
                assert!(
                    body["schema"].is_object(),
                    "{name} {status} {media}: no schema"
                );
            }
        }
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{name}: no success"
        );
        if let Some(request) = route.request {
            let schema = &operation["requestBody"]["content"]["application/json"]["schema"];
            let example: Value = serde_json::from_str(request.example).unwrap();
            check_value(doc, schema, &example)
                .unwrap_or_else(|e| panic!("{name}: the example does not match: {e}"));
        }
    }
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operationIds are unique");
}

/// The check every test's responses go through catches what the document
/// does not say (so that it cannot pass everything unnoticed).
#[test]
fn the_response_check_refuses_what_the_document_does_not_say() {
    let doc = openapi::document();
    let check = |method: &str, path: &str, status: u16, content_type: &str, body: &str| {
        check_response(
            doc,
            &Response {
                method,
                path,
                status,
                content_type: Some(content_type),
                body: body.as_bytes(),
            },
        )
    };
    let json = "application/json";
    let key = "/api/v1/cache/global/keys/k";
    let good = r#"{"key":"k","value":{"value":"v"}}"#;
    check("GET", key, 200, json, good).expect("a documented answer passes");
    check(
        "GET",
        key,
        404,
        json,
        r#"{"error":{"code":"miss","message":"no"}}"#,
    )
    .expect("a documented error passes");
    check(
        "GET",
        "/api/v1/nothing",
        404,
        json,
        r#"{"error":{"code":"no_route","message":"x"}}"#,
    )
    .expect("the fallback passes");
    let wrong = [
        (
            "GET",
            key,
            200,
            json,
            r#"{"key":"k","value":{"value":5}}"#,
            "$.value",
        ),
        (
            "GET",
            key,
            200,
            json,
            r#"{"value":{"value":"v"}}"#,
            "\"key\" is missing",
        ),
        (
            "GET",
            key,
            200,
            json,
            r#"{"key":"k","value":{"value":"v"},"x":1}"#,
            "\"x\"",
        ),
        ("GET", key, 200, json, "not json", "not JSON"),
        (
            "GET",
            key,
            200,
            "text/html",
            good,
            "text/html is not documented",
        ),
        ("GET", key, 418, json, good, "status 418 is not documented"),
        ("GET", key, 404, json, r#"{"error":"miss"}"#, "$.error"),
        ("PATCH", key, 200, json, good, "documents no PATCH"),
        (
            "GET",
            "/api/v1/nothing",
            200,
            json,
            good,
            "the path is not documented",
        ),
        (
            "GET",
            "/api/v1/me",
            200,
            json,
            r#"{"me":{},"csrf_token":null}"#,
            "$.me",
        ),
        (
            "GET",
            "/health",
            503,
            json,
            r#"{"error":{"code":"x","message":"y"}}"#,
            "$",
        ),
    ];
    for (method, path, status, content_type, body, expected) in wrong {
        let mismatch = check(method, path, status, content_type, body)
            .expect_err(&format!("{method} {path} {status} {body} is refused"));
        assert!(
            mismatch.contains(expected),
            "{method} {path} {status} {body}: {mismatch}"
        );
    }
}

#[tokio::test]
async fn embedded_default_end_to_end() {
    let t = TestServer::embedded().await;
    let (admin, password) = t
        .server
        .control()
        .ensure_admin()
        .await
        .unwrap()
        .expect("a first admin is created");
    assert!(
        t.server.control().ensure_admin().await.unwrap().is_none(),
        "only once"
    );
    let login = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": admin, "password": password })),
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    let me = Creds::Session {
        cookie: login
            .set_cookie
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned(),
        csrf: login.json["csrf_token"].as_str().unwrap().to_owned(),
    };
    let user_id = login.json["me"]["user_id"].as_str().unwrap().to_owned();
    assert_eq!(
        t.call(
            Method::PUT,
            "/api/v1/me/cache",
            &me,
            Some(json!({ "enabled": false }))
        )
        .await
        .json["cache_enabled"],
        false
    );
    let users = t.call(Method::GET, "/api/v1/users", &me, None).await;
    assert_eq!(users.json["users"][0]["cache_enabled"], false);
    let v1 = t
        .call(
            Method::POST,
            &format!("/api/v1/users/{user_id}/invalidate"),
            &me,
            None,
        )
        .await
        .json["version"]
        .as_u64()
        .unwrap();
    let v2 = t
        .call(
            Method::POST,
            &format!("/api/v1/users/{user_id}/invalidate"),
            &me,
            None,
        )
        .await
        .json["version"]
        .as_u64()
        .unwrap();
    assert!(v2 > v1);
    assert!(
        t.call(Method::POST, "/api/v1/invalidate-all", &me, None)
            .await
            .json["floor"]
            .as_u64()
            .unwrap()
            > v2
    );
    let health = t
        .call(Method::GET, "/health", &Creds::Anonymous, None)
        .await;
    assert_eq!(
        (
            health.json["cache_store"]["backend"].as_str(),
            health.json["database"]["backend"].as_str()
        ),
        (Some("memory"), Some("sqlite"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_down_flags_fall_back_to_the_last_known_and_health_names_postgres() {
    use nscache_server::directory::ProfileTable;
    use nscache_server::server::ServerConfig;
    use nscache_tests::proxy::TcpProxy;

    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    // Flags are re-read from the database on every request (no trust period),
    // so that the fall-back is what answers once Postgres is gone.
    let mut config = ServerConfig::default();
    config.cache.profile_max_age = std::time::Duration::ZERO;
    let t = TestServer::postgres_custom(ProfileTable::default(), Some(proxy.port), config).await;
    let alice = t.account("alice", Role::User).await;
    let bob = t.account("bob", Role::User).await;
    t.account("app", Role::Service).await;
    let app = t.token("app").await;
    let me = t.login("alice").await;
    assert_eq!(
        t.call(
            Method::PUT,
            "/api/v1/me/cache",
            &me,
            Some(json!({ "enabled": false }))
        )
        .await
        .status,
        StatusCode::OK
    );
    let put = |user: String| {
        let (t, app) = (&t, app.clone());
        async move {
            t.call(
                Method::PUT,
                &format!("/api/v1/cache/users/{user}/keys/k"),
                &app,
                Some(json!({ "value": "v" })),
            )
            .await
        }
    };
    let get = |user: String| {
        let (t, app) = (&t, app.clone());
        async move {
            t.call(
                Method::GET,
                &format!("/api/v1/cache/users/{user}/keys/k"),
                &app,
                None,
            )
            .await
            .status
        }
    };
    // Seen while the database is up: alice disabled, bob enabled.
    put(alice.clone()).await;
    put(bob.clone()).await;
    assert_eq!(get(alice.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(get(bob.clone()).await, StatusCode::OK);

    proxy.cut();
    let health = t
        .call(Method::GET, "/health", &Creds::Anonymous, None)
        .await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        health.json["failing"]
            .as_array()
            .unwrap()
            .contains(&json!("postgres")),
        "{}",
        health.text
    );
    assert_eq!(health.json["database"]["ok"], false);
    // Last known flags still apply: bob's cache works, alice's stays off.
    assert_eq!(
        get(bob.clone()).await,
        StatusCode::OK,
        "bob's cached value is served"
    );
    put(alice.clone()).await;
    assert_eq!(
        get(alice.clone()).await,
        StatusCode::NOT_FOUND,
        "alice stays bypassed"
    );
    // A user never seen bypasses the cache: nothing is stored.
    put("carol".into()).await;
    assert_eq!(get("carol".into()).await, StatusCode::NOT_FOUND);
    // Global keys do not depend on Postgres.
    t.call(
        Method::PUT,
        "/api/v1/cache/global/keys/g",
        &app,
        Some(json!({ "value": "1" })),
    )
    .await;
    assert_eq!(
        t.call(Method::GET, "/api/v1/cache/global/keys/g", &app, None)
            .await
            .status,
        StatusCode::OK
    );

    proxy.resume().await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // the back-off after a failed read
    let health = t
        .call(Method::GET, "/health", &Creds::Anonymous, None)
        .await;
    assert_eq!(health.status, StatusCode::OK, "{}", health.text);
    put("carol".into()).await;
    assert_eq!(
        get("carol".into()).await,
        StatusCode::OK,
        "carol's default flag (enabled) is read once Postgres is back"
    );
    drop(proxy);
    t.cleanup().await;
}

#[tokio::test]
async fn an_account_without_a_user_id_never_reaches_an_application_users_namespace() {
    let t = TestServer::embedded().await;
    let (admin, _) = t.server.control().ensure_admin().await.unwrap().unwrap();
    let admin_ns = t
        .directory()
        .account_by_username(&admin)
        .await
        .unwrap()
        .unwrap()
        .user_id;
    let dave = t.account("dave", Role::User).await;
    assert!(
        admin_ns.starts_with("account:") && dave.starts_with("account:"),
        "namespaces of their own, not 1 and 2: {admin_ns} {dave}"
    );
    let me = t.login("dave").await;
    for path in [
        "/api/v1/cache/users/2/keys/profile",
        "/api/v1/cache/users/1/keys/profile",
    ] {
        let read = t.call(Method::GET, path, &me, None).await;
        assert_eq!(read.status, StatusCode::FORBIDDEN, "{path}: {}", read.text);
    }
    t.cleanup().await;
}

#[tokio::test]
async fn with_an_application_profile_table_a_person_must_be_one_of_its_users() {
    let profiles = ProfileTable::existing("app_profiles", "user_id", "cache_enabled").unwrap();
    let t = TestServer::postgres_with(profiles).await;
    let pool = t.schema.as_ref().unwrap().pool().await;
    sqlx::query("INSERT INTO app_profiles (user_id) VALUES ('1'), ('2')")
        .execute(&pool)
        .await
        .unwrap();
    let refused = t
        .server
        .control()
        .create_account("carol", Role::User, Some("correct horse battery"), None)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("--user-id"),
        "says what to do: {refused}"
    );
    let carol = t
        .server
        .control()
        .create_account(
            "carol",
            Role::User,
            Some("correct horse battery"),
            Some("2"),
        )
        .await
        .unwrap();
    assert_eq!(
        carol.user_id, "2",
        "an account then is that application user"
    );
    let (admin, _) = t.server.control().ensure_admin().await.unwrap().unwrap();
    let admin = t
        .directory()
        .account_by_username(&admin)
        .await
        .unwrap()
        .unwrap();
    assert!(
        admin.user_id.starts_with("account:"),
        "the first admin is not application user 1: {}",
        admin.user_id
    );
    t.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_verified_before_a_database_outage_are_honoured_only_for_the_grace_period() {
    // Longer than the short token's life plus a wait on the dead pool.
    const GRACE: std::time::Duration = std::time::Duration::from_secs(8);
    use nscache_server::directory::ProfileTable;
    use nscache_server::server::ServerConfig;
    use nscache_tests::proxy::TcpProxy;

    let proxy = TcpProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let config = ServerConfig {
        credential_outage_grace: GRACE,
        ..ServerConfig::default()
    };
    let t = TestServer::postgres_custom(ProfileTable::default(), Some(proxy.port), config).await;
    t.account("alice", Role::User).await;
    t.account("app", Role::Service).await;
    let app = t.token("app").await;
    // A token that expires during the outage, inside the grace period.
    let short = Creds::Bearer(
        t.server
            .control()
            .create_token_expiring("app", "short", Some(std::time::Duration::from_secs(2)))
            .await
            .expect("token"),
    );
    let me = t.login("alice").await;
    let status = |creds: Creds| {
        let t = &t;
        async move {
            t.call(Method::GET, "/api/v1/cache/users/x/keys/k", &creds, None)
                .await
                .status
        }
    };
    // Verified while the database is up.
    assert_eq!(status(app.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(status(short.clone()).await, StatusCode::NOT_FOUND);
    proxy.cut();
    let cut = tokio::time::Instant::now();
    assert_eq!(
        status(app.clone()).await,
        StatusCode::NOT_FOUND,
        "inside the grace period the token still works"
    );
    // Its own expiry still counts while the database cannot be asked.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        status(short.clone()).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "an expired token is not honoured from memory"
    );
    let still = t
        .call(Method::GET, "/api/v1/cache/users/x/keys/k", &app, None)
        .await;
    assert_eq!(
        still.status,
        StatusCode::NOT_FOUND,
        "still in grace: {}",
        still.text
    );
    assert!(
        cut.elapsed() < GRACE,
        "the checks above took the whole grace period"
    );
    // The grace runs from the first call that found the database gone;
    // once it is over, the remembered token is refused, within the slack of
    // one wait on the dead pool.
    tokio::time::sleep_until(cut + GRACE).await;
    let after = loop {
        let after = t
            .call(Method::GET, "/api/v1/cache/users/x/keys/k", &app, None)
            .await;
        if after.status != StatusCode::NOT_FOUND
            || cut.elapsed() > GRACE + std::time::Duration::from_secs(5)
        {
            break after;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(
        after.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{} after {:?}",
        after.text,
        cut.elapsed()
    );
    assert_eq!(after.json["error"]["code"], "database_unavailable");
    let me_after = t.call(Method::GET, "/api/v1/me", &me, None).await;
    assert_eq!(me_after.status, StatusCode::SERVICE_UNAVAILABLE);
    proxy.resume().await;
    let mut back = StatusCode::SERVICE_UNAVAILABLE;
    for _ in 0..50 {
        back = status(app.clone()).await;
        if back != StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(
        back,
        StatusCode::NOT_FOUND,
        "works again once the database is back"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn a_sign_in_name_with_format_characters_gets_a_json_400() {
    let t = TestServer::embedded().await;
    t.account("admin", Role::Admin).await;
    let reply = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": "ad\u{202e}nim", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    assert_eq!(reply.json["error"]["code"], "invalid_username");
    let look_alike = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": "\u{ff21}dmin", "password": "correct horse battery" })),
        )
        .await;
    assert_eq!(
        look_alike.status,
        StatusCode::OK,
        "one name, whatever its width: {}",
        look_alike.text
    );
    t.cleanup().await;
}
