//! A TCP proxy between the relay and the mailbox that can break the line on
//! command: pass traffic, reset connections (a stopped process), hang (a
//! process that accepts and never answers), or pass the request and throw
//! the answer away (the mailbox stored the delivery, the relay never heard).
//!
//! Changing the fault closes every open connection, so the relay's pooled
//! keep-alive connections cannot slip past a new fault.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Pass,
    /// Close at once, before any answer: like a mailbox process that died.
    Reset,
    /// Accept and say nothing, past any timeout.
    Hang,
    /// Forward the request, wait for the mailbox to start answering, then
    /// close both sides without passing the answer on.
    SwallowAnswer,
}

/// One connection the relay opened, and what the proxy did with it.
#[derive(Debug, Clone, Copy)]
pub struct Attempt {
    pub at: Duration,
    pub fault: Fault,
}

struct Shared {
    upstream: Option<SocketAddr>,
    attempts: Vec<Attempt>,
    /// Answers thrown away under `SwallowAnswer`.
    swallowed: usize,
}

pub struct FaultProxy {
    pub url: String,
    started: Instant,
    fault: watch::Sender<Fault>,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(fault: Fault) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let started = Instant::now();
        let (fault_tx, fault_rx) = watch::channel(fault);
        let shared = Arc::new(Mutex::new(Shared {
            upstream: None,
            attempts: Vec::new(),
            swallowed: 0,
        }));
        let task = tokio::spawn(accept_loop(listener, fault_rx, shared.clone(), started));
        Ok(FaultProxy {
            url,
            started,
            fault: fault_tx,
            shared,
            task,
        })
    }

    /// Where `Pass` and `SwallowAnswer` forward to (`http://host:port`).
    pub fn set_upstream(&self, url: &str) {
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .ok();
        if let Ok(mut shared) = self.shared.lock() {
            shared.upstream = addr;
        }
    }

    /// Switches the fault; open connections are closed.
    pub fn set(&self, fault: Fault) {
        self.fault.send_replace(fault);
    }

    pub fn attempts(&self) -> Vec<Attempt> {
        self.shared
            .lock()
            .map(|s| s.attempts.clone())
            .unwrap_or_default()
    }

    pub fn swallowed(&self) -> usize {
        self.shared.lock().map(|s| s.swallowed).unwrap_or(0)
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    fault: watch::Receiver<Fault>,
    shared: Arc<Mutex<Shared>>,
    started: Instant,
) {
    while let Ok((client, _)) = listener.accept().await {
        let mut changed = fault.clone();
        let now = *changed.borrow_and_update();
        let upstream = match shared.lock() {
            Ok(mut s) => {
                s.attempts.push(Attempt {
                    at: started.elapsed(),
                    fault: now,
                });
                s.upstream
            }
            Err(_) => None,
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let serve = serve_one(client, now, upstream, shared);
            tokio::select! {
                _ = serve => {}
                _ = changed.changed() => {} // a new fault: drop the connection
            }
        });
    }
}

async fn serve_one(
    mut client: TcpStream,
    fault: Fault,
    upstream: Option<SocketAddr>,
    shared: Arc<Mutex<Shared>>,
) {
    match fault {
        Fault::Reset => drop(client), // closed before a byte of answer
        Fault::Hang => {
            let mut sink = [0_u8; 8192];
            while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
            // The relay closed its side (its timeout); nothing more to do.
        }
        Fault::Pass => {
            let Some(addr) = upstream else { return };
            if let Ok(mut server) = TcpStream::connect(addr).await {
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            }
        }
        Fault::SwallowAnswer => {
            let Some(addr) = upstream else { return };
            let Ok(server) = TcpStream::connect(addr).await else {
                return;
            };
            let (mut client_read, _client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            let forward = tokio::spawn(async move {
                let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
                let _ = server_write.shutdown().await;
            });
            // The first bytes of an answer mean the mailbox has committed;
            // read on briefly so it finishes writing, then drop everything.
            let mut buffer = [0_u8; 8192];
            if matches!(server_read.read(&mut buffer).await, Ok(n) if n > 0) {
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    while matches!(server_read.read(&mut buffer).await, Ok(n) if n > 0) {}
                })
                .await;
                if let Ok(mut s) = shared.lock() {
                    s.swallowed += 1;
                }
            }
            forward.abort();
        }
    }
}
