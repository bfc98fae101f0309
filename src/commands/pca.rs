//! `ldae pca fit | merge | encode | show`.

use std::path::Path;

use anyhow::{bail, Context, Result};
use ldae_jobs::encode::EncodeJob;
use ldae_jobs::pca_fit::PcaFitJob;
use ldae_operators::pca::fit::PcaFitReport;
use ldae_operators::pca::{PcaMeta, PcaModel, PcaStats};

use serde_json::{json, Value};

use crate::cli::PcaCommand;
use crate::flags::{print_or_run, source_options, table_summary};

pub fn run(cmd: PcaCommand) -> Result<super::Report> {
    match cmd {
        PcaCommand::Fit {
            input,
            image_size,
            patch,
            out,
            partial,
            overwrite,
            channels,
            latent_scale,
            print_spec,
            source,
            run,
        } => {
            let job = PcaFitJob {
                input,
                source: source_options(&source)?,
                image_size,
                patch,
                channels,
                out: out.clone(),
                partial,
                latent_scale,
            };
            let target = job.target();
            if partial && !overwrite && !print_spec && target.exists() {
                return skip_done_partial(&job, &target);
            }
            let Some(report) = print_or_run(&job.spec()?, print_spec, &run, "pca fit")? else {
                return Ok(Value::Null);
            };
            let mut variance = Value::Null;
            if !partial {
                let model = PcaModel::load(&out)?;
                println!("{}", model.variance_summary());
                variance = json!(model.explained_variance_ratio());
            }
            let last = report.last().context("the fit ran no pass")?;
            let fit = PcaFitReport::from_output(&report.output)
                .context("the pca_fit sink reported no fit")?;
            println!(
                "wrote {} ({} images, {} rejected; errors table {})",
                target.display(),
                last.rows_out,
                last.rejected.len(),
                fit.errors.display()
            );
            Ok(json!({
                "pca": target,
                "rows": last.rows_out,
                "rejected": last.rejected.len(),
                "errors": fit.errors,
                "explained_variance_ratio": variance,
            }))
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
            print_spec,
            output,
            source,
            run,
        } => {
            let job = EncodeJob {
                write: output.write(),
                input,
                source: source_options(&source)?,
                pca,
                dim,
                latent_scale,
                device,
                out: out.clone(),
            };
            let Some(report) = print_or_run(&job.spec()?, print_spec, &run, "pca encode")? else {
                return Ok(Value::Null);
            };
            println!("{}", table_summary(&report.output, "latents"));
            Ok(report.output)
        }
        PcaCommand::Show {
            pca,
            out,
            count,
            zoom,
        } => {
            let model = PcaModel::load(&pca)?;
            let img = ldae_operators::pca::show::draw_components(&model, count, zoom.max(1));
            let temp = ldae_pipeline::atomic_file::temp_path(&out);
            img.save_with_format(&temp, image::ImageFormat::Png)
                .with_context(|| format!("writing {}", out.display()))?;
            ldae_pipeline::atomic_file::commit(&temp, &out)?;
            println!("{}", model.variance_summary());
            println!(
                "wrote {} ({} components of {} as {}x{} patches, largest eigenvalue first)",
                out.display(),
                count.min(model.dim()),
                pca.display(),
                model.meta.geometry.patch,
                model.meta.geometry.patch
            );
            Ok(json!({ "out": out }))
        }
    }
}

/// A shard's partial statistics are already written: say so, after checking they are this
/// job's (same input and geometry), instead of redoing the shard.
fn skip_done_partial(job: &PcaFitJob, target: &Path) -> Result<Value> {
    let (stats, meta) = PcaStats::load_partial(target)?;
    // The fit records its input as `INPUT (shard i/n)`.
    let recorded = meta.input.split(" (shard ").next().unwrap_or_default();
    let input = ldae_jobs::pca_fit::absolute(Path::new(&job.input));
    let same_input = recorded == job.input || Path::new(recorded) == input;
    let geometry = &meta.geometry;
    if !same_input || geometry.size != job.image_size || geometry.patch != job.patch {
        bail!(
            "{}: holds partial statistics of another job (input {}, {geometry}); \
             write to another --out, or pass --overwrite",
            target.display(),
            meta.input,
        );
    }
    println!(
        "{}: already complete ({} images): nothing to do (--overwrite redoes it)",
        target.display(),
        stats.images
    );
    Ok(json!({ "pca": target, "rows": stats.images, "skipped": true }))
}

/// The partial files named on the command line, a folder standing for all of its shards.
fn expand_partials(partials: &[std::path::PathBuf]) -> Result<Vec<std::path::PathBuf>> {
    let mut files = Vec::new();
    for p in partials {
        if p.is_dir() {
            files.extend(ldae_jobs::pca_fit::partials_in(p)?);
        } else {
            files.push(p.clone());
        }
    }
    Ok(files)
}

fn merge(partials: &[std::path::PathBuf], out: &Path, partial: bool) -> Result<Value> {
    let partials = &expand_partials(partials)?;
    let mut merged: Option<(PcaStats, PcaMeta)> = None;
    let mut inputs = Vec::new();
    for p in partials {
        let (stats, meta) = PcaStats::load_partial(p)?;
        inputs.push(meta.input.clone());
        match &mut merged {
            None => merged = Some((stats, meta)),
            Some((acc, first)) => {
                if let Err(what) = first.compatible(&meta.geometry, &meta.normalization) {
                    bail!("{}: made with {what} (the first partial's)", p.display());
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
        return Ok(json!({ "pca": out, "rows": stats.images, "partial": true }));
    }
    let model = PcaModel::fit(&stats, meta)?;
    model.save(out)?;
    println!("{}", model.variance_summary());
    println!(
        "wrote {} from {} partial(s): {} images, {} patches",
        out.display(),
        partials.len(),
        stats.images,
        stats.count
    );
    Ok(json!({
        "pca": out,
        "rows": stats.images,
        "explained_variance_ratio": model.explained_variance_ratio(),
    }))
}
