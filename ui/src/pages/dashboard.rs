//! `/admin/dashboard`: hit rate, operations per second, errors and degraded
//! operations over time (SVG), Redis memory and eviction policy, and the
//! health of the cache store and the database. The hydrated page refreshes
//! itself; without JavaScript a "Reload" link does.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::get_dashboard;
use crate::app::ErrorView;
use crate::charts::{LineChart, Series};
use crate::model::{
    CheckRow, ChecksState, Dashboard, DependencyState, L1State, MemoryState, human_bytes,
};

/// How often the hydrated page asks for fresh data.
pub const REFRESH: std::time::Duration = std::time::Duration::from_secs(3);

/// `HH:MM:SS UTC` of a Unix time in milliseconds.
fn clock(unix_ms: u64) -> String {
    let secs = unix_ms / 1000;
    format!(
        "{:02}:{:02}:{:02} UTC",
        secs / 3600 % 24,
        secs / 60 % 60,
        secs % 60
    )
}

fn percent(v: f64) -> String {
    format!("{:.0}%", v * 100.0)
}

fn per_second(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0}/s")
    } else {
        format!("{v:.1}/s")
    }
}

fn count(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// The dashboard.
#[component]
pub fn DashboardPage() -> impl IntoView {
    let tick = RwSignal::new(0u64);
    // Effects run only in the browser: the server renders once.
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(move || tick.update(|t| *t += 1), REFRESH) {
            on_cleanup(move || handle.clear());
        }
    });
    let data = Resource::new(move || tick.get(), |_| get_dashboard());
    view! {
        <Transition fallback=|| view! { <p>"Loading…"</p> }>
            {move || Suspend::new(async move {
                match data.await {
                    Err(error) => view! { <ErrorView error/> }.into_any(),
                    Ok(d) => view! { <DashboardView d/> }.into_any(),
                }
            })}
        </Transition>
    }
}

#[component]
fn DashboardView(d: Dashboard) -> impl IntoView {
    let newest = d
        .samples
        .last()
        .map(|s| s.at_unix_ms)
        .unwrap_or(d.checked_at_unix_ms);
    let age = |at: u64| newest.saturating_sub(at) as f64 / 1000.0;
    let span = d
        .samples
        .first()
        .map(|s| age(s.at_unix_ms))
        .filter(|s| *s > 0.0)
        .unwrap_or(d.interval_secs * 60.0);
    let hit_rate = vec![Series {
        label: "Hit rate",
        class: "c1",
        points: d
            .samples
            .iter()
            .map(|s| (age(s.at_unix_ms), s.hit_rate))
            .collect(),
    }];
    let ops = vec![Series {
        label: "Operations",
        class: "c2",
        points: d
            .samples
            .iter()
            .map(|s| (age(s.at_unix_ms), Some(s.ops_per_sec)))
            .collect(),
    }];
    let errors = vec![
        Series {
            label: "Errors",
            class: "c3",
            points: d
                .samples
                .iter()
                .map(|s| (age(s.at_unix_ms), Some(s.errors as f64)))
                .collect(),
        },
        Series {
            label: "Degraded",
            class: "c4",
            points: d
                .samples
                .iter()
                .map(|s| (age(s.at_unix_ms), Some(s.degraded as f64)))
                .collect(),
        },
    ];
    let t = d.totals;
    let reads = t.hits + t.misses;
    let overall = if reads == 0 {
        "no reads yet".to_owned()
    } else {
        format!(
            "{} of {} reads",
            percent(t.hits as f64 / reads as f64),
            reads
        )
    };
    view! {
        <Title text="Dashboard"/>
        <h1>"Dashboard"</h1>
        <p class="updated" id="dashboard-updated" data-updated=d.checked_at_unix_ms.to_string()>
            "Health checked at " {clock(d.checked_at_unix_ms)} " · one sample every " {format!("{:.0}", d.interval_secs)} " s · "
            <a href="/admin/dashboard">"Reload"</a>
        </p>
        <section class="health" aria-label="Health">
            <Dependency title="Cache store" state=d.cache_store.clone()/>
            <Dependency title="Database" state=d.database.clone()/>
            <div class="tile">
                <h2>"Cache component"</h2>
                <p><span class=if d.component_ok { "badge on" } else { "badge off" }>{if d.component_ok { "OK" } else { "Down" }}</span></p>
            </div>
            <Memory memory=d.memory.clone()/>
            <L1 l1=d.l1/>
        </section>
        <Checks checks=d.checks.clone()/>
        {(d.samples.len() < 2).then(|| view! {
            <p class="note">"Collecting data: the charts fill in as samples arrive (one every " {format!("{:.0}", d.interval_secs)} " s)."</p>
        })}
        <div class="charts">
            <LineChart id="chart-hit-rate" title="Hit rate" series=hit_rate max=1.0 span format=percent/>
            <LineChart id="chart-ops" title="Operations per second" series=ops span format=per_second/>
            <LineChart id="chart-errors" title="Errors and degraded operations (per sample)" series=errors span format=count/>
        </div>
        <section class="card" aria-labelledby="totals-title">
            <h2 id="totals-title">"Since the server started"</h2>
            <dl class="facts">
                <dt>"Hits"</dt><dd>{overall}</dd>
                <dt>"Operations"</dt><dd>{t.operations}</dd>
                <dt>"Errors"</dt><dd>{t.errors}</dd>
                <dt>"Degraded store calls"</dt><dd>{t.degraded}</dd>
            </dl>
        </section>
    }
}

fn symbol(status: &str) -> &'static str {
    match status {
        "ok" => "✓",
        "warn" => "⚠",
        "fail" => "✗",
        _ => "·",
    }
}

