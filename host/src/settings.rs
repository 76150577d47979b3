//! [`Settings`]: everything a [`Cache`](crate::Cache) is configured with, in
//! one place — defaults, environment variable names, parsing and validation.
//!
//! The cache logic's own settings (key prefix, namespace root, default TTL,
//! limits) default to what the component says (`None` here): the component
//! is the one place those defaults live. Everything else defaults here.
//!
//! [`OPTIONS`] lists every setting with its option name (`pool-size`), its
//! environment variable (`NSCACHE_POOL_SIZE`) and its help; [`Settings::set`]
//! parses a value given by name, so that the environment, a command line
//! (the server's) and a configuration file all go through the same parser.
//! `Settings` is also `serde`: `{"redis_url": "redis://…", "pool_size": 8,
//! "socket_timeout": 0.5}` (durations in seconds).
//!
//! ```
//! use nscache::Settings;
//!
//! let mut settings = Settings::default();
//! settings.set("pool-size", "8").unwrap();
//! settings.set("socket-timeout", "0.25").unwrap();
//! assert!(settings.set("socket-timeout", "0").is_err());
//! assert_eq!(settings.pool_size, 8);
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::CacheError;
use crate::store::{ClusterOptions, L1Options, RedisOptions, is_cluster_url};

/// Defaults of the settings the host owns.
pub mod defaults {
    use std::time::Duration;

    /// Redis connections per process.
    pub const POOL_SIZE: usize = 50;
    /// Longest wait to connect to Redis.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Longest wait for one Redis reply.
    pub const SOCKET_TIMEOUT: Duration = Duration::from_secs(5);
    /// Bytes the embedded memory store holds.
    pub const MEMORY_CAPACITY: usize = 256 << 20;
    /// Bytes the L1 holds.
    pub const L1_CAPACITY: u64 = 64 << 20;
    /// Longest an L1 entry is served without hearing of a change.
    pub const L1_MAX_AGE: Duration = Duration::from_secs(1);
    /// Idle component instances kept for reuse.
    pub const MAX_IDLE_INSTANCES: usize = 256;
    /// The Redis database of the application's task queue (the reference's
    /// PgQueuer), which nscache must never use.
    pub const TASK_QUEUE_DB: u32 = 0;
    /// Processes expected to share one Redis with [`POOL_SIZE`] connections each.
    pub const PROCESSES: u32 = 1;
    /// Replicas that must confirm a version write on Redis Cluster (`WAIT`).
    pub const WAIT_REPLICAS: u32 = 1;
    /// The user id column of an application's profile table.
    pub const PROFILE_USER_COLUMN: &str = "user_id";
    /// The flag column of a profile table.
    pub const PROFILE_FLAG_COLUMN: &str = "cache_enabled";
    /// How long a flag read from the database is trusted without hearing
    /// of a change.
    pub const PROFILE_MAX_AGE: Duration = Duration::from_secs(30);
}

