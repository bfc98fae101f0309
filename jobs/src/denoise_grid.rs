//! The denoise-grid job (`ldae denoise`): a picture grid of clean, noised and denoised images
//! from a trained model.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::Float32Array;
use image::{imageops::FilterType, Rgb, RgbImage};
use ldae_datasets::{Format, SourceOptions};
use ldae_model::denoise_operator::{DenoiseConfig, DENOISED};
use ldae_model::train::trainer::read_train_config;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_operators::noise::NoiseConfig;
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::patchify::{PatchGeometry, Patchify};
use ldae_operators::pca::PcaModel;
use ldae_pipeline::columns::{self, tensor_values};
use ldae_pipeline::{BuildContext, Collect, OperatorConfig, Pipeline, ProgressMode, RunOptions};

use crate::{bail, Error, Result};

/// Draw what a trained model does to the first images of a dataset.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DenoiseGridJob {
    /// The training run folder.
    pub checkpoint: PathBuf,
    /// The dataset (its first rows are drawn).
    pub input: String,
    /// Dataset kind, when it cannot be told from the path.
    pub format: Option<Format>,
    /// Output PNG.
    pub out: PathBuf,
    /// Images (rows of the grid).
    pub count: usize,
    /// Noise levels (a noisy and a denoised column each).
    pub sigmas: Vec<f32>,
    /// Use the EMA weights.
    pub ema: bool,
    /// Enlargement of each picture.
    pub zoom: u32,
    /// Seed of the noise.
    pub seed: u64,
}

/// One image of patches (`N * D` values) as an RGB picture.
fn picture(patches: &[f32], g: &PatchGeometry, norm: &Normalization) -> RgbImage {
    let mut pixels = vec![0f32; patches.len()];
    g.unpatchify(patches, &mut pixels);
    let s = g.size as u32;
    RgbImage::from_fn(s, s, |x, y| {
        let base = (y as usize * g.size + x as usize) * g.channels;
        let v = |c: usize| norm.to_u8(pixels[base + c.min(g.channels - 1)], c.min(g.channels - 1));
        Rgb([v(0), v(1), v(2)])
    })
}

/// What the grid shows.
pub struct DenoiseGridReport {
    /// Images drawn (rows of the grid).
    pub rows: usize,
}

impl DenoiseGridJob {
    /// Draw the grid into `out`: a column of clean images, then a noisy and a denoised column
    /// per sigma. The noise and the network's prediction are the registered `noise` and
    /// `denoise` operators, as a spec would run them.
    pub fn run(&self) -> Result<DenoiseGridReport> {
        if self.sigmas.is_empty() || self.count == 0 {
            return Err(Error::invalid("need at least one sigma and one image"));
        }
        let config = read_train_config(&self.checkpoint)?;
        let pca = PcaModel::load(&config.pca)?;
        let m = &pca.meta;
        let options = SourceOptions {
            format: self.format,
            limit: Some(self.count),
            batch_size: Some(self.count),
            ..SourceOptions::default()
        };
        let collect = Collect::new();
        let source = ldae_datasets::open(&self.input, &options)?;
        Pipeline::new(source, Box::new(collect.clone()))
            .then(Arc::new(Decode::new(DecodeConfig {
                image_size: m.geometry.size as u32,
                channels: m.geometry.channels as u8,
                ..DecodeConfig::default()
            })?))
            .then(Arc::new(Normalize::new(m.normalization.clone())))
            .then(Arc::new(Patchify::new(m.geometry.patch)))
            .run(&RunOptions {
                threads: 1,
                progress: ProgressMode::Off,
                ..RunOptions::default()
            })?;
        let Some(clean) = collect.batches().into_iter().find(|b| b.num_rows() > 0) else {
            bail!("{}: no image could be read", self.input);
        };
        let rows = clean.num_rows();
        let g = m.geometry;
        let per_image = g.tokens() * g.patch_dim();
        let pictures =
            |batch: &arrow::record_batch::RecordBatch, column: &str| -> Result<Vec<RgbImage>> {
                let values: Float32Array = tensor_values(batch, column)?;
                Ok(values
                    .values()
                    .chunks(per_image)
                    .map(|p| picture(p, &g, &m.normalization))
                    .collect())
            };
        let mut columns_of_pictures = vec![pictures(&clean, columns::PATCHES)?];
        let ctx = BuildContext::default();
        let denoise = DenoiseConfig {
            checkpoint: self.checkpoint.clone(),
            ema: self.ema,
            device: ldae_operators::device::DeviceName::Cpu,
            precision: None,
        }
        .build(&ctx)?;
        for &sigma in &self.sigmas {
            let noise = NoiseConfig {
                pca: config.pca.clone(),
                dim: config.dim,
                latent_scale: Some(config.latent_scale),
                sigma: Some(sigma),
                seed: self.seed,
            }
            .build(&ctx)?;
            let noisy = noise.process_once(clean.clone())?.batch;
            let denoised = denoise.process_once(noisy)?.batch;
            columns_of_pictures.push(pictures(&denoised, columns::NOISY)?);
            columns_of_pictures.push(pictures(&denoised, DENOISED)?);
        }
        let cell = g.size as u32 * self.zoom.max(1);
        let gap = 2;
        let cols = columns_of_pictures.len() as u32;
        let mut grid = RgbImage::from_pixel(
            cols * (cell + gap) + gap,
            rows as u32 * (cell + gap) + gap,
            Rgb([255, 255, 255]),
        );
        for (c, column) in columns_of_pictures.iter().enumerate() {
            for (r, img) in column.iter().enumerate() {
                let big = image::imageops::resize(img, cell, cell, FilterType::Nearest);
                let x = gap + c as u32 * (cell + gap);
                let y = gap + r as u32 * (cell + gap);
                image::imageops::overlay(&mut grid, &big, x as i64, y as i64);
            }
        }
        ldae_operators::plot::save_png(&grid, &self.out)?;
        Ok(DenoiseGridReport { rows })
    }
}
