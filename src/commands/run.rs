//! `ldae run SPEC.toml`: read a pipeline spec and run it (the format: docs/pipeline-spec.md).

use std::path::Path;

use anyhow::Result;
use ldae_jobs::spec::{RunSettings, Spec};
use ldae_operators::parquet_sink::ParquetSinkConfig;
use ldae_pipeline::SinkSpec;

use crate::cli::{OutputArgs, RunArgs};
use crate::flags::{print_passes, run_options};

/// Parse and run the spec at `path`; relative paths in it are relative to its folder.
pub fn run_file(path: &Path, output: &OutputArgs, run: &RunArgs) -> Result<super::Report> {
    let mut spec = Spec::read(path)?;
    // --overwrite / --resume are the table sink's keys; other sinks have no such choice.
    if output.overwrite || output.resume || output.rows_per_file.is_some() {
        let Some(parquet) = spec.sink.get::<ParquetSinkConfig>() else {
            anyhow::bail!("--overwrite, --resume and --rows-per-file apply to a parquet sink only");
        };
        let mut parquet = parquet.clone();
        if output.overwrite || output.resume {
            parquet.overwrite = output.overwrite;
            parquet.resume = output.resume;
        }
        if let Some(rows) = output.rows_per_file {
            parquet.rows_per_file = rows;
        }
        spec.sink = SinkSpec::new(parquet);
    }
    // On a job array the task's shard comes from the scheduler's environment, as for the
    // other commands; a shard written in the spec wins.
    if spec.source.options.shard.is_none() {
        spec.source.options.shard = crate::flags::shard_from_env()?;
    }
    let settings = RunSettings {
        base: path.parent().unwrap_or(Path::new("")).to_path_buf(),
        options: run_options(run, "run"),
        on_message: Some(&|line: &str| println!("{line}")),
    };
    let report = ldae_jobs::spec::run(&spec, &settings)?;
    print_passes(&report);
    println!("{}", serde_json::to_string(&report.output)?);
    Ok(report.output)
}
