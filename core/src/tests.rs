//! Unit tests of the cache logic over [`MapHost`].

use proptest::prelude::*;

use crate::*;

fn user(id: &str) -> Scope {
    Scope::User(id.to_owned())
}

fn setup() -> (MapHost, Cache) {
    (MapHost::new(), Cache::default())
}

#[test]
fn namespaced_entries_use_the_reference_layout() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("42"), "profile", b"v", Expiry::Default)
        .unwrap();
    let v = cache.version_of(&host, "42").unwrap().unwrap();
    let keys = host.keys();
    assert!(
        keys.contains(&format!("cache:42:v{v}:data:profile")),
        "{keys:?}"
    );
    assert!(keys.contains(&"cache_user_version:42".to_owned()));
}

#[test]
fn users_are_isolated() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("1"), "k", b"one", Expiry::Default)
        .unwrap();
    cache
        .set(&host, &user("2"), "k", b"two", Expiry::Default)
        .unwrap();
    assert_eq!(
        cache.get(&host, &user("1"), "k").unwrap().as_deref(),
        Some(&b"one"[..])
    );
    assert_eq!(
        cache.get(&host, &user("2"), "k").unwrap().as_deref(),
        Some(&b"two"[..])
    );
    assert_eq!(cache.get(&host, &Scope::Global, "k").unwrap(), None);
}

#[test]
fn invalidating_a_user_hides_only_their_entries() {
    let (host, cache) = setup();
    for i in 0..10 {
        cache
            .set(&host, &user("1"), &format!("k{i}"), b"x", Expiry::Never)
            .unwrap();
    }
    cache
        .set(&host, &user("2"), "k0", b"y", Expiry::Never)
        .unwrap();
    cache
        .set(&host, &Scope::Global, "g", b"z", Expiry::Never)
        .unwrap();
    let before = cache.version_of(&host, "1").unwrap().unwrap();
    let after = cache.invalidate_user(&host, "1").unwrap();
    assert!(after > before);
    assert_eq!(cache.version_of(&host, "1").unwrap(), Some(after));
    for i in 0..10 {
        assert_eq!(
            cache.get(&host, &user("1"), &format!("k{i}")).unwrap(),
            None
        );
    }
    assert!(cache.get(&host, &user("2"), "k0").unwrap().is_some());
    assert!(cache.get(&host, &Scope::Global, "g").unwrap().is_some());
    // The namespace works again at once.
    cache
        .set(&host, &user("1"), "k0", b"new", Expiry::Never)
        .unwrap();
    assert_eq!(
        cache.get(&host, &user("1"), "k0").unwrap().as_deref(),
        Some(&b"new"[..])
    );
}

#[test]
fn invalidation_cost_does_not_depend_on_the_number_of_entries() {
    let cost = |n: usize| {
        let (host, cache) = setup();
        for i in 0..n {
            cache
                .set(&host, &user("u"), &format!("k{i}"), b"x", Expiry::Never)
                .unwrap();
        }
        let before = host.calls();
        cache.invalidate_user(&host, "u").unwrap();
        host.calls() - before
    };
    assert_eq!(cost(10), cost(2000));
}

#[test]
fn a_lost_version_key_never_resurrects_old_entries() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("7"), "k", b"old", Expiry::Never)
        .unwrap();
    let v1 = cache.version_of(&host, "7").unwrap().unwrap();
    cache.invalidate_user(&host, "7").unwrap();
    cache
        .set(&host, &user("7"), "k", b"mid", Expiry::Never)
        .unwrap();
    assert!(host.evict("cache_user_version:7"));
    assert_eq!(cache.get(&host, &user("7"), "k").unwrap(), None);
    cache
        .set(&host, &user("7"), "other", b"x", Expiry::Never)
        .unwrap();
    let v3 = cache.version_of(&host, "7").unwrap().unwrap();
    assert!(v3 > v1 + 1, "re-created version {v3} must be new");
    assert_eq!(cache.get(&host, &user("7"), "k").unwrap(), None);
}

