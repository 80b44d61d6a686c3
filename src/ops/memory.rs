//! Giving the heap back to the operating system after a policy (re)load.
//!
//! Compiling a large policy directory allocates several times what the snapshot keeps
//! (10,000 policies: ~95 MiB at the peak for a ~19 MiB snapshot, docs/PERFORMANCE.md), and
//! glibc's allocator keeps freed pages mapped. Without a trim a sidecar's resident memory
//! stays at the load's peak for good; with one it falls back to what is in use.
//!
//! The trim alone is not enough: `malloc_trim` never shrinks the top of a thread's own
//! arena (the policy readers', the reload thread's, each worker's), and glibc raises its
//! trim and mmap thresholds as soon as one large block (a policy file's text) is freed, after
//! which those arenas keep every freed page. Fixing the thresholds at start-up keeps them
//! where they are: 10,000 policies idle went 35.8 → 27.6 MiB resident.

/// Fixes glibc's trim and mmap thresholds at their defaults (128 KiB), which turns off its
/// raising them on the fly. Called first thing in `main`.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only sets glibc's allocator parameters (under its own lock).
    unsafe {
        glibc::mallopt(glibc::M_TRIM_THRESHOLD, glibc::THRESHOLD);
        glibc::mallopt(glibc::M_MMAP_THRESHOLD, glibc::THRESHOLD);
    }
}

/// Returns free heap pages to the OS. Cheap when there is little to return; called off the
/// request path (start-up, the reload thread, the blocking pool), after a snapshot's
/// scratch or a replaced snapshot was freed.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own arenas under their locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe {
        glibc::malloc_trim(0);
    }
}

/// glibc, `<malloc.h>`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    use std::ffi::c_int;

    pub const M_TRIM_THRESHOLD: c_int = -1;
    pub const M_MMAP_THRESHOLD: c_int = -3;
    pub const THRESHOLD: c_int = 128 * 1024;

    unsafe extern "C" {
        pub fn malloc_trim(pad: usize) -> c_int;
        pub fn mallopt(param: c_int, value: c_int) -> c_int;
    }
}
