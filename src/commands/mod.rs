//! One module per command.

mod ablate;
mod demo;
mod features;
mod inspect;
mod pca;
mod probe;
mod sql;
mod status;
mod train;

use anyhow::Result;

use crate::cli::{Cli, Command};

/// Run the command the user asked for.
pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Pca(cmd) => pca::run(cmd),
        Command::Inspect { path } => inspect::run(&path),
        Command::Run { spec, output, run } => crate::spec::run_file(&spec, &output, &run),
        Command::Status { dir } => {
            // Exit status 1 while the job is not complete, so a script can wait on it.
            if !status::run(&dir)? {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Train(args) => train::run(&args),
        Command::Sql {
            query,
            tables,
            allow_incomplete,
        } => sql::run(&query, &tables, allow_incomplete),
        Command::Features(args) => features::run(&args),
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
                format: format.map(crate::plans::format_of),
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
            Ok(())
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
