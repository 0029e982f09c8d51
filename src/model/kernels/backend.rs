//! Convolution and max pooling as a burn backend extension: on the `flex`
//! CPU backend they run deepsent's kernels ([`super::conv`], [`super::pool`]),
//! on the autodiff backend they record backward passes that call them, and on
//! any other backend (a GPU one) the trait's default bodies fall back to
//! burn's own operations and their gradients.

use super::conv::{self, Block, Geometry};
use super::uninit::written;
use super::{affine, inner_product, lrn, pool, sgd};
use rayon::prelude::*;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::autodiff::NodeId;
use burn::backend::flex::FlexTensor;
use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{backend_extension, Autodiff, Backend, Flex, TensorMetadata};
use burn::tensor::{DType, IntDType, Shape, Slice, TensorData};

/// An LRN layer's parameters: window `size` (odd), α, β and k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lrn {
    pub size: usize,
    pub alpha: f32,
    pub beta: f32,
    pub k: f32,
}

/// A 2-D convolution with an explicit bias (zeros for a layer without one:
/// its gradient is then never asked for) and its gradients; max pooling
/// (no dilation) and its gradient.
#[backend_extension(Flex, Autodiff)]
pub trait Kernels: Backend {
    /// The convolution, then a ReLU clipped at `relu_max` if given (∞: a plain ReLU).
    fn deepsent_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<Self> {
        burn_ops::conv2d::<Self>(x, weight, bias, options, relu_max)
    }
    /// The gradient through a ReLU clipped at `max`, from its output: it
    /// passes where 0 < output < max.
    fn deepsent_relu_backward(output: FloatTensor<Self>, output_grad: FloatTensor<Self>, max: f32) -> FloatTensor<Self> {
        burn_ops::relu_backward::<Self>(output, output_grad, max)
    }
    fn deepsent_conv2d_x_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        Self::conv2d_x_backward(x, weight, output_grad, options)
    }
    fn deepsent_conv2d_weight_grad(x: FloatTensor<Self>, weight: FloatTensor<Self>, output_grad: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        Self::conv2d_weight_backward(x, weight, output_grad, options)
    }
    /// The output gradient summed over batch and positions, per channel.
    fn deepsent_conv2d_bias_grad(output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_ops::per_channel_sum::<Self>(output_grad)
    }
    /// Two convolutions of the same input, `[conv(x, w1, b1), conv(x, w2, b2)]`
    /// concatenated along channels, each then through a ReLU clipped at
    /// `relu_max` if given: a Fire module's expand layers and their
    /// concatenation, without the copies a concatenation makes.
    #[allow(clippy::too_many_arguments)]
    fn deepsent_conv2d_pair(x: FloatTensor<Self>, w1: FloatTensor<Self>, b1: FloatTensor<Self>, w2: FloatTensor<Self>, b2: FloatTensor<Self>, o1: ConvOptions<2>, o2: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<Self> {
        burn_ops::conv2d_pair::<Self>(x, w1, b1, w2, b2, o1, o2, relu_max)
    }
    /// The gradients of [`Self::deepsent_conv2d_pair`] from the output
    /// gradient `grad` (after the ReLU's): x's (the sum of both
    /// convolutions'), w1's, b1's, w2's and b2's, each when `want` says so.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    fn deepsent_conv2d_pair_backward(x: FloatTensor<Self>, w1: FloatTensor<Self>, w2: FloatTensor<Self>, grad: FloatTensor<Self>, o1: ConvOptions<2>, o2: ConvOptions<2>, want: [bool; 5]) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>, Option<FloatTensor<Self>>, Option<FloatTensor<Self>>, Option<FloatTensor<Self>>) {
        burn_ops::conv2d_pair_backward::<Self>(x, w1, w2, grad, o1, o2, want)
    }
    /// `act(a[c] · x + b[c])` per channel c of an N × C × H × W tensor, the
    /// activation a ReLU clipped at `relu_max` if given.
    fn deepsent_channel_affine(x: FloatTensor<Self>, a: FloatTensor<Self>, b: FloatTensor<Self>, relu_max: Option<f32>) -> FloatTensor<Self> {
        burn_ops::channel_affine::<Self>(x, a, b, relu_max)
    }
    /// Gradients of [`Self::deepsent_channel_affine`] without an activation,
    /// from its output's gradient `du`: x's (when `want_x`), a's and b's.
    fn deepsent_channel_affine_backward(x: FloatTensor<Self>, a: FloatTensor<Self>, du: FloatTensor<Self>, want_x: bool) -> (Option<FloatTensor<Self>>, FloatTensor<Self>, FloatTensor<Self>) {
        burn_ops::channel_affine_backward::<Self>(x, a, du, want_x)
    }
    /// The same through the activation clipped at `max`, from its `output`
    /// and the output's gradient `grad`.
    fn deepsent_channel_affine_relu_backward(x: FloatTensor<Self>, a: FloatTensor<Self>, output: FloatTensor<Self>, grad: FloatTensor<Self>, max: f32, want_x: bool) -> (Option<FloatTensor<Self>>, FloatTensor<Self>, FloatTensor<Self>) {
        let du = Self::deepsent_relu_backward(output, grad, max);
        Self::deepsent_channel_affine_backward(x, a, du, want_x)
    }
    /// A fully connected layer: `x (N × K) · weightᵀ (K × O) + bias (O)`.
    fn deepsent_inner_product(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_ops::inner_product::<Self>(x, weight, bias)
    }
    /// `dy (N × O) · weight (O × K)`.
    fn deepsent_inner_product_x_grad(weight: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_ops::inner_product_x_grad::<Self>(weight, output_grad)
    }
    /// `dyᵀ (O × N) · x (N × K)`.
    fn deepsent_inner_product_weight_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_ops::inner_product_weight_grad::<Self>(x, output_grad)
    }
    /// `Σ_n dy[n]`.
    fn deepsent_inner_product_bias_grad(output_grad: FloatTensor<Self>) -> FloatTensor<Self> {
        burn_ops::inner_product_bias_grad::<Self>(output_grad)
    }
    /// Caffe's LRN across channels (odd `size`) on N × C × H × W.
    fn deepsent_lrn(x: FloatTensor<Self>, lrn: Lrn) -> FloatTensor<Self> {
        burn_ops::lrn::<Self>(x, lrn)
    }
    fn deepsent_lrn_x_grad(x: FloatTensor<Self>, output_grad: FloatTensor<Self>, lrn: Lrn) -> FloatTensor<Self> {
        burn_ops::lrn_x_grad::<Self>(x, output_grad, lrn)
    }
    /// One SGD update of a parameter blob `w` with momentum history `h` (see
    /// [`sgd`]), weight decay toward zero: the new `(w, h)`.
    fn deepsent_sgd_step(w: FloatTensor<Self>, h: FloatTensor<Self>, g: FloatTensor<Self>, update: sgd::Update) -> (FloatTensor<Self>, FloatTensor<Self>) {
        burn_ops::sgd_step::<Self>(w, h, g, None, update)
    }
    /// The same with weight decay toward `anchor` (L2-SP).
    fn deepsent_sgd_step_to(w: FloatTensor<Self>, h: FloatTensor<Self>, g: FloatTensor<Self>, anchor: FloatTensor<Self>, update: sgd::Update) -> (FloatTensor<Self>, FloatTensor<Self>) {
        burn_ops::sgd_step::<Self>(w, h, g, Some(anchor), update)
    }
    fn deepsent_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> FloatTensor<Self> {
        Self::max_pool2d(x, kernel, stride, padding, [1, 1], ceil)
    }
    /// The pooled output and the index of each maximum (its meaning is the backend's own).
    fn deepsent_max_pool2d_with_indices(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> (FloatTensor<Self>, IntTensor<Self>) {
        let r = Self::max_pool2d_with_indices(x, kernel, stride, padding, [1, 1], ceil, IntDType::I64);
        (r.output, r.indices)
    }
    #[allow(clippy::too_many_arguments)]
    fn deepsent_max_pool2d_backward(x: FloatTensor<Self>, output_grad: FloatTensor<Self>, indices: IntTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> FloatTensor<Self> {
        Self::max_pool2d_with_indices_backward(x, kernel, stride, padding, [1, 1], ceil, output_grad, indices).x_grad
    }
}

/// Each kernel in burn's own operations: the trait's default bodies (other
/// backends), and what the CPU kernels fall back to for dtypes other than f32.
mod burn_ops {
    use super::*;

    /// A ReLU clipped at `relu_max` (∞: plain), or nothing.
    fn activation<B: Backend>(y: FloatTensor<B>, relu_max: Option<f32>) -> FloatTensor<B> {
        match relu_max {
            None => y,
            Some(max) if max.is_finite() => B::float_clamp_max(B::relu(y), max.into()),
            Some(_) => B::relu(y),
        }
    }

    pub fn conv2d<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>, options: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<B> {
        activation::<B>(B::conv2d(x, weight, Some(bias), options), relu_max)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn conv2d_pair<B: Backend>(x: FloatTensor<B>, w1: FloatTensor<B>, b1: FloatTensor<B>, w2: FloatTensor<B>, b2: FloatTensor<B>, o1: ConvOptions<2>, o2: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<B> {
        let first = conv2d::<B>(x.clone(), w1, b1, o1, relu_max);
        B::float_cat(vec![first, conv2d::<B>(x, w2, b2, o2, relu_max)], 1)
    }

    #[allow(clippy::type_complexity)]
    pub fn conv2d_pair_backward<B: Backend>(x: FloatTensor<B>, w1: FloatTensor<B>, w2: FloatTensor<B>, grad: FloatTensor<B>, o1: ConvOptions<2>, o2: ConvOptions<2>, want: [bool; 5]) -> (Option<FloatTensor<B>>, Option<FloatTensor<B>>, Option<FloatTensor<B>>, Option<FloatTensor<B>>, Option<FloatTensor<B>>) {
        let [cut, channels] = [w1.shape()[0], grad.shape()[1]];
        let part = |from: usize, to: usize| B::float_slice(grad.clone(), &[Slice::full(), Slice::new(from as isize, Some(to as isize), 1), Slice::full(), Slice::full()]);
        let (g1, g2) = (part(0, cut), part(cut, channels));
        let dx = want[0].then(|| B::float_add(B::conv2d_x_backward(x.clone(), w1.clone(), g1.clone(), o1.clone()), B::conv2d_x_backward(x.clone(), w2.clone(), g2.clone(), o2.clone())));
        let dw1 = want[1].then(|| B::conv2d_weight_backward(x.clone(), w1, g1.clone(), o1));
        let dw2 = want[3].then(|| B::conv2d_weight_backward(x, w2, g2.clone(), o2));
        (dx, dw1, want[2].then(|| per_channel_sum::<B>(g1)), dw2, want[4].then(|| per_channel_sum::<B>(g2)))
    }

    pub fn relu_backward<B: Backend>(output: FloatTensor<B>, output_grad: FloatTensor<B>, max: f32) -> FloatTensor<B> {
        let grad = B::relu_backward(output.clone(), output_grad);
        if !max.is_finite() {
            return grad;
        }
        // max − output ≤ 0 where the clip is active.
        B::relu_backward(B::float_add_scalar(B::float_neg(output), max.into()), grad)
    }

    /// Σ over batch and positions, per channel, of an N × C × H × W tensor.
    pub fn per_channel_sum<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
        let [n, c, h, w] = t.shape().dims();
        let t = B::float_reshape(B::float_swap_dims(t, 0, 1), Shape::new([c, n * h * w]));
        B::float_reshape(B::float_sum_dim(t, 1), Shape::new([c]))
    }

    fn as_channels<B: Backend>(t: FloatTensor<B>) -> FloatTensor<B> {
        let c = t.shape()[0];
        B::float_reshape(t, Shape::new([1, c, 1, 1]))
    }

    pub fn channel_affine<B: Backend>(x: FloatTensor<B>, a: FloatTensor<B>, b: FloatTensor<B>, relu_max: Option<f32>) -> FloatTensor<B> {
        activation::<B>(B::float_add(B::float_mul(x, as_channels::<B>(a)), as_channels::<B>(b)), relu_max)
    }

    pub fn inner_product<B: Backend>(x: FloatTensor<B>, weight: FloatTensor<B>, bias: FloatTensor<B>) -> FloatTensor<B> {
        let o = bias.shape()[0];
        B::float_add(B::float_matmul(x, B::float_transpose(weight)), B::float_reshape(bias, Shape::new([1, o])))
    }

    pub fn inner_product_x_grad<B: Backend>(weight: FloatTensor<B>, dy: FloatTensor<B>) -> FloatTensor<B> {
        B::float_matmul(dy, weight)
    }

    pub fn inner_product_weight_grad<B: Backend>(x: FloatTensor<B>, dy: FloatTensor<B>) -> FloatTensor<B> {
        B::float_matmul(B::float_transpose(dy), x)
    }

    pub fn inner_product_bias_grad<B: Backend>(dy: FloatTensor<B>) -> FloatTensor<B> {
        let o = dy.shape()[1];
        B::float_reshape(B::float_sum_dim(dy, 0), Shape::new([o]))
    }

    pub fn sgd_step<B: Backend>(w: FloatTensor<B>, h: FloatTensor<B>, g: FloatTensor<B>, anchor: Option<FloatTensor<B>>, u: sgd::Update) -> (FloatTensor<B>, FloatTensor<B>) {
        let diff = if u.decay != 0.0 {
            let pull = match anchor {
                Some(a) => B::float_sub(w.clone(), a),
                None => w.clone(),
            };
            B::float_add(g, B::float_mul_scalar(pull, u.decay.into()))
        } else {
            g
        };
        let h = B::float_add(B::float_mul_scalar(h, u.momentum.into()), B::float_mul_scalar(diff, u.rate.into()));
        (B::float_sub(w, h.clone()), h)
    }

    /// `Σ` over each channel's window of an N × C × H × W tensor, as `size` ×
    /// an average pool over the channel axis (zero padding counted).
    fn channel_window_sum<B: Backend>(t: FloatTensor<B>, size: usize) -> FloatTensor<B> {
        let [n, c, h, w] = t.shape().dims();
        let t = B::float_reshape(t, Shape::new([n, 1, c, h * w]));
        let mean = B::avg_pool2d(t, [size, 1], [1, 1], [size / 2, 0], true, false);
        B::float_mul_scalar(B::float_reshape(mean, Shape::new([n, c, h, w])), (size as f32).into())
    }

    /// `s = k + α/n · Σ_window x²`.
    fn lrn_scale<B: Backend>(x: FloatTensor<B>, lrn: Lrn) -> FloatTensor<B> {
        let sum = channel_window_sum::<B>(B::float_mul(x.clone(), x), lrn.size);
        B::float_add_scalar(B::float_mul_scalar(sum, (lrn.alpha / lrn.size as f32).into()), lrn.k.into())
    }

    pub fn lrn<B: Backend>(x: FloatTensor<B>, lrn: Lrn) -> FloatTensor<B> {
        let s = lrn_scale::<B>(x.clone(), lrn);
        B::float_mul(x, B::float_powf_scalar(s, (-lrn.beta).into()))
    }

    /// `dx = dy · s^−β − (2αβ/n) · x · Σ_window (dy · x · s^−β / s)`.
    pub fn lrn_x_grad<B: Backend>(x: FloatTensor<B>, dy: FloatTensor<B>, lrn: Lrn) -> FloatTensor<B> {
        let s = lrn_scale::<B>(x.clone(), lrn);
        let pow = B::float_powf_scalar(s.clone(), (-lrn.beta).into());
        let ratio = B::float_div(B::float_mul(B::float_mul(dy.clone(), x.clone()), pow.clone()), s);
        let spread = B::float_mul(x, channel_window_sum::<B>(ratio, lrn.size));
        let coeff = 2.0 * lrn.alpha * lrn.beta / lrn.size as f32;
        B::float_sub(B::float_mul(dy, pow), B::float_mul_scalar(spread, coeff.into()))
    }

    pub fn channel_affine_backward<B: Backend>(x: FloatTensor<B>, a: FloatTensor<B>, du: FloatTensor<B>, want_x: bool) -> (Option<FloatTensor<B>>, FloatTensor<B>, FloatTensor<B>) {
        let dx = want_x.then(|| B::float_mul(du.clone(), as_channels::<B>(a)));
        let da = per_channel_sum::<B>(B::float_mul(du.clone(), x));
        (dx, da, per_channel_sum::<B>(du))
    }
}

fn pool_geometry(x: &Shape, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> pool::Geometry {
    pool::Geometry {
        planes: x[0] * x[1],
        height: x[2],
        width: x[3],
        kernel,
        stride,
        pad: padding,
        out_height: pool::Geometry::output_size(x[2], kernel[0], stride[0], padding[0], ceil),
        out_width: pool::Geometry::output_size(x[3], kernel[1], stride[1], padding[1], ceil),
    }
}

fn lrn_geometry(x: &Shape, p: Lrn) -> lrn::Geometry {
    lrn::Geometry { batch: x[0], channels: x[1], plane: x[2] * x[3], size: p.size, alpha: p.alpha, beta: p.beta, k: p.k }
}

/// The geometry of a convolution from its operands' shapes.
pub fn geometry(x: &Shape, weight: &Shape, options: &ConvOptions<2>) -> Geometry {
    let (p, stride, dilation) = (options.padding_begin(), options.stride, options.dilation);
    let end = options.padding_end();
    let out = |axis: usize| (x[2 + axis] + p[axis] + end[axis] - dilation[axis] * (weight[2 + axis] - 1) - 1) / stride[axis] + 1;
    Geometry {
        batch: x[0],
        channels: x[1],
        height: x[2],
        width: x[3],
        outputs: weight[0],
        kernel: [weight[2], weight[3]],
        stride,
        pad: p,
        dilation,
        groups: options.groups,
        out_height: out(0),
        out_width: out(1),
    }
}

/// Where two convolutions of one input lie in their concatenated output.
fn pair_blocks(g1: &Geometry, g2: &Geometry) -> [Block; 2] {
    assert_eq!((g1.out_height, g1.out_width), (g2.out_height, g2.out_width), "concatenated convolutions must give maps of one size");
    let stride = g1.out_image_len() + g2.out_image_len();
    [Block { stride, offset: 0 }, Block { stride, offset: g1.out_image_len() }]
}

/// A contiguous f32 copy of a tensor's values (no copy when already so).
fn values(t: &FlexTensor) -> std::borrow::Cow<'_, [f32]> {
    match t.as_slice::<f32>() {
        Some(s) if t.is_contiguous() => std::borrow::Cow::Borrowed(s),
        _ => std::borrow::Cow::Owned(t.to_contiguous().as_slice::<f32>().expect("contiguous f32").to_vec()),
    }
}

fn flex_sgd_step(w: FlexTensor, h: FlexTensor, g: FlexTensor, anchor: Option<FlexTensor>, update: sgd::Update) -> (FlexTensor, FlexTensor) {
    if !ours(&[&w, &h, &g]) || anchor.as_ref().is_some_and(|a| !ours(&[a])) {
        return burn_ops::sgd_step::<Flex>(w, h, g, anchor, update);
    }
    // In place where w and h are dense and not shared (storage_mut copies a shared one).
    let (mut w, mut h) = (dense(w), dense(h));
    let anchor = anchor.as_ref().map(values);
    sgd::step(update, w.storage_mut::<f32>(), h.storage_mut::<f32>(), &values(&g), anchor.as_deref());
    (w, h)
}

/// The channel affine map's gradients on the CPU in one pass
/// ([`affine::backward`]), through the activation when `relu` gives its
/// output and clip; x's gradient takes the place of the output's (usually a
/// dense tensor of its own).
fn flex_channel_affine_backward(x: FlexTensor, a: FlexTensor, relu: Option<(FlexTensor, f32)>, grad: FlexTensor, want_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
    let shape = x.shape();
    let (c, plane) = (shape[1], shape[2] * shape[3]);
    let mut grad = dense(grad);
    let (mut da, mut db) = (vec![0.0f32; c], vec![0.0f32; c]);
    let output = relu.as_ref().map(|(y, max)| (values(y), *max));
    affine::backward(&values(&x), &values(&a), output.as_ref().map(|(y, max)| (&y[..], *max)), plane, grad.storage_mut::<f32>(), want_x, &mut da, &mut db);
    (want_x.then_some(grad), tensor(da, vec![c]), tensor(db, vec![c]))
}

/// The tensor itself when its storage is exactly its values in order, else a contiguous copy.
fn dense(t: FlexTensor) -> FlexTensor {
    if t.is_contiguous() && t.layout().start_offset() == 0 && t.storage::<f32>().len() == t.shape().num_elements() {
        t
    } else {
        t.to_contiguous()
    }
}

fn tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// Whether deepsent's kernels take this call: f32 operands (others go to burn).
fn ours(ts: &[&FlexTensor]) -> bool {
    ts.iter().all(|t| t.dtype() == DType::F32)
}

impl Kernels for Flex {
    fn deepsent_conv2d(x: FlexTensor, weight: FlexTensor, bias: FlexTensor, options: ConvOptions<2>, relu_max: Option<f32>) -> FlexTensor {
        if !ours(&[&x, &weight, &bias]) {
            return burn_ops::conv2d::<Flex>(x, weight, bias, options, relu_max);
        }
        let g = geometry(&x.shape(), &weight.shape(), &options);
        // SAFETY: forward_into writes the whole block of every image, here all of the blob.
        let out = unsafe {
            written(g.batch * g.out_image_len(), |out| conv::forward_into(&g, &values(&x), &values(&weight), Some(&values(&bias)), relu_max, out, g.whole()))
        };
        tensor(out, vec![g.batch, g.outputs, g.out_height, g.out_width])
    }

    fn deepsent_conv2d_pair(x: FlexTensor, w1: FlexTensor, b1: FlexTensor, w2: FlexTensor, b2: FlexTensor, o1: ConvOptions<2>, o2: ConvOptions<2>, relu_max: Option<f32>) -> FlexTensor {
        if !ours(&[&x, &w1, &b1, &w2, &b2]) {
            return burn_ops::conv2d_pair::<Flex>(x, w1, b1, w2, b2, o1, o2, relu_max);
        }
        let (g1, g2) = (geometry(&x.shape(), &w1.shape(), &o1), geometry(&x.shape(), &w2.shape(), &o2));
        let [first, second] = pair_blocks(&g1, &g2);
        let x = values(&x);
        // SAFETY: the two blocks tile each image's output (pair_blocks), and
        // forward_into writes the whole of its block.
        let out = unsafe {
            written(g1.batch * first.stride, |out| {
                conv::forward_into(&g1, &x, &values(&w1), Some(&values(&b1)), relu_max, out, first);
                conv::forward_into(&g2, &x, &values(&w2), Some(&values(&b2)), relu_max, out, second);
            })
        };
        tensor(out, vec![g1.batch, g1.outputs + g2.outputs, g1.out_height, g1.out_width])
    }

    fn deepsent_conv2d_pair_backward(x: FlexTensor, w1: FlexTensor, w2: FlexTensor, grad: FlexTensor, o1: ConvOptions<2>, o2: ConvOptions<2>, want: [bool; 5]) -> (Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>, Option<FlexTensor>) {
        if !ours(&[&x, &w1, &w2, &grad]) {
            return burn_ops::conv2d_pair_backward::<Flex>(x, w1, w2, grad, o1, o2, want);
        }
        let (g1, g2) = (geometry(&x.shape(), &w1.shape(), &o1), geometry(&x.shape(), &w2.shape(), &o2));
        let blocks = pair_blocks(&g1, &g2);
        let (xv, w1v, w2v, dy) = (values(&x), values(&w1), values(&w2), values(&grad));
        let dx = want[0].then(|| {
            // Each convolution's input gradient apart, then their sum: the
            // numbers the two layers and burn's gradient accumulation gave.
            let len = g1.batch * g1.channels * g1.height * g1.width;
            let (mut dx, mut dx2) = (vec![0.0f32; len], vec![0.0f32; len]);
            conv::input_grad_from(&g1, &w1v, &dy, blocks[0], &mut dx);
            conv::input_grad_from(&g2, &w2v, &dy, blocks[1], &mut dx2);
            dx.par_chunks_mut(1 << 16).zip(dx2.par_chunks(1 << 16)).for_each(|(a, b)| a.iter_mut().zip(b).for_each(|(a, b)| *a += b));
            tensor(dx, x.shape().to_vec())
        });
        let weight = |g: &Geometry, block: Block, shape: Vec<usize>| {
            let mut dw = vec![0.0f32; shape.iter().product()];
            conv::weight_grad_from(g, &xv, &dy, block, &mut dw);
            tensor(dw, shape)
        };
        let bias = |g: &Geometry, block: Block| {
            let mut db = vec![0.0f32; g.outputs];
            conv::bias_grad_from(g.batch, g.outputs, g.out_plane(), &dy, block, &mut db);
            tensor(db, vec![g.outputs])
        };
        (
            dx,
            want[1].then(|| weight(&g1, blocks[0], w1.shape().to_vec())),
            want[2].then(|| bias(&g1, blocks[0])),
            want[3].then(|| weight(&g2, blocks[1], w2.shape().to_vec())),
            want[4].then(|| bias(&g2, blocks[1])),
        )
    }

    fn deepsent_relu_backward(output: FlexTensor, output_grad: FlexTensor, max: f32) -> FlexTensor {
        if !ours(&[&output, &output_grad]) {
            return burn_ops::relu_backward::<Flex>(output, output_grad, max);
        }
        // In place when the gradient is a dense tensor of its own (it usually is).
        let mut grad = dense(output_grad);
        conv::relu_backward(&values(&output), max, grad.storage_mut::<f32>());
        grad
    }

    fn deepsent_conv2d_x_grad(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        if !ours(&[&x, &weight, &output_grad]) {
            return Flex::conv2d_x_backward(x, weight, output_grad, options);
        }
        let g = geometry(&x.shape(), &weight.shape(), &options);
        let mut dx = vec![0.0f32; g.batch * g.channels * g.height * g.width];
        conv::input_grad(&g, &values(&weight), &values(&output_grad), &mut dx);
        tensor(dx, x.shape().to_vec())
    }

    fn deepsent_conv2d_weight_grad(x: FlexTensor, weight: FlexTensor, output_grad: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        if !ours(&[&x, &weight, &output_grad]) {
            return Flex::conv2d_weight_backward(x, weight, output_grad, options);
        }
        let g = geometry(&x.shape(), &weight.shape(), &options);
        let mut dw = vec![0.0f32; weight.shape().num_elements()];
        conv::weight_grad(&g, &values(&x), &values(&output_grad), &mut dw);
        tensor(dw, weight.shape().to_vec())
    }

    fn deepsent_conv2d_bias_grad(output_grad: FlexTensor) -> FlexTensor {
        if !ours(&[&output_grad]) {
            return burn_ops::per_channel_sum::<Flex>(output_grad);
        }
        let [n, c, h, w] = output_grad.shape().dims();
        let mut db = vec![0.0f32; c];
        conv::bias_grad(n, c, h * w, &values(&output_grad), &mut db);
        tensor(db, vec![c])
    }

    fn deepsent_channel_affine(x: FlexTensor, a: FlexTensor, b: FlexTensor, relu_max: Option<f32>) -> FlexTensor {
        if !ours(&[&x, &a, &b]) {
            return burn_ops::channel_affine::<Flex>(x, a, b, relu_max);
        }
        let shape = x.shape();
        // SAFETY: forward writes every value.
        let y = unsafe { written(shape.num_elements(), |y| affine::forward(&values(&x), &values(&a), &values(&b), relu_max, shape[2] * shape[3], y)) };
        tensor(y, shape.to_vec())
    }

    fn deepsent_channel_affine_backward(x: FlexTensor, a: FlexTensor, du: FlexTensor, want_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        if !ours(&[&x, &a, &du]) {
            return burn_ops::channel_affine_backward::<Flex>(x, a, du, want_x);
        }
        flex_channel_affine_backward(x, a, None, du, want_x)
    }

    fn deepsent_channel_affine_relu_backward(x: FlexTensor, a: FlexTensor, output: FlexTensor, grad: FlexTensor, max: f32, want_x: bool) -> (Option<FlexTensor>, FlexTensor, FlexTensor) {
        if !ours(&[&x, &a, &output, &grad]) {
            let du = Self::deepsent_relu_backward(output, grad, max);
            return burn_ops::channel_affine_backward::<Flex>(x, a, du, want_x);
        }
        flex_channel_affine_backward(x, a, Some((output, max)), grad, want_x)
    }

    fn deepsent_inner_product(x: FlexTensor, weight: FlexTensor, bias: FlexTensor) -> FlexTensor {
        if !ours(&[&x, &weight, &bias]) {
            return burn_ops::inner_product::<Flex>(x, weight, bias);
        }
        let g = inner_product::Geometry { batch: x.shape()[0], inputs: x.shape()[1], outputs: weight.shape()[0] };
        let mut y = vec![0.0f32; g.batch * g.outputs];
        inner_product::forward(&g, &values(&x), &values(&weight), Some(&values(&bias)), &mut y);
        tensor(y, vec![g.batch, g.outputs])
    }

    fn deepsent_inner_product_x_grad(weight: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        if !ours(&[&weight, &output_grad]) {
            return burn_ops::inner_product_x_grad::<Flex>(weight, output_grad);
        }
        let g = inner_product::Geometry { batch: output_grad.shape()[0], inputs: weight.shape()[1], outputs: weight.shape()[0] };
        let mut dx = vec![0.0f32; g.batch * g.inputs];
        inner_product::input_grad(&g, &values(&weight), &values(&output_grad), &mut dx);
        tensor(dx, vec![g.batch, g.inputs])
    }

    fn deepsent_inner_product_weight_grad(x: FlexTensor, output_grad: FlexTensor) -> FlexTensor {
        if !ours(&[&x, &output_grad]) {
            return burn_ops::inner_product_weight_grad::<Flex>(x, output_grad);
        }
        let g = inner_product::Geometry { batch: x.shape()[0], inputs: x.shape()[1], outputs: output_grad.shape()[1] };
        // SAFETY: the product writes every value.
        let dw = unsafe { written(g.outputs * g.inputs, |dw| inner_product::weight_grad_into(&g, &values(&x), &values(&output_grad), dw)) };
        tensor(dw, vec![g.outputs, g.inputs])
    }

    fn deepsent_inner_product_bias_grad(output_grad: FlexTensor) -> FlexTensor {
        let [n, o] = output_grad.shape().dims();
        if !ours(&[&output_grad]) {
            return burn_ops::inner_product_bias_grad::<Flex>(output_grad);
        }
        // A fully connected output is a convolution output with 1 × 1 planes.
        let mut db = vec![0.0f32; o];
        conv::bias_grad(n, o, 1, &values(&output_grad), &mut db);
        tensor(db, vec![o])
    }

    fn deepsent_lrn(x: FlexTensor, params: Lrn) -> FlexTensor {
        if !ours(&[&x]) {
            return burn_ops::lrn::<Flex>(x, params);
        }
        let shape = x.shape();
        let mut y = vec![0.0f32; shape.num_elements()];
        lrn::forward(&lrn_geometry(&shape, params), &values(&x), &mut y);
        tensor(y, shape.to_vec())
    }

    fn deepsent_lrn_x_grad(x: FlexTensor, output_grad: FlexTensor, params: Lrn) -> FlexTensor {
        if !ours(&[&x, &output_grad]) {
            return burn_ops::lrn_x_grad::<Flex>(x, output_grad, params);
        }
        let shape = x.shape();
        let mut dx = vec![0.0f32; shape.num_elements()];
        lrn::input_grad(&lrn_geometry(&shape, params), &values(&x), &values(&output_grad), &mut dx);
        tensor(dx, shape.to_vec())
    }

    fn deepsent_sgd_step(w: FlexTensor, h: FlexTensor, g: FlexTensor, update: sgd::Update) -> (FlexTensor, FlexTensor) {
        flex_sgd_step(w, h, g, None, update)
    }

    fn deepsent_sgd_step_to(w: FlexTensor, h: FlexTensor, g: FlexTensor, anchor: FlexTensor, update: sgd::Update) -> (FlexTensor, FlexTensor) {
        flex_sgd_step(w, h, g, Some(anchor), update)
    }

    fn deepsent_max_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> FlexTensor {
        if !ours(&[&x]) {
            return Flex::max_pool2d(x, kernel, stride, padding, [1, 1], ceil);
        }
        let shape = x.shape();
        let g = pool_geometry(&shape, kernel, stride, padding, ceil);
        let mut out = vec![0.0f32; g.planes * g.out_height * g.out_width];
        pool::forward(&g, &values(&x), &mut out, None);
        tensor(out, vec![shape[0], shape[1], g.out_height, g.out_width])
    }

    fn deepsent_max_pool2d_with_indices(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> (FlexTensor, FlexTensor) {
        if !ours(&[&x]) {
            let r = Flex::max_pool2d_with_indices(x, kernel, stride, padding, [1, 1], ceil, IntDType::I64);
            return (r.output, r.indices);
        }
        let shape = x.shape();
        let g = pool_geometry(&shape, kernel, stride, padding, ceil);
        let mut out = vec![0.0f32; g.planes * g.out_height * g.out_width];
        let mut argmax = vec![0i32; out.len()];
        pool::forward(&g, &values(&x), &mut out, Some(&mut argmax));
        let dims = vec![shape[0], shape[1], g.out_height, g.out_width];
        (tensor(out, dims.clone()), FlexTensor::from_data(TensorData::new(argmax, dims)))
    }

    fn deepsent_max_pool2d_backward(x: FlexTensor, output_grad: FlexTensor, indices: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> FlexTensor {
        if !ours(&[&x, &output_grad]) || indices.dtype() != DType::I32 {
            return Flex::max_pool2d_with_indices_backward(x, kernel, stride, padding, [1, 1], ceil, output_grad, indices).x_grad;
        }
        let shape = x.shape();
        let g = pool_geometry(&shape, kernel, stride, padding, ceil);
        let indices = indices.to_contiguous();
        // SAFETY: backward writes every value.
        let dx = unsafe { written(shape.num_elements(), |dx| pool::backward(&g, &values(&output_grad), indices.as_slice::<i32>().expect("i32 indices"), dx)) };
        tensor(dx, shape.to_vec())
    }
}

#[derive(Debug)]
struct Conv2dBackward;

impl<B: Backend + Kernels> Backward<B, 3> for Conv2dBackward {
    /// x, weight, options, and with a fused ReLU its output and clip.
    type State = (NodeId, NodeId, ConvOptions<2>, Option<(FloatTensor<B>, f32)>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let mut grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state, options, relu) = ops.state;
        if let Some((output, max)) = relu {
            grad = B::deepsent_relu_backward(output, grad, max);
        }
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            let g = B::deepsent_conv2d_x_grad(x.clone(), weight.clone(), grad.clone(), options.clone());
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_weight {
            let g = B::deepsent_conv2d_weight_grad(x, weight, grad.clone(), options);
            grads.register::<B>(node.id, g);
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::deepsent_conv2d_bias_grad(grad));
        }
    }
}

#[derive(Debug)]
struct Conv2dPairBackward;

impl<B: Backend + Kernels> Backward<B, 5> for Conv2dPairBackward {
    /// x, w1, w2, both options, and with the fused ReLU the output and clip.
    type State = (NodeId, NodeId, NodeId, ConvOptions<2>, ConvOptions<2>, Option<(FloatTensor<B>, f32)>);

    fn backward(self, ops: Ops<Self::State, 5>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let parents = ops.parents;
        let mut grad = grads.consume::<B>(&ops.node);
        let (x_state, w1_state, w2_state, o1, o2, relu) = ops.state;
        if let Some((output, max)) = relu {
            grad = B::deepsent_relu_backward(output, grad, max);
        }
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let w1 = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w1_state);
        let w2 = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(w2_state);
        let want = [0, 1, 2, 3, 4].map(|i| parents[i].is_some());
        let (dx, dw1, db1, dw2, db2) = B::deepsent_conv2d_pair_backward(x, w1, w2, grad, o1, o2, want);
        for (parent, g) in parents.into_iter().zip([dx, dw1, db1, dw2, db2]) {
            if let (Some(node), Some(g)) = (parent, g) {
                grads.register::<B>(node.id, g);
            }
        }
    }
}

#[derive(Debug)]
struct MaxPool2dBackward;

impl<B: Backend + Kernels> Backward<B, 1> for MaxPool2dBackward {
    type State = (NodeId, IntTensor<B>, [usize; 2], [usize; 2], [usize; 2], bool);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, indices, kernel, stride, padding, ceil) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::deepsent_max_pool2d_backward(x, grad, indices, kernel, stride, padding, ceil));
        }
    }
}

