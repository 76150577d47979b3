//! Single-flight loading: concurrent misses on one key in one process run the
//! loader once; the others wait for its result.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// Identifies one load: the keyspace, the key and the version it was read
/// under (a load started before an invalidation is never shared after it).
pub(crate) type FlightKey = (String, String, u64);

/// In-flight loads of one cache.
#[derive(Debug, Default)]
pub(crate) struct Flights {
    inflight: Mutex<HashMap<FlightKey, watch::Receiver<Option<Vec<u8>>>>>,
}

/// Either lead a load (and publish its result) or follow one.
pub(crate) enum Role<'a> {
    /// Run the loader, then [`Leader::publish`].
    Leader(Leader<'a>),
    /// Wait on this for the leader's value; `None` if the leader failed or
    /// was cancelled (then try again).
    Follower(watch::Receiver<Option<Vec<u8>>>),
}

/// The caller running the loader for a key. Dropping it without publishing
/// (loader error, cancellation) releases the followers to retry.
pub(crate) struct Leader<'a> {
    flights: &'a Flights,
    key: FlightKey,
    tx: watch::Sender<Option<Vec<u8>>>,
}

impl Flights {
    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<FlightKey, watch::Receiver<Option<Vec<u8>>>>> {
        self.inflight.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Join the load of `key`, or start it.
    pub fn join(&self, key: FlightKey) -> Role<'_> {
        let mut inflight = self.lock();
        if let Some(rx) = inflight.get(&key)
            && rx.has_changed().is_ok()
        {
            return Role::Follower(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        inflight.insert(key.clone(), rx);
        Role::Leader(Leader {
            flights: self,
            key,
            tx,
        })
    }

    /// How many loads are in flight.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

impl Leader<'_> {
    /// Hand the loaded value to every follower.
    pub fn publish(self, value: &[u8]) {
        let _ = self.tx.send(Some(value.to_vec()));
    }
}

impl Drop for Leader<'_> {
    fn drop(&mut self) {
        self.flights.lock().remove(&self.key);
    }
}

/// Wait for a leader's value; `None` if it failed or was cancelled.
pub(crate) async fn follow(mut rx: watch::Receiver<Option<Vec<u8>>>) -> Option<Vec<u8>> {
    loop {
        if let Some(v) = rx.borrow_and_update().clone() {
            return Some(v);
        }
        // Err: the leader is gone without a value.
        if rx.changed().await.is_err() {
            return rx.borrow().clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_get_the_leaders_value_and_a_failed_leader_releases_them() {
        let flights = Flights::default();
        let key: FlightKey = ("u:1".into(), "k".into(), 7);
        let Role::Leader(leader) = flights.join(key.clone()) else {
            panic!("first caller leads")
        };
        let Role::Follower(rx) = flights.join(key.clone()) else {
            panic!("second caller follows")
        };
        let waiter = tokio::spawn(follow(rx));
        leader.publish(b"v");
        assert_eq!(waiter.await.unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(flights.len(), 0);

        let Role::Leader(leader) = flights.join(key.clone()) else {
            panic!("a new load leads")
        };
        let Role::Follower(rx) = flights.join(key.clone()) else {
            panic!("follows")
        };
        let waiter = tokio::spawn(follow(rx));
        drop(leader);
        assert_eq!(waiter.await.unwrap(), None);
    }
}