/// Everything a [`Cache`](crate::Cache) is configured with. `Default` is the
/// embedded memory store with every default; [`Settings::from_env`] reads the
/// environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Redis URL (`redis://[user:pass@]host[:port][/db]`, database 1 when it
    /// names none), or a Redis Cluster
    /// (`redis+cluster://[user:pass@]host:port,host:port/`, which turns on
    /// the hash-tagged key layout); `None`: the embedded memory store.
    pub redis_url: Option<String>,
    /// PEM file of the certificate authority to trust for `rediss://`
    /// (`None`: the system's trust store).
    pub redis_ca_cert: Option<std::path::PathBuf>,
    /// PEM file of a client certificate for `rediss://` (with its key).
    pub redis_client_cert: Option<std::path::PathBuf>,
    /// PEM file of the client certificate's private key.
    pub redis_client_key: Option<std::path::PathBuf>,
    /// Redis connections per process (each multiplexed), at least 1.
    pub pool_size: usize,
    /// Longest wait to connect to Redis (more than zero).
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Longest wait for one Redis reply (more than zero).
    #[serde(with = "secs")]
    pub socket_timeout: Duration,
    /// Bytes the embedded memory store holds (when there is no Redis).
    pub memory_capacity: usize,
    /// Global key prefix, Django's `KEY_PREFIX` (`None`: the component's).
    pub key_prefix: Option<String>,
    /// Global key version, Django's `VERSION` (`None`: the component's).
    pub key_version: Option<u64>,
    /// First segment of namespace keys (`None`: the component's).
    pub namespace_root: Option<String>,
    /// TTL of [`Expiry::Default`](crate::Expiry::Default); zero: do not
    /// cache (`None`: the component's).
    #[serde(with = "opt_secs")]
    pub default_ttl: Option<Duration>,
    /// Longest accepted key in bytes (`None`: the component's).
    pub max_key_bytes: Option<u32>,
    /// Largest accepted value in bytes (`None`: the component's).
    pub max_value_bytes: Option<u32>,
    /// Wrap user ids in Redis Cluster hash tags (`None`: the component's).
    pub cluster_hash_tags: Option<bool>,
    /// Most bytes of values one read returns, every key asked counted
    /// (`None`: the component's, 8 MiB).
    pub max_reply_bytes: Option<u64>,
    /// Most bytes written into one version of a user's namespace; 0: no
    /// quota (`None`: the component's, 64 MiB).
    pub namespace_quota_bytes: Option<u64>,
    /// Longest life of a namespaced entry (`None`: the component's, a day).
    #[serde(with = "opt_secs")]
    pub max_namespace_ttl: Option<Duration>,
    /// An in-process L1 in front of the store.
    pub l1: bool,
    /// Bytes the L1 holds.
    pub l1_capacity: u64,
    /// Longest an L1 entry is served without hearing of a change (more than
    /// zero): the bound on staleness for changes nscache does not announce.
    #[serde(with = "secs")]
    pub l1_max_age: Duration,
    /// Idle component instances kept for reuse.
    pub max_idle_instances: usize,
    /// The Redis database of the application's task queue: nscache never
    /// uses it, and `nscache doctor` fails when `redis_url` names it.
    pub task_queue_db: u32,
    /// On Redis Cluster: replicas that must confirm every version write and
    /// increment (`WAIT`) before it succeeds; 0: do not wait.
    pub cluster_wait_replicas: u32,
    /// Processes expected to share the Redis (servers, workers), each with
    /// `pool_size` connections: `nscache doctor` compares the product with
    /// Redis' `maxclients`.
    pub processes: u32,
    /// Where the compiled component is kept between processes (a private
    /// directory, see the README); `None`: compile it in every process. The
    /// first cache a process builds compiles or loads it, the others share
    /// it. Default: `$XDG_CACHE_HOME/nscache`, else `~/.cache/nscache`.
    pub compile_cache: Option<std::path::PathBuf>,
    /// Postgres URL: where users' `cache_enabled` flags are (the server also
    /// keeps its accounts there).
    pub database_url: Option<String>,
    /// An application's existing profile table holding the flags (e.g.
    /// `core_userprofile`); `None`: nscache's own `nscache_user_profiles`.
    pub profile_table: Option<String>,
    /// The user id column of `profile_table`.
    pub profile_user_column: String,
    /// The flag column of the profile table.
    pub profile_flag_column: String,
    /// How long a flag read from the database is trusted without hearing of
    /// a change (changes made through nscache are heard at once).
    #[serde(with = "secs")]
    pub profile_max_age: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            redis_url: None,
            redis_ca_cert: None,
            redis_client_cert: None,
            redis_client_key: None,
            pool_size: defaults::POOL_SIZE,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            socket_timeout: defaults::SOCKET_TIMEOUT,
            memory_capacity: defaults::MEMORY_CAPACITY,
            key_prefix: None,
            key_version: None,
            namespace_root: None,
            default_ttl: None,
            max_key_bytes: None,
            max_value_bytes: None,
            cluster_hash_tags: None,
            max_reply_bytes: None,
            namespace_quota_bytes: None,
            max_namespace_ttl: None,
            l1: false,
            l1_capacity: defaults::L1_CAPACITY,
            l1_max_age: defaults::L1_MAX_AGE,
            max_idle_instances: defaults::MAX_IDLE_INSTANCES,
            task_queue_db: defaults::TASK_QUEUE_DB,
            cluster_wait_replicas: defaults::WAIT_REPLICAS,
            processes: defaults::PROCESSES,
            compile_cache: crate::compile_cache::default_dir(),
            database_url: None,
            profile_table: None,
            profile_user_column: defaults::PROFILE_USER_COLUMN.to_owned(),
            profile_flag_column: defaults::PROFILE_FLAG_COLUMN.to_owned(),
            profile_max_age: defaults::PROFILE_MAX_AGE,
        }
    }
}

