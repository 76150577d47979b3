//! Announcing writes off the write path: a writer hands its keys over and
//! returns; one task sends whatever has gathered as one `PUBLISH`.
//!
//! A write through the L1 thus costs one round trip, as without it, and
//! concurrent writers share announcements. The bound other processes see
//! grows by at most one `PUBLISH` round trip. The queue is bounded: when
//! Redis is slow, writers wait for room instead of piling up messages.
//!
//! Version writes (invalidations) wait for their `PUBLISH`
//! ([`Announcer::announce_published`]): once an invalidation returns, Redis
//! has handed the eviction to every other process' subscription, so their
//! next request does not serve the dead namespace from memory.

use tokio::sync::{mpsc, oneshot};

use super::SEPARATOR;
use crate::feed::ChangeFeed;

/// Most announcements waiting to be sent before writers wait.
const QUEUE: usize = 1024;

/// Most keys sent in one message.
const BATCH_KEYS: usize = 512;

/// The sending side of the announcing task.
#[derive(Debug)]
pub(super) struct Announcer {
    queue: mpsc::Sender<Announcement>,
}

/// Keys to announce, and who waits until they are published.
type Announcement = (Vec<String>, Option<oneshot::Sender<()>>);

impl Announcer {
    /// Start the task that publishes on `feed`, each message starting with
    /// `origin` on a line of its own (it ends with the last [`Announcer`]).
    pub fn start(feed: ChangeFeed, origin: String) -> Announcer {
        let (queue, mut pending) = mpsc::channel::<Announcement>(QUEUE);
        tokio::spawn(async move {
            let mut waiting = Vec::new();
            while let Some((mut keys, waiter)) = pending.recv().await {
                waiting.extend(waiter);
                while keys.len() < BATCH_KEYS {
                    match pending.try_recv() {
                        Ok((more, waiter)) => {
                            keys.extend(more);
                            waiting.extend(waiter);
                        }
                        Err(_) => break,
                    }
                }
                let mut message = origin.clone();
                for key in &keys {
                    message.push(SEPARATOR);
                    message.push_str(key);
                }
                if let Err(e) = feed.publish(&message).await {
                    // The other L1s serve the old value until their max age: say so.
                    tracing::warn!(
                        error = %e,
                        keys = keys.len(),
                        "could not announce writes to other L1 caches"
                    );
                }
                for waiter in waiting.drain(..) {
                    let _ = waiter.send(());
                }
            }
        });
        Announcer { queue }
    }

    /// Queue `keys` for announcement.
    pub async fn announce(&self, keys: Vec<String>) {
        if self.queue.send((keys, None)).await.is_err() {
            stopped();
        }
    }

    /// Queue `keys` for announcement and wait until the message has been
    /// published (or publishing failed, which is logged: the other L1s then
    /// see the change within their max age).
    pub async fn announce_published(&self, keys: Vec<String>) {
        let (done, published) = oneshot::channel();
        if self.queue.send((keys, Some(done))).await.is_err() {
            stopped();
            return;
        }
        let _ = published.await;
    }
}

fn stopped() {
    tracing::warn!(
        "the L1 announcer has stopped; other L1 caches will see writes within their max age"
    );
}
