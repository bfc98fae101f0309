//! The open registry of dataset formats.
//!
//! A format is a serde config struct (its doc comments document the format and its keys, the
//! spec's `[source.NAME]` table) implementing [`FormatConfig`]: it says how sure it is that an
//! input is one of its datasets ([`FormatConfig::sniff`]) and opens the rows of one
//! ([`FormatConfig::open`]). It is registered with [`register_format!`](crate::register_format)
//! in the file of its reader; detection, `--format`, the spec's `format` key and the spec
//! reference all read the registry, so adding a format touches that one file.

use std::any::Any;
use std::cell::OnceCell;
use std::fmt;
use std::fs::Metadata;
use std::path::Path;

use serde::de::{Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use ldae_pipeline::registry::ComponentConfig;
use ldae_pipeline::{Error, Result};

use crate::indexed::RowReader;

#[doc(hidden)]
pub use inventory;
#[doc(hidden)]
pub use ldae_pipeline::registry::{parse_config, schema_of};

/// The config of a dataset format: its own keys (a spec's `[source.NAME]` table), detection
/// and opening.
pub trait FormatConfig: ComponentConfig + Default {
    /// Name in `--format`, a spec's `format` key and the name of its settings table.
    const NAME: &'static str;
    /// Other names `--format` and `format` accept.
    const ALIASES: &'static [&'static str] = &[];
    /// How sure this format is that `input` is one of its datasets: `None` when it is not,
    /// else a rank; the highest rank detected wins (a plain folder of images ranks lowest, as
    /// the fallback for any folder).
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>>;
    /// Open the rows of `input` (a path, or a name the format itself defines).
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>>;
}

/// What detection knows about an input: its name, and (for a path that exists) its metadata
/// and, read once on first use, the names in the folder.
pub struct Probe<'a> {
    input: &'a str,
    meta: Option<Metadata>,
    names: OnceCell<Vec<String>>,
}

impl<'a> Probe<'a> {
    /// A probe of `input`.
    pub fn new(input: &'a str) -> Self {
        Probe {
            input,
            meta: std::fs::metadata(input).ok(),
            names: OnceCell::new(),
        }
    }

    /// The input as given.
    pub fn input(&self) -> &str {
        self.input
    }

    /// Whether the input is an existing file.
    pub fn is_file(&self) -> bool {
        self.meta.as_ref().is_some_and(Metadata::is_file)
    }

    /// Whether the input is an existing folder.
    pub fn is_dir(&self) -> bool {
        self.meta.as_ref().is_some_and(Metadata::is_dir)
    }

    /// The input's file name, lower-cased.
    pub fn file_name(&self) -> String {
        Path::new(self.input)
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default()
    }

    /// Whether the folder holds an entry whose lower-cased name satisfies `pred`.
    pub fn has_entry(&self, pred: impl Fn(&str) -> bool) -> Result<bool> {
        if !self.is_dir() {
            return Ok(false);
        }
        if self.names.get().is_none() {
            let path = Path::new(self.input);
            let mut names = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
                let entry = entry.map_err(|e| Error::io(path, e))?;
                names.push(entry.file_name().to_string_lossy().to_lowercase());
            }
            let _ = self.names.set(names);
        }
        Ok(self.names.get().into_iter().flatten().any(|n| pred(n)))
    }
}

/// A format's settings of any registered format.
pub trait AnyFormatConfig: Send + Sync + fmt::Debug {
    /// The format's name.
    fn name(&self) -> &'static str;
    /// Open the rows of `input`.
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>>;
    /// The settings' keys, in field order.
    fn keys(&self) -> Result<toml::Table>;
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn AnyFormatConfig>;
    /// The concrete config.
    fn as_any(&self) -> &dyn Any;
    /// Whether `other` is the same format with the same settings.
    fn same_as(&self, other: &dyn AnyFormatConfig) -> bool;
}