/// One setting, as the environment and command lines name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettingInfo {
    /// The option name (`pool-size`), also the `--pool-size` flag.
    pub name: &'static str,
    /// The environment variable.
    pub env: &'static str,
    /// What it is, for `--help`.
    pub help: &'static str,
    /// What a value looks like (`SECONDS`, `URL`…).
    pub value_name: &'static str,
    /// The value may hold a secret (a URL with a password): never echo it.
    pub secret: bool,
}

macro_rules! setting {
    ($name:literal, $env:literal, $value:literal, $help:literal) => {
        SettingInfo {
            name: $name,
            env: $env,
            help: $help,
            value_name: $value,
            secret: false,
        }
    };
    ($name:literal, $env:literal, $value:literal, $help:literal, secret) => {
        SettingInfo {
            name: $name,
            env: $env,
            help: $help,
            value_name: $value,
            secret: true,
        }
    };
}

/// Every setting [`Settings::set`] takes, with its environment variable.
pub const OPTIONS: &[SettingInfo] = &[
    setting!(
        "redis-url",
        "REDIS_URL",
        "URL",
        "Redis URL, e.g. redis://127.0.0.1:6379/1 (database 1 when none is given), or redis+cluster://host:port,host:port/ for Redis Cluster; unset: the embedded memory store",
        secret
    ),
    setting!(
        "redis-ca-cert",
        "NSCACHE_REDIS_CA_CERT",
        "FILE",
        "PEM certificate authority to trust for rediss:// [default: the system's trust store]"
    ),
    setting!(
        "redis-client-cert",
        "NSCACHE_REDIS_CLIENT_CERT",
        "FILE",
        "PEM client certificate for rediss:// servers that require one (with --redis-client-key)"
    ),
    setting!(
        "redis-client-key",
        "NSCACHE_REDIS_CLIENT_KEY",
        "FILE",
        "PEM private key of --redis-client-cert"
    ),
    setting!(
        "pool-size",
        "NSCACHE_POOL_SIZE",
        "N",
        "Redis connections per process [default: 50]"
    ),
    setting!(
        "connect-timeout",
        "NSCACHE_CONNECT_TIMEOUT",
        "SECONDS",
        "Longest wait to connect to Redis [default: 5]"
    ),
    setting!(
        "socket-timeout",
        "NSCACHE_SOCKET_TIMEOUT",
        "SECONDS",
        "Longest wait for one Redis reply [default: 5]"
    ),
    setting!(
        "memory-capacity",
        "NSCACHE_MEMORY_CAPACITY",
        "BYTES",
        "Bytes the embedded memory store holds [default: 268435456]"
    ),
    setting!(
        "prefix",
        "CACHE_KEY_PREFIX",
        "PREFIX",
        "Global key prefix, Django's KEY_PREFIX [default: the component's]"
    ),
    setting!(
        "key-version",
        "CACHE_KEY_VERSION",
        "N",
        "Global key version, Django's VERSION [default: the component's]"
    ),
    setting!(
        "namespace-root",
        "NSCACHE_NAMESPACE_ROOT",
        "ROOT",
        "First segment of namespace keys [default: the component's]"
    ),
    setting!(
        "default-ttl",
        "NSCACHE_DEFAULT_TTL",
        "SECONDS",
        "TTL of writes without one; 0: do not cache [default: the component's]"
    ),
    setting!(
        "max-key-bytes",
        "NSCACHE_MAX_KEY_BYTES",
        "BYTES",
        "Longest accepted key [default: the component's]"
    ),
    setting!(
        "max-value-bytes",
        "NSCACHE_MAX_VALUE_BYTES",
        "BYTES",
        "Largest accepted value [default: the component's]"
    ),
    setting!(
        "cluster-hash-tags",
        "NSCACHE_CLUSTER_HASH_TAGS",
        "BOOL",
        "Wrap user ids in Redis Cluster hash tags [default: the component's]"
    ),
    setting!(
        "cluster-wait-replicas",
        "NSCACHE_CLUSTER_WAIT_REPLICAS",
        "N",
        "Redis Cluster: replicas that must confirm every version write (WAIT); 0: none [default: 1]"
    ),
    setting!(
        "max-reply-bytes",
        "NSCACHE_MAX_REPLY_BYTES",
        "BYTES",
        "Most bytes of values one read returns, every key asked counted [default: the component's, 8 MiB]"
    ),
    setting!(
        "namespace-quota-bytes",
        "NSCACHE_NAMESPACE_QUOTA_BYTES",
        "BYTES",
        "Most bytes written into one version of a user's namespace; 0: none [default: the component's, 64 MiB]"
    ),
    setting!(
        "max-namespace-ttl",
        "NSCACHE_MAX_NAMESPACE_TTL",
        "SECONDS",
        "Longest life of a namespaced entry [default: the component's, 86400]"
    ),
    setting!(
        "l1",
        "NSCACHE_L1",
        "BOOL",
        "An in-process L1 in front of Redis [default: false]"
    ),
    setting!(
        "l1-capacity",
        "NSCACHE_L1_CAPACITY",
        "BYTES",
        "Bytes the L1 holds [default: 67108864]"
    ),
    setting!(
        "l1-max-age",
        "NSCACHE_L1_MAX_AGE",
        "SECONDS",
        "Longest an L1 entry is served without hearing of a change [default: 1]"
    ),
    setting!(
        "max-idle-instances",
        "NSCACHE_MAX_IDLE_INSTANCES",
        "N",
        "Idle component instances kept for reuse [default: 256]"
    ),
    setting!(
        "task-queue-db",
        "NSCACHE_TASK_QUEUE_DB",
        "N",
        "Redis database of the application's task queue, never nscache's (checked by doctor) [default: 0]"
    ),
    setting!(
        "processes",
        "NSCACHE_PROCESSES",
        "N",
        "Processes expected to share the Redis, each with pool-size connections (checked by doctor against maxclients) [default: 1]"
    ),
    setting!(
        "compile-cache",
        "NSCACHE_COMPILE_CACHE",
        "DIR",
        "Private directory (0700) keeping the compiled component between runs; off: compile at every start [default: $XDG_CACHE_HOME/nscache or ~/.cache/nscache]"
    ),
    setting!(
        "database-url",
        "DATABASE_URL",
        "URL",
        "Postgres URL for users' cache flags (and the server's accounts)",
        secret
    ),
    setting!(
        "profile-table",
        "NSCACHE_PROFILE_TABLE",
        "TABLE",
        "An existing application table holding the users' cache flags (e.g. core_userprofile)"
    ),
    setting!(
        "profile-user-column",
        "NSCACHE_PROFILE_USER_COLUMN",
        "COLUMN",
        "The user id column of the profile table [default: user_id]"
    ),
    setting!(
        "profile-flag-column",
        "NSCACHE_PROFILE_FLAG_COLUMN",
        "COLUMN",
        "The flag column of the profile table [default: cache_enabled]"
    ),
    setting!(
        "profile-max-age",
        "NSCACHE_PROFILE_MAX_AGE",
        "SECONDS",
        "How long a flag read from the database is trusted [default: 30]"
    ),
];

