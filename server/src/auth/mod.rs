//! Credentials: password hashes (argon2), random secrets for sessions, CSRF
//! and API tokens (stored as SHA-256, shown once), and the login rate limit.

mod limiter;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

pub use self::limiter::{Attempt, LoginLimiter, LoginLimits, address_group};

/// How long a login session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// The prefix of API tokens, so that they are recognisable in logs and secret scanners.
pub const TOKEN_PREFIX: &str = "nsc_";

/// `bytes` random bytes from the OS, base64url-encoded.
pub fn random_secret(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the OS random source works");
    URL_SAFE_NO_PAD.encode(&buf)
}

/// A new API token (shown once, stored hashed).
pub fn new_api_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_secret(32))
}

/// SHA-256 of a high-entropy secret (session or API token). A fast hash is
/// right here: the secrets are random, not guessable passwords.
pub fn secret_hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// Hash a password with argon2id (default parameters), as a PHC string.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| e.to_string())?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Check a password against a PHC string (constant time in the hash).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Argon2 verifications in flight: each needs ~19 MiB of working memory,
/// so at most `running` run at once (one per core, on the blocking pool)
/// and at most `waiting` more wait; beyond that a login is refused as busy
/// at once. Each running check uses one of `running` working buffers,
/// allocated once and reused: were each to allocate its own, the C
/// allocator would keep a freed 19 MiB in each of its per-thread arenas
/// (measured: +191 MiB of peak RSS for 100 parallel logins with 2 running).
#[derive(Debug)]
pub struct PasswordChecks {
    permits: Arc<tokio::sync::Semaphore>,
    buffers: Arc<Mutex<Vec<Vec<argon2::Block>>>>,
    admitted: AtomicUsize,
    capacity: usize,
}

/// [`PasswordChecks::verify`] refused: too many logins are being checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many sign-ins are being checked right now")]
pub struct Busy;

struct Admitted<'a>(&'a AtomicUsize);

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The most working memory a stored hash may ask for (256 MiB, in 1 KiB
/// blocks); a hash asking more does not verify.
const MAX_BLOCKS: usize = 256 * 1024;

/// Check `password` against the PHC string `phc` with `blocks` as the
/// working memory (grown if the hash's parameters need more). The same
/// steps as the argon2 crate's `verify_password`, with memory of our own.
fn verify_with_memory(phc: &str, password: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    use argon2::{Algorithm, Params, Version};
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(params), Ok(algorithm)) =
        (Params::try_from(&hash), Algorithm::try_from(hash.algorithm))
    else {
        return false;
    };
    let Ok(version) = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let needed = params.block_count();
    if needed > MAX_BLOCKS {
        return false;
    }
    if blocks.len() < needed {
        blocks.resize(needed, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password.as_bytes(), salt, &mut out, &mut blocks[..needed])
        .is_ok()
        && constant_time_eq(&out, expected.as_bytes())
}

impl PasswordChecks {
    /// At most `running` at once, `waiting` more queued.
    pub fn new(running: usize, waiting: usize) -> PasswordChecks {
        let running = running.max(1);
        PasswordChecks {
            permits: Arc::new(tokio::sync::Semaphore::new(running)),
            buffers: Arc::new(Mutex::new(vec![Vec::new(); running])),
            admitted: AtomicUsize::new(0),
            capacity: running + waiting,
        }
    }

    /// One running per core ([`std::thread::available_parallelism`]), four
    /// times as many waiting.
    pub fn per_core() -> PasswordChecks {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        PasswordChecks::new(cores, 4 * cores)
    }

    /// Check `password` against `phc` on the blocking pool, when a core is
    /// free; [`Busy`] at once if the queue is full.
    pub async fn verify(&self, phc: String, password: String) -> Result<bool, Busy> {
        if self.admitted.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(Busy);
        }
        let _admitted = Admitted(&self.admitted);
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Busy)?;
        let buffers = self.buffers.clone();
        // The permit goes with the work: a caller that gives up does not
        // free the core while the hash still runs.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut blocks = buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop()
                .unwrap_or_default();
            let ok = verify_with_memory(&phc, &password, &mut blocks);
            buffers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(blocks);
            ok
        })
        .await
        .map_err(|_| Busy)
    }
}

/// Compare two secrets without leaking where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A hash to verify against when the account does not exist, so that a login
/// for an unknown name takes as long as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("not a real password").expect("hashing works"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn password_checks_are_bounded_and_refuse_beyond_the_queue() {
        let checks = Arc::new(PasswordChecks::new(1, 2));
        let phc = hash_password("x").unwrap();
        let results = futures_util::future::join_all((0..10).map(|_| {
            let (checks, phc) = (checks.clone(), phc.clone());
            async move { checks.verify(phc, "x".into()).await }
        }))
        .await;
        let ok = results.iter().filter(|r| matches!(r, Ok(true))).count();
        assert_eq!(ok, 3, "one running and two waiting: {results:?}");
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 7);
        assert!(checks.verify(phc.clone(), "x".into()).await.unwrap());
        assert!(!checks.verify(phc, "y".into()).await.unwrap());
        let mut blocks = Vec::new();
        assert!(!verify_with_memory("not a phc string", "x", &mut blocks));
        assert!(verify_with_memory(
            dummy_hash(),
            "not a real password",
            &mut blocks
        ));
    }

    #[test]
    fn passwords_round_trip_and_secrets_are_unique() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&h, "correct horse"));
        assert!(!verify_password(&h, "wrong"));
        assert!(!verify_password("not a phc string", "x"));
        assert_ne!(random_secret(32), random_secret(32));
        assert!(new_api_token().starts_with("nsc_"));
        assert_eq!(secret_hash("a").len(), 32);
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"ab", b"abc")
        );
    }
}
