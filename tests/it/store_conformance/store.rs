//! The cases every [`Store`] runs: each primitive against its WIT function
//! (`wit/store.wit`, `wit/batch.wit`, `wit/atomics.wit`), with its edge cases.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nscache::Ttl;
use nscache::store::{Counter, IndirectRead, PutOutcome, Store, StoreError};

use super::{Keys, LONG_MS, SHORT_MS, assert_fresh_ttl, v, wait_until_missing};

/// The cases of this group, handed to `$then` (see `store_suite!`).
macro_rules! store_cases {
    ($then:ident!($($args:tt)*)) => {
        $then!(store as nscache::store::Store, $($args)*;
            kind_ping_and_memory_info_answer,
            a_missing_key_is_missing_to_every_read,
            set_stores_a_value_that_never_expires,
            set_replaces_the_value_and_any_expiry,
            ttl_answers_whole_milliseconds_left,
            delete_removes_a_key_and_says_whether_it_existed,
            expire_gives_an_existing_key_a_new_expiry,
            expire_none_removes_the_expiry,
            expire_of_a_missing_key_is_false_and_creates_nothing,
            a_key_expires_when_its_ttl_runs_out,
            expire_makes_a_key_expire,
            an_expired_key_is_missing_to_every_primitive,
            the_longest_ttl_is_accepted,
            now_micros_is_real_time_in_microseconds,
            values_are_kept_byte_for_byte,
            keys_may_hold_any_characters,
            get_many_answers_in_order_with_none_for_missing,
            empty_lists_are_accepted,
            set_many_stores_every_entry_as_set_does,
            set_many_with_a_ttl_expires_every_entry,
            set_many_is_one_atomic_step,
            delete_many_counts_the_keys_that_existed,
            get_indirect_reads_the_entries_the_pointer_names,
            get_indirect_with_a_missing_pointer_reads_only_the_also_keys,
            get_indirect_with_an_empty_pointer_reads_prefix_and_suffix,
            get_indirect_with_a_pointer_that_is_not_utf8_names_no_entry,
            get_indirect_with_unusual_characters,
            get_indirect_follows_a_pointer_that_changed,
            increment_adds_delta_and_answers_the_sum,
            increment_of_a_missing_key_is_none_and_creates_nothing,
            increment_keeps_the_expiry,
            increment_of_a_value_that_is_not_a_decimal_integer_fails,
            increment_that_would_overflow_fails,
            set_if_absent_stores_only_a_missing_key,
            set_if_absent_with_a_ttl_sets_that_expiry,
            swap_if_replaces_the_expected_value_with_one_that_never_expires,
            swap_if_expecting_none_creates_a_missing_key_only,
            delete_if_removes_only_the_expected_value,
            every_write_is_seen_by_the_next_read,
            reads_over_their_budget_fail_and_reads_within_it_answer,
            put_counted_stores_and_counts_up_to_the_limit,
            put_counted_if_absent_writes_only_a_missing_key,
        );
    };
}

/// `kind` names the backend; `ping` and `memory_info` answer.
pub async fn kind_ping_and_memory_info_answer(store: &dyn Store, _: &Keys) {
    let kind = store.kind();
    assert!(
        !kind.is_empty() && kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
        "kind {kind:?}"
    );
    store.ping().await.expect("ping");
    store.memory_info().await.expect("memory info");
}

pub async fn a_missing_key_is_missing_to_every_read(store: &dyn Store, k: &Keys) {
    let key = k.key("nothing");
    assert_eq!(store.get(&key).await.unwrap(), None);
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Missing);
    assert!(!store.delete(&key).await.unwrap(), "nothing to delete");
    assert!(!store.exists(&key).await.unwrap());
}

pub async fn set_stores_a_value_that_never_expires(store: &dyn Store, k: &Keys) {
    let key = k.key("k");
    store.set(&key, b"value", None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(v("value")));
    assert!(store.exists(&key).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Forever);
}

pub async fn set_replaces_the_value_and_any_expiry(store: &dyn Store, k: &Keys) {
    let key = k.key("k");
    store.set(&key, b"1", Some(LONG_MS)).await.unwrap();
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    store.set(&key, b"2", None).await.unwrap();
    assert_eq!(store.get(&key).await.unwrap(), Some(v("2")));
    assert_eq!(
        store.ttl(&key).await.unwrap(),
        Ttl::Forever,
        "set without a TTL removes the expiry"
    );
    store.set(&key, b"3", Some(2 * LONG_MS)).await.unwrap();
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), 2 * LONG_MS);
    store.set(&key, b"4", Some(LONG_MS)).await.unwrap();
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    assert_eq!(store.get(&key).await.unwrap(), Some(v("4")));
}

pub async fn ttl_answers_whole_milliseconds_left(store: &dyn Store, k: &Keys) {
    for (i, ms) in [1_234, 5_001, LONG_MS].into_iter().enumerate() {
        let key = k.key(&format!("k{i}"));
        store.set(&key, b"v", Some(ms)).await.unwrap();
        assert_fresh_ttl(store.ttl(&key).await.unwrap(), ms);
    }
}

pub async fn delete_removes_a_key_and_says_whether_it_existed(store: &dyn Store, k: &Keys) {
    let (a, b) = (k.key("a"), k.key("b"));
    store.set(&a, b"1", None).await.unwrap();
    store.set(&b, b"2", Some(LONG_MS)).await.unwrap();
    assert!(store.delete(&a).await.unwrap());
    assert!(!store.delete(&a).await.unwrap(), "gone already");
    assert_eq!(store.get(&a).await.unwrap(), None);
    assert!(!store.exists(&a).await.unwrap());
    assert!(store.delete(&b).await.unwrap());
    assert_eq!(store.ttl(&b).await.unwrap(), Ttl::Missing);
}

