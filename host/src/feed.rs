//! [`ChangeFeed`]: changes announced to every nscache process sharing a
//! Redis, over pub/sub: profile toggles (so that they take effect on the next
//! request everywhere) and writes seen by in-process L1 caches.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::store::redis::login_refused;

/// Publishes and receives change messages on one channel.
#[derive(Clone)]
pub struct ChangeFeed {
    client: redis::Client,
    /// Replaced when Redis refuses its login (see `RedisStore::fail`).
    publisher: Arc<ArcSwap<ConnectionManager>>,
    config: ConnectionManagerConfig,
    channel: String,
    live: Arc<AtomicBool>,
}

impl std::fmt::Debug for ChangeFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeFeed")
            .field("channel", &self.channel)
            .field("live", &self.is_live())
            .finish()
    }
}

impl ChangeFeed {
    /// A feed on `channel` of the Redis at `url`. Nothing connects until
    /// [`ChangeFeed::run`] and the first publish.
    pub fn new(url: &str, channel: impl Into<String>) -> Result<ChangeFeed, redis::RedisError> {
        ChangeFeed::with_client(redis::Client::open(url)?, channel)
    }

    /// A feed on `channel` through `client` (e.g. one with TLS files:
    /// [`RedisOptions::client`](crate::store::RedisOptions::client)).
    pub fn with_client(
        client: redis::Client,
        channel: impl Into<String>,
    ) -> Result<ChangeFeed, redis::RedisError> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)));
        let publisher = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        Ok(ChangeFeed {
            client,
            publisher: Arc::new(ArcSwap::from_pointee(publisher)),
            config,
            channel: channel.into(),
            live: Arc::new(AtomicBool::new(false)),
        })
    }

    /// True while subscribed: messages are being received.
    pub fn is_live(&self) -> bool {
        self.live.load(Ordering::SeqCst)
    }

    /// Announce a change (a user id, or keys: the subscriber decides).
    pub async fn publish(&self, message: &str) -> Result<(), redis::RedisError> {
        let mut publisher = ConnectionManager::clone(&self.publisher.load());
        let published: Result<i64, _> = redis::cmd("PUBLISH")
            .arg(&self.channel)
            .arg(message)
            .query_async(&mut publisher)
            .await;
        if let Err(e) = &published
            && login_refused(e)
            && let Ok(fresh) =
                ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone())
        {
            // The manager would keep the refusal for good: the next publish
            // logs in again.
            self.publisher.store(Arc::new(fresh));
        }
        published.map(drop)
    }

    /// Receive messages for ever: `on_change(Some(message))` for each, and
    /// `on_change(None)` whenever the subscription is lost (messages may have
    /// been missed). Reconnects with a backoff of up to 2 s.
    pub async fn run(self, on_change: impl Fn(Option<&str>) + Send + Sync + 'static) {
        let mut backoff = Duration::from_millis(50);
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        self.live.store(true, Ordering::SeqCst);
                        tracing::info!(channel = %self.channel, "change feed subscribed");
                        backoff = Duration::from_millis(50);
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            match msg.get_payload::<String>() {
                                Ok(message) => on_change(Some(&message)),
                                Err(_) => on_change(None),
                            }
                        }
                        tracing::warn!(channel = %self.channel, "change feed lost; what it protects is dropped until resubscribed");
                    }
                    Err(e) => tracing::debug!(error = %e, "change feed: subscribe failed"),
                },
                Err(e) => tracing::debug!(error = %e, "change feed: connect failed"),
            }
            self.live.store(false, Ordering::SeqCst);
            on_change(None);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }
}
