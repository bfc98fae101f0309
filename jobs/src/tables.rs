//! Reading ldae's Parquet outputs through DataFusion: table locations, registration, and
//! loading a feature table into memory for the probes.

use std::path::Path;

use crate::{bail, Context, Result};
use arrow::array::{Array, AsArray, FixedSizeListArray, Int64Array, StringArray};
use arrow::datatypes::{DataType, Float32Type};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use futures::StreamExt;
use ldae_model::probe::FeatureMatrix;
use ldae_pipeline::columns;

/// A runtime for DataFusion's async API (queries run on all cores).
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the query runtime")
}

/// The files of a table: an ldae table folder's data files (a folder whose job has not
/// published it is an error unless `allow_incomplete`, which reads the parts committed so
/// far), a folder's `*.parquet`, or the path as given (a file or a glob).
pub fn table_url(path: &str, allow_incomplete: bool) -> Result<String> {
    let dir = Path::new(path);
    if !dir.is_dir() {
        return Ok(path.to_string());
    }
    if !allow_incomplete {
        ldae_pipeline::table_layout::check_complete(dir)?;
    }
    let data = ldae_pipeline::table_layout::data_dir(dir, allow_incomplete);
    Ok(format!("{}/*.parquet", data.display()))
}

/// Register `path` as table `name`, keeping the embedded Arrow schema (it carries the tensor
/// shapes and class names).
pub async fn register(
    ctx: &SessionContext,
    name: &str,
    path: &str,
    allow_incomplete: bool,
) -> Result<()> {
    let options = ParquetReadOptions::default().skip_metadata(false);
    ctx.register_parquet(name, &table_url(path, allow_incomplete)?, options)
        .await
        .with_context(|| format!("registering {name}={path}"))
}

/// A feature table loaded for a probe.
pub struct LoadedFeatures {
    /// Rows with a label and features, sorted by id (so results do not depend on the order
    /// DataFusion's parallel scan delivers them in).
    pub matrix: FeatureMatrix,
    /// The id of each row of `matrix`.
    pub ids: Vec<String>,
    /// Rows the query returned.
    pub rows_read: usize,
    /// Rows skipped because their label or features were null.
    pub rows_unlabelled: usize,
    /// Class names from the table's metadata, if recorded.
    pub class_names: Option<Vec<String>>,
}

/// Load `SELECT id, label, <column> FROM path [WHERE predicate]` into memory (see
/// [`table_url`] for `allow_incomplete`).
pub async fn load_features(
    path: &str,
    column: &str,
    predicate: Option<&str>,
    allow_incomplete: bool,
) -> Result<LoadedFeatures> {
    let ctx = SessionContext::new();
    register(&ctx, "t", path, allow_incomplete).await?;
    let schema = ctx
        .table("t")
        .await
        .with_context(|| format!("{path}: reading the schema"))?
        .schema()
        .as_arrow()
        .clone();
    let Ok(field) = schema.field_with_name(column) else {
        bail!(
            "{path}: no column '{column}' (columns: {})",
            columns::column_list(&schema)
        );
    };
    let DataType::FixedSizeList(item, dim) = field.data_type() else {
        bail!(
            "{path}: column '{column}' is {}, expected a tensor of Float32",
            field.data_type()
        );
    };
    if item.data_type() != &DataType::Float32 {
        bail!(
            "{path}: column '{column}' holds {}, expected Float32",
            item.data_type()
        );
    }
    let class_names = columns::class_names(&schema);
    let query = format!(
        "SELECT \"{}\", \"{}\", \"{column}\" FROM t{}",
        columns::ID,
        columns::LABEL,
        predicate.map(|p| format!(" WHERE {p}")).unwrap_or_default()
    );
    let frame = ctx
        .sql(&query)
        .await
        .with_context(|| format!("{path}: planning {query}"))?;
    let mut stream = frame
        .execute_stream()
        .await
        .with_context(|| format!("{path}: running {query}"))?;
    let dim = *dim as usize;
    let mut rows: Vec<(String, u32, Vec<f32>)> = Vec::new();
    let (mut read, mut unlabelled) = (0usize, 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch.with_context(|| format!("{path}: reading"))?;
        // DataFusion may hand strings over as views and labels as narrower integers.
        let id_col = arrow::compute::cast(batch.column(0), &DataType::Utf8)?;
        let label_col = arrow::compute::cast(batch.column(1), &DataType::Int64)?;
        let ids = id_col.as_any().downcast_ref::<StringArray>();
        let labels = label_col.as_any().downcast_ref::<Int64Array>();
        let feats = batch
            .column(2)
            .as_any()
            .downcast_ref::<FixedSizeListArray>();
        let (Some(ids), Some(labels), Some(feats)) = (ids, labels, feats) else {
            bail!("{path}: expected id Utf8, label Int64 and {column} FixedSizeList columns");
        };
        let values = feats.values().as_primitive::<Float32Type>().values();
        read += batch.num_rows();
        for r in 0..batch.num_rows() {
            if labels.is_null(r) || feats.is_null(r) || ids.is_null(r) {
                unlabelled += 1;
                continue;
            }
            let label = labels.value(r);
            if !(0..=u32::MAX as i64).contains(&label) {
                bail!("{path}: row '{}' has label {label}", ids.value(r));
            }
            let start = feats.value_offset(r) as usize;
            rows.push((
                ids.value(r).to_string(),
                label as u32,
                values[start..start + dim].to_vec(),
            ));
        }
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    let mut matrix = FeatureMatrix::new(dim);
    let mut ids = Vec::with_capacity(rows.len());
    for (id, label, f) in rows {
        matrix.push(&f, label);
        ids.push(id);
    }
    Ok(LoadedFeatures {
        matrix,
        ids,
        rows_read: read,
        rows_unlabelled: unlabelled,
        class_names,
    })
}
