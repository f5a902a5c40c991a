//! `mcm-bridge test`: runs YAML test cases against the config's mappings, like `vector test`.
//! Prints one line per case and a field-by-field diff for failures; exit 0 when all pass, 1 when
//! any fails, 2 for config or case-file errors.

use crate::mapping::cases;
use crate::pipeline::process;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(config: &Path, case_files: &[PathBuf]) -> ExitCode {
    let (cfg, plan) = match super::load_checked(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = process::validate_options(&cfg);
    let (mut passed, mut failed) = (0usize, 0usize);
    for file in case_files {
        let text = match std::fs::read_to_string(file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("cannot read {}: {e}", file.display());
                return ExitCode::from(2);
            }
        };
        let mut list = match cases::parse(&text) {
            Ok(l) => l,
            Err(errs) => {
                eprintln!("{}: {} case-file error(s):", file.display(), errs.len());
                for e in errs {
                    eprintln!("  {e}");
                }
                return ExitCode::from(2);
            }
        };
        // Schema files are read relative to the case file.
        let dir = file.parent().unwrap_or(Path::new("."));
        for case in &mut list {
            if let Some(name) = &case.schema_file {
                let path = dir.join(name);
                match std::fs::read_to_string(&path) {
                    Ok(t) => case.avro_schema = Some(t),
                    Err(e) => {
                        eprintln!(
                            "{}: case {:?}: cannot read schema_file {}: {e}",
                            file.display(),
                            case.name,
                            path.display()
                        );
                        return ExitCode::from(2);
                    }
                }
            }
        }
        println!("{}", file.display());
        for case in &list {
            let r = cases::run(&plan, case, &opts);
            if r.passed() {
                passed += 1;
                println!("  ok    {}", r.name);
            } else {
                failed += 1;
                let rule = r
                    .rule
                    .as_deref()
                    .map(|n| format!(" (rule {n})"))
                    .unwrap_or_default();
                println!("  FAIL  {}{rule}", r.name);
                for line in &r.diff {
                    println!("          {line}");
                }
            }
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
