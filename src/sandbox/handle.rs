//! [`SandboxHandle`]: an in-process sandbox as tests and the demo see it — its address, its
//! counters, its faults, its recorded ids, and a graceful stop. Calls go straight to the shared
//! state (no HTTP round trip), with the same semantics as the `/_sandbox/` routes.

use super::config::{Faults, FaultsError};
use super::state::Shared;
use super::stats::SandboxStats;
use super::SandboxError;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A running sandbox. Dropping it stops the server (without waiting).
#[derive(Debug)]
pub struct SandboxHandle {
    addr: SocketAddr,
    platform_id: String,
    /// Serves HTTPS.
    tls: bool,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), SandboxError>>>,
}

impl SandboxHandle {
    pub(super) fn new(
        addr: SocketAddr,
        platform_id: String,
        tls: bool,
        shared: Arc<Shared>,
        stop: oneshot::Sender<()>,
        task: JoinHandle<Result<(), SandboxError>>,
    ) -> SandboxHandle {
        SandboxHandle {
            addr,
            platform_id,
            tls,
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, or `https://…` when it serves TLS — what the bridge's
    /// `mcm.base_url` should be. (A generated certificate is valid for `127.0.0.1`.)
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// The full event URL for the configured platform.
    pub fn events_url(&self) -> String {
        format!(
            "{}{}",
            self.base_url(),
            super::events_path(&self.platform_id)
        )
    }

    /// The counters, after flushing the recorder (as `GET /_sandbox/stats` does).
    pub async fn stats(&self) -> SandboxStats {
        if let Some(recorder) = &self.shared.recorder {
            if recorder.flush().await.is_err() {
                self.shared.counters.record_error();
            }
        }
        self.shared.snapshot()
    }

    /// Replaces every fault knob (re-arming `outage_after`).
    pub fn set_faults(&self, faults: &Faults) -> Result<(), FaultsError> {
        self.shared.set_faults(faults)
    }

    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// Changes the accepted API key.
    pub fn set_api_key(&self, key: &str) {
        self.shared.set_api_key(key);
    }

    /// Zeroes counters and the id set (the record file is kept).
    pub fn reset(&self) {
        self.shared.reset();
    }

    /// The `id` of every accepted event, in acceptance order, duplicates included (read back from
    /// the record file after a flush). Events without an `id` are skipped.
    pub async fn accepted_ids(&self) -> Result<Vec<String>, SandboxError> {
        let recorder = self
            .shared
            .recorder
            .as_ref()
            .ok_or(SandboxError::NotRecording)?;
        recorder.flush().await?;
        let path = recorder.path().to_path_buf();
        let text = tokio::fs::read_to_string(&path)
            .await
            .map_err(|source| SandboxError::ReadRecord { path, source })?;
        Ok(text
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
            .collect())
    }

    /// Stops accepting connections, lets in-flight requests finish, flushes the record file.
    pub async fn shutdown(mut self) -> Result<(), SandboxError> {
        if let Some(stop) = self.stop.take() {
            // The server may already have stopped on its own; then there is nobody to tell.
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.map_err(|e| SandboxError::Task(e.to_string()))?,
            None => Ok(()),
        }
    }
}
