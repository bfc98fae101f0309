//! From command-line flags to the library's settings, and running specs with a printed report.

use anyhow::{Context, Result};
use ldae_datasets::{Shard, SourceOptions};
use ldae_jobs::spec::{RunSettings, Spec, SpecReport};
use ldae_pipeline::{ProgressMode, RunOptions, RunReport};

use crate::cli::{RunArgs, SourceArgs};
use ldae_operators::parquet_sink::TableReport;

/// The source options of a command's flags.
pub fn source_options(args: &SourceArgs) -> Result<SourceOptions> {
    let shard = match &args.shard {
        Some(s) => Some(s.parse::<Shard>()?),
        None => shard_from_env()?,
    };
    Ok(SourceOptions {
        format: args.format,
        limit: args.limit,
        shard,
        skip: args.skip,
        shuffle: args.shuffle,
        seed: args.seed,
        batch_size: args.batch_size,
        formats: ldae_datasets::parquet_table::split_settings(args.split.as_deref()),
    })
}

/// `LDAE_SHARDS=n` with a Slurm array or Kubernetes Indexed Job index selects this task's shard.
pub fn shard_from_env() -> Result<Option<Shard>> {
    let Ok(count) = std::env::var("LDAE_SHARDS") else {
        return Ok(None);
    };
    let index = std::env::var("SLURM_ARRAY_TASK_ID")
        .or_else(|_| std::env::var("JOB_COMPLETION_INDEX"))
        .context(
            "LDAE_SHARDS is set but neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is",
        )?;
    Ok(Some(format!("{index}/{count}").parse::<Shard>()?))
}

/// Whether `--quiet` was given: no progress and no stage tables (warnings, errors and each
/// command's result lines still print).
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Record `--quiet` for the run options and reports of this process (called once in `main`).
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, std::sync::atomic::Ordering::Relaxed);
}

fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// The run options of a command's flags (`--quiet` turns progress off).
pub fn run_options(args: &RunArgs, label: &str) -> RunOptions {
    let mut options = RunOptions {
        on_error: args.on_error,
        progress: if quiet() {
            ProgressMode::Off
        } else {
            args.progress
        },
        label: label.to_string(),
        ..RunOptions::default()
    };
    if let Some(t) = args.threads {
        options.threads = t.max(1);
    }
    options
}

/// Print `spec` as TOML (with `print_spec`) or run it, printing each pass's table. `None` when
/// only printed.
pub fn print_or_run(
    spec: &Spec,
    print_spec: bool,
    run: &RunArgs,
    label: &str,
) -> Result<Option<SpecReport>> {
    if print_spec {
        print!("{}", spec.with_sized_batches().to_toml()?);
        return Ok(None);
    }
    let settings = RunSettings {
        options: run_options(run, label),
        on_message: Some(&|line: &str| println!("{line}")),
        ..RunSettings::default()
    };
    let report = ldae_jobs::spec::run(spec, &settings)?;
    print_passes(&report);
    Ok(Some(report))
}

/// Print a spec run's stage table: its one pass's, or, for a run of several passes (the epochs
/// of a training run), one table summed over them. A train sink's "wait in" is the model step
/// waiting for the loader.
pub fn print_passes(report: &SpecReport) {
    if quiet() {
        if let Some(total) = report.total() {
            print_rejected(&total);
        }
        return;
    }
    if report.passes.len() > 1 {
        eprintln!(
            "stages summed over the {} passes (epochs) this command ran",
            report.passes.len()
        );
    }
    if let Some(total) = report.total() {
        print_report(&total);
    }
}

/// One line on what a table sink wrote (its output: rows, shard, whether the table is
/// complete), e.g. `wrote 4000 rows of latents to OUT (0 rejected); the table is complete`.
pub fn table_summary(output: &serde_json::Value, what: &str) -> String {
    let Some(r) = TableReport::from_output(output) else {
        return format!("wrote {what}: {output}");
    };
    let out = r.out.display();
    let verb = if r.skipped { "already had" } else { "wrote" };
    let whose = if r.shards > 1 {
        format!(" (shard {})", r.shard)
    } else {
        String::new()
    };
    let state = if r.complete {
        format!("the table is complete (errors: {})", r.errors.display())
    } else {
        format!(
            "{} of {} shards done; the table is published when all are (`ldae status {out}`)",
            r.shards_done, r.shards
        )
    };
    format!(
        "{verb} {} rows of {what} in {out}{whose}, {} rejected; {state}",
        r.rows, r.rejected
    )
}

/// Print a run's per-stage table (unless `--quiet`) and rejected-row summary to stderr.
pub fn print_report(report: &RunReport) {
    if !quiet() {
        eprintln!("{}", report.table());
    }
    print_rejected(report);
}

/// Print how many rows a run rejected, with the first few, to stderr.
fn print_rejected(report: &RunReport) {
    if !report.rejected.is_empty() {
        eprintln!("{} row(s) rejected, e.g.:", report.rejected.len());
        for r in report.rejected.iter().take(5) {
            eprintln!("  {} [{}]: {}", r.id, r.stage, r.message);
        }
    }
}

/// Warn that the table at `path` is read before its job finished (`--allow-incomplete`).
pub fn warn_if_incomplete(path: &str) {
    let dir = std::path::Path::new(path);
    if dir.is_dir() && !ldae_pipeline::table::layout::is_complete(dir) {
        eprintln!("warning: {path} is not complete: reading the parts committed so far");
    }
}
