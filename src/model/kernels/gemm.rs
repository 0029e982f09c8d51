//! One matrix product on `gemm`, with operands given by strides so that a
//! transposed operand is read in place: the building block of the
//! convolution and inner-product kernels.

use std::mem::MaybeUninit;

/// A matrix in memory: `rows × cols`, element (r, c) at `r · row_stride + c · col_stride`.
#[derive(Clone, Copy)]
pub struct Mat {
    ptr: *const f32,
    row_stride: isize,
    col_stride: isize,
}

impl Mat {
    pub fn rows(data: &[f32], cols: usize) -> Mat {
        Mat { ptr: data.as_ptr(), row_stride: cols as isize, col_stride: 1 }
    }
    /// `data` as a matrix whose rows start `row_stride` values apart.
    pub fn with_row_stride(data: &[f32], row_stride: usize) -> Mat {
        Mat { ptr: data.as_ptr(), row_stride: row_stride as isize, col_stride: 1 }
    }
    pub fn transposed(self) -> Mat {
        Mat { ptr: self.ptr, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

/// `dst (m × n, row-major) = [dst +] a (m × k) · b (k × n)`, `[m, n, k]` = `dims`.
pub fn matmul(dst: &mut [f32], accumulate: bool, dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    assert!(dst.len() >= dims[0] * dims[1]);
    // SAFETY: dst covers m × n values (checked above).
    unsafe { product(dst.as_mut_ptr(), accumulate, dims, a, b, threads) }
}

/// `dst (m × n, row-major) = a · b` into memory not yet written: `gemm`
/// writes every value of the m × n block without reading it, and the block
/// is initialised afterwards.
pub fn matmul_into(dst: &mut [MaybeUninit<f32>], dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    assert!(dst.len() >= dims[0] * dims[1]);
    // SAFETY: dst covers m × n values (checked above); with `accumulate`
    // false gemm does not read dst (it is `read_dst = false`).
    unsafe { product(dst.as_mut_ptr().cast::<f32>(), false, dims, a, b, threads) }
}

/// `dst = a (m × k) · b (k × n)` stored column-major (element (i, j) at
/// `j · m + i`, i.e. the product's transpose row-major). For a thin `a`
/// and a large `b` read along its columns (a fully connected layer's
/// weights), gemm then streams `b` in place where a row-major product
/// would first copy it whole into packed panels.
pub fn matmul_col_major(dst: &mut [f32], dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    assert!(dst.len() >= dims[0] * dims[1]);
    // SAFETY: dst covers m × n values (checked above), with strides (1, m).
    unsafe { product_strided(dst.as_mut_ptr(), [1, dims[0] as isize], false, dims, a, b, threads) }
}

/// # Safety
/// `dst` points to m × n writable values (readable too when `accumulate`).
unsafe fn product(dst: *mut f32, accumulate: bool, dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    // SAFETY: as the caller's, row-major.
    unsafe { product_strided(dst, [dims[1] as isize, 1], accumulate, dims, a, b, threads) }
}

/// # Safety
/// `dst` points to m × n writable values at (row, column) strides `dst_strides`
/// (readable too when `accumulate`).
unsafe fn product_strided(dst: *mut f32, dst_strides: [isize; 2], accumulate: bool, dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    let [m, n, k] = dims;
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: every slice covers the strided extent gemm reads or writes
    // (checked above for dst, by the callers' layouts for a and b), and dst
    // does not alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_strides[1],
            dst_strides[0],
            accumulate,
            a.ptr,
            a.col_stride,
            a.row_stride,
            b.ptr,
            b.col_stride,
            b.row_stride,
            if accumulate { 1.0 } else { 0.0 },
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
