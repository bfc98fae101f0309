//! `ldae pca fit | merge | encode | show`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ldae_operators::device::parse_device;
use ldae_operators::normalize::Normalization;
use ldae_operators::pca::{
    LatentScale, PcaFit, PcaFitConfig, PcaMeta, PcaModel, PcaProject, PcaStats,
};
use ldae_pipeline::{Pipeline, RunReport};

use crate::cli::{PcaCommand, RunArgs, SourceArgs};
use crate::plans::{
    natural_channels, open_source, patch_operators, patch_table_pipeline, print_report,
    run_options, source_options,
};

pub fn run(cmd: PcaCommand) -> Result<()> {
    match cmd {
        PcaCommand::Fit {
            input,
            image_size,
            patch,
            out,
            partial,
            channels,
            latent_scale,
            source,
            run,
        } => {
            let report = fit(&FitJob {
                input: &input,
                image_size,
                patch,
                out: &out,
                partial,
                channels,
                latent_scale: latent_scale.parse()?,
                source: &source,
                run: &run,
            })?;
            print_report(&report);
            if !partial {
                let model = PcaModel::load(&out)?;
                println!("{}", variance_summary(&model));
            }
            println!(
                "wrote {} ({} images, {} rejected; errors table {})",
                out.display(),
                report.rows_out,
                report.rejected.len(),
                report.output["errors"].as_str().unwrap_or("-")
            );
            Ok(())
        }
        PcaCommand::Merge {
            partials,
            out,
            partial,
        } => merge(&partials, &out, partial),
        PcaCommand::Encode {
            input,
            pca,
            dim,
            out,
            latent_scale,
            device,
            source,
            run,
        } => {
            let scale = latent_scale.map(|s| s.parse()).transpose()?;
            let report = encode(&input, &pca, dim, &out, scale, &device, &source, &run)?;
            print_report(&report);
            println!(
                "wrote {} rows of latents to {} ({} rejected, see {})",
                report.rows_out,
                out.display(),
                report.rejected.len(),
                report.output["errors"].as_str().unwrap_or("-")
            );
            Ok(())
        }
        PcaCommand::Show {
            pca,
            out,
            count,
            zoom,
        } => {
            let model = PcaModel::load(&pca)?;
            let img = ldae_operators::pca::show::draw_components(&model, count, zoom.max(1));
            let temp = ldae_operators::atomic::temp_path(&out);
            img.save_with_format(&temp, image::ImageFormat::Png)
                .with_context(|| format!("writing {}", out.display()))?;
            ldae_operators::atomic::commit(&temp, &out)?;
            println!("{}", variance_summary(&model));
            println!(
                "wrote {} ({} components of {} as {}x{} patches, largest eigenvalue first)",
                out.display(),
                count.min(model.dim()),
                pca.display(),
                model.meta.patch_size,
                model.meta.patch_size
            );
            Ok(())
        }
    }
}

/// Settings of one PCA fit.
pub struct FitJob<'a> {
    pub input: &'a str,
    pub image_size: usize,
    pub patch: usize,
    pub out: &'a Path,
    pub partial: bool,
    pub channels: Option<u8>,
    pub latent_scale: LatentScale,
    pub source: &'a SourceArgs,
    pub run: &'a RunArgs,
}

/// Fit a PCA (or partial statistics) on a dataset.
pub fn fit(job: &FitJob<'_>) -> Result<RunReport> {
    let options = source_options(job.source)?;
    let source = open_source(job.input, &options)?;
    let channels = job
        .channels
        .unwrap_or_else(|| natural_channels(source.as_ref()));
    let normalization = Normalization::default();
    let meta = PcaMeta {
        image_size: job.image_size,
        patch_size: job.patch,
        channels: channels as usize,
        normalization: normalization.clone(),
        latent_scale: job.latent_scale,
        samples: 0,
        images: 0,
        fingerprint: String::new(),
        input: match options.shard {
            Some(s) => format!("{} (shard {s})", job.input),
            None => job.input.to_string(),
        },
    };
    let sink = PcaFit::new(PcaFitConfig {
        out: job.out.to_path_buf(),
        partial: job.partial,
        meta,
    });
    let mut pipeline = Pipeline::new(source, Box::new(sink));
    for op in patch_operators(job.image_size, channels, job.patch, normalization)? {
        pipeline = pipeline.then(op);
    }
    let report = pipeline.run(&run_options(job.run, "pca fit"))?;
    if report.rows_out == 0 {
        bail!(
            "no image could be read from {}: see the errors table",
            job.input
        );
    }
    Ok(report)
}