/// Parse a number of seconds: fractions allowed, at least zero, finite.
pub fn parse_seconds(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<f64>() {
        Ok(secs) if secs.is_finite() && (0.0..1e12).contains(&secs) => {
            Ok(Duration::from_secs_f64(secs))
        }
        _ => Err(format!("{value:?} is not a number of seconds (>= 0)")),
    }
}

fn parse_number<T: std::str::FromStr>(value: &str) -> Result<T, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{value:?} is not a whole number in range"))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!(
            "{value:?} is not a boolean (true/false, 1/0, yes/no, on/off)"
        )),
    }
}

/// An empty value means "unset" for the optional settings, as an empty
/// `REDIS_URL=` does in a shell.
fn optional(value: &str) -> Option<String> {
    Some(value.to_owned()).filter(|v| !v.is_empty())
}

impl Settings {
    /// The defaults, then every variable of [`OPTIONS`] set in the process
    /// environment (an empty variable counts as unset).
    pub fn from_env() -> Result<Settings, CacheError> {
        let mut settings = Settings::default();
        settings.apply_env(|name| std::env::var(name).ok())?;
        Ok(settings)
    }

    /// Apply the variables `lookup` finds (by [`SettingInfo::env`] name).
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), CacheError> {
        for option in OPTIONS {
            if let Some(value) = lookup(option.env).filter(|v| !v.is_empty()) {
                self.set(option.name, &value).map_err(|e| match e {
                    CacheError::Config(m) => CacheError::Config(format!("{}: {m}", option.env)),
                    other => other,
                })?;
            }
        }
        Ok(())
    }

    /// Set the setting named `name` (as in [`OPTIONS`]) from text; the value
    /// is checked as [`Settings::validate`] would.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), CacheError> {
        let set = |s: &mut Settings| -> Result<(), String> {
            match name {
                "redis-url" => s.redis_url = optional(value),
                "redis-ca-cert" => s.redis_ca_cert = optional(value).map(Into::into),
                "redis-client-cert" => s.redis_client_cert = optional(value).map(Into::into),
                "redis-client-key" => s.redis_client_key = optional(value).map(Into::into),
                "pool-size" => s.pool_size = parse_number(value)?,
                "connect-timeout" => s.connect_timeout = parse_seconds(value)?,
                "socket-timeout" => s.socket_timeout = parse_seconds(value)?,
                "memory-capacity" => s.memory_capacity = parse_number(value)?,
                "prefix" => s.key_prefix = Some(value.to_owned()),
                "key-version" => s.key_version = Some(parse_number(value)?),
                "namespace-root" => s.namespace_root = Some(value.to_owned()),
                "default-ttl" => s.default_ttl = Some(parse_seconds(value)?),
                "max-key-bytes" => s.max_key_bytes = Some(parse_number(value)?),
                "max-value-bytes" => s.max_value_bytes = Some(parse_number(value)?),
                "cluster-hash-tags" => s.cluster_hash_tags = Some(parse_bool(value)?),
                "max-reply-bytes" => s.max_reply_bytes = Some(parse_number(value)?),
                "namespace-quota-bytes" => s.namespace_quota_bytes = Some(parse_number(value)?),
                "max-namespace-ttl" => s.max_namespace_ttl = Some(parse_seconds(value)?),
                "l1" => s.l1 = parse_bool(value)?,
                "l1-capacity" => s.l1_capacity = parse_number(value)?,
                "l1-max-age" => s.l1_max_age = parse_seconds(value)?,
                "max-idle-instances" => s.max_idle_instances = parse_number(value)?,
                "task-queue-db" => s.task_queue_db = parse_number(value)?,
                "processes" => s.processes = parse_number(value)?,
                "cluster-wait-replicas" => s.cluster_wait_replicas = parse_number(value)?,
                "compile-cache" => {
                    s.compile_cache = match value {
                        "" | "off" => None,
                        dir => Some(dir.into()),
                    }
                }
                "database-url" => s.database_url = optional(value),
                "profile-table" => s.profile_table = optional(value),
                "profile-user-column" => s.profile_user_column = value.to_owned(),
                "profile-flag-column" => s.profile_flag_column = value.to_owned(),
                "profile-max-age" => s.profile_max_age = parse_seconds(value)?,
                other => return Err(format!("no setting named {other:?}")),
            }
            Ok(())
        };
        set(self)
            .and_then(|()| self.validate_field(name))
            .map_err(|m| CacheError::Config(format!("{name}: {m}")))
    }

    /// Check every setting the host owns; the component checks its own when
    /// the cache is built (prefix, root, limits).
    pub fn validate(&self) -> Result<(), CacheError> {
        for option in OPTIONS {
            self.validate_field(option.name)
                .map_err(|m| CacheError::Config(format!("{}: {m}", option.name)))?;
        }
        Ok(())
    }

    fn validate_field(&self, name: &str) -> Result<(), String> {
        let positive = |d: Duration| {
            if d.is_zero() {
                Err("must be more than zero".to_owned())
            } else {
                Ok(())
            }
        };
        match name {
            "pool-size" if !(1..=10_000).contains(&self.pool_size) => {
                Err("must be 1 to 10000".into())
            }
            "redis-url" | "cluster-hash-tags" => match self.cluster_options() {
                Some(options) => {
                    options.node_urls().map_err(|e| e.to_string())?;
                    if self.cluster_hash_tags == Some(false) {
                        return Err("Redis Cluster needs the hash-tagged key layout: \
                                    leave cluster-hash-tags unset (or true) with a \
                                    redis+cluster:// URL"
                            .into());
                    }
                    Ok(())
                }
                None => Ok(()),
            },
            "redis-ca-cert" | "redis-client-cert" | "redis-client-key"
                if self.is_cluster() && self.redis_tls().is_set() =>
            {
                Err("TLS files are not supported with redis+cluster:// URLs yet".into())
            }
            "connect-timeout" => positive(self.connect_timeout),
            "socket-timeout" => positive(self.socket_timeout),
            "l1-max-age" => positive(self.l1_max_age),
            "processes" if !(1..=100_000).contains(&self.processes) => {
                Err("must be 1 to 100000".into())
            }
            "memory-capacity" if self.memory_capacity == 0 => Err("must be at least 1 byte".into()),
            "l1-capacity" if self.l1_capacity == 0 => Err("must be at least 1 byte".into()),
            "compile-cache" => match &self.compile_cache {
                Some(dir) if !dir.is_absolute() => Err(format!(
                    "{} is not an absolute path (or off)",
                    dir.display()
                )),
                _ => Ok(()),
            },
            "profile-table" => match &self.profile_table {
                Some(table) => self
                    .profile_table()
                    .map(drop)
                    .map_err(|_| format!("{table:?} is not a plain SQL identifier")),
                None => Ok(()),
            },
            "profile-user-column" | "profile-flag-column" => {
                for column in [&self.profile_user_column, &self.profile_flag_column] {
                    crate::sql::Identifier::parse(column).map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// True when `redis_url` names a Redis Cluster (`redis+cluster://`).
    pub fn is_cluster(&self) -> bool {
        self.redis_url.as_deref().is_some_and(is_cluster_url)
    }

    /// How to reach Redis Cluster, when the URL names one.
    pub fn cluster_options(&self) -> Option<ClusterOptions> {
        self.redis_url
            .as_ref()
            .filter(|url| is_cluster_url(url))
            .map(|url| ClusterOptions {
                url: url.clone(),
                pool_size: self.pool_size,
                connect_timeout: self.connect_timeout,
                socket_timeout: self.socket_timeout,
                wait_replicas: self.cluster_wait_replicas,
            })
    }

    /// How to reach Redis, when a URL of one server is set (not a cluster:
    /// [`Settings::cluster_options`]).
    pub fn redis_options(&self) -> Option<RedisOptions> {
        self.redis_url
            .as_ref()
            .filter(|url| !is_cluster_url(url))
            .map(|url| RedisOptions {
                url: url.clone(),
                pool_size: self.pool_size,
                connect_timeout: self.connect_timeout,
                socket_timeout: self.socket_timeout,
                tls: self.redis_tls(),
            })
    }

    /// The TLS files for `rediss://`.
    pub fn redis_tls(&self) -> crate::store::RedisTls {
        crate::store::RedisTls {
            ca_cert: self.redis_ca_cert.clone(),
            client_cert: self.redis_client_cert.clone(),
            client_key: self.redis_client_key.clone(),
        }
    }

    /// The Redis database `redis_url` selects (1 when it names none), when
    /// a URL of one server is set (Redis Cluster has no databases: `None`).
    pub fn redis_database(&self) -> Option<u32> {
        self.redis_url
            .as_deref()
            .filter(|url| !is_cluster_url(url))
            .map(crate::store::redis_database_number)
    }

    /// The L1's options, when it is on.
    pub fn l1_options(&self) -> Option<L1Options> {
        self.l1.then_some(L1Options {
            capacity_bytes: self.l1_capacity,
            max_age: self.l1_max_age,
        })
    }

    /// Where users' flags live in the database.
    pub fn profile_table(&self) -> Result<crate::sql::ProfileTable, CacheError> {
        let table = match &self.profile_table {
            Some(table) => crate::sql::ProfileTable::existing(
                table,
                &self.profile_user_column,
                &self.profile_flag_column,
            ),
            None => {
                let mut own = crate::sql::ProfileTable::default();
                crate::sql::Identifier::parse(&self.profile_flag_column).map(|flag| {
                    own.flag_column = flag;
                    own
                })
            }
        };
        table.map_err(|e| CacheError::Config(format!("profile table: {e}")))
    }
}

/// `url` with every secret replaced by `***`: the password of the user
/// part (`scheme://user:secret@host`) and the value of every query parameter
/// whose name says it holds one (`password`, `sslpassword`, `secret`,
/// `token`, …). For banners, logs and `/health`.
///
/// ```
/// use nscache::settings::redact_url;
/// assert_eq!(redact_url("redis://u:pw@h:6379/1"), "redis://u:***@h:6379/1");
/// assert_eq!(redact_url("postgres://h/db?user=a&password=pw"), "postgres://h/db?user=a&password=***");
/// ```
pub fn redact_url(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut out = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest
                .split_once('/')
                .map_or((rest, None), |(a, p)| (a, Some(p)));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:***@{host}"),
                    None => format!("{userinfo}@{host}"),
                },
                None => authority.to_owned(),
            };
            match path {
                Some(path) => format!("{scheme}://{authority}/{path}"),
                None => format!("{scheme}://{authority}"),
            }
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let secret = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["pass", "pwd", "secret", "token", "key"]
                .iter()
                .any(|s| name.contains(s))
        };
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if secret(name) => format!("{name}=***"),
                _ => param.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&params.join("&"));
    }
    out
}