#[component]
fn CheckList(rows: Vec<CheckRow>) -> impl IntoView {
    view! {
        <ul class="checks">
            {rows.into_iter().map(|c| {
                // `check-{status}`: a bare `skip` or `warn` class is taken by the layout.
                let class = format!("check check-{}", c.status);
                view! {
                    <li class=class data-check=c.id.clone() data-status=c.status.clone()>
                        <span class="symbol" aria-label=c.status.clone()>{symbol(&c.status)}</span>
                        " " <code>{c.id.clone()}</code> " " {c.message.clone()}
                        {c.fix.clone().map(|fix| view! { <div class="fix">"Fix: " <code>{fix}</code></div> })}
                    </li>
                }
            }).collect_view()}
        </ul>
    }
}

/// The doctor's checks: cheap ones re-run by the server every minute, and
/// the key checks of the last `nscache doctor` run (they SCAN the database,
/// so only an operator's command runs them).
#[component]
fn Checks(checks: ChecksState) -> impl IntoView {
    let worst = |rows: &[CheckRow]| {
        if rows.iter().any(|c| c.status == "fail") {
            "fail"
        } else if rows.iter().any(|c| c.status == "warn") {
            "warn"
        } else {
            "ok"
        }
    };
    let cheap_state = worst(&checks.cheap);
    let cheap = match checks.cheap_at_unix_ms {
        Some(at) => view! {
            <p class="help">"Re-run every minute; last at " {clock(at)} "."</p>
            <CheckList rows=checks.cheap.clone()/>
        }
        .into_any(),
        None => view! { <p class="help">"The first run is under way."</p> }.into_any(),
    };
    let scanned = match checks.scanned_at_unix_ms {
        Some(at) => view! {
            <p class="help" id="doctor-run">"From the last " <code>"nscache doctor"</code> " run, at " {clock(at)} " (these checks SCAN the database, so only that command runs them)."</p>
            <CheckList rows=checks.scanned.clone()/>
        }
        .into_any(),
        None => view! {
            <p class="help" id="doctor-run">"No " <code>"nscache doctor"</code> " run recorded: run it from a shell to check the keys (collisions, invoice sequences, stuck locks)."</p>
        }
        .into_any(),
    };
    view! {
        <section class="card" id="checks" aria-labelledby="checks-title" data-worst=cheap_state>
            <h2 id="checks-title">"Checks"</h2>
            {cheap}
            <h3>"Keys"</h3>
            {scanned}
        </section>
    }
}

#[component]
fn Dependency(title: &'static str, state: DependencyState) -> impl IntoView {
    let detail = match (&state.latency_ms, &state.error) {
        (_, Some(e)) => e.clone(),
        (Some(ms), None) => format!("answered in {ms:.1} ms"),
        (None, None) => String::new(),
    };
    view! {
        <div class="tile" data-dependency=state.backend.clone() data-ok=state.ok.to_string()>
            <h2>{title}</h2>
            <p>
                <span class=if state.ok { "badge on" } else { "badge off" }>{if state.ok { "OK" } else { "Down" }}</span>
                " " <strong>{state.backend.clone()}</strong>
            </p>
            <p class="help">{detail}</p>
        </div>
    }
}

#[component]
fn L1(l1: Option<L1State>) -> impl IntoView {
    let (state, detail) = match l1 {
        Some(l1) => (
            format!("On, {}", human_bytes(l1.capacity_bytes)),
            format!(
                "Changes made through nscache: at once in this process, in others when announced (milliseconds); any other change within {:.1} s.",
                l1.max_age_ms as f64 / 1000.0
            ),
        ),
        None => (
            "Off".to_owned(),
            "Every read goes to the cache store (serve --l1 puts one in front of Redis)."
                .to_owned(),
        ),
    };
    view! {
        <div class="tile" id="l1">
            <h2>"L1 (in process)"</h2>
            <p>{state}</p>
            <p class="help">{detail}</p>
        </div>
    }
}

#[component]
fn Memory(memory: Option<MemoryState>) -> impl IntoView {
    match memory {
        None => view! {
            <div class="tile"><h2>"Memory"</h2><p class="help">"The cache store did not report its memory."</p></div>
        }
        .into_any(),
        Some(m) => {
            let used = match m.max_bytes {
                Some(max) if max > 0 => format!("{} of {} ({:.0}%)", human_bytes(m.used_bytes), human_bytes(max), m.used_bytes as f64 * 100.0 / max as f64),
                _ => format!("{} (no limit)", human_bytes(m.used_bytes)),
            };
            let warning = (m.eviction_policy == "noeviction").then(|| view! {
                <p class="help warn">"With noeviction, writes fail once memory is full: allkeys-lru suits a cache."</p>
            });
            view! {
                <div class="tile" id="memory">
                    <h2>"Memory"</h2>
                    <p>{used}</p>
                    <p>"Eviction policy: " <code id="eviction-policy">{m.eviction_policy.clone()}</code></p>
                    <p class="help">{format!("{} keys evicted", m.evicted_keys)}{m.version.map(|v| format!(" · version {v}"))}</p>
                    {warning}
                </div>
            }
            .into_any()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_utc_time_of_day() {
        assert_eq!(clock(0), "00:00:00 UTC");
        assert_eq!(clock((13 * 3600 + 5 * 60 + 9) * 1000 + 999), "13:05:09 UTC");
    }

    #[test]
    fn formats() {
        assert_eq!(percent(0.971), "97%");
        assert_eq!(per_second(3.25), "3.2/s");
        assert_eq!(per_second(1234.0), "1234/s");
        assert_eq!(per_second(0.0), "0/s");
        assert_eq!(count(0.5), "0.5");
        assert_eq!(count(3.0), "3");
    }
}
