//! The listener of `nscache serve` under slow and many clients, and its
//! shutdown: attacks on a separate server process with short limits set by
//! flags (security review, finding 4).

mod common;

use std::time::{Duration, Instant};

use common::{Served, http, http_from, unique};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The embedded server with these extra `serve` arguments.
fn served(args: &[&str]) -> (Served, std::path::PathBuf) {
    let data = std::env::temp_dir().join(unique("edge"));
    let served = Served::start_with(
        args,
        &[
            ("REDIS_URL", None),
            ("DATABASE_URL", None),
            ("NSCACHE_DATA_DIR", Some(data.to_str().unwrap())),
        ],
    );
    (served, data)
}

/// Read until the server closes the connection (or `limit` passes: `None`).
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .ok()
    .map(|()| seen)
}

/// Open a connection and send the start of a request, never its end.
async fn slowloris(address: &str) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.expect("connect");
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        .await
        .expect("write");
    stream
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_unfinished_requests_are_closed_at_the_header_timeout() {
    let (served, data) = served(&["--header-timeout", "1"]);
    let start = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..50 {
        streams.push(slowloris(&served.address).await);
    }
    // And ten that send nothing at all.
    for _ in 0..10 {
        streams.push(TcpStream::connect(&served.address).await.expect("connect"));
    }
    let waits = streams.into_iter().map(|mut stream| async move {
        let closed = closed_within(&mut stream, Duration::from_secs(4)).await;
        (closed.is_some(), start.elapsed())
    });
    let outcomes = futures_util::future::join_all(waits).await;
    let open = outcomes.iter().filter(|(closed, _)| !closed).count();
    let slowest = outcomes.iter().map(|(_, at)| *at).max().unwrap_or_default();
    println!(
        "60 slow connections, header timeout 1 s: {open} still open after 4 s, \
         the last closed after {slowest:?} (before: all 50 open after 45 s)"
    );
    assert_eq!(open, 0, "every slow connection was closed");
    assert!(slowest < Duration::from_secs(3), "{slowest:?}");
    let health = http(&served.address, "GET", "/health", &[], None).await;
    assert_eq!(health.status, 200, "still serving");
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_cut_by_the_body_timeout_and_a_dripped_one_by_the_request_timeout() {
    let (served, data) = served(&["--body-timeout", "1", "--request-timeout", "3"]);
    let head = "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                Content-Length: 200\r\n\r\n";

    // Stalled: a few bytes, then nothing.
    let start = Instant::now();
    let mut stream = TcpStream::connect(&served.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    stream.write_all(b"{\"username\":").await.expect("write");
    let raw = closed_within(&mut stream, Duration::from_secs(4))
        .await
        .expect("the server answered and closed within 4 s");
    let took = start.elapsed();
    let reply = common::parse(&raw);
    println!(
        "a stalled body (body timeout 1 s): {} after {took:?}",
        reply.status
    );
    assert_eq!(reply.status, 408, "{:?}", reply.json);
    assert_eq!(reply.json["error"]["code"], "body_timeout");
    assert!(took >= Duration::from_millis(900), "{took:?}");

    // Dripped: a byte every 0.4 s (never pausing a whole second) is cut at
    // the request timeout.
    let start = Instant::now();
    let mut stream = TcpStream::connect(&served.address).await.expect("connect");
    stream.write_all(head.as_bytes()).await.expect("write");
    let (mut read, mut write) = stream.into_split();
    let drip = tokio::spawn(async move {
        for _ in 0..200 {
            if write.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(400)).await;
        }
    });
    let mut raw = Vec::new();
    let answered = tokio::time::timeout(Duration::from_secs(6), read.read_to_end(&mut raw)).await;
    let took = start.elapsed();
    drip.abort();
    assert!(answered.is_ok(), "answered within 6 s");
    let reply = common::parse(&raw);
    println!(
        "a dripped body (request timeout 3 s): {} after {took:?}",
        reply.status
    );
    assert_eq!(reply.status, 408);
    assert_eq!(reply.json["error"]["code"], "request_timeout");
    assert_eq!(
        reply.header("x-frame-options"),
        Some("DENY"),
        "with the security headers"
    );
    assert!(
        took >= Duration::from_millis(2900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let (served, data) = served(&["--max-connections", "2", "--header-timeout", "2"]);
    let start = Instant::now();
    let health = http(&served.address, "GET", "/health", &[], None).await;
    assert_eq!(health.status, 200);
    let alone = start.elapsed();

    // Two connections take both slots; a third request waits until the
    // header timeout frees them.
    let holders = [
        slowloris(&served.address).await,
        slowloris(&served.address).await,
    ];
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let health = http(&served.address, "GET", "/health", &[], None).await;
    let waited = start.elapsed();
    println!("/health alone: {alone:?}; with the 2 slots held: {waited:?}");
    assert_eq!(health.status, 200, "served once a slot was free");
    assert!(
        waited >= Duration::from_millis(1500),
        "not served while both slots were held ({waited:?})"
    );
    drop(holders);
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_limiter_sees_each_peer_address() {
    let (served, data) = served(&[]);
    let other: std::net::IpAddr = "127.0.0.2".parse().unwrap();
    let wrong = json!({ "username": "nobody", "password": "wrong" });
    let mut limited = false;
    for _ in 0..60 {
        let r = http_from(
            other,
            &served.address,
            "POST",
            "/api/v1/session",
            &[],
            Some(&wrong),
        )
        .await;
        if r.status == 429 {
            limited = true;
            break;
        }
        assert_eq!(r.status, 401, "{:?}", r.json);
    }
    assert!(limited, "127.0.0.2 was limited after its failures");
    // 127.0.0.1 is another address: not limited.
    let right = json!({ "username": "admin", "password": served.first_admin_password() });
    let r = http(
        &served.address,
        "POST",
        "/api/v1/session",
        &[],
        Some(&right),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    drop(served);
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_request_in_flight_refuses_new_ones_and_exits_0() {
    let (mut served, data) = served(&["--shutdown-grace", "10"]);
    let body =
        json!({ "username": "admin", "password": served.first_admin_password() }).to_string();
    let (first, rest) = body.split_at(10);
    let mut stream = TcpStream::connect(&served.address).await.expect("connect");
    let head = format!(
        "POST /api/v1/session HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{first}",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("write");
    tokio::time::sleep(Duration::from_millis(300)).await;

    served.terminate();
    // New connections are refused once the signal is handled.
    let deadline = Instant::now() + Duration::from_secs(3);
    let refused = loop {
        match TcpStream::connect(&served.address).await {
            Err(_) => break true,
            Ok(_) if Instant::now() > deadline => break false,
            Ok(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    };
    assert!(refused, "new connections are refused after SIGTERM");
    assert!(
        served.wait_exit(Duration::from_millis(300)).is_none(),
        "still running: a request is in flight"
    );

    // The request in flight completes.
    stream
        .write_all(rest.as_bytes())
        .await
        .expect("write the rest");
    let raw = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered");
    let reply = common::parse(&raw);
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    assert!(reply.header("set-cookie").is_some(), "signed in");

    let status = served
        .wait_exit(Duration::from_secs(10))
        .expect("exited after the request");
    assert!(status.success(), "exit status {status}");
    let _ = std::fs::remove_dir_all(data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_closes_idle_keep_alive_connections_and_exits_0_at_once() {
    let (mut served, data) = served(&[]);
    // A kept-alive connection, idle after its request.
    let mut idle = TcpStream::connect(&served.address).await.expect("connect");
    idle.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.expect("a response");
    assert_eq!(&first, b"HTTP/1.1 200");
    let start = Instant::now();
    served.signal("INT");
    let status = served
        .wait_exit(Duration::from_secs(5))
        .expect("exited within 5 s");
    println!(
        "ctrl-c with an idle keep-alive connection: exited after {:?}",
        start.elapsed()
    );
    assert!(status.success(), "exit status {status}");
    assert!(
        closed_within(&mut idle, Duration::from_secs(1))
            .await
            .is_some(),
        "the idle connection was closed"
    );
    let _ = std::fs::remove_dir_all(data);
}
