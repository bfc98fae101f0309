//! `ldae features`: feature vectors of images from a trained l-DAE encoder or a baseline.

use anyhow::Result;
use ldae_jobs::features::{FeaturesJob, PreprocessOverrides};

use crate::cli::FeaturesArgs;
use crate::flags::{print_or_run, source_options, table_summary};

/// The job of the command's flags.
pub fn job(args: &FeaturesArgs) -> Result<FeaturesJob> {
    Ok(FeaturesJob {
        write: args.output.write(),
        input: args.input.clone(),
        source: source_options(&args.source)?,
        out: args.out.clone(),
        model: args.kind,
        checkpoint: args.checkpoint.clone(),
        blocks: args.block.clone(),
        t: args.t,
        pooling: args.pooling,
        ema: args.ema.then_some(true),
        pca: args.pca.clone(),
        dim: args.dim,
        seed: args.source.seed,
        device: args.device,
        precision: args.precision,
        preprocess: PreprocessOverrides {
            image_size: args.image_size,
            crop_pct: args.crop_pct,
            interpolation: args.interpolation,
            mean: args.mean.clone(),
            std: args.std.clone(),
        },
    })
}

pub fn run(args: &FeaturesArgs) -> Result<super::Report> {
    let spec = job(args)?.spec()?;
    let Some(report) = print_or_run(&spec, args.print_spec, &args.run, "features")? else {
        return Ok(serde_json::Value::Null);
    };
    let what = format!("{} features", ldae_pipeline::names::name_of(&args.kind));
    println!("{}", table_summary(&report.output, &what));
    Ok(report.output)
}