#[test]
fn a_lost_clock_is_reseeded_above_every_version() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("7"), "k", b"old", Expiry::Never)
        .unwrap();
    let v1 = cache.invalidate_user(&host, "7").unwrap();
    host.evict("cache_version_clock");
    host.evict("cache_user_version:7");
    host.advance_ms(1);
    cache
        .set(&host, &user("7"), "k2", b"x", Expiry::Never)
        .unwrap();
    assert!(cache.version_of(&host, "7").unwrap().unwrap() > v1);
}

#[test]
fn a_lost_floor_kills_every_namespace() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("a"), "k", b"1", Expiry::Never)
        .unwrap();
    assert!(host.evict("cache_namespace_floor"));
    assert_eq!(cache.get(&host, &user("a"), "k").unwrap(), None);
    cache
        .set(&host, &user("a"), "k2", b"2", Expiry::Never)
        .unwrap();
    assert_eq!(cache.get(&host, &user("a"), "k").unwrap(), None);
    assert!(cache.get(&host, &user("a"), "k2").unwrap().is_some());
}

#[test]
fn invalidate_all_hides_every_namespace_but_keeps_global_keys() {
    let (host, cache) = setup();
    for u in ["1", "2", "3"] {
        cache
            .set(&host, &user(u), "k", b"x", Expiry::Never)
            .unwrap();
    }
    cache
        .set(
            &host,
            &Scope::Global,
            "invoice_seq:2026",
            b"9",
            Expiry::Never,
        )
        .unwrap();
    cache.invalidate_all(&host).unwrap();
    for u in ["1", "2", "3"] {
        assert_eq!(cache.get(&host, &user(u), "k").unwrap(), None);
        assert_eq!(cache.version_of(&host, u).unwrap(), None);
    }
    assert_eq!(
        cache
            .get(&host, &Scope::Global, "invoice_seq:2026")
            .unwrap()
            .as_deref(),
        Some(&b"9"[..])
    );
    cache
        .set(&host, &user("1"), "k", b"again", Expiry::Never)
        .unwrap();
    assert!(cache.get(&host, &user("1"), "k").unwrap().is_some());
    // A user bumped right after the floor is live; a later invalidate-all still kills it.
    cache.invalidate_user(&host, "1").unwrap();
    cache
        .set(&host, &user("1"), "k", b"again", Expiry::Never)
        .unwrap();
    cache.invalidate_all(&host).unwrap();
    assert_eq!(cache.get(&host, &user("1"), "k").unwrap(), None);
}

#[test]
fn versions_of_many_users_in_one_round_trip() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("a"), "k", b"x", Expiry::Never)
        .unwrap();
    cache
        .set(&host, &user("c"), "k", b"x", Expiry::Never)
        .unwrap();
    let before = host.calls();
    let versions = cache.versions_of(&host, &["a", "b", "c"]).unwrap();
    assert_eq!(host.calls() - before, 1);
    assert_eq!(
        versions,
        vec![
            cache.version_of(&host, "a").unwrap(),
            None,
            cache.version_of(&host, "c").unwrap()
        ]
    );
    assert!(versions[0].is_some() && versions[2].is_some());
    assert!(cache.versions_of(&host, &[]).unwrap().is_empty());
}

#[test]
fn ttl_rules() {
    let (host, cache) = setup();
    let g = Scope::Global;
    cache
        .set(&host, &g, "default", b"x", Expiry::Default)
        .unwrap();
    cache.set(&host, &g, "never", b"x", Expiry::Never).unwrap();
    cache
        .set(&host, &g, "short", b"x", Expiry::AfterMs(1000))
        .unwrap();
    cache
        .set(&host, &g, "never", b"y", Expiry::AfterMs(0))
        .unwrap();
    assert_eq!(
        cache.ttl(&host, &g, "default").unwrap(),
        TimeToLive::RemainingMs(300_000)
    );
    assert_eq!(
        cache.ttl(&host, &g, "never").unwrap(),
        TimeToLive::Missing,
        "timeout 0 removes"
    );
    assert_eq!(
        cache.ttl(&host, &g, "short").unwrap(),
        TimeToLive::RemainingMs(1000)
    );
    host.advance_ms(1001);
    assert_eq!(cache.get(&host, &g, "short").unwrap(), None);
    assert!(
        cache
            .touch(&host, &g, "default", Expiry::AfterMs(50))
            .unwrap()
    );
    assert_eq!(
        cache.ttl(&host, &g, "default").unwrap(),
        TimeToLive::RemainingMs(50)
    );
    assert!(cache.persist(&host, &g, "default").unwrap());
    assert_eq!(
        cache.ttl(&host, &g, "default").unwrap(),
        TimeToLive::Forever
    );
    assert!(!cache.touch(&host, &g, "missing", Expiry::Default).unwrap());
    // add with timeout 0 adds nothing that stays.
    assert!(
        cache
            .add(&host, &g, "zero", b"x", Expiry::AfterMs(0))
            .unwrap()
    );
    assert!(!cache.has_key(&host, &g, "zero").unwrap());
}

