//! `ldae sql`: DataFusion SQL over ldae's Parquet outputs, printed as a table.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow::array::{ArrayRef, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::SessionContext;
use ldae_pipeline::tensor_bytes::stored_tensor_type;

/// Tables to register: `name=PATH` arguments, or every ldae table folder (one holding a
/// `_ldae/` or `_manifest.json`) in the current directory, named after the folder.
fn tables(args: &[String]) -> Result<Vec<(String, String)>> {
    if !args.is_empty() {
        return args
            .iter()
            .map(|a| {
                let (name, path) = a
                    .split_once('=')
                    .with_context(|| format!("--table '{a}': expected NAME=PATH"))?;
                Ok((name.to_string(), path.to_string()))
            })
            .collect();
    }
    let mut found = Vec::new();
    for entry in std::fs::read_dir(".")? {
        let path = entry?.path();
        if ldae_pipeline::table::layout::is_table(&path) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().replace(['-', '.', ' '], "_"))
                .unwrap_or_default();
            found.push((name, path.display().to_string()));
        }
    }
    found.sort();
    Ok(found)
}

/// Tensor columns shown by their shape, the rest as they are. `shapes` has the shapes of the
/// registered tables' tensor columns by name (query results can lose the field metadata).
fn printable(batch: &RecordBatch, shapes: &HashMap<String, Vec<usize>>) -> Result<RecordBatch> {
    let mut fields = Vec::new();
    let mut cols: Vec<ArrayRef> = Vec::new();
    for (field, col) in batch.schema().fields().iter().zip(batch.columns()) {
        let shape = |size: i32| {
            stored_tensor_type(field)
                .map(|(_, s)| s)
                .filter(|s| s.len() > 1)
                .or_else(|| shapes.get(field.name()).cloned())
                .filter(|s| s.iter().product::<usize>() == size as usize)
        };
        // Lists are always shown as tensors; fixed-size binary only where it holds one (a
        // pixel table stored as bytes), not every binary value (a hash, say).
        let shown = match field.data_type() {
            DataType::FixedSizeList(_, size) => {
                Some(shape(*size).map_or_else(|| format!("[{size}]"), |s| format!("{s:?}")))
            }
            DataType::FixedSizeBinary(size) => shape(*size).map(|s| format!("{s:?}")),
            _ => None,
        };
        match shown {
            Some(shape) => {
                let text: StringArray = (0..col.len())
                    .map(|i| (!col.is_null(i)).then(|| format!("tensor{shape}")))
                    .collect();
                fields.push(Field::new(field.name(), DataType::Utf8, true));
                cols.push(Arc::new(text));
            }
            None => {
                fields.push(field.as_ref().clone());
                cols.push(col.clone());
            }
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

pub fn run(query: &str, table_args: &[String], allow_incomplete: bool) -> Result<()> {
    ldae_jobs::tables::runtime()?.block_on(async {
        let ctx = SessionContext::new();
        let registered = tables(table_args)?;
        if registered.is_empty() {
            bail!("no tables: pass --table NAME=PATH (or run in a folder holding ldae outputs)");
        }
        for (name, path) in &registered {
            if allow_incomplete {
                crate::flags::warn_if_incomplete(path);
            }
            ldae_jobs::tables::register(&ctx, name, path, allow_incomplete).await?;
        }
        let mut shapes = HashMap::new();
        for (name, _) in &registered {
            let table = ctx.table(name.as_str()).await?;
            for field in table.schema().as_arrow().fields() {
                if let Some((_, shape)) = stored_tensor_type(field) {
                    shapes.insert(field.name().clone(), shape);
                }
            }
        }
        let frame = ctx.sql(query).await.context("planning the query")?;
        let batches = frame.collect().await.context("running the query")?;
        let shown = batches
            .iter()
            .map(|b| printable(b, &shapes))
            .collect::<Result<Vec<_>>>()?;
        println!("{}", arrow::util::pretty::pretty_format_batches(&shown)?);
        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
        eprintln!(
            "{rows} row(s); tables: {}",
            registered
                .iter()
                .map(|(n, p)| format!("{n}={p}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        Ok(())
    })
}
