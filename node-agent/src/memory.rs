//! The allocator's arena cap, set before the runtime starts any thread.
//!
//! glibc gives a thread that finds the allocator busy an arena of its own,
//! up to eight per core. A snapshot or restore stream hops between the
//! runtime's threads, so one arena after another grows to hold chunks in
//! flight, and the agent's peak memory grew with how long a stream ran —
//! with the etcd database's size (measured by `cargo bench -p node-agent
//! --bench snapshot`: 21.7 → 24.6 MiB from 100 to 400 MiB; 21.1 → 23.5 MiB
//! with two arenas; 20.0 → 20.2 MiB with one). The agent allocates little
//! and from two worker threads, so one arena's lock costs nothing
//! measurable (same throughput in the same benchmark).

/// The most arenas glibc may create for this process.
pub const MALLOC_ARENAS: i32 = 1;

/// Caps glibc's arenas at [`MALLOC_ARENAS`]; elsewhere (musl, other
/// systems) the allocator has no per-thread arenas and this does nothing.
/// Must run before any thread is spawned: arenas made earlier stay.
#[allow(unsafe_code)] // the one call into the C library, below
pub fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; called from the
    // main thread before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}
