//! The admin UI in a real browser: headless Chromium through chromedriver,
//! against the server in process on Postgres and Redis. Every scenario runs
//! twice: server-rendered only (no script at all, forms post to the server)
//! and hydrated (the wasm bundle takes over; forms go through `fetch`).
//! Screenshots of each page, at desktop and phone width, go to
//! `screenshots/{ssr,hydrated}/` (see the README).

use nscache_server::directory::Role;
use nscache_tests::browser::{Mode, Page, UiApp, browser_log, csp_violations, with_browser};

/// One `#[tokio::test]` per mode for each scenario.
macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        mod server_rendered {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(nscache_tests::browser::Mode::Ssr).await
                }
            )*
        }
        mod hydrated {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(nscache_tests::browser::Mode::Hydrated).await
                }
            )*
        }
    };
}

both_modes!(
    a_user_turns_their_cache_off_and_on,
    an_admin_invalidates_a_user_from_the_table,
    admin_pages_refuse_others,
    invalidating_everything_needs_confirmation,
    the_dashboard_draws_charts_and_refreshes,
    another_site_cannot_frame_the_confirmation_page,
    another_site_cannot_sign_the_browser_in,
    the_checks_panel_shows_a_warning,
    an_admin_purges_a_user_after_confirming,
);

/// The page is what the mode says: without hydration no script is loaded
/// (and the browser runs none: JavaScript is off), with it the bundle is in
/// charge.
async fn check_mode(page: &Page) {
    let loaded = page.run("return document.querySelectorAll('script[src], script[type=module], link[rel=modulepreload]').length;").await;
    match page.mode {
        Mode::Ssr => {
            assert_eq!(loaded, 0, "a server-rendered page loads no script");
            assert_eq!(
                page.attr(".app", "data-hydrated").await.as_deref(),
                Some("false")
            );
        }
        Mode::Hydrated => {
            assert!(
                loaded.as_u64().is_some_and(|n| n > 0),
                "the page loads the bundle"
            );
            assert_eq!(
                page.attr(".app", "data-hydrated").await.as_deref(),
                Some("true")
            );
        }
    }
}

/// After an action: in hydrated mode the page was not reloaded.
async fn check_no_reload(page: &Page) {
    if page.mode == Mode::Hydrated {
        assert!(
            page.still_marked().await,
            "the hydrated page sent the form with fetch, without a full reload"
        );
    }
}

async fn a_user_turns_their_cache_off_and_on(mode: Mode) {
    let app = UiApp::start(mode).await;
    let alice = app.account("alice", Role::User).await;
    let service = app.service().await;
    let api = std::sync::Arc::new(app);
    let app2 = api.clone();
    with_browser(&api, move |page| async move {
        let app = app2;
        page.goto("/login").await;
        check_mode(&page).await;
        page.screenshots("login").await;
        page.sign_in("alice").await;
        check_mode(&page).await;
        assert_eq!(
            page.attr("#cache-toggle", "aria-pressed").await.as_deref(),
            Some("true")
        );
        page.screenshots("my-settings").await;

        // Off: a value set afterwards through the API is not cached.
        page.mark().await;
        page.click("#cache-toggle").await;
        page.wait_until("the toggle shows off", || async {
            page.attr("#cache-toggle", "aria-pressed").await.as_deref() == Some("false")
        })
        .await;
        check_no_reload(&page).await;
        assert!(
            page.text(".state").await.contains("not cached"),
            "the state says what it means"
        );
        app.api_set(&service, &alice, "report", "v1").await;
        assert_eq!(
            app.api_get(&service, &alice, "report").await,
            None,
            "not cached while off"
        );
        page.screenshots("my-settings-off").await;

        // On again: it is.
        page.click("#cache-toggle").await;
        page.wait_until("the toggle shows on", || async {
            page.attr("#cache-toggle", "aria-pressed").await.as_deref() == Some("true")
        })
        .await;
        app.api_set(&service, &alice, "report", "v2").await;
        assert_eq!(
            app.api_get(&service, &alice, "report").await.as_deref(),
            Some("v2"),
            "cached again"
        );

        // "Clear my cache" moves to a new version and hides the value.
        let before: u64 = page
            .attr("#my-version", "data-version")
            .await
            .unwrap_or_default()
            .parse()
            .expect("a version once something was cached");
        page.click("#clear-my-cache").await;
        page.wait_until("the version moves", || async {
            page.attr("#my-version", "data-version")
                .await
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|v| v > before)
        })
        .await;
        assert_eq!(
            app.api_get(&service, &alice, "report").await,
            None,
            "cleared"
        );
        check_no_reload(&page).await;

        // Signing out ends the session.
        page.click(".signout button").await;
        page.wait_until("back on the login page", || async {
            page.path().await == "/login"
        })
        .await;
        page.goto("/me").await;
        assert_eq!(page.path().await, "/login", "the session is over");
    })
    .await;
    std::sync::Arc::into_inner(api)
        .expect("the test is over")
        .stop()
        .await;
}

