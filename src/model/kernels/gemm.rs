//! One matrix product on `gemm`, with operands given by strides so that a
//! transposed operand is read in place: the building block of the
//! convolution and inner-product kernels.

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
    pub fn transposed(self) -> Mat {
        Mat { ptr: self.ptr, row_stride: self.col_stride, col_stride: self.row_stride }
    }
}

/// Where a product goes: `m × n`, row-major, rows `row_stride` apart.
pub struct Out<'a> {
    pub data: &'a mut [f32],
    pub row_stride: usize,
}

impl<'a> Out<'a> {
    /// A dense `· × n` matrix.
    pub fn rows(data: &'a mut [f32], n: usize) -> Out<'a> {
        Out { data, row_stride: n }
    }
}

/// `dst = [dst +] a (m × k) · b (k × n)`, `[m, n, k]` = `dims`.
pub fn matmul(dst: Out, accumulate: bool, dims: [usize; 3], a: Mat, b: Mat, threads: usize) {
    let [m, n, k] = dims;
    assert!(m == 0 || n == 0 || dst.data.len() >= (m - 1) * dst.row_stride + n);
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    // SAFETY: every slice covers the strided extent gemm reads or writes
    // (checked above for dst, by the callers' layouts for a and b), and dst
    // does not alias a or b.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
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
