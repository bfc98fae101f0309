//! What a pipeline component is: a config type that builds the running object. An operator
//! or sink kind implements [`OperatorConfig`] or [`SinkConfig`] on its serde config struct;
//! [`AnyOperatorConfig`] and [`AnySinkConfig`] are the same configs behind a pointer, for
//! specs that hold components of any registered kind (see [`crate::component`]).

use std::any::Any;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::sink_job::SinkJob;
use crate::traits::Operator;
use crate::{Error, Result};

/// Rows per batch of a source whose spec leaves the batch size unset and whose stages give no
/// [`OperatorConfig::batch_rows_hint`].
pub const DEFAULT_BATCH_ROWS: usize = 256;

/// What a component's build gets besides its own config.
#[derive(Debug, Clone, Default)]
pub struct BuildContext {
    /// Folder that relative paths in the spec are relative to.
    pub base: PathBuf,
    /// The pass over the data this pipeline is built for (the epoch of a training run; 0 for
    /// single-pass jobs). Operators whose randomness changes per epoch (augmentation, noise) use it.
    pub epoch: u64,
    /// The source's input (path or `synthetic:N`), for outputs that record what they were made of.
    pub input: String,
    /// The shard of a larger job the source reads, if any.
    pub shard: Option<crate::Shard>,
    /// The dataset kind the spec names (`folder`, `parquet`, ...), when it names one.
    pub format: Option<String>,
    /// The most rows the source reads, when the spec limits them.
    pub limit: Option<usize>,
    /// The job being run (the spec as JSON), for manifests.
    pub job: serde_json::Value,
}

impl BuildContext {
    /// `path` resolved against [`BuildContext::base`].
    pub fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() || self.base.as_os_str().is_empty() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }
}

/// What every component config is: a serde struct with a JSON schema (its doc comments are
/// the reference), comparable and shareable between threads.
pub trait ComponentConfig:
    Serialize
    + DeserializeOwned
    + schemars::JsonSchema
    + Clone
    + PartialEq
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
}

impl<T> ComponentConfig for T where
    T: Serialize
        + DeserializeOwned
        + schemars::JsonSchema
        + Clone
        + PartialEq
        + std::fmt::Debug
        + Send
        + Sync
        + 'static
{
}

/// The config of an operator kind: deserialised from its `[[operator]]` table.
pub trait OperatorConfig: ComponentConfig {
    /// The kind's name in specs (`kind = "..."`).
    const KIND: &'static str;
    /// Build the running operator.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>>;
    /// Rows per batch this stage would have the source read when the spec leaves the batch
    /// size unset (a decoder: as many images as fit a few MB). The first stage with a hint
    /// decides.
    fn batch_rows_hint(&self) -> Option<usize> {
        None
    }
    /// A number the batch size is best a multiple of (a network that runs fixed-size chunks
    /// of rows and pads the last one); applied to a batch size the spec leaves unset.
    fn batch_multiple(&self) -> Option<usize> {
        None
    }
}

/// The config of a sink kind: deserialised from the spec's `[sink]` table.
pub trait SinkConfig: ComponentConfig {
    /// The kind's name in specs (`kind = "..."`).
    const KIND: &'static str;
    /// Build the sink's side of the job.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>>;
}

/// An operator config of any registered kind.
pub trait AnyOperatorConfig: Send + Sync + fmt::Debug {
    /// The kind's name in specs.
    fn kind(&self) -> &'static str;
    /// Build the running operator.
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>>;
    /// The config's keys (without `kind`), in its fields' order; unset options left out.
    fn keys(&self) -> Result<toml::Table>;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn AnyOperatorConfig>;
    /// The concrete config, for [`OperatorSpec::get`](crate::component::OperatorSpec::get).
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same kind with the same settings.
    fn same_as(&self, other: &dyn AnyOperatorConfig) -> bool;
    /// See [`OperatorConfig::batch_rows_hint`].
    fn batch_rows_hint(&self) -> Option<usize>;
    /// See [`OperatorConfig::batch_multiple`].
    fn batch_multiple(&self) -> Option<usize>;
}

impl<C: OperatorConfig> AnyOperatorConfig for C {
    fn kind(&self) -> &'static str {
        C::KIND
    }
    fn build(&self, ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        OperatorConfig::build(self, ctx)
    }
    fn keys(&self) -> Result<toml::Table> {
        config_keys(C::KIND, self)
    }
    fn clone_box(&self) -> Box<dyn AnyOperatorConfig> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same_as(&self, other: &dyn AnyOperatorConfig) -> bool {
        other.as_any().downcast_ref::<C>() == Some(self)
    }
    fn batch_rows_hint(&self) -> Option<usize> {
        OperatorConfig::batch_rows_hint(self)
    }
    fn batch_multiple(&self) -> Option<usize> {
        OperatorConfig::batch_multiple(self)
    }
}

/// A sink config of any registered kind.
pub trait AnySinkConfig: Send + Sync + fmt::Debug {
    /// The kind's name in specs.
    fn kind(&self) -> &'static str;
    /// Build the sink's side of the job.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>>;
    /// The config's keys (without `kind`), in its fields' order; unset options left out.
    fn keys(&self) -> Result<toml::Table>;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn AnySinkConfig>;
    /// The concrete config, for [`SinkSpec::get`](crate::component::SinkSpec::get).
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same kind with the same settings.
    fn same_as(&self, other: &dyn AnySinkConfig) -> bool;
}

impl<C: SinkConfig> AnySinkConfig for C {
    fn kind(&self) -> &'static str {
        C::KIND
    }
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn SinkJob>> {
        SinkConfig::build(self, ctx)
    }
    fn keys(&self) -> Result<toml::Table> {
        config_keys(C::KIND, self)
    }
    fn clone_box(&self) -> Box<dyn AnySinkConfig> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same_as(&self, other: &dyn AnySinkConfig) -> bool {
        other.as_any().downcast_ref::<C>() == Some(self)
    }
}

/// The keys of `config` as a table in its fields' order (TOML has no null: unset options are
/// left out).
fn config_keys<C: Serialize>(kind: &str, config: &C) -> Result<toml::Table> {
    toml::Table::try_from(config).map_err(|e| Error::Spec {
        component: kind.to_string(),
        source: Box::new(e),
    })
}
