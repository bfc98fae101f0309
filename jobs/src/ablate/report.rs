//! The ablation's report: the Markdown table of means and spreads, the CSV of every run, and
//! the plots against d and the block.

use std::path::{Path, PathBuf};

use crate::Result;

use super::spec::AblateSpec;

/// What an ablation wrote.
pub struct AblateReport {
    /// The Markdown table (also written as `ablation.md`).
    pub markdown: String,
    /// `ablation.md`.
    pub markdown_path: PathBuf,
    /// `ablation.csv`.
    pub csv_path: PathBuf,
    /// The plots written (`ablation-dim.png`, `ablation-block.png`; each when its sweep has
    /// at least two values).
    pub plots: Vec<PathBuf>,
}

/// One probe of one pre-training run (one seed).
pub(super) struct Row {
    pub(super) sweep: &'static str,
    pub(super) setting: String,
    /// Latent dimension of the run.
    pub(super) dim: usize,
    /// The probed block, on the block sweep.
    pub(super) block: Option<usize>,
    /// The base run probed at the block every other run is probed at (its point on the
    /// latent-dimension plot).
    pub(super) base_default: bool,
    pub(super) seed: u64,
    pub(super) linear: f64,
    pub(super) knn: Option<f64>,
    pub(super) final_loss: Option<f32>,
    pub(super) minutes: f64,
}

/// The rows of one setting (all its seeds), in the order the settings first appear.
fn by_setting(rows: &[Row]) -> Vec<Vec<&Row>> {
    let mut groups: Vec<Vec<&Row>> = Vec::new();
    for r in rows {
        match groups
            .iter_mut()
            .find(|g| g[0].sweep == r.sweep && g[0].setting == r.setting)
        {
            Some(g) => g.push(r),
            None => groups.push(vec![r]),
        }
    }
    groups
}

/// Mean, sample standard deviation (0 for one value), lowest and highest of `values`.
fn spread(values: &[f64]) -> (f64, f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let var = if values.len() > 1 {
        values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (mean, var.sqrt(), lo, hi)
}

/// "mean ± sd (v1 / v2 ...)" in percent, or the one value.
fn summary(values: &[f64]) -> String {
    let pct: Vec<f64> = values.iter().map(|v| 100.0 * v).collect();
    if pct.len() == 1 {
        return format!("{:.1}", pct[0]);
    }
    let (mean, sd, _, _) = spread(&pct);
    let each: Vec<String> = pct.iter().map(|v| format!("{v:.1}")).collect();
    format!("{mean:.1} ± {sd:.1} ({})", each.join(" / "))
}

/// The plot of linear and kNN top-1 (mean, bar from lowest to highest seed) against the
/// categories `key` gives the rows it keeps (sorted by key).
fn plot_against(
    rows: &[Row],
    key: impl Fn(&Row) -> Option<usize>,
    title: &str,
    x_label: &str,
    path: &Path,
) -> Result<Option<PathBuf>> {
    use ldae_operators::plot::{draw_error_bars, save_png, Series};
    let mut keys: Vec<usize> = rows.iter().filter_map(&key).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.len() < 2 {
        return Ok(None);
    }
    let points = |value: &dyn Fn(&Row) -> Option<f64>| -> Vec<Option<(f64, f64, f64)>> {
        keys.iter()
            .map(|&k| {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| key(r) == Some(k))
                    .filter_map(value)
                    .map(|v| 100.0 * v)
                    .collect();
                (!v.is_empty()).then(|| {
                    let (mean, _, lo, hi) = spread(&v);
                    (mean, lo, hi)
                })
            })
            .collect()
    };
    let series = [
        Series {
            name: "linear top-1 %".into(),
            colour: image::Rgb([20, 60, 200]),
            points: points(&|r| Some(r.linear)),
        },
        Series {
            name: "kNN top-1 %".into(),
            colour: image::Rgb([220, 90, 20]),
            points: points(&|r| r.knn),
        },
    ];
    let categories: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
    save_png(&draw_error_bars(title, x_label, &categories, &series), path)?;
    Ok(Some(path.to_path_buf()))
}