/// `Duration` as a number of seconds (fractions allowed).
mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = f64::deserialize(d)?;
        super::parse_seconds(&secs.to_string()).map_err(serde::de::Error::custom)
    }
}

/// `Option<Duration>` as a number of seconds or `null`.
mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<f64>::deserialize(d)?
            .map(|secs| super::parse_seconds(&secs.to_string()).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_their_secrets() {
        for (url, shown) in [
            ("redis://u:secret@h:1/1", "redis://u:***@h:1/1"),
            ("redis://:secret@h/1", "redis://:***@h/1"),
            ("redis://h/1", "redis://h/1"),
            ("rediss://user@h", "rediss://user@h"),
            (
                "postgres://app:S3cret@db/prod?sslmode=require",
                "postgres://app:***@db/prod?sslmode=require",
            ),
            (
                "postgres://db/prod?password=S3cretPw",
                "postgres://db/prod?password=***",
            ),
            (
                "postgres://db/prod?user=a&sslpassword=x&PASSWORD=y",
                "postgres://db/prod?user=a&sslpassword=***&PASSWORD=***",
            ),
            ("redis://h/1?token=abc&db=2", "redis://h/1?token=***&db=2"),
            ("postgres://u:p@w@h/db", "postgres://u:***@h/db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("ecret"), "{url}");
        }
    }

    #[test]
    fn every_option_has_a_parser_and_a_unique_env_name() {
        let mut envs = std::collections::HashSet::new();
        for option in OPTIONS {
            assert!(envs.insert(option.env), "{} twice", option.env);
            let sample = match option.value_name {
                "SECONDS" => "1.5",
                "BOOL" => "true",
                "N" | "BYTES" => "7",
                "URL" => "redis://127.0.0.1/3",
                "DIR" => "/var/cache/nscache",
                _ => "abc",
            };
            Settings::default()
                .set(option.name, sample)
                .unwrap_or_else(|e| panic!("{}: {e}", option.name));
        }
        assert!(Settings::default().set("no-such-thing", "1").is_err());
    }

    #[test]
    fn zero_timeouts_and_pools_are_refused_everywhere() {
        for (name, value) in [
            ("pool-size", "0"),
            ("connect-timeout", "0"),
            ("socket-timeout", "0"),
            ("l1-max-age", "0"),
            ("socket-timeout", "-1"),
            ("pool-size", "x"),
        ] {
            assert!(
                Settings::default().set(name, value).is_err(),
                "{name}={value}"
            );
        }
        let env = |name: &str| (name == "NSCACHE_SOCKET_TIMEOUT").then(|| "0".to_owned());
        let err = Settings::default().apply_env(env).unwrap_err().to_string();
        assert!(err.contains("NSCACHE_SOCKET_TIMEOUT"), "{err}");
        let parsed: Result<Settings, _> = serde_json::from_str(r#"{"socket_timeout": 0}"#);
        assert!(
            parsed.unwrap().validate().is_err(),
            "serde input is validated by validate()"
        );
    }

    #[test]
    fn the_environment_and_serde_agree() {
        let env = |name: &str| match name {
            "REDIS_URL" => Some("redis://127.0.0.1:6379/2".to_owned()),
            "NSCACHE_POOL_SIZE" => Some("3".to_owned()),
            "NSCACHE_SOCKET_TIMEOUT" => Some("0.5".to_owned()),
            "NSCACHE_NAMESPACE_ROOT" => Some("app".to_owned()),
            "NSCACHE_L1" => Some("1".to_owned()),
            "DATABASE_URL" => Some(String::new()),
            _ => None,
        };
        let mut from_env = Settings::default();
        from_env.apply_env(env).unwrap();
        let from_json: Settings = serde_json::from_str(
            r#"{"redis_url": "redis://127.0.0.1:6379/2", "pool_size": 3, "socket_timeout": 0.5, "namespace_root": "app", "l1": true}"#,
        )
        .unwrap();
        assert_eq!(from_env, from_json);
        assert_eq!(from_env.redis_options().unwrap().pool_size, 3);
        assert!(from_env.l1_options().is_some());
        assert_eq!(from_env.database_url, None, "an empty variable is unset");
        assert!(
            serde_json::from_str::<Settings>(r#"{"pool_sise": 3}"#).is_err(),
            "typos are refused"
        );
    }
}
