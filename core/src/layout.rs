//! Where every key lives in the store.
//!
//! | what | key |
//! |---|---|
//! | global key | `{prefix}:{version}:{key}` (`revisbali:1:invoice_seq:2026`) |
//! | namespace entry | `{root}:{user}:v{n}:{kind}:{key}` (`cache:42:v17:data:profile`) |
//! | namespace version | `{root}_user_version:{user}` |
//! | table version | `{root}_table_version:{table}` |
//! | namespace floor | `{root}_namespace_floor` (every version at or below it is dead) |
//! | version clock | `{root}_version_clock` (source of every version number) |
//!
//! User ids and table names are percent-encoded (every byte outside
//! `A-Z a-z 0-9 _ - .` becomes `%XX`), so an encoded id never contains `:`
//! and plain integer ids read exactly as in the reference system. The key is
//! the tail of the string, after a fixed number of `:`-separated segments, so
//! it may contain anything. Together this makes the layout injective: no two
//! distinct (user, version, kind, key) map to the same string
//! ([`Layout::parse_entry_key`] recovers them).

use std::borrow::Cow;

use crate::settings::Settings;

/// The two kinds of namespace entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Plain cache entries (`set`, `get`, ...).
    Data,
    /// Cached query results (key = hash of query text and parameters).
    Cacheops,
}

impl Kind {
    /// The segment written in the key.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Data => "data",
            Kind::Cacheops => "cacheops",
        }
    }

    fn parse(s: &str) -> Option<Kind> {
        match s {
            "data" => Some(Kind::Data),
            "cacheops" => Some(Kind::Cacheops),
            _ => None,
        }
    }
}

/// The key layout derived from [`Settings`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `{prefix}:{version}:`
    global_prefix: String,
    root: String,
    /// `{root}_namespace_floor`, read with every namespaced get: built once.
    floor: String,
    hash_tags: bool,
}

/// Append the decimal digits of `n` (what `format!("{n}")` writes, without
/// the formatting machinery: key building is on every call's path).
pub(crate) fn push_u64(s: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        s.push(char::from(d));
    }
}

/// The keys of one user's namespace, encoded once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserKeys {
    /// `{root}_user_version:{user}`
    pub version_key: String,
    /// `{root}:{user}:v`: the entry key up to the version number.
    pub entry_prefix: String,
}

impl UserKeys {
    /// The rest of an entry key after the version number: `:{kind}:{key}`.
    pub fn entry_suffix(kind: Kind, key: &str) -> String {
        let mut s = String::with_capacity(key.len() + 10);
        s.push(':');
        s.push_str(kind.as_str());
        s.push(':');
        s.push_str(key);
        s
    }

    /// `{root}:{user}:v{version}:bytes`: the bytes written into that version,
    /// for the namespace quota. (No entry key ends so: theirs go on with
    /// `:{kind}:`.)
    pub fn counter_key(&self, version: u64) -> String {
        format!("{}{}:bytes", self.entry_prefix, version)
    }

    /// A `SCAN MATCH` pattern for every key of this user's entries, of
    /// every version, and their byte counters: `{root}:{user}:v*` (glob
    /// characters escaped). The version key is [`UserKeys::version_key`].
    /// For maintenance only (`purge`): SCAN is never on a request path.
    pub fn scan_pattern(&self) -> String {
        let mut s = glob_escape(&self.entry_prefix);
        s.push('*');
        s
    }

    /// The full key of an entry under `version`:
    /// `{root}:{user}:v{version}:{kind}:{key}`.
    pub fn entry_key(&self, version: u64, kind: Kind, key: &str) -> String {
        let kind = kind.as_str();
        let mut s = String::with_capacity(self.entry_prefix.len() + 22 + kind.len() + key.len());
        s.push_str(&self.entry_prefix);
        push_u64(&mut s, version);
        s.push(':');
        s.push_str(kind);
        s.push(':');
        s.push_str(key);
        s
    }
}

/// A namespace entry key taken apart by [`Layout::parse_entry_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryKey {
    /// The user id, decoded.
    pub user: String,
    /// The namespace version.
    pub version: u64,
    /// The kind of entry.
    pub kind: Kind,
    /// The application's key.
    pub key: String,
}

