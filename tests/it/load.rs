//! Load: 64 concurrent clients for a minute (`NSCACHE_LOAD_SECS`), over HTTP
//! against the server and directly against the library. Long: run with
//! `--ignored` (`.ci/run` does, with a shorter duration).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use nscache::{Cache, Expiry};
use nscache_server::directory::Role;
use nscache_tests::Backend;
use nscache_tests::server::{Creds, TestServer};

fn seconds() -> Duration {
    Duration::from_secs_f64(
        std::env::var("NSCACHE_LOAD_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(60.0),
    )
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:")
                    .map(|v| v.trim().trim_end_matches("kB").trim().parse().unwrap_or(0))
            })
        })
        .unwrap_or(0)
}

fn summary(
    name: &str,
    mut latencies: Vec<u32>,
    errors: u64,
    elapsed: Duration,
    rss_before: u64,
    rss_after: u64,
) {
    latencies.sort_unstable();
    let p = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: {} requests in {:.0} s ({:.0}/s), {errors} errors, p50 {} µs, p99 {} µs, max {} µs; RSS {} MiB before, {} MiB after",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        p(0.5),
        p(0.99),
        p(1.0),
        rss_before / 1024,
        rss_after / 1024
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: cargo test -- --ignored"]
async fn http_64_clients() {
    let t = TestServer::postgres().await;
    t.account("app", Role::Service).await;
    let Creds::Bearer(token) = t.token("app").await else {
        unreachable!()
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let app = t
        .router
        .clone()
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let rss_before = rss_kib();
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + seconds();
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..64 {
        let (errors, bearer) = (errors.clone(), format!("Bearer {token}"));
        clients.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(address).await.unwrap();
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .unwrap();
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < stop {
                let user = format!("user{}", (c * 7 + i) % 500);
                let (method, path, body) = match i % 4 {
                    0 => (
                        "PUT",
                        format!("/api/v1/cache/users/{user}/keys/page"),
                        Some(format!(r#"{{"value":"rendered {i}","ttl":30}}"#)),
                    ),
                    1 | 2 => ("GET", format!("/api/v1/cache/users/{user}/keys/page"), None),
                    _ => (
                        "POST",
                        format!("/api/v1/cache/global/keys/counter:{c}/add"),
                        Some(r#"{"value":"0"}"#.to_owned()),
                    ),
                };
                let mut request = Request::builder()
                    .method(method)
                    .uri(&path)
                    .header("authorization", &bearer)
                    .header("host", "nscache");
                if body.is_some() {
                    request = request.header("content-type", "application/json");
                }
                let request = request.body(Full::new(bytes_of(body))).unwrap();
                let t0 = Instant::now();
                match sender.send_request(request).await {
                    Ok(response) => {
                        let status = response.status().as_u16();
                        let _ = response.into_body().collect().await;
                        // 404 is a miss (the entry expired or is not written yet), not an error.
                        if !(status == 200 || (status == 404 && method == "GET")) {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                i += 1;
            }
            latencies
        }));
    }
    finish("HTTP, 64 clients", clients, &errors, started, rss_before).await;
    t.cleanup().await;
}

/// Wait for the clients, report, and check that nothing failed.
async fn finish(
    name: &str,
    clients: Vec<tokio::task::JoinHandle<Vec<u32>>>,
    errors: &AtomicU64,
    started: Instant,
    rss_before: u64,
) {
    let mut all = Vec::new();
    for c in clients {
        all.extend(c.await.unwrap());
    }
    summary(
        name,
        all,
        errors.load(Ordering::Relaxed),
        started.elapsed(),
        rss_before,
        rss_kib(),
    );
    assert_eq!(errors.load(Ordering::Relaxed), 0);
}

fn bytes_of(body: Option<String>) -> hyper::body::Bytes {
    body.map(hyper::body::Bytes::from).unwrap_or_default()
}

async fn library_load(cache: Cache, name: &str) {
    let rss_before = rss_kib();
    let errors = Arc::new(AtomicU64::new(0));
    let stop = Instant::now() + seconds();
    let started = Instant::now();
    let mut clients = Vec::new();
    for c in 0..64u64 {
        let (cache, errors) = (cache.clone(), errors.clone());
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while Instant::now() < stop {
                let user = cache.user(format!("user{}", (c * 7 + i) % 500));
                let t0 = Instant::now();
                let result = match i % 8 {
                    0 => user
                        .set("page", format!("rendered {i}"), Expiry::secs(30))
                        .await
                        .map(drop),
                    7 => cache
                        .invalidate_user(user.user_id().unwrap())
                        .await
                        .map(drop),
                    _ => user.get("page").await.map(drop),
                };
                if result.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                latencies.push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX));
                i += 1;
            }
            latencies
        }));
    }
    finish(name, clients, &errors, started, rss_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: cargo test -- --ignored"]
async fn library_64_clients_on_redis() {
    library_load(Backend::Redis.cache().await, "library on Redis, 64 clients").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long: cargo test -- --ignored"]
async fn library_64_clients_on_redis_with_l1() {
    library_load(
        Backend::RedisL1.cache().await,
        "library on Redis + L1, 64 clients",
    )
    .await;
}