pub async fn expire_gives_an_existing_key_a_new_expiry(store: &dyn Store, k: &Keys) {
    let key = k.key("k");
    store.set(&key, b"v", None).await.unwrap();
    assert!(store.expire(&key, Some(LONG_MS)).await.unwrap());
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    assert!(store.expire(&key, Some(2 * LONG_MS)).await.unwrap());
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), 2 * LONG_MS);
    assert!(store.expire(&key, Some(LONG_MS)).await.unwrap());
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    assert_eq!(
        store.get(&key).await.unwrap(),
        Some(v("v")),
        "the value is kept"
    );
}

pub async fn expire_none_removes_the_expiry(store: &dyn Store, k: &Keys) {
    let key = k.key("k");
    store.set(&key, b"v", Some(LONG_MS)).await.unwrap();
    assert!(store.expire(&key, None).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Forever);
    assert!(
        store.expire(&key, None).await.unwrap(),
        "true for a key without expiry too: it exists"
    );
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Forever);
    assert_eq!(store.get(&key).await.unwrap(), Some(v("v")));
}

pub async fn expire_of_a_missing_key_is_false_and_creates_nothing(store: &dyn Store, k: &Keys) {
    let key = k.key("nothing");
    assert!(!store.expire(&key, Some(LONG_MS)).await.unwrap());
    assert!(!store.expire(&key, None).await.unwrap());
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Missing);
}

pub async fn a_key_expires_when_its_ttl_runs_out(store: &dyn Store, k: &Keys) {
    let (short, long) = (k.key("short"), k.key("long"));
    let started = Instant::now();
    store.set(&short, b"v", Some(SHORT_MS)).await.unwrap();
    store.set(&long, b"v", Some(LONG_MS)).await.unwrap();
    wait_until_missing(store, std::slice::from_ref(&short)).await;
    let lived = started.elapsed();
    // A few milliseconds of leeway: the store's clock is not this process's.
    assert!(
        lived >= Duration::from_millis(SHORT_MS - 5),
        "a key given {SHORT_MS} ms expired after {lived:?}"
    );
    assert!(!store.exists(&short).await.unwrap());
    assert_eq!(store.ttl(&short).await.unwrap(), Ttl::Missing);
    assert_eq!(
        store.get(&long).await.unwrap(),
        Some(v("v")),
        "a longer TTL still runs"
    );
}

pub async fn expire_makes_a_key_expire(store: &dyn Store, k: &Keys) {
    let key = k.key("k");
    store.set(&key, b"v", None).await.unwrap();
    assert!(store.expire(&key, Some(SHORT_MS)).await.unwrap());
    wait_until_missing(store, std::slice::from_ref(&key)).await;
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Missing);
}

pub async fn an_expired_key_is_missing_to_every_primitive(store: &dyn Store, k: &Keys) {
    let names = [
        "delete", "expire", "persist", "incr", "del-if", "swap", "swap-new", "add", "dm1", "dm2",
        "ptr",
    ];
    let keys = k.keys(&names);
    let key = |name: &str| k.key(name);
    let entries: Vec<(String, Vec<u8>)> = keys.iter().map(|k| (k.clone(), v("7"))).collect();
    store.set_many(&entries, Some(SHORT_MS)).await.unwrap();
    // The entry the pointer names lives on: only the pointer expires.
    store.set(&key("e:7:a"), b"A", None).await.unwrap();
    wait_until_missing(store, &keys).await;

    assert!(!store.exists(&key("delete")).await.unwrap());
    assert!(!store.delete(&key("delete")).await.unwrap());
    assert!(!store.expire(&key("expire"), Some(LONG_MS)).await.unwrap());
    assert!(!store.expire(&key("persist"), None).await.unwrap());
    assert_eq!(store.increment(&key("incr"), 1).await.unwrap(), None);
    assert!(!store.delete_if(&key("del-if"), b"7").await.unwrap());
    assert!(!store.swap_if(&key("swap"), Some(b"7"), b"8").await.unwrap());
    assert_eq!(
        store.delete_many(&k.keys(&["dm1", "dm2"])).await.unwrap(),
        0
    );
    let read = store
        .get_indirect(
            &key("ptr"),
            &key("e:"),
            &[":a".into()],
            &[key("dm1")],
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: None,
            values: vec![None],
            also: vec![None],
        }
    );
    for name in ["expire", "persist", "incr", "swap"] {
        assert!(!store.exists(&key(name)).await.unwrap(), "{name} came back");
        assert_eq!(store.ttl(&key(name)).await.unwrap(), Ttl::Missing, "{name}");
    }
    assert!(store.swap_if(&key("swap-new"), None, b"8").await.unwrap());
    assert_eq!(store.get(&key("swap-new")).await.unwrap(), Some(v("8")));
    assert!(store.set_if_absent(&key("add"), b"8", None).await.unwrap());
    assert_eq!(store.get(&key("add")).await.unwrap(), Some(v("8")));
    assert_eq!(store.ttl(&key("add")).await.unwrap(), Ttl::Forever);
}

/// Any TTL but 0 is a lifetime (`ttl-ms: option<u64>`): the longest one too.
pub async fn the_longest_ttl_is_accepted(store: &dyn Store, k: &Keys) {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    let long_lived = |ttl: Ttl| matches!(ttl, Ttl::Remaining(left) if left > century);
    let (set, many, add, expire) = (k.key("set"), k.key("many"), k.key("add"), k.key("expire"));
    store.set(&set, b"v", Some(u64::MAX)).await.expect("set");
    store
        .set_many(&[(many.clone(), v("v"))], Some(u64::MAX))
        .await
        .expect("set-many");
    assert!(
        store
            .set_if_absent(&add, b"v", Some(u64::MAX))
            .await
            .expect("set-if-absent")
    );
    store.set(&expire, b"v", None).await.unwrap();
    assert!(store.expire(&expire, Some(u64::MAX)).await.expect("expire"));
    for key in [set, many, add, expire] {
        assert_eq!(store.get(&key).await.unwrap(), Some(v("v")), "{key}");
        let ttl = store.ttl(&key).await.unwrap();
        assert!(long_lived(ttl), "{key}: {ttl:?}");
    }
}

