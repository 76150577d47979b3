//! Namespace and table versions: liveness, seeding, bumping.
//!
//! Every version number is drawn from one counter, the *version clock*
//! (`{root}_version_clock`), so versions are totally ordered across users,
//! tables and the namespace floor. A user namespace is live when its version
//! is above the *namespace floor* (`{root}_namespace_floor`); `invalidate-all`
//! raises the floor above every version drawn so far, in one write.
//!
//! Lost keys are handled so that old entries never come back:
//! - a missing user or table version is re-created with a fresh number from
//!   the clock, never one used before;
//! - a missing floor could hide dead namespaces, so it is re-created with a
//!   fresh number too, which kills every namespace (a full invalidation: safe,
//!   at the cost of a cold cache);
//! - a missing clock is re-seeded from the store's own clock in microseconds.
//!   The counter starts from that clock and is advanced only by version
//!   changes, which are far rarer than one per microsecond (each is a store
//!   round trip), so it never runs ahead of the clock and a re-seed is always
//!   above every number drawn before.

use crate::error::StoreError;
use crate::host::Host;
use crate::layout::{Layout, UserKeys};

/// The key layout this crate reads and writes.
///
/// **The layout's marker is the namespace floor's value**, which every
/// namespaced operation reads anyway (no extra round trip). Layout 1, this
/// one, writes it as a bare decimal number (as every deployment so far has).
/// A later layout must write `L{layout}:{number}` there before writing any
/// key of its own; this crate then treats the store as another layout's:
/// namespaced reads miss (a floor it cannot read makes no version live),
/// and anything that would write a namespace version or the floor fails
/// with `store-error.other` (`error.internal`) naming the layout, instead of
/// "repairing" the floor as it does a lost or foreign one. So during a
/// rolling upgrade old and new processes on one store never misread each
/// other's entries. A layout change also bumps the WIT package's minor
/// version (see the README's versioning policy).
pub const LAYOUT: u32 = 1;

/// The layout a floor value declares with the `L{layout}:` marker, if it
/// carries one (layout 1 carries none).
pub(crate) fn marked_layout(raw: Option<&[u8]>) -> Option<u32> {
    let rest = raw?.strip_prefix(b"L")?;
    let colon = rest.iter().position(|&b| b == b':')?;
    std::str::from_utf8(&rest[..colon]).ok()?.parse().ok()
}

/// The error for a floor that belongs to another layout.
fn other_layout(key: &str, layout: u32) -> StoreError {
    StoreError::Other(format!(
        "the store holds nscache key layout {layout} (its marker is in `{key}`); this component \
         reads and writes layout {LAYOUT} and leaves that store alone: run one layout per store \
         (or finish the upgrade)"
    ))
}

/// A namespace's raw version and the raw floor, as read.
type RawState = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The most bytes a read of `keys` version keys may find: a version is at
/// most 20 decimal digits, so anything near this is a foreign value.
pub(crate) fn read_budget(keys: usize) -> u64 {
    64 * keys as u64
}

/// How many times a compare-and-swap step is retried under contention before
/// giving up with an error.
const MAX_ATTEMPTS: usize = 64;

