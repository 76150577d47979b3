//! [`LoginLimiter`]: how many password guesses an account, an address and a
//! browser may make, in process.
//!
//! Every login attempt first **reserves** a slot ([`LoginLimiter::reserve`]),
//! atomically, before the password is hashed: parallel guesses cannot all
//! pass a check made before any of them failed. A success gives the slot back
//! ([`LoginLimiter::succeeded`]); an attempt that was never checked (the
//! server was too busy to hash) is undone ([`LoginLimiter::release`]).
//!
//! Three limits:
//! - **per account** (by normalised name, whatever the address): the first
//!   [`LoginLimits::account_free`] failures are free, then each further
//!   attempt must wait `account_base × 2^(n − free)`, at most
//!   `account_cap`; the count is forgotten after `account_forget` without a
//!   failure. Names that are not accounts are counted the same way (answers
//!   do not reveal which names exist).
//! - **per address** (an IPv4 address, or an IPv6 /64: one customer's
//!   network): `address_failures` per `window` (sliding).
//! - **per device**: a browser that signed in to the account before carries
//!   a device cookie (random, stored hashed). For that account, such a
//!   browser is exempt from the account backoff and the address limit, and
//!   has its own limit, `device_failures` per `window`. So whoever fails on
//!   `admin` on purpose cannot lock the real admin out of their own browser.
//!
//! Bound for people behind a blocked address: the address limit is a sliding
//! window, and refused attempts are not counted, so a correct password from
//! a blocked address waits at most `window` (5 minutes by default) after the
//! failure that blocked it; with a device cookie it does not wait at all.
//!
//! Memory is bounded: each map holds at most `max_entries` keys; stale
//! entries are swept when it is full, then entries not currently blocking;
//! if it is still full, a new key is refused for `window` (an attacker who
//! fills it needs `max_entries` distinct blocked names or networks).
//!
//! Why not `governor`: it meters a rate (GCRA) per key, while this needs
//! failures counted up front and given back on success, an exponential
//! per-account backoff and exemptions by device; the three small maps below
//! are simpler than bending it.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limits of a [`LoginLimiter`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// The sliding window of the address and device limits (5 min).
    pub window: Duration,
    /// Failures per address (IPv4, or IPv6 /64) per window (20).
    pub address_failures: u32,
    /// Failures per device cookie per window (5).
    pub device_failures: u32,
    /// Failures per account before the backoff starts (5).
    pub account_free: u32,
    /// The first backoff (1 s); it doubles with each further failure.
    pub account_base: Duration,
    /// The longest backoff (15 min).
    pub account_cap: Duration,
    /// An account's failures are forgotten after this long without one (1 h).
    pub account_forget: Duration,
    /// Keys per map at most (50 000).
    pub max_entries: usize,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            window: Duration::from_secs(300),
            address_failures: 20,
            device_failures: 5,
            account_free: 5,
            account_base: Duration::from_secs(1),
            account_cap: Duration::from_secs(900),
            account_forget: Duration::from_secs(3600),
            max_entries: 50_000,
        }
    }
}

/// An account's failures and when it may be tried again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    failures: u32,
    last: Instant,
    next_allowed: Instant,
}

#[derive(Debug, Default)]
struct State {
    accounts: HashMap<String, Backoff>,
    addresses: HashMap<IpAddr, VecDeque<Instant>>,
    devices: HashMap<Vec<u8>, VecDeque<Instant>>,
}

/// A reserved login attempt: counted as a failure until
/// [`LoginLimiter::succeeded`] or [`LoginLimiter::release`].
#[derive(Debug)]
#[must_use = "a reservation is given back with succeeded() or release()"]
pub struct Attempt {
    account: String,
    address: IpAddr,
    device: Option<Vec<u8>>,
    at: Instant,
}

/// Login rate limits per account, address and device (see the module docs).
#[derive(Debug)]
pub struct LoginLimiter {
    limits: LoginLimits,
    state: Mutex<State>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        LoginLimiter::new(LoginLimits::default())
    }
}

