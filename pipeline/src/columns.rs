//! Column names and the tensor-column convention, fixed in one place.
//!
//! Tensor-valued columns (`pixels`, `patches`, `latents`, ...) are Arrow `FixedSizeList`s of the
//! element type, one list per row, tagged with Arrow's canonical fixed-shape tensor extension type
//! (`arrow.fixed_shape_tensor`, metadata `{"shape":[...]}`), so pyarrow, pandas, polars and DuckDB
//! read them as tensors with their shape. Elements are stored row-major (last index fastest).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, FixedSizeListArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::{Error, Result};

/// Stable row key: a relative path or `source:index`. Utf8, not null.
pub const ID: &str = "id";
/// Class index, Int64, nullable. Class names are in the schema metadata under [`CLASS_NAMES`].
pub const LABEL: &str = "label";
/// Encoded image bytes (JPEG, PNG), Binary.
pub const IMAGE: &str = "image";
/// Pixels, a tensor `[H, W, C]`: UInt8 after decoding, Float32 after normalisation.
pub const PIXELS: &str = "pixels";
/// Image patches, Float32 tensor `[N, D]` with `N = (S/p)^2`, `D = p*p*C`.
pub const PATCHES: &str = "patches";
/// PCA latents of the patches, Float32 tensor `[N, d]`.
pub const LATENTS: &str = "latents";
/// Noised patches (rank-d PCA reconstruction of the noised latent), Float32 tensor `[N, D]`.
pub const NOISY: &str = "noisy";
/// Noise level of a row, Float32.
pub const SIGMA: &str = "sigma";
/// Representation vectors, Float32 tensor `[F]`.
pub const FEATURES: &str = "features";

/// Schema metadata key holding the class names as a JSON array, index = label.
pub const CLASS_NAMES: &str = "ldae.class_names";
/// Schema metadata key: how `pixels` (and the patches made of them) were normalised (JSON).
pub const META_NORMALIZATION: &str = "ldae.normalization";
/// Schema metadata key: the square image side the pixels were decoded to.
pub const META_IMAGE_SIZE: &str = "ldae.image_size";
/// Schema metadata key: the patch side of `patches`.
pub const META_PATCH_SIZE: &str = "ldae.patch_size";
/// Schema metadata key: the element order inside a patch (see [`PATCH_ORDER`]).
pub const META_PATCH_ORDER: &str = "ldae.patch_order";
/// The one element order ldae writes: patches in grid row-major order, inside a patch rows,
/// then columns, then channels.
pub const PATCH_ORDER: &str = "grid-row-major/py-px-c";
/// Schema metadata key: the fingerprint of the PCA model `latents` and `noisy` come from.
pub const META_PCA_MODEL: &str = "ldae.pca_model";
/// Schema metadata key: the latent dimension d of `latents` and `noisy`.
pub const META_LATENT_DIM: &str = "ldae.latent_dim";
/// Schema metadata key: the latent scale of `latents` and `noisy`.
pub const META_LATENT_SCALE: &str = "ldae.latent_scale";

/// Schema metadata key: the PCA model file `noisy` was made with (absolute path), so a trainer
/// can load the model its loss is weighted by.
pub const META_PCA_PATH: &str = "ldae.pca_path";
/// Schema metadata key: the noise schedule of `noisy` (JSON).
pub const META_NOISE: &str = "ldae.noise";
/// Schema metadata key: whether `pixels` were randomly resized-cropped and flipped.
pub const META_AUGMENT: &str = "ldae.augment";

/// `schema` with metadata `entries` set (other metadata kept).
pub fn with_metadata(schema: &Schema, entries: &[(&str, String)]) -> SchemaRef {
    let mut metadata = schema.metadata().clone();
    for (k, v) in entries {
        metadata.insert(k.to_string(), v.clone());
    }
    Arc::new(Schema::new_with_metadata(schema.fields().clone(), metadata))
}

