//! The admin UI through the router, in process (the browser tests are in
//! `tests/browser/`): what pages answer to whom, CSRF on form posts, and the
//! users table over 100,000 users.

use std::time::Instant;

use axum::http::{Method, StatusCode};
use nscache_server::directory::Role;
use nscache_tests::server::{Creds, Reply, TestServer};

const HTML: &str = "text/html,application/xhtml+xml";
const FORM: &str = "application/x-www-form-urlencoded";

/// The session cookie of `creds`.
fn cookie_of(creds: &Creds) -> Creds {
    match creds {
        Creds::Session { cookie, .. } => Creds::CookieOnly(cookie.clone()),
        other => panic!("not a session: {other:?}"),
    }
}

fn csrf_of(creds: &Creds) -> &str {
    match creds {
        Creds::Session { csrf, .. } => csrf,
        other => panic!("not a session: {other:?}"),
    }
}

async fn cache_enabled(t: &TestServer, creds: Creds) -> serde_json::Value {
    t.call(Method::GET, "/api/v1/me", &creds, None).await.json["me"]["cache_enabled"].clone()
}

async fn page(t: &TestServer, path: &str, creds: &Creds) -> Reply {
    t.send(Method::GET, path, creds, None, &[("accept", HTML)])
        .await
}

/// A form posted without JavaScript, from `referer`.
async fn post_form(
    t: &TestServer,
    action: &str,
    creds: &Creds,
    body: &str,
    referer: &str,
) -> Reply {
    t.send(
        Method::POST,
        action,
        creds,
        Some(body),
        &[
            ("accept", HTML),
            ("content-type", FORM),
            ("referer", referer),
        ],
    )
    .await
}