impl<C: FormatConfig> AnyFormatConfig for C {
    fn name(&self) -> &'static str {
        C::NAME
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        FormatConfig::open(self, input)
    }
    fn keys(&self) -> Result<toml::Table> {
        toml::Table::try_from(self).map_err(|e| Error::Spec {
            component: C::NAME.to_string(),
            source: Box::new(e),
        })
    }
    fn clone_box(&self) -> Box<dyn AnyFormatConfig> {
        Box::new(self.clone())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same_as(&self, other: &dyn AnyFormatConfig) -> bool {
        other.as_any().downcast_ref::<C>() == Some(self)
    }
}

/// A registered format.
pub struct FormatKind {
    /// Name in specs and flags.
    pub name: &'static str,
    /// Other accepted names.
    pub aliases: &'static [&'static str],
    /// JSON schema of the format's settings (its doc comment describes the format).
    pub schema: fn() -> serde_json::Value,
    /// See [`FormatConfig::sniff`].
    pub sniff: fn(&Probe<'_>) -> Result<Option<u8>>,
    /// Parse the format's settings table.
    pub parse: fn(serde_json::Value) -> Result<Box<dyn AnyFormatConfig>>,
    /// The default settings.
    pub default: fn() -> Box<dyn AnyFormatConfig>,
}

inventory::collect!(FormatKind);

/// Every registered format, sorted by name.
pub fn format_kinds() -> Vec<&'static FormatKind> {
    let mut kinds: Vec<_> = inventory::iter::<FormatKind>.into_iter().collect();
    kinds.sort_by_key(|k| k.name);
    kinds
}

/// Register format config type `$config` (a [`FormatConfig`]) under its `NAME`.
#[macro_export]
macro_rules! register_format {
    ($config:ty) => {
        $crate::format::inventory::submit! {
            $crate::format::FormatKind {
                name: <$config as $crate::format::FormatConfig>::NAME,
                aliases: <$config as $crate::format::FormatConfig>::ALIASES,
                schema: $crate::format::schema_of::<$config>,
                sniff: <$config as $crate::format::FormatConfig>::sniff,
                parse: |value| {
                    let config: $config = $crate::format::parse_config(
                        <$config as $crate::format::FormatConfig>::NAME,
                        value,
                    )?;
                    Ok(Box::new(config))
                },
                default: || Box::new(<$config as ::std::default::Default>::default()),
            }
        }
    };
}

/// A registered dataset format, by name: what `--format` and a spec's `format` key name.
#[derive(Clone, Copy)]
pub struct Format(&'static FormatKind);

impl Format {
    /// The format's name.
    pub fn name(self) -> &'static str {
        self.0.name
    }

    /// The registered format.
    pub fn kind(self) -> &'static FormatKind {
        self.0
    }

    /// The format of `input`, detected: the registered format that ranks it highest.
    pub fn detect(input: &str) -> Result<Format> {
        let probe = Probe::new(input);
        let mut best: Option<(u8, &'static FormatKind)> = None;
        for kind in format_kinds() {
            if let Some(rank) = (kind.sniff)(&probe)? {
                if best.is_none_or(|(r, _)| rank > r) {
                    best = Some((rank, kind));
                }
            }
        }
        match best {
            Some((_, kind)) => Ok(Format(kind)),
            None if probe.meta.is_none() => Err(Error::io(
                input,
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
            )),
            None => Err(Error::invalid(format!(
                "{input}: cannot tell the dataset kind from the name; pass --format ({})",
                names().join(", ")
            ))),
        }
    }
}

/// The names of the registered formats.
fn names() -> Vec<&'static str> {
    format_kinds().iter().map(|k| k.name).collect()
}

impl std::str::FromStr for Format {
    type Err = Error;
    /// A registered format's name or alias.
    fn from_str(s: &str) -> Result<Self> {
        let kinds = format_kinds();
        kinds
            .iter()
            .find(|k| k.name == s || k.aliases.contains(&s))
            .map(|k| Format(k))
            .ok_or_else(|| Error::unknown_kind("dataset format", s, kinds.iter().map(|k| k.name)))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.name)
    }
}