/// What a key in the store is to nscache, by its name alone
/// ([`Layout::classify`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyClass {
    /// A namespace entry.
    Entry(EntryKey),
    /// The bytes written into one version of a user's namespace (quota).
    Counter {
        /// The user id, decoded.
        user: String,
        /// The namespace version.
        version: u64,
    },
    /// A user's namespace version.
    UserVersion(String),
    /// A table's version (cached queries).
    TableVersion(String),
    /// The namespace floor.
    Floor,
    /// The version clock.
    Clock,
    /// A global key; holds the application's key (`invoice_seq:2026`).
    Global(String),
}

/// Escape the characters `SCAN MATCH` / `KEYS` treat as a pattern
/// (`* ? [ ] \`), so that `s` matches only itself.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl Layout {
    /// The layout for validated settings.
    pub fn new(settings: &Settings) -> Layout {
        Layout {
            global_prefix: format!("{}:{}:", settings.key_prefix, settings.key_version),
            root: settings.namespace_root.clone(),
            floor: format!("{}_namespace_floor", settings.namespace_root),
            hash_tags: settings.cluster_hash_tags,
        }
    }

    /// True when user ids are wrapped in Redis Cluster hash tags.
    pub fn hash_tags(&self) -> bool {
        self.hash_tags
    }

    /// `{prefix}:{version}:{key}`, Django's `make_key`.
    pub fn global_key(&self, key: &str) -> String {
        let mut s = String::with_capacity(self.global_prefix.len() + key.len());
        s.push_str(&self.global_prefix);
        s.push_str(key);
        s
    }

    /// Append `encoded` to `s`, in braces when keys carry hash tags.
    fn push_tagged(&self, s: &mut String, encoded: &str) {
        if self.hash_tags {
            s.push('{');
            s.push_str(encoded);
            s.push('}');
        } else {
            s.push_str(encoded);
        }
    }

    /// The keys of `user`'s namespace.
    pub fn user(&self, user: &str) -> UserKeys {
        const VERSION: &str = "_user_version:";
        let id = encode_name(user);
        let mut version_key = String::with_capacity(self.root.len() + VERSION.len() + id.len() + 2);
        version_key.push_str(&self.root);
        version_key.push_str(VERSION);
        self.push_tagged(&mut version_key, &id);
        let mut entry_prefix = String::with_capacity(self.root.len() + id.len() + 5);
        entry_prefix.push_str(&self.root);
        entry_prefix.push(':');
        self.push_tagged(&mut entry_prefix, &id);
        entry_prefix.push_str(":v");
        UserKeys {
            version_key,
            entry_prefix,
        }
    }

    /// The version key of a table's cached queries.
    pub fn table_version_key(&self, table: &str) -> String {
        format!("{}_table_version:{}", self.root, encode_name(table))
    }

    /// The namespace floor: every namespace version at or below it is dead.
    pub fn floor_key(&self) -> String {
        self.floor.clone()
    }

    /// The version clock: every version number is drawn from it.
    pub fn clock_key(&self) -> String {
        format!("{}_version_clock", self.root)
    }

    /// A `SCAN MATCH` pattern for every global key: `{prefix}:{version}:*`
    /// (glob characters escaped). For maintenance only.
    pub fn global_scan_pattern(&self) -> String {
        let mut s = glob_escape(&self.global_prefix);
        s.push('*');
        s
    }

    /// `SCAN MATCH` patterns that together cover every key nscache keeps
    /// under its namespace root (entries, counters, user and table versions,
    /// the floor and the clock), global keys excepted. For maintenance only.
    pub fn namespace_scan_patterns(&self) -> Vec<String> {
        let root = glob_escape(&self.root);
        vec![format!("{root}:*"), format!("{root}_*")]
    }

    /// What `key` is to nscache; `None` for a key nscache never writes with
    /// these settings.
    pub fn classify(&self, key: &str) -> Option<KeyClass> {
        if let Some(entry) = self.parse_entry_key(key) {
            return Some(KeyClass::Entry(entry));
        }
        if let Some(rest) = key
            .strip_prefix(self.root.as_str())
            .and_then(|r| r.strip_prefix('_'))
        {
            if let Some(id) = rest.strip_prefix("user_version:") {
                return self
                    .untag(id)
                    .and_then(decode_name)
                    .map(KeyClass::UserVersion);
            }
            if let Some(table) = rest.strip_prefix("table_version:") {
                return decode_name(table).map(KeyClass::TableVersion);
            }
            return match rest {
                "namespace_floor" => Some(KeyClass::Floor),
                "version_clock" => Some(KeyClass::Clock),
                _ => None,
            };
        }
        if let Some(rest) = key
            .strip_prefix(self.root.as_str())
            .and_then(|r| r.strip_prefix(':'))
            && let Some(rest) = rest.strip_suffix(":bytes")
            && let Some((id, version)) = rest.split_once(":v")
            && !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit())
            && !(version.len() > 1 && version.starts_with('0'))
            && let (Some(user), Ok(version)) =
                (self.untag(id).and_then(decode_name), version.parse())
        {
            return Some(KeyClass::Counter { user, version });
        }
        key.strip_prefix(self.global_prefix.as_str())
            .map(|k| KeyClass::Global(k.to_owned()))
    }

    fn untag<'a>(&self, id: &'a str) -> Option<&'a str> {
        if self.hash_tags {
            id.strip_prefix('{')?.strip_suffix('}')
        } else {
            Some(id)
        }
    }

    /// Take a namespace entry key apart; `None` if it is not one.
    pub fn parse_entry_key(&self, s: &str) -> Option<EntryKey> {
        let rest = s.strip_prefix(self.root.as_str())?.strip_prefix(':')?;
        let (id, rest) = rest.split_once(':')?;
        let id = if self.hash_tags {
            id.strip_prefix('{')?.strip_suffix('}')?
        } else {
            id
        };
        let user = decode_name(id)?;
        let rest = rest.strip_prefix('v')?;
        let (version, rest) = rest.split_once(':')?;
        if version.is_empty()
            || !version.bytes().all(|b| b.is_ascii_digit())
            || (version.len() > 1 && version.starts_with('0'))
        {
            return None;
        }
        let version = version.parse().ok()?;
        let (kind, key) = rest.split_once(':')?;
        Some(EntryKey {
            user,
            version,
            kind: Kind::parse(kind)?,
            key: key.to_owned(),
        })
    }
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.'
}

