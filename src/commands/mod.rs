//! One module per command.

mod ablate;
mod demo;
mod export;
mod features;
mod inspect;
mod pca;
mod probe;
mod run;
mod sql;
mod status;
mod train;

use anyhow::Result;
use serde_json::{json, Value};

use crate::cli::{Cli, Command};

/// The spec `ldae train` runs for these flags (what a run folder's `spec.json` records), for
/// run folders written by other trainers (`ldae.torch.save_run`).
pub fn train_spec(args: &crate::cli::TrainArgs) -> Result<ldae_jobs::spec::Spec> {
    Ok(train::job(args)?.spec()?)
}

/// What a command did, for callers other than the terminal (the Python package): the JSON
/// report of what it wrote (paths, row counts, metrics). `Value::Null` when it only printed.
pub type Report = Value;

/// Run the command the user asked for: print what the CLI prints, return its [`Report`].
pub fn run(cli: Cli) -> Result<Report> {
    match cli.command {
        Command::Pca(cmd) => pca::run(cmd),
        Command::Inspect { path } => inspect::run(&path).map(|()| Value::Null),
        Command::Run { spec, output, run } => run::run_file(&spec, &output, &run),
        Command::Status { dir } => {
            let complete = status::run(&dir)?;
            Ok(json!({ "complete": complete }))
        }
        Command::Train(args) => train::run(&args),
        Command::Sql {
            query,
            tables,
            allow_incomplete,
        } => sql::run(&query, &tables, allow_incomplete).map(|()| Value::Null),
        Command::Features(args) => features::run(&args),
        Command::Export(args) => export::run(&args),
        Command::Probe(args) => probe::run(&args),
        Command::Ablate { spec, run } => ablate::run(&spec, &run),
        Command::Denoise {
            checkpoint,
            input,
            out,
            count,
            sigmas,
            ema,
            zoom,
            format,
            seed,
        } => {
            let job = ldae_jobs::denoise_grid::DenoiseGridJob {
                checkpoint,
                input,
                format,
                out,
                count,
                sigmas,
                ema,
                zoom,
                seed,
            };
            let report = job.run()?;
            let levels: Vec<String> = job.sigmas.iter().map(|s| s.to_string()).collect();
            println!(
                "wrote {}: {} images; columns: clean, then (noisy, denoised) at sigma {}",
                job.out.display(),
                report.rows,
                levels.join(", ")
            );
            Ok(json!({ "out": job.out, "rows": report.rows }))
        }
        Command::Demo {
            out,
            images,
            test_images,
            epochs,
            batch_size,
            run,
        } => demo::run(
            &ldae_jobs::demo::DemoJob {
                out,
                images,
                test_images,
                epochs,
                batch_size,
            },
            &run,
        ),
    }
}
