//! `/login`: a plain form (a full page load in both modes: a new session
//! means a new page).

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;

use crate::api::SignIn;
use crate::app::ContextResource;

/// The sign-in page.
#[component]
pub fn LoginPage() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    view! {
        <Title text="Sign in"/>
        <section class="card narrow" aria-labelledby="login-title">
            <h1 id="login-title">"Sign in"</h1>
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    context.await.ok().and_then(|c| c.viewer).map(|v| {
                        view! {
                            <p class="note">"You are signed in as " <strong>{v.username}</strong> ". "
                                <a href="/me">"Go to My settings"</a> " or sign in as someone else."</p>
                        }
                    })
                })}
            </Transition>
            <form method="post" action=SignIn::url() class="stack">
                <label for="username">"User name"</label>
                <input id="username" name="username" type="text" autocomplete="username" required autofocus/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required/>
                <button type="submit">"Sign in"</button>
            </form>
        </section>
    }
}
