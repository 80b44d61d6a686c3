//! Giving the heap back to the operating system after a policy (re)load.
//!
//! Compiling a large policy directory allocates several times what the snapshot keeps
//! (10,000 policies: ~95 MiB at the peak for a ~19 MiB snapshot, docs/PERFORMANCE.md), and
//! glibc's allocator keeps freed pages mapped. Without a trim a sidecar's resident memory
//! stays at the load's peak for good; with one it falls back to what is in use.

/// Returns free heap pages to the OS. Cheap when there is little to return; called off the
/// request path (start-up, the reload thread, the blocking pool), after a snapshot's
/// scratch or a replaced snapshot was freed.
pub fn release_free_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only walks glibc's own arenas under their locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe {
        malloc_trim(0);
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
unsafe extern "C" {
    /// glibc, `<malloc.h>`.
    fn malloc_trim(pad: usize) -> std::ffi::c_int;
}
