//! Settings of a cache instance and their validation.

use crate::error::Error;

/// Longest accepted user id or table name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;

/// Everything configurable about the cache logic (the WIT `settings` record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Global key prefix, Django's `KEY_PREFIX` (default `revisbali`).
    pub key_prefix: String,
    /// Global key version, Django's `VERSION` (default 1).
    pub key_version: u64,
    /// First segment of every namespace key (default `cache`).
    pub namespace_root: String,
    /// Expiry of [`Expiry::Default`](crate::Expiry::Default), in milliseconds.
    pub default_ttl_ms: u64,
    /// Longest accepted key, in bytes.
    pub max_key_bytes: u32,
    /// Largest accepted value, in bytes.
    pub max_value_bytes: u32,
    /// Wrap user ids in a Redis Cluster hash tag.
    pub cluster_hash_tags: bool,
    /// Most bytes of values one read returns (every key asked counts).
    pub max_reply_bytes: u64,
    /// Most bytes written into one version of a user's namespace (0: none).
    pub namespace_quota_bytes: u64,
    /// Longest life of a namespaced entry, in milliseconds.
    pub max_namespace_ttl_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            key_prefix: "revisbali".to_owned(),
            key_version: 1,
            namespace_root: "cache".to_owned(),
            default_ttl_ms: 300_000,
            max_key_bytes: 1024,
            max_value_bytes: 1024 * 1024,
            cluster_hash_tags: false,
            max_reply_bytes: 8 << 20,
            namespace_quota_bytes: 64 << 20,
            max_namespace_ttl_ms: 86_400_000,
        }
    }
}

impl Settings {
    /// Check that these settings give an unambiguous key layout and sane limits.
    ///
    /// The prefix and the namespace root may not contain `:` and may not be
    /// equal: that is what keeps global keys (`P:V:key`), namespace entries
    /// (`R:user:vN:kind:key`), version keys (`R_user_version:user`, one `:`) and
    /// the internal keys (`R_namespace_floor`, no `:`) apart.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |msg: String| Err(Error::InvalidArgument(msg));
        if self.key_prefix.is_empty() || self.key_prefix.len() > 64 {
            return bad("key-prefix must be 1 to 64 bytes".into());
        }
        if self
            .key_prefix
            .chars()
            .any(|c| c == ':' || c.is_control() || c.is_whitespace())
        {
            return bad(format!(
                "key-prefix {:?} may not contain ':', spaces or control characters",
                self.key_prefix
            ));
        }
        if self.namespace_root.is_empty()
            || self.namespace_root.len() > 64
            || !self
                .namespace_root
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            return bad(format!(
                "namespace-root {:?} must be 1 to 64 letters, digits, '_' or '-'",
                self.namespace_root
            ));
        }
        if self.key_prefix == self.namespace_root {
            return bad(format!(
                "key-prefix and namespace-root are both {:?}: global keys would share the namespace keyspace",
                self.key_prefix
            ));
        }
        if self.key_version == 0 {
            return bad("key-version must be at least 1".into());
        }
        if self.max_key_bytes == 0 {
            return bad("max-key-bytes must be at least 1".into());
        }
        if self.max_value_bytes == 0 {
            return bad("max-value-bytes must be at least 1".into());
        }
        if self.max_reply_bytes < u64::from(self.max_value_bytes) {
            return bad(format!(
                "max-reply-bytes ({}) must be at least max-value-bytes ({}): one value must fit",
                self.max_reply_bytes, self.max_value_bytes
            ));
        }
        if self.namespace_quota_bytes != 0
            && self.namespace_quota_bytes < u64::from(self.max_value_bytes)
        {
            return bad(format!(
                "namespace-quota-bytes ({}) must be 0 (none) or at least max-value-bytes ({})",
                self.namespace_quota_bytes, self.max_value_bytes
            ));
        }
        if self.max_namespace_ttl_ms < 1000 {
            return bad("max-namespace-ttl-ms must be at least 1000".into());
        }
        Ok(())
    }

    /// Reject a key longer than the limit. Any other key is accepted: spaces,
    /// Unicode and keys over 250 bytes are fine (Django only warns about them).
    pub(crate) fn check_key(&self, key: &str) -> Result<(), Error> {
        if key.len() > self.max_key_bytes as usize {
            return Err(Error::KeyTooLong(format!(
                "key is {} bytes, the limit is {}",
                key.len(),
                self.max_key_bytes
            )));
        }
        Ok(())
    }

    /// The expiry of a namespaced entry: `ttl_ms` (`None`: never), cut to
    /// the longest a namespaced entry may live.
    pub(crate) fn namespaced_ttl(&self, ttl_ms: Option<u64>) -> u64 {
        ttl_ms.map_or(self.max_namespace_ttl_ms, |ms| {
            ms.min(self.max_namespace_ttl_ms)
        })
    }

    /// Reject a value larger than the limit.
    pub(crate) fn check_value(&self, value: &[u8]) -> Result<(), Error> {
        if value.len() > self.max_value_bytes as usize {
            return Err(Error::ValueTooLarge(format!(
                "value is {} bytes, the limit is {}",
                value.len(),
                self.max_value_bytes
            )));
        }
        Ok(())
    }
}

/// Reject an empty or over-long user id or table name (`what` names it).
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(Error::InvalidName(format!("{what} may not be empty")));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(Error::InvalidName(format!(
            "{what} is {} bytes, the limit is {MAX_NAME_BYTES}",
            name.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_reference() {
        let s = Settings::default();
        s.validate().unwrap();
        assert_eq!(s.key_prefix, "revisbali");
        assert_eq!(s.default_ttl_ms, 300_000);
        assert_eq!(s.max_key_bytes, 1024);
        assert_eq!(s.max_value_bytes, 1 << 20);
    }

    #[test]
    fn ambiguous_layouts_are_rejected() {
        for (prefix, root) in [
            ("a:b", "cache"),
            ("", "cache"),
            ("cache", "cache"),
            ("p", "ca:che"),
            ("p", ""),
            ("p q", "cache"),
        ] {
            let s = Settings {
                key_prefix: prefix.into(),
                namespace_root: root.into(),
                ..Settings::default()
            };
            assert!(
                matches!(s.validate(), Err(Error::InvalidArgument(_))),
                "{prefix:?} {root:?}"
            );
        }
        let s = Settings {
            key_version: 0,
            ..Settings::default()
        };
        assert!(s.validate().is_err());
    }

    #[test]
    fn limits() {
        let s = Settings {
            max_key_bytes: 4,
            max_value_bytes: 2,
            ..Settings::default()
        };
        assert!(s.check_key("abcd").is_ok());
        assert!(matches!(s.check_key("abcde"), Err(Error::KeyTooLong(_))));
        assert!(s.check_value(b"ab").is_ok());
        assert!(matches!(
            s.check_value(b"abc"),
            Err(Error::ValueTooLarge(_))
        ));
        assert!(check_name("user id", "").is_err());
        assert!(check_name("user id", &"x".repeat(257)).is_err());
        assert!(check_name("user id", "é 42:x").is_ok());
    }
}