/// Parse a version as written by this crate: canonical decimal, no sign, no
/// leading zero. Anything else (a foreign value) counts as missing, so it is
/// replaced by a fresh version rather than trusted.
pub(crate) fn parse(raw: Option<&[u8]>) -> Option<u64> {
    let raw = raw?;
    if raw.is_empty()
        || raw.len() > 20
        || !raw.iter().all(u8::is_ascii_digit)
        || (raw.len() > 1 && raw[0] == b'0')
    {
        return None;
    }
    raw.iter()
        .try_fold(0u64, |n, &d| {
            n.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .filter(|&v| v > 0)
}

/// The live version given the raw version and floor values, if any.
pub(crate) fn live(version: Option<&[u8]>, floor: Option<&[u8]>) -> Option<u64> {
    let floor = parse(floor)?;
    parse(version).filter(|&v| v > floor)
}

fn contention(what: &str) -> StoreError {
    StoreError::Other(format!(
        "{what}: gave up after {MAX_ATTEMPTS} contended attempts"
    ))
}

/// Version operations over a host and a layout.
pub(crate) struct Versions<'a, H: Host> {
    pub host: &'a H,
    pub layout: &'a Layout,
}

impl<H: Host> Versions<'_, H> {
    /// A version number never drawn before, at least `min`.
    pub fn fresh(&self, min: u64) -> Result<u64, StoreError> {
        let clock = self.layout.clock_key();
        for _ in 0..MAX_ATTEMPTS {
            let current = match self.host.increment(&clock, 1) {
                Ok(Some(n)) if n > 0 && n as u64 >= min => return Ok(n as u64),
                // Below `min` (the floor or a table version was set by hand)
                // or negative: move the clock up to `min`.
                Ok(Some(n)) => Some(n.to_string().into_bytes()),
                Ok(None) => None,
                Err(StoreError::NotAnInteger) => self.host.get(&clock)?,
                Err(e) => return Err(e),
            };
            let seed = self.host.now_micros()?.max(min).max(1);
            if self
                .host
                .swap_if(&clock, current.as_deref(), seed.to_string().as_bytes())?
            {
                return Ok(seed);
            }
        }
        Err(contention("version clock"))
    }

    /// Raise the floor above every version drawn so far (`invalidate-all`).
    /// `seen` is the raw floor last read. Returns the new floor.
    pub fn raise_floor(&self, mut seen: Option<Vec<u8>>) -> Result<u64, StoreError> {
        let key = self.layout.floor_key();
        for _ in 0..MAX_ATTEMPTS {
            if let Some(layout) = marked_layout(seen.as_deref()) {
                return Err(other_layout(&key, layout));
            }
            let floor = self.fresh(parse(seen.as_deref()).map_or(1, |f| f + 1))?;
            if self
                .host
                .swap_if(&key, seen.as_deref(), floor.to_string().as_bytes())?
            {
                return Ok(floor);
            }
            let now = self.host.get(&key)?;
            if let Some(new) = parse(now.as_deref())
                && new >= floor
            {
                // Raised concurrently from a number drawn after ours, so after
                // we started: our invalidation is part of that one.
                return Ok(new);
            }
            seen = now;
        }
        Err(contention("namespace floor"))
    }

    /// Re-create a floor that is missing or unreadable (`seen`): every version
    /// drawn before must become dead, so the new floor is a fresh number.
    /// If another client re-created it first, its floor was drawn after the
    /// loss too, which is all that is needed.
    /// A floor marked with another layout is never touched.
    fn repair_floor(&self, seen: Option<Vec<u8>>) -> Result<(), StoreError> {
        if let Some(layout) = marked_layout(seen.as_deref()) {
            return Err(other_layout(&self.layout.floor_key(), layout));
        }
        let floor = self.fresh(1)?;
        self.host.swap_if(
            &self.layout.floor_key(),
            seen.as_deref(),
            floor.to_string().as_bytes(),
        )?;
        Ok(())
    }

    /// The raw version and floor of a namespace, in one round trip.
    fn read_state(&self, keys: &UserKeys) -> Result<RawState, StoreError> {
        let mut vals = self.host.get_many(
            &[keys.version_key.clone(), self.layout.floor_key()],
            read_budget(2),
        )?;
        if vals.len() != 2 {
            return Err(StoreError::Other(format!(
                "get-many returned {} values for 2 keys",
                vals.len()
            )));
        }
        let floor = vals.pop().flatten();
        let version = vals.pop().flatten();
        Ok((version, floor))
    }

    /// The live version of a namespace, or `None` if it holds nothing.
    pub fn current(&self, keys: &UserKeys) -> Result<Option<u64>, StoreError> {
        let (version, floor) = self.read_state(keys)?;
        Ok(live(version.as_deref(), floor.as_deref()))
    }

    /// The live version of a namespace, creating one if needed (before a write).
    pub fn ensure_live(&self, keys: &UserKeys) -> Result<u64, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let (version, floor) = self.read_state(keys)?;
            let Some(floor_n) = parse(floor.as_deref()) else {
                self.repair_floor(floor)?;
                continue;
            };
            if let Some(v) = live(version.as_deref(), floor.as_deref()) {
                return Ok(v);
            }
            let fresh = self.fresh(floor_n + 1)?;
            if self.host.swap_if(
                &keys.version_key,
                version.as_deref(),
                fresh.to_string().as_bytes(),
            )? {
                return Ok(fresh);
            }
        }
        Err(contention("namespace version"))
    }

    /// Move a namespace to a fresh version. Returns the new version.
    pub fn bump_user(&self, keys: &UserKeys) -> Result<u64, StoreError> {
        let mut first_seen: Option<Option<Vec<u8>>> = None;
        for _ in 0..MAX_ATTEMPTS {
            let (version, floor) = self.read_state(keys)?;
            let Some(floor_n) = parse(floor.as_deref()) else {
                // A lost floor: re-creating it kills every namespace, this one too.
                self.repair_floor(floor)?;
                continue;
            };
            match &first_seen {
                None => first_seen = Some(version.clone()),
                Some(seen) if *seen != version => {
                    // Changed since we started, to a fresh number drawn after
                    // our first read: every entry we had to hide is hidden.
                    if let Some(v) = live(version.as_deref(), floor.as_deref()) {
                        return Ok(v);
                    }
                }
                Some(_) => {}
            }
            // On Redis Cluster the clock lives on another node than the
            // version: a failover there may set it back, so a new version is
            // also drawn above the one it replaces (versions of one namespace
            // only grow). On one server the clock is always above it anyway.
            let min = if self.layout.hash_tags() {
                floor_n.max(parse(version.as_deref()).unwrap_or(0)) + 1
            } else {
                floor_n + 1
            };
            let fresh = self.fresh(min)?;
            if self.host.swap_if(
                &keys.version_key,
                version.as_deref(),
                fresh.to_string().as_bytes(),
            )? {
                return Ok(fresh);
            }
        }
        Err(contention("namespace version"))
    }

    /// Move a table to a fresh version. Returns the new version.
    pub fn bump_table(&self, key: &str) -> Result<u64, StoreError> {
        let first = self.host.get(key)?;
        let mut seen = first.clone();
        for _ in 0..MAX_ATTEMPTS {
            let fresh = self.fresh(parse(seen.as_deref()).map_or(1, |v| v + 1))?;
            if self
                .host
                .swap_if(key, seen.as_deref(), fresh.to_string().as_bytes())?
            {
                return Ok(fresh);
            }
            seen = self.host.get(key)?;
            if seen != first
                && let Some(v) = parse(seen.as_deref())
            {
                return Ok(v);
            }
        }
        Err(contention("table version"))
    }

    /// The version of a table, creating one if needed (before a write).
    pub fn ensure_table(&self, key: &str) -> Result<u64, StoreError> {
        for _ in 0..MAX_ATTEMPTS {
            let raw = self.host.get(key)?;
            if let Some(v) = parse(raw.as_deref()) {
                return Ok(v);
            }
            let fresh = self.fresh(1)?;
            if self
                .host
                .swap_if(key, raw.as_deref(), fresh.to_string().as_bytes())?
            {
                return Ok(fresh);
            }
        }
        Err(contention("table version"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_is_strict() {
        assert_eq!(parse(Some(b"17")), Some(17));
        for bad in [
            &b""[..],
            b"017",
            b"-1",
            b"0",
            b" 1",
            b"1.0",
            b"99999999999999999999999",
        ] {
            assert_eq!(parse(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(parse(None), None);
    }

    #[test]
    fn liveness_needs_a_floor_below_the_version() {
        assert_eq!(live(Some(b"5"), Some(b"4")), Some(5));
        assert_eq!(live(Some(b"4"), Some(b"4")), None);
        assert_eq!(live(Some(b"5"), None), None);
        assert_eq!(live(None, Some(b"4")), None);
    }
}

#[cfg(test)]
mod layout_marker_tests {
    use super::*;

    #[test]
    fn only_an_l_marker_declares_another_layout() {
        assert_eq!(marked_layout(Some(b"L2:1767225600000005")), Some(2));
        assert_eq!(marked_layout(Some(b"L17:1")), Some(17));
        // Layout 1's floor is a bare number; junk is a foreign value, not a layout.
        for raw in [&b"1767225600000000"[..], b"junk", b"L:1", b"Lx:1", b"L2"] {
            assert_eq!(marked_layout(Some(raw)), None, "{raw:?}");
        }
        assert_eq!(marked_layout(None), None);
    }
}
