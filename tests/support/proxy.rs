//! [`TcpProxy`]: a TCP forwarder the test can cut, to make a shared service
//! (Postgres) unreachable for one client without touching the service.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Forwards `127.0.0.1:port` to a target while up; when cut, open
/// connections are dropped and new ones refused.
pub struct TcpProxy {
    /// The local port clients connect to.
    pub port: u16,
    target: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl TcpProxy {
    /// Start forwarding a free local port to `target`.
    pub async fn start(target: SocketAddr) -> TcpProxy {
        let port = crate::free_port();
        let proxy = TcpProxy {
            port,
            target,
            tasks: Arc::default(),
        };
        proxy.resume().await;
        proxy
    }

    /// Accept and forward again (after [`TcpProxy::cut`]).
    pub async fn resume(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port))
            .await
            .expect("bind the proxy port");
        let (target, tasks) = (self.target, self.tasks.clone());
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                tasks.lock().unwrap().push(conn);
            }
        });
        self.tasks.lock().unwrap().push(accept);
    }

    /// Stop: drop every connection and refuse new ones.
    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
