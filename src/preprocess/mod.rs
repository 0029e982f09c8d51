//! Preprocessing exactly as the paper's Caffe pipeline: decode, warp to
//! 256×256, and per view a crop, an optional mirror, channel order and mean.

pub mod cache;
pub mod augment;
pub mod crops;
pub mod decode;
pub mod settings;
pub mod warp;

pub use cache::ImageCache;
pub use crops::Crop;
pub use decode::{DecodeError, DEFAULT_MAX_PIXELS};
pub use settings::{ChannelOrder, Preprocess, Resize};
