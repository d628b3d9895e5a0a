//! Keep freed memory in the process instead of handing it back to the kernel after every tensor.
//!
//! glibc's `malloc` serves blocks above its mmap threshold (128 KiB at first, raised dynamically up
//! to 32 MiB) with fresh `mmap`s and unmaps them on `free`, and trims the heap top above 128 KiB.
//! A training step allocates and frees every activation and gradient (megabytes each), so each
//! step would fault in and zero fresh pages again: perf put page faults at 17 % of a 128² step of
//! the default network. Pinning the threshold at its maximum and not trimming lets the step reuse
//! the heap: 0.52 → 0.45 s/step at 128², 2.23 → 1.80 s at 256² (BENCHMARKS.md). Peak memory is
//! unchanged; what was used stays mapped until the process ends.

/// Applies the settings above (glibc only; elsewhere a no-op). Call once, early in `main`.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; it is called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}
