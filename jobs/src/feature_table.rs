//! Loading a feature table into memory for the probes: ldae's own tables, and the embeddings
//! other tools write (pandas, pyarrow, Spark, Hugging Face `datasets`).
//!
//! - Features: a vector column of float32 or float64, stored as a tensor (fixed-size list, as
//!   ldae writes), a list or a large list. `column` names it, else the table's one such column
//!   is used.
//! - Labels: integers of any width, or strings (mapped to classes in sorted order; the probe
//!   maps the training and test tables onto one sorted list).
//! - Ids: the `id` column when there is one (rows are then sorted by it, so results do not
//!   depend on the order of DataFusion's parallel scan); else each row is named by its position
//!   (`row N`, counted after `--where`), read in one partition in file order.
//! - Rows whose label or features are null are counted and skipped. Vectors of another length
//!   than the first row's, and NaN or infinite values, are errors that name the row.

use std::collections::BTreeSet;

use arrow::array::{Array, AsArray, ListArray, StringArray};
use arrow::compute::{cast_with_options, CastOptions};
use arrow::datatypes::{DataType, Field, Float32Type, Int64Type, Schema};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use ldae_model::probe::FeatureMatrix;
use ldae_pipeline::columns;

use crate::tables::register;
use crate::{bail, Context, Result};

/// Which table to read and how.
#[derive(Debug, Clone)]
pub struct FeatureQuery<'a> {
    /// A table folder, Parquet file or glob.
    pub path: &'a str,
    /// The feature column; `None`: the table's one float-vector column.
    pub column: Option<&'a str>,
    /// The label column.
    pub label: &'a str,
    /// SQL predicate on the rows.
    pub predicate: Option<&'a str>,
    /// Read the committed parts of a table whose job has not finished.
    pub allow_incomplete: bool,
}

/// A feature table loaded for a probe.
pub struct LoadedFeatures {
    /// Rows with a label and features (sorted by id when the table has ids).
    pub matrix: FeatureMatrix,
    /// The id of each row of `matrix`.
    pub ids: Vec<String>,
    /// The feature column read.
    pub column: String,
    /// Rows the query returned.
    pub rows_read: usize,
    /// Rows skipped because their label was null.
    pub rows_unlabelled: usize,
    /// Rows skipped because their feature vector (or their id) was null.
    pub rows_without_features: usize,
    /// Class names: from the table's metadata (ldae's tables), or the sorted string labels.
    pub class_names: Option<Vec<String>>,
    /// Whether the labels were strings (then `class_names` are this table's sorted labels and
    /// `matrix.labels` index them).
    pub string_labels: bool,
}

/// True for a float32/float64 vector type: a fixed-size list, list or large list of them.
fn is_float_vector(data_type: &DataType) -> bool {
    let item = match data_type {
        DataType::FixedSizeList(item, _) | DataType::List(item) | DataType::LargeList(item) => item,
        _ => return false,
    };
    matches!(item.data_type(), DataType::Float32 | DataType::Float64)
}

/// The feature column: `wanted`, checked, or the schema's only float-vector column.
fn feature_column(path: &str, schema: &Schema, wanted: Option<&str>) -> Result<String> {
    let vectors: Vec<&str> = schema
        .fields()
        .iter()
        .filter(|f| is_float_vector(f.data_type()))
        .map(|f| f.name().as_str())
        .collect();
    match wanted {
        Some(name) => {
            let Ok(field) = schema.field_with_name(name) else {
                bail!(
                    "{path}: no column '{name}' (columns: {})",
                    columns::column_list(schema)
                );
            };
            if !is_float_vector(field.data_type()) {
                bail!(
                    "{path}: column '{name}' is {}, expected a vector of float32 or float64 \
                     (a tensor, list or large list)",
                    field.data_type()
                );
            }
            Ok(name.to_string())
        }
        None => match vectors.as_slice() {
            [one] => Ok(one.to_string()),
            [] => bail!(
                "{path}: no float-vector column (a tensor, list or large list of float32 or \
                 float64) among [{}]",
                columns::column_list(schema)
            ),
            several => bail!(
                "{path}: several float-vector columns ({}): choose one with --column",
                several.join(", ")
            ),
        },
    }
}