impl fmt::Debug for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Format({})", self.0.name)
    }
}

impl PartialEq for Format {
    fn eq(&self, other: &Self) -> bool {
        self.0.name == other.0.name
    }
}

impl Eq for Format {}

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.name)
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(|e: Error| D::Error::custom(e.chain()))
    }
}

impl schemars::JsonSchema for Format {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Format".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let value = serde_json::json!({ "type": "string", "enum": names() });
        schemars::Schema::try_from(value).unwrap_or_default()
    }
}

/// The format settings of a `[source]`: a `[source.NAME]` table per format given one (the
/// format that reads the input uses its own, or its defaults).
#[derive(Default)]
pub struct FormatSettings(Vec<Box<dyn AnyFormatConfig>>);

impl FormatSettings {
    /// The settings of one format, as its `[source.NAME]` table would give them.
    pub fn of<C: FormatConfig + 'static>(config: C) -> Self {
        FormatSettings(vec![Box::new(config)])
    }

    /// The settings given for `format`.
    pub fn get(&self, format: Format) -> Option<&dyn AnyFormatConfig> {
        self.0
            .iter()
            .find(|c| c.name() == format.name())
            .map(|c| &**c)
    }

    /// The settings `format` reads with: its own table, else its defaults. Settings for
    /// another format are an error (they would be silently ignored).
    pub fn for_format(&self, format: Format) -> Result<Box<dyn AnyFormatConfig>> {
        if let Some(other) = self.0.iter().find(|c| c.name() != format.name()) {
            // The one format setting a command-line flag gives.
            let flag = if other.name() == "parquet" {
                " (--split chooses a split of a Parquet dataset)"
            } else {
                ""
            };
            return Err(Error::invalid(format!(
                "[source.{}] settings were given{flag}, but the input is read as '{}'",
                other.name(),
                format.name()
            )));
        }
        Ok(self
            .get(format)
            .map(|c| c.clone_box())
            .unwrap_or_else(|| (format.kind().default)()))
    }
}

impl Clone for FormatSettings {
    fn clone(&self) -> Self {
        FormatSettings(self.0.iter().map(|c| c.clone_box()).collect())
    }
}

impl PartialEq for FormatSettings {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.0.iter().zip(&other.0).all(|(a, b)| a.same_as(&**b))
    }
}

impl fmt::Debug for FormatSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

impl Serialize for FormatSettings {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeMap};
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for config in &self.0 {
            let keys = config.keys().map_err(|e| S::Error::custom(e.chain()))?;
            map.serialize_entry(config.name(), &keys)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for FormatSettings {
    /// The keys a `[source]` table has beyond the common ones: each must be a registered
    /// format's name, holding that format's settings.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct Tables;
        impl<'de> Visitor<'de> for Tables {
            type Value = FormatSettings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("format settings tables")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<FormatSettings, A::Error> {
                let mut settings = FormatSettings::default();
                while let Some(key) = map.next_key::<String>()? {
                    let value: serde_json::Value = map.next_value()?;
                    let kinds = format_kinds();
                    let Some(kind) = kinds.iter().find(|k| k.name == key) else {
                        return Err(A::Error::custom(format!(
                            "unknown key '{key}' in [source]; the keys are input, format, \
                             limit, shard, skip, shuffle, seed, batch_size, and a table of \
                             settings named after a format ({})",
                            names().join(", ")
                        )));
                    };
                    let config = (kind.parse)(value).map_err(|e| A::Error::custom(e.chain()))?;
                    settings.0.retain(|c| c.name() != kind.name);
                    settings.0.push(config);
                }
                settings.0.sort_by_key(|c| c.name());
                Ok(settings)
            }
        }
        deserializer.deserialize_map(Tables)
    }
}
