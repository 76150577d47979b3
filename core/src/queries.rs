//! Cached query results (the WIT `queries` interface): per user, keyed by a
//! hash of the normalised query and its parameters, invalidated per table.

use sha2::{Digest, Sha256};

use crate::cache::{Cache, Scope, Target};
use crate::error::{Error, degrade};
use crate::expiry::{Expiry, Lifetime};
use crate::host::{Host, PutOutcome};
use crate::layout::{Kind, UserKeys};
use crate::settings::check_name;
use crate::versions;

/// Most tables one query may declare.
pub const MAX_TABLES: usize = 64;

/// The first bytes of every stored result.
const MAGIC: &[u8; 4] = b"NQC1";

/// The versions a lookup saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryToken {
    /// The namespace version; 0 when the cache is bypassed.
    pub namespace_version: u64,
    /// The version of each table, in the order given.
    pub table_versions: Vec<u64>,
}

impl QueryToken {
    fn bypass() -> QueryToken {
        QueryToken {
            namespace_version: 0,
            table_versions: Vec::new(),
        }
    }
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryResult {
    /// The cached result, when valid.
    pub value: Option<Vec<u8>>,
    /// The versions to store a freshly loaded result under.
    pub token: QueryToken,
}

/// Collapse runs of whitespace outside quoted strings and identifiers to one
/// space and trim the ends, so that formatting does not split the cache.
pub fn normalise_query(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut quote: Option<char> = None;
    let mut pending_space = false;
    for c in query.trim().chars() {
        match quote {
            Some(q) => {
                out.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c.is_whitespace() => pending_space = true,
            None => {
                if pending_space {
                    out.push(' ');
                    pending_space = false;
                }
                if c == '\'' || c == '"' {
                    quote = Some(c);
                }
                out.push(c);
            }
        }
    }
    out
}

/// 32 hex digits of SHA-256 over the normalised query, a zero byte, and the parameters.
pub fn query_key(query: &str, params: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(normalise_query(query).as_bytes());
    hasher.update([0u8]);
    hasher.update(params);
    hasher.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode(table_versions: &[u64], value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + 8 * table_versions.len() + value.len());
    out.extend_from_slice(MAGIC);
    out.push(table_versions.len() as u8);
    for v in table_versions {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(value);
    out
}

/// The table versions and the result of a stored entry; `None` if it is not one.
fn decode(entry: &[u8]) -> Option<(Vec<u64>, &[u8])> {
    let rest = entry.strip_prefix(MAGIC)?;
    let (&n, mut rest) = rest.split_first()?;
    let mut versions = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let (head, tail) = rest.split_at_checked(8)?;
        versions.push(u64::from_be_bytes(head.try_into().ok()?));
        rest = tail;
    }
    Some((versions, rest))
}

impl Cache {
    fn check_tables(&self, tables: &[&str]) -> Result<Vec<String>, Error> {
        if tables.len() > MAX_TABLES {
            return Err(Error::InvalidArgument(format!(
                "a query may read at most {MAX_TABLES} tables, not {}",
                tables.len()
            )));
        }
        tables
            .iter()
            .map(|t| {
                check_name("table name", t)?;
                Ok(self.layout().table_version_key(t))
            })
            .collect()
    }

    /// Look up a cached query result for `user` (one round trip when the
    /// namespace and the tables exist).
    pub fn query_lookup<H: Host>(
        &self,
        host: &H,
        user: &str,
        query: &str,
        params: &[u8],
        tables: &[&str],
    ) -> Result<QueryResult, Error> {
        let table_keys = self.check_tables(tables)?;
        let keys = match self.target(host, &Scope::User(user.to_owned()))? {
            Target::User(keys) => keys,
            _ => {
                return Ok(QueryResult {
                    value: None,
                    token: QueryToken::bypass(),
                });
            }
        };
        let hash = query_key(query, params);
        let mut also = vec![self.layout().floor_key()];
        also.extend(table_keys.iter().cloned());
        // A stored result carries its table versions ahead of the value.
        let budget = self.settings().max_reply_bytes
            + versions::read_budget(also.len())
            + 8 * (tables.len() as u64 + 1);
        let read = if self.settings().cluster_hash_tags {
            self.get_indirect_cluster(host, &keys, Kind::Cacheops, &hash, &also, budget)
        } else {
            host.get_indirect(
                &keys.version_key,
                &keys.entry_prefix,
                &[UserKeys::entry_suffix(Kind::Cacheops, &hash)],
                &also,
                budget,
            )
        };
        let Some(found) = degrade(read.map(Some), || None)? else {
            return Ok(QueryResult {
                value: None,
                token: QueryToken::bypass(),
            });
        };
        if found.also.len() != also.len() || found.values.len() != 1 {
            return Err(Error::Internal(
                "get-indirect returned the wrong number of values".into(),
            ));
        }
        let live = versions::live(found.pointer.as_deref(), found.also[0].as_deref());
        let current: Vec<Option<u64>> = found.also[1..]
            .iter()
            .map(|v| versions::parse(v.as_deref()))
            .collect();
        if let (Some(ns), Some(tvs)) = (live, current.iter().copied().collect::<Option<Vec<u64>>>())
        {
            let value = found.values[0]
                .as_deref()
                .and_then(decode)
                .filter(|(stored, _)| *stored == tvs)
                .map(|(_, v)| v.to_vec());
            return Ok(QueryResult {
                value,
                token: QueryToken {
                    namespace_version: ns,
                    table_versions: tvs,
                },
            });
        }
        // Something is missing: create it, so that the token names real versions.
        let versions = self.versions(host);
        let created = match live {
            Some(v) => Ok(v),
            None => versions.ensure_live(&keys),
        };
        let Some(ns) = degrade(created.map(Some), || None)? else {
            return Ok(QueryResult {
                value: None,
                token: QueryToken::bypass(),
            });
        };
        let mut tvs = Vec::with_capacity(tables.len());
        for (key, v) in table_keys.iter().zip(current) {
            match degrade(
                v.map_or_else(|| versions.ensure_table(key), Ok).map(Some),
                || None,
            )? {
                Some(v) => tvs.push(v),
                None => {
                    return Ok(QueryResult {
                        value: None,
                        token: QueryToken::bypass(),
                    });
                }
            }
        }
        Ok(QueryResult {
            value: None,
            token: QueryToken {
                namespace_version: ns,
                table_versions: tvs,
            },
        })
    }

    /// Store a result loaded after [`Cache::query_lookup`] returned `token`.
    /// Skipped (without error) when the namespace moved on or the store fails.
    #[allow(clippy::too_many_arguments)]
    pub fn query_store<H: Host>(
        &self,
        host: &H,
        user: &str,
        query: &str,
        params: &[u8],
        tables: &[&str],
        token: &QueryToken,
        value: &[u8],
        ttl: Expiry,
    ) -> Result<(), Error> {
        self.check_tables(tables)?;
        self.settings().check_value(value)?;
        if token.namespace_version == 0 {
            return Ok(());
        }
        if token.table_versions.len() != tables.len() {
            return Err(Error::InvalidArgument(format!(
                "the token has {} table versions for {} tables",
                token.table_versions.len(),
                tables.len()
            )));
        }
        let keys = match self.target(host, &Scope::User(user.to_owned()))? {
            Target::User(keys) => keys,
            _ => return Ok(()),
        };
        let read = host.get_many(
            &[keys.version_key.clone(), self.layout().floor_key()],
            versions::read_budget(2),
        );
        let Some(state) = degrade(read.map(Some), || None)? else {
            return Ok(());
        };
        let [raw_version, raw_floor] = state.as_slice() else {
            return Err(Error::Internal(format!(
                "get-many returned {} values for 2 keys",
                state.len()
            )));
        };
        if versions::parse(raw_version.as_deref())
            .is_some_and(|current| token.namespace_version > current)
        {
            return Err(Error::InvalidArgument(format!(
                "namespace version {} is newer than the namespace's",
                token.namespace_version
            )));
        }
        if versions::live(raw_version.as_deref(), raw_floor.as_deref())
            != Some(token.namespace_version)
        {
            return Ok(()); // invalidated since the lookup: the result is dead
        }
        let key = keys.entry_key(
            token.namespace_version,
            Kind::Cacheops,
            &query_key(query, params),
        );
        let written = match ttl.lifetime(self.settings().default_ttl_ms) {
            Lifetime::Remove => host.delete(&key).map(drop),
            Lifetime::Keep(ttl_ms) => {
                let entry = [(key, encode(&token.table_versions, value))];
                let version = token.namespace_version;
                match self.put_namespaced(host, &keys, version, &entry, ttl_ms, false) {
                    Ok(PutOutcome::OverLimit) => return Err(self.quota_exceeded()),
                    other => other.map(drop),
                }
            }
        };
        degrade(written, || ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MapHost;

    #[test]
    fn normalisation_ignores_layout_but_not_literals() {
        assert_eq!(
            normalise_query("  SELECT *\n\tFROM  invoices  WHERE a = 'x  y'  "),
            "SELECT * FROM invoices WHERE a = 'x  y'"
        );
        assert_eq!(
            query_key("SELECT 1", b"[]"),
            query_key("SELECT\n  1 ", b"[]")
        );
        assert_ne!(
            query_key("SELECT 'a b'", b""),
            query_key("SELECT 'a  b'", b"")
        );
        assert_ne!(query_key("SELECT 1", b"[1]"), query_key("SELECT 1", b"[2]"));
        assert_eq!(query_key("q", b"").len(), 32);
    }

    #[test]
    fn entries_round_trip() {
        let e = encode(&[7, 9], b"rows");
        assert_eq!(decode(&e), Some((vec![7, 9], &b"rows"[..])));
        assert_eq!(decode(b"rows"), None);
        assert_eq!(decode(b"NQC1\x02\x00"), None);
    }

    #[test]
    fn a_table_bump_misses_every_query_over_it_and_only_those() {
        let (host, cache) = (MapHost::new(), Cache::default());
        let lookup = |user: &str, q: &str, tables: &[&str]| {
            cache.query_lookup(&host, user, q, b"", tables).unwrap()
        };
        for (q, tables) in [
            ("inv", &["invoices"][..]),
            ("cal", &["calendar"][..]),
            ("both", &["invoices", "calendar"][..]),
        ] {
            let l = lookup("1", q, tables);
            assert_eq!(l.value, None);
            cache
                .query_store(
                    &host,
                    "1",
                    q,
                    b"",
                    tables,
                    &l.token,
                    q.as_bytes(),
                    Expiry::Never,
                )
                .unwrap();
            assert_eq!(lookup("1", q, tables).value.as_deref(), Some(q.as_bytes()));
        }
        assert_eq!(
            lookup("2", "inv", &["invoices"]).value,
            None,
            "users never share results"
        );
        let before = host.calls();
        cache.invalidate_table(&host, "invoices").unwrap();
        let cost = host.calls() - before;
        assert_eq!(lookup("1", "inv", &["invoices"]).value, None);
        assert_eq!(lookup("1", "both", &["invoices", "calendar"]).value, None);
        assert_eq!(
            lookup("1", "cal", &["calendar"]).value.as_deref(),
            Some(&b"cal"[..])
        );
        // The cost of a table bump does not depend on how many results read it.
        for i in 0..200 {
            let l = lookup("1", &format!("q{i}"), &["calendar"]);
            cache
                .query_store(
                    &host,
                    "1",
                    &format!("q{i}"),
                    b"",
                    &["calendar"],
                    &l.token,
                    b"x",
                    Expiry::Never,
                )
                .unwrap();
        }
        let before = host.calls();
        cache.invalidate_table(&host, "calendar").unwrap();
        assert_eq!(host.calls() - before, cost);
    }

    #[test]
    fn a_result_loaded_across_an_invalidation_is_never_served() {
        let (host, cache) = (MapHost::new(), Cache::default());
        let l = cache
            .query_lookup(&host, "1", "q", b"", &["invoices"])
            .unwrap();
        cache.invalidate_table(&host, "invoices").unwrap();
        cache
            .query_store(
                &host,
                "1",
                "q",
                b"",
                &["invoices"],
                &l.token,
                b"stale",
                Expiry::Never,
            )
            .unwrap();
        assert_eq!(
            cache
                .query_lookup(&host, "1", "q", b"", &["invoices"])
                .unwrap()
                .value,
            None
        );
        let l = cache
            .query_lookup(&host, "1", "q", b"", &["invoices"])
            .unwrap();
        cache.invalidate_user(&host, "1").unwrap();
        cache
            .query_store(
                &host,
                "1",
                "q",
                b"",
                &["invoices"],
                &l.token,
                b"stale",
                Expiry::Never,
            )
            .unwrap();
        assert_eq!(
            cache
                .query_lookup(&host, "1", "q", b"", &["invoices"])
                .unwrap()
                .value,
            None
        );
    }

    #[test]
    fn disabled_users_and_bad_input() {
        let (host, cache) = (MapHost::new(), Cache::default());
        host.set_cache_enabled("9", false);
        let l = cache.query_lookup(&host, "9", "q", b"", &["t"]).unwrap();
        assert_eq!(l.token.namespace_version, 0);
        cache
            .query_store(&host, "9", "q", b"", &["t"], &l.token, b"x", Expiry::Never)
            .unwrap();
        assert!(
            host.keys().iter().all(|k| !k.contains("cacheops")),
            "nothing stored for a disabled user"
        );
        let many: Vec<String> = (0..65).map(|i| format!("t{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert!(matches!(
            cache.query_lookup(&host, "1", "q", b"", &many),
            Err(Error::InvalidArgument(_))
        ));
        assert!(matches!(
            cache.query_lookup(&host, "1", "q", b"", &[""]),
            Err(Error::InvalidName(_))
        ));
        let l = cache.query_lookup(&host, "1", "q", b"", &["t"]).unwrap();
        assert!(matches!(
            cache.query_store(
                &host,
                "1",
                "q",
                b"",
                &["t", "u"],
                &l.token,
                b"x",
                Expiry::Never
            ),
            Err(Error::InvalidArgument(_))
        ));
    }
}
