//! Expiry rules: Django's `timeout` semantics in milliseconds.

/// How long an entry written by `set`, `add` or `touch` lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Expiry {
    /// The configured default (300 s unless configured otherwise).
    #[default]
    Default,
    /// Never expires (Django's `timeout=None`).
    Never,
    /// Expires after this many milliseconds; `0` expires at once.
    AfterMs(u64),
}

/// What remains of a key's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeToLive {
    /// The key does not exist.
    Missing,
    /// The key exists and never expires.
    Forever,
    /// The key expires in this many milliseconds.
    RemainingMs(u64),
}

/// What a write does with the store once its expiry is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lifetime {
    /// Store, with this expiry in milliseconds (`None`: never expires).
    Keep(Option<u64>),
    /// Expire at once: remove the key instead of storing it.
    Remove,
}

impl Expiry {
    /// Resolve against the configured default TTL.
    pub(crate) fn lifetime(self, default_ttl_ms: u64) -> Lifetime {
        match self {
            Expiry::Never => Lifetime::Keep(None),
            Expiry::Default if default_ttl_ms == 0 => Lifetime::Remove,
            Expiry::Default => Lifetime::Keep(Some(default_ttl_ms)),
            Expiry::AfterMs(0) => Lifetime::Remove,
            Expiry::AfterMs(ms) => Lifetime::Keep(Some(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn django_timeout_rules() {
        assert_eq!(
            Expiry::Default.lifetime(300_000),
            Lifetime::Keep(Some(300_000))
        );
        assert_eq!(Expiry::Never.lifetime(300_000), Lifetime::Keep(None));
        assert_eq!(Expiry::AfterMs(0).lifetime(300_000), Lifetime::Remove);
        assert_eq!(
            Expiry::AfterMs(1500).lifetime(300_000),
            Lifetime::Keep(Some(1500))
        );
        // A default TTL of 0 means "do not cache", as Django's TIMEOUT=0.
        assert_eq!(Expiry::Default.lifetime(0), Lifetime::Remove);
    }
}