/// Plan-time check that each metadata key of `expected` that `input` records has the expected
/// value. The error names the stage and both sides, `what` saying what the expected values
/// belong to (e.g. "the PCA model"). Keys the input does not record (batches from Python, a
/// table made outside ldae) cannot be compared: they are named in a warning, and the returned
/// list, so that what went unchecked is said rather than passed over.
pub fn check_metadata(
    input: &Schema,
    expected: &[(&str, String)],
    stage: &str,
    what: &str,
) -> Result<Vec<String>> {
    let mut unverified = Vec::new();
    for (key, value) in expected {
        match input.metadata().get(*key) {
            Some(found) if found != value => {
                return Err(Error::plan(
                    stage,
                    format!("the input has {key} = {found}, but {what} has {key} = {value}"),
                ))
            }
            Some(_) => {}
            None => unverified.push(key.to_string()),
        }
    }
    if !unverified.is_empty() {
        tracing::warn!(
            "stage '{stage}': the input records no {}; it could not be checked against {what}",
            unverified.join(", ")
        );
    }
    Ok(unverified)
}

/// Field metadata key naming an Arrow extension type.
pub const EXTENSION_NAME: &str = "ARROW:extension:name";
/// Field metadata key holding an extension type's parameters.
pub const EXTENSION_METADATA: &str = "ARROW:extension:metadata";
/// Arrow's canonical fixed-shape tensor extension name.
pub const FIXED_SHAPE_TENSOR: &str = "arrow.fixed_shape_tensor";

/// A tensor column's field: `FixedSizeList<element>` of `prod(shape)` items with the fixed-shape
/// tensor extension metadata.
pub fn tensor_field(name: &str, element: DataType, shape: &[usize]) -> Field {
    let size = shape.iter().product::<usize>() as i32;
    let item = Arc::new(Field::new("item", element, true));
    let metadata = HashMap::from([
        (EXTENSION_NAME.to_string(), FIXED_SHAPE_TENSOR.to_string()),
        (
            EXTENSION_METADATA.to_string(),
            serde_json::json!({ "shape": shape }).to_string(),
        ),
    ]);
    Field::new(name, DataType::FixedSizeList(item, size), false).with_metadata(metadata)
}

/// The element type and shape of a tensor field, or `None` if `field` is not a tensor column.
pub fn tensor_type(field: &Field) -> Option<(DataType, Vec<usize>)> {
    let DataType::FixedSizeList(item, size) = field.data_type() else {
        return None;
    };
    let shape = field
        .metadata()
        .get(EXTENSION_METADATA)
        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
        .and_then(|v| {
            v.get("shape")?
                .as_array()?
                .iter()
                .map(|d| d.as_u64().map(|d| d as usize))
                .collect::<Option<Vec<_>>>()
        })
        .unwrap_or_else(|| vec![*size as usize]);
    if shape.iter().product::<usize>() != *size as usize {
        return None;
    }
    Some((item.data_type().clone(), shape))
}

/// Look up tensor column `name` in `schema`, checking its element type; returns its shape.
/// The error names `stage` and says what was found instead.
pub fn require_tensor(
    schema: &Schema,
    name: &str,
    element: &DataType,
    stage: &str,
) -> Result<Vec<usize>> {
    let field = schema.field_with_name(name).map_err(|_| {
        Error::plan(
            stage,
            format!(
                "needs a '{name}' column, the input has [{}]",
                column_list(schema)
            ),
        )
    })?;
    match tensor_type(field) {
        Some((el, shape)) if &el == element => Ok(shape),
        Some((el, shape)) => Err(Error::plan(
            stage,
            format!("column '{name}' is a {el} tensor {shape:?}, expected {element} elements"),
        )),
        None => Err(Error::plan(
            stage,
            format!(
                "column '{name}' has type {}, expected a tensor column",
                field.data_type()
            ),
        )),
    }
}

