//! `ldae features`: feature vectors of images from a trained l-DAE encoder or a baseline.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use candle_core::DType;
use candle_nn::{VarBuilder, VarMap};
use ldae_operators::denoiser::{initialise, Denoiser, Precision};
use ldae_operators::device::parse_device;
use ldae_operators::features::{FeatureKind, Features};
use ldae_operators::pca::PcaModel;
use ldae_operators::train::trainer::{load_trained, TrainConfig};

use crate::cli::FeaturesArgs;
use crate::plans::{open_source, patch_table_pipeline, print_report, run_options, source_options};

pub fn run(args: &FeaturesArgs) -> Result<()> {
    let device = parse_device(&args.device)?;
    let precision = Precision::choose(args.precision.as_deref(), &device)?;
    let trained: Option<(TrainConfig, Denoiser)> = match (&args.checkpoint, args.kind.as_str()) {
        (Some(run), "ldae") => Some(load_trained(run, &device, args.ema, precision)?),
        (Some(run), _) => {
            let text = std::fs::read_to_string(run.join("config.json"))
                .with_context(|| format!("{}: not a training run", run.display()))?;
            let mut config: TrainConfig = serde_json::from_str(&text)?;
            config.model.precision = precision;
            let vars = VarMap::new();
            Denoiser::new(
                &config.model,
                VarBuilder::from_varmap(&vars, DType::F32, &device),
            )?;
            initialise(&vars, args.source.seed)?;
            // Rebuild from plain tensors, so nothing tracks gradients.
            let tensors = vars
                .data()
                .lock()
                .map_err(|_| anyhow::anyhow!("variable map poisoned"))?
                .iter()
                .map(|(k, v)| (k.clone(), v.as_tensor().detach()))
                .collect();
            let model = Denoiser::new(
                &config.model,
                VarBuilder::from_tensors(tensors, DType::F32, &device),
            )?;
            Some((config, model))
        }
        (None, "ldae" | "random") => bail!("--kind {} needs --checkpoint RUN_DIR", args.kind),
        (None, _) => None,
    };
    let pca_path = match (&args.pca, &trained) {
        (Some(p), _) => p.clone(),
        (None, Some((config, _))) => config.pca.clone(),
        (None, None) => bail!("--kind {} needs --pca (or --checkpoint)", args.kind),
    };
    let pca = PcaModel::load(&pca_path)?;
    let kind = match (args.kind.as_str(), trained) {
        ("ldae" | "random", Some((config, model))) => FeatureKind::Network {
            block: args.block.unwrap_or(config.model.encoder_depth),
            model: Arc::new(model),
            t: args.t,
            device: device.clone(),
        },
        ("pixels", _) => FeatureKind::Pixels,
        ("pca", trained) => {
            let dim = args
                .dim
                .or(trained.map(|(c, _)| c.dim))
                .context("--kind pca needs --dim (or --checkpoint)")?;
            FeatureKind::Pca(pca.projector(dim, pca.meta.latent_scale, &device)?)
        }
        (other, _) => bail!("--kind {other}: expected ldae, random, pixels or pca"),
    };
    let options = source_options(&args.source)?;
    let source = open_source(&args.input, &options)?;
    let m = &pca.meta;
    let job = serde_json::json!({
        "command": "features",
        "kind": args.kind,
        "input": args.input,
        "checkpoint": args.checkpoint.as_ref().map(|p| p.display().to_string()),
        "ema": args.ema,
        "block": args.block,
        "t": args.t,
        "pca": pca_path.display().to_string(),
        "seed": args.source.seed,
    });
    let pipeline = patch_table_pipeline(source, &options, m, &args.out, job)?;
    let report = pipeline
        .then(Arc::new(Features::new(kind)))
        .run(&run_options(&args.run, "features"))?;
    print_report(&report);
    println!(
        "wrote {} rows of {} features to {}",
        report.rows_out,
        args.kind,
        args.out.display()
    );
    Ok(())
}
