//! timm / Hugging Face Vision Transformers as encoders: a model folder (`config.json` +
//! `model.safetensors`) read and checked ([`folder`]), its named architecture ([`architectures`]),
//! and its forward pass on the fused CPU kernels ([`network`]), with the position embedding
//! resampled to another input size as timm does ([`resample`]).

pub mod architectures;
pub mod folder;
pub mod network;
pub mod resample;

pub use architectures::VitArgs;
pub use folder::{is_timm_folder, Preprocess, TimmFolder};
pub use network::Vit;
