//! Connection options real deployments use, each against a redis-server of
//! the test's own configured for it: an ACL user and password in the URL,
//! a wrong password, a revoked user; TLS with a CA of its own, with and
//! without client certificates.

use std::time::Duration;

use nscache::store::{RedisOptions, RedisTls};
use nscache::{Cache, CacheError, Expiry};
use nscache_tests::{RedisServer, raw_connection, unique};

/// A cache on `url` with short timeouts (the failures here are immediate).
async fn cache_on(url: &str) -> Cache {
    tls_cache(url, RedisTls::default())
        .await
        .expect("a cache builds without connecting")
}

/// A server whose `default` user is off: only `app` (password `s3cret`,
/// every key and command but FLUSHALL/FLUSHDB) gets in. Returns the admin
/// connection made before `default` was turned off.
async fn acl_server() -> (RedisServer, redis::aio::MultiplexedConnection) {
    let server = RedisServer::start(&[]);
    let mut admin = raw_connection(&server.url(0)).await;
    let _: () = redis::cmd("ACL")
        .arg(&[
            "SETUSER",
            "app",
            "on",
            ">s3cret",
            "~*",
            "&*",
            "+@all",
            "-flushall",
            "-flushdb",
        ])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER app");
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "default", "off"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER default off");
    (server, admin)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acl_user_and_password_in_the_url_are_used() {
    let (server, _admin) = acl_server().await;
    // Without credentials the server refuses: the cache says so, loudly for
    // writes, as a miss for reads.
    let anonymous = cache_on(&server.url(3)).await;
    assert_eq!(anonymous.user("7").get("k").await.unwrap(), None);
    assert!(matches!(
        anonymous.user("7").add("k", b"v", Expiry::Default).await,
        Err(CacheError::Unavailable(_))
    ));

    let cache = cache_on(&server.url(3).replace("redis://", "redis://app:s3cret@")).await;
    let alice = cache.user("42");
    alice.set("k", b"v", Expiry::secs(60)).await.unwrap();
    assert_eq!(alice.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
    cache
        .global()
        .set("g", b"1", Expiry::Default)
        .await
        .unwrap();
    assert_eq!(cache.global().incr("g", 2).await.unwrap(), 3);
    cache.invalidate_user("42").await.unwrap();
    assert_eq!(alice.get("k").await.unwrap(), None);
    let token = cache
        .lock("cron:acl", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(token.is_some(), "the lock script runs as the ACL user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_fails_loudly_without_showing_it() {
    let (server, _admin) = acl_server().await;
    let url = server
        .url(0)
        .replace("redis://", "redis://app:not-the-password@");
    let cache = cache_on(&url).await;
    let alice = cache.user("42");
    assert_eq!(
        alice.get("k").await.unwrap(),
        None,
        "reads degrade to misses"
    );
    let err = alice
        .add("k", b"v", Expiry::Default)
        .await
        .expect_err("add cannot pretend");
    let CacheError::Unavailable(message) = &err else {
        panic!("a refused login is an outage for the cache: {err:?}");
    };
    assert!(
        !message.contains("not-the-password"),
        "the error does not repeat the password: {message}"
    );
    assert!(cache.invalidate_user("42").await.is_err());
    assert!(cache.ping().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_user_is_refused_at_once() {
    let (server, mut admin) = acl_server().await;
    let url = server.url(2).replace("redis://", "redis://app:s3cret@");
    let cache = cache_on(&url).await;
    let alice = cache.user("42");
    alice.set("k", b"v", Expiry::secs(60)).await.unwrap();
    assert!(alice.get("k").await.unwrap().is_some());

    // ACL DELUSER closes the user's connections; reconnecting is refused.
    let _: () = redis::cmd("ACL")
        .arg(&["DELUSER", "app"])
        .query_async(&mut admin)
        .await
        .expect("ACL DELUSER");
    assert_eq!(
        alice.get("k").await.unwrap(),
        None,
        "reads degrade to misses"
    );
    assert!(matches!(
        alice.add("other", b"w", Expiry::Default).await,
        Err(CacheError::Unavailable(_))
    ));
    assert!(
        cache.invalidate_user("42").await.is_err(),
        "invalidation fails loudly"
    );

    // Granted again: the cache recovers on its own, the entry intact.
    let _: () = redis::cmd("ACL")
        .arg(&["SETUSER", "app", "on", ">s3cret", "~*", "&*", "+@all"])
        .query_async(&mut admin)
        .await
        .expect("ACL SETUSER app");
    let mut back = None;
    for _ in 0..50 {
        back = alice.get("k").await.unwrap();
        if back.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(back.as_deref(), Some(&b"v"[..]));
}

/// Certificates made for one test with the `openssl` command: a CA, a
/// server certificate for 127.0.0.1 and a client certificate, both signed
/// by it, and a second CA nobody signed with.
struct Certificates {
    dir: std::path::PathBuf,
}

impl Certificates {
    fn make() -> Certificates {
        let dir = std::env::temp_dir().join(unique("tls"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl is installed");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let subject = format!("/CN=nscache test {ca}");
            let (key, crt) = (format!("{ca}.key"), format!("{ca}.crt"));
            let mut args = vec!["req", "-x509", "-days", "2", "-subj", &subject];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &crt]);
            openssl(&args);
        }
        for (name, usage) in [
            (
                "server",
                "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
            ),
            ("client", "extendedKeyUsage=clientAuth\n"),
        ] {
            let (key, csr, crt, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.crt"),
                format!("{name}.ext"),
            );
            std::fs::write(dir.join(&ext), usage).expect("write extensions");
            let subject = format!("/CN={name}");
            let mut args = vec!["req", "-subj", &subject];
            args.extend(ec);
            args.extend(["-keyout", &key, "-out", &csr]);
            openssl(&args);
            openssl(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                &crt,
            ]);
        }
        Certificates { dir }
    }

    fn path(&self, file: &str) -> std::path::PathBuf {
        self.dir.join(file)
    }

    fn arg(&self, file: &str) -> String {
        self.path(file).to_str().expect("utf-8 path").to_owned()
    }

    /// A server with a plain port (for the test's own checks) and a TLS port
    /// that requires client certificates when `clients` is "yes".
    fn server(&self, clients: &str) -> (RedisServer, u16) {
        let port = nscache_tests::free_port();
        let server = RedisServer::start(&[
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &self.arg("server.crt"),
            "--tls-key-file",
            &self.arg("server.key"),
            "--tls-ca-cert-file",
            &self.arg("ca.crt"),
            "--tls-auth-clients",
            clients,
        ]);
        (server, port)
    }
}

impl Drop for Certificates {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A cache on `url` with these TLS files and short timeouts.
async fn tls_cache(url: &str, tls: RedisTls) -> Result<Cache, CacheError> {
    let mut options = RedisOptions::new(url);
    options.pool_size = 2;
    options.connect_timeout = Duration::from_secs(2);
    options.socket_timeout = Duration::from_secs(2);
    options.tls = tls;
    Cache::builder()
        .redis(options)
        .key_prefix(unique("p"))
        .namespace_root(unique("ns"))
        .build()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_checks_the_server_against_the_given_ca() {
    let certs = Certificates::make();
    let (_server, port) = certs.server("no");
    let url = format!("rediss://127.0.0.1:{port}/2");

    let trusted = RedisTls {
        ca_cert: Some(certs.path("ca.crt")),
        ..RedisTls::default()
    };
    let cache = tls_cache(&url, trusted).await.unwrap();
    let alice = cache.user("42");
    alice.set("k", b"over tls", Expiry::secs(60)).await.unwrap();
    assert_eq!(
        alice.get("k").await.unwrap().as_deref(),
        Some(&b"over tls"[..])
    );
    cache.invalidate_user("42").await.unwrap();
    assert_eq!(alice.get("k").await.unwrap(), None);

    // A server whose certificate no trusted authority signed is refused:
    // by the system's trust store, and by another CA.
    for tls in [
        RedisTls::default(),
        RedisTls {
            ca_cert: Some(certs.path("other-ca.crt")),
            ..RedisTls::default()
        },
    ] {
        let cache = tls_cache(&url, tls.clone()).await.unwrap();
        assert_eq!(cache.user("42").get("k").await.unwrap(), None, "{tls:?}");
        assert!(
            matches!(
                cache.user("42").add("k", b"v", Expiry::Default).await,
                Err(CacheError::Unavailable(_))
            ),
            "an untrusted server is out of reach: {tls:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_presents_a_client_certificate_when_the_server_requires_one() {
    let certs = Certificates::make();
    let (_server, port) = certs.server("yes");
    let url = format!("rediss://127.0.0.1:{port}/2");
    let ca_only = RedisTls {
        ca_cert: Some(certs.path("ca.crt")),
        ..RedisTls::default()
    };
    let without = tls_cache(&url, ca_only.clone()).await.unwrap();
    assert!(matches!(
        without.global().add("k", b"v", Expiry::Default).await,
        Err(CacheError::Unavailable(_))
    ));

    let with = tls_cache(
        &url,
        RedisTls {
            client_cert: Some(certs.path("client.crt")),
            client_key: Some(certs.path("client.key")),
            ..ca_only
        },
    )
    .await
    .unwrap();
    assert!(with.global().add("k", b"v", Expiry::Default).await.unwrap());
    assert_eq!(
        with.global().get("k").await.unwrap().as_deref(),
        Some(&b"v"[..])
    );
}

#[tokio::test]
async fn tls_files_are_checked_when_the_cache_is_built() {
    let ca = RedisTls {
        ca_cert: Some("/nonexistent/ca.pem".into()),
        ..RedisTls::default()
    };
    let err = tls_cache("redis://127.0.0.1:1/0", ca.clone()).await.err();
    assert!(
        matches!(&err, Some(CacheError::Config(m)) if m.contains("rediss://")),
        "files with a plain URL: {err:?}"
    );
    let err = tls_cache("rediss://127.0.0.1:1/0", ca).await.err();
    assert!(
        matches!(&err, Some(CacheError::Config(m)) if m.contains("/nonexistent/ca.pem")),
        "a missing file is named: {err:?}"
    );
    let half = RedisTls {
        client_cert: Some("/nonexistent/client.pem".into()),
        ..RedisTls::default()
    };
    let err = tls_cache("rediss://127.0.0.1:1/0", half).await.err();
    assert!(
        matches!(&err, Some(CacheError::Config(m)) if m.contains("key")),
        "a certificate without its key: {err:?}"
    );
}