/// The unit an address is limited by: an IPv4 address (IPv4-mapped IPv6
/// too), or the /64 of an IPv6 address.
pub fn address_group(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// Drop the times older than `window`; `Some(wait)` if `limit` remain.
fn window_wait(
    times: &mut VecDeque<Instant>,
    now: Instant,
    window: Duration,
    limit: u32,
) -> Option<Duration> {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= window)
    {
        times.pop_front();
    }
    (times.len() >= limit as usize).then(|| {
        window
            .saturating_sub(now.duration_since(times[0]))
            .max(Duration::from_secs(1))
    })
}

fn remove_time(times: &mut VecDeque<Instant>, at: Instant) {
    if let Some(i) = times.iter().position(|t| *t == at) {
        times.remove(i);
    }
}

/// Make room for a new key in `map`: sweep what `stale` says, then what
/// `idle` says; `false` if it is still full.
fn make_room<K: std::hash::Hash + Eq, V>(
    map: &mut HashMap<K, V>,
    max: usize,
    stale: impl Fn(&V) -> bool,
    idle: impl Fn(&V) -> bool,
) -> bool {
    if map.len() < max {
        return true;
    }
    map.retain(|_, v| !stale(v));
    if map.len() >= max {
        map.retain(|_, v| !idle(v));
    }
    map.len() < max
}

impl LoginLimiter {
    /// A limiter with these limits.
    pub fn new(limits: LoginLimits) -> LoginLimiter {
        LoginLimiter {
            limits,
            state: Mutex::new(State::default()),
        }
    }

    /// Its limits.
    pub fn limits(&self) -> &LoginLimits {
        &self.limits
    }

    /// Reserve an attempt on `account` (its normalised name) from `address`;
    /// `trusted_device` is the hash of a device cookie known to belong to
    /// this account. `Err(wait)`: refused, try again after `wait`. Nothing is
    /// counted when refused.
    pub fn reserve(
        &self,
        account: &str,
        address: IpAddr,
        trusted_device: Option<&[u8]>,
    ) -> Result<Attempt, Duration> {
        let l = &self.limits;
        let now = Instant::now();
        let address = address_group(address);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let State {
            accounts,
            addresses,
            devices,
        } = &mut *state;
        let window = l.window;
        let stale_window = |t: &VecDeque<Instant>| t.back().is_none_or(|b| now - *b >= window);
        if let Some(device) = trusted_device {
            if let Some(times) = devices.get_mut(device) {
                if let Some(wait) = window_wait(times, now, window, l.device_failures) {
                    return Err(wait);
                }
            } else if !make_room(devices, l.max_entries, stale_window, |_| false) {
                return Err(window);
            }
            devices.entry(device.to_vec()).or_default().push_back(now);
            return Ok(Attempt {
                account: account.to_owned(),
                address,
                device: Some(device.to_vec()),
                at: now,
            });
        }
        // Check both limits before counting either.
        if let Some(times) = addresses.get_mut(&address) {
            if let Some(wait) = window_wait(times, now, window, l.address_failures) {
                return Err(wait);
            }
        } else if !make_room(addresses, l.max_entries, stale_window, |t| {
            (t.len() as u32) < l.address_failures
        }) {
            return Err(window);
        }
        match accounts.get_mut(account) {
            Some(b) if now.duration_since(b.last) >= l.account_forget => {
                b.failures = 0;
                b.next_allowed = now;
            }
            Some(b) if now < b.next_allowed => return Err(b.next_allowed - now),
            Some(_) => {}
            None => {
                let forget = l.account_forget;
                if !make_room(
                    accounts,
                    l.max_entries,
                    |b| now.duration_since(b.last) >= forget,
                    |b| b.next_allowed <= now,
                ) {
                    return Err(window);
                }
            }
        }
        let b = accounts.entry(account.to_owned()).or_insert(Backoff {
            failures: 0,
            last: now,
            next_allowed: now,
        });
        b.failures += 1;
        b.last = now;
        if b.failures >= l.account_free {
            let doublings = (b.failures - l.account_free).min(30);
            b.next_allowed = now
                + l.account_base
                    .saturating_mul(1 << doublings)
                    .min(l.account_cap);
        }
        addresses.entry(address).or_default().push_back(now);
        Ok(Attempt {
            account: account.to_owned(),
            address,
            device: None,
            at: now,
        })
    }

