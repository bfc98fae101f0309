//! The open registry of pipeline components: every operator and sink kind a spec can name.
//!
//! A component is a serde config struct (its doc comments are the user documentation, exported
//! as a JSON schema) plus a `build` into the running object, registered by name with
//! [`register_operator!`](crate::register_operator) or [`register_sink!`](crate::register_sink)
//! in the file that defines it. Adding a kind touches no central list and no engine code: the
//! registrations are collected at link time (`inventory`).

use serde::de::DeserializeOwned;

use crate::config::{AnyOperatorConfig, AnySinkConfig};
use crate::{Error, Result};

// The traits a component implements and what its build gets, where components have always
// found them.
pub use crate::config::{
    BuildContext, ComponentConfig, OperatorConfig, SinkConfig, DEFAULT_BATCH_ROWS,
};
pub use crate::sink_job::{Pass, PlanInfo, SinkJob};

#[doc(hidden)]
pub use inventory;

/// A registered operator kind.
pub struct OperatorKind {
    /// Name in specs.
    pub kind: &'static str,
    /// JSON schema of the config (keys, types, defaults, doc comments).
    pub schema: fn() -> serde_json::Value,
    /// Parse a config (its keys, without `kind`).
    pub parse: fn(serde_json::Value) -> Result<Box<dyn AnyOperatorConfig>>,
}

/// A registered sink kind.
pub struct SinkKind {
    /// Name in specs.
    pub kind: &'static str,
    /// JSON schema of the config.
    pub schema: fn() -> serde_json::Value,
    /// Parse a config (its keys, without `kind`).
    pub parse: fn(serde_json::Value) -> Result<Box<dyn AnySinkConfig>>,
}

inventory::collect!(OperatorKind);
inventory::collect!(SinkKind);

/// Parse `value` as the config of `kind`; the error names the kind.
pub fn parse_config<T: DeserializeOwned>(kind: &str, value: serde_json::Value) -> Result<T> {
    serde_json::from_value(value).map_err(|e| Error::Spec {
        component: kind.to_string(),
        source: Box::new(e),
    })
}

/// The JSON schema of config type `T`.
pub fn schema_of<T: schemars::JsonSchema>() -> serde_json::Value {
    schemars::schema_for!(T).to_value()
}

/// Every registered operator kind, sorted by name.
pub fn operator_kinds() -> Vec<&'static OperatorKind> {
    let mut kinds: Vec<_> = inventory::iter::<OperatorKind>.into_iter().collect();
    kinds.sort_by_key(|k| k.kind);
    kinds
}

/// Every registered sink kind, sorted by name.
pub fn sink_kinds() -> Vec<&'static SinkKind> {
    let mut kinds: Vec<_> = inventory::iter::<SinkKind>.into_iter().collect();
    kinds.sort_by_key(|k| k.kind);
    kinds
}

/// Register operator config type `$config` (an [`OperatorConfig`]) under its `KIND`.
#[macro_export]
macro_rules! register_operator {
    ($config:ty) => {
        $crate::registry::inventory::submit! {
            $crate::registry::OperatorKind {
                kind: <$config as $crate::registry::OperatorConfig>::KIND,
                schema: $crate::registry::schema_of::<$config>,
                parse: |value| {
                    let config: $config = $crate::registry::parse_config(
                        <$config as $crate::registry::OperatorConfig>::KIND,
                        value,
                    )?;
                    Ok(Box::new(config))
                },
            }
        }
    };
}

/// Register sink config type `$config` (a [`SinkConfig`]) under its `KIND`.
#[macro_export]
macro_rules! register_sink {
    ($config:ty) => {
        $crate::registry::inventory::submit! {
            $crate::registry::SinkKind {
                kind: <$config as $crate::registry::SinkConfig>::KIND,
                schema: $crate::registry::schema_of::<$config>,
                parse: |value| {
                    let config: $config = $crate::registry::parse_config(
                        <$config as $crate::registry::SinkConfig>::KIND,
                        value,
                    )?;
                    Ok(Box::new(config))
                },
            }
        }
    };
}
