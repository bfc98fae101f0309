//! timm / Hugging Face Vision Transformers as encoders: a model folder (`config.json` +
//! `model.safetensors`) read and checked ([`folder`]; a transformers folder is read as the timm
//! model it is, [`transformers`]), its settings ([`args`]) and named architecture
//! ([`architectures`]), the pooling its features use, and its forward pass on the fused CPU
//! kernels ([`network`], of layers read by their timm names), with the position embedding
//! resampled to another input size as timm or transformers does ([`resample`]), a rotary
//! embedding computed for it ([`rope`]) or BEiT's relative position bias resized
//! ([`relative_position`]); and the other way, an l-DAE run's encoder written as a
//! timm folder ([`export`]).

pub mod architectures;
pub mod args;
mod checkpoint;
mod eva_architectures;
mod expected_tensors;
pub mod export;
pub mod folder;
pub mod hub_cache;
mod layers;
pub mod network;
mod pooling_choice;
mod preprocess;
pub mod relative_position;
pub mod resample;
pub mod rope;
mod sized_architectures;
pub mod transformers;

pub use args::VitArgs;
pub use export::{TimmExport, TimmExportReport};
pub use folder::{is_model_folder, TimmFolder};
pub use network::Vit;
pub use preprocess::Preprocess;
