//! Namespaced reads stay linearizable with the optimistic read path.
//!
//! A writer invalidates a few users' namespaces in a tight loop and, after
//! each invalidation `g` completes, writes the value `g` into the new
//! namespace. Readers in two other OS processes (and, with the L1, in the
//! writer's own process) read the same keys from many component instances
//! and record `(start, value)` on the machine-wide monotonic clock.
//!
//! The check, on the recorded histories: a read that started after
//! invalidation `g + 1` had completed must never return a value `≤ g` (it
//! belongs to a version that was dead before the read began). Misses are
//! always allowed (a namespace is empty between an invalidation and the
//! next write).
//!
//! Without the L1 this must hold for every read in every process. With the
//! L1 it must hold within the writer's process; across processes a read may
//! lag by the time the change takes to be announced (pub/sub), which the
//! test measures and bounds by the L1's documented `max_age`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use nscache::Expiry;
use nscache::store::L1Options;
use nscache_tests::linearizable::{Read, USERS, build, now_ns, read_until};
use nscache_tests::unique;

/// Reader processes besides the writer's.
const PROCESSES: usize = 2;
/// How long the readers and the writer run.
const RUN: Duration = Duration::from_secs(3);

/// What a reader process reports.
#[derive(Debug, Default)]
struct Report {
    reads: Vec<Read>,
    plain: u64,
    scripted: u64,
}

fn parse_report(stdout: &str) -> Report {
    let mut report = Report::default();
    for line in stdout.lines().filter_map(|l| l.strip_prefix("LIN ")) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["read", user, start, value] => report.reads.push(Read {
                user: user.parse().unwrap(),
                start: start.parse().unwrap(),
                value: (value != "-").then(|| value.parse().unwrap()),
            }),
            ["stats", plain, scripted] => {
                report.plain = plain.parse().unwrap();
                report.scripted = scripted.parse().unwrap();
            }
            _ => panic!("unexpected line from a reader: {line}"),
        }
    }
    report
}

/// How long before `read` started the version of its value was dead: the
/// completion of the first invalidation after that value's, if it came
/// before the read started.
fn staleness(done: &[BTreeMap<u64, u64>], read: &Read) -> Option<u64> {
    let g = read.value?;
    let (_, &killed) = done[read.user].range(g + 1..).next()?;
    (killed < read.start).then(|| read.start - killed)
}

async fn run(l1: bool) {
    let (prefix, root) = (unique("p"), unique("ns"));
    let writer = build(&prefix, &root, l1).await;
    let start = now_ns() + 1_500_000_000; // time for the readers to start
    let deadline = start + RUN.as_nanos() as u64;
    let children: Vec<_> = (0..PROCESSES)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_nscache-linearizability-reader"))
                .env("LIN_PREFIX", &prefix)
                .env("LIN_ROOT", &root)
                .env("LIN_L1", if l1 { "1" } else { "0" })
                .env("LIN_START", start.to_string())
                .env("LIN_DEADLINE", deadline.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("a reader process")
        })
        .collect();

    // The writer: invalidation g, then the value g, user after user.
    let write = {
        let writer = writer.clone();
        tokio::spawn(async move {
            let mut done: Vec<BTreeMap<u64, u64>> = vec![BTreeMap::new(); USERS];
            let mut generation = 0u64;
            while now_ns() < start {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            while now_ns() < deadline {
                generation += 1;
                let user = (generation as usize) % USERS;
                let ks = writer.user(format!("u{user}"));
                writer.invalidate_user(ks.user_id().unwrap()).await.unwrap();
                done[user].insert(generation, now_ns());
                ks.set("k", generation.to_string(), Expiry::Never)
                    .await
                    .unwrap();
            }
            (done, generation)
        })
    };
    // With the L1, readers in the writer's own process too.
    let local = if l1 {
        while now_ns() < start {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        read_until(&writer, deadline).await
    } else {
        Vec::new()
    };
    let (done, generations) = write.await.unwrap();

    let mut remote = Report::default();
    for child in children {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output())
            .await
            .unwrap()
            .expect("reader output");
        assert!(out.status.success(), "a reader process failed");
        let report = parse_report(&String::from_utf8_lossy(&out.stdout));
        assert!(!report.reads.is_empty(), "a reader process read nothing");
        remote.reads.extend(report.reads);
        remote.plain += report.plain;
        remote.scripted += report.scripted;
    }

    let hits = remote.reads.iter().filter(|r| r.value.is_some()).count();
    let stale: Vec<u64> = remote
        .reads
        .iter()
        .filter_map(|r| staleness(&done, r))
        .collect();
    let reads = remote.reads.len() as u64;
    println!(
        "l1={l1}: {generations} invalidations; {reads} reads in {PROCESSES} other processes \
         ({hits} hits); store reads: {} plain get-many, {} scripted ({} extra round trips); \
         {} reads in the writer's process",
        remote.plain,
        remote.scripted,
        (remote.plain + remote.scripted).saturating_sub(reads),
        local.len()
    );
    assert!(generations > 20, "the writer barely ran: {generations}");
    assert!(hits > 0, "no read found a value");
    if l1 {
        let local_stale: Vec<u64> = local.iter().filter_map(|r| staleness(&done, r)).collect();
        assert!(
            local_stale.is_empty(),
            "within the writer's process, {} reads returned a value dead before they began \
             (the oldest {} µs)",
            local_stale.len(),
            local_stale.iter().max().unwrap() / 1000
        );
        let mut lag = stale.clone();
        lag.sort_unstable();
        let max = lag.last().copied().unwrap_or(0);
        println!(
            "l1=true: across processes {} of {} reads lagged an invalidation; \
             lag median {} µs, max {} µs (the announcement's delay)",
            lag.len(),
            reads,
            lag.get(lag.len() / 2).copied().unwrap_or(0) / 1000,
            max / 1000
        );
        assert!(
            max < L1Options::default().max_age.as_nanos() as u64,
            "a read lagged an invalidation by {} µs, beyond the L1's max_age",
            max / 1000
        );
    } else {
        assert!(
            stale.is_empty(),
            "{} reads returned a value whose version was dead before they began \
             (the oldest {} µs)",
            stale.len(),
            stale.iter().max().unwrap() / 1000
        );
        // Both paths ran: reads confirmed on a remembered version, reads
        // that had to try again, and reads resolved by the script.
        assert!(remote.plain > 0, "the fast path never ran");
        assert!(remote.scripted > 0, "the script never ran");
        assert!(
            remote.plain + remote.scripted > reads,
            "no read ever found its remembered version moved"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_are_linearizable_on_redis() {
    run(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histories_are_linearizable_on_redis_with_l1() {
    run(true).await;
}
