//! Process-wide memory settings made once at the start of `main`, before the shards start.

/// Raises RLIMIT_MEMLOCK to its hard limit (to infinity when allowed): glommio registers its
/// io_uring buffers in locked memory, 10 MiB per executor by default. Best effort; the error,
/// if any, is reported by the executor that cannot start.
pub fn raise_memlock_limit() {
    // SAFETY: getrlimit/setrlimit with a valid resource id and a valid struct pointer.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) != 0 {
            return;
        }
        let wanted = libc::rlimit {
            rlim_cur: libc::RLIM_INFINITY,
            rlim_max: libc::RLIM_INFINITY,
        };
        if libc::setrlimit(libc::RLIMIT_MEMLOCK, &wanted) != 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_MEMLOCK, &limit);
        }
    }
}

/// Turns transparent huge pages off for this process (`PR_SET_THP_DISABLE`, inherited by
/// every thread). mimalloc asks for huge pages on its segments (`MADV_HUGEPAGE`), so one
/// touched byte can make 2 MiB resident, and how many such pages a burst leaves depends on
/// how much contiguous memory the machine has free. In the backpressure test (four clients
/// that never read) CI saw the broker grow by 165 MiB; here it grew by 35 MiB with THP (49 MiB
/// of the heap in huge pages) and by 13 MiB without. The memory bound of design §9 is a
/// promise about resident memory, so the broker keeps its RSS proportional to what it holds.
/// Best effort: a kernel without the call leaves THP as it is, which is logged.
pub fn disable_transparent_huge_pages() {
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integer arguments.
    let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if rc != 0 {
        tracing::warn!(
            "cannot turn transparent huge pages off: {}",
            std::io::Error::last_os_error()
        );
    }
}