#[derive(Debug)]
struct ChannelAffineBackward;

impl<B: Backend + Kernels> Backward<B, 3> for ChannelAffineBackward {
    /// x, a, and with an activation its output and clip.
    type State = (NodeId, NodeId, Option<(FloatTensor<B>, f32)>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_a, node_b] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, a_state, relu) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let a = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(a_state);
        let want_x = node_x.is_some();
        let (dx, da, db) = match relu {
            Some((output, max)) => B::deepsent_channel_affine_relu_backward(x, a, output, grad, max, want_x),
            None => B::deepsent_channel_affine_backward(x, a, grad, want_x),
        };
        if let (Some(node), Some(dx)) = (node_x, dx) {
            grads.register::<B>(node.id, dx);
        }
        if let Some(node) = node_a {
            grads.register::<B>(node.id, da);
        }
        if let Some(node) = node_b {
            grads.register::<B>(node.id, db);
        }
    }
}

#[derive(Debug)]
struct InnerProductBackward;

impl<B: Backend + Kernels> Backward<B, 3> for InnerProductBackward {
    type State = (NodeId, NodeId);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x, node_weight, node_bias] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, weight_state) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        let weight = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(weight_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::deepsent_inner_product_x_grad(weight, grad.clone()));
        }
        if let Some(node) = node_weight {
            grads.register::<B>(node.id, B::deepsent_inner_product_weight_grad(x, grad.clone()));
        }
        if let Some(node) = node_bias {
            grads.register::<B>(node.id, B::deepsent_inner_product_bias_grad(grad));
        }
    }
}

