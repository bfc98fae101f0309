//! The probe job (`ldae probe`): linear and kNN probes of feature tables read through
//! DataFusion, with results.json, predictions and confusion matrices beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::{bail, Context, Result};
use arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema};
use ldae_model::probe::linear::GridPoint;
use ldae_model::probe::{fit_linear, knn_classify, KnnConfig, LinearConfig, Ranking, Scores};
use ldae_operators::device::DeviceName;
use ldae_operators::plot::{draw_confusion, save_png};
use ldae_pipeline::atomic_file::{write_atomic, write_parquet_atomic};
use serde::Serialize;

use crate::feature_table::{load_features, FeatureQuery, LoadedFeatures};
use crate::tables::runtime;

/// What to probe and how.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeJob {
    /// Training feature table (folder, file or glob).
    pub train: String,
    /// Test feature table.
    pub test: String,
    /// The feature column; `None`: the tables' one float-vector column.
    pub column: Option<String>,
    /// The label column (integers of any width, or strings mapped to sorted classes).
    #[serde(default = "default_label")]
    pub label: String,
    /// SQL predicate on the training rows.
    pub train_where: Option<String>,
    /// SQL predicate on the test rows.
    pub test_where: Option<String>,
    /// Linear probe settings.
    pub linear: LinearConfig,
    /// kNN settings, when the kNN probe is wanted.
    pub knn: Option<KnnConfig>,
    /// Compute device name.
    pub device: DeviceName,
    /// results.json path (predictions and confusion pictures beside it).
    pub out: Option<PathBuf>,
    /// Read tables whose job has not finished (the parts committed so far) instead of
    /// refusing them.
    #[serde(default)]
    pub allow_incomplete: bool,
}

fn default_label() -> String {
    ldae_pipeline::columns::LABEL.to_string()
}

/// One classifier's test scores.
#[derive(Debug, Clone, Serialize)]
pub struct ClassifierReport {
    /// Scores on the test rows.
    #[serde(flatten)]
    pub scores: Scores,
    /// Seconds to fit (and, for kNN, classify).
    pub seconds: f64,
}

/// Everything a probe run found; written as results.json.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeReport {
    /// Training table and predicate.
    pub train: String,
    /// Test table and predicate.
    pub test: String,
    /// The feature column read.
    pub column: String,
    /// The label column read.
    pub label: String,
    /// Whether the labels were strings (then `classes` are their sorted values).
    pub string_labels: bool,
    /// Features per row.
    pub features: usize,
    /// Class names (or numbers).
    pub classes: Vec<String>,
    /// Training rows used.
    pub train_rows: usize,
    /// Training rows skipped for having no label.
    pub train_rows_unlabelled: usize,
    /// Training rows skipped for having no feature vector (or no id).
    pub train_rows_without_features: usize,
    /// Test rows used.
    pub test_rows: usize,
    /// Test rows skipped for having no label.
    pub test_rows_unlabelled: usize,
    /// Test rows skipped for having no feature vector (or no id).
    pub test_rows_without_features: usize,
    /// Linear probe settings.
    pub linear_config: LinearConfig,
    /// The grid with validation scores.
    pub linear_grid: Vec<GridPoint>,
    /// Chosen learning rate.
    pub linear_lr: f64,
    /// Chosen weight decay.
    pub linear_weight_decay: f64,
    /// Whether the chosen classifier trained on decorrelated features.
    pub linear_decorrelated: bool,
    /// Linear probe scores.
    pub linear: ClassifierReport,
    /// kNN settings and scores.
    pub knn_config: Option<KnnConfig>,
    /// kNN scores.
    pub knn: Option<ClassifierReport>,
}

fn describe(path: &str, predicate: &Option<String>) -> String {
    match predicate {
        Some(p) => format!("{path} WHERE {p}"),
        None => path.to_string(),
    }
}

