//! `ldae export`: a training run's encoder as a timm model folder.

use anyhow::Result;
use ldae_model::vit::TimmExport;

use crate::cli::ExportArgs;

pub fn run(args: &ExportArgs) -> Result<super::Report> {
    let report = TimmExport {
        run: args.checkpoint.clone(),
        out: args.out.clone(),
        block: args.block,
        t: args.t,
        ema: args.ema.then_some(true),
        probes: args.probe.clone(),
        overwrite: args.overwrite,
    }
    .run()?;
    println!(
        "wrote {}: timm {} layout, {} blocks at t = {}, {} weights, {:.1}M parameters; \
         model card README.md{}",
        report.out.display(),
        report.architecture,
        report.depth,
        report.t,
        if report.ema { "EMA" } else { "trained" },
        report.parameters as f64 / 1e6,
        match report.probes.len() {
            0 => " (no probe reports found)".to_string(),
            n => format!(" with {n} probe report(s)"),
        }
    );
    Ok(serde_json::to_value(&report)?)
}
