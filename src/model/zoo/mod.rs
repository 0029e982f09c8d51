//! Built-in architectures, as prototxt data (see the `.prototxt` files beside
//! this one), with their input transforms and where their ImageNet weights
//! are found.

use crate::model::caffe::prototxt::{self, PrototxtError};
use crate::model::spec::NetSpec;
use crate::preprocess::Preprocess;
use std::path::{Path, PathBuf};

pub const CAFFENET_PROTOTXT: &str = include_str!("caffenet.prototxt");
pub const SQUEEZENET_PROTOTXT: &str = include_str!("squeezenet1.0.prototxt");

/// A network architecture: built in, or any prototxt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arch {
    CaffeNet,
    SqueezeNet10,
    Prototxt(PathBuf),
}

impl std::str::FromStr for Arch {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "caffenet" => Ok(Arch::CaffeNet),
            "squeezenet1.0" | "squeezenet" => Ok(Arch::SqueezeNet10),
            p if p.ends_with(".prototxt") => Ok(Arch::Prototxt(p.into())),
            other => Err(format!("unknown architecture {other:?}: use caffenet, squeezenet1.0 or a .prototxt path")),
        }
    }
}

impl Arch {
    pub fn name(&self) -> String {
        match self {
            Arch::CaffeNet => "caffenet".into(),
            Arch::SqueezeNet10 => "squeezenet1.0".into(),
            Arch::Prototxt(p) => p.display().to_string(),
        }
    }

    pub fn spec(&self) -> Result<NetSpec, PrototxtError> {
        match self {
            Arch::CaffeNet => prototxt::parse(CAFFENET_PROTOTXT, "zoo/caffenet.prototxt"),
            Arch::SqueezeNet10 => prototxt::parse(SQUEEZENET_PROTOTXT, "zoo/squeezenet1.0.prototxt"),
            Arch::Prototxt(p) => prototxt::read(p),
        }
    }

    /// Caffe's test transform for this network: warp to 256, centre crop of
    /// the input size, BGR minus the mean it was trained with.
    pub fn preprocess(&self, spec: &NetSpec) -> Preprocess {
        let mut p = Preprocess::caffe(spec.input.height);
        if *self == Arch::SqueezeNet10 {
            // SqueezeNet was trained with Caffe's mean_value 104, 117, 123.
            p.mean = [104.0, 117.0, 123.0];
        }
        p
    }

    /// The ImageNet weights of a built-in architecture in a models directory.
    pub fn default_weights(&self, models: &Path) -> Option<PathBuf> {
        let p = match self {
            Arch::SqueezeNet10 => models.join("squeezenet_v1.0/compressed_SqueezeNet.net"),
            Arch::CaffeNet => models.join("bvlc_reference_caffenet.caffemodel"),
            Arch::Prototxt(_) => return None,
        };
        p.exists().then_some(p)
    }
}
