//! `ldae run SPEC.toml`: read a pipeline spec and run it (the format: docs/pipeline-spec.md).

use std::path::Path;

use anyhow::Result;
use ldae_jobs::spec::{RunSettings, Spec};

use crate::cli::RunArgs;
use crate::plans::{print_report, run_options};

/// Parse and run the spec at `path`; relative paths in it are relative to its folder.
pub fn run_file(path: &Path, run: &RunArgs) -> Result<()> {
    let spec = Spec::read(path)?;
    let settings = RunSettings {
        base: path.parent().unwrap_or(Path::new("")).to_path_buf(),
        options: run_options(run, "run"),
        on_message: Some(&|line: &str| println!("{line}")),
    };
    let report = ldae_jobs::spec::run(&spec, &settings)?;
    for pass in &report.passes {
        print_report(pass);
    }
    println!("{}", serde_json::to_string(&report.output)?);
    Ok(())
}