#[derive(Debug)]
struct LrnBackward;

impl<B: Backend + Kernels> Backward<B, 1> for LrnBackward {
    type State = (NodeId, Lrn);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [node_x] = ops.parents;
        let grad = grads.consume::<B>(&ops.node);
        let (x_state, params) = ops.state;
        let x = checkpointer.retrieve_node_output::<B::FloatTensorPrimitive>(x_state);
        if let Some(node) = node_x {
            grads.register::<B>(node.id, B::deepsent_lrn_x_grad(x, grad, params));
        }
    }
}

impl<B: Backend + Kernels, C: CheckpointStrategy> Kernels for Autodiff<B, C> {
    fn deepsent_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, options: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<Self> {
        match Conv2dBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let out = B::deepsent_conv2d(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), options.clone(), relu_max);
                let relu = relu_max.map(|max| (out.clone(), max));
                prep.finish((x_state, weight_state, options, relu), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_conv2d(x.into_primitive(), weight.into_primitive(), bias.into_primitive(), options, relu_max)),
        }
    }

    fn deepsent_conv2d_pair(x: FloatTensor<Self>, w1: FloatTensor<Self>, b1: FloatTensor<Self>, w2: FloatTensor<Self>, b2: FloatTensor<Self>, o1: ConvOptions<2>, o2: ConvOptions<2>, relu_max: Option<f32>) -> FloatTensor<Self> {
        match Conv2dPairBackward.prepare::<C>([x.node(), w1.node(), b1.node(), w2.node(), b2.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let w1_state = prep.checkpoint(&w1);
                let w2_state = prep.checkpoint(&w2);
                let out = B::deepsent_conv2d_pair(x.into_primitive(), w1.into_primitive(), b1.into_primitive(), w2.into_primitive(), b2.into_primitive(), o1.clone(), o2.clone(), relu_max);
                let relu = relu_max.map(|max| (out.clone(), max));
                prep.finish((x_state, w1_state, w2_state, o1, o2, relu), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_conv2d_pair(x.into_primitive(), w1.into_primitive(), b1.into_primitive(), w2.into_primitive(), b2.into_primitive(), o1, o2, relu_max)),
        }
    }

    fn deepsent_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> FloatTensor<Self> {
        match MaxPool2dBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let (out, indices) = B::deepsent_max_pool2d_with_indices(x.into_primitive(), kernel, stride, padding, ceil);
                prep.finish((x_state, indices, kernel, stride, padding, ceil), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_max_pool2d(x.into_primitive(), kernel, stride, padding, ceil)),
        }
    }

    fn deepsent_channel_affine(x: FloatTensor<Self>, a: FloatTensor<Self>, b: FloatTensor<Self>, relu_max: Option<f32>) -> FloatTensor<Self> {
        match ChannelAffineBackward.prepare::<C>([x.node(), a.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let a_state = prep.checkpoint(&a);
                let out = B::deepsent_channel_affine(x.into_primitive(), a.into_primitive(), b.into_primitive(), relu_max);
                let relu = relu_max.map(|max| (out.clone(), max));
                prep.finish((x_state, a_state, relu), out)
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_channel_affine(x.into_primitive(), a.into_primitive(), b.into_primitive(), relu_max)),
        }
    }

    fn deepsent_inner_product(x: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>) -> FloatTensor<Self> {
        match InnerProductBackward.prepare::<C>([x.node(), weight.node(), bias.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                prep.finish((x_state, weight_state), B::deepsent_inner_product(x.into_primitive(), weight.into_primitive(), bias.into_primitive()))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_inner_product(x.into_primitive(), weight.into_primitive(), bias.into_primitive())),
        }
    }

    fn deepsent_lrn(x: FloatTensor<Self>, params: Lrn) -> FloatTensor<Self> {
        match LrnBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                prep.finish((x_state, params), B::deepsent_lrn(x.into_primitive(), params))
            }
            OpsKind::UnTracked(prep) => prep.finish(B::deepsent_lrn(x.into_primitive(), params)),
        }
    }
}

