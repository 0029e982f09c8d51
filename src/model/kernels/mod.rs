//! deepsent's own CPU kernels where burn's are slow (measured by `deepsent
//! bench --profile` and `perf`): convolution with both gradients ([`conv`]),
//! fully connected layers ([`inner_product`]), LRN ([`lrn`]), max pooling
//! ([`pool`]), per-channel affine maps with their ReLU ([`affine`]) and the
//! SGD update ([`sgd`]), plugged into burn as a backend extension
//! ([`backend`]), so training and inference on the CPU use them and other
//! backends keep burn's operations.

pub mod affine;
mod backend;
pub mod conv;
mod depthwise;
mod gemm;
pub mod inner_product;
pub mod lrn;
pub mod pool;
pub mod sgd;
mod space_to_depth;
mod uninit;
mod winograd;

pub use backend::{Kernels, Lrn};
use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

/// Whether these kernels run on tensors of `device`. They are CPU kernels
/// registered for burn's flex backend (and autodiff over it); on another
/// device (a GPU) the network runs burn's own operations instead, and so it
/// does on the CPU with `DEEPSENT_KERNELS=burn`: to compare the two
/// (`deepsent bench`, tests/device.rs), or to rule the kernels out when
/// something looks wrong.
pub fn run_on(device: &Device) -> bool {
    static BURN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let burn = *BURN.get_or_init(|| std::env::var("DEEPSENT_KERNELS").is_ok_and(|v| v == "burn"));
    !burn && *device == Device::flex()
}

/// `conv2d(x, weight, bias)` with burn's shapes: x N × C × H × W, weight
/// O × C/groups × KH × KW, bias O (zeros when `None`); then, with `relu_max`,
/// a ReLU clipped at that value (∞ for a plain ReLU), fused into the
/// convolution's pass over its output.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>, relu_max: Option<f32>) -> Tensor<4> {
    let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()));
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_conv2d(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch(), options, relu_max))
}

/// Two convolutions of `x`, their outputs concatenated along channels, each
/// through the same clipped ReLU (see [`conv2d`]): a Fire module's expand
/// layers and their concatenation as one step, the convolutions writing
/// straight into the concatenated blob.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_pair(x: Tensor<4>, (w1, b1, o1): (Tensor<4>, Option<Tensor<1>>, ConvOptions<2>), (w2, b2, o2): (Tensor<4>, Option<Tensor<1>>, ConvOptions<2>), relu_max: Option<f32>) -> Tensor<4> {
    let bias = |b: Option<Tensor<1>>, w: &Tensor<4>| b.unwrap_or_else(|| Tensor::zeros([w.dims()[0]], &w.device())).into_dispatch();
    let (b1, b2) = (bias(b1, &w1), bias(b2, &w2));
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_conv2d_pair(x.into_dispatch(), w1.into_dispatch(), b1, w2.into_dispatch(), b2, o1, o2, relu_max))
}

/// Max pooling with Caffe's rules (padding never wins; `ceil` rounds the output size up).
pub fn max_pool2d(x: Tensor<4>, kernel: [usize; 2], stride: [usize; 2], padding: [usize; 2], ceil: bool) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_max_pool2d(x.into_dispatch(), kernel, stride, padding, ceil))
}

/// `act(a[c] · x + b[c])` for each channel c of x (N × C × H × W): a BatchNorm
/// with fixed statistics, a Scale and a ReLU clipped at `relu_max`, in one pass.
pub fn channel_affine(x: Tensor<4>, a: Tensor<1>, b: Tensor<1>, relu_max: Option<f32>) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_channel_affine(x.into_dispatch(), a.into_dispatch(), b.into_dispatch(), relu_max))
}

/// A fully connected layer, `x (N × K) · weightᵀ + bias`, weight O × K (Caffe's layout).
pub fn inner_product(x: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>) -> Tensor<2> {
    let bias = bias.unwrap_or_else(|| Tensor::zeros([weight.dims()[0]], &weight.device()));
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_inner_product(x.into_dispatch(), weight.into_dispatch(), bias.into_dispatch()))
}

/// Caffe's LRN across channels.
pub fn lrn(x: Tensor<4>, params: Lrn) -> Tensor<4> {
    Tensor::from_dispatch(<Dispatch as Kernels>::deepsent_lrn(x.into_dispatch(), params))
}

/// One SGD update of `w` and its momentum history `h` from the gradient `g`
/// (see [`sgd`]), in place where neither is shared.
pub fn sgd_step(w: Tensor<1>, h: Tensor<1>, g: &Tensor<1>, anchor: Option<&Tensor<1>>, update: sgd::Update) -> (Tensor<1>, Tensor<1>) {
    if !run_on(&w.device()) {
        // The same update as tensor operations, in the kernel's order.
        let diff = match (update.decay != 0.0, anchor) {
            (false, _) => g.clone(),
            (true, Some(a)) => g.clone() + (w.clone() - a.clone()).mul_scalar(update.decay),
            (true, None) => g.clone() + w.clone().mul_scalar(update.decay),
        };
        let h = h.mul_scalar(update.momentum) + diff.mul_scalar(update.rate);
        return (w - h.clone(), h);
    }
    let (w, h, g) = (w.into_dispatch(), h.into_dispatch(), g.clone().into_dispatch());
    let (w, h) = match anchor {
        None => <Dispatch as Kernels>::deepsent_sgd_step(w, h, g, update),
        Some(a) => <Dispatch as Kernels>::deepsent_sgd_step_to(w, h, g, a.clone().into_dispatch(), update),
    };
    (Tensor::from_dispatch(w), Tensor::from_dispatch(h))
}
