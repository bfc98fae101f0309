//! Reading Parquet tables through DataFusion: table locations and registration (the probes'
//! loader is `feature_table`).

use std::path::Path;

use crate::{Context, Result};
use datafusion::prelude::{ParquetReadOptions, SessionContext};

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
        ldae_pipeline::table::layout::check_complete(dir)?;
    }
    let data = ldae_pipeline::table::layout::data_dir(dir, allow_incomplete);
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
