//! A toy dataset format, registered here and nowhere else: `toy:N` is N rows of 4x4 RGB
//! pixels, every row with the label its settings give.

use ldae_datasets::format::{FormatConfig, Probe};
use ldae_datasets::{Payload, RawRow, RowReader};
use ldae_pipeline::{Error, Rejection, Result};

/// `toy_rows`: N rows of 4x4 RGB pixels (`input = "toy:N"`), each with the same label.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct ToyRows {
    /// The label of every row.
    pub label: i64,
}

impl FormatConfig for ToyRows {
    const NAME: &'static str = "toy_rows";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        Ok(input.input().starts_with("toy:").then_some(100))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        let rows = input
            .strip_prefix("toy:")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| Error::invalid(format!("'{input}': expected toy:N")))?;
        Ok(Box::new(Reader {
            rows,
            label: self.label,
        }))
    }
}
ldae_datasets::register_format!(ToyRows);

struct Reader {
    rows: usize,
    label: i64,
}

impl RowReader for Reader {
    fn kind(&self) -> &'static str {
        ToyRows::NAME
    }
    fn len(&self) -> usize {
        self.rows
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        Some([4, 4, 3])
    }
    fn class_names(&self) -> Option<Vec<String>> {
        None
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        Ok(RawRow {
            id: format!("toy:{index}"),
            label: Some(self.label),
            payload: Payload::Pixels(arrow::buffer::Buffer::from_vec(vec![
                index as u8;
                4 * 4 * 3
            ])),
        })
    }
}
