//! The application: the HTML shell, the router, the header and the pieces
//! every page shares (errors, messages, the 403 page).

use leptos::prelude::*;
use leptos_meta::{MetaTags, Title, provide_meta_context};
use leptos_router::components::{Redirect, Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::{SsrMode, path};

use leptos::server_fn::ServerFn;

use crate::api::{SignOut, get_page_context};
use crate::model::{Done, PageContext, UiError, Viewer};
use crate::pages::{
    AdminUsersPage, ConfirmInvalidateAll, ConfirmPurge, DashboardPage, LoginPage, MePage,
};

/// The whole HTML document. `hydrate`: include the script that loads the
/// wasm bundle (without it the pages are server-rendered only and every form
/// posts to the server).
pub fn shell(options: LeptosOptions, hydrate: bool) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light dark"/>
                <link rel="stylesheet" href="/ui.css"/>
                {hydrate.then(|| view! { <HydrationScripts options=options.clone()/> })}
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The page context (viewer, flash) for the current location.
pub type ContextResource = Resource<Result<PageContext, UiError>>;

/// The root component (hydrated in the browser).
#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // True once the wasm bundle has taken over the page (never without it).
    let hydrated = RwSignal::new(false);
    Effect::new(move |_| hydrated.set(true));
    view! {
        <Title formatter=|page: String| format!("{page} · nscache")/>
        <Router>
            <div class="app" data-hydrated=move || if hydrated.get() { "true" } else { "false" }>
                <a class="skip" href="#main">"Skip to content"</a>
                <Layout/>
            </div>
        </Router>
    }
}

#[component]
fn Layout() -> impl IntoView {
    let location = use_location();
    let context: ContextResource =
        Resource::new(move || location.pathname.get(), |_| get_page_context());
    provide_context(context);
    view! {
        <Header context/>
        <main id="main" tabindex="-1">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    context.await.ok().and_then(|c| c.flash).map(|flash| {
                        let class = if flash.error { "flash error" } else { "flash ok" };
                        let role = if flash.error { "alert" } else { "status" };
                        view! { <p class=class role=role>{flash.message}</p> }
                    })
                })}
            </Transition>
            <Routes fallback=|| view! { <NotFound/> }>
                <Route path=path!("/") view=Home ssr=SsrMode::Async/>
                <Route path=path!("/login") view=LoginPage ssr=SsrMode::Async/>
                <Route path=path!("/me") view=MePage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=AdminUsersPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/users") view=AdminUsersPage ssr=SsrMode::Async/>
                <Route path=path!("/admin/invalidate-all") view=ConfirmInvalidateAll ssr=SsrMode::Async/>
                <Route path=path!("/admin/purge") view=ConfirmPurge ssr=SsrMode::Async/>
                <Route path=path!("/admin/dashboard") view=DashboardPage ssr=SsrMode::Async/>
            </Routes>
        </main>
    }
}

/// `/`: on to one's settings when signed in, else to the sign-in page.
#[component]
fn Home() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let signed_in = context.await.ok().and_then(|c| c.viewer).is_some();
                view! { <Redirect path=if signed_in { "/me" } else { "/login" }/> }
            })}
        </Suspense>
    }
}

#[component]
fn Header(context: ContextResource) -> impl IntoView {
    view! {
        <header class="top">
            <a class="brand" href="/me">"nscache"</a>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    context.await.ok().and_then(|c| c.viewer).map(|viewer| view! { <Nav viewer/> })
                })}
            </Transition>
        </header>
    }
}

#[component]
fn Nav(viewer: Viewer) -> impl IntoView {
    let admin = viewer.is_admin.then(|| {
        view! {
            <li><a href="/admin/users">"Users"</a></li>
            <li><a href="/admin/dashboard">"Dashboard"</a></li>
        }
    });
    view! {
        <nav aria-label="Main">
            <ul>
                <li><a href="/me">"My settings"</a></li>
                {admin}
            </ul>
        </nav>
        <form class="signout" method="post" action=SignOut::url()>
            <span class="who">{format!("{} ({})", viewer.username, viewer.role)}</span>
            <input type="hidden" name="csrf_token" value=viewer.csrf_token/>
            <button type="submit" class="secondary">"Sign out"</button>
        </form>
    }
}

/// The CSRF token of the page's viewer (empty when signed out: the server
/// refuses such a form anyway).
pub fn csrf_of(context: &Result<PageContext, UiError>) -> String {
    context
        .as_ref()
        .ok()
        .and_then(|c| c.viewer.as_ref())
        .map(|v| v.csrf_token.clone())
        .unwrap_or_default()
}

/// Set the response status while rendering on the server.
pub fn set_status(status: u16) {
    #[cfg(feature = "ssr")]
    crate::api::serve::set_status(status);
    #[cfg(not(feature = "ssr"))]
    let _ = status;
}

/// What a page shows instead of its content when loading it failed: the login
/// page for people not signed in, the 403 page, or the error.
#[component]
pub fn ErrorView(
    /// What went wrong.
    error: UiError,
) -> impl IntoView {
    match error {
        UiError::Unauthenticated => view! { <Redirect path="/login"/> }.into_any(),
        UiError::Forbidden(why) => {
            set_status(403);
            view! {
                <Title text="403 Forbidden"/>
                <section class="error-page" aria-labelledby="error-title">
                    <h1 id="error-title">"403 — Forbidden"</h1>
                    <p>"You are signed in, but this page is for admins."</p>
                    <p class="detail">"The server said: " {why}</p>
                    <p><a class="button" href="/me">"Go to My settings"</a></p>
                </section>
            }
            .into_any()
        }
        other => {
            set_status(other.status());
            let title = match other.status() {
                503 => "Service unavailable",
                400 => "Bad request",
                404 => "Not found",
                _ => "Something went wrong",
            };
            view! {
                <Title text=title/>
                <section class="error-page" aria-labelledby="error-title">
                    <h1 id="error-title">{title}</h1>
                    <p>{other.to_string()}</p>
                    <p><a class="button" href="">"Try again"</a></p>
                </section>
            }
            .into_any()
        }
    }
}

#[component]
fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Not found"/>
        <section class="error-page">
            <h1>"Not found"</h1>
            <p>"There is no page here."</p>
            <p><a class="button" href="/me">"Go to My settings"</a></p>
        </section>
    }
}

/// The outcome of the last action sent from this page (hydrated pages only:
/// without JavaScript the outcome comes back as a flash message).
#[component]
pub fn Outcome(
    /// The action's latest result.
    value: Signal<Option<Result<Done, UiError>>>,
) -> impl IntoView {
    view! {
        <p class="outcome" role="status" aria-live="polite">
            {move || match value.get() {
                Some(Ok(done)) => view! { <span class="ok">{done.message}</span> }.into_any(),
                Some(Err(UiError::Unauthenticated)) => view! { <Redirect path="/login"/> }.into_any(),
                Some(Err(e)) => view! { <span class="error">{e.to_string()}</span> }.into_any(),
                None => ().into_any(),
            }}
        </p>
    }
}
