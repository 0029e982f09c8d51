use anyhow::Result;
use clap::Args;
use deepsent::locate;
use deepsent::model::saved::SavedModel;
use deepsent::model::device::DeviceChoice;
use deepsent::model::{load, Arch};
use std::path::PathBuf;

/// Which network and weights: shared by every command that loads a backbone.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// caffenet, squeezenet1.0, efficientnet-lite0, or a .prototxt file.
    #[arg(long, default_value = "squeezenet1.0")]
    pub arch: Arch,
    /// Weights: .caffemodel, SqueezeNet's .net, a legacy .pth, or a deepsent .safetensors
    /// [default: the architecture's ImageNet weights in the models directory]
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Models directory [default: $DEEPSENT_MODELS, else ../shared/models]
    #[arg(long)]
    pub models: Option<PathBuf>,
}

impl ModelArgs {
    /// The weights file: --weights, else the architecture's default in the models directory.
    pub fn weights_path(&self) -> Result<PathBuf> {
        match &self.weights {
            Some(w) => Ok(w.clone()),
            None => {
                let models = locate::models_dir(self.models.as_deref())?;
                self.arch.require_default_weights(&models, "pass --weights").map_err(anyhow::Error::msg)
            }
        }
    }

    pub fn load(&self) -> Result<(SavedModel, PathBuf)> {
        let path = self.weights_path()?;
        Ok((load::load_model(Some(&self.arch), &path)?, path))
    }
}

/// Where the networks run: shared by every command that runs one.
#[derive(Args, Clone, Debug)]
pub struct DeviceArg {
    /// cpu, cuda, cuda:N or wgpu (the GPU ones in builds with `--features
    /// cuda` or `wgpu`) [default: $DEEPSENT_DEVICE, else cpu]
    #[arg(long)]
    pub device: Option<String>,
}

impl DeviceArg {
    pub fn choice(&self) -> Result<DeviceChoice> {
        DeviceChoice::resolve(self.device.as_deref()).map_err(anyhow::Error::msg)
    }

    pub fn device(&self) -> Result<burn::prelude::Device> {
        self.choice()?.device().map_err(anyhow::Error::msg)
    }
}