async fn an_admin_invalidates_a_user_from_the_table(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let bob = app.account("bob", Role::User).await;
    for i in 0..30 {
        app.account(&format!("filler{i:02}"), Role::User).await;
    }
    let service = app.service().await;
    app.api_set(&service, &bob, "inbox", "3 unread").await;
    assert_eq!(
        app.api_get(&service, &bob, "inbox").await.as_deref(),
        Some("3 unread")
    );
    let api = std::sync::Arc::new(app);
    let app2 = api.clone();
    let bob2 = bob.clone();
    with_browser(&api, move |page| async move {
        let (app, bob) = (app2, bob2);
        page.sign_in("root").await;
        page.goto("/admin/users").await;
        check_mode(&page).await;
        assert!(
            page.text("#users-summary").await.contains("of 33 users"),
            "{}",
            page.text("#users-summary").await
        );
        page.screenshots("admin-users").await;
        // Pages: 25 a page, then the rest.
        page.click("a[rel='next']").await;
        page.wait_until("page 2", || async {
            page.text(".page-of").await == "Page 2 of 2"
        })
        .await;
        assert_eq!(
            page.run("return document.querySelectorAll('tr[data-user-id]').length;")
                .await,
            8
        );

        // Search, then invalidate bob's row.
        page.fill("#user-search", "bob").await;
        page.click("form.search button").await;
        let row = format!("tr[data-user-id='{bob}']");
        page.wait_until("bob's row alone", || async {
            page.path().await.contains("q=bob")
                && page
                    .run("return document.querySelectorAll('tr[data-user-id]').length;")
                    .await
                    == 1
        })
        .await;
        page.settle().await;
        let version = |page: Page, row: String| async move {
            page.attr(&format!("{row} td.version"), "data-version")
                .await
                .and_then(|v| v.parse::<u64>().ok())
        };
        let before = version(page.clone(), row.clone())
            .await
            .expect("bob has a version: he has a cached value");
        page.mark().await;
        page.click(&format!("{row} button.invalidate")).await;
        page.wait_until("the version shown increases", || async {
            version(page.clone(), row.clone())
                .await
                .is_some_and(|v| v > before)
        })
        .await;
        check_no_reload(&page).await;
        assert_eq!(
            app.api_get(&service, &bob, "inbox").await,
            None,
            "bob's value is a miss right after"
        );
        assert!(
            page.text("main")
                .await
                .contains(&format!("Cache of {bob} invalidated")),
            "the admin is told"
        );

        // The admin's override of bob's flag.
        page.click(&format!("{row} button.toggle")).await;
        page.wait_until("bob's flag shows off", || async {
            page.attr(&format!("{row} button.toggle"), "aria-pressed")
                .await
                .as_deref()
                == Some("false")
        })
        .await;
        app.api_set(&service, &bob, "inbox", "4 unread").await;
        assert_eq!(
            app.api_get(&service, &bob, "inbox").await,
            None,
            "bob's cache is off"
        );
        page.click(&format!("{row} button.toggle")).await;
        page.wait_until("bob's flag shows on", || async {
            page.attr(&format!("{row} button.toggle"), "aria-pressed")
                .await
                .as_deref()
                == Some("true")
        })
        .await;
        app.api_set(&service, &bob, "inbox", "5 unread").await;
        assert_eq!(
            app.api_get(&service, &bob, "inbox").await.as_deref(),
            Some("5 unread")
        );

        // A table's cached queries.
        page.fill("#table-name", "core_invoice").await;
        page.click("#table-name ~ button").await;
        page.wait_until("the table is invalidated", || async {
            page.text("main")
                .await
                .contains("Cached queries over table core_invoice invalidated")
        })
        .await;
    })
    .await;
    std::sync::Arc::into_inner(api)
        .expect("the test is over")
        .stop()
        .await;
}