#[tokio::test]
async fn pages_answer_each_visitor_as_they_should() {
    let t = TestServer::postgres().await;
    t.account("ursula", Role::User).await;
    t.account("root", Role::Admin).await;
    let user = t.login("ursula").await;
    let admin = t.login("root").await;

    for path in [
        "/me",
        "/admin",
        "/admin/users",
        "/admin/dashboard",
        "/admin/invalidate-all",
        "/",
    ] {
        // Browsers, and clients that do not say they take HTML (curl):
        // alike, 303 to the sign-in page, no body.
        for accept in [Some(HTML), None, Some("application/json")] {
            let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
            let reply = t
                .send(Method::GET, path, &Creds::Anonymous, None, &headers)
                .await;
            assert_eq!(
                reply.status,
                StatusCode::SEE_OTHER,
                "{path} {accept:?}: {}",
                reply.text
            );
            assert_eq!(
                reply.location.as_deref(),
                Some("/login"),
                "{path} {accept:?} sends anonymous visitors to sign in"
            );
            assert_eq!(reply.text, "", "{path}: a redirect has no body");
        }
    }
    for (who, expected) in [(&user, "/me"), (&admin, "/me")] {
        let reply = t.send(Method::GET, "/", &cookie_of(who), None, &[]).await;
        assert_eq!(reply.status, StatusCode::SEE_OTHER);
        assert_eq!(
            reply.location.as_deref(),
            Some(expected),
            "signed in: on to the settings"
        );
    }
    let login = page(&t, "/login", &Creds::Anonymous).await;
    assert_eq!(login.status, StatusCode::OK);
    assert!(
        login.text.contains(r#"action="/ui/fn/sign-in""#)
            && login.text.contains(r#"<label for="username">"#),
        "{}",
        login.text
    );
    assert_eq!(
        login.text.contains("/pkg/nscache_ui.js"),
        nscache_server::server::ui_bundle_built(),
        "the pages load the bundle when it is built in"
    );

    let me = page(&t, "/me", &cookie_of(&user)).await;
    assert_eq!(me.status, StatusCode::OK, "{}", me.text);
    assert!(
        me.text.contains(r#"aria-pressed="true""#) && me.text.contains("Cache my data"),
        "{}",
        me.text
    );
    assert!(
        me.text
            .contains(&format!(r#"name="csrf_token" value="{}""#, csrf_of(&user))),
        "forms carry the session's CSRF token"
    );

    for path in [
        "/admin",
        "/admin/users",
        "/admin/dashboard",
        "/admin/invalidate-all",
    ] {
        let reply = page(&t, path, &cookie_of(&user)).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}");
        assert!(
            reply.text.contains("403 — Forbidden"),
            "{path}: the 403 page, not a blank one: {}",
            reply.text
        );
    }
    let users = page(&t, "/admin/users?q=urs", &cookie_of(&admin)).await;
    assert_eq!(users.status, StatusCode::OK, "{}", users.text);
    assert!(
        users.text.contains(">ursula</td>") && users.text.matches("<tr data-user-id=").count() == 1,
        "the search filters: {}",
        users.text
    );
    let dashboard = page(&t, "/admin/dashboard", &cookie_of(&admin)).await;
    assert_eq!(dashboard.status, StatusCode::OK, "{}", dashboard.text);
    assert!(
        dashboard.text.contains("chart-hit-rate") && dashboard.text.contains("<svg"),
        "{}",
        dashboard.text
    );
    assert!(
        dashboard
            .text
            .contains(r#"id="l1" class="tile"><h2>L1 (in process)</h2><p>Off</p>"#),
        "the dashboard says there is no L1: {}",
        dashboard.text
    );
    assert_eq!(
        page(&t, "/no-such-page", &cookie_of(&user)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        t.send(Method::GET, "/ui.css", &Creds::Anonymous, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    t.cleanup().await;
}

#[tokio::test]
async fn forms_change_nothing_without_the_sessions_csrf_token() {
    let t = TestServer::postgres().await;
    t.account("vera", Role::User).await;
    let vera = t.login("vera").await;

    for token in ["", "forged", &csrf_of(&vera)[1..]] {
        let reply = post_form(
            &t,
            "/ui/fn/set-my-cache",
            &cookie_of(&vera),
            &format!("csrf_token={token}&enabled=false"),
            "/me",
        )
        .await;
        assert_eq!(
            reply.status,
            StatusCode::SEE_OTHER,
            "back to the page: {}",
            reply.text
        );
        assert_eq!(reply.location.as_deref(), Some("/me"));
        assert!(
            reply
                .set_cookie
                .as_deref()
                .is_some_and(|c| c.starts_with("nscache_flash=e")),
            "an error is left for the page: {:?}",
            reply.set_cookie
        );
        assert_eq!(
            cache_enabled(&t, vera.clone()).await,
            true,
            "token {token:?} changed nothing"
        );
    }
    // Without a session at all: to the login page.
    let reply = post_form(
        &t,
        "/ui/fn/set-my-cache",
        &Creds::Anonymous,
        "csrf_token=x&enabled=false",
        "/me",
    )
    .await;
    assert_eq!(reply.location.as_deref(), Some("/login"));
    assert_eq!(
        reply.status,
        StatusCode::SEE_OTHER,
        "a form post: see the sign-in page"
    );
    // A hydrated page's own call (Leptos' client, which does not ask for
    // HTML) keeps Leptos' answer: not an HTTP redirect, which would lose the
    // reply, but the location for the client to follow.
    let reply = t
        .send(
            Method::POST,
            "/ui/fn/sign-in",
            &Creds::Anonymous,
            Some("username=vera&password=correct+horse+battery"),
            &[("accept", "application/json"), ("content-type", FORM)],
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.location.as_deref(), Some("/me"));

    let reply = post_form(
        &t,
        "/ui/fn/set-my-cache",
        &cookie_of(&vera),
        &format!("csrf_token={}&enabled=false", csrf_of(&vera)),
        "/me",
    )
    .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.text);
    assert!(
        reply
            .set_cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("nscache_flash=o")),
        "{:?}",
        reply.set_cookie
    );
    assert_eq!(
        cache_enabled(&t, vera.clone()).await,
        false,
        "the right token works"
    );
    // The flash is shown once, on the next page.
    let flash = reply
        .set_cookie
        .as_deref()
        .and_then(|c| c.split(';').next())
        .expect("flash cookie")
        .to_owned();
    let Creds::CookieOnly(session) = cookie_of(&vera) else {
        unreachable!()
    };
    let me = page(&t, "/me", &Creds::CookieOnly(format!("{session}; {flash}"))).await;
    assert!(me.text.contains("Your cache is off"), "{}", me.text);
    assert!(
        me.set_cookie
            .as_deref()
            .is_some_and(|c| c.starts_with("nscache_flash=;")),
        "and cleared: {:?}",
        me.set_cookie
    );
    t.cleanup().await;
}

#[tokio::test]
async fn a_user_cannot_reach_admin_server_functions() {
    let t = TestServer::postgres().await;
    let target = t.account("wanda", Role::User).await;
    t.account("xavier", Role::User).await;
    let xavier = t.login("xavier").await;
    let before = t
        .server
        .control()
        .cache()
        .version_of(&target)
        .await
        .expect("version");
    for (action, body) in [
        (
            "/ui/fn/invalidate-user",
            format!("csrf_token={}&user_id={target}", csrf_of(&xavier)),
        ),
        (
            "/ui/fn/set-user-cache",
            format!(
                "csrf_token={}&user_id={target}&enabled=false",
                csrf_of(&xavier)
            ),
        ),
        (
            "/ui/fn/invalidate-all",
            format!("csrf_token={}&confirm=yes", csrf_of(&xavier)),
        ),
        (
            "/ui/fn/invalidate-table",
            format!("csrf_token={}&table=t", csrf_of(&xavier)),
        ),
    ] {
        // As the hydrated page sends them (fetch, JSON answer).
        let reply = t
            .send(
                Method::POST,
                action,
                &cookie_of(&xavier),
                Some(&body),
                &[("content-type", FORM), ("accept", "application/json")],
            )
            .await;
        assert!(
            reply.status.is_server_error() || reply.status.is_client_error(),
            "{action}: {} {}",
            reply.status,
            reply.text
        );
        assert!(reply.text.contains("Forbidden"), "{action}: {}", reply.text);
    }
    assert_eq!(
        t.server
            .control()
            .cache()
            .version_of(&target)
            .await
            .expect("version"),
        before
    );
    t.cleanup().await;
}

#[tokio::test]
async fn the_users_table_pages_and_searches_a_hundred_thousand_users() {
    let t = TestServer::postgres().await;
    t.account("zadmin", Role::Admin).await;
    let admin = cookie_of(&t.login("zadmin").await);
    let pool = t.schema.as_ref().expect("postgres").pool().await;
    let started = Instant::now();
    sqlx::query("INSERT INTO nscache_user_profiles (user_id, cache_enabled) SELECT 'u' || lpad(i::text, 6, '0'), i % 7 <> 0 FROM generate_series(1, 100000) AS i")
        .execute(&pool)
        .await
        .expect("insert 100,000 profiles");
    sqlx::query("ANALYZE nscache_user_profiles")
        .execute(&pool)
        .await
        .expect("analyze");
    eprintln!("100k users: inserted in {:?}", started.elapsed());
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM nscache_user_profiles")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert!(total > 100_000, "the admin's own profile is there too");

    let timed = |path: String| {
        let t = &t;
        let admin = admin.clone();
        async move {
            let started = Instant::now();
            let reply = page(t, &path, &admin).await;
            let took = started.elapsed();
            assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
            eprintln!("100k users: GET {path} in {took:?}");
            reply.text
        }
    };
    let rows = |html: &str| {
        html.match_indices("<tr data-user-id=\"")
            .map(|(i, _)| {
                html[i + 18..]
                    .split('"')
                    .next()
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };

    let first = timed("/admin/users".into()).await;
    assert!(
        first.contains(&format!("of {} users", grouped(total as u64))),
        "the total is shown"
    );
    assert_eq!(rows(&first).len(), 25);

    let page_2000 = timed("/admin/users?page=2000".into()).await;
    let ids = rows(&page_2000);
    assert_eq!(ids.len(), 25);
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted, "ordered by user id");
    assert!(page_2000.contains("Page 2,000 of"));

    let last_page = (total as u64).div_ceil(25);
    let last = timed(format!("/admin/users?page={last_page}")).await;
    let expected_last = (total as u64 - (last_page - 1) * 25) as usize;
    assert_eq!(rows(&last).len(), expected_last);

    let search = timed("/admin/users?q=u09999".into()).await;
    let found = rows(&search);
    assert_eq!(
        found,
        (99_990..=99_999)
            .map(|i| format!("u{i:06}"))
            .collect::<Vec<_>>(),
        "prefix search"
    );
    assert!(search.contains("of 10 users"));

    let second = timed("/admin/users?q=u0&page=2".into()).await;
    assert_eq!(
        rows(&second).first().map(String::as_str),
        Some("u000026"),
        "search and pages together"
    );

    let none = timed("/admin/users?q=nobody".into()).await;
    assert!(rows(&none).is_empty() && none.contains("No user id or name starts with"));
    t.cleanup().await;
}

fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[tokio::test]
async fn signing_in_through_the_form_gives_the_browser_a_device_cookie_once() {
    let t = TestServer::embedded().await;
    t.account("wendy", Role::User).await;
    let sign_in = |cookie: Option<String>| {
        let t = &t;
        async move {
            let creds = cookie.map_or(Creds::Anonymous, Creds::CookieOnly);
            t.send(
                Method::POST,
                "/ui/fn/sign-in",
                &creds,
                Some("username=wendy&password=correct+horse+battery"),
                &[("content-type", FORM)],
            )
            .await
        }
    };
    let first = sign_in(None).await;
    assert_eq!(
        first.location.as_deref(),
        Some("/me"),
        "signed in: {}",
        first.text
    );
    let device = first
        .cookies
        .iter()
        .find(|c| c.starts_with("nscache_device="))
        .unwrap_or_else(|| panic!("a device cookie: {:?}", first.cookies));
    assert!(
        device.contains("HttpOnly") && device.contains("SameSite=Strict"),
        "{device}"
    );
    let pair = device.split(';').next().unwrap().to_owned();
    let again = sign_in(Some(pair)).await;
    assert_eq!(
        again.location.as_deref(),
        Some("/me"),
        "signed in: {}",
        again.text
    );
    assert!(
        !again
            .cookies
            .iter()
            .any(|c| c.starts_with("nscache_device=")),
        "a known browser keeps its cookie: {:?}",
        again.cookies
    );
    t.cleanup().await;
}