/// The label column's values as `Int64` or `Utf8` (an error for other types).
fn label_kind(path: &str, schema: &Schema, label: &str) -> Result<bool> {
    let Ok(field) = schema.field_with_name(label) else {
        bail!(
            "{path}: no label column '{label}' (columns: {}); name another with --label",
            columns::column_list(schema)
        );
    };
    match field.data_type() {
        t if t.is_integer() => Ok(false),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(true),
        DataType::Dictionary(_, value) if value.is_string() => Ok(true),
        other => bail!("{path}: label column '{label}' is {other}, expected integers or strings"),
    }
}

/// A label of one row, before string labels become class indices.
enum Label {
    Index(u32),
    Name(String),
}

/// Load `SELECT [id,] label, column FROM path [WHERE predicate]` into memory.
pub async fn load_features(query: &FeatureQuery<'_>) -> Result<LoadedFeatures> {
    let path = query.path;
    // One partition: without ids, the rows keep the files' order.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    register(&ctx, "t", path, query.allow_incomplete).await?;
    let schema = ctx
        .table("t")
        .await
        .with_context(|| format!("{path}: reading the schema"))?
        .schema()
        .as_arrow()
        .clone();
    let column = feature_column(path, &schema, query.column)?;
    let string_labels = label_kind(path, &schema, query.label)?;
    let has_ids = schema.field_with_name(columns::ID).is_ok();
    let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    let mut select = vec![quoted(query.label), quoted(&column)];
    if has_ids {
        select.push(quoted(columns::ID));
    }
    let sql = format!(
        "SELECT {} FROM t{}",
        select.join(", "),
        query
            .predicate
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default()
    );
    let frame = ctx
        .sql(&sql)
        .await
        .with_context(|| format!("{path}: planning {sql}"))?;
    let mut stream = frame
        .execute_stream()
        .await
        .with_context(|| format!("{path}: running {sql}"))?;
    // Casts that fail on a value they cannot hold (a u64 label over i64) instead of nulling it.
    let strict = CastOptions {
        safe: false,
        ..CastOptions::default()
    };
    let list_f32 = DataType::List(Field::new_list_field(DataType::Float32, true).into());
    // One flat buffer for the vectors (a `Vec` per row cost an allocation each, and the
    // matrix built from them a second copy of every feature).
    let mut rows: Vec<(String, Label)> = Vec::new();
    let mut flat: Vec<f32> = Vec::new();
    let mut dim: Option<(usize, String)> = None;
    let (mut read, mut unlabelled, mut featureless) = (0usize, 0usize, 0usize);
    while let Some(batch) = stream.next().await {
        let batch = batch.with_context(|| format!("{path}: reading"))?;
        let label_col = if string_labels {
            cast_with_options(batch.column(0), &DataType::Utf8, &strict)
        } else {
            cast_with_options(batch.column(0), &DataType::Int64, &strict)
        }
        .with_context(|| format!("{path}: label column '{}'", query.label))?;
        let feats = cast_with_options(batch.column(1), &list_f32, &strict)
            .with_context(|| format!("{path}: column '{column}'"))?;
        let feats: &ListArray = feats.as_list::<i32>();
        let id_col = match has_ids {
            true => Some(arrow::compute::cast(batch.column(2), &DataType::Utf8)?),
            false => None,
        };
        let ids: Option<&StringArray> = id_col.as_ref().map(|c| c.as_string::<i32>());
        let values = feats.values().as_primitive::<Float32Type>();
        for r in 0..batch.num_rows() {
            let id = match ids {
                Some(ids) if ids.is_null(r) => {
                    featureless += 1;
                    read += 1;
                    continue;
                }
                Some(ids) => ids.value(r).to_string(),
                None => format!("row {read}"),
            };
            read += 1;
            if feats.is_null(r) {
                featureless += 1;
                continue;
            }
            if label_col.is_null(r) {
                unlabelled += 1;
                continue;
            }
            let label = if string_labels {
                Label::Name(label_col.as_string::<i32>().value(r).to_string())
            } else {
                let value = label_col.as_primitive::<Int64Type>().value(r);
                match u32::try_from(value) {
                    Ok(v) => Label::Index(v),
                    Err(_) => bail!("{path}: row '{id}' has label {value}"),
                }
            };
            let (start, end) = (
                feats.value_offsets()[r] as usize,
                feats.value_offsets()[r + 1] as usize,
            );
            match &dim {
                None => dim = Some((end - start, id.clone())),
                Some((d, first)) if *d != end - start => bail!(
                    "{path}: row '{id}' has {} values in column '{column}', row '{first}' \
                     has {d}: vectors of differing length",
                    end - start
                ),
                Some(_) => {}
            }
            if values.null_count() > 0 && (start..end).any(|i| values.is_null(i)) {
                bail!("{path}: row '{id}' has a null value in column '{column}'");
            }
            let row = &values.values()[start..end];
            if let Some(k) = row.iter().position(|v| !v.is_finite()) {
                bail!(
                    "{path}: row '{id}' has {} at position {k} of column '{column}'",
                    row[k]
                );
            }
            rows.push((id, label));
            flat.extend_from_slice(row);
        }
    }
    let width = dim.as_ref().map_or(0, |(d, _)| *d);
    if has_ids {
        // Sorted by id, the vectors moved in place along.
        let mut order: Vec<usize> = (0..rows.len()).collect();
        order.sort_by(|&a, &b| rows[a].0.cmp(&rows[b].0));
        permute_rows(&mut flat, width, &order);
        let mut taken: Vec<Option<(String, Label)>> = rows.into_iter().map(Some).collect();
        rows = order
            .iter()
            .map(|&i| taken[i].take().expect("a permutation"))
            .collect();
    }
    let (class_names, index_of) = if string_labels {
        let names: BTreeSet<&str> = rows
            .iter()
            .filter_map(|(_, l)| match l {
                Label::Name(n) => Some(n.as_str()),
                Label::Index(_) => None,
            })
            .collect();
        let names: Vec<String> = names.into_iter().map(str::to_string).collect();
        (Some(names.clone()), Some(names))
    } else {
        (columns::class_names(&schema), None)
    };
    flat.shrink_to_fit();
    let mut labels = Vec::with_capacity(rows.len());
    let mut ids = Vec::with_capacity(rows.len());
    for (id, label) in rows {
        let label = match (label, &index_of) {
            (Label::Index(v), _) => v,
            (Label::Name(n), Some(names)) => names
                .binary_search(&n)
                .expect("every label is among the names")
                as u32,
            (Label::Name(_), None) => unreachable!("string labels come with their names"),
        };
        labels.push(label);
        ids.push(id);
    }
    let matrix = FeatureMatrix {
        dim: width,
        values: flat,
        labels,
    };
    Ok(LoadedFeatures {
        matrix,
        ids,
        column,
        rows_read: read,
        rows_unlabelled: unlabelled,
        rows_without_features: featureless,
        class_names,
        string_labels,
    })
}