async fn admin_pages_refuse_others(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("carol", Role::User).await;
    with_browser(&app, |page| async move {
        // Anonymous: to the login page.
        for path in ["/admin/users", "/admin/dashboard", "/me"] {
            page.goto(path).await;
            assert_eq!(page.path().await, "/login", "{path}");
        }
        // A wrong password: told so, still on the login page.
        page.fill("#username", "carol").await;
        page.fill("#password", "not her password").await;
        page.click("form.stack button[type='submit']").await;
        page.wait_until("the error is shown", || async {
            page.has(".flash.error").await
        })
        .await;
        assert!(
            page.text(".flash.error")
                .await
                .contains("wrong user name or password")
        );
        assert_eq!(page.path().await, "/login");

        page.sign_in("carol").await;
        assert!(
            !page.has("a[href='/admin/users']").await,
            "no admin links for users"
        );
        for path in [
            "/admin",
            "/admin/users",
            "/admin/dashboard",
            "/admin/invalidate-all",
        ] {
            page.goto(path).await;
            assert_eq!(page.text("h1").await, "403 — Forbidden", "{path}");
            assert_eq!(
                page.client.title().await.expect("title"),
                "403 Forbidden · nscache"
            );
        }
        check_mode(&page).await;
        page.screenshots("forbidden").await;
    })
    .await;
    app.stop().await;
}

async fn invalidating_everything_needs_confirmation(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let dave = app.account("dave", Role::User).await;
    let service = app.service().await;
    app.api_set(&service, &dave, "feed", "fresh").await;
    let api = std::sync::Arc::new(app);
    let app2 = api.clone();
    with_browser(&api, move |page| async move {
        let app = app2;
        let cache = app.t.server.control().cache().clone();
        let before = cache.version_of(&dave).await.expect("version");
        page.sign_in("root").await;
        page.goto("/admin/users").await;
        page.click("#invalidate-all").await;
        page.wait_for("#confirm-invalidate-all").await;
        page.settle().await;
        check_mode(&page).await;
        assert_eq!(page.text("h1").await, "Invalidate everything?");
        page.screenshots("confirm-invalidate-all").await;

        // Cancel changes nothing.
        page.click("#cancel-invalidate-all").await;
        page.wait_until("back on the admin page", || async {
            page.path().await == "/admin" && page.has("#users-summary").await
        })
        .await;
        assert_eq!(
            app.api_get(&service, &dave, "feed").await.as_deref(),
            Some("fresh"),
            "cancel changed nothing"
        );
        assert_eq!(cache.version_of(&dave).await.expect("version"), before);

        // Confirming does it.
        page.click("#invalidate-all").await;
        page.wait_for("#confirm-invalidate-all").await;
        page.settle().await;
        page.click("#confirm-invalidate-all").await;
        page.wait_until("everything is invalidated", || async {
            page.text("main")
                .await
                .contains("Every namespace was invalidated")
        })
        .await;
        assert_eq!(
            app.api_get(&service, &dave, "feed").await,
            None,
            "every namespace is a miss"
        );
    })
    .await;
    std::sync::Arc::into_inner(api)
        .expect("the test is over")
        .stop()
        .await;
}

async fn the_dashboard_draws_charts_and_refreshes(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let erin = app.account("erin", Role::User).await;
    let service = app.service().await;
    // Traffic over a few samples: hits and misses.
    for round in 0..4 {
        app.api_set(&service, &erin, "k", "v").await;
        for i in 0..(5 + round * 3) {
            let _ = app
                .api_get(&service, &erin, if i % 3 == 0 { "missing" } else { "k" })
                .await;
        }
        app.t.server.dashboard().sample_now().await;
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    }
    let latest = app
        .t
        .server
        .dashboard()
        .intervals()
        .iter()
        .rev()
        .find_map(|i| i.hit_rate)
        .expect("reads were sampled");
    let expected = format!("Hit rate: {:.0}% (latest)", latest * 100.0);
    with_browser(&app, move |page| async move {
        page.sign_in("root").await;
        page.goto("/admin/dashboard").await;
        check_mode(&page).await;
        for chart in ["#chart-hit-rate", "#chart-ops", "#chart-errors"] {
            page.wait_for(&format!("{chart} svg polyline")).await;
        }
        assert_eq!(
            page.text("#chart-hit-rate .summary").await,
            expected,
            "the chart's summary reads the sampled hit rate"
        );
        assert_eq!(
            page.attr("[data-dependency='redis']", "data-ok")
                .await
                .as_deref(),
            Some("true"),
            "Redis is healthy"
        );
        assert_eq!(
            page.attr("[data-dependency='postgres']", "data-ok")
                .await
                .as_deref(),
            Some("true"),
            "Postgres is healthy"
        );
        assert!(
            !page.text("#eviction-policy").await.is_empty(),
            "the eviction policy is shown"
        );
        page.screenshots("dashboard").await;
        if page.mode == Mode::Hydrated {
            // The sampler runs every second here; the page asks every 3 s.
            let first = page.attr("#dashboard-updated", "data-updated").await;
            page.mark().await;
            page.wait_until("the dashboard refreshes itself", || async {
                page.attr("#dashboard-updated", "data-updated").await != first
            })
            .await;
            check_no_reload(&page).await;
        }
    })
    .await;
    app.stop().await;
}