#[test]
fn disabled_user_behaves_like_the_dummy_cache() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("9"), "k", b"cached", Expiry::Never)
        .unwrap();
    host.set_cache_enabled("9", false);
    assert_eq!(cache.get(&host, &user("9"), "k").unwrap(), None);
    assert!(!cache.has_key(&host, &user("9"), "k").unwrap());
    cache
        .set(&host, &user("9"), "k2", b"x", Expiry::Never)
        .unwrap();
    assert!(
        cache
            .add(&host, &user("9"), "k3", b"x", Expiry::Never)
            .unwrap()
    );
    assert_eq!(cache.incr(&host, &user("9"), "k", 1), Err(Error::NotFound));
    cache
        .set(&host, &Scope::Global, "g", b"1", Expiry::Never)
        .unwrap();
    assert_eq!(cache.incr(&host, &Scope::Global, "g", 1).unwrap(), 2);
    host.set_cache_enabled("9", true);
    assert!(cache.get(&host, &user("9"), "k").unwrap().is_some());
    assert_eq!(
        cache.get(&host, &user("9"), "k2").unwrap(),
        None,
        "write while disabled was skipped"
    );
    assert_eq!(cache.get(&host, &user("9"), "k3").unwrap(), None);
}

#[test]
fn store_faults_that_are_not_outages_are_reported_not_ridden_out() {
    let (host, cache) = setup();
    let g = Scope::Global;
    cache.set(&host, &g, "n", b"1", Expiry::Never).unwrap();
    cache
        .set(&host, &user("1"), "k", b"x", Expiry::Never)
        .unwrap();
    host.set_faulty(true);
    let internal = |r: Result<_, Error>| matches!(r, Err(Error::Internal(_)));
    assert!(
        internal(cache.get(&host, &g, "n").map(drop)),
        "a global read"
    );
    assert!(
        internal(cache.get(&host, &user("1"), "k").map(drop)),
        "a namespaced read"
    );
    assert!(
        internal(cache.set(&host, &g, "n", b"2", Expiry::Never)),
        "a write"
    );
    assert!(internal(cache.has_key(&host, &g, "n").map(drop)));
    assert!(internal(cache.ttl(&host, &g, "n").map(drop)));
    assert!(internal(cache.incr(&host, &g, "n", 1).map(drop)));
    assert!(internal(cache.invalidate_user(&host, "1").map(drop)));
    assert!(internal(
        cache.read_for_update(&host, &user("1"), "k").map(drop)
    ));
    host.set_faulty(false);
    assert_eq!(
        cache.get(&host, &g, "n").unwrap().as_deref(),
        Some(&b"1"[..])
    );
}

