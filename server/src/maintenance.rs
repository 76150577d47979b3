//! Physical removal of nscache's keys: `nscache flush` and `nscache purge`.
//!
//! Invalidation is O(1) and leaves old entries to expire; these commands
//! remove keys instead, for maintenance: they `SCAN` nscache's database
//! (O(n) in its keys, `COUNT 1000` a step, `UNLINK` per page) and are run on
//! an operator's or an admin's command only, never on a request path. Keys
//! are recognised by the component's own layout code
//! ([`Layout::classify`], [`UserKeys::scan_pattern`](nscache_core::layout::UserKeys::scan_pattern)):
//! nothing here formats a key. They never touch another database, and
//! refuse to run on the task queue's.
//!
//! Removing keys while the cache is in use is safe: a version key that
//! disappears is re-created with a number never used before, so no removed
//! namespace's entries can come back. The version clock and the namespace
//! floor are never removed.

use nscache::Settings;
use nscache_core::Kind;
use nscache_core::layout::{KeyClass, Layout};
use redis::aio::MultiplexedConnection;

use crate::doctor::{RedisError, cluster_primaries, connect_redis, layout};

/// What `flush` removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushScope {
    /// Every namespace: entries of both kinds, byte counters, user and
    /// table versions (`--cache`); with `include_global`, global keys too.
    Cache {
        /// Also every global key (invoice sequences, locks, cursors).
        include_global: bool,
    },
    /// Cached query results and table versions only (`--queries`).
    Queries,
}

impl FlushScope {
    fn removes(self, class: &KeyClass) -> bool {
        match (self, class) {
            (_, KeyClass::Floor | KeyClass::Clock) => false,
            (FlushScope::Cache { include_global }, KeyClass::Global(_)) => include_global,
            (FlushScope::Cache { .. }, _) => true,
            (FlushScope::Queries, KeyClass::Entry(e)) => e.kind == Kind::Cacheops,
            (FlushScope::Queries, KeyClass::TableVersion(_)) => true,
            (FlushScope::Queries, _) => false,
        }
    }
}

/// Why maintenance could not run.
#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// No Redis configured, or it names the task queue's database.
    #[error("{0}")]
    Refused(String),
    /// Redis failed.
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
}

impl From<redis::RedisError> for MaintenanceError {
    fn from(e: redis::RedisError) -> Self {
        MaintenanceError::Redis(RedisError(e.to_string()))
    }
}

/// What a flush would remove, counted before asking for confirmation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlushSurvey {
    /// Keys it would remove now.
    pub keys: u64,
    /// Global counters among them (`invoice_seq:2026` = `41`), application
    /// keys with their values: a flushed invoice sequence repeats numbers.
    pub counters: Vec<(String, String)>,
}

/// Maintenance connections to nscache's database: one, or on Redis
/// Cluster one to each primary (SCAN runs on each; no FLUSHDB anywhere).
pub struct Maintenance {
    nodes: Vec<MultiplexedConnection>,
    layout: Layout,
    db: u32,
    /// On a cluster, keys of different slots are never sent in one command.
    cluster: bool,
}

impl std::fmt::Debug for Maintenance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Maintenance").field("db", &self.db).finish()
    }
}

impl Maintenance {
    /// Connect to `resolved`'s Redis (settings with the component's
    /// defaults filled in, [`nscache::Cache::resolved_settings`]). Refused
    /// without a Redis URL, and on the task queue's database.
    pub async fn connect(resolved: &Settings) -> Result<Maintenance, MaintenanceError> {
        if let Some(options) = resolved.cluster_options() {
            let primaries = cluster_primaries(&options, resolved.socket_timeout).await?;
            if primaries.is_empty() {
                return Err(MaintenanceError::Refused(
                    "the cluster lists no primary".into(),
                ));
            }
            return Ok(Maintenance {
                nodes: primaries.into_iter().map(|(_, conn)| conn).collect(),
                layout: layout(resolved),
                db: 0,
                cluster: true,
            });
        }
        let (Some(url), Some(db)) = (&resolved.redis_url, resolved.redis_database()) else {
            return Err(MaintenanceError::Refused(
                "needs Redis (REDIS_URL): the embedded store lives only in its own process".into(),
            ));
        };
        if db == resolved.task_queue_db {
            return Err(MaintenanceError::Refused(format!(
                "REDIS_URL selects database {db}, the task queue's (--task-queue-db): nscache never removes keys there"
            )));
        }
        let conn = connect_redis(url, &resolved.redis_tls(), db, resolved.socket_timeout).await?;
        Ok(Maintenance {
            nodes: vec![conn],
            layout: layout(resolved),
            db,
            cluster: false,
        })
    }

