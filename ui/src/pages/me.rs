//! `/me`: the signed-in person's own cache setting, namespace version and
//! "Clear my cache".

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::{ClearMyCache, SetMyCache, get_me};
use crate::app::{ContextResource, ErrorView, Outcome, csrf_of};
use crate::model::VersionText;

/// "My settings".
#[component]
pub fn MePage() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    let toggle = ServerAction::<SetMyCache>::new();
    let clear = ServerAction::<ClearMyCache>::new();
    let me = Resource::new(
        move || (toggle.version().get(), clear.version().get()),
        |_| get_me(),
    );
    let toggle_value = Signal::derive(move || toggle.value().get());
    let clear_value = Signal::derive(move || clear.value().get());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = csrf_of(&context.await);
                match me.await {
                    Err(error) => view! { <ErrorView error/> }.into_any(),
                    Ok(me) => {
                        let on = me.cache_enabled;
                        let csrf_toggle = csrf.clone();
                        view! {
                            <Title text="My settings"/>
                            <h1>"My settings"</h1>
                            <section class="card" aria-labelledby="cache-title">
                                <h2 id="cache-title">"Caching of my data"</h2>
                                <p class="state" data-cache-enabled=on.to_string()>
                                    <span class=if on { "badge on" } else { "badge off" }>{if on { "On" } else { "Off" }}</span>
                                    {if on {
                                        " Your data is cached: pages and queries made for you are kept for a while, so they load faster."
                                    } else {
                                        " Your data is not cached: every request for you is computed afresh, and nothing is stored under your name."
                                    }}
                                </p>
                                <ActionForm action=toggle>
                                    <input type="hidden" name="csrf_token" value=csrf_toggle/>
                                    <input type="hidden" name="enabled" value=(!on).to_string()/>
                                    <button type="submit" class="toggle" id="cache-toggle" aria-pressed=on.to_string()
                                        aria-describedby="toggle-help">
                                        <span class="switch" aria-hidden="true"></span>
                                        "Cache my data"
                                    </button>
                                </ActionForm>
                                <p id="toggle-help" class="help">
                                    {if on { "Press to turn caching off." } else { "Press to turn caching on." }}
                                    " The change takes effect on your next request; what was cached before is dropped."
                                </p>
                                <Outcome value=toggle_value/>
                            </section>
                            <section class="card" aria-labelledby="ns-title">
                                <h2 id="ns-title">"My namespace"</h2>
                                <dl class="facts">
                                    <dt>"User name"</dt><dd>{me.username.clone()}</dd>
                                    <dt>"Namespace id"</dt><dd><code>{me.user_id.clone()}</code></dd>
                                    <dt>"Role"</dt><dd>{me.role.clone()}</dd>
                                    <dt>"Namespace version"</dt>
                                    <dd id="my-version" data-version=me.namespace_version.map(|v| v.to_string()).unwrap_or_default()>
                                        {VersionText(me.namespace_version).to_string()}
                                    </dd>
                                </dl>
                                <p class="help">"Clearing your cache moves you to a new version: everything cached for you before becomes unreachable at once."</p>
                                <ActionForm action=clear>
                                    <input type="hidden" name="csrf_token" value=csrf/>
                                    <button type="submit" id="clear-my-cache">"Clear my cache"</button>
                                </ActionForm>
                                <Outcome value=clear_value/>
                            </section>
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}