#[test]
fn failure_policy() {
    let (host, cache) = setup();
    let g = Scope::Global;
    cache.set(&host, &g, "n", b"1", Expiry::Never).unwrap();
    cache
        .set(&host, &user("1"), "k", b"x", Expiry::Never)
        .unwrap();
    host.set_down(true);
    assert_eq!(cache.get(&host, &g, "n").unwrap(), None);
    assert_eq!(cache.get(&host, &user("1"), "k").unwrap(), None);
    assert_eq!(
        cache.get_many(&host, &g, &["n", "m"]).unwrap(),
        vec![None, None]
    );
    assert!(!cache.has_key(&host, &g, "n").unwrap());
    assert_eq!(cache.ttl(&host, &g, "n").unwrap(), TimeToLive::Missing);
    cache.set(&host, &g, "n", b"2", Expiry::Never).unwrap();
    cache
        .set(&host, &user("1"), "k", b"y", Expiry::Never)
        .unwrap();
    let unavailable = |r: Result<_, Error>| matches!(r, Err(Error::Unavailable(_)));
    assert!(unavailable(
        cache.add(&host, &g, "a", b"x", Expiry::Never).map(drop)
    ));
    assert!(unavailable(cache.incr(&host, &g, "n", 1).map(drop)));
    assert!(unavailable(cache.delete(&host, &g, "n").map(drop)));
    assert!(unavailable(cache.lock(&host, "l", "me", 1000).map(drop)));
    assert!(unavailable(cache.unlock(&host, "l", "me").map(drop)));
    assert!(unavailable(cache.invalidate_user(&host, "1").map(drop)));
    assert!(unavailable(cache.invalidate_table(&host, "t").map(drop)));
    assert!(unavailable(cache.invalidate_all(&host).map(drop)));
    assert_eq!(
        cache.read_for_update(&host, &user("1"), "k").unwrap(),
        VersionedRead {
            value: None,
            version: 0
        }
    );
    host.set_down(false);
    assert_eq!(
        cache.get(&host, &g, "n").unwrap().as_deref(),
        Some(&b"1"[..]),
        "skipped write left the old value"
    );
    assert_eq!(
        cache.get(&host, &user("1"), "k").unwrap().as_deref(),
        Some(&b"x"[..])
    );
}