/// A warning made here (an invoice sequence that expires) shows in the
/// dashboard's Checks panel, from the recorded `doctor` run, with its time;
/// the cheap checks the server re-runs are there too.
async fn the_checks_panel_shows_a_warning(mode: Mode) {
    use nscache_server::doctor::{self, DoctorOptions, Status};
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let control = app.t.server.control().clone();
    let cache = control.cache().clone();
    cache
        .global()
        .set("invoice_seq:2026", "41", nscache::Expiry::secs(3600))
        .await
        .expect("set");
    let report = doctor::run(
        &cache.resolved_settings(),
        &DoctorOptions {
            scan: true,
            postgres: control.directory().postgres_pool(),
            cache: Some(cache.clone()),
        },
    )
    .await;
    let check = report.check("keys.invoice_sequences").expect("checked");
    assert_eq!(check.status, Status::Warn, "{}", report.render());
    doctor::record(&cache, &report).await.expect("recorded");
    app.t.server.dashboard().check_now().await;
    with_browser(&app, move |page| async move {
        page.sign_in("root").await;
        page.goto("/admin/dashboard").await;
        check_mode(&page).await;
        let warning = "#checks li[data-check='keys.invoice_sequences'][data-status='warn']";
        page.wait_for(warning).await;
        let text = page.text(warning).await;
        assert!(text.contains("invoice_seq:2026"), "{text}");
        assert!(text.contains("⚠"), "{text}");
        assert!(
            text.contains("nscache set invoice_seq:2026 41 --ttl none"),
            "{text}"
        );
        let run = page.text("#doctor-run").await;
        assert!(run.contains("From the last"), "{run}");
        assert!(run.contains(" UTC"), "the run's time: {run}");
        assert!(
            page.has("#checks li[data-check='redis.eviction_policy']")
                .await,
            "the cheap checks are listed"
        );
        page.screenshots("dashboard-checks").await;
    })
    .await;
    app.stop().await;
}

/// "Purge…" on a user's row asks first; confirming deletes the user's keys
/// of every version and no one else's.
async fn an_admin_purges_a_user_after_confirming(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let fay = app.account("fay", Role::User).await;
    let gus = app.account("gus", Role::User).await;
    let service = app.service().await;
    let cache = app.t.server.control().cache().clone();
    app.api_set(&service, &fay, "old", "1").await;
    cache.invalidate_user(&fay).await.expect("invalidate");
    app.api_set(&service, &fay, "new", "2").await;
    app.api_set(&service, &gus, "mine", "3").await;
    let layout = nscache_server::doctor::layout(&cache.resolved_settings());
    let pattern = layout.user(&fay).scan_pattern();
    let count = |pattern: String| async move {
        let mut conn = nscache_tests::raw_connection(&nscache_tests::redis_url()).await;
        let mut cursor: u64 = 0;
        let mut n = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .expect("scan");
            n += keys.len();
            if next == 0 {
                return n;
            }
            cursor = next;
        }
    };
    assert!(count(pattern.clone()).await >= 2, "two versions' entries");
    let api = std::sync::Arc::new(app);
    let app2 = api.clone();
    let fay2 = fay.clone();
    with_browser(&api, move |page| async move {
        let (app, fay) = (app2, fay2);
        page.sign_in("root").await;
        page.goto("/admin/users?q=fay").await;
        page.click(&format!("tr[data-user-id='{fay}'] a.purge"))
            .await;
        page.wait_for("#confirm-purge").await;
        page.settle().await;
        check_mode(&page).await;
        assert!(page.text("h1").await.contains(&fay));
        page.screenshots("confirm-purge").await;
        page.click("#cancel-purge").await;
        page.wait_until("back on the admin page", || async {
            page.path().await == "/admin"
        })
        .await;
        assert!(count(pattern.clone()).await >= 2, "cancel deleted nothing");

        page.goto(&format!("/admin/purge?user={fay}")).await;
        page.wait_for("#confirm-purge").await;
        page.settle().await;
        page.click("#confirm-purge").await;
        page.wait_until("the purge is reported", || async {
            let main = page.text("main").await;
            main.contains(&format!("keys of {fay}")) || main.contains("goes on in the background")
        })
        .await;
        page.wait_until("fay's keys are gone", || async {
            count(pattern.clone()).await == 0
        })
        .await;
        assert_eq!(
            app.api_get(&service, &gus, "mine").await.as_deref(),
            Some("3"),
            "another user's entries stay"
        );
    })
    .await;
    std::sync::Arc::into_inner(api)
        .expect("the test is over")
        .stop()
        .await;
}

