//! The cases every store with [`TtlReads`] runs: the values are those of
//! `get-many` and `get-indirect`, each lifetime is what [`Store::ttl`] answers.
//!
//! [`Store::ttl`]: nscache::store::Store::ttl

use nscache::Ttl;
use nscache::store::{IndirectRead, TtlReads};

use super::{Keys, LONG_MS, SHORT_MS, assert_fresh_ttl, v, wait_until_missing};

/// The cases of this group, handed to `$then` (see `store_suite!`).
macro_rules! ttl_read_cases {
    ($then:ident!($($args:tt)*)) => {
        $then!(ttl_reads as nscache::store::TtlReads, $($args)*;
            get_many_ttl_answers_each_value_with_its_lifetime,
            get_many_ttl_of_no_keys_is_empty,
            get_many_ttl_sees_a_lifetime_run_out,
            get_indirect_ttl_answers_a_lifetime_for_every_key_read,
            get_indirect_ttl_with_a_missing_pointer,
            get_indirect_ttl_with_a_pointer_that_is_not_utf8,
            get_indirect_ttl_of_the_pointer_alone,
        );
    };
}

pub async fn get_many_ttl_answers_each_value_with_its_lifetime(store: &dyn TtlReads, k: &Keys) {
    store.set(&k.key("forever"), b"f", None).await.unwrap();
    store
        .set(&k.key("lasting"), b"l", Some(LONG_MS))
        .await
        .unwrap();
    store.set(&k.key("empty"), b"", None).await.unwrap();
    let keys = k.keys(&["forever", "missing", "lasting", "forever", "empty"]);
    let found = store.get_many_ttl(&keys, u64::MAX).await.unwrap();
    assert_eq!(found.len(), keys.len());
    assert_eq!(found[0], (Some(v("f")), Ttl::Forever));
    assert_eq!(found[1], (None, Ttl::Missing));
    assert_eq!(found[2].0, Some(v("l")));
    assert_fresh_ttl(found[2].1, LONG_MS);
    assert_eq!(found[3], found[0]);
    assert_eq!(found[4], (Some(Vec::new()), Ttl::Forever));
    let values: Vec<Option<Vec<u8>>> = found.into_iter().map(|(value, _)| value).collect();
    assert_eq!(
        values,
        store.get_many(&keys, u64::MAX).await.unwrap(),
        "as get-many"
    );
}

pub async fn get_many_ttl_of_no_keys_is_empty(store: &dyn TtlReads, _: &Keys) {
    assert!(store.get_many_ttl(&[], u64::MAX).await.unwrap().is_empty());
}

pub async fn get_many_ttl_sees_a_lifetime_run_out(store: &dyn TtlReads, k: &Keys) {
    let key = k.key("short");
    store.set(&key, b"v", Some(SHORT_MS)).await.unwrap();
    let found = store
        .get_many_ttl(std::slice::from_ref(&key), u64::MAX)
        .await
        .unwrap();
    match found.as_slice() {
        // Expired already: a slow machine.
        [(None, Ttl::Missing)] => {}
        [(Some(value), ttl)] => {
            assert_eq!(value, b"v");
            assert_fresh_ttl(*ttl, SHORT_MS);
        }
        other => panic!("{other:?}"),
    }
    wait_until_missing(store, std::slice::from_ref(&key)).await;
    assert_eq!(
        store.get_many_ttl(&[key], u64::MAX).await.unwrap(),
        vec![(None, Ttl::Missing)]
    );
}

pub async fn get_indirect_ttl_answers_a_lifetime_for_every_key_read(
    store: &dyn TtlReads,
    k: &Keys,
) {
    let (ptr, prefix) = (k.key("ptr"), k.key("e:"));
    store.set(&ptr, b"v1", None).await.unwrap();
    store
        .set(&k.key("e:v1:a"), b"A", Some(LONG_MS))
        .await
        .unwrap();
    store.set(&k.key("e:v1:b"), b"B", None).await.unwrap();
    store.set(&k.key("x"), b"X", Some(LONG_MS)).await.unwrap();
    let suffixes = [":a", ":b", ":c"].map(String::from);
    let also = k.keys(&["x", "y"]);
    let (read, ttls) = store
        .get_indirect_ttl(&ptr, &prefix, &suffixes, &also, u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        store
            .get_indirect(&ptr, &prefix, &suffixes, &also, u64::MAX)
            .await
            .unwrap(),
        "as get-indirect"
    );
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(v("v1")),
            values: vec![Some(v("A")), Some(v("B")), None],
            also: vec![Some(v("X")), None],
        }
    );
    assert_eq!(
        ttls.len(),
        1 + suffixes.len() + also.len(),
        "the pointer, each entry, each also key: {ttls:?}"
    );
    assert_eq!(ttls[0], Ttl::Forever, "pointer");
    assert_fresh_ttl(ttls[1], LONG_MS);
    assert_eq!(ttls[2..4], [Ttl::Forever, Ttl::Missing], "entries");
    assert_fresh_ttl(ttls[4], LONG_MS);
    assert_eq!(ttls[5], Ttl::Missing, "also");
}

pub async fn get_indirect_ttl_with_a_missing_pointer(store: &dyn TtlReads, k: &Keys) {
    // What an empty pointer would name exists: a missing pointer is no empty one.
    store.set(&k.key("e::a"), b"wrong", None).await.unwrap();
    store.set(&k.key("x"), b"X", None).await.unwrap();
    let suffixes = [":a", ":b"].map(String::from);
    let (read, ttls) = store
        .get_indirect_ttl(
            &k.key("ptr"),
            &k.key("e:"),
            &suffixes,
            &k.keys(&["x"]),
            u64::MAX,
        )
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: None,
            values: vec![None, None],
            also: vec![Some(v("X"))],
        }
    );
    assert_eq!(
        ttls,
        [Ttl::Missing, Ttl::Missing, Ttl::Missing, Ttl::Forever]
    );
}

/// As `get-indirect`: a pointer that is not UTF-8 names no entry.
pub async fn get_indirect_ttl_with_a_pointer_that_is_not_utf8(store: &dyn TtlReads, k: &Keys) {
    let ptr = k.key("ptr");
    store.set(&ptr, b"\xff", None).await.unwrap();
    store
        .set(&k.key("e:\u{FFFD}:a"), b"wrong", None)
        .await
        .unwrap();
    let (read, ttls) = store
        .get_indirect_ttl(&ptr, &k.key("e:"), &[":a".into()], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(b"\xff".to_vec()),
            values: vec![None],
            also: vec![],
        }
    );
    assert_eq!(ttls, [Ttl::Forever, Ttl::Missing]);
}

pub async fn get_indirect_ttl_of_the_pointer_alone(store: &dyn TtlReads, k: &Keys) {
    let ptr = k.key("ptr");
    store.set(&ptr, b"v", Some(LONG_MS)).await.unwrap();
    let (read, ttls) = store
        .get_indirect_ttl(&ptr, &k.key("e:"), &[], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(
        read,
        IndirectRead {
            pointer: Some(v("v")),
            values: vec![],
            also: vec![],
        }
    );
    assert_eq!(ttls.len(), 1);
    assert_fresh_ttl(ttls[0], LONG_MS);
    let (read, ttls) = store
        .get_indirect_ttl(&k.key("no-ptr"), &k.key("e:"), &[], &[], u64::MAX)
        .await
        .unwrap();
    assert_eq!(read, IndirectRead::default());
    assert_eq!(ttls, [Ttl::Missing]);
}
