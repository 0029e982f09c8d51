//! Caffe's formats: `.prototxt` network definitions and `.caffemodel` weights.

pub mod caffemodel;
pub mod fields;
pub mod prototxt;
pub mod text_format;
pub mod write;
