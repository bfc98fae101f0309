//! How images become a model's input ([`Preprocess`]): the eval transform a timm folder's
//! `pretrained_cfg` or a transformers folder's image processor records.

/// How images become the model's input: timm's eval transform (`create_transform` of
/// `resolve_data_config`): resize the shorter side to `floor(image_size / crop_pct)` with
/// `interpolation`, centre-crop `image_size`, then `(x / 255 - mean) / std`; or a transformers
/// image processor's (`resize_side`, `squash`, `floor_offsets`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Preprocess {
    /// Side of the (square) input.
    pub image_size: usize,
    /// Input channels.
    pub channels: usize,
    /// `bicubic` or `bilinear`.
    pub interpolation: String,
    /// Fraction of the resized shorter side the crop keeps.
    pub crop_pct: f64,
    /// The side the resize targets, where `floor(image_size / crop_pct)` would not give it
    /// exactly (transformers' `size`).
    pub resize_side: Option<usize>,
    /// Both sides resized to the target, the aspect ratio not kept (transformers'
    /// `size = {height, width}`).
    pub squash: bool,
    /// The crop's offsets rounded down (transformers) rather than half to even (torchvision).
    pub floor_offsets: bool,
    /// Per-channel mean of `x / 255`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation of `x / 255`.
    pub std: Vec<f32>,
}
