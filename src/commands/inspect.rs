//! `ldae inspect PATH`: what is in a Parquet output or a PCA file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use ldae_datasets::parquet_table::hf_class_names;
use ldae_operators::pca::PcaModel;
use ldae_pipeline::columns::{tensor_type, CLASS_NAMES};
use ldae_pipeline::tensor_bytes::bytes_tensor_shape;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub fn run(path: &Path) -> Result<()> {
    if !path.exists() {
        bail!("{}: no such file or folder", path.display());
    }
    if path.extension().and_then(|e| e.to_str()) == Some("safetensors") {
        return inspect_safetensors(path);
    }
    inspect_parquet(path)
}

fn inspect_safetensors(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .with_context(|| format!("{}: not a safetensors file", path.display()))?;
    let info = header.metadata().clone().unwrap_or_default();
    println!("{}", path.display());
    println!(
        "  format: {}",
        info.get("format").map(String::as_str).unwrap_or("unknown")
    );
    let tensors = safetensors::SafeTensors::deserialize(&bytes)?;
    let mut names = tensors.names();
    names.sort();
    for name in names {
        let t = tensors.tensor(name)?;
        println!("  tensor {name}: {:?} {:?}", t.dtype(), t.shape());
    }
    if let Some(meta) = info.get("ldae.pca") {
        let v: serde_json::Value = serde_json::from_str(meta)?;
        println!(
            "  metadata: {}",
            serde_json::to_string_pretty(&v)?.replace('\n', "\n  ")
        );
    }
    if info.get("format").map(String::as_str) == Some("ldae-pca") {
        let model = PcaModel::load(path)?;
        println!("  {}", model.variance_summary());
        let top: Vec<String> = model
            .eigenvalues
            .iter()
            .take(8)
            .map(|v| format!("{v:.4e}"))
            .collect();
        println!("  top eigenvalues: {}", top.join(" "));
    }
    Ok(())
}

fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let data = ldae_pipeline::table::layout::data_dir(path, true);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&data)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default();
            name.ends_with(".parquet") && !name.starts_with('_') && !name.starts_with('.')
        })
        .collect();
    files.sort();
    Ok(files)
}

fn inspect_parquet(path: &Path) -> Result<()> {
    let files = parquet_files(path)?;
    if files.is_empty() {
        bail!(
            "{}: no Parquet files (data/part-*.parquet) found",
            path.display()
        );
    }
    let mut rows = 0i64;
    let mut bytes = 0u64;
    let mut schema = None;
    for f in &files {
        let file = std::fs::File::open(f).with_context(|| format!("opening {}", f.display()))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).with_context(|| {
            format!(
                "{}: not a Parquet file (inspect describes Parquet tables and files, and \
                     .safetensors files)",
                f.display()
            )
        })?;
        rows += builder.metadata().file_metadata().num_rows();
        bytes += std::fs::metadata(f).map(|m| m.len()).unwrap_or(0);
        if schema.is_none() {
            schema = Some(builder.schema().clone());
        }
    }
    println!("{}", path.display());
    println!(
        "  files: {} ({:.1} MB), rows: {rows}",
        files.len(),
        bytes as f64 / 1e6
    );
    if let Some(schema) = schema {
        println!("  columns:");
        for field in schema.fields() {
            match (tensor_type(field), bytes_tensor_shape(field)) {
                (Some((el, shape)), _) => println!("    {}: tensor<{el}> {shape:?}", field.name()),
                (None, Some(shape)) => println!(
                    "    {}: tensor<UInt8> {shape:?}, stored as bytes",
                    field.name()
                ),
                (None, None) => println!(
                    "    {}: {}{}",
                    field.name(),
                    field.data_type(),
                    if field.is_nullable() {
                        " (nullable)"
                    } else {
                        ""
                    }
                ),
            }
        }
        if let Some(names) = schema.metadata().get(CLASS_NAMES) {
            println!("  classes: {names}");
        } else if let Some(names) = hf_class_names(schema.metadata()) {
            println!("  classes (Hugging Face metadata): {names:?}");
        }
    }
    // A folder of Parquet files that no ldae job wrote (a Hugging Face dataset, Spark's
    // output) has no status to tell.
    if path.is_dir() && ldae_pipeline::table::layout::is_table(path) {
        let complete = ldae_pipeline::table::layout::is_complete(path);
        println!(
            "  status: {}",
            if complete {
                "complete (_SUCCESS present)"
            } else {
                "INCOMPLETE (no _SUCCESS marker; the parts committed so far are shown; see `ldae status`)"
            }
        );
        let manifest = path.join("_manifest.json");
        if let Ok(text) = std::fs::read_to_string(&manifest) {
            let m: serde_json::Value = serde_json::from_str(&text)?;
            println!(
                "  rows in: {}, rejected: {} (errors table: {})",
                m["rows_in"],
                m["rows_rejected"],
                m["errors"].as_str().unwrap_or("-")
            );
            println!("  job: {}", m["job"]);
        }
    }
    Ok(())
}
