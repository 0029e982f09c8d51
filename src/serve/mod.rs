//! Using trained networks on new images: classification, sentiment
//! prediction, the HTTP service.

pub mod classify;
pub mod http;
pub mod labels;
pub mod listen;
pub mod log;
pub mod predict;
