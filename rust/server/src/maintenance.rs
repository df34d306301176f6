//! Periodic housekeeping that gives space and memory back after large executions.

use std::time::Duration;

use alula_admin::Store;

/// How often: often enough that a burst of large inputs does not leave a WAL of hundreds of MB
/// for long, rarely enough to cost nothing measurable.
const INTERVAL: Duration = Duration::from_secs(30);

/// Every [`INTERVAL`]: the database gives freed pages back and truncates its WAL, and the
/// allocator returns freed memory to the system.
pub(crate) async fn run(store: Store) {
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate
    loop {
        tick.tick().await;
        if let Err(e) = store.maintain().await {
            tracing::warn!(error = %e, "database maintenance failed");
        }
        trim_memory();
    }
}

/// glibc keeps memory freed in its per-thread arenas (and, once a large block was freed, raises
/// its mmap threshold to 32 MB, so later large request bodies land in those arenas too): after
/// two 12 MB registrations the process held almost 2 GB. `malloc_trim` hands the free pages of
/// every arena back; it is cheap when there is little to give.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn trim_memory() {
    // SAFETY: malloc_trim only walks the allocator's own free lists; it takes no pointers.
    #[allow(unsafe_code)]
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn trim_memory() {}
