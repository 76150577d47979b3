//! A private Redis Cluster on free loopback ports, for the cluster tests.
//!
//! [`RedisCluster::start`] starts `masters × (1 + replicas)` `redis-server`s
//! (cluster mode, no persistence, each in its own directory under one
//! temporary directory), joins them with `redis-cli --cluster create` and
//! waits until every node reports `cluster_state:ok` and every replica is
//! linked; dropping it stops them and removes the directory.
//! [`RedisCluster::shared`] is one cluster (3 masters, 1 replica each) for
//! the whole test binary, started by the first test that asks and stopped
//! when the process exits.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{free_port, unique};

/// One node: its client port and its process.
struct Node {
    port: u16,
    bus: u16,
    child: Option<Child>,
}

/// A Redis Cluster of the test's own (see the module documentation).
pub struct RedisCluster {
    nodes: Mutex<Vec<Node>>,
    ports: Vec<u16>,
    masters: usize,
    node_timeout_ms: u64,
    dir: PathBuf,
}

/// The cluster [`RedisCluster::shared`] hands out.
static SHARED: OnceLock<RedisCluster> = OnceLock::new();

extern "C" fn stop_shared_at_exit() {
    if let Some(cluster) = SHARED.get() {
        cluster.stop_all();
    }
}

impl RedisCluster {
    /// One cluster for every test of this binary: 3 masters with 1 replica
    /// each, cluster node timeout 5 s. Started on first use; stopped (and its
    /// directory removed) when the process exits.
    pub fn shared() -> &'static RedisCluster {
        SHARED.get_or_init(|| {
            // Started from a thread that lives as long as the process, so
            // that the servers' parent-death signal fires only at exit.
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let cluster = RedisCluster::start(3, 1, 5000);
                tx.send(cluster).expect("the test waits for its cluster");
                loop {
                    std::thread::park();
                }
            });
            let cluster = rx.recv().expect("the cluster starts");
            // SAFETY: registers a plain `extern "C"` function with no
            // arguments, as `atexit` requires.
            unsafe {
                libc::atexit(stop_shared_at_exit);
            }
            cluster
        })
    }

    /// Start a cluster of `masters` masters with `replicas` replicas each;
    /// a node not heard from for `node_timeout_ms` is failed over.
    pub fn start(masters: usize, replicas: usize, node_timeout_ms: u64) -> RedisCluster {
        let dir = std::env::temp_dir().join(unique("cluster"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let count = masters * (1 + replicas);
        let mut nodes = Vec::with_capacity(count);
        for _ in 0..count {
            let (port, bus) = (free_port(), free_port());
            let node_dir = dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let child = spawn_node(port, bus, &node_dir, node_timeout_ms);
            nodes.push(Node {
                port,
                bus,
                child: Some(child),
            });
        }
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        let cluster = RedisCluster {
            nodes: Mutex::new(nodes),
            ports: ports.clone(),
            masters,
            node_timeout_ms,
            dir,
        };
        for &port in &ports {
            wait_for(
                &format!("node {port} answers"),
                Duration::from_secs(10),
                || node_cmd(port, &["PING"]).is_some_and(|r| r.trim() == "PONG"),
            );
        }
        let mut create = Command::new("redis-cli");
        create.arg("--cluster").arg("create");
        for port in &ports {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let out = create
            .args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .expect("redis-cli is installed");
        assert!(
            out.status.success(),
            "redis-cli --cluster create: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        cluster.wait_healthy(Duration::from_secs(30));
        cluster
    }

    /// Wait until every running node reports `cluster_state:ok` and every
    /// primary has its replicas linked.
    pub fn wait_healthy(&self, limit: Duration) {
        let ports = self.running_ports();
        let replicas = self.ports.len() / self.masters - 1;
        wait_for("the cluster is whole", limit, || {
            ports.iter().all(|&port| {
                node_cmd(port, &["CLUSTER", "INFO"])
                    .is_some_and(|info| info.contains("cluster_state:ok"))
            }) && ports.iter().all(|&port| {
                node_cmd(port, &["INFO", "replication"]).is_some_and(|info| {
                    if info.contains("role:master") {
                        info.contains(&format!("connected_slaves:{replicas}"))
                    } else {
                        info.contains("master_link_status:up")
                    }
                })
            })
        });
    }

    /// `redis+cluster://` URL naming every master and replica started.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        format!("redis+cluster://{}/", hosts.join(","))
    }

    /// The ports of the nodes still running.
    pub fn running_ports(&self) -> Vec<u16> {
        self.nodes
            .lock()
            .expect("nodes")
            .iter()
            .filter(|n| n.child.is_some())
            .map(|n| n.port)
            .collect()
    }

    /// The ports of the running primaries, from `CLUSTER NODES`.
    pub fn primaries(&self) -> Vec<u16> {
        let running = self.running_ports();
        running
            .iter()
            .copied()
            .filter(|&port| {
                node_cmd(port, &["INFO", "replication"]).is_some_and(|i| i.contains("role:master"))
            })
            .collect()
    }

    /// The slot of `key` (`CLUSTER KEYSLOT`).
    pub fn keyslot(&self, key: &str) -> u16 {
        let port = self.running_ports()[0];
        node_cmd(port, &["CLUSTER", "KEYSLOT", key])
            .and_then(|s| s.trim().parse().ok())
            .expect("CLUSTER KEYSLOT")
    }

    /// The port of the primary that serves `key` now (`CLUSTER NODES` as
    /// the first running node sees it).
    pub fn owner(&self, key: &str) -> u16 {
        let slot = self.keyslot(key);
        let nodes =
            node_cmd(self.running_ports()[0], &["CLUSTER", "NODES"]).expect("CLUSTER NODES");
        nodes
            .lines()
            .find(|l| {
                l.split(' ')
                    .nth(2)
                    .is_some_and(|f| f.contains("master") && !f.contains("fail"))
                    && owns_slot(l, slot)
            })
            .and_then(|l| {
                l.split(' ')
                    .nth(1)?
                    .split('@')
                    .next()?
                    .rsplit_once(':')?
                    .1
                    .parse()
                    .ok()
            })
            .expect("a primary owns the slot")
    }

    /// Kill the node on `port` at once (SIGKILL): no goodbye to the cluster.
    pub fn kill(&self, port: u16) {
        let mut nodes = self.nodes.lock().expect("nodes");
        if let Some(node) = nodes.iter_mut().find(|n| n.port == port)
            && let Some(mut child) = node.child.take()
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start the node on `port` again, with the cluster state it had: a
    /// master that was failed over comes back as a replica of its successor.
    pub fn restart(&self, port: u16) {
        let mut nodes = self.nodes.lock().expect("nodes");
        let node = nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if node.child.is_none() {
            let dir = self.dir.join(port.to_string());
            node.child = Some(spawn_node(port, node.bus, &dir, self.node_timeout_ms));
        }
    }

    fn stop_all(&self) {
        if let Ok(mut nodes) = self.nodes.lock() {
            for node in nodes.iter_mut() {
                if let Some(mut child) = node.child.take() {
                    let _ = child.kill();
                    let _ = child.wait();
                }
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        self.stop_all();
    }
}

/// True if a `CLUSTER NODES` line lists `slot` among its ranges.
fn owns_slot(line: &str, slot: u16) -> bool {
    line.split(' ').skip(8).any(|range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        matches!((lo.parse::<u16>(), hi.parse::<u16>()), (Ok(lo), Ok(hi)) if (lo..=hi).contains(&slot))
    })
}

fn spawn_node(port: u16, bus: u16, dir: &std::path::Path, node_timeout_ms: u64) -> Child {
    let mut cmd = Command::new("redis-server");
    cmd.args([
        "--port",
        &port.to_string(),
        "--cluster-port",
        &bus.to_string(),
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &format!("nodes-{port}.conf"),
        "--cluster-node-timeout",
        &node_timeout_ms.to_string(),
        "--save",
        "",
        "--appendonly",
        "no",
    ])
    .arg("--dir")
    .arg(dir)
    .stdout(Stdio::null())
    .stderr(Stdio::null());
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: `prctl` is async-signal-safe; nothing else runs between
        // fork and exec. The server dies with the thread that started it.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
    }
    cmd.spawn()
        .expect("redis-server is installed (.ci/run installs it)")
}

/// The text of `redis-cli -p port args…`, `None` if it fails.
pub fn node_cmd(port: u16, args: &[&str]) -> Option<String> {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.success() && !text.starts_with("Could not connect")).then_some(text)
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
