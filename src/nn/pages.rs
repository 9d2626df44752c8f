//! Large buffers on 2 MiB pages. A batched layer's buffers span thousands
//! of 4 KiB pages (64x128x300->512: 64 MiB of input projections, a 16 MiB
//! output, 4 MiB of packed weights), and each step touches every row's
//! slice of them, 1 MiB apart: more pages than the TLB holds.

/// Buffers smaller than this stay as they are.
const MIN_BYTES: usize = 4 << 20;
const HUGE: usize = 2 << 20;

/// Asks the kernel to back the untouched pages of `v`'s allocation with
/// huge pages (Linux transparent huge pages in `madvise` mode; a no-op
/// where they are off, and elsewhere). Call it before writing the buffer.
pub(crate) fn prefer_huge<T>(v: &mut Vec<T>) {
    let bytes = v.capacity() * std::mem::size_of::<T>();
    if bytes < MIN_BYTES {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let start = v.as_mut_ptr() as usize;
        let (lo, hi) = (start.next_multiple_of(HUGE), (start + bytes) / HUGE * HUGE);
        if hi > lo {
            // SAFETY: the range lies inside `v`'s allocation; the advice
            // changes how pages are backed, never their contents.
            unsafe {
                libc::madvise(lo as *mut libc::c_void, hi - lo, libc::MADV_HUGEPAGE);
            }
        }
    }
}
