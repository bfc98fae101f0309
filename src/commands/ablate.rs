//! `ldae ablate SPEC.toml`: runs the library's ablation job and prints its table.

use std::path::Path;

use anyhow::Result;

use crate::cli::RunArgs;
use crate::flags::run_options;

pub fn run(spec: &Path, run: &RunArgs) -> Result<super::Report> {
    let say = |line: &str| println!("{line}");
    let report = ldae_jobs::ablate::run(spec, &run_options(run, "ablate"), &say)?;
    println!("\n{}", report.markdown);
    println!(
        "wrote {} and {}",
        report.markdown_path.display(),
        report.csv_path.display()
    );
    for plot in &report.plots {
        println!("wrote {}", plot.display());
    }
    Ok(serde_json::json!({
        "markdown": report.markdown_path,
        "csv": report.csv_path,
        "plots": report.plots,
    }))
}