/// Clickjacking: a page on another site (here `localhost` on another port,
/// the app being on 127.0.0.1) puts "Invalidate everything?" in a frame to
/// trick an admin into the click. The browser refuses to show it.
async fn another_site_cannot_frame_the_confirmation_page(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("root", Role::Admin).await;
    let target = format!("{}/admin/invalidate-all", app.base);
    let (attacker_port, serving) = other_site(format!(
        "<!DOCTYPE html><title>Win a prize</title>\
         <iframe id=\"victim\" src=\"{target}\" width=\"900\" height=\"600\"></iframe>"
    ))
    .await;
    with_browser(&app, move |page| async move {
        page.sign_in("root").await;
        page.goto("/admin/invalidate-all").await;
        page.wait_for("#confirm-invalidate-all").await;
        assert!(
            csp_violations(&browser_log(&page.client).await).is_empty(),
            "the page itself loads without a violation"
        );

        page.client
            .goto(&format!("http://localhost:{attacker_port}/"))
            .await
            .expect("open the other site");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let mut seen = Vec::new();
        while !seen.iter().any(|m: &String| m.contains("frame-ancestors")) {
            assert!(
                std::time::Instant::now() < deadline,
                "the browser did not report refusing the frame: {seen:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            seen.extend(csp_violations(&browser_log(&page.client).await));
        }
        println!("{mode:?}: the browser says {seen:?}");
        // Inside the frame: an error page, not the button.
        let frame = page
            .client
            .find(fantoccini::Locator::Id("victim"))
            .await
            .expect("the frame");
        frame.enter_frame().await.expect("enter the frame");
        assert!(
            !page.has("#confirm-invalidate-all").await,
            "the confirmation is not shown inside another site's page"
        );
        page.client
            .enter_parent_frame()
            .await
            .expect("leave the frame");
    })
    .await;
    serving.abort();
    app.stop().await;
}

/// A page on another site, served on `localhost` (the app is on 127.0.0.1),
/// until the returned task is aborted.
async fn other_site(html: String) -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let site = axum::Router::new().route(
        "/",
        axum::routing::get(move || async move { axum::response::Html(html) }),
    );
    let serving = tokio::spawn(async move {
        let _ = axum::serve(listener, site).await;
    });
    (port, serving)
}

/// Login CSRF: another site's page posts the sign-in form with the
/// attacker's credentials, to have the victim's browser work in the
/// attacker's account. The server refuses it (403, no cookie); the same form
/// on the app's own page still signs in.
async fn another_site_cannot_sign_the_browser_in(mode: Mode) {
    let app = UiApp::start(mode).await;
    app.account("mallory", Role::User).await;
    let (port, serving) = other_site(format!(
        "<!DOCTYPE html><title>Win a prize</title>\
         <form method=\"post\" action=\"{}/ui/fn/sign-in\">\
         <input type=\"hidden\" name=\"username\" value=\"mallory\">\
         <input type=\"hidden\" name=\"password\" value=\"correct horse battery\">\
         <button id=\"prize\" type=\"submit\">Claim your prize</button></form>",
        app.base
    ))
    .await;
    with_browser(&app, move |page| async move {
        page.client
            .goto(&format!("http://localhost:{port}/"))
            .await
            .expect("open the other site");
        page.client
            .find(fantoccini::Locator::Id("prize"))
            .await
            .expect("the button")
            .click()
            .await
            .expect("click");
        let base = page.base.clone();
        page.wait_until("the form was sent to the app", || async {
            let url = page.client.current_url().await.expect("url");
            url.as_str().starts_with(&base) && page.has("h1").await
        })
        .await;
        let answer = page.text("h1").await;
        page.goto("/me").await;
        assert_eq!(
            page.path().await,
            "/login",
            "the other site's form signed the browser in as mallory (it answered {answer:?})"
        );
        assert_eq!(answer, "403 — Cross-site request refused");

        // The app's own form works.
        page.sign_in("mallory").await;
        assert_eq!(page.path().await, "/me");
    })
    .await;
    serving.abort();
    app.stop().await;
}
