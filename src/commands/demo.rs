//! `ldae demo`: the built-in end-to-end run on synthetic images; needs no files.

use std::path::Path;

use anyhow::Result;
use ldae_operators::pca::{LatentScale, PcaModel};

use super::pca::{encode, fit, variance_summary, FitJob};
use crate::cli::{RunArgs, SourceArgs};

pub fn run(out: &Path, images: usize, run: &RunArgs) -> Result<()> {
    std::fs::create_dir_all(out)?;
    let input = format!("synthetic:{images}");
    let source = SourceArgs {
        format: None,
        limit: None,
        shard: None,
        shuffle: false,
        batch_size: 256,
        seed: 0,
    };
    let pca_path = out.join("pca.safetensors");
    println!("1/3 fitting a patch PCA (32x32 images, patch 4, D=48) on {input}");
    fit(&FitJob {
        input: &input,
        image_size: 32,
        patch: 4,
        out: &pca_path,
        partial: false,
        channels: Some(3),
        latent_scale: LatentScale::Global,
        source: &source,
        run,
    })?;
    let model = PcaModel::load(&pca_path)?;
    println!("    {}", variance_summary(&model));

    let picture = out.join("components.png");
    let temp = ldae_operators::atomic::temp_path(&picture);
    ldae_operators::pca::show::draw_components(&model, 48, 8)
        .save_with_format(&temp, image::ImageFormat::Png)?;
    ldae_operators::atomic::commit(&temp, &picture)?;
    println!("2/3 drew the components to {}", picture.display());

    let latents = out.join("latents");
    println!("3/3 encoding {input} to d=16 latents");
    let report = encode(&input, &pca_path, 16, &latents, None, "cpu", &source, run)?;
    crate::plans::print_report(&report);
    println!();
    println!("demo outputs in {}:", out.display());
    println!(
        "  {:<28} PCA model (ldae inspect {})",
        pca_path.display(),
        pca_path.display()
    );
    println!("  {:<28} top components as 4x4 patches", picture.display());
    println!(
        "  {:<28} {} rows (id, label, latents [64, 16]) at {:.0} images/s",
        latents.display(),
        report.rows_out,
        report.rows_in as f64 / report.wall.as_secs_f64().max(1e-9)
    );
    Ok(())
}