/// The comma-separated column names of `schema`, for error messages.
pub fn column_list(schema: &Schema) -> String {
    schema
        .fields()
        .iter()
        .map(|f| f.name().as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Build a tensor column from a flat array of `rows * prod(shape)` values.
pub fn tensor_array(values: ArrayRef, shape: &[usize]) -> Result<FixedSizeListArray> {
    let size = shape.iter().product::<usize>();
    if size == 0 || !values.len().is_multiple_of(size) {
        return Err(Error::data(format!(
            "{} values do not fill whole tensors of shape {shape:?}",
            values.len()
        )));
    }
    let item = Arc::new(Field::new("item", values.data_type().clone(), true));
    Ok(FixedSizeListArray::try_new(
        item,
        size as i32,
        values,
        None,
    )?)
}

/// The flat values of tensor column `name` in `batch`, downcast to `A`, honouring the column's
/// offset (a sliced batch views only part of the values buffer).
pub fn tensor_values<A: Array + Clone + 'static>(
    batch: &arrow::record_batch::RecordBatch,
    name: &str,
) -> Result<A> {
    let column = batch
        .column_by_name(name)
        .ok_or_else(|| Error::data(format!("missing column '{name}'")))?;
    let list = column
        .as_any()
        .downcast_ref::<FixedSizeListArray>()
        .ok_or_else(|| Error::data(format!("column '{name}' is not a tensor column")))?;
    let size = list.value_length() as usize;
    let values = list.values().slice(list.offset() * size, list.len() * size);
    values.as_any().downcast_ref::<A>().cloned().ok_or_else(|| {
        Error::data(format!(
            "column '{name}' has elements of type {}",
            values.data_type()
        ))
    })
}

/// Replace (or append) column `name` of `schema` with `field`, keeping the position and the
/// schema metadata.
pub fn replace_field(schema: &Schema, name: &str, field: Field) -> SchemaRef {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    match fields.iter().position(|f| f.name() == name) {
        Some(i) => fields[i] = field,
        None => fields.push(field),
    }
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Class names recorded in a schema's metadata, if any.
pub fn class_names(schema: &Schema) -> Option<Vec<String>> {
    schema
        .metadata()
        .get(CLASS_NAMES)
        .and_then(|v| serde_json::from_str(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Float32Array;

    #[test]
    fn tensor_field_round_trips_shape() {
        let f = tensor_field("latents", DataType::Float32, &[64, 16]);
        assert_eq!(tensor_type(&f), Some((DataType::Float32, vec![64, 16])));
        let plain = Field::new("x", DataType::Int64, true);
        assert_eq!(tensor_type(&plain), None);
    }

    #[test]
    fn tensor_array_checks_length() {
        let values = Arc::new(Float32Array::from(vec![0.0; 12])) as ArrayRef;
        assert_eq!(tensor_array(values.clone(), &[2, 3]).unwrap().len(), 2);
        assert!(tensor_array(values, &[5]).is_err());
    }

    #[test]
    fn check_metadata_refuses_a_mismatch_and_names_what_it_could_not_check() {
        let schema = Schema::new(vec![Field::new("id", DataType::Utf8, false)]).with_metadata(
            HashMap::from([(META_IMAGE_SIZE.to_string(), "32".to_string())]),
        );
        let expected = [
            (META_IMAGE_SIZE, "32".to_string()),
            (META_PATCH_SIZE, "4".to_string()),
        ];
        let unverified = check_metadata(&schema, &expected, "noise", "the PCA model").unwrap();
        assert_eq!(unverified, vec![META_PATCH_SIZE.to_string()]);
        let wrong = [(META_IMAGE_SIZE, "64".to_string())];
        let err = check_metadata(&schema, &wrong, "noise", "the PCA model").unwrap_err();
        let text = err.chain();
        assert!(
            text.contains("noise") && text.contains("= 32") && text.contains("= 64"),
            "{text}"
        );
    }

    #[test]
    fn require_tensor_names_stage_and_columns() {
        let schema = Schema::new(vec![Field::new("id", DataType::Utf8, false)]);
        let err = require_tensor(&schema, PATCHES, &DataType::Float32, "pca_project")
            .unwrap_err()
            .chain();
        assert!(err.contains("pca_project") && err.contains("patches") && err.contains("id"));
    }
}