/// Run the probes of `job`, writing its outputs when `job.out` is set.
pub fn probe(job: &ProbeJob) -> Result<ProbeReport> {
    let device = job.device.open()?;
    let rt = runtime()?;
    let load = |path: &str, predicate: &Option<String>| -> Result<LoadedFeatures> {
        let loaded = rt.block_on(load_features(&FeatureQuery {
            path,
            column: job.column.as_deref(),
            label: &job.label,
            predicate: predicate.as_deref(),
            allow_incomplete: job.allow_incomplete,
        }))?;
        if loaded.matrix.rows() == 0 {
            bail!(
                "{}: no labelled rows ({} read)",
                describe(path, predicate),
                loaded.rows_read
            );
        }
        Ok(loaded)
    };
    let mut train = load(&job.train, &job.train_where)?;
    let mut test = load(&job.test, &job.test_where)?;
    if train.column != test.column {
        bail!(
            "the training table's feature column is '{}', the test table's '{}': choose one \
             with --column",
            train.column,
            test.column
        );
    }
    if train.matrix.dim != test.matrix.dim {
        bail!(
            "the training rows have {} features, the test rows {}",
            train.matrix.dim,
            test.matrix.dim
        );
    }
    let classes = shared_classes(&mut train, &mut test)?;
    let count = classes.len();
    tracing::info!(
        "probe: {} training rows, {} test rows, {} features, {} classes",
        train.matrix.rows(),
        test.matrix.rows(),
        train.matrix.dim,
        count
    );

    warn_if_short_of_memory(
        train.matrix.rows(),
        train.matrix.dim,
        job.knn.as_ref().map(|k| k.chunk),
    );

    // kNN first: the linear probe takes the training features (standardising them in place).
    let (knn, knn_rank) = match &job.knn {
        Some(config) => {
            let started = Instant::now();
            let ranking = knn_classify(&train.matrix, &test.matrix, count, config, &device)?;
            let report = ClassifierReport {
                scores: Scores::new(&ranking, &test.matrix.labels, count),
                seconds: started.elapsed().as_secs_f64(),
            };
            (Some(report), Some(ranking))
        }
        None => (None, None),
    };
    let (train_rows, features) = (train.matrix.rows(), train.matrix.dim);
    let started = Instant::now();
    let fit = fit_linear(
        std::mem::take(&mut train.matrix),
        count,
        &job.linear,
        &device,
    )?;
    let linear_rank = fit.predict(&test.matrix)?;
    let linear = ClassifierReport {
        scores: Scores::new(&linear_rank, &test.matrix.labels, count),
        seconds: started.elapsed().as_secs_f64(),
    };
    let report = ProbeReport {
        train: describe(&job.train, &job.train_where),
        test: describe(&job.test, &job.test_where),
        column: train.column.clone(),
        label: job.label.clone(),
        string_labels: train.string_labels,
        features,
        classes,
        train_rows,
        train_rows_unlabelled: train.rows_unlabelled,
        train_rows_without_features: train.rows_without_features,
        test_rows: test.matrix.rows(),
        test_rows_unlabelled: test.rows_unlabelled,
        test_rows_without_features: test.rows_without_features,
        linear_config: job.linear.clone(),
        linear_grid: fit.grid.clone(),
        linear_lr: fit.lr,
        linear_weight_decay: fit.weight_decay,
        linear_decorrelated: fit.decorrelated,
        linear,
        knn_config: job.knn.clone(),
        knn,
    };
    if let Some(out) = &job.out {
        write_outputs(out, &report, &test, &linear_rank, knn_rank.as_ref())?;
    }
    Ok(report)
}

/// The class names both tables' labels index: string labels are mapped onto the sorted union
/// of both tables' values (and both matrices relabelled), integer labels keep their numbers
/// (named by the training table's recorded class names where it has them).
fn shared_classes(train: &mut LoadedFeatures, test: &mut LoadedFeatures) -> Result<Vec<String>> {
    match (train.string_labels, test.string_labels) {
        (true, true) => {
            let names = |t: &LoadedFeatures| t.class_names.clone().unwrap_or_default();
            let mut all = names(train);
            all.extend(names(test));
            all.sort();
            all.dedup();
            for table in [train, test] {
                let own = names(table);
                for label in &mut table.matrix.labels {
                    let name = &own[*label as usize];
                    *label = all.binary_search(name).expect("the union holds it") as u32;
                }
                table.class_names = Some(all.clone());
            }
            Ok(all)
        }
        (false, false) => {
            let count = train
                .matrix
                .classes()
                .max(test.matrix.classes())
                .max(train.class_names.as_ref().map_or(0, |n| n.len()));
            Ok((0..count)
                .map(|c| {
                    train
                        .class_names
                        .as_ref()
                        .and_then(|n| n.get(c).cloned())
                        .unwrap_or_else(|| c.to_string())
                })
                .collect())
        }
        _ => bail!(
            "the training table's labels are {}, the test table's {}: they must be of one kind",
            if train.string_labels {
                "strings"
            } else {
                "integers"
            },
            if test.string_labels {
                "strings"
            } else {
                "integers"
            },
        ),
    }
}

