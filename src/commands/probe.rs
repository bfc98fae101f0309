//! `ldae probe`: linear and kNN probes of feature tables read through DataFusion.

use anyhow::Result;
use ldae_jobs::probe::{beside, probe, ProbeJob, ProbeReport};
use ldae_model::probe::{KnnConfig, LinearConfig};

use crate::cli::ProbeArgs;

/// One table's line: where its rows came from, how many were used and skipped (rows without
/// a label, rows without a feature vector).
fn rows_line(label: &str, table: &str, rows: usize, skipped: [usize; 2]) {
    let reasons: Vec<String> = skipped
        .iter()
        .zip(["without a label", "without features"])
        .filter(|(n, _)| **n > 0)
        .map(|(n, why)| format!("{n} {why}"))
        .collect();
    let skipped = match reasons.is_empty() {
        true => String::new(),
        false => format!(", skipped {}", reasons.join(" and ")),
    };
    println!("{label} {table} ({rows} rows{skipped})");
}

/// Print the report as a short table.
fn print(report: &ProbeReport) {
    rows_line(
        "train:",
        &report.train,
        report.train_rows,
        [
            report.train_rows_unlabelled,
            report.train_rows_without_features,
        ],
    );
    rows_line(
        "test: ",
        &report.test,
        report.test_rows,
        [
            report.test_rows_unlabelled,
            report.test_rows_without_features,
        ],
    );
    println!(
        "{} features, {} classes",
        report.features,
        report.classes.len()
    );
    for g in &report.linear_grid {
        println!(
            "  grid lr {:<8} wd {:<8} {:<12} validation top-1 {:5.1}%",
            g.lr,
            g.weight_decay,
            if g.decorrelated {
                "decorrelated"
            } else {
                "standardised"
            },
            100.0 * g.validation_top1
        );
    }
    println!();
    println!(
        "{:<8} {:>7} {:>7} {:>9}",
        "probe", "top-1", "top-5", "seconds"
    );
    let mut rows = vec![("linear", &report.linear)];
    if let Some(k) = &report.knn {
        rows.push(("knn", k));
    }
    for (name, r) in &rows {
        println!(
            "{:<8} {:>6.2}% {:>6.2}% {:>9.2}",
            name,
            100.0 * r.scores.top1,
            100.0 * r.scores.top5,
            r.seconds
        );
    }
    println!();
    print!("{:<16} {:>7}", "per class", "rows");
    for (name, _) in &rows {
        print!(" {name:>7}");
    }
    println!();
    let test_rows = &report.linear.scores.class_rows;
    for (c, class) in report.classes.iter().enumerate() {
        print!(
            "{:<16} {:>7}",
            class.chars().take(16).collect::<String>(),
            test_rows[c]
        );
        for (_, r) in &rows {
            match r.scores.per_class[c] {
                Some(accuracy) => print!(" {:>6.1}%", 100.0 * accuracy),
                // No test rows of this class: no accuracy to show.
                None => print!(" {:>7}", "-"),
            }
        }
        println!();
    }
}

/// AND of a shared predicate and a per-side one.
fn both(shared: &Option<String>, side: &Option<String>) -> Option<String> {
    match (shared, side) {
        (Some(a), Some(b)) => Some(format!("({a}) AND ({b})")),
        (a, b) => a.clone().or(b.clone()),
    }
}

pub fn run(args: &ProbeArgs) -> Result<super::Report> {
    let job = ProbeJob {
        train: args.train.clone(),
        test: args.test.clone(),
        column: args.column.clone(),
        label: args.label.clone(),
        train_where: both(&args.where_, &args.train_where),
        test_where: both(&args.where_, &args.test_where),
        linear: LinearConfig {
            epochs: args.epochs,
            batch_size: args.batch_size,
            warmup_epochs: args.warmup_epochs,
            learning_rates: args.lr.clone(),
            weight_decays: args.wd.clone(),
            validation_fraction: args.validation_fraction,
            seed: args.seed,
        },
        knn: args.knn.then(|| KnnConfig {
            k: args.k,
            temperature: args.temperature,
            ..KnnConfig::default()
        }),
        device: args.device,
        out: args.out.clone(),
        allow_incomplete: args.allow_incomplete,
    };
    if job.allow_incomplete {
        crate::flags::warn_if_incomplete(&job.train);
        crate::flags::warn_if_incomplete(&job.test);
    }
    let report = probe(&job)?;
    print(&report);
    if let Some(out) = &args.out {
        println!();
        println!(
            "wrote {}, {} and the confusion matrices {}",
            out.display(),
            beside(out, "predictions.parquet").display(),
            beside(out, "*-confusion.png").display()
        );
    }
    Ok(serde_json::to_value(&report)?)
}