    /// How many servers it works on (the primaries of a cluster).
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }

    /// Where it works, for messages: `database 1`, or `the cluster (3
    /// primaries)`.
    pub fn place(&self) -> String {
        if self.cluster {
            format!("the cluster ({} primaries)", self.nodes.len())
        } else {
            format!("database {}", self.db)
        }
    }

    /// The database it works on (0 on a cluster, which has no others).
    pub fn database(&self) -> u32 {
        self.db
    }

    /// SCAN `pattern` on every node, calling `page` with each page's keys
    /// and the connection to the node that holds them.
    async fn scan(
        &mut self,
        pattern: &str,
        mut page: impl AsyncPage,
    ) -> Result<(), MaintenanceError> {
        for conn in &mut self.nodes {
            let mut cursor: u64 = 0;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(pattern)
                    .arg("COUNT")
                    .arg(1000)
                    .query_async(conn)
                    .await?;
                page.page(conn, keys).await?;
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(())
    }

    fn patterns(&self, scope: FlushScope) -> Vec<String> {
        let mut patterns = self.layout.namespace_scan_patterns();
        if scope
            == (FlushScope::Cache {
                include_global: true,
            })
        {
            patterns.push(self.layout.global_scan_pattern());
        }
        patterns
    }

    /// Count what [`flush`](Self::flush) would remove (one SCAN), listing
    /// the global counters among it.
    pub async fn survey(&mut self, scope: FlushScope) -> Result<FlushSurvey, MaintenanceError> {
        let mut survey = FlushSurvey::default();
        for pattern in self.patterns(scope) {
            let layout = self.layout.clone();
            self.scan(
                &pattern,
                Survey(&mut survey, |k: &str| {
                    layout.classify(k).filter(|c| scope.removes(c))
                }),
            )
            .await?;
        }
        survey.counters.sort();
        Ok(survey)
    }

    /// Remove what `scope` names; returns how many keys were removed.
    pub async fn flush(&mut self, scope: FlushScope) -> Result<u64, MaintenanceError> {
        let mut removed = 0;
        for pattern in self.patterns(scope) {
            let layout = self.layout.clone();
            let cluster = self.cluster;
            self.scan(
                &pattern,
                Unlink(&mut removed, cluster, |k: &str| {
                    layout.classify(k).is_some_and(|c| scope.removes(&c))
                }),
            )
            .await?;
        }
        Ok(removed)
    }

    /// Remove every key of `user`'s namespace — entries of every version,
    /// byte counters and the version key (right to erasure: invalidation
    /// only makes entries unreachable). Returns how many keys were removed.
    pub async fn purge_user(&mut self, user: &str) -> Result<u64, MaintenanceError> {
        if user.is_empty() {
            return Err(MaintenanceError::Refused("the user id is empty".into()));
        }
        let keys = self.layout.user(user);
        let layout = self.layout.clone();
        let mut removed = 0;
        let pattern = keys.scan_pattern();
        let owner = user.to_owned();
        let cluster = self.cluster;
        self.scan(&pattern, Unlink(&mut removed, cluster, |k: &str| {
            matches!(layout.classify(k),
                Some(KeyClass::Entry(e)) if e.user == owner)
                || matches!(layout.classify(k), Some(KeyClass::Counter { user, .. }) if user == owner)
        }))
        .await?;
        let version_key = keys.version_key.clone();
        let mut version = 0;
        if self.cluster {
            // On the primary that holds it (the others hold no such key).
            self.scan(
                &nscache_core::layout::glob_escape(&version_key),
                Unlink(&mut version, true, |k: &str| k == version_key),
            )
            .await?;
        } else {
            version = redis::cmd("UNLINK")
                .arg(&version_key)
                .query_async(&mut self.nodes[0])
                .await?;
        }
        Ok(removed + version)
    }
}

