//! The published numbers of Campos et al. (2015), fine-tuned CaffeNet on the
//! Twitter 5-agree images, 5-fold cross-validation: what our tables are set
//! beside.

/// Mean ± std accuracy.
pub type MeanStd = (f64, f64);

/// Table 1: the fine-tuned CaffeNet, centre crop and 10-crop oversampling.
pub const FINETUNED: (MeanStd, MeanStd) = ((0.817, 0.038), (0.830, 0.034));

/// Table 2: linear probes on each layer of the fine-tuned CaffeNet,
/// (layer, SVM, softmax), from the input up. Transcribed from the paper's
/// table; its end points (conv1 0.67, fc8 0.82) are the ones the project
/// brief quotes.
pub const PROBES: [(&str, MeanStd, MeanStd); 13] = [
    ("conv1", (0.671, 0.023), (0.668, 0.032)),
    ("pool1", (0.665, 0.024), (0.665, 0.028)),
    ("norm1", (0.700, 0.045), (0.688, 0.045)),
    ("conv2", (0.720, 0.040), (0.724, 0.033)),
    ("pool2", (0.728, 0.036), (0.729, 0.040)),
    ("norm2", (0.735, 0.031), (0.728, 0.037)),
    ("conv3", (0.752, 0.042), (0.748, 0.046)),
    ("conv4", (0.794, 0.026), (0.781, 0.029)),
    ("conv5", (0.776, 0.025), (0.779, 0.027)),
    ("pool5", (0.784, 0.020), (0.786, 0.023)),
    ("fc6", (0.804, 0.031), (0.810, 0.038)),
    ("fc7", (0.814, 0.040), (0.814, 0.044)),
    ("fc8", (0.820, 0.055), (0.821, 0.046)),
];

/// Tables 3 and 4: surgery variants of CaffeNet, (variant, centre, 10-crop) accuracy.
pub const SURGERY: [(&str, f64, f64); 7] = [
    ("ft", 0.817, 0.830),
    ("fc7-4096", 0.759, 0.786),
    ("fc6-4096", 0.657, 0.657),
    ("fc7-2", 0.784, 0.797),
    ("fc6-2", 0.651, 0.676),
    ("fc8-1000", 0.723, 0.731),
    ("fc9-2", 0.795, 0.803),
];
