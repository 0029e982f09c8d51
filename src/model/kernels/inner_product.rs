//! A fully connected layer, `y = x · Wᵀ + b`, forward and its gradients, on
//! row-major `f32` slices: x N × K, W O × K (Caffe's layout), y N × O.
//!
//! Why by hand: burn's CPU matmul ran CaffeNet's fc6 and fc7 at 50 GFLOP/s
//! forward and 24 backward, where it copies the transposed operands (`deepsent
//! bench --profile`: a fifth of CaffeNet's training step); `gemm` reads them
//! in place through strides, with both threads on each product.

use super::gemm::{matmul, matmul_col_major, matmul_into, Mat};
use super::uninit::as_writable;
use std::mem::MaybeUninit;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    pub batch: usize,
    pub inputs: usize,
    pub outputs: usize,
}

fn threads() -> usize {
    rayon::current_num_threads()
}

/// Forward: `y (N × O) = x · Wᵀ + b`.
pub fn forward(g: &Geometry, x: &[f32], weight: &[f32], bias: Option<&[f32]>, y: &mut [f32]) {
    assert_eq!(x.len(), g.batch * g.inputs);
    assert_eq!(weight.len(), g.outputs * g.inputs);
    assert_eq!(y.len(), g.batch * g.outputs);
    // y column-major (O × N), then turned: gemm reads W in place, where a
    // row-major y had it copy the whole of W into packed panels first
    // (fc6's 151 MB: its forward pass took 22.6 ms for 2.4 GFLOP).
    let mut yt = vec![0.0f32; y.len()];
    matmul_col_major(&mut yt, [g.batch, g.outputs, g.inputs], Mat::rows(x, g.inputs), Mat::rows(weight, g.inputs).transposed(), threads());
    for (n, row) in y.chunks_mut(g.outputs).enumerate() {
        for (o, v) in row.iter_mut().enumerate() {
            *v = yt[o * g.batch + n] + bias.map_or(0.0, |b| b[o]);
        }
    }
}

/// Input gradient: `dx (N × K) = dy · W`.
pub fn input_grad(g: &Geometry, weight: &[f32], dy: &[f32], dx: &mut [f32]) {
    assert_eq!(dy.len(), g.batch * g.outputs);
    assert_eq!(dx.len(), g.batch * g.inputs);
    matmul(dx, false, [g.batch, g.inputs, g.outputs], Mat::rows(dy, g.outputs), Mat::rows(weight, g.inputs), threads());
}

/// Weight gradient: `dW (O × K) = dyᵀ · x`, summed over the batch.
pub fn weight_grad(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [f32]) {
    // SAFETY: weight_grad_into stores only initialised values.
    weight_grad_into(g, x, dy, unsafe { as_writable(dw) })
}

/// [`weight_grad`] into memory not yet written (every value is written):
/// fc6's gradient is 151 MB, and zeroing it first took as long as computing it.
pub fn weight_grad_into(g: &Geometry, x: &[f32], dy: &[f32], dw: &mut [MaybeUninit<f32>]) {
    assert_eq!(dw.len(), g.outputs * g.inputs);
    matmul_into(dw, [g.outputs, g.inputs, g.batch], Mat::rows(dy, g.outputs).transposed(), Mat::rows(x, g.inputs), threads());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 2 × 3 input, 2 outputs, worked by hand.
    #[test]
    fn forward_and_gradients_by_hand() {
        let g = Geometry { batch: 2, inputs: 3, outputs: 2 };
        let x = [1.0, 2.0, 3.0, -1.0, 0.0, 2.0];
        let w = [0.5, -1.0, 2.0, 1.0, 1.0, 1.0];
        let b = [0.25, -3.0];
        let mut y = [0.0; 4];
        forward(&g, &x, &w, Some(&b), &mut y);
        // row 1: 0.5 − 2 + 6 + 0.25 = 4.75, 1 + 2 + 3 − 3 = 3; row 2: −0.5 + 4 + 0.25 = 3.75, −1 + 2 − 3 = −2
        assert_eq!(y, [4.75, 3.0, 3.75, -2.0]);
        let dy = [1.0, 2.0, -1.0, 0.5];
        let mut dx = [0.0; 6];
        input_grad(&g, &w, &dy, &mut dx);
        // dx[n] = dy[n,0]·w[0] + dy[n,1]·w[1]
        assert_eq!(dx, [2.5, 1.0, 4.0, 0.0, 1.5, -1.5]);
        let mut dw = [0.0; 6];
        weight_grad(&g, &x, &dy, &mut dw);
        // dw[o] = Σ_n dy[n,o] · x[n]
        assert_eq!(dw, [2.0, 2.0, 1.0, 1.5, 4.0, 7.0]);
        let mut db = [9.0; 2];
        super::super::conv::bias_grad(g.batch, g.outputs, 1, &dy, &mut db);
        assert_eq!(db, [0.0, 2.5]);
    }
}
