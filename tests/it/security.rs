//! The security review's findings 7 and 8 through the router, in process:
//! the headers on every answer (the page's script nonce is the policy's),
//! `__Host-` cookies with `--secure-cookies`, and login CSRF from another
//! site refused.

use axum::http::{HeaderMap, Method, StatusCode, header};
use nscache_server::directory::{ProfileTable, Role};
use nscache_server::server::ServerConfig;
use nscache_tests::server::{Creds, Reply, TestServer};
use serde_json::json;

const HTML: &str = "text/html,application/xhtml+xml";
const FORM: &str = "application/x-www-form-urlencoded";
const HOST: &str = "nscache.test";
const SIGN_IN: &str = "username=alice&password=correct+horse+battery";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} in {headers:?}"))
}

/// The headers every answer carries; returns the policy.
fn check_headers(what: &str, reply: &Reply) -> String {
    let h = &reply.headers;
    assert_eq!(header(h, "x-frame-options"), "DENY", "{what}");
    assert_eq!(header(h, "x-content-type-options"), "nosniff", "{what}");
    assert_eq!(header(h, "referrer-policy"), "same-origin", "{what}");
    let policy = header(h, "content-security-policy").to_owned();
    assert!(
        policy.contains("frame-ancestors 'none'"),
        "{what}: {policy}"
    );
    assert!(policy.contains("default-src 'none'"), "{what}: {policy}");
    policy
}

/// The nonce a policy allows.
fn nonce_of(policy: &str) -> &str {
    policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("a nonce in {policy}"))
}

/// Every `Set-Cookie` of a reply.
fn cookies(reply: &Reply) -> Vec<String> {
    reply
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_owned)
        .collect()
}

async fn sign_in_form(t: &TestServer, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("accept", HTML), ("content-type", FORM), ("host", HOST)];
    all.extend_from_slice(headers);
    t.send(
        Method::POST,
        "/ui/fn/sign-in",
        &Creds::Anonymous,
        Some(SIGN_IN),
        &all,
    )
    .await
}