/// Percent-encode a user id or table name: every byte outside
/// `A-Z a-z 0-9 _ - .` becomes `%XX` (upper-case hex). `42` stays `42`.
pub fn encode_name(name: &str) -> Cow<'_, str> {
    if name.bytes().all(is_plain) {
        return Cow::Borrowed(name);
    }
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(name.len() * 3);
    for b in name.bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    Cow::Owned(out)
}

/// The inverse of [`encode_name`]; `None` for a string `encode_name` never produces.
pub fn decode_name(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = |c: u8| match c {
                    b'0'..=b'9' => Some(c - b'0'),
                    b'A'..=b'F' => Some(c - b'A' + 10),
                    _ => None,
                };
                let hi = hex(*bytes.get(i + 1)?)?;
                let lo = hex(*bytes.get(i + 2)?)?;
                let b = hi << 4 | lo;
                if is_plain(b) {
                    return None; // encode_name never escapes a plain byte
                }
                out.push(b);
                i += 3;
            }
            b if is_plain(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout() -> Layout {
        Layout::new(&Settings::default())
    }

    #[test]
    fn digits_are_written_as_format_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            17,
            99,
            100,
            4_294_967_296,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut s = String::from("v");
            push_u64(&mut s, n);
            assert_eq!(s, format!("v{n}"));
        }
    }

    #[test]
    fn reference_layout() {
        let l = layout();
        assert_eq!(
            l.global_key("invoice_seq:2026"),
            "revisbali:1:invoice_seq:2026"
        );
        let u = l.user("42");
        assert_eq!(u.version_key, "cache_user_version:42");
        assert_eq!(
            u.entry_key(3, Kind::Data, "profile"),
            "cache:42:v3:data:profile"
        );
        assert_eq!(
            u.entry_key(3, Kind::Cacheops, "ab12"),
            "cache:42:v3:cacheops:ab12"
        );
        assert_eq!(
            l.table_version_key("invoices"),
            "cache_table_version:invoices"
        );
        assert_eq!(l.floor_key(), "cache_namespace_floor");
    }

    #[test]
    fn odd_ids_are_encoded() {
        let l = layout();
        assert_eq!(l.user("a:b").version_key, "cache_user_version:a%3Ab");
        assert_eq!(l.user("50%").entry_prefix, "cache:50%25:v");
        assert_eq!(l.user("é").entry_prefix, "cache:%C3%A9:v");
        assert_eq!(l.user("{x}").entry_prefix, "cache:%7Bx%7D:v");
    }

    #[test]
    fn cluster_hash_tags_keep_a_user_in_one_slot() {
        let l = Layout::new(&Settings {
            cluster_hash_tags: true,
            ..Settings::default()
        });
        let u = l.user("42");
        assert_eq!(u.version_key, "cache_user_version:{42}");
        assert_eq!(u.entry_key(7, Kind::Data, "k"), "cache:{42}:v7:data:k");
        let parsed = l.parse_entry_key("cache:{42}:v7:data:k").unwrap();
        assert_eq!(parsed.user, "42");
    }

    #[test]
    fn every_key_written_is_classified_back() {
        let l = layout();
        let u = l.user("a:b*");
        assert_eq!(
            l.classify(&u.version_key),
            Some(KeyClass::UserVersion("a:b*".into()))
        );
        assert_eq!(
            l.classify(&u.counter_key(12)),
            Some(KeyClass::Counter {
                user: "a:b*".into(),
                version: 12
            })
        );
        assert!(matches!(
            l.classify(&u.entry_key(12, Kind::Cacheops, "q")),
            Some(KeyClass::Entry(EntryKey {
                kind: Kind::Cacheops,
                version: 12,
                ..
            }))
        ));
        assert_eq!(
            l.classify(&l.table_version_key("invoices")),
            Some(KeyClass::TableVersion("invoices".into()))
        );
        assert_eq!(l.classify(&l.floor_key()), Some(KeyClass::Floor));
        assert_eq!(l.classify(&l.clock_key()), Some(KeyClass::Clock));
        assert_eq!(
            l.classify("revisbali:1:cron:full_backup:run_lock"),
            Some(KeyClass::Global("cron:full_backup:run_lock".into()))
        );
        for foreign in [
            "revisbali:2:x",
            "q:abc",
            "conj:invoices:x",
            "cache:42:v1:bytesx",
        ] {
            assert_eq!(l.classify(foreign), None, "{foreign}");
        }
        let tagged = Layout::new(&Settings {
            cluster_hash_tags: true,
            ..Settings::default()
        });
        assert_eq!(
            tagged.classify("cache_user_version:{42}"),
            Some(KeyClass::UserVersion("42".into()))
        );
    }

    #[test]
    fn scan_patterns_match_only_their_own() {
        let l = layout();
        assert_eq!(l.user("42").scan_pattern(), "cache:42:v*");
        assert_eq!(l.user("4*2").scan_pattern(), "cache:4%2A2:v*");
        assert_eq!(l.global_scan_pattern(), "revisbali:1:*");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        let odd = Layout::new(&Settings {
            key_prefix: "re*is".into(),
            ..Settings::default()
        });
        assert_eq!(odd.global_scan_pattern(), "re\\*is:1:*");
        assert_eq!(l.namespace_scan_patterns(), ["cache:*", "cache_*"]);
    }

    #[test]
    fn parse_rejects_what_encode_never_writes() {
        let l = layout();
        for s in [
            "cache:42:v:data:k",
            "cache:42:v01:data:k",
            "cache:4%3a:v1:data:k",
            "cache:4%41:v1:data:k",
            "cache:42:v1:other:k",
            "x:42:v1:data:k",
            "cache:4 2:v1:data:k",
        ] {
            assert_eq!(l.parse_entry_key(s), None, "{s}");
        }
        assert_eq!(
            l.parse_entry_key("cache:42:v1:data:a:b:c").unwrap(),
            EntryKey {
                user: "42".into(),
                version: 1,
                kind: Kind::Data,
                key: "a:b:c".into()
            }
        );
    }
}