pub async fn now_micros_is_real_time_in_microseconds(store: &dyn Store, _: &Keys) {
    let wall = || {
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        i128::try_from(since_epoch.as_micros()).unwrap()
    };
    // The store's clock may be another machine's: allow some skew.
    let skew = 5_000_000;
    let before = wall();
    let now = i128::from(store.now_micros().await.unwrap());
    let after = wall();
    assert!(
        before - skew <= now && now <= after + skew,
        "now-micros {now} is not real time in microseconds ({before}..{after})"
    );
    let mut last = now;
    for _ in 0..20 {
        let next = i128::from(store.now_micros().await.unwrap());
        assert!(next >= last, "the clock went back from {last} to {next}");
        last = next;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let later = i128::from(store.now_micros().await.unwrap());
    assert!(
        (45_000..5_000_000).contains(&(later - last)),
        "50 ms later, the clock moved by {} µs",
        later - last
    );
}

pub async fn values_are_kept_byte_for_byte(store: &dyn Store, k: &Keys) {
    let every_byte: Vec<u8> = (0..=255).collect();
    let large: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let values = [
        Vec::new(),
        every_byte.clone(),
        vec![0; 16],
        v("ünïcødé ✓"),
        vec![0xff, 0xfe, 0x80],
        large,
    ];
    let keys: Vec<String> = (0..values.len()).map(|i| k.key(&format!("v{i}"))).collect();
    for (key, value) in keys.iter().zip(&values) {
        store.set(key, value, None).await.unwrap();
        assert_eq!(store.get(key).await.unwrap().as_ref(), Some(value));
        assert!(
            store.exists(key).await.unwrap(),
            "an empty value is a value"
        );
    }
    let expected: Vec<Option<Vec<u8>>> = values.iter().cloned().map(Some).collect();
    assert_eq!(store.get_many(&keys, u64::MAX).await.unwrap(), expected);

    let batch: Vec<(String, Vec<u8>)> = values
        .iter()
        .enumerate()
        .map(|(i, value)| (k.key(&format!("b{i}")), value.clone()))
        .collect();
    store.set_many(&batch, Some(LONG_MS)).await.unwrap();
    let batch_keys: Vec<String> = batch.iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(
        store.get_many(&batch_keys, u64::MAX).await.unwrap(),
        expected
    );

    // The atomics compare bytes exactly.
    let key = &keys[1];
    assert!(!store.delete_if(key, &every_byte[..255]).await.unwrap());
    assert!(
        !store
            .swap_if(key, Some(&every_byte[1..]), b"x")
            .await
            .unwrap()
    );
    assert!(
        store
            .swap_if(key, Some(&every_byte), b"\x00\xff")
            .await
            .unwrap()
    );
    assert!(store.delete_if(key, b"\x00\xff").await.unwrap());
    assert!(store.set_if_absent(key, &every_byte, None).await.unwrap());
    assert_eq!(store.get(key).await.unwrap(), Some(every_byte.clone()));

    store.set(&k.key("ptr"), b"b", None).await.unwrap();
    let suffixes: Vec<String> = (0..values.len()).map(|i| i.to_string()).collect();
    let read = store
        .get_indirect(&k.key("ptr"), &k.key(""), &suffixes, &keys, u64::MAX)
        .await
        .unwrap();
    assert_eq!(read.values, expected, "entries through a pointer");
    assert_eq!(read.also, expected, "also keys");
}

/// Names that a key layout or a protocol might mangle.
const ODD_NAMES: &[&str] = &[
    "",
    "with space",
    "tab\there",
    "new\nline",
    "carriage\r\nreturn",
    "nul\0byte",
    "ünïcødé ✓ 日本語 🦀",
    "glob*?[a-z]",
    "{hash}tag",
    "quote'\"`",
    "back\\slash",
    "percent%20encoded",
    ":::",
    "dollar$1",
];

pub async fn keys_may_hold_any_characters(store: &dyn Store, k: &Keys) {
    let mut keys = k.keys(ODD_NAMES);
    keys.push(k.key(&"long".repeat(1000)));
    for (i, key) in keys.iter().enumerate() {
        store
            .set(key, i.to_string().as_bytes(), None)
            .await
            .unwrap();
    }
    for (i, key) in keys.iter().enumerate() {
        assert_eq!(
            store.get(key).await.unwrap(),
            Some(v(&i.to_string())),
            "{key:?}"
        );
        assert!(store.exists(key).await.unwrap(), "{key:?}");
        assert_eq!(store.ttl(key).await.unwrap(), Ttl::Forever, "{key:?}");
    }
    let expected: Vec<Option<Vec<u8>>> = (0..keys.len()).map(|i| Some(v(&i.to_string()))).collect();
    assert_eq!(store.get_many(&keys, u64::MAX).await.unwrap(), expected);
    // A glob in a key is no pattern.
    assert_eq!(store.get(&k.key("globx?[a-z]")).await.unwrap(), None);
    assert_eq!(store.get(&k.key("glob*?a")).await.unwrap(), None);
    assert_eq!(store.increment(&keys[2], 5).await.unwrap(), Some(7));
    assert!(store.delete_if(&keys[3], b"3").await.unwrap());
    assert_eq!(
        store.delete_many(&keys).await.unwrap() as usize,
        keys.len() - 1
    );
    let none: Vec<Option<Vec<u8>>> = vec![None; keys.len()];
    assert_eq!(store.get_many(&keys, u64::MAX).await.unwrap(), none);
}

pub async fn get_many_answers_in_order_with_none_for_missing(store: &dyn Store, k: &Keys) {
    store.set(&k.key("a"), b"1", None).await.unwrap();
    store.set(&k.key("b"), b"2", Some(LONG_MS)).await.unwrap();
    let found = store
        .get_many(&k.keys(&["a", "missing", "b", "a"]), u64::MAX)
        .await
        .unwrap();
    assert_eq!(found, vec![Some(v("1")), None, Some(v("2")), Some(v("1"))]);
}

pub async fn empty_lists_are_accepted(store: &dyn Store, k: &Keys) {
    assert_eq!(
        store.get_many(&[], u64::MAX).await.unwrap(),
        Vec::<Option<Vec<u8>>>::new()
    );
    store.set_many(&[], None).await.unwrap();
    store.set_many(&[], Some(LONG_MS)).await.unwrap();
    assert_eq!(store.delete_many(&[]).await.unwrap(), 0);
    store.set(&k.key("ptr"), b"p", None).await.unwrap();
    let read = store
        .get_indirect(&k.key("ptr"), &k.key("e:"), &[], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(v("p")),
            values: vec![],
            also: vec![],
        }
    );
    let read = store
        .get_indirect(&k.key("no-ptr"), &k.key("e:"), &[], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(read, IndirectRead::default());
}

pub async fn set_many_stores_every_entry_as_set_does(store: &dyn Store, k: &Keys) {
    let (a, b, c, d) = (k.key("a"), k.key("b"), k.key("c"), k.key("d"));
    store.set(&a, b"old", Some(LONG_MS)).await.unwrap();
    store.set(&b, b"old", None).await.unwrap();
    let entries = [
        (a.clone(), v("1")),
        (b.clone(), v("2")),
        (c.clone(), v("3")),
    ];
    store.set_many(&entries, None).await.unwrap();
    let all = [a.clone(), b.clone(), c.clone()];
    assert_eq!(
        store.get_many(&all, u64::MAX).await.unwrap(),
        vec![Some(v("1")), Some(v("2")), Some(v("3"))]
    );
    for key in &all {
        assert_eq!(
            store.ttl(key).await.unwrap(),
            Ttl::Forever,
            "{key}: no TTL, no expiry"
        );
    }
    let entries = [(a.clone(), v("x")), (b.clone(), v("y"))];
    store.set_many(&entries, Some(LONG_MS)).await.unwrap();
    assert_fresh_ttl(store.ttl(&a).await.unwrap(), LONG_MS);
    assert_fresh_ttl(store.ttl(&b).await.unwrap(), LONG_MS);
    assert_eq!(
        store.ttl(&c).await.unwrap(),
        Ttl::Forever,
        "an entry not listed is untouched"
    );
    assert_eq!(store.get(&c).await.unwrap(), Some(v("3")));
    let twice = [(d.clone(), v("first")), (d.clone(), v("last"))];
    store.set_many(&twice, None).await.unwrap();
    assert_eq!(
        store.get(&d).await.unwrap(),
        Some(v("last")),
        "the later entry wins"
    );
}

pub async fn set_many_with_a_ttl_expires_every_entry(store: &dyn Store, k: &Keys) {
    let keys = k.keys(&["a", "b", "c"]);
    let entries: Vec<(String, Vec<u8>)> = keys.iter().map(|key| (key.clone(), v("v"))).collect();
    store.set_many(&entries, Some(SHORT_MS)).await.unwrap();
    wait_until_missing(store, &keys).await;
    for key in &keys {
        assert_eq!(store.ttl(key).await.unwrap(), Ttl::Missing, "{key}");
    }
}

/// `set-many` is one step: readers in other threads never see some entries
/// written and others not.
pub async fn set_many_is_one_atomic_step(store: &dyn Store, k: &Keys) {
    let keys = k.keys(&["a", "b", "c", "d", "e", "f", "g", "h"]);
    let write = |round: u32| {
        let entries: Vec<(String, Vec<u8>)> = keys
            .iter()
            .map(|key| (key.clone(), v(&round.to_string())))
            .collect();
        async move { store.set_many(&entries, None).await.unwrap() }
    };
    write(0).await;
    let done = AtomicBool::new(false);
    let runtime = tokio::runtime::Handle::current();
    let writer = || {
        let started = Instant::now();
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            for round in 1..=2000 {
                runtime.block_on(write(round));
                if started.elapsed() > Duration::from_millis(300) {
                    break;
                }
            }
        }));
        // The readers stop even if the writer failed.
        done.store(true, Ordering::SeqCst);
        if let Err(panic) = written {
            std::panic::resume_unwind(panic);
        }
    };
    let reader = || {
        let mut reads = 0;
        while !done.load(Ordering::SeqCst) || reads == 0 {
            let found = runtime.block_on(store.get_many(&keys, u64::MAX)).unwrap();
            assert!(
                found.iter().all(|value| *value == found[0]) && found[0].is_some(),
                "a read saw part of a set-many: {found:?}"
            );
            reads += 1;
        }
    };
    tokio::task::block_in_place(|| {
        std::thread::scope(|threads| {
            let running = [
                threads.spawn(writer),
                threads.spawn(reader),
                threads.spawn(reader),
            ];
            for thread in running {
                if let Err(panic) = thread.join() {
                    std::panic::resume_unwind(panic);
                }
            }
        })
    });
}

