//! Settings named by their serde names on the command line (`--kind pixels`, `--pooling none`),
//! so a flag and a spec key accept the same words and no enum needs its own parser.

use serde::de::{DeserializeOwned, IntoDeserializer};
use serde::Serialize;

use crate::{Error, Result};

/// Parse `text` as the variant of `T` with that serde name.
///
/// ```
/// #[derive(serde::Deserialize, Debug, PartialEq)]
/// #[serde(rename_all = "lowercase")]
/// enum Pooling { Mean, None }
/// assert_eq!(ldae_pipeline::names::parse_name::<Pooling>("none").unwrap(), Pooling::None);
/// assert!(ldae_pipeline::names::parse_name::<Pooling>("max").is_err());
/// ```
pub fn parse_name<T: DeserializeOwned>(text: &str) -> Result<T> {
    T::deserialize(text.into_deserializer())
        .map_err(|e: serde::de::value::Error| Error::invalid(e.to_string()))
}

/// The serde name of `value` (a unit enum variant), e.g. for file names.
pub fn name_of<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}
