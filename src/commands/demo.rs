//! `ldae demo`: the built-in end-to-end run on synthetic images; needs no files.
//!
//! Generate → fit a patch PCA → pre-train the tiny l-DAE briefly → features of four kinds →
//! linear and kNN probes → one table comparing them.

use std::path::Path;

use anyhow::Result;
use ldae_jobs::demo::DemoJob;
use ldae_jobs::probe::ProbeReport;

use crate::cli::RunArgs;
use crate::flags::run_options;

pub fn run(job: &DemoJob, run: &RunArgs) -> Result<super::Report> {
    let say = |line: &str| println!("{line}");
    let report = job.run(&run_options(run, "demo"), &say)?;
    let results = &report.results;
    println!(
        "5/5 results ({} training, {} test images)",
        job.images, job.test_images
    );
    println!();
    print_table(results);
    let ldae = results[0].1.linear.scores.top1;
    let random = results[3].1.linear.scores.top1;
    println!();
    if ldae > random {
        println!(
            "l-DAE beats the random-init network by {:.1} points (linear top-1).",
            100.0 * (ldae - random)
        );
    } else {
        println!(
            "l-DAE does not beat the random-init network here ({:.1}% vs {:.1}%): train longer (--epochs).",
            100.0 * ldae,
            100.0 * random
        );
    }
    println!();
    describe_outputs(&job.out, &report.pca, &report.picture, &report.run_dir);
    Ok(serde_json::Value::Null)
}

fn print_table(results: &[(&str, ProbeReport)]) {
    println!(
        "{:<24} {:>8} {:>13} {:>10}",
        "features", "width", "linear top-1", "kNN top-1"
    );
    for (name, r) in results {
        let knn = r.knn.as_ref().map(|k| k.scores.top1).unwrap_or(f64::NAN);
        println!(
            "{:<24} {:>8} {:>12.1}% {:>9.1}%",
            name,
            r.features,
            100.0 * r.linear.scores.top1,
            100.0 * knn
        );
    }
}

fn describe_outputs(out: &Path, pca: &Path, picture: &Path, run_dir: &Path) {
    println!("demo outputs in {}:", out.display());
    let rows = [
        (pca.display().to_string(), "PCA model (ldae inspect it)"),
        (
            picture.display().to_string(),
            "top components as 4x4 patches",
        ),
        (
            run_dir.display().to_string(),
            "training run: checkpoint/, metrics.parquet, loss.png",
        ),
        (
            out.join("features-*-{train,test}").display().to_string(),
            "feature tables (ldae sql / ldae inspect them)",
        ),
        (
            out.join("probe-*.json").display().to_string(),
            "probe results, with *.predictions.parquet and *-confusion.png",
        ),
    ];
    for (path, what) in rows {
        println!("  {path:<40} {what}");
    }
}
