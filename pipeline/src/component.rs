//! A spec's components as their typed configs. An `[[operator]]` or `[sink]` table is
//! deserialised through the registry straight into the config type registered for its `kind`
//! (and serialised back from it), so a spec is checked when it is read and nothing downstream
//! reads a component's settings by key: what a job needs to know about a stage, it asks the
//! stage's config (for example [`OperatorConfig::batch_rows_hint`]).

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::config::{AnyOperatorConfig, AnySinkConfig, OperatorConfig, SinkConfig};
use crate::registry::{operator_kinds, sink_kinds};
use crate::{Error, Result};

/// One `[[operator]]` of a spec: the typed config of a registered operator kind.
pub struct OperatorSpec(Box<dyn AnyOperatorConfig>);

/// The `[sink]` of a spec: the typed config of a registered sink kind.
pub struct SinkSpec(Box<dyn AnySinkConfig>);

impl OperatorSpec {
    /// The spec entry of `config`.
    pub fn new<C: OperatorConfig>(config: C) -> Self {
        OperatorSpec(Box::new(config))
    }

    /// The config of kind `kind` with the keys `value` (a JSON object without `kind`).
    pub fn parse(kind: &str, value: serde_json::Value) -> Result<Self> {
        let kinds = operator_kinds();
        let found = kinds.iter().find(|k| k.kind == kind).ok_or_else(|| {
            Error::unknown_kind("operator kind", kind, kinds.iter().map(|k| k.kind))
        })?;
        Ok(OperatorSpec((found.parse)(value)?))
    }

    /// The config as its kind's type, if it is of type `C`.
    pub fn get<C: OperatorConfig>(&self) -> Option<&C> {
        self.0.as_any().downcast_ref()
    }

    /// The config.
    pub fn config(&self) -> &dyn AnyOperatorConfig {
        &*self.0
    }
}

impl SinkSpec {
    /// The spec entry of `config`.
    pub fn new<C: SinkConfig>(config: C) -> Self {
        SinkSpec(Box::new(config))
    }

    /// The config of kind `kind` with the keys `value` (a JSON object without `kind`).
    pub fn parse(kind: &str, value: serde_json::Value) -> Result<Self> {
        let kinds = sink_kinds();
        let found = kinds
            .iter()
            .find(|k| k.kind == kind)
            .ok_or_else(|| Error::unknown_kind("sink kind", kind, kinds.iter().map(|k| k.kind)))?;
        Ok(SinkSpec((found.parse)(value)?))
    }

    /// The config as its kind's type, if it is of type `C`.
    pub fn get<C: SinkConfig>(&self) -> Option<&C> {
        self.0.as_any().downcast_ref()
    }

    /// The config.
    pub fn config(&self) -> &dyn AnySinkConfig {
        &*self.0
    }
}

/// `kind` and the other keys of a component table.
fn split_kind(mut value: serde_json::Value, what: &str) -> Result<(String, serde_json::Value)> {
    let kind = value
        .as_object_mut()
        .and_then(|map| map.remove("kind"))
        .and_then(|k| k.as_str().map(str::to_string))
        .ok_or_else(|| {
            Error::invalid(format!(
                "every {what} needs kind = \"...\" (see docs/pipeline-spec.md)"
            ))
        })?;
    Ok((kind, value))
}

/// The component table: `kind` first, then the config's keys.
fn serialize_table<S: Serializer>(
    kind: &str,
    keys: Result<toml::Table>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::{Error as _, SerializeMap};
    let fields = keys.map_err(|e| S::Error::custom(e.chain()))?;
    let mut map = serializer.serialize_map(Some(fields.len() + 1))?;
    map.serialize_entry("kind", kind)?;
    for (k, v) in &fields {
        map.serialize_entry(k, v)?;
    }
    map.end()
}

impl Serialize for OperatorSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_table(self.0.kind(), self.0.keys(), serializer)
    }
}

impl Serialize for SinkSpec {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serialize_table(self.0.kind(), self.0.keys(), serializer)
    }
}

impl<'de> Deserialize<'de> for OperatorSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        split_kind(value, "[[operator]]")
            .and_then(|(kind, keys)| OperatorSpec::parse(&kind, keys))
            .map_err(|e| D::Error::custom(e.chain()))
    }
}

impl<'de> Deserialize<'de> for SinkSpec {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        split_kind(value, "[sink]")
            .and_then(|(kind, keys)| SinkSpec::parse(&kind, keys))
            .map_err(|e| D::Error::custom(e.chain()))
    }
}

impl Clone for OperatorSpec {
    fn clone(&self) -> Self {
        OperatorSpec(self.0.clone_box())
    }
}

impl Clone for SinkSpec {
    fn clone(&self) -> Self {
        SinkSpec(self.0.clone_box())
    }
}

impl PartialEq for OperatorSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(&*other.0)
    }
}

impl PartialEq for SinkSpec {
    fn eq(&self, other: &Self) -> bool {
        self.0.same_as(&*other.0)
    }
}

impl fmt::Debug for OperatorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for SinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
