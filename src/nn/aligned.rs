//! f32 buffers that start on a cache line. The packed kernels load whole
//! 64-byte vectors of weights; from a plain `Vec<f32>` (16-byte aligned)
//! every one of those loads straddles two cache lines.

use std::fmt;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

#[derive(Clone, Default)]
pub(crate) struct Aligned {
    lines: Vec<Line>,
    len: usize,
}

impl Aligned {
    /// `len` zeros, on huge pages where the buffer is large (see
    /// [`super::pages`]).
    pub fn zeroed(len: usize) -> Self {
        let mut lines = Vec::with_capacity(len.div_ceil(16));
        super::pages::prefer_huge(&mut lines);
        lines.resize(len.div_ceil(16), Line([0.0; 16]));
        Self { lines, len }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[f32] {
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]`, so the lines are
        // `16 * lines.len() >= len` contiguous f32.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [f32] {
        // SAFETY: as in `as_slice`, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

impl fmt::Debug for Aligned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Aligned({} f32)", self.len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_cache_line_and_hold_their_length() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let mut a = Aligned::zeroed(len);
            assert_eq!(a.as_slice().len(), len);
            assert_eq!(a.as_slice().as_ptr() as usize % 64, 0);
            assert!(a.as_slice().iter().all(|&x| x == 0.0));
            a.as_mut_slice().iter_mut().for_each(|x| *x = 1.0);
            assert_eq!(a.as_slice().iter().sum::<f32>(), len as f32);
        }
    }
}