/// Memory the fits need beyond the loaded features, for `rows` training rows of `dim` features:
/// kNN's bank of unit rows (a copy) and one block of similarities (`chunk` test rows x every
/// training row) while it runs; then the linear probe's decorrelated copy where it makes one,
/// and its validation rows (a tenth).
fn fit_memory(rows: usize, dim: usize, knn_chunk: Option<usize>) -> u64 {
    let features = (rows * dim * 4) as u64;
    let knn = knn_chunk.map_or(0, |chunk| features + (chunk.min(rows) * rows * 4) as u64);
    let decorrelated = match ldae_model::probe::linear::decorrelates(rows, dim) {
        true => features,
        false => 0,
    };
    knn.max(decorrelated + features / 10)
}

/// Say so before fitting when the fits need more memory than is left (the kernel's or the
/// cgroup's): killed for memory, a run says nothing itself.
fn warn_if_short_of_memory(rows: usize, dim: usize, knn_chunk: Option<usize>) {
    let need = fit_memory(rows, dim, knn_chunk);
    let Some(available) = ldae_pipeline::memory::available_memory() else {
        return;
    };
    if need > available {
        use ldae_pipeline::metrics::human_bytes;
        tracing::warn!(
            "probe: fitting needs about {} more memory ({rows} training rows x {dim} features: \
             another copy of them{}), and {} is available: it may run out of memory. Fit on \
             fewer rows (--train-where) or fewer features, or run it where there is more memory",
            human_bytes(need),
            match knn_chunk {
                Some(chunk) => format!(", and kNN's similarities {chunk} test rows at a time"),
                None => String::new(),
            },
            human_bytes(available)
        );
    }
}

/// `results.json` → `results.<suffix>`.
pub fn beside(out: &Path, suffix: &str) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "results".into());
    out.with_file_name(format!("{stem}.{suffix}"))
}

/// results.json, the per-row predictions (Parquet) and the confusion matrices (PNG).
fn write_outputs(
    out: &Path,
    report: &ProbeReport,
    test: &LoadedFeatures,
    linear: &Ranking,
    knn: Option<&Ranking>,
) -> Result<()> {
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        ldae_pipeline::folders::create_dir_all(dir)?;
    }
    let best =
        |r: &Ranking| -> ArrayRef { Arc::new(r.iter().map(|c| c[0]).collect::<UInt32Array>()) };
    let mut fields = vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("label", DataType::Int64, false),
        Field::new("linear_prediction", DataType::UInt32, false),
    ];
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(test.ids.clone())),
        Arc::new(Int64Array::from_iter_values(
            test.matrix.labels.iter().map(|&l| l as i64),
        )),
        best(linear),
    ];
    if let Some(k) = knn {
        fields.push(Field::new("knn_prediction", DataType::UInt32, false));
        cols.push(best(k));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?;
    write_parquet_atomic(&beside(out, "predictions.parquet"), &batch)?;
    let mut pictures = vec![("linear", &report.linear)];
    if let Some(k) = &report.knn {
        pictures.push(("knn", k));
    }
    for (name, r) in pictures {
        let title = format!(
            "{name} probe, {}: top-1 {:.1}%",
            report.column,
            100.0 * r.scores.top1
        );
        let img = draw_confusion(&r.scores.confusion, &report.classes, &title);
        save_png(&img, &beside(out, &format!("{name}-confusion.png")))?;
    }
    let json = serde_json::to_string_pretty(report).context("results.json")?;
    write_atomic(out, json.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::fit_memory;

    /// The fits' memory beyond the loaded features: 100,000 x 384 (153.6 MB of features)
    /// with kNN is its bank plus one 256-row block of similarities (102.4 MB), more than the
    /// linear probe's decorrelated copy plus its validation rows; measured, such a probe
    /// peaked at 527-531 MB with 169 MB of training and test features loaded.
    #[test]
    fn fit_memory_is_the_larger_phase() {
        let features = 100_000 * 384 * 4;
        let block = 256 * 100_000 * 4;
        assert_eq!(fit_memory(100_000, 384, Some(256)), features + block);
        assert_eq!(fit_memory(100_000, 384, None), features + features / 10);
        // Too few rows per feature to decorrelate: the validation rows only.
        assert_eq!(fit_memory(1_000, 384, None), 1_000 * 384 * 4 / 10);
    }
}