/// deepsent's CPU kernels against the same operations written in burn's
/// (the trait's default bodies, which other backends run).
#[cfg(test)]
mod tests {
    use super::*;

    fn flex(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
        tensor(values, shape)
    }

    fn data(t: FlexTensor) -> Vec<f32> {
        t.into_data().try_into_vec::<f32>().expect("f32")
    }

    fn random(len: usize, seed: u32) -> Vec<f32> {
        (0..len).map(|i| (((i as u32).wrapping_mul(2654435761).wrapping_add(seed.wrapping_mul(40503)) >> 8) as f32 / (1u32 << 24) as f32) * 2.0 - 1.0).collect()
    }

    fn close(what: &str, got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len(), "{what}");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!((a - b).abs() <= tol * (1.0 + b.abs()), "{what}[{i}]: {a} vs {b}");
        }
    }

    #[test]
    fn sgd_step_is_the_tensor_expression_bit_for_bit() {
        let n = 50_000;
        let update = sgd::Update { rate: 0.01, decay: 5e-4, momentum: 0.9 };
        let (w, h, g, a) = (random(n, 1), random(n, 2), random(n, 3), random(n, 4));
        for anchor in [None, Some(a)] {
            let t = |v: &Vec<f32>| flex(v.clone(), vec![n]);
            let (w1, h1) = match &anchor {
                None => Flex::deepsent_sgd_step(t(&w), t(&h), t(&g), update),
                Some(a) => Flex::deepsent_sgd_step_to(t(&w), t(&h), t(&g), t(a), update),
            };
            let (w2, h2) = burn_ops::sgd_step::<Flex>(t(&w), t(&h), t(&g), anchor.as_ref().map(t), update);
            assert_eq!(data(w1), data(w2));
            assert_eq!(data(h1), data(h2));
        }
    }

    #[test]
    fn lrn_and_inner_product_match_burns_operations() {
        let (n, c, hw) = (2, 7, [3, 4]);
        let len = n * c * hw[0] * hw[1];
        let shape = vec![n, c, hw[0], hw[1]];
        let (x, dy) = (random(len, 5), random(len, 6));
        let params = Lrn { size: 5, alpha: 1e-1, beta: 0.75, k: 2.0 };
        let ours = data(Flex::deepsent_lrn(flex(x.clone(), shape.clone()), params));
        let theirs = data(burn_ops::lrn::<Flex>(flex(x.clone(), shape.clone()), params));
        close("lrn", &ours, &theirs, 1e-6);
        let ours = data(Flex::deepsent_lrn_x_grad(flex(x.clone(), shape.clone()), flex(dy.clone(), shape.clone()), params));
        let theirs = data(burn_ops::lrn_x_grad::<Flex>(flex(x.clone(), shape.clone()), flex(dy.clone(), shape.clone()), params));
        close("lrn gradient", &ours, &theirs, 1e-5);

        let (batch, inputs, outputs) = (3, 40, 9);
        let (x, w, b, dy) = (random(batch * inputs, 7), random(outputs * inputs, 8), random(outputs, 9), random(batch * outputs, 10));
        let t = |v: &Vec<f32>, s: Vec<usize>| flex(v.clone(), s);
        let ours = data(Flex::deepsent_inner_product(t(&x, vec![batch, inputs]), t(&w, vec![outputs, inputs]), t(&b, vec![outputs])));
        let theirs = data(burn_ops::inner_product::<Flex>(t(&x, vec![batch, inputs]), t(&w, vec![outputs, inputs]), t(&b, vec![outputs])));
        close("inner product", &ours, &theirs, 1e-5);
        let ours = data(Flex::deepsent_inner_product_x_grad(t(&w, vec![outputs, inputs]), t(&dy, vec![batch, outputs])));
        let theirs = data(burn_ops::inner_product_x_grad::<Flex>(t(&w, vec![outputs, inputs]), t(&dy, vec![batch, outputs])));
        close("inner product x gradient", &ours, &theirs, 1e-5);
        let ours = data(Flex::deepsent_inner_product_weight_grad(t(&x, vec![batch, inputs]), t(&dy, vec![batch, outputs])));
        let theirs = data(burn_ops::inner_product_weight_grad::<Flex>(t(&x, vec![batch, inputs]), t(&dy, vec![batch, outputs])));
        close("inner product weight gradient", &ours, &theirs, 1e-5);
        let ours = data(Flex::deepsent_inner_product_bias_grad(t(&dy, vec![batch, outputs])));
        let theirs = data(burn_ops::inner_product_bias_grad::<Flex>(t(&dy, vec![batch, outputs])));
        close("inner product bias gradient", &ours, &theirs, 1e-6);
    }
}