    /// The password was right: the attempt is not a failure. Without a
    /// device exemption, the account's count starts again (the person knew
    /// the password); with one, only the device's slot is given back, so an
    /// attacker's count on the account stands.
    pub fn succeeded(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &attempt.device {
            Some(device) => {
                if let Some(times) = state.devices.get_mut(device) {
                    remove_time(times, attempt.at);
                }
            }
            None => {
                state.accounts.remove(&attempt.account);
                if let Some(times) = state.addresses.get_mut(&attempt.address) {
                    remove_time(times, attempt.at);
                }
            }
        }
    }

    /// The password was never checked (the server was busy): undo the
    /// reservation.
    pub fn release(&self, attempt: Attempt) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &attempt.device {
            Some(device) => {
                if let Some(times) = state.devices.get_mut(device) {
                    remove_time(times, attempt.at);
                }
            }
            None => {
                let free = self.limits.account_free;
                if let Some(b) = state.accounts.get_mut(&attempt.account) {
                    b.failures = b.failures.saturating_sub(1);
                    if b.failures < free {
                        b.next_allowed = Instant::now();
                    }
                }
                if let Some(times) = state.addresses.get_mut(&attempt.address) {
                    remove_time(times, attempt.at);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_account_backs_off_after_the_free_failures_whatever_the_address() {
        let l = LoginLimiter::new(LoginLimits {
            account_free: 3,
            ..LoginLimits::default()
        });
        for i in 0..3 {
            let _ = l
                .reserve("alice", ip(&format!("10.0.0.{i}")), None)
                .unwrap();
        }
        let wait = l.reserve("alice", ip("10.9.9.9"), None).unwrap_err();
        assert!(wait <= Duration::from_secs(1) && wait > Duration::ZERO);
        assert!(l.reserve("bob", ip("10.9.9.9"), None).is_ok());
    }

    #[test]
    fn a_slash_64_is_one_address_and_a_success_gives_the_slot_back() {
        let l = LoginLimiter::new(LoginLimits {
            address_failures: 3,
            ..LoginLimits::default()
        });
        for i in 0..2 {
            let _ = l
                .reserve(&format!("u{i}"), ip(&format!("2001:db8::{i}")), None)
                .unwrap();
        }
        let ok = l.reserve("u2", ip("2001:db8::ffff:1"), None).unwrap();
        l.succeeded(ok);
        let _ = l.reserve("u3", ip("2001:db8::5"), None).unwrap();
        assert!(l.reserve("u4", ip("2001:db8::6"), None).is_err());
        assert!(l.reserve("u4", ip("2001:db8:0:1::6"), None).is_ok());
        assert_eq!(
            address_group(ip("::ffff:10.1.2.3")),
            ip("10.1.2.3"),
            "IPv4-mapped is IPv4"
        );
    }

    #[test]
    fn a_trusted_device_skips_the_account_backoff_but_has_its_own_limit() {
        let l = LoginLimiter::new(LoginLimits {
            account_free: 2,
            device_failures: 2,
            ..LoginLimits::default()
        });
        for _ in 0..2 {
            let _ = l.reserve("admin", ip("10.0.0.1"), None).unwrap();
        }
        assert!(l.reserve("admin", ip("10.0.0.1"), None).is_err());
        let a = l.reserve("admin", ip("10.0.0.1"), Some(b"dev")).unwrap();
        l.succeeded(a);
        assert!(
            l.reserve("admin", ip("10.0.0.1"), None).is_err(),
            "a device's success does not clear the attacker's count"
        );
        for _ in 0..2 {
            let _ = l.reserve("admin", ip("10.0.0.1"), Some(b"dev")).unwrap();
        }
        assert!(l.reserve("admin", ip("10.0.0.1"), Some(b"dev")).is_err());
        let r = l.reserve("admin", ip("10.0.0.1"), Some(b"dev2")).unwrap();
        l.release(r);
    }

    #[test]
    fn memory_is_bounded() {
        let l = LoginLimiter::new(LoginLimits {
            max_entries: 10,
            address_failures: 1,
            ..LoginLimits::default()
        });
        for i in 0..50 {
            let _ = l.reserve(&format!("n{i}"), ip(&format!("10.0.1.{i}")), None);
        }
        let s = l.state.lock().unwrap();
        assert!(s.accounts.len() <= 10 && s.addresses.len() <= 10);
    }
}