#[tokio::test]
async fn every_answer_carries_the_security_headers_and_the_page_nonce_is_the_policys() {
    let t = TestServer::postgres().await;
    t.account("alice", Role::User).await;
    let alice = t.login("alice").await;

    let login = t
        .send(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(r#"{"username":"alice","password":"correct horse battery"}"#),
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(login.status, StatusCode::OK);
    check_headers("sign-in", &login);
    assert_eq!(header(&login.headers, "cache-control"), "no-store");
    let me = t.call(Method::GET, "/api/v1/me", &alice, None).await;
    check_headers("/api/v1/me", &me);
    assert_eq!(header(&me.headers, "cache-control"), "no-store");
    let missing = t
        .call(Method::GET, "/api/v1/nowhere", &Creds::Anonymous, None)
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    check_headers("404", &missing);

    // Pages: the policy names the nonce on every script of the page, and
    // each page gets its own.
    let mut nonces = Vec::new();
    for (path, creds) in [("/login", Creds::Anonymous), ("/me", alice.clone())] {
        let page = t
            .send(Method::GET, path, &creds, None, &[("accept", HTML)])
            .await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.text);
        let policy = check_headers(path, &page);
        assert!(policy.contains("'wasm-unsafe-eval'"), "{policy}");
        assert_eq!(header(&page.headers, "cache-control"), "no-store", "{path}");
        let nonce = nonce_of(&policy).to_owned();
        let scripts: Vec<&str> = page.text.split("<script").skip(1).collect();
        assert!(!scripts.is_empty(), "{path} loads the bundle");
        for script in scripts {
            let tag = script.split('>').next().unwrap_or_default();
            assert!(
                tag.contains(&format!("nonce=\"{nonce}\"")),
                "{path}: a script without the policy's nonce: <script{tag}>"
            );
        }
        nonces.push(nonce);
    }
    assert_ne!(nonces[0], nonces[1], "a nonce per response");

    // Static assets may be cached (revalidated); still nosniff.
    let css = t
        .call(Method::GET, "/ui.css", &Creds::Anonymous, None)
        .await;
    check_headers("/ui.css", &css);
    assert_eq!(header(&css.headers, "cache-control"), "no-cache");
    t.cleanup().await;
}

#[tokio::test]
async fn a_sign_in_form_posted_from_another_site_is_refused_and_sets_no_cookie() {
    let t = TestServer::postgres().await;
    t.account("alice", Role::User).await;

    // The attack (login CSRF): evil.example posts its own credentials for
    // the victim's browser. Told by Origin, or by Sec-Fetch-Site.
    for headers in [
        vec![("origin", "https://evil.example")],
        vec![("origin", "null")],
        vec![
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![("sec-fetch-site", "same-site")],
    ] {
        let reply = sign_in_form(&t, &headers).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(
            cookies(&reply).is_empty(),
            "no cookie: {:?}",
            cookies(&reply)
        );
        assert!(
            reply.text.contains("Cross-site request refused"),
            "{}",
            reply.text
        );
        check_headers("refused", &reply);
    }

    // From the page itself, or from a client that is not a browser: signed in.
    for headers in [
        vec![("origin", "http://nscache.test")],
        vec![
            ("origin", "http://nscache.test"),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![],
    ] {
        let reply = sign_in_form(&t, &headers).await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "{headers:?}: {}",
            reply.text
        );
        assert!(
            cookies(&reply)
                .iter()
                .any(|c| c.starts_with("nscache_session=")),
            "{headers:?}: {:?}",
            cookies(&reply)
        );
    }

    // The API's sign-in and cookie-authenticated writes: a JSON 403.
    let evil = [
        ("content-type", "application/json"),
        ("host", HOST),
        ("origin", "https://evil.example"),
    ];
    let reply = t
        .send(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(r#"{"username":"alice","password":"correct horse battery"}"#),
            &evil,
        )
        .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json["error"]["code"], "cross_site", "{}", reply.text);
    assert!(reply.set_cookie.is_none());

    let alice = t.login("alice").await;
    let reply = t
        .send(
            Method::PUT,
            "/api/v1/me/cache",
            &alice,
            Some(r#"{"enabled":false}"#),
            &evil,
        )
        .await;
    assert_eq!(
        reply.status,
        StatusCode::FORBIDDEN,
        "even with the CSRF token"
    );
    assert_eq!(reply.json["error"]["code"], "cross_site");
    let me = t.call(Method::GET, "/api/v1/me", &alice, None).await;
    assert_eq!(me.json["me"]["cache_enabled"], true, "nothing changed");

    // A token is never sent by a browser on its own: not affected.
    t.account("app", Role::Service).await;
    let app = t.token("app").await;
    let reply = t
        .send(
            Method::PUT,
            "/api/v1/cache/global/keys/k",
            &app,
            Some(r#"{"value":"v"}"#),
            &evil,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    t.cleanup().await;
}

#[tokio::test]
async fn secure_cookies_carry_the_host_prefix_and_only_that_name_is_read() {
    let config = ServerConfig {
        secure_cookies: true,
        ..ServerConfig::default()
    };
    let t = TestServer::postgres_custom(ProfileTable::default(), None, config).await;
    t.account("alice", Role::User).await;
    let reply = t
        .call(
            Method::POST,
            "/api/v1/session",
            &Creds::Anonymous,
            Some(json!({ "username": "alice", "password": "correct horse battery" })),
        )
        .await;
    let cookie = reply.set_cookie.expect("a session cookie");
    assert!(cookie.starts_with("__Host-nscache_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let pair = cookie.split(';').next().unwrap().to_owned();
    let csrf = reply.json["csrf_token"].as_str().unwrap().to_owned();
    let me = Creds::Session {
        cookie: pair.clone(),
        csrf: csrf.clone(),
    };
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &me, None).await.status,
        StatusCode::OK
    );
    let unprefixed = Creds::Session {
        cookie: pair.trim_start_matches("__Host-").to_owned(),
        csrf,
    };
    assert_eq!(
        t.call(Method::GET, "/api/v1/me", &unprefixed, None)
            .await
            .status,
        StatusCode::UNAUTHORIZED,
        "a cookie without the prefix could have been planted"
    );
    // The UI reads the same name.
    let page = t
        .send(
            Method::GET,
            "/me",
            &Creds::CookieOnly(pair),
            None,
            &[("accept", HTML)],
        )
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.location);
    assert!(page.text.contains("alice"));
    let form = sign_in_form(&t, &[]).await;
    assert!(
        cookies(&form)
            .iter()
            .any(|c| c.starts_with("__Host-nscache_session=") && c.contains("; Secure")),
        "{:?}",
        cookies(&form)
    );
    t.cleanup().await;
}
