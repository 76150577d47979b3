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
