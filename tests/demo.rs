//! The README's first command, `mcm-bridge demo`, run as a user would: embedded broker, sandbox,
//! generator and bridge in one process. It must exit 0 with every event accounted for.

use std::process::Command;

#[test]
fn demo_accounts_for_every_event_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args([
            "demo",
            "--events",
            "3000",
            "--rate",
            "3000",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("every event is accounted for"), "{stdout}");
    assert!(stdout.contains("produced            3000"), "{stdout}");
    assert!(!stdout.contains("PROBLEM"), "{stdout}");
}

/// `mcm-bridge demo --format avro`: the shop events written as Avro in the registry framing, the
/// schemas served by an in-process registry, and still every event accounted for (the truncated
/// JSON ones dead-lettered as `bad_magic_byte`).
#[test]
fn demo_with_avro_events_accounts_for_every_event_and_exits_zero() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcm-bridge"))
        .args([
            "demo",
            "--events",
            "3000",
            "--rate",
            "3000",
            "--metrics-listen",
            "127.0.0.1:0",
            "--format",
            "avro",
        ])
        .output()
        .expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed: {:?}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("schema registry (in-process)"), "{stdout}");
    assert!(stdout.contains("every event is accounted for"), "{stdout}");
    assert!(stdout.contains("produced            3000"), "{stdout}");
    assert!(stdout.contains("reason=bad_magic_byte"), "{stdout}");
    assert!(!stdout.contains("reason=invalid_json"), "{stdout}");
    assert!(!stdout.contains("PROBLEM"), "{stdout}");
}