pub async fn delete_many_counts_the_keys_that_existed(store: &dyn Store, k: &Keys) {
    let (a, b) = (k.key("a"), k.key("b"));
    store.set(&a, b"1", None).await.unwrap();
    store.set(&b, b"2", Some(LONG_MS)).await.unwrap();
    let listed = k.keys(&["a", "missing", "b", "a"]);
    assert_eq!(store.delete_many(&listed).await.unwrap(), 2);
    assert_eq!(
        store.get_many(&listed, u64::MAX).await.unwrap(),
        vec![None; 4]
    );
    assert!(!store.exists(&b).await.unwrap());
    assert_eq!(store.delete_many(&listed).await.unwrap(), 0);
}

pub async fn get_indirect_reads_the_entries_the_pointer_names(store: &dyn Store, k: &Keys) {
    let (ptr, prefix) = (k.key("ptr"), k.key("e:"));
    store.set(&ptr, b"v7", None).await.unwrap();
    store.set(&k.key("e:v7:a"), b"A", None).await.unwrap();
    store
        .set(&k.key("e:v7:b"), b"B", Some(LONG_MS))
        .await
        .unwrap();
    store.set(&k.key("e:v6:c"), b"old", None).await.unwrap();
    store.set(&k.key("x"), b"X", None).await.unwrap();
    let suffixes = [":a", ":b", ":c", ":a"].map(String::from);
    let also = k.keys(&["x", "y", "x"]);
    let read = store
        .get_indirect(&ptr, &prefix, &suffixes, &also, u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(v("v7")),
            values: vec![Some(v("A")), Some(v("B")), None, Some(v("A"))],
            also: vec![Some(v("X")), None, Some(v("X"))],
        }
    );
}

