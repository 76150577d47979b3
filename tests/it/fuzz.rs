//! Property tests through the component: arbitrary user ids, keys and values
//! (any Unicode, control characters, bytes) never panic, never trap and never
//! share an entry.

use std::collections::HashMap;

use nscache::{CacheError, Expiry};
use nscache_tests::Backend;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,4}",
        "[a-z:%{}._ \\-]{0,10}",
        proptest::collection::vec(any::<u8>(), 0..24)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
        "\\PC{0,300}",
    ]
}

async fn no_collisions(backend: Backend, cases: u32) {
    let cache = backend.cache().await;
    let handle = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(
        (
            text(),
            text(),
            proptest::collection::vec(any::<u8>(), 0..64),
        ),
        1..24,
    );
    let result = runner.run(&strategy, |triples| {
        let cache = cache.clone();
        tokio::task::block_in_place(|| {
            handle.block_on(async move {
                // Fresh namespaces per case: invalidate what earlier cases wrote.
                let mut expected: HashMap<(String, String), Vec<u8>> = HashMap::new();
                for (user, key, value) in &triples {
                    if user.is_empty() {
                        prop_assert!(matches!(
                            cache
                                .user(user.clone())
                                .set(key, value, Expiry::Never)
                                .await,
                            Err(CacheError::InvalidName(_))
                        ));
                        continue;
                    }
                    match cache
                        .user(user.clone())
                        .set(key, value, Expiry::Never)
                        .await
                    {
                        Ok(()) => {
                            expected.insert((user.clone(), key.clone()), value.clone());
                        }
                        Err(CacheError::InvalidName(_)) if user.len() > 256 => {}
                        Err(e) => prop_assert!(false, "set({user:?}, {key:?}) failed: {e}"),
                    }
                }
                for ((user, key), value) in &expected {
                    let got = cache
                        .user(user.clone())
                        .get(key)
                        .await
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                    prop_assert_eq!(
                        got.as_ref(),
                        Some(value),
                        "user {:?} key {:?} read another entry",
                        user,
                        key
                    );
                }
                for (user, _) in expected.keys() {
                    cache
                        .invalidate_user(user)
                        .await
                        .map_err(|e| TestCaseError::fail(e.to_string()))?;
                }
                Ok(())
            })
        })
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_ids_keys_and_values_never_collide_in_memory() {
    no_collisions(Backend::Memory, 200).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arbitrary_ids_keys_and_values_never_collide_in_redis() {
    no_collisions(Backend::Redis, 60).await;
}
