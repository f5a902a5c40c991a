//! `mcm-bridge test`: runs YAML test cases against the config's mappings, like `vector test`.
//! Prints one line per case and a field-by-field diff for failures; exit 0 when all pass, 1 when
//! any fails, 2 for config or case-file errors.

use crate::mapping::cases;
use crate::pipeline::process;
use crate::schema::local::InputSchema;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

pub fn run(config: &Path, case_files: &[PathBuf]) -> ExitCode {
    let (cfg, plan) = match super::load_checked(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let opts = process::validate_options(&cfg);
    let (mut passed, mut failed) = (0usize, 0usize);
    let mut fetched: HashMap<(String, String), InputSchema> = HashMap::new();
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
        // Schema files are read relative to the case file; subjects are fetched from the
        // config's registry (once per subject and version).
        let dir = file.parent().unwrap_or(Path::new("."));
        for case in &mut list {
            let schema = match (&case.schema_file, &case.schema_subject) {
                (Some(name), _) => {
                    let path = dir.join(name);
                    std::fs::read_to_string(&path)
                        .map(InputSchema::Text)
                        .map_err(|e| format!("cannot read schema_file {}: {e}", path.display()))
                }
                (None, Some(key)) => match fetched.get(key) {
                    Some(s) => Ok(s.clone()),
                    None => super::registered_schema(&cfg, &key.0, &key.1)
                        .inspect(|s| {
                            fetched.insert(key.clone(), s.clone());
                        })
                        .map_err(|e| format!("schema_subject {:?}: {e}", key.0)),
                },
                (None, None) => continue,
            };
            match schema {
                Ok(s) => case.schema = Some(s),
                Err(e) => {
                    eprintln!("{}: case {:?}: {e}", file.display(), case.name);
                    return ExitCode::from(2);
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