pub async fn get_indirect_with_a_missing_pointer_reads_only_the_also_keys(
    store: &dyn Store,
    k: &Keys,
) {
    let prefix = k.key("e:");
    // What an empty pointer would name exists: a missing pointer is no empty one.
    store.set(&k.key("e::a"), b"wrong", None).await.unwrap();
    store.set(&k.key("x"), b"X", None).await.unwrap();
    let suffixes = [":a", ":b"].map(String::from);
    let read = store
        .get_indirect(
            &k.key("ptr"),
            &prefix,
            &suffixes,
            &k.keys(&["x", "y"]),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: None,
            values: vec![None, None],
            also: vec![Some(v("X")), None],
        }
    );
}

pub async fn get_indirect_with_an_empty_pointer_reads_prefix_and_suffix(
    store: &dyn Store,
    k: &Keys,
) {
    store.set(&k.key("ptr"), b"", None).await.unwrap();
    store.set(&k.key("e::a"), b"A", None).await.unwrap();
    let read = store
        .get_indirect(&k.key("ptr"), &k.key("e:"), &[":a".into()], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(Vec::new()),
            values: vec![Some(v("A"))],
            also: vec![],
        }
    );
}

/// The entry is `prefix ++ pointer ++ suffix`, byte for byte: a pointer that
/// is not UTF-8 names a key no string names, never its lossy decoding.
pub async fn get_indirect_with_a_pointer_that_is_not_utf8_names_no_entry(
    store: &dyn Store,
    k: &Keys,
) {
    let ptr = k.key("ptr");
    store.set(&ptr, b"\xff\xfe", None).await.unwrap();
    let lossy = k.key("e:\u{FFFD}\u{FFFD}:a");
    store.set(&lossy, b"wrong", None).await.unwrap();
    // A cache in front may remember the entry it read last time.
    assert_eq!(store.get(&lossy).await.unwrap(), Some(v("wrong")));
    for _ in 0..2 {
        let read = store
            .get_indirect(&ptr, &k.key("e:"), &[":a".into()], &[], u64::MAX)
            .await
            .unwrap();
        assert_eq!(
            read,
            IndirectRead {
                pointer: Some(b"\xff\xfe".to_vec()),
                values: vec![None],
                also: vec![],
            }
        );
    }
    assert_eq!(
        store.get(&lossy).await.unwrap(),
        Some(v("wrong")),
        "the key a lossy decoding names is unaffected"
    );
}

pub async fn get_indirect_with_unusual_characters(store: &dyn Store, k: &Keys) {
    let (ptr, prefix) = (k.key("ptr {x}\n"), k.key("ns {x}\n:"));
    let pointer = "v 1 ü\n*";
    store.set(&ptr, pointer.as_bytes(), None).await.unwrap();
    let entry = format!("{prefix}{pointer}:é?");
    store.set(&entry, b"found", None).await.unwrap();
    let read = store
        .get_indirect(
            &ptr,
            &prefix,
            &[":é?".into(), ":é*".into()],
            std::slice::from_ref(&entry),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(v(pointer)),
            values: vec![Some(v("found")), None],
            also: vec![Some(v("found"))],
        }
    );
}

/// Every write of the pointer is seen by the next indirect read (a cache in
/// front must not keep the old pointer).
pub async fn get_indirect_follows_a_pointer_that_changed(store: &dyn Store, k: &Keys) {
    let (ptr, prefix) = (k.key("ptr"), k.key("e:"));
    for n in 1..=4 {
        store
            .set(
                &k.key(&format!("e:{n}:a")),
                format!("A{n}").as_bytes(),
                None,
            )
            .await
            .unwrap();
    }
    let (ptr_key, entry_prefix) = (&ptr, &prefix);
    let read = || async move {
        store
            .get_indirect(ptr_key, entry_prefix, &[":a".into()], &[], u64::MAX)
            .await
            .unwrap()
    };
    let entry = |n: u8| Some(v(&format!("A{n}")));
    store.set(&ptr, b"1", None).await.unwrap();
    assert_eq!(read().await.values, vec![entry(1)]);
    store.set(&ptr, b"2", None).await.unwrap();
    assert_eq!(read().await.values, vec![entry(2)]);
    assert!(store.swap_if(&ptr, Some(b"2"), b"3").await.unwrap());
    assert_eq!(read().await.values, vec![entry(3)]);
    assert_eq!(store.increment(&ptr, 1).await.unwrap(), Some(4));
    assert_eq!(read().await.values, vec![entry(4)]);
    store
        .set_many(&[(ptr.clone(), v("1"))], None)
        .await
        .unwrap();
    assert_eq!(read().await.values, vec![entry(1)]);
    store.set(&k.key("e:1:a"), b"A1 again", None).await.unwrap();
    assert_eq!(read().await.values, vec![Some(v("A1 again"))]);
    assert!(store.delete(&ptr).await.unwrap());
    assert_eq!(
        read().await,
        IndirectRead {
            pointer: None,
            values: vec![None],
            also: vec![],
        }
    );
}