/// What to do with one page of SCAN results.
trait AsyncPage {
    async fn page(
        &mut self,
        conn: &mut MultiplexedConnection,
        keys: Vec<String>,
    ) -> Result<(), MaintenanceError>;
}

/// Count the keys `pick` classifies, reading the global counters' values.
struct Survey<'a, F>(&'a mut FlushSurvey, F);

impl<F: FnMut(&str) -> Option<KeyClass>> AsyncPage for Survey<'_, F> {
    async fn page(
        &mut self,
        conn: &mut MultiplexedConnection,
        keys: Vec<String>,
    ) -> Result<(), MaintenanceError> {
        for key in keys {
            let Some(class) = (self.1)(&key) else {
                continue;
            };
            self.0.keys += 1;
            if let KeyClass::Global(app) = class {
                let value: Option<Vec<u8>> = redis::cmd("GET").arg(&key).query_async(conn).await?;
                if let Some(v) = value
                    && let Ok(text) = std::str::from_utf8(&v)
                    && text.parse::<i64>().is_ok()
                {
                    self.0.counters.push((app, text.to_owned()));
                }
            }
        }
        Ok(())
    }
}

/// UNLINK the keys `pick` accepts, counting them: one command per page, or
/// on a cluster (where one command takes keys of one slot only) one per key,
/// pipelined.
struct Unlink<'a, F>(&'a mut u64, bool, F);

impl<F: FnMut(&str) -> bool> AsyncPage for Unlink<'_, F> {
    async fn page(
        &mut self,
        conn: &mut MultiplexedConnection,
        keys: Vec<String>,
    ) -> Result<(), MaintenanceError> {
        let doomed: Vec<String> = keys.into_iter().filter(|k| (self.2)(k)).collect();
        if doomed.is_empty() {
            return Ok(());
        }
        if self.1 {
            let mut pipe = redis::pipe();
            for key in &doomed {
                pipe.cmd("UNLINK").arg(key);
            }
            let counts: Vec<u64> = pipe.query_async(conn).await?;
            *self.0 += counts.iter().sum::<u64>();
        } else {
            let n: u64 = redis::cmd("UNLINK").arg(&doomed).query_async(conn).await?;
            *self.0 += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_remove_what_they_say() {
        let layout = layout(&Settings::default());
        let class = |k: &str| layout.classify(k).expect(k);
        let cache = FlushScope::Cache {
            include_global: false,
        };
        let all = FlushScope::Cache {
            include_global: true,
        };
        for key in [
            "cache:42:v9:data:k",
            "cache:42:v9:cacheops:q",
            "cache:42:v9:bytes",
            "cache_user_version:42",
            "cache_table_version:invoices",
        ] {
            assert!(cache.removes(&class(key)), "{key}");
        }
        for key in ["cache_namespace_floor", "cache_version_clock"] {
            assert!(!all.removes(&class(key)), "{key}");
        }
        assert!(!cache.removes(&class("revisbali:1:invoice_seq:2026")));
        assert!(all.removes(&class("revisbali:1:invoice_seq:2026")));
        assert!(FlushScope::Queries.removes(&class("cache:42:v9:cacheops:q")));
        assert!(FlushScope::Queries.removes(&class("cache_table_version:invoices")));
        assert!(!FlushScope::Queries.removes(&class("cache:42:v9:data:k")));
        assert!(!FlushScope::Queries.removes(&class("cache_user_version:42")));
    }
}
