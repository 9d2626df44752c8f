//! Buffers that start on a cache line. The packed kernels load whole
//! 64-byte vectors of weights; from a plain `Vec` (16-byte aligned) every
//! one of those loads straddles two cache lines.

use std::fmt;
use std::marker::PhantomData;

#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

/// Element types for which all-zero bytes are the value 0 and any bytes
/// are a valid value.
pub(crate) trait Plain: Copy {}
impl Plain for f32 {}
impl Plain for i8 {}
impl Plain for u16 {}

#[derive(Clone)]
pub(crate) struct Aligned<T: Plain> {
    lines: Vec<Line>,
    len: usize,
    _t: PhantomData<T>,
}

impl<T: Plain> Default for Aligned<T> {
    fn default() -> Self {
        Self::zeroed(0)
    }
}

impl<T: Plain> Aligned<T> {
    /// `len` zeros, on huge pages where the buffer is large (see
    /// [`super::pages`]).
    pub fn zeroed(len: usize) -> Self {
        let n = (len * std::mem::size_of::<T>()).div_ceil(64);
        let mut lines = Vec::with_capacity(n);
        super::pages::prefer_huge(&mut lines);
        lines.resize(n, Line([0; 64]));
        Self {
            lines,
            len,
            _t: PhantomData,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn as_slice(&self) -> &[T] {
        // SAFETY: the lines hold at least `len` elements' bytes, aligned
        // for any `T` up to 64 bytes, and every byte pattern is a `T`.
        unsafe { std::slice::from_raw_parts(self.lines.as_ptr().cast(), self.len) }
    }

    pub fn as_mut_slice(&mut self) -> &mut [T] {
        // SAFETY: as in `as_slice`, borrowed mutably.
        unsafe { std::slice::from_raw_parts_mut(self.lines.as_mut_ptr().cast(), self.len) }
    }
}

impl<T: Plain> fmt::Debug for Aligned<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Aligned({} × {} bytes)",
            self.len,
            std::mem::size_of::<T>()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_on_a_cache_line_and_hold_their_length() {
        for len in [0, 1, 15, 16, 17, 1000] {
            let mut a = Aligned::<f32>::zeroed(len);
            assert_eq!(a.as_slice().len(), len);
            assert_eq!(a.as_slice().as_ptr() as usize % 64, 0);
            assert!(a.as_slice().iter().all(|&x| x == 0.0));
            a.as_mut_slice().iter_mut().for_each(|x| *x = 1.0);
            assert_eq!(a.as_slice().iter().sum::<f32>(), len as f32);
            let b = Aligned::<i8>::zeroed(len);
            assert_eq!(b.as_slice().len(), len);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
        }
    }
}
