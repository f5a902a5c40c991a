//! glibc malloc settings for the C side of the process.
//!
//! Rust code allocates through mimalloc (src/main.rs), but librdkafka is C and uses glibc's
//! malloc. Its mmap threshold is *dynamic*: each time a large block served by mmap (a fetch
//! response, up to MBs) is freed, glibc raises the threshold to that size, so later fetch buffers
//! come from the heap instead, where they fragment and are kept. The bridge's RSS then crept up
//! for minutes at steady load and never came back (bench row 5a).
//!
//! Measured at 2,000 events/s on 8 partitions (tansu, `VmRSS` every 10 s for 150 s, one run each
//! on a busy machine): glibc's defaults 49 → 59.7 MiB, still rising; with the threshold fixed at
//! 128 KiB, 50 → 55.5 MiB, rising more slowly; with a `malloc_trim` every 10 s as well, 49–52 MiB
//! between bursts and 50.9 MiB at the end (bursts, while a big prefetch is held, reach 55–57 MiB
//! and are handed back within 10 s). Small freed blocks in the middle of an arena are otherwise
//! kept: glibc only trims the top of the heap by itself. Capping the arena count at 2 was tried
//! too and gave nothing more, so it is left alone (fewer arenas, more lock contention between
//! librdkafka's threads, which allocate per message).
//!
//! An operator's `MALLOC_MMAP_THRESHOLD_` (read by glibc at start-up) is not overridden.

/// Fixes glibc's mmap threshold and starts the periodic trim (see above); a no-op on targets
/// without glibc.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        const MMAP_THRESHOLD: libc::c_int = 128 * 1024; // glibc's own initial value, now fixed
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
        let _ = std::thread::Builder::new()
            .name("malloc-trim".into())
            .spawn(|| loop {
                #[allow(clippy::disallowed_methods)] // a dedicated thread, not async code
                std::thread::sleep(TRIM_EVERY);
                trim();
            });
    }
}

/// How often free heap memory is handed back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim only returns free pages of glibc's arenas to the kernel (madvise); it
    // takes the arena locks itself and touches no memory we hold.
    let _ = unsafe { libc::malloc_trim(0) };
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn set(param: libc::c_int, value: libc::c_int) {
    // SAFETY: mallopt only changes allocator parameters; it takes two integers, touches no memory
    // of ours, and is safe to call at any time (glibc serialises it with the arena locks). A
    // refused setting (returns 0) leaves glibc's default in place, which is harmless.
    let _ = unsafe { libc::mallopt(param, value) };
}
