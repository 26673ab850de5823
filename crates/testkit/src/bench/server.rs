//! kuvert's server side as a child process: this same executable with
//! `node serve …` (the `kuvert` command line, as `kuvert-crashtest` runs
//! it), so its CPU time and memory are its own, apart from the client's.

use anyhow::Context as _;
use kuvert_testkit::crash::{free_port, spawn_node, terminate};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::process::Child;

pub struct Server {
    pub url: String,
    pub pid: u32,
    pub data: PathBuf,
    child: Child,
}

impl Server {
    /// Starts `kuvert serve --demo` (all roles in one process: the relay
    /// delivers to the built-in mailbox over loopback HTTP) on `data`.
    pub async fn start(data: &Path) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("my own executable")?;
        let port = free_port()?;
        let url = format!("http://127.0.0.1:{port}");
        let listen = format!("127.0.0.1:{port}");
        let args = [
            "serve".as_ref(),
            "--data".as_ref(),
            data.as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
            "--demo".as_ref(),
        ];
        let child: Child = spawn_node(&exe, &args, &data.join("server.log"))?;
        let pid = child.id().context("server pid")?;
        let mut server = Server {
            url,
            pid,
            data: data.to_path_buf(),
            child,
        };
        server.wait_healthy().await?;
        // The bench measures kuvert, not the demo tenant's default quotas.
        kuvert_testkit::crash::unthrottle(&exe, data, "demokommun").await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let log = self.data.join("server.log");
        kuvert_testkit::crash::wait_healthy(
            &self.url,
            &mut self.child,
            Duration::from_secs(120),
            &log,
        )
        .await
    }

    pub fn cpu_seconds(&self) -> f64 {
        super::proc::cpu_seconds(self.pid).unwrap_or(f64::NAN)
    }

    pub fn peak_rss_mib(&self) -> f64 {
        super::proc::peak_rss_mib(self.pid).unwrap_or(f64::NAN)
    }

    pub fn rss_mib(&self) -> f64 {
        super::proc::rss_mib(self.pid).unwrap_or(f64::NAN)
    }

    /// SIGTERM and wait (a graceful stop); SIGKILL after 60 s.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        terminate(&mut self.child, Duration::from_secs(60)).await
    }
}

/// A fresh data folder: under `parent` when given (kept), else temporary.
pub struct DataDir {
    pub path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl DataDir {
    pub fn new(parent: Option<&Path>, name: &str) -> anyhow::Result<DataDir> {
        match parent {
            Some(parent) => {
                let path = parent.join(name);
                if path.exists() {
                    std::fs::remove_dir_all(&path)
                        .with_context(|| format!("clearing {}", path.display()))?;
                }
                std::fs::create_dir_all(&path)?;
                Ok(DataDir { path, _temp: None })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix(&format!("kuvert-bench-{name}-"))
                    .tempdir()?;
                Ok(DataDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }
}
