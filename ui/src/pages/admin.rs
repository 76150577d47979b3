//! `/admin/users`: the users table (search, pages, per-row invalidation and
//! flag override), table invalidation, and the way to "invalidate
//! everything" (`/admin/invalidate-all`, a confirmation page), and the
//! purge of one user's entries (`/admin/purge?user=ID`, a confirmation page).

use leptos::form::ActionForm;
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{
    DEFAULT_PER_PAGE, InvalidateAll, InvalidateTable, InvalidateUser, PurgeUser, SetUserCache,
    list_users,
};
use crate::app::{ContextResource, ErrorView, Outcome, csrf_of};
use crate::model::{UserRow, UsersPage, VersionText};

/// `?q=...&page=...` of the users table.
fn users_link(search: &str, page: u64) -> String {
    let mut link = String::from("/admin/users?");
    if !search.is_empty() {
        link.push_str("q=");
        link.push_str(&percent_encode(search));
        link.push('&');
    }
    link.push_str(&format!("page={page}"));
    link
}

/// Percent-encode a query value.
fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Thousands separators: `100,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The admin page: users, table invalidation, "invalidate everything".
#[component]
pub fn AdminUsersPage() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    let query = use_query_map();
    let search = move || query.read().get("q").unwrap_or_default().trim().to_owned();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.trim().parse::<u64>().ok())
            .filter(|p| *p > 0)
            .unwrap_or(1)
    };
    let invalidate = ServerAction::<InvalidateUser>::new();
    let set_flag = ServerAction::<SetUserCache>::new();
    let table = ServerAction::<InvalidateTable>::new();
    let users = Resource::new(
        move || {
            (
                search(),
                page(),
                invalidate.version().get(),
                set_flag.version().get(),
            )
        },
        |(search, page, _, _)| list_users(search, page, DEFAULT_PER_PAGE),
    );
    let row_outcome = Signal::derive(move || {
        // The newest of the two per-row actions.
        match (invalidate.value().get(), set_flag.value().get()) {
            (Some(a), Some(b)) => Some(
                if invalidate.version().get_untracked() >= set_flag.version().get_untracked() {
                    a
                } else {
                    b
                },
            ),
            (a, b) => a.or(b),
        }
    });
    let table_value = Signal::derive(move || table.value().get());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = csrf_of(&context.await);
                match users.await {
                    Err(error) => view! { <ErrorView error/> }.into_any(),
                    Ok(found) => view! {
                        <Title text="Users"/>
                        <h1>"Users"</h1>
                        <UsersTable found search=search() csrf=csrf.clone() invalidate set_flag/>
                        <Outcome value=row_outcome/>
                        <section class="card" aria-labelledby="table-title">
                            <h2 id="table-title">"Invalidate a table's cached queries"</h2>
                            <p class="help">"Every cached query that read this table becomes a miss, for every user."</p>
                            <ActionForm action=table attr:class="inline">
                                <input type="hidden" name="csrf_token" value=csrf.clone()/>
                                <label for="table-name">"Table name"</label>
                                <input id="table-name" name="table" type="text" required maxlength="256" placeholder="core_invoice"/>
                                <button type="submit">"Invalidate table"</button>
                            </ActionForm>
                            <Outcome value=table_value/>
                        </section>
                        <section class="card danger-zone" aria-labelledby="all-title">
                            <h2 id="all-title">"Invalidate everything"</h2>
                            <p class="help">"Every user's cached data becomes a miss at once. You will be asked to confirm."</p>
                            <a class="button danger" href="/admin/invalidate-all" id="invalidate-all">"Invalidate everything…"</a>
                        </section>
                    }
                    .into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn UsersTable(
    found: UsersPage,
    search: String,
    csrf: String,
    invalidate: ServerAction<InvalidateUser>,
    set_flag: ServerAction<SetUserCache>,
) -> impl IntoView {
    let pages = found.pages();
    let page = found.page.min(pages);
    let first = if found.total == 0 {
        0
    } else {
        (found.page - 1) * found.per_page + 1
    };
    let last = ((found.page - 1) * found.per_page + found.users.len() as u64).min(found.total);
    let summary = if found.total == 0 {
        if search.is_empty() {
            "No users yet.".to_owned()
        } else {
            format!("No user id or name starts with “{search}”.")
        }
    } else {
        let noun = if found.total == 1 { "user" } else { "users" };
        format!(
            "Showing {}–{} of {} {noun}{}.",
            grouped(first),
            grouped(last),
            grouped(found.total),
            if search.is_empty() {
                String::new()
            } else {
                format!(" matching “{search}”")
            }
        )
    };
    let rows = found
        .users
        .into_iter()
        .map(|user| view! { <Row user csrf=csrf.clone() invalidate set_flag/> })
        .collect_view();
    let link = |p: u64| users_link(&search, p);
    let prev = (page > 1).then(|| link(page - 1));
    let next = (page < pages).then(|| link(page + 1));
    view! {
        <form class="inline search" method="get" action="/admin/users" role="search">
            <label for="user-search">"Search by id or name (prefix)"</label>
            <input id="user-search" name="q" type="search" value=search.clone() maxlength="256"/>
            <button type="submit">"Search"</button>
        </form>
        <p id="users-summary" role="status">{summary}</p>
        {(!found.versions_available).then(|| view! {
            <p class="flash error" role="alert">"The cache did not answer: namespace versions are not shown."</p>
        })}
        <div class="table-wrap">
            <table class="users">
                <caption class="visually-hidden">"Users, their cache flag and namespace version"</caption>
                <thead>
                    <tr>
                        <th scope="col">"User id"</th>
                        <th scope="col">"Name"</th>
                        <th scope="col">"Role"</th>
                        <th scope="col">"Cache"</th>
                        <th scope="col">"Namespace version"</th>
                        <th scope="col">"Actions"</th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
        <nav class="pages" aria-label="Pages of users">
            <a href=link(1) class="button secondary" aria-disabled=(page == 1).to_string()>"« First"</a>
            {match prev {
                Some(href) => view! { <a href=href class="button secondary" rel="prev">"‹ Previous"</a> }.into_any(),
                None => view! { <span class="button secondary disabled" aria-disabled="true">"‹ Previous"</span> }.into_any(),
            }}
            <span class="page-of">{format!("Page {} of {}", grouped(page), grouped(pages))}</span>
            {match next {
                Some(href) => view! { <a href=href class="button secondary" rel="next">"Next ›"</a> }.into_any(),
                None => view! { <span class="button secondary disabled" aria-disabled="true">"Next ›"</span> }.into_any(),
            }}
            <a href=link(pages) class="button secondary" aria-disabled=(page == pages).to_string()>"Last »"</a>
            <form class="inline goto" method="get" action="/admin/users">
                {(!search.is_empty()).then(|| view! { <input type="hidden" name="q" value=search.clone()/> })}
                <label for="goto-page">"Go to page"</label>
                <input id="goto-page" name="page" type="number" min="1" max=pages.to_string() value=page.to_string() inputmode="numeric"/>
                <button type="submit" class="secondary">"Go"</button>
            </form>
        </nav>
    }
}

#[component]
fn Row(
    user: UserRow,
    csrf: String,
    invalidate: ServerAction<InvalidateUser>,
    set_flag: ServerAction<SetUserCache>,
) -> impl IntoView {
    let on = user.cache_enabled;
    let label = user
        .username
        .clone()
        .unwrap_or_else(|| user.user_id.clone());
    let toggle_label = format!("Cache for {label}");
    let invalidate_label = format!("Invalidate the cache of {label}");
    let (id_cell, id_attr, id_flag, id_invalidate) = (
        user.user_id.clone(),
        user.user_id.clone(),
        user.user_id.clone(),
        user.user_id.clone(),
    );
    let csrf_flag = csrf.clone();
    let purge_href = format!("/admin/purge?user={}", percent_encode(&user.user_id));
    let purge_label = format!("Delete every cached entry of {label}");
    let version = user
        .namespace_version
        .map(|v| v.to_string())
        .unwrap_or_default();
    view! {
        <tr data-user-id=id_attr>
            <td data-label="User id"><code>{id_cell}</code></td>
            <td data-label="Name">{user.username.unwrap_or_else(|| "—".into())}</td>
            <td data-label="Role">{user.role.unwrap_or_else(|| "—".into())}</td>
            <td data-label="Cache">
                <ActionForm action=set_flag>
                    <input type="hidden" name="csrf_token" value=csrf_flag/>
                    <input type="hidden" name="user_id" value=id_flag/>
                    <input type="hidden" name="enabled" value=(!on).to_string()/>
                    <button type="submit" class="toggle small" aria-pressed=on.to_string() aria-label=toggle_label>
                        <span class="switch" aria-hidden="true"></span>
                        {if on { "On" } else { "Off" }}
                    </button>
                </ActionForm>
            </td>
            <td data-label="Namespace version" class="version" data-version=version>
                {VersionText(user.namespace_version).to_string()}
            </td>
            <td data-label="Actions">
                <div class="row-actions">
                    <ActionForm action=invalidate>
                        <input type="hidden" name="csrf_token" value=csrf/>
                        <input type="hidden" name="user_id" value=id_invalidate/>
                        <button type="submit" class="secondary invalidate" aria-label=invalidate_label>"Invalidate"</button>
                    </ActionForm>
                    <a class="button secondary purge" href=purge_href aria-label=purge_label>"Purge…"</a>
                </div>
            </td>
        </tr>
    }
}

/// `/admin/invalidate-all`: the confirmation. Cancel is a link back; nothing
/// changes until the form is sent.
#[component]
pub fn ConfirmInvalidateAll() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    let action = ServerAction::<InvalidateAll>::new();
    // Asking for one row tells how many users this affects (and checks that the
    // viewer is an admin: the server answers 403 otherwise).
    let users = Resource::new(|| (), |_| list_users(String::new(), 1, 1));
    let value = Signal::derive(move || action.value().get());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = csrf_of(&context.await);
                match users.await {
                    Err(error) => view! { <ErrorView error/> }.into_any(),
                    Ok(found) => {
                        let csrf = StoredValue::new(csrf);
                        view! {
                        <Title text="Invalidate everything?"/>
                        <section class="card confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-text">
                            <h1 id="confirm-title">"Invalidate everything?"</h1>
                            <p id="confirm-text">
                                "Every namespace — all " {grouped(found.total)} " users — becomes a miss at once. "
                                "Applications recompute what they need; old entries expire on their own. "
                                "Global keys (locks, counters, sequences) are kept. This cannot be undone."
                            </p>
                            <Show when=move || !matches!(value.get(), Some(Ok(_)))
                                fallback=|| view! { <p><a class="button" href="/admin">"Back to Users"</a></p> }>
                                <div class="actions">
                                    <ActionForm action=action attr:class="inline">
                                        <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                        <input type="hidden" name="confirm" value="yes"/>
                                        <button type="submit" class="danger" id="confirm-invalidate-all">"Yes, invalidate everything"</button>
                                    </ActionForm>
                                    <a class="button secondary" href="/admin" id="cancel-invalidate-all">"Cancel"</a>
                                </div>
                            </Show>
                            <Outcome value/>
                        </section>
                    }
                    .into_any()
                    }
                }
            })}
        </Transition>
    }
}

/// `/admin/purge?user=ID`: the confirmation before deleting every entry of
/// one user's namespace, every version (right to erasure). Cancel is a link
/// back; nothing is deleted until the form is sent.
#[component]
pub fn ConfirmPurge() -> impl IntoView {
    let context = expect_context::<ContextResource>();
    let query = use_query_map();
    let user = move || query.read().get("user").unwrap_or_default();
    let action = ServerAction::<PurgeUser>::new();
    // One row: checks that the viewer is an admin (403 otherwise).
    let check = Resource::new(|| (), |_| list_users(String::new(), 1, 1));
    let value = Signal::derive(move || action.value().get());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                let csrf = csrf_of(&context.await);
                let user = user();
                match check.await {
                    Err(error) => view! { <ErrorView error/> }.into_any(),
                    Ok(_) if user.is_empty() => view! {
                        <p class="warn">"No user given."</p>
                        <p><a class="button" href="/admin">"Back to Users"</a></p>
                    }.into_any(),
                    Ok(_) => {
                        let csrf = StoredValue::new(csrf);
                        let shown = StoredValue::new(user);
                        view! {
                        <Title text="Delete a user's cached entries?"/>
                        <section class="card confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-text">
                            <h1 id="confirm-title">"Delete every cached entry of " <code>{shown.get_value()}</code> "?"</h1>
                            <p id="confirm-text">
                                "Invalidating only makes old entries unreachable; this deletes them from the store, "
                                "of every version (right to erasure). It scans the cache's database in the background "
                                "and reports how many keys it deleted. Other users are not touched. This cannot be undone."
                            </p>
                            <Show when=move || !matches!(value.get(), Some(Ok(_)))
                                fallback=|| view! { <p><a class="button" href="/admin">"Back to Users"</a></p> }>
                                <div class="actions">
                                    <ActionForm action=action attr:class="inline">
                                        <input type="hidden" name="csrf_token" value=csrf.get_value()/>
                                        <input type="hidden" name="user_id" value=shown.get_value()/>
                                        <input type="hidden" name="confirm" value="yes"/>
                                        <button type="submit" class="danger" id="confirm-purge">"Yes, delete them"</button>
                                    </ActionForm>
                                    <a class="button secondary" href="/admin" id="cancel-purge">"Cancel"</a>
                                </div>
                            </Show>
                            <Outcome value/>
                        </section>
                    }
                    .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_search_encoded() {
        assert_eq!(users_link("", 3), "/admin/users?page=3");
        assert_eq!(users_link("a b&c", 1), "/admin/users?q=a%20b%26c&page=1");
    }

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(999), "999");
        assert_eq!(grouped(1000), "1,000");
        assert_eq!(grouped(100_000), "100,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
    }
}