/// Reorder the rows of `values` (`width` values each) in place so that row `i` becomes the
/// former row `order[i]` (`order` a permutation), one row of scratch memory at a time.
fn permute_rows(values: &mut [f32], width: usize, order: &[usize]) {
    if width == 0 {
        return;
    }
    let mut done = vec![false; order.len()];
    let mut held = vec![0f32; width];
    for start in 0..order.len() {
        if done[start] || order[start] == start {
            continue;
        }
        // Follow the cycle through `start`: each row takes the one `order` names.
        held.copy_from_slice(&values[start * width..(start + 1) * width]);
        let mut at = start;
        loop {
            done[at] = true;
            let from = order[at];
            if from == start {
                values[at * width..(at + 1) * width].copy_from_slice(&held);
                break;
            }
            values.copy_within(from * width..(from + 1) * width, at * width);
            at = from;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_move_in_place_to_the_order_given() {
        let (rows, width) = (9, 3);
        let values: Vec<f32> = (0..rows * width).map(|v| v as f32).collect();
        let order = [3, 0, 8, 1, 2, 4, 7, 6, 5];
        let mut moved = values.clone();
        permute_rows(&mut moved, width, &order);
        for (i, &from) in order.iter().enumerate() {
            assert_eq!(
                moved[i * width..(i + 1) * width],
                values[from * width..(from + 1) * width]
            );
        }
    }

    #[test]
    fn float_vectors_of_every_layout_and_nothing_else() {
        let item = |t| std::sync::Arc::new(Field::new_list_field(t, true));
        assert!(is_float_vector(&DataType::FixedSizeList(
            item(DataType::Float32),
            8
        )));
        assert!(is_float_vector(&DataType::List(item(DataType::Float64))));
        assert!(is_float_vector(&DataType::LargeList(item(
            DataType::Float32
        ))));
        assert!(!is_float_vector(&DataType::List(item(DataType::Int32))));
        assert!(!is_float_vector(&DataType::Float32));
    }
}
