//! Networks: the spec (layers as data), readers of Caffe and other weight
//! formats, the built-in architectures, and the burn interpreter.

pub mod caffe;
pub mod calibration;
pub mod kernels;
pub mod deep_compression;
pub mod device;
pub mod fetch;
pub mod init;
pub mod load;
pub mod saved;
pub mod net;
pub mod spec;
pub mod surgery;
pub mod tensor_file;
pub mod torch_checkpoint;
pub mod weights;
pub mod weights_id;
pub mod zoo;

pub use net::{Mode, Net};
pub use spec::{LayerKind, LayerSpec, NetSpec, PoolMethod};
pub use weights::{Blob, Weights};
pub use zoo::Arch;
