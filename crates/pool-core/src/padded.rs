//! Cache-line padding so that counters written by different cores do not share a line.

use std::ops::Deref;

/// Aligns `T` to 128 bytes (two lines: adjacent-line prefetch on x86 pairs them).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct CachePadded<T>(pub(crate) T);

impl<T> Deref for CachePadded<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}