pub(super) fn write_tables(
    out: &Path,
    spec: &AblateSpec,
    train: &str,
    test: &str,
    full_dim: usize,
    rows: &[Row],
) -> Result<AblateReport> {
    let pct = |v: Option<f64>| v.map_or("".to_string(), |v| format!("{:.1}", 100.0 * v));
    let mut csv =
        String::from("sweep,setting,seed,linear_top1,knn_top1,final_loss,pretrain_minutes\n");
    for r in rows {
        let loss = r.final_loss.map_or(String::new(), |l| format!("{l:.4}"));
        csv.push_str(&format!(
            "{},{},{},{},{},{loss},{:.2}\n",
            r.sweep,
            r.setting,
            r.seed,
            pct(Some(r.linear)),
            pct(r.knn),
            r.minutes
        ));
    }
    let seeds: Vec<String> = spec.seeds.iter().map(|s| s.to_string()).collect();
    let mut md = format!(
        "# l-DAE ablation\n\npre-training: {train}, preset {}, {} epoch(s) of {} images, batch {}, lr {}, \
         weight decay {}, augmentation {}, EMA {}, seeds {}; probes: {} training rows, {} test rows of {test}, {} pooling; D = {full_dim}.\n\n\
         | sweep | setting | linear top-1 % | kNN top-1 % | final loss | pre-training min |\n|---|---|---|---|---|---|\n",
        spec.preset,
        spec.epochs,
        spec.limit.map_or("all".to_string(), |l| l.to_string()),
        spec.batch_size,
        spec.lr,
        spec.weight_decay,
        if spec.augment { "on" } else { "off" },
        spec.ema.map_or("off".to_string(), |e| e.to_string()),
        seeds.join(", "),
        spec.probe_train_rows.map_or("all".to_string(), |l| l.to_string()),
        spec.probe_test_rows.map_or("all".to_string(), |l| l.to_string()),
        ldae_pipeline::names::name_of(&spec.pooling),
    );
    for group in by_setting(rows) {
        let linear: Vec<f64> = group.iter().map(|r| r.linear).collect();
        let knn: Vec<f64> = group.iter().filter_map(|r| r.knn).collect();
        let losses: Vec<f64> = group
            .iter()
            .filter_map(|r| r.final_loss.map(f64::from))
            .collect();
        let loss = match losses.is_empty() {
            true => String::new(),
            false => format!("{:.4}", spread(&losses).0),
        };
        let minutes = spread(&group.iter().map(|r| r.minutes).collect::<Vec<_>>()).0;
        md.push_str(&format!(
            "| {} | {} | {} | {} | {loss} | {minutes:.1} |\n",
            group[0].sweep,
            group[0].setting,
            summary(&linear),
            if knn.is_empty() {
                String::new()
            } else {
                summary(&knn)
            },
        ));
    }
    md.push_str(
        "\nWith several seeds a cell reads mean ± sample standard deviation (each seed's value). \
         Final loss is the mean of the last 20 steps; it is not comparable across latent dimensions \
         and scales (the loss is measured in each setting's own PCA basis weighting).\n",
    );
    if let Some(b) = rows.iter().find(|r| r.base_default).and_then(|r| r.block) {
        md.push_str(&format!(
            "The other sweeps' runs are probed after block {b}; the base's value there is its \
             `block {b}` row (and its point on the latent-dimension plot).\n"
        ));
    }
    // The d sweep includes the base run, at the base's d and the other runs' block.
    let dim_plot = plot_against(
        rows,
        |r| (r.sweep == "latent dim d" || r.base_default).then_some(r.dim),
        "top-1 against the latent dimension d (bars: lowest to highest seed)",
        "latent dimension d (d = D: pixel-space DAE)",
        &out.join("ablation-dim.png"),
    )?;
    let block_plot = plot_against(
        rows,
        |r| r.block,
        "top-1 against the probed block (base run; bars: lowest to highest seed)",
        "block (encoder first, then decoder)",
        &out.join("ablation-block.png"),
    )?;
    for plot in dim_plot.iter().chain(&block_plot) {
        let name = plot
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        md.push_str(&format!("\n![{name}]({name})\n"));
    }
    let (md_path, csv_path) = (out.join("ablation.md"), out.join("ablation.csv"));
    ldae_pipeline::atomic_file::write_atomic(&md_path, md.as_bytes())?;
    ldae_pipeline::atomic_file::write_atomic(&csv_path, csv.as_bytes())?;
    Ok(AblateReport {
        markdown: md,
        markdown_path: md_path,
        csv_path,
        plots: dim_plot.into_iter().chain(block_plot).collect(),
    })
}