pub async fn increment_adds_delta_and_answers_the_sum(store: &dyn Store, k: &Keys) {
    let n = k.key("n");
    store.set(&n, b"41", None).await.unwrap();
    assert_eq!(store.increment(&n, 1).await.unwrap(), Some(42));
    assert_eq!(store.increment(&n, -50).await.unwrap(), Some(-8));
    assert_eq!(store.increment(&n, 0).await.unwrap(), Some(-8));
    assert_eq!(
        store.get(&n).await.unwrap(),
        Some(v("-8")),
        "stored as a decimal integer"
    );
    let edges = [
        (0, i64::MIN, i64::MIN),
        (i64::MIN, i64::MAX, -1),
        (i64::MAX - 1, 1, i64::MAX),
        (-1, -i64::MAX, i64::MIN),
    ];
    for (i, (start, delta, sum)) in edges.into_iter().enumerate() {
        let key = k.key(&format!("edge{i}"));
        store
            .set(&key, start.to_string().as_bytes(), None)
            .await
            .unwrap();
        assert_eq!(
            store.increment(&key, delta).await.unwrap(),
            Some(sum),
            "{start} + {delta}"
        );
        assert_eq!(store.get(&key).await.unwrap(), Some(v(&sum.to_string())));
    }
}

pub async fn increment_of_a_missing_key_is_none_and_creates_nothing(store: &dyn Store, k: &Keys) {
    let key = k.key("nothing");
    assert_eq!(store.increment(&key, 1).await.unwrap(), None);
    assert_eq!(store.increment(&key, 0).await.unwrap(), None);
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(store.get(&key).await.unwrap(), None);
}

pub async fn increment_keeps_the_expiry(store: &dyn Store, k: &Keys) {
    let (lasting, forever, short) = (k.key("lasting"), k.key("forever"), k.key("short"));
    store.set(&lasting, b"1", Some(LONG_MS)).await.unwrap();
    assert_eq!(store.increment(&lasting, 5).await.unwrap(), Some(6));
    assert_fresh_ttl(store.ttl(&lasting).await.unwrap(), LONG_MS);
    store.set(&forever, b"1", None).await.unwrap();
    assert_eq!(store.increment(&forever, 5).await.unwrap(), Some(6));
    assert_eq!(store.ttl(&forever).await.unwrap(), Ttl::Forever);
    store.set(&short, b"1", Some(SHORT_MS)).await.unwrap();
    // (None if it expired already on a slow machine: then there is nothing to keep.)
    let _ = store.increment(&short, 1).await.unwrap();
    wait_until_missing(store, std::slice::from_ref(&short)).await;
}

/// Values `increment` refuses: only a decimal integer in its canonical form
/// (what Redis's `INCRBY` reads, what the store writes) is a counter.
const NOT_INTEGERS: &[&[u8]] = &[
    b"",
    b"abc",
    b"1.5",
    b"1e3",
    b" 1",
    b"1 ",
    b"1\n",
    b"+1",
    b"01",
    b"-0",
    b"--1",
    b"0x10",
    "\u{ff11}".as_bytes(),
    b"\xff",
    b"9223372036854775808",
    b"-9223372036854775809",
    b"99999999999999999999",
];

pub async fn increment_of_a_value_that_is_not_a_decimal_integer_fails(store: &dyn Store, k: &Keys) {
    for (i, raw) in NOT_INTEGERS.iter().enumerate() {
        let key = k.key(&format!("n{i}"));
        store.set(&key, raw, Some(LONG_MS)).await.unwrap();
        assert_eq!(
            store.increment(&key, 1).await,
            Err(StoreError::NotAnInteger),
            "increment of {:?}",
            String::from_utf8_lossy(raw)
        );
        assert_eq!(
            store.get(&key).await.unwrap().as_deref(),
            Some(*raw),
            "unchanged"
        );
        assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    }
}

pub async fn increment_that_would_overflow_fails(store: &dyn Store, k: &Keys) {
    let cases = [
        (i64::MAX, 1),
        (i64::MAX, i64::MAX),
        (1, i64::MAX),
        (i64::MIN, -1),
        (-1, i64::MIN),
        (i64::MIN, i64::MIN),
    ];
    for (i, (start, delta)) in cases.into_iter().enumerate() {
        let key = k.key(&format!("n{i}"));
        let start = start.to_string();
        store.set(&key, start.as_bytes(), None).await.unwrap();
        assert_eq!(
            store.increment(&key, delta).await,
            Err(StoreError::NotAnInteger),
            "{start} + {delta}"
        );
        assert_eq!(store.get(&key).await.unwrap(), Some(v(&start)), "unchanged");
    }
}

pub async fn set_if_absent_stores_only_a_missing_key(store: &dyn Store, k: &Keys) {
    let (a, b, c) = (k.key("a"), k.key("b"), k.key("c"));
    assert!(store.set_if_absent(&a, b"1", None).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(v("1")));
    assert_eq!(store.ttl(&a).await.unwrap(), Ttl::Forever);
    assert!(!store.set_if_absent(&a, b"2", None).await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(v("1")));
    // A refused write leaves the value and its expiry as they were.
    store.set(&b, b"old", Some(LONG_MS)).await.unwrap();
    assert!(!store.set_if_absent(&b, b"new", None).await.unwrap());
    assert_eq!(store.get(&b).await.unwrap(), Some(v("old")));
    assert_fresh_ttl(store.ttl(&b).await.unwrap(), LONG_MS);
    store.set(&c, b"", None).await.unwrap();
    assert!(
        !store
            .set_if_absent(&c, b"new", Some(LONG_MS))
            .await
            .unwrap(),
        "an empty value is there"
    );
    assert_eq!(store.ttl(&c).await.unwrap(), Ttl::Forever);
    assert_eq!(store.get(&c).await.unwrap(), Some(Vec::new()));
}

