//! `mcm-bridge validate`: load and check a configuration, print a summary and `ok`, or every error.

use std::path::Path;
use std::process::ExitCode;

pub fn run(path: &Path) -> ExitCode {
    eprintln!("validate {}: not implemented yet", path.display());
    ExitCode::from(2)
}
