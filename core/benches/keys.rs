//! Key derivation and encoding, and a whole namespaced get over the in-memory
//! `MapHost`, each beside its baseline (a plain `format!` of the same key).

use criterion::{Criterion, criterion_group, criterion_main};
use nscache_core::{Cache, Expiry, Kind, Layout, MapHost, Scope, Settings, layout::encode_name};
use std::hint::black_box;

fn keys(c: &mut Criterion) {
    let layout = Layout::new(&Settings::default());
    let mut group = c.benchmark_group("entry-key");
    group.bench_function("baseline-format", |b| {
        b.iter(|| {
            format!(
                "cache:{}:v{}:data:{}",
                black_box("42"),
                black_box(17u64),
                black_box("profile")
            )
        })
    });
    group.bench_function("layout-integer-id", |b| {
        b.iter(|| {
            layout
                .user(black_box("42"))
                .entry_key(black_box(17), Kind::Data, black_box("profile"))
        })
    });
    group.bench_function("layout-unicode-id", |b| {
        b.iter(|| {
            layout
                .user(black_box("ünïcødé:user@example.com"))
                .entry_key(black_box(17), Kind::Data, black_box("profile"))
        })
    });
    group.finish();

    let mut group = c.benchmark_group("encode-name");
    group.bench_function("plain", |b| b.iter(|| encode_name(black_box("1234567"))));
    group.bench_function("escaped", |b| {
        b.iter(|| encode_name(black_box("user:é{1}")))
    });
    group.finish();

    let host = MapHost::new();
    let cache = Cache::default();
    let scope = Scope::User("42".into());
    cache
        .set(&host, &scope, "profile", b"value", Expiry::Never)
        .unwrap();
    let mut group = c.benchmark_group("get-over-maphost");
    group.bench_function("baseline-raw-host-get", |b| {
        use nscache_core::Host;
        let v = cache.version_of(&host, "42").unwrap().unwrap();
        let key = format!("cache:42:v{v}:data:profile");
        b.iter(|| host.get(black_box(&key)).unwrap())
    });
    group.bench_function("namespaced-get", |b| {
        b.iter(|| cache.get(&host, &scope, black_box("profile")).unwrap())
    });
    group.finish();
}

criterion_group!(benches, keys);
criterion_main!(benches);
