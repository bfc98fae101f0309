//! `ldae train`: l-DAE pre-training, run as the training job's spec (one pass per epoch into
//! the `train` sink).

use anyhow::Result;
use ldae_jobs::experiment::build_pixel_cache;
use ldae_jobs::spec::{RunSettings, Spec};
use ldae_jobs::train::{resume_spec, TrainJob};
use ldae_model::encoder::FeatureDefaults;
use ldae_model::train::sink::TrainSinkConfig;
use ldae_operators::device::DeviceName;

use crate::cli::{RunArgs, TrainArgs};
use crate::flags::{print_passes, run_options};

/// The job of the command's flags.
pub fn job(args: &TrainArgs) -> Result<TrainJob> {
    let (Some(input), Some(pca)) = (&args.input, &args.pca) else {
        anyhow::bail!("a new run needs --input and --pca");
    };
    Ok(TrainJob {
        input: input.clone(),
        format: args.format,
        split: args.split.clone(),
        limit: args.limit,
        pixel_cache: args.pixel_cache.clone(),
        pca: pca.clone(),
        dim: args.dim,
        latent_scale: args.latent_scale,
        sigma: args.noise.schedule(args.sigma).sigma(),
        augment: args.augment,
        train: TrainSinkConfig {
            out: args.out.clone(),
            preset: args.preset,
            width: args.width,
            depth: args.depth,
            heads: args.heads,
            conditioning: args.conditioning,
            features: FeatureDefaults {
                block: args.feature_block,
                t: args.feature_t,
                pooling: args.feature_pooling,
                ema: args.feature_ema,
            },
            epochs: args.epochs,
            batch_size: args.batch_size.max(1),
            lr: args.lr,
            warmup_epochs: args.warmup_epochs,
            weight_decay: args.weight_decay,
            grad_clip: args.grad_clip,
            ema: args.ema,
            seed: args.seed,
            checkpoint_every: args.checkpoint_every.max(1),
            max_steps: args.max_steps,
            time_budget_s: args.time_budget,
            device: args.device,
            precision: args.precision,
            resume: false,
        },
    })
}

/// Run `spec` with the CLI's printing: each epoch's line, the sink's messages, then one stage
/// table summed over the epochs (the train sink's "wait in" is the model step waiting for the
/// loader).
pub fn run_spec(spec: &Spec, base: std::path::PathBuf, run: &RunArgs) -> Result<super::Report> {
    let mut run = run.clone();
    let on_cpu = spec
        .sink
        .get::<TrainSinkConfig>()
        .is_none_or(|train| train.device == DeviceName::Cpu);
    if on_cpu {
        // The model step uses every core through candle; one worker per operator keeps the
        // decode and noise stages from competing with it. On a GPU the cores are the loader's.
        run.threads = run.threads.or(Some(1));
    }
    let settings = RunSettings {
        base,
        options: run_options(&run, "train"),
        on_message: Some(&|line: &str| println!("{line}")),
    };
    let report = ldae_jobs::spec::run(spec, &settings)?;
    print_passes(&report);
    Ok(report.output)
}

pub fn run(args: &TrainArgs) -> Result<super::Report> {
    if args.resume {
        // What may change between sessions of one run: where it stops, where it computes and
        // the precision of its products (unset: the device's default).
        let (base, spec) = resume_spec(&args.out, |train| {
            train.max_steps = args.max_steps;
            train.device = args.device;
            if args.precision.is_some() {
                train.precision = args.precision;
            }
        })?;
        if args.print_spec {
            print!("{}", spec.to_toml()?);
            return Ok(serde_json::Value::Null);
        }
        return run_spec(&spec, base, &args.run);
    }
    let job = job(args)?;
    let spec = job.spec()?;
    if args.print_spec {
        print!("{}", spec.to_toml()?);
        return Ok(serde_json::Value::Null);
    }
    let say = |line: &str| println!("{line}");
    let cache_options = run_options(&args.run, "pixel cache");
    if let Some(report) = build_pixel_cache(&job, &cache_options, &say)? {
        print_passes(&report);
    }
    run_spec(&spec, std::path::PathBuf::new(), &args.run)
}
