//! `ldae denoise`: a picture grid of clean, noised and denoised images from a trained model.

use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::Float32Array;
use candle_core::{DType, Device, Tensor};
use image::{imageops::FilterType, Rgb, RgbImage};
use ldae_datasets::SourceOptions;
use ldae_model::denoiser::model::timesteps;
use ldae_model::denoiser::Precision;
use ldae_model::train::trainer::load_trained;
use ldae_operators::decode::{Decode, DecodeConfig};
use ldae_operators::noise::{Noise, NoiseSchedule};
use ldae_operators::normalize::{Normalization, Normalize};
use ldae_operators::patchify::{PatchGeometry, Patchify};
use ldae_operators::pca::PcaModel;
use ldae_pipeline::columns::{self, tensor_values};
use ldae_pipeline::{Collect, Operator, Pipeline, ProgressMode, RunOptions};

use crate::cli::FormatArg;
use crate::plans::open_source;

pub struct DenoiseJob<'a> {
    pub checkpoint: &'a Path,
    pub input: &'a str,
    pub out: &'a Path,
    pub count: usize,
    pub sigmas: &'a str,
    pub ema: bool,
    pub zoom: u32,
    pub format: Option<FormatArg>,
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

pub fn run(job: &DenoiseJob<'_>) -> Result<()> {
    let sigmas: Vec<f32> = job
        .sigmas
        .split(',')
        .map(|s| s.trim().parse::<f32>())
        .collect::<Result<_, _>>()
        .with_context(|| {
            format!(
                "--sigmas '{}': expected numbers like 0.1,0.5,1.0",
                job.sigmas
            )
        })?;
    if sigmas.is_empty() || job.count == 0 {
        bail!("need at least one sigma and one image");
    }
    let device = Device::Cpu;
    let (config, model) = load_trained(
        job.checkpoint,
        &device,
        job.ema,
        Precision::choose(None, &device)?,
    )?;
    let pca = PcaModel::load(&config.pca)?;
    let m = &pca.meta;
    let options = SourceOptions {
        format: job
            .format
            .map(|f| format!("{f:?}").to_lowercase().parse())
            .transpose()?,
        limit: Some(job.count),
        batch_size: job.count,
        ..SourceOptions::default()
    };
    let collect = Collect::new();
    Pipeline::new(open_source(job.input, &options)?, Box::new(collect.clone()))
        .then(Arc::new(Decode::new(DecodeConfig {
            image_size: m.image_size as u32,
            channels: m.channels as u8,
            ..DecodeConfig::default()
        })?))
        .then(Arc::new(Normalize::new(m.normalization.clone())))
        .then(Arc::new(Patchify::new(m.patch_size)))
        .run(&RunOptions {
            threads: 1,
            progress: ProgressMode::Off,
            ..RunOptions::default()
        })?;
    let batches = collect.batches();
    let Some(clean) = batches.into_iter().find(|b| b.num_rows() > 0) else {
        bail!("{}: no image could be read", job.input);
    };
    let rows = clean.num_rows();
    let g = PatchGeometry::new(m.image_size, m.channels, m.patch_size)?;
    let per_image = g.tokens() * g.patch_dim();
    let clean_values: Float32Array = tensor_values(&clean, columns::PATCHES)?;
    let mut columns_of_pictures: Vec<Vec<RgbImage>> = vec![clean_values
        .values()
        .chunks(per_image)
        .map(|p| picture(p, &g, &m.normalization))
        .collect()];
    for &sigma in &sigmas {
        let noise = Noise::new(
            &pca,
            config.dim,
            config.latent_scale,
            NoiseSchedule::SingleLevel { sigma },
            job.seed,
            0,
        )?;
        let noisy = noise.process_once(clean.clone())?.batch;
        let noisy_values: Float32Array = tensor_values(&noisy, columns::NOISY)?;
        let x = Tensor::from_slice(
            noisy_values.values(),
            (rows, g.tokens(), g.patch_dim()),
            &device,
        )?;
        let t = timesteps(&vec![sigma; rows], DType::F32, &device)?;
        let denoised: Vec<f32> = model.forward(&x, &t)?.flatten_all()?.to_vec1()?;
        columns_of_pictures.push(
            noisy_values
                .values()
                .chunks(per_image)
                .map(|p| picture(p, &g, &m.normalization))
                .collect(),
        );
        columns_of_pictures.push(
            denoised
                .chunks(per_image)
                .map(|p| picture(p, &g, &m.normalization))
                .collect(),
        );
    }
    let cell = g.size as u32 * job.zoom.max(1);
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
    let temp = ldae_operators::atomic::temp_path(job.out);
    grid.save_with_format(&temp, image::ImageFormat::Png)
        .with_context(|| format!("writing {}", job.out.display()))?;
    ldae_operators::atomic::commit(&temp, job.out)?;
    let levels: Vec<String> = sigmas.iter().map(|s| format!("{s}")).collect();
    println!(
        "wrote {}: {rows} images; columns: clean, then (noisy, denoised) at sigma {}",
        job.out.display(),
        levels.join(", ")
    );
    Ok(())
}
