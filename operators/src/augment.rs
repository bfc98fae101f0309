//! Training augmentation: random-resized-crop and horizontal flip, drawn per row from
//! (seed, epoch, row id) so a row is augmented the same way whatever the batch or thread.

use rand::Rng;

use crate::rowseed::row_rng;

/// Random-resized-crop and flip settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Range of the crop's area as a fraction of the image's.
    pub scale: [f32; 2],
    /// Range of the crop's aspect ratio (width / height), sampled log-uniformly.
    pub ratio: [f32; 2],
    /// Flip horizontally with probability 1/2.
    pub flip: bool,
    /// Run seed.
    pub seed: u64,
    /// Epoch (a new crop each epoch). Not a spec key: a spec's pipeline gets it from the pass
    /// it runs in (the training epoch).
    #[serde(skip)]
    pub epoch: u64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        AugmentConfig {
            scale: [0.35, 1.0],
            ratio: [3.0 / 4.0, 4.0 / 3.0],
            flip: true,
            seed: 0,
            epoch: 0,
        }
    }
}

/// A crop box in source pixels and whether to flip the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CropPlan {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width.
    pub width: u32,
    /// Height.
    pub height: u32,
    /// Mirror left-right after cropping.
    pub flip: bool,
}

/// The centred square crop of the shorter side (what evaluation uses).
pub fn center_square(width: u32, height: u32) -> CropPlan {
    let side = width.min(height);
    CropPlan {
        x: (width - side) / 2,
        y: (height - side) / 2,
        width: side,
        height: side,
        flip: false,
    }
}

/// Draw the random-resized-crop box for row `id` of a `width x height` image, as torchvision's
/// `RandomResizedCrop` does: up to 10 tries of a random area and aspect ratio, else the centre
/// crop clamped to the ratio range.
pub fn random_resized_crop(config: &AugmentConfig, id: &str, width: u32, height: u32) -> CropPlan {
    let mut rng = row_rng(config.seed, config.epoch, id, "random-resized-crop");
    let area = (width * height) as f32;
    let (log_lo, log_hi) = (config.ratio[0].ln(), config.ratio[1].ln());
    let flip = config.flip && rng.random_bool(0.5);
    for _ in 0..10 {
        let target = area * rng.random_range(config.scale[0]..=config.scale[1]);
        let ratio = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * ratio).sqrt().round() as u32;
        let h = (target / ratio).sqrt().round() as u32;
        if w > 0 && h > 0 && w <= width && h <= height {
            return CropPlan {
                x: rng.random_range(0..=width - w),
                y: rng.random_range(0..=height - h),
                width: w,
                height: h,
                flip,
            };
        }
    }
    let in_ratio = width as f32 / height as f32;
    let (w, h) = if in_ratio < config.ratio[0] {
        (
            width,
            ((width as f32 / config.ratio[0]).round() as u32).max(1),
        )
    } else if in_ratio > config.ratio[1] {
        (
            ((height as f32 * config.ratio[1]).round() as u32).max(1),
            height,
        )
    } else {
        (width, height)
    };
    CropPlan {
        x: (width - w) / 2,
        y: (height - h) / 2,
        width: w,
        height: h,
        flip,
    }
}