pub async fn set_if_absent_with_a_ttl_sets_that_expiry(store: &dyn Store, k: &Keys) {
    let (lasting, short) = (k.key("lasting"), k.key("short"));
    assert!(
        store
            .set_if_absent(&lasting, b"1", Some(LONG_MS))
            .await
            .unwrap()
    );
    assert_fresh_ttl(store.ttl(&lasting).await.unwrap(), LONG_MS);
    assert!(
        store
            .set_if_absent(&short, b"1", Some(SHORT_MS))
            .await
            .unwrap()
    );
    wait_until_missing(store, std::slice::from_ref(&short)).await;
    assert!(
        store.set_if_absent(&short, b"2", None).await.unwrap(),
        "expired: absent again"
    );
    assert_eq!(store.get(&short).await.unwrap(), Some(v("2")));
}

pub async fn swap_if_replaces_the_expected_value_with_one_that_never_expires(
    store: &dyn Store,
    k: &Keys,
) {
    let (a, missing, empty) = (k.key("a"), k.key("missing"), k.key("empty"));
    store.set(&a, b"old", Some(LONG_MS)).await.unwrap();
    assert!(store.swap_if(&a, Some(b"old"), b"new").await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(v("new")));
    assert_eq!(
        store.ttl(&a).await.unwrap(),
        Ttl::Forever,
        "the new value has no expiry"
    );
    for wrong in [&b"old"[..], b"ne", b"new!", b""] {
        assert!(
            !store.swap_if(&a, Some(wrong), b"x").await.unwrap(),
            "swapped on {wrong:?}"
        );
    }
    assert_eq!(store.get(&a).await.unwrap(), Some(v("new")));
    assert!(!store.swap_if(&missing, Some(b"x"), b"y").await.unwrap());
    assert!(
        !store.swap_if(&missing, Some(b""), b"y").await.unwrap(),
        "missing is not empty"
    );
    assert!(!store.exists(&missing).await.unwrap());
    store.set(&empty, b"", Some(LONG_MS)).await.unwrap();
    assert!(store.swap_if(&empty, Some(b""), b"full").await.unwrap());
    assert_eq!(store.get(&empty).await.unwrap(), Some(v("full")));
    assert_eq!(store.ttl(&empty).await.unwrap(), Ttl::Forever);
}

pub async fn swap_if_expecting_none_creates_a_missing_key_only(store: &dyn Store, k: &Keys) {
    let (a, empty) = (k.key("a"), k.key("empty"));
    assert!(store.swap_if(&a, None, b"1").await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(v("1")));
    assert_eq!(store.ttl(&a).await.unwrap(), Ttl::Forever);
    assert!(!store.swap_if(&a, None, b"2").await.unwrap());
    assert_eq!(store.get(&a).await.unwrap(), Some(v("1")));
    store.set(&empty, b"", None).await.unwrap();
    assert!(
        !store.swap_if(&empty, None, b"2").await.unwrap(),
        "an empty value is not a missing key"
    );
    assert_eq!(store.get(&empty).await.unwrap(), Some(Vec::new()));
}

pub async fn delete_if_removes_only_the_expected_value(store: &dyn Store, k: &Keys) {
    let (lock, missing, empty) = (k.key("lock"), k.key("missing"), k.key("empty"));
    store.set(&lock, b"token-1", Some(LONG_MS)).await.unwrap();
    for wrong in [&b"token-2"[..], b"token", b"token-12", b"TOKEN-1", b""] {
        assert!(
            !store.delete_if(&lock, wrong).await.unwrap(),
            "deleted on {wrong:?}"
        );
    }
    assert_eq!(store.get(&lock).await.unwrap(), Some(v("token-1")));
    assert_fresh_ttl(store.ttl(&lock).await.unwrap(), LONG_MS);
    assert!(store.delete_if(&lock, b"token-1").await.unwrap());
    assert!(!store.exists(&lock).await.unwrap());
    assert!(
        !store.delete_if(&lock, b"token-1").await.unwrap(),
        "gone already"
    );
    assert!(!store.delete_if(&missing, b"").await.unwrap());
    store.set(&empty, b"", None).await.unwrap();
    assert!(store.delete_if(&empty, b"").await.unwrap());
    assert!(!store.exists(&empty).await.unwrap());
}

