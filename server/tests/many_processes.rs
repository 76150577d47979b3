//! Three `nscache serve` processes on one Redis (or one Redis Cluster) and
//! one Postgres: a toggle or an invalidation made through any of them is
//! seen by the other two on their next request, with and without the L1
//! (which is not available on a cluster).

mod common;

use common::{Served, add_accounts, http, login, run_cli, session_headers, unique};
use serde_json::json;

/// Three processes sharing a fresh Postgres schema and a fresh key space on
/// the shared Redis; the admin's session on each, and alice's namespace id.
struct Fleet {
    processes: Vec<Served>,
    admin_cookies: Vec<common::Session>,
    service: String,
    alice: String,
    schema: String,
    admin: sqlx::PgPool,
}

impl Fleet {
    /// On `redis` (the shared test Redis when `None`).
    async fn start(redis: Option<String>, l1: bool) -> Fleet {
        let pg = std::env::var("NSCACHE_TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let redis = redis.unwrap_or_else(|| {
            std::env::var("NSCACHE_TEST_REDIS_URL")
                .unwrap_or_else(|_| "redis://127.0.0.1:6379/15".into())
        });
        let schema = unique("s");
        let admin = sqlx::PgPool::connect(&pg).await.expect("Postgres");
        sqlx::query(&format!("CREATE SCHEMA {schema}"))
            .execute(&admin)
            .await
            .expect("create schema");
        let database_url = format!("{pg}?options[search_path]={schema}");
        let root = unique("ns");
        let prefix = unique("p");
        let env = [
            ("DATABASE_URL", database_url.as_str()),
            ("REDIS_URL", redis.as_str()),
            ("NSCACHE_NAMESPACE_ROOT", root.as_str()),
            ("CACHE_KEY_PREFIX", prefix.as_str()),
        ];
        run_cli(&env, &["migrate"], None);
        let (alice, service) = add_accounts(&env);

        let mut env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(*v))).collect();
        if l1 {
            // The default bound for changes nobody announced (1 s) is far
            // longer than a next request: a hit after an invalidation would
            // be a stale L1 entry, not a slow one.
            env.push(("NSCACHE_L1", Some("1")));
        }
        let processes: Vec<Served> = (0..3).map(|_| Served::start(&env)).collect();
        let mut admin_cookies = Vec::new();
        for p in &processes {
            admin_cookies.push(login(&p.address, "root", "admin password").await);
        }
        Fleet {
            processes,
            admin_cookies,
            service: format!("Bearer {service}"),
            alice,
            schema,
            admin,
        }
    }

    fn key(&self) -> String {
        format!("/api/v1/cache/users/{}/keys/page", self.alice)
    }

    /// Status of a GET of alice's key on process `i` (as the service).
    async fn get(&self, i: usize) -> u16 {
        let auth = [("Authorization", self.service.as_str())];
        http(&self.processes[i].address, "GET", &self.key(), &auth, None)
            .await
            .status
    }

    /// Wait until process `i` serves alice's entry (at most 2 s).
    async fn eventually_reads(&self, i: usize, round: usize) {
        let start = std::time::Instant::now();
        while self.get(i).await != 200 {
            assert!(
                start.elapsed() < std::time::Duration::from_secs(2),
                "round {round}: process {i} never read the entry"
            );
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
    }

    /// PUT alice's key on process `i`.
    async fn put(&self, i: usize, value: &str) {
        let auth = [("Authorization", self.service.as_str())];
        let r = http(
            &self.processes[i].address,
            "PUT",
            &self.key(),
            &auth,
            Some(&json!({ "value": value })),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
    }

    /// An admin call on process `i`; asserts 200.
    async fn admin(&self, i: usize, method: &str, path: &str, body: Option<serde_json::Value>) {
        let r = http(
            &self.processes[i].address,
            method,
            path,
            &session_headers(&self.admin_cookies[i]),
            body.as_ref(),
        )
        .await;
        assert_eq!(r.status, 200, "{method} {path}: {:?}", r.json);
    }

    async fn stop(self) {
        drop(self.processes);
        sqlx::query(&format!("DROP SCHEMA {} CASCADE", self.schema))
            .execute(&self.admin)
            .await
            .expect("drop schema");
    }
}

/// Every process caches alice's key (each L1, when on, holds it), then
/// `actor` changes something; every other process' very next request must
/// see the change.
async fn invalidations_and_toggles_reach_every_process(redis: Option<String>, l1: bool) {
    let fleet = Fleet::start(redis, l1).await;
    let others = |actor: usize| (0..3).filter(move |&i| i != actor);
    let invalidate_alice = format!("/api/v1/users/{}/invalidate", fleet.alice);
    let alice_cache = format!("/api/v1/users/{}/cache", fleet.alice);

    for round in 0..9 {
        let actor = round % 3;
        fleet.put((actor + 1) % 3, &format!("r{round}")).await;
        for i in 0..3 {
            // A plain write reaches the other L1s when its announcement
            // arrives (sent off the write's path: the documented bound);
            // only changes of versions and flags wait for theirs.
            fleet.eventually_reads(i, round).await;
        }
        match round / 3 {
            0 => fleet.admin(actor, "POST", &invalidate_alice, None).await,
            1 => {
                fleet
                    .admin(actor, "POST", "/api/v1/invalidate-all", None)
                    .await
            }
            _ => {
                fleet
                    .admin(
                        actor,
                        "PUT",
                        &alice_cache,
                        Some(json!({ "enabled": false })),
                    )
                    .await
            }
        }
        for i in others(actor) {
            assert_eq!(
                fleet.get(i).await,
                404,
                "round {round}: process {i}'s next request after process {actor}'s change \
                 still served alice's old entry (l1: {l1})"
            );
        }
        if round / 3 == 2 {
            // Off: writes through any process are not cached for alice.
            for i in others(actor) {
                fleet.put(i, "while off").await;
                assert_eq!(
                    fleet.get(i).await,
                    404,
                    "round {round}: process {i} bypasses alice"
                );
            }
            fleet
                .admin(actor, "PUT", &alice_cache, Some(json!({ "enabled": true })))
                .await;
            for i in others(actor) {
                fleet.put(i, "on again").await;
                assert_eq!(
                    fleet.get(i).await,
                    200,
                    "round {round}: process {i}'s next request sees alice's cache on again"
                );
                for j in 0..3 {
                    fleet.eventually_reads(j, round).await;
                }
            }
        }
    }
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_see_each_others_changes_on_the_next_request() {
    invalidations_and_toggles_reach_every_process(None, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_with_l1_see_each_others_changes_on_the_next_request() {
    invalidations_and_toggles_reach_every_process(None, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_a_redis_cluster_see_each_others_changes_on_the_next_request() {
    let cluster = nscache_tests::cluster::RedisCluster::shared();
    invalidations_and_toggles_reach_every_process(Some(cluster.url()), false).await;
}
