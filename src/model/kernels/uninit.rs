//! New blobs that are not zeroed before a kernel writes them in full:
//! mimalloc clears reused memory for a zeroed allocation, and that was 7–9 %
//! of a training step (perf) for outputs every value of which is then
//! written. Kernels write such memory as `MaybeUninit<f32>` and view it as
//! `f32` only once written.

use std::mem::MaybeUninit;

/// A new blob of `len` values, set by `write`.
///
/// # Safety
/// `write` must initialise every value of the slice it is given.
pub unsafe fn written(len: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut blob = Vec::with_capacity(len);
    write(&mut blob.spare_capacity_mut()[..len]);
    // SAFETY: the caller's `write` initialised all `len` values.
    unsafe { blob.set_len(len) };
    blob
}

/// `values` as `f32`, once written.
///
/// # Safety
/// Every value of `values` has been initialised.
pub unsafe fn assume_written(values: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: MaybeUninit<f32> has f32's layout, and the values are initialised.
    unsafe { &mut *(values as *mut [MaybeUninit<f32>] as *mut [f32]) }
}

/// Initialised values seen as memory a kernel may write.
///
/// # Safety
/// Whatever is stored through the result must be initialised values.
pub unsafe fn as_writable(values: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: same layout; the caller stores only initialised values.
    unsafe { &mut *(values as *mut [f32] as *mut [MaybeUninit<f32>]) }
}