/// Each write is seen by the next read of what it changed: a read comes
/// first every time, so that a cache in front holds the old answer.
pub async fn every_write_is_seen_by_the_next_read(store: &dyn Store, k: &Keys) {
    let (key, other) = (k.key("k"), k.key("other"));
    let read_key = &key;
    let get = || async move { store.get(read_key).await.unwrap() };
    assert_eq!(get().await, None);
    store.set(&key, b"1", None).await.unwrap();
    assert_eq!(get().await, Some(v("1")));
    assert!(store.exists(&key).await.unwrap());
    assert!(store.delete(&key).await.unwrap());
    assert!(!store.exists(&key).await.unwrap());
    assert_eq!(get().await, None);
    assert!(store.set_if_absent(&key, b"2", None).await.unwrap());
    assert_eq!(get().await, Some(v("2")));
    assert!(store.swap_if(&key, Some(b"2"), b"3").await.unwrap());
    assert_eq!(get().await, Some(v("3")));
    assert_eq!(store.increment(&key, 1).await.unwrap(), Some(4));
    assert_eq!(get().await, Some(v("4")));
    let both = [key.clone(), other.clone()];
    assert_eq!(
        store.get_many(&both, u64::MAX).await.unwrap(),
        vec![Some(v("4")), None]
    );
    let entries = [(key.clone(), v("5")), (other.clone(), v("6"))];
    store.set_many(&entries, None).await.unwrap();
    assert_eq!(
        store.get_many(&both, u64::MAX).await.unwrap(),
        vec![Some(v("5")), Some(v("6"))]
    );
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Forever);
    assert!(store.expire(&key, Some(LONG_MS)).await.unwrap());
    assert_fresh_ttl(store.ttl(&key).await.unwrap(), LONG_MS);
    assert!(store.expire(&key, None).await.unwrap());
    assert_eq!(store.ttl(&key).await.unwrap(), Ttl::Forever);
    assert_eq!(get().await, Some(v("5")));
    assert!(store.delete_if(&key, b"5").await.unwrap());
    assert_eq!(get().await, None);
    assert!(store.swap_if(&key, None, b"7").await.unwrap());
    assert_eq!(get().await, Some(v("7")));
    assert_eq!(store.delete_many(&both).await.unwrap(), 2);
    assert_eq!(
        store.get_many(&both, u64::MAX).await.unwrap(),
        vec![None, None]
    );
    assert!(!store.exists(&other).await.unwrap());
}

/// `get-many` and `get-indirect` refuse to answer more bytes than their
/// budget, with few keys and with many (backends may switch ways of reading
/// past a few keys), and answer exactly at it.
pub async fn reads_over_their_budget_fail_and_reads_within_it_answer(store: &dyn Store, k: &Keys) {
    let names: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    for name in &names {
        store.set(&k.key(name), &[7; 100], None).await.unwrap();
    }
    for n in [2, 20] {
        let keys: Vec<String> = names[..n].iter().map(|name| k.key(name)).collect();
        let exact = 100 * n as u64;
        assert_eq!(
            store.get_many(&keys, exact).await.unwrap().len(),
            n,
            "{n} keys at the budget"
        );
        let over = store.get_many(&keys, exact - 1).await;
        assert!(
            matches!(over, Err(StoreError::TooLarge(_))),
            "{n} keys over: {over:?}"
        );
    }
    store.set(&k.key("ptr"), b"7", None).await.unwrap();
    let suffixes: Vec<String> = (0..3).map(|i| format!(":{i}")).collect();
    for s in &suffixes {
        store
            .set(&format!("{}7{s}", k.key("e")), &[1; 100], None)
            .await
            .unwrap();
    }
    let also = [k.key("b0")];
    let read = store
        .get_indirect(&k.key("ptr"), &k.key("e"), &suffixes, &also, 400)
        .await;
    assert_eq!(
        read.unwrap().values.len(),
        3,
        "entries and also keys count: 400 fits"
    );
    let over = store
        .get_indirect(&k.key("ptr"), &k.key("e"), &suffixes, &also, 399)
        .await;
    assert!(matches!(over, Err(StoreError::TooLarge(_))), "{over:?}");
}

/// `put-counted` stores and raises the counter until a write would pass
/// the limit; that write changes nothing; the counter gets its expiry.
pub async fn put_counted_stores_and_counts_up_to_the_limit(store: &dyn Store, k: &Keys) {
    let counter = Counter {
        key: k.key("bytes"),
        limit: 250,
        ttl_ms: LONG_MS,
    };
    let entry = |name: &str, len: usize| (k.key(name), vec![3; len]);
    let counter = &counter;
    let put = |entries: Vec<(String, Vec<u8>)>| async move {
        store
            .put_counted(&entries, Some(LONG_MS), counter, false)
            .await
            .unwrap()
    };
    assert_eq!(put(vec![entry("a", 100)]).await, PutOutcome::Stored);
    assert_eq!(
        put(vec![entry("b", 50), entry("c", 50)]).await,
        PutOutcome::Stored
    );
    assert_eq!(store.get(&k.key("bytes")).await.unwrap(), Some(v("200")));
    assert_eq!(put(vec![entry("d", 51)]).await, PutOutcome::OverLimit);
    assert_eq!(
        store.get(&k.key("d")).await.unwrap(),
        None,
        "nothing written"
    );
    assert_eq!(
        store.get(&k.key("bytes")).await.unwrap(),
        Some(v("200")),
        "nor counted"
    );
    assert_eq!(
        put(vec![entry("d", 50)]).await,
        PutOutcome::Stored,
        "exactly to the limit"
    );
    assert_eq!(store.get(&k.key("c")).await.unwrap(), Some(vec![3; 50]));
    assert_fresh_ttl(store.ttl(&k.key("c")).await.unwrap(), LONG_MS);
    assert_fresh_ttl(store.ttl(&k.key("bytes")).await.unwrap(), LONG_MS);
}

/// With `if-absent`, `put-counted` writes the first entry only when its key
/// is missing, and counts only what it wrote.
pub async fn put_counted_if_absent_writes_only_a_missing_key(store: &dyn Store, k: &Keys) {
    let counter = Counter {
        key: k.key("bytes"),
        limit: 1000,
        ttl_ms: LONG_MS,
    };
    let entries = [(k.key("a"), v("first"))];
    let put = |value: &str| {
        let entries = [(k.key("a"), v(value))];
        let counter = counter.clone();
        async move {
            store
                .put_counted(&entries, None, &counter, true)
                .await
                .unwrap()
        }
    };
    assert_eq!(put("first").await, PutOutcome::Stored);
    assert_eq!(put("second").await, PutOutcome::Exists);
    assert_eq!(store.get(&entries[0].0).await.unwrap(), Some(v("first")));
    assert_eq!(store.get(&k.key("bytes")).await.unwrap(), Some(v("5")));
    assert_eq!(store.ttl(&entries[0].0).await.unwrap(), Ttl::Forever);
}
