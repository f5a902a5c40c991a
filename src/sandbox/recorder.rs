//! `--record FILE`: every accepted event appended as one JSON line, exactly as received.
//!
//! Requests hand their body to one writer thread through a bounded channel; the writer owns the
//! `BufWriter`, so no request ever waits on file I/O or a file lock — only, when the writer falls
//! behind by a full channel, on channel capacity (back-pressure instead of an unbounded queue).
//! The writer flushes whenever the channel runs empty (batched writes under load, prompt writes
//! when idle) and on an explicit [`Recorder::flush`], which answers only after every line queued
//! before it is on disk: that is what lets `GET /_sandbox/stats` promise a complete file.

use bytes::Bytes;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

/// Queued lines before senders wait. 8 192 small events is a few MB at most.
const CAPACITY: usize = 8192;
const BUFFER_BYTES: usize = 256 * 1024;

/// A recorder failure.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot create record file {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot start the recorder thread: {0}")]
    Thread(io::Error),
    #[error("the recorder has stopped")]
    Stopped,
    #[error("writing record file {path} failed: {message}")]
    Write { path: PathBuf, message: String },
}

enum Msg {
    Line(Bytes),
    /// Flush, then answer with the first write error since the last flush (if any).
    Flush(oneshot::Sender<Result<(), String>>),
}

/// The sending side, cheap to share between requests.
#[derive(Debug, Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Msg>,
    path: Arc<PathBuf>,
    /// Lines the writer failed to write; shared with the writer thread.
    failed: Arc<AtomicU64>,
}

impl Recorder {
    /// Creates (truncates) `path` and starts the writer thread. The thread ends when the last
    /// `Recorder` clone is dropped, after writing and flushing everything queued.
    pub fn start(path: &Path) -> Result<Recorder, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let (tx, rx) = mpsc::channel(CAPACITY);
        let failed = Arc::new(AtomicU64::new(0));
        let writer_failed = failed.clone();
        // A plain thread rather than a tokio task: the writes are blocking file I/O and the
        // thread lives as long as the sandbox.
        std::thread::Builder::new()
            .name("sandbox-recorder".into())
            .spawn(move || {
                write_loop(
                    rx,
                    BufWriter::with_capacity(BUFFER_BYTES, file),
                    &writer_failed,
                )
            })
            .map_err(RecordError::Thread)?;
        Ok(Recorder {
            tx,
            path: Arc::new(path.to_path_buf()),
            failed,
        })
    }

    /// Queues one accepted body. Waits only when the channel is full.
    pub async fn record(&self, body: Bytes) -> Result<(), RecordError> {
        self.tx
            .send(Msg::Line(body))
            .await
            .map_err(|_| RecordError::Stopped)
    }

    /// Returns once every line queued before this call is written and flushed.
    pub async fn flush(&self) -> Result<(), RecordError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Msg::Flush(done))
            .await
            .map_err(|_| RecordError::Stopped)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => Err(RecordError::Write {
                path: self.path.to_path_buf(),
                message,
            }),
            Err(_) => Err(RecordError::Stopped),
        }
    }

    /// Lines that could not be written since start-up.
    pub fn failed_lines(&self) -> u64 {
        self.failed.load(Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn write_loop<W: Write>(mut rx: mpsc::Receiver<Msg>, mut out: W, failed: &AtomicU64) {
    let mut first_error: Option<String> = None;
    let note = |e: io::Error, first_error: &mut Option<String>| {
        if first_error.is_none() {
            *first_error = Some(e.to_string());
        }
    };
    while let Some(msg) = rx.blocking_recv() {
        match msg {
            Msg::Line(body) => {
                if let Err(e) = write_line(&mut out, &body) {
                    failed.fetch_add(1, Relaxed);
                    note(e, &mut first_error);
                }
            }
            Msg::Flush(done) => {
                if let Err(e) = out.flush() {
                    note(e, &mut first_error);
                }
                // The requester may have gone away; nothing to do then.
                let _ = done.send(first_error.take().map_or(Ok(()), Err));
                continue;
            }
        }
        if rx.is_empty() {
            if let Err(e) = out.flush() {
                note(e, &mut first_error);
            }
        }
    }
    if let Err(e) = out.flush() {
        tracing::warn!(error = %e, "sandbox recorder: final flush failed");
    }
}

/// JSON allows raw newlines only as whitespace between tokens (never inside strings), so turning
/// them into spaces keeps the body's meaning and makes it one line.
fn write_line<W: Write>(out: &mut W, body: &[u8]) -> io::Result<()> {
    if body.iter().any(|b| *b == b'\n' || *b == b'\r') {
        let flat: Vec<u8> = body
            .iter()
            .map(|b| if *b == b'\n' || *b == b'\r' { b' ' } else { *b })
            .collect();
        out.write_all(&flat)?;
    } else {
        out.write_all(body)?;
    }
    out.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_bodies_become_one_line_of_the_same_json() {
        let mut out = Vec::new();
        write_line(&mut out, b"{\n  \"a\": 1,\r\n  \"b\": \"x\"\n}").expect("write");
        write_line(&mut out, br#"{"c":2}"#).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).expect("still JSON");
        assert_eq!(v["b"], "x");
    }

    #[tokio::test]
    async fn flush_makes_every_queued_line_visible_in_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("rec.jsonl");
        let r = Recorder::start(&path).expect("start");
        for i in 0..1000 {
            r.record(Bytes::from(format!("{{\"i\":{i}}}")))
                .await
                .expect("record");
        }
        r.flush().await.expect("flush");
        let text = std::fs::read_to_string(&path).expect("read");
        let got: Vec<String> = text.lines().map(str::to_string).collect();
        assert_eq!(got.len(), 1000);
        assert_eq!(got[999], "{\"i\":999}");
        assert_eq!(r.failed_lines(), 0);
    }

    #[test]
    fn start_fails_with_the_path_when_the_file_cannot_be_created() {
        let err = Recorder::start(Path::new("/nonexistent-dir/x/rec.jsonl")).expect_err("no dir");
        assert!(
            err.to_string().contains("/nonexistent-dir/x/rec.jsonl"),
            "{err}"
        );
    }
}