fn merge(partials: &[std::path::PathBuf], out: &Path, partial: bool) -> Result<()> {
    let mut merged: Option<(PcaStats, PcaMeta)> = None;
    let mut inputs = Vec::new();
    for p in partials {
        let (stats, meta) = PcaStats::load_partial(p)?;
        inputs.push(meta.input.clone());
        match &mut merged {
            None => merged = Some((stats, meta)),
            Some((acc, first)) => {
                if !first.same_geometry(&meta) {
                    bail!(
                        "{}: made with image size {}, patch {}, {} channel(s); the first partial used {}, {}, {}",
                        p.display(), meta.image_size, meta.patch_size, meta.channels,
                        first.image_size, first.patch_size, first.channels
                    );
                }
                acc.merge(&stats)?;
            }
        }
    }
    let Some((stats, mut meta)) = merged else {
        bail!("no partial statistics given");
    };
    meta.input = inputs.join(" + ");
    if partial {
        meta.samples = stats.count;
        meta.images = stats.images;
        stats.save_partial(out, &meta)?;
        println!(
            "wrote merged partial statistics {} ({} images)",
            out.display(),
            stats.images
        );
        return Ok(());
    }
    let model = PcaModel::fit(&stats, meta)?;
    model.save(out)?;
    println!("{}", variance_summary(&model));
    println!(
        "wrote {} from {} partial(s): {} images, {} patches",
        out.display(),
        partials.len(),
        stats.images,
        stats.count
    );
    Ok(())
}

/// Encode a dataset to PCA latents in a Parquet folder.
#[allow(clippy::too_many_arguments)]
pub fn encode(
    input: &str,
    pca: &Path,
    dim: usize,
    out: &Path,
    latent_scale: Option<LatentScale>,
    device: &str,
    source_args: &SourceArgs,
    run: &RunArgs,
) -> Result<RunReport> {
    let model = PcaModel::load(pca)?;
    let device = parse_device(device)?;
    let scale = latent_scale.unwrap_or(model.meta.latent_scale);
    let options = source_options(source_args)?;
    let source = open_source(input, &options)?;
    let m = &model.meta;
    let job = serde_json::json!({
        "command": "pca encode",
        "input": input,
        "limit": options.limit,
        "shuffle": options.shuffle,
        "seed": options.seed,
        "pca": pca.display().to_string(),
        "pca_fingerprint": m.fingerprint,
        "pca_input": m.input,
        "image_size": m.image_size,
        "patch_size": m.patch_size,
        "channels": m.channels,
        "normalization": m.normalization,
        "dim": dim,
        "latent_scale": scale,
    });
    let pipeline = patch_table_pipeline(source, &options, m, out, job)?;
    let pipeline = pipeline.then(std::sync::Arc::new(PcaProject::new(
        &model, dim, scale, &device,
    )?));
    Ok(pipeline.run(&run_options(run, "pca encode"))?)
}

/// Explained variance at a few latent dimensions, one line.
pub fn variance_summary(model: &PcaModel) -> String {
    let ratio = model.explained_variance_ratio();
    let mut acc = 0.0;
    let cumulative: Vec<f64> = ratio
        .iter()
        .map(|r| {
            acc += r;
            acc
        })
        .collect();
    let d = model.dim();
    let mut points: Vec<usize> = [1, 2, 4, 8, 16, 32, 64, 128, 256]
        .into_iter()
        .filter(|&k| k < d)
        .collect();
    points.push(d);
    let parts: Vec<String> = points
        .iter()
        .map(|&k| format!("d={k}: {:.1}%", 100.0 * cumulative[k - 1]))
        .collect();
    format!(
        "PCA over {} patches of {} images ({}x{} px, patch {}, D={}): explained variance {}",
        model.meta.samples,
        model.meta.images,
        model.meta.image_size,
        model.meta.image_size,
        model.meta.patch_size,
        d,
        parts.join(", ")
    )
}
