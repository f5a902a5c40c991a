//! Confluent's own Python serializers, as an encoder independent of the bridge: a venv with
//! `confluent-kafka[avro,schemaregistry,json,protobuf]` and `fastavro` at pinned versions, and runners for
//! `scripts/schema_produce.py` and ad-hoc snippets.
//!
//! The venv is built once per machine under the cache root the Apache Kafka jars use
//! (`$XDG_CACHE_HOME` or `~/.cache`, then `mcm-bridge/`). It is built in a temporary directory
//! beside its final place and renamed there when complete, so a crashed build leaves no half venv
//! and concurrent test processes never see one: each may build its own, the first rename wins, the
//! others discard theirs. (Only `bin/python` is used, which works after the move; pip's own entry
//! scripts would not.) A failed install panics with pip's output. Needs `python3` (or `$PYTHON`)
//! with the `venv` module, and PyPI.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

/// What the venv holds. Changing a pin changes the directory name, so old venvs are not reused.
const REQUIREMENTS: [&str; 3] = [
    "confluent-kafka[avro,schemaregistry,json,protobuf]==2.16.2",
    "fastavro==1.13.1",
    "protobuf==7.36.2",
];
const VENV_NAME: &str = "py-confluent-kafka-2.16.2-fastavro-1.13.1-protobuf-7.36.2";

/// The encoder script, run with [`python`].
pub const SCHEMA_PRODUCE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/schema_produce.py");

/// The venv's interpreter, building the venv first if this machine has none.
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| ensure_venv(&cache_root().join(VENV_NAME)))
        .clone()
}

/// Runs `scripts/schema_produce.py args` with `stdin_lines` as its input and returns its stdout;
/// panics with its stderr if it fails.
pub fn schema_produce(args: &[&str], stdin_lines: &[String]) -> String {
    let out = schema_produce_output(args, stdin_lines);
    assert!(
        out.status.success(),
        "schema_produce.py {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Like [`schema_produce`], for tests that expect a failure: the whole output, whatever the exit.
pub fn schema_produce_output(args: &[&str], stdin_lines: &[String]) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg(SCHEMA_PRODUCE).args(args);
    run(cmd, &stdin_lines.join("\n"))
}

/// Runs a Python snippet (`python -c code args…`) with the venv's interpreter.
pub fn run_python(code: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg("-c").arg(code).args(args);
    run(cmd, "")
}

fn run(mut cmd: Command, stdin: &str) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let mut pipe = child.stdin.take().expect("stdin was piped");
    // Written from a thread so a child that writes a lot before reading cannot deadlock us.
    let input = stdin.to_string();
    let writer = std::thread::spawn(move || {
        let _ = pipe.write_all(input.as_bytes());
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("waiting for {cmd:?}: {e}"));
    let _ = writer.join();
    out
}

/// `$XDG_CACHE_HOME/mcm-bridge` or `~/.cache/mcm-bridge`, as scripts/kafka.py uses.
fn cache_root() -> PathBuf {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    base.join("mcm-bridge")
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// A venv is complete when it holds this marker, written after pip succeeded.
fn complete(venv: &Path) -> bool {
    venv.join(".complete").exists()
}

fn ensure_venv(venv: &Path) -> PathBuf {
    if complete(venv) {
        return venv_python(venv);
    }
    let parent = venv.parent().expect("the venv path has a parent");
    std::fs::create_dir_all(parent)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", parent.display()));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let tmp = parent.join(format!("{VENV_NAME}.tmp.{}.{nanos}", std::process::id()));
    build(&tmp);
    if let Err(e) = std::fs::rename(&tmp, venv) {
        // Another process finished first (the target exists and is not empty): use its venv.
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            complete(venv),
            "cannot move the venv {} to {}: {e}",
            tmp.display(),
            venv.display()
        );
    }
    venv_python(venv)
}

fn build(tmp: &Path) {
    let system_python = std::env::var_os("PYTHON").unwrap_or_else(|| "python3".into());
    check(
        Command::new(&system_python).args(["-m", "venv"]).arg(tmp),
        "create the venv (is python3-venv installed?)",
        tmp,
    );
    check(
        Command::new(venv_python(tmp))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(REQUIREMENTS),
        "pip install Confluent's serializers",
        tmp,
    );
    std::fs::write(tmp.join(".complete"), REQUIREMENTS.join("\n"))
        .unwrap_or_else(|e| panic!("cannot mark {} complete: {e}", tmp.display()));
}

/// Runs a build step; on failure removes the half-built venv and panics with the step's output.
fn check(cmd: &mut Command, what: &str, tmp: &Path) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot {what}: cannot run {cmd:?}: {e}"));
    if !out.status.success() {
        let _ = std::fs::remove_dir_all(tmp);
        panic!(
            "cannot {what}: {cmd:?} exited with {}:\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