#[test]
fn a_value_computed_across_an_invalidation_stays_dead() {
    let (host, cache) = setup();
    let u = user("5");
    let read = cache.read_for_update(&host, &u, "report").unwrap();
    assert_eq!(read.value, None);
    assert!(read.version > 0);
    cache.invalidate_user(&host, "5").unwrap();
    cache
        .set_at(&host, &u, "report", read.version, b"stale", Expiry::Never)
        .unwrap();
    assert_eq!(cache.get(&host, &u, "report").unwrap(), None);
    // Without an invalidation the value lands.
    let read = cache.read_for_update(&host, &u, "report").unwrap();
    cache
        .set_at(&host, &u, "report", read.version, b"fresh", Expiry::Never)
        .unwrap();
    assert_eq!(
        cache.get(&host, &u, "report").unwrap().as_deref(),
        Some(&b"fresh"[..])
    );
    // A version from the future is refused.
    assert!(matches!(
        cache.set_at(&host, &u, "report", read.version + 1, b"x", Expiry::Never),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn counters_follow_django() {
    let (host, cache) = setup();
    let g = Scope::Global;
    assert_eq!(cache.incr(&host, &g, "missing", 1), Err(Error::NotFound));
    assert!(
        !cache.has_key(&host, &g, "missing").unwrap(),
        "incr must not create the key"
    );
    cache
        .set(&host, &g, "n", b"10", Expiry::AfterMs(5000))
        .unwrap();
    assert_eq!(cache.incr(&host, &g, "n", 5).unwrap(), 15);
    assert_eq!(cache.decr(&host, &g, "n", 20).unwrap(), -5);
    assert_eq!(
        cache.ttl(&host, &g, "n").unwrap(),
        TimeToLive::RemainingMs(5000),
        "incr keeps the expiry"
    );
    cache.set(&host, &g, "s", b"abc", Expiry::Never).unwrap();
    assert_eq!(cache.incr(&host, &g, "s", 1), Err(Error::NotAnInteger));
    cache
        .set(
            &host,
            &g,
            "max",
            i64::MAX.to_string().as_bytes(),
            Expiry::Never,
        )
        .unwrap();
    assert_eq!(cache.incr(&host, &g, "max", 1), Err(Error::NotAnInteger));
    assert!(matches!(
        cache.decr(&host, &g, "n", i64::MIN),
        Err(Error::InvalidArgument(_))
    ));
    cache
        .set(&host, &user("3"), "c", b"1", Expiry::Never)
        .unwrap();
    assert_eq!(cache.incr(&host, &user("3"), "c", 1).unwrap(), 2);
}

#[test]
fn locks_have_owners() {
    let (host, cache) = setup();
    assert!(
        cache
            .lock(&host, "cron:full_backup:run_lock", "a", 1000)
            .unwrap()
    );
    assert!(
        !cache
            .lock(&host, "cron:full_backup:run_lock", "b", 1000)
            .unwrap()
    );
    assert!(
        !cache
            .unlock(&host, "cron:full_backup:run_lock", "b")
            .unwrap()
    );
    assert_eq!(
        cache
            .get(&host, &Scope::Global, "cron:full_backup:run_lock")
            .unwrap()
            .as_deref(),
        Some(&b"a"[..])
    );
    assert!(
        cache
            .unlock(&host, "cron:full_backup:run_lock", "a")
            .unwrap()
    );
    assert!(
        cache
            .lock(&host, "cron:full_backup:run_lock", "b", 1000)
            .unwrap()
    );
    host.advance_ms(1001);
    assert!(
        cache
            .lock(&host, "cron:full_backup:run_lock", "c", 1000)
            .unwrap(),
        "timeout frees the lock"
    );
    assert!(matches!(
        cache.lock(&host, "l", "", 1000),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        cache.lock(&host, "l", "a", 0),
        Err(Error::InvalidArgument(_))
    ));
}

#[test]
fn limits_are_enforced_and_nothing_is_stored() {
    let host = MapHost::new();
    let cache = Cache::new(Settings {
        max_key_bytes: 8,
        max_value_bytes: 4,
        ..Settings::default()
    })
    .unwrap();
    let g = Scope::Global;
    assert!(matches!(
        cache.set(&host, &g, "123456789", b"x", Expiry::Never),
        Err(Error::KeyTooLong(_))
    ));
    assert!(matches!(
        cache.set(&host, &g, "k", b"12345", Expiry::Never),
        Err(Error::ValueTooLarge(_))
    ));
    assert!(matches!(
        cache.set_many(&host, &g, &[("a", b"1"), ("b", b"12345")], Expiry::Never),
        Err(Error::ValueTooLarge(_))
    ));
    assert!(host.keys().is_empty());
    assert!(matches!(
        cache.get(&host, &user(""), "k"),
        Err(Error::InvalidName(_))
    ));
    // Spaces, Unicode and colons are fine.
    cache.set(&host, &g, "a b:é", b"1", Expiry::Never).unwrap();
    assert!(cache.get(&host, &g, "a b:é").unwrap().is_some());
}

#[test]
fn table_versions_only_move_forward() {
    let (host, cache) = setup();
    let a = cache.invalidate_table(&host, "invoices").unwrap();
    let b = cache.invalidate_table(&host, "invoices").unwrap();
    assert!(b > a);
    assert!(host.evict("cache_table_version:invoices"));
    let c = cache.invalidate_table(&host, "invoices").unwrap();
    assert!(c > b);
}

#[test]
fn many_ops_and_delete_many() {
    let (host, cache) = setup();
    let u = user("8");
    cache
        .set_many(
            &host,
            &u,
            &[("a", b"1"), ("b", b"2"), ("c", b"3")],
            Expiry::Never,
        )
        .unwrap();
    assert_eq!(
        cache.get_many(&host, &u, &["a", "x", "c"]).unwrap(),
        vec![Some(b"1".to_vec()), None, Some(b"3".to_vec())]
    );
    assert_eq!(cache.delete_many(&host, &u, &["a", "b", "x"]).unwrap(), 2);
    assert_eq!(
        cache.get_many(&host, &u, &["a", "b", "c"]).unwrap(),
        vec![None, None, Some(b"3".to_vec())]
    );
    assert_eq!(
        cache
            .delete_many(&host, &user("never-written"), &["a"])
            .unwrap(),
        0
    );
}

#[test]
fn a_namespaced_get_is_one_round_trip() {
    let (host, cache) = setup();
    cache
        .set(&host, &user("1"), "k", b"x", Expiry::Never)
        .unwrap();
    let before = host.calls();
    cache.get(&host, &user("1"), "k").unwrap();
    cache.get_many(&host, &user("1"), &["k", "l", "m"]).unwrap();
    assert_eq!(host.calls() - before, 2);
}

#[test]
fn a_remembered_version_makes_namespaced_reads_plain_and_never_stale() {
    let (host, cache) = setup();
    // Another instance of the component: its own memory of versions.
    let other = cache.clone();
    cache
        .set(&host, &user("7"), "k", b"v1", Expiry::Never)
        .unwrap();
    let (calls, scripted) = (host.calls(), host.scripted_reads());
    assert_eq!(
        cache.get(&host, &user("7"), "k").unwrap(),
        Some(b"v1".to_vec())
    );
    assert_eq!(host.calls() - calls, 1, "one round trip");
    assert_eq!(
        host.scripted_reads(),
        scripted,
        "the version written is remembered"
    );

    // Invalidated elsewhere: the remembered version is found out of date in
    // the same read, the new one is tried, and nothing old is returned.
    other.invalidate_user(&host, "7").unwrap();
    let calls = host.calls();
    assert_eq!(cache.get(&host, &user("7"), "k").unwrap(), None);
    assert_eq!(
        host.calls() - calls,
        2,
        "the stale guess, then the new version"
    );
    assert_eq!(host.scripted_reads(), scripted);
    other
        .set(&host, &user("7"), "k", b"v2", Expiry::Never)
        .unwrap();
    let calls = host.calls();
    assert_eq!(
        cache.get(&host, &user("7"), "k").unwrap(),
        Some(b"v2".to_vec())
    );
    assert_eq!(host.calls() - calls, 1, "the new version is remembered now");

    // Everything invalidated (the floor raised): a miss, in one plain read.
    other.invalidate_all(&host).unwrap();
    let calls = host.calls();
    assert_eq!(cache.get(&host, &user("7"), "k").unwrap(), None);
    assert_eq!(host.calls() - calls, 1);
    assert_eq!(host.scripted_reads(), scripted);

    // A namespace never seen is resolved by the script, then remembered.
    other
        .set(&host, &user("8"), "k", b"w", Expiry::Never)
        .unwrap();
    assert_eq!(
        cache.get(&host, &user("8"), "k").unwrap(),
        Some(b"w".to_vec())
    );
    assert_eq!(host.scripted_reads(), scripted + 1);
    assert_eq!(
        cache.get(&host, &user("8"), "k").unwrap(),
        Some(b"w".to_vec())
    );
    assert_eq!(host.scripted_reads(), scripted + 1);

    // The version key lost (eviction): misses, never the old entries.
    host.delete(&cache.layout().user("8").version_key).unwrap();
    assert_eq!(cache.get(&host, &user("8"), "k").unwrap(), None);
    assert_eq!(other.get(&host, &user("8"), "k").unwrap(), None);
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[0-9]{1,6}",
        "[a-z:%{}._ -]{0,12}",
        proptest::collection::vec(any::<u8>(), 0..16)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn entry_keys_decode_to_what_made_them(user in any_string().prop_filter("non-empty", |u| !u.is_empty()), version in 1u64.., key in any_string(), tags in any::<bool>()) {
        let layout = Layout::new(&Settings { cluster_hash_tags: tags, ..Settings::default() });
        let entry = layout.user(&user).entry_key(version, Kind::Data, &key);
        let parsed = layout.parse_entry_key(&entry).expect("parses");
        prop_assert_eq!(parsed.user, user);
        prop_assert_eq!(parsed.version, version);
        prop_assert_eq!(parsed.key, key);
    }

    #[test]
    fn distinct_triples_never_share_a_key(u1 in any_string(), u2 in any_string(), v1 in 1u64..4, v2 in 1u64..4, k1 in any_string(), k2 in any_string()) {
        prop_assume!(!u1.is_empty() && !u2.is_empty());
        let layout = Layout::new(&Settings::default());
        let a = layout.user(&u1).entry_key(v1, Kind::Data, &k1);
        let b = layout.user(&u2).entry_key(v2, Kind::Data, &k2);
        let same = u1 == u2 && v1 == v2 && k1 == k2;
        prop_assert_eq!(a == b, same);
        prop_assert_eq!(layout.user(&u1).version_key == layout.user(&u2).version_key, u1 == u2);
    }

    #[test]
    fn keyspaces_never_overlap(u in any_string(), k in any_string(), g in any_string(), t in any_string()) {
        prop_assume!(!u.is_empty() && !t.is_empty());
        let layout = Layout::new(&Settings::default());
        let user = layout.user(&u);
        let entry = user.entry_key(1, Kind::Data, &k);
        let query = user.entry_key(1, Kind::Cacheops, &k);
        let global = layout.global_key(&g);
        let internal = [user.version_key.clone(), layout.table_version_key(&t), layout.floor_key(), layout.clock_key()];
        prop_assert!(entry != global && query != global && entry != query);
        for key in &internal {
            prop_assert!(key != &entry && key != &query && key != &global);
        }
        prop_assert!(layout.parse_entry_key(&global).is_none());
    }

    #[test]
    fn names_round_trip(name in any_string()) {
        let encoded = layout::encode_name(&name);
        let clean = !encoded.contains(':') && !encoded.contains('{') && !encoded.contains('}');
        prop_assert!(clean, "encoded name {} has a separator", encoded);
        prop_assert_eq!(layout::decode_name(&encoded), Some(name));
    }
}

fn small_limits() -> (MapHost, Cache) {
    let settings = Settings {
        max_value_bytes: 100,
        max_reply_bytes: 250,
        namespace_quota_bytes: 300,
        max_namespace_ttl_ms: 60_000,
        ..Settings::default()
    };
    (MapHost::new(), Cache::new(settings).unwrap())
}

#[test]
fn a_reply_counts_every_key_asked_and_reads_repeats_once() {
    let (host, cache) = small_limits();
    for scope in [Scope::Global, user("7")] {
        cache
            .set(&host, &scope, "big", &[1; 100], Expiry::Never)
            .unwrap();
        let calls = host.calls();
        let two = cache.get_many(&host, &scope, &["big", "big"]).unwrap();
        assert_eq!(
            two,
            vec![Some(vec![1; 100]), Some(vec![1; 100])],
            "{scope:?}"
        );
        assert!(host.calls() - calls <= 2, "one read for the repeated key");
        assert!(
            matches!(
                cache.get_many(&host, &scope, &["big"; 3]),
                Err(Error::ReplyTooLarge(_))
            ),
            "300 bytes asked of a 250-byte budget: {scope:?}"
        );
        assert_eq!(
            cache
                .get_many(&host, &scope, &["big", "none", "none"])
                .unwrap()
                .len(),
            3
        );
    }
}

#[test]
fn a_namespace_quota_refuses_writes_past_it_until_invalidated() {
    let (host, cache) = small_limits();
    let alice = user("alice");
    cache
        .set(&host, &alice, "a", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &alice, "b", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &alice, "c", &[0; 100], Expiry::Never)
        .unwrap();
    for refused in [
        cache.set(&host, &alice, "d", &[0; 1], Expiry::Never),
        cache
            .add(&host, &alice, "e", &[0; 1], Expiry::Never)
            .map(drop),
        cache.set_many(&host, &alice, &[("f", &[0; 1][..])], Expiry::Never),
    ] {
        assert!(
            matches!(refused, Err(Error::QuotaExceeded(_))),
            "{refused:?}"
        );
    }
    assert_eq!(
        cache.get(&host, &alice, "d").unwrap(),
        None,
        "nothing written"
    );
    // Other users and the global keyspace are not affected.
    cache
        .set(&host, &user("bob"), "a", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &Scope::Global, "g", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &Scope::Global, "h", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &Scope::Global, "i", &[0; 100], Expiry::Never)
        .unwrap();
    cache
        .set(&host, &Scope::Global, "j", &[0; 100], Expiry::Never)
        .unwrap();
    // An invalidation starts the count again.
    cache.invalidate_user(&host, "alice").unwrap();
    cache
        .set(&host, &alice, "d", &[0; 100], Expiry::Never)
        .unwrap();
}

#[test]
fn namespaced_entries_never_outlive_the_namespace_ttl() {
    let (host, cache) = small_limits();
    let alice = user("alice");
    cache
        .set(&host, &alice, "forever", b"v", Expiry::Never)
        .unwrap();
    cache
        .set(&host, &alice, "long", b"v", Expiry::AfterMs(3_600_000))
        .unwrap();
    cache
        .set(&host, &alice, "short", b"v", Expiry::AfterMs(1_000))
        .unwrap();
    assert!(
        cache
            .add(&host, &alice, "added", b"v", Expiry::Never)
            .unwrap()
    );
    cache
        .set(&host, &Scope::Global, "global", b"v", Expiry::Never)
        .unwrap();
    let remaining = |scope: &Scope, key: &str| cache.ttl(&host, scope, key).unwrap();
    for key in ["forever", "long", "added"] {
        assert_eq!(
            remaining(&alice, key),
            TimeToLive::RemainingMs(60_000),
            "{key}"
        );
    }
    assert_eq!(remaining(&alice, "short"), TimeToLive::RemainingMs(1_000));
    assert!(cache.persist(&host, &alice, "short").unwrap());
    assert_eq!(
        remaining(&alice, "short"),
        TimeToLive::RemainingMs(60_000),
        "persist is capped"
    );
    assert_eq!(
        remaining(&Scope::Global, "global"),
        TimeToLive::Forever,
        "global keys are not"
    );
    host.advance_ms(60_001);
    assert_eq!(cache.get(&host, &alice, "forever").unwrap(), None);
}

#[test]
fn limits_that_cannot_hold_one_value_are_refused() {
    for settings in [
        Settings {
            max_reply_bytes: 10,
            max_value_bytes: 11,
            ..Settings::default()
        },
        Settings {
            namespace_quota_bytes: 10,
            max_value_bytes: 11,
            ..Settings::default()
        },
        Settings {
            max_namespace_ttl_ms: 999,
            ..Settings::default()
        },
    ] {
        assert!(Cache::new(settings).is_err());
    }
    assert!(
        Cache::new(Settings {
            namespace_quota_bytes: 0,
            ..Settings::default()
        })
        .is_ok()
    );
}

fn cluster_cache() -> Cache {
    Cache::new(Settings {
        cluster_hash_tags: true,
        ..Settings::default()
    })
    .unwrap()
}

#[test]
fn on_a_cluster_reads_never_use_get_indirect_and_see_every_invalidation() {
    let host = MapHost::new();
    let (writer, reader) = (cluster_cache(), cluster_cache());
    let u = user("42");
    writer.set(&host, &u, "k", b"v1", Expiry::Default).unwrap();
    let token = reader
        .query_lookup(&host, "42", "SELECT 1", b"", &["invoices"])
        .unwrap()
        .token;
    reader
        .query_store(
            &host,
            "42",
            "SELECT 1",
            b"",
            &["invoices"],
            &token,
            b"r1",
            Expiry::Default,
        )
        .unwrap();
    for _ in 0..3 {
        assert_eq!(
            reader.get(&host, &u, "k").unwrap().as_deref(),
            Some(&b"v1"[..])
        );
        let hit = reader
            .query_lookup(&host, "42", "SELECT 1", b"", &["invoices"])
            .unwrap();
        assert_eq!(hit.value.as_deref(), Some(&b"r1"[..]));
    }
    writer.invalidate_user(&host, "42").unwrap();
    assert_eq!(reader.get(&host, &u, "k").unwrap(), None);
    writer.set(&host, &u, "k", b"v2", Expiry::Default).unwrap();
    assert_eq!(
        reader.get(&host, &u, "k").unwrap().as_deref(),
        Some(&b"v2"[..])
    );
    writer.invalidate_all(&host).unwrap();
    assert_eq!(reader.get(&host, &u, "k").unwrap(), None);
    writer.set(&host, &u, "k", b"v3", Expiry::Default).unwrap();
    assert_eq!(
        reader.get(&host, &u, "k").unwrap().as_deref(),
        Some(&b"v3"[..])
    );
    writer.invalidate_table(&host, "invoices").unwrap();
    let miss = reader
        .query_lookup(&host, "42", "SELECT 1", b"", &["invoices"])
        .unwrap();
    assert_eq!(miss.value, None);
    assert_eq!(host.scripted_reads(), 0, "get-indirect was called");
    assert!(host.keys().contains(&"cache_user_version:{42}".to_owned()));
}

#[test]
fn on_a_cluster_a_new_version_is_above_the_one_it_replaces_even_if_the_clock_went_back() {
    let host = MapHost::new();
    let cache = cluster_cache();
    cache
        .set(&host, &user("7"), "k", b"v", Expiry::Default)
        .unwrap();
    let before = cache.version_of(&host, "7").unwrap().unwrap();
    // A failover of the clock's master lost its last increments.
    host.set("cache_version_clock", b"5", None).unwrap();
    let after = cache.invalidate_user(&host, "7").unwrap();
    assert!(after > before, "{after} <= {before}");
    assert_eq!(cache.get(&host, &user("7"), "k").unwrap(), None);
}
