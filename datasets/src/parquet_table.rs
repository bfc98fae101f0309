//! Parquet image tables: the Hugging Face datasets layout (an `image` column that is either a
//! struct `{bytes, path}` or plain binary, and an optional integer `label` column, class names
//! from the `huggingface` schema metadata when present), or ldae's own decoded-pixel tables
//! (`id`, `label`, `pixels` as a UInt8 tensor `[H, W, C]`, e.g. the training pixel cache; their
//! ids are kept). One file or a folder of `*.parquet` files (`_`-prefixed metadata files
//! skipped), read by whole row groups: each decoded once while it stays in memory, several at
//! once ahead of the rows that need them (see `row_groups`).

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type, UInt8Type};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use ldae_pipeline::{columns, Error, Rejection, Result};

use crate::format::{FormatConfig, Probe};
use crate::indexed::{Payload, RawRow, RowReader};
use crate::order::Blocks;
use crate::parquet_files;
use crate::row_groups::{self, check_image_type, Group, GroupCache, GroupToRead};

struct TableFile {
    path: PathBuf,
    name: String,
    /// Rows in each row group.
    row_groups: Vec<usize>,
    projection: Vec<usize>,
}

/// Memory the decoded row groups of a read may take: a table larger than this is shuffled in
/// windows of row groups ([`crate::order::row_order`]).
pub const DECODED_GROUPS_BUDGET: usize = GroupCache::BUDGET;

/// Reads Parquet image tables.
pub struct ParquetReader {
    files: Vec<TableFile>,
    /// (file, row group, first global row) for every row group, in order.
    groups: Vec<(usize, usize, usize)>,
    /// Every row group's size decoded (an estimate from the metadata), in the same order.
    group_bytes: Vec<usize>,
    total: usize,
    has_label: bool,
    classes: Option<Vec<String>>,
    /// `[H, W, C]` of a decoded-pixel table (None: encoded images).
    pixel_shape: Option<[usize; 3]>,
    cache: GroupCache,
    /// Row groups that failed to decode, with the error: each is tried once, and every row of
    /// it is rejected with that error.
    failed: std::collections::HashMap<usize, String>,
}

/// The class names a Hugging Face dataset's schema metadata gives its `label` column (a
/// `ClassLabel`'s `names`), if any.
pub fn hf_class_names(metadata: &std::collections::HashMap<String, String>) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(metadata.get("huggingface")?).ok()?;
    let names = v.pointer("/info/features/label/names")?.as_array()?;
    names.iter().map(|n| n.as_str().map(String::from)).collect()
}

/// The source settings that read `split` of a Parquet dataset (none without a split).
pub fn split_settings(split: Option<&str>) -> crate::format::FormatSettings {
    match split {
        Some(split) => crate::format::FormatSettings::of(ParquetFormat {
            split: Some(split.to_string()),
        }),
        None => crate::format::FormatSettings::default(),
    }
}

impl ParquetReader {
    /// Open a Parquet file or a folder of them; all must have the same image/label columns.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_split(path, None)
    }

    /// [`ParquetReader::open`] of one Hugging Face split's files (see [`ParquetFormat`]).
    pub fn open_split(path: &Path, split: Option<&str>) -> Result<Self> {
        let mut files = Vec::new();
        let mut groups = Vec::new();
        let mut total = 0;
        let mut group_bytes = Vec::new();
        let mut has_label = None;
        let mut classes = None;
        let mut pixel_shape: Option<Option<[usize; 3]>> = None;
        for p in parquet_files::dataset_files(path, split)? {
            let file = File::open(&p).map_err(|e| Error::io(&p, e))?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)
                .map_err(|e| Error::external(format!("{}", p.display()), e))?;
            let schema = builder.schema().clone();
            let shape = match schema.field_with_name(columns::PIXELS) {
                Ok(f) => match ldae_pipeline::tensor_bytes::stored_tensor_type(f) {
                    Some((DataType::UInt8, s)) if s.len() == 3 => Some([s[0], s[1], s[2]]),
                    _ => {
                        return Err(Error::corrupt(
                            &p,
                            "'pixels' is not a UInt8 [H, W, C] tensor column",
                        ))
                    }
                },
                Err(_) => {
                    schema
                        .index_of(columns::IMAGE)
                        .map_err(|_| Error::corrupt(&p, "no 'image' (or 'pixels') column"))?;
                    None
                }
            };
            if pixel_shape.is_some_and(|s| s != shape) {
                return Err(Error::corrupt(
                    &p,
                    "its images differ in kind or shape from the other files'",
                ));
            }
            pixel_shape = Some(shape);
            if shape.is_none() {
                check_image_type(
                    schema
                        .field_with_name(columns::IMAGE)
                        .map_err(|_| Error::corrupt(&p, "no 'image' column"))?,
                    &p,
                )?;
            }
            let label = schema.index_of("label").ok();
            if let Some(i) = label {
                let t = schema.field(i).data_type();
                if !t.is_integer() {
                    return Err(Error::corrupt(&p, format!("column 'label' is {t}; labels must be integers (class indices), cast the column to int64")));
                }
            }
            if has_label.is_some_and(|h| h != label.is_some()) {
                return Err(Error::corrupt(
                    &p,
                    "some files have a 'label' column and some do not",
                ));
            }
            has_label = Some(label.is_some());
            classes = classes
                .or_else(|| hf_class_names(schema.metadata()))
                .or_else(|| columns::class_names(&schema));
            // Column indices in the Parquet schema's leaves for the projection.
            let parquet_schema = builder.parquet_schema();
            let projection: Vec<usize> = (0..parquet_schema.num_columns())
                .filter(|&i| {
                    let col = parquet_schema.column(i);
                    let root = col.path().parts()[0].as_str();
                    root == "image"
                        || root == "label"
                        || (shape.is_some() && (root == "pixels" || root == "id"))
                })
                .collect();
            let row_groups: Vec<usize> = builder
                .metadata()
                .row_groups()
                .iter()
                .map(|rg| rg.num_rows() as usize)
                .collect();
            let fi = files.len();
            for (g, &rows) in row_groups.iter().enumerate() {
                groups.push((fi, g, total));
                total += rows;
                // Decoded pixels take their full size (their encoding, dictionary indices of
                // few bits, can be far smaller); encoded images about their stored bytes.
                let meta = &builder.metadata().row_groups()[g];
                let stored = projection
                    .iter()
                    .map(|&c| meta.column(c).uncompressed_size());
                let stored = stored.sum::<i64>().max(0) as usize;
                group_bytes.push(match shape {
                    Some(s) => stored.max(rows * s.iter().product::<usize>()),
                    None => stored,
                });
            }
            // Ids name the file: relative to a folder given as input, or its file name.
            let name = match p.strip_prefix(path) {
                Ok(rel) if !rel.as_os_str().is_empty() => crate::file_access::path_id(rel),
                _ => p
                    .file_name()
                    .map(|n| crate::file_access::path_id(Path::new(n)))
                    .unwrap_or_default(),
            };
            files.push(TableFile {
                path: p,
                name,
                row_groups,
                projection,
            });
        }
        Ok(ParquetReader {
            files,
            groups,
            group_bytes,
            total,
            has_label: has_label.unwrap_or(false),
            classes,
            pixel_shape: pixel_shape.flatten(),
            cache: GroupCache::default(),
            failed: Default::default(),
        })
    }

    /// The row group (its index in `groups`) holding row `index`.
    fn group_of(&self, index: usize) -> usize {
        self.groups.partition_point(|&(_, _, start)| start <= index) - 1
    }

    fn to_read(&self, g: usize) -> GroupToRead<'_> {
        let (fi, rg, _) = self.groups[g];
        let file = &self.files[fi];
        GroupToRead {
            path: &file.path,
            row_group: rg,
            projection: &file.projection,
            rows: file.row_groups[rg],
            bytes: self.group_bytes[g],
            pixels: self.pixel_shape.is_some(),
        }
    }

    fn is_missing(&self, g: usize) -> bool {
        !self.cache.contains(g) && !self.failed.contains_key(&g)
    }

    /// Keep the decoded groups (or each failure, which every row of the group reports).
    fn keep(&mut self, decoded: Vec<(usize, Result<Group>)>) {
        for (g, result) in decoded {
            match result {
                Ok(group) => self.cache.insert(g, group),
                Err(e) => {
                    self.failed.insert(g, e.chain());
                }
            }
        }
    }

    fn load_group(&mut self, g: usize) {
        if self.is_missing(g) {
            let decoded = self.to_read(g).decode();
            self.keep(vec![(g, decoded)]);
        }
    }
}

impl RowReader for ParquetReader {
    fn kind(&self) -> &'static str {
        "parquet"
    }
    fn len(&self) -> usize {
        self.total
    }
    fn pixel_shape(&self) -> Option<[usize; 3]> {
        self.pixel_shape
    }
    fn class_names(&self) -> Option<Vec<String>> {
        if self.has_label {
            self.classes.clone()
        } else {
            None
        }
    }
    fn blocks(&self) -> Option<Blocks> {
        // Windows of groups that stay decoded together, with room to spare in the cache (its
        // count of a group's bytes includes the arrays' spare capacity).
        let largest = self.group_bytes.iter().copied().max().unwrap_or(0).max(1);
        Some(Blocks {
            rows: self
                .files
                .iter()
                .flat_map(|f| f.row_groups.iter().copied())
                .collect(),
            resident: (GroupCache::BUDGET / 4 * 3 / largest).max(1),
        })
    }
    /// Decodes the missing row groups of the next batch together with the next ones the rows
    /// after it need, up to one per decode thread (and within 3/4 of the cache's budget), each
    /// on its own thread. Groups still needed are kept from eviction, and room is made before
    /// decoding, so the cache stays within its budget.
    fn prefetch(&mut self, upcoming: &[usize], next: usize) {
        let next = next.min(upcoming.len());
        if !upcoming[..next]
            .iter()
            .any(|&i| self.is_missing(self.group_of(i)))
        {
            return;
        }
        let threads = row_groups::decode_threads();
        let cap = GroupCache::BUDGET / 4 * 3;
        // Past the next batch, look this many rows ahead at most.
        let horizon = next.saturating_add(1 << 20).min(upcoming.len());
        let mut seen = std::collections::HashSet::new();
        let (mut kept, mut missing, mut bytes) = (Vec::new(), Vec::new(), 0);
        for (k, &index) in upcoming[..horizon].iter().enumerate() {
            let g = self.group_of(index);
            if self.failed.contains_key(&g) || !seen.insert(g) {
                continue;
            }
            // The next batch's groups are all decoded; past it, no more than fit the cap and
            // the threads.
            if k >= next && (missing.len() >= threads || bytes + self.group_bytes[g] > cap) {
                break;
            }
            bytes += self.group_bytes[g];
            if self.cache.contains(g) {
                kept.push(g);
            } else {
                missing.push(g);
            }
        }
        for &g in &kept {
            self.cache.touch(g);
        }
        self.cache
            .make_room(missing.iter().map(|&g| self.group_bytes[g]).sum());
        let to_read: Vec<_> = missing.iter().map(|&g| (g, self.to_read(g))).collect();
        let decoded = row_groups::decode_all(&to_read);
        self.keep(decoded);
    }
    fn read(&mut self, index: usize) -> std::result::Result<RawRow, Rejection> {
        let g = self.group_of(index);
        let (fi, _, start) = self.groups[g];
        let id = format!("{}:{index}", self.files[fi].name);
        let reject = |message: String| Rejection {
            id: id.clone(),
            message,
        };
        self.load_group(g);
        if let Some(message) = self.failed.get(&g) {
            return Err(reject(format!("read: {message}")));
        }
        let Some(group) = self.cache.get(g) else {
            return Err(reject("read: row group not loaded".into()));
        };
        let row = index - start;
        let label = match &group.labels {
            Some((stored, cast)) if !stored.is_null(row) => {
                let cast = cast.as_primitive::<Int64Type>();
                if cast.is_null(row) {
                    return Err(reject(format!(
                        "read: label {} does not fit in int64",
                        arrow::util::display::array_value_to_string(stored, row)
                            .unwrap_or_default()
                    )));
                }
                Some(cast.value(row))
            }
            _ => None,
        };
        let (images, at) = group.image(row);
        if self.pixel_shape.is_some() {
            if images.is_null(at) {
                return Err(reject("read: null pixels".into()));
            }
            // Pixels stored as a tensor (a list) or as bytes (see `tensor_bytes`): a view of
            // the group's buffer, copied once, into the batch.
            let values = match images.as_fixed_size_binary_opt() {
                Some(bytes) => {
                    let n = bytes.value_length() as usize;
                    bytes.values().slice_with_length(at * n, n)
                }
                None => {
                    let list = images.as_fixed_size_list();
                    let n = list.value_length() as usize;
                    let values = list.values().as_primitive::<UInt8Type>().values();
                    values.inner().slice_with_length(at * n, n)
                }
            };
            let id = match &group.ids {
                Some(ids) if !ids.is_null(row) => ids.as_string::<i32>().value(row).to_string(),
                _ => id.clone(),
            };
            return Ok(RawRow {
                id,
                label,
                payload: Payload::Pixels(values),
            });
        }
        let image = images.as_binary::<i64>();
        if image.is_null(at) {
            return Err(reject(
                "read: image has no embedded bytes (only a path); embed the images".into(),
            ));
        }
        Ok(RawRow {
            id,
            label,
            payload: Payload::Encoded(image.value(at).to_vec()),
        })
    }
}

/// `parquet`: Parquet image tables, one file or a folder of them: the Hugging Face datasets
/// layout (`image` as `{bytes, path}` or binary, optional integer `label`) or ldae's decoded
/// pixel tables (`id`, `label`, `pixels`). Detected from a `.parquet` name, a folder holding
/// `.parquet` files (or a `data/` folder of them, as a Hugging Face dataset repository does),
/// or an ldae table folder.
#[derive(
    Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct ParquetFormat {
    /// Read only this split of a Hugging Face dataset: its files (`SPLIT-00000-of-00004.parquet`,
    /// `SPLIT.parquet`) or the files under a folder named `SPLIT`. A folder holding several
    /// splits' files is refused without it, rather than read as one table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
}

impl FormatConfig for ParquetFormat {
    const NAME: &'static str = "parquet";
    fn sniff(input: &Probe<'_>) -> Result<Option<u8>> {
        // A Hugging Face dataset repository keeps its Parquet files under `data/`.
        let hub_data = |dir: &Path| {
            std::fs::read_dir(dir.join("data")).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().ends_with(".parquet"))
            })
        };
        let table = input.is_dir()
            && (ldae_pipeline::table::is_table(Path::new(input.input()))
                || input.has_entry(|n| n.ends_with(".parquet"))?
                || hub_data(Path::new(input.input())));
        let file = input.is_file() && input.file_name().ends_with(".parquet");
        Ok((table || file).then_some(30))
    }
    fn open(&self, input: &str) -> Result<Box<dyn RowReader>> {
        Ok(Box::new(ParquetReader::open_split(
            Path::new(input),
            self.split.as_deref(),
        )?))
    }
}

crate::register_format!(ParquetFormat);

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch, StringArray, UInt8Array};
    use arrow::datatypes::{Field, Schema};
    use ldae_pipeline::columns::{tensor_array, tensor_field};
    use ldae_pipeline::tensor_bytes::{stored_schema, to_storage, TensorStorage};
    use std::sync::Arc;

    /// A pixel table of `n` 8x8 RGB rows (row `i` all `i`) in row groups of 2 rows.
    fn pixel_table(path: &Path, n: usize) {
        pixel_table_stored(path, n, TensorStorage::List)
    }

    /// [`pixel_table`] with its pixels stored as `storage`.
    fn pixel_table_stored(path: &Path, n: usize, storage: TensorStorage) {
        let shape = [8, 8, 3];
        let values: Vec<u8> = (0..n).flat_map(|i| vec![i as u8; 192]).collect();
        let pixels = tensor_array(Arc::new(UInt8Array::from(values)), &shape).unwrap();
        let ids: Vec<String> = (0..n).map(|i| format!("r{i}")).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("label", DataType::Int64, true),
            tensor_field("pixels", DataType::UInt8, &shape),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(ids)),
                Arc::new(Int64Array::from(vec![0i64; n])),
                Arc::new(pixels),
            ],
        )
        .unwrap();
        let stored = stored_schema(&schema, storage);
        let batch = to_storage(&batch, &stored).unwrap();
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(2))
            .build();
        let file = File::create(path).unwrap();
        let mut w = parquet::arrow::ArrowWriter::try_new(file, stored, Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn row_groups_are_the_blocks_a_shuffle_keeps_to() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        pixel_table(&path, 5);
        let mut reader = ParquetReader::open(&path).unwrap();
        let blocks = reader.blocks().unwrap();
        assert_eq!(blocks.rows, vec![2, 2, 1]);
        // Groups of two 192-byte rows: all of them fit in memory at once.
        assert!(blocks.resident >= 3, "{blocks:?}");
        assert!(
            reader.group_bytes.iter().all(|&b| b >= 192),
            "{:?}",
            reader.group_bytes
        );
        // Read in batches of about READ_BATCH_BYTES, every row comes back whole.
        for i in [4, 0, 3, 1, 2] {
            let row = reader.read(i).unwrap();
            match row.payload {
                Payload::Pixels(p) => assert_eq!(p.as_slice(), [i as u8; 192]),
                _ => panic!("row {i} is not pixels"),
            }
        }
    }

    #[test]
    fn pixels_stored_as_bytes_read_as_the_rows_stored_as_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let (lists, bytes) = (dir.path().join("l.parquet"), dir.path().join("b.parquet"));
        pixel_table_stored(&lists, 5, TensorStorage::List);
        pixel_table_stored(&bytes, 5, TensorStorage::Bytes);
        let mut lists = ParquetReader::open(&lists).unwrap();
        let mut bytes = ParquetReader::open(&bytes).unwrap();
        assert_eq!(bytes.pixel_shape(), Some([8, 8, 3]));
        for i in [3, 0, 4, 1, 2] {
            let (l, b) = (lists.read(i).unwrap(), bytes.read(i).unwrap());
            assert_eq!((&l.id, l.label), (&b.id, b.label));
            match (l.payload, b.payload) {
                (Payload::Pixels(l), Payload::Pixels(b)) => {
                    assert_eq!(b.as_slice(), [i as u8; 192]);
                    assert_eq!(l, b);
                }
                _ => panic!("row {i} is not pixels"),
            }
        }
    }

    #[test]
    fn prefetch_decodes_every_group_the_next_batch_needs_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        pixel_table(&path, 9);
        let mut reader = ParquetReader::open(&path).unwrap();
        let order = [4, 0, 8, 5, 1];
        // The next batch is rows 4, 0 and 8: groups 2, 0 and 4, decoded together.
        reader.prefetch(&order, 3);
        for g in [2, 0, 4] {
            assert!(reader.cache.contains(g), "group {g} not decoded");
        }
        // Nothing to do while the next batch's groups are there (row 5 is in group 2).
        reader.prefetch(&order[3..4], 1);
        for &i in &order {
            match reader.read(i).unwrap().payload {
                Payload::Pixels(p) => assert_eq!(p.as_slice(), [i as u8; 192]),
                _ => panic!("row {i} is not pixels"),
            }
        }
    }

    #[test]
    fn a_folder_of_several_splits_is_refused_unless_one_is_chosen() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        pixel_table(&data.join("train-00000-of-00002.parquet"), 3);
        pixel_table(&data.join("train-00001-of-00002.parquet"), 2);
        pixel_table(&data.join("test-00000-of-00001.parquet"), 4);
        let mixed = ParquetReader::open(dir.path()).err().unwrap().chain();
        assert!(mixed.contains("several splits (test, train)"), "{mixed}");
        let train = ParquetReader::open_split(dir.path(), Some("train")).unwrap();
        assert_eq!(train.len(), 5);
        let test = ParquetReader::open_split(&data, Some("test")).unwrap();
        assert_eq!(test.len(), 4);
        let none = ParquetReader::open_split(dir.path(), Some("validation"))
            .err()
            .unwrap();
        assert!(
            none.chain().contains("splits found: test, train"),
            "{}",
            none.chain()
        );
        // The Hub's Parquet conversion: a folder per split.
        let hub = tempfile::tempdir().unwrap();
        for (split, rows) in [("train", 3), ("validation", 2)] {
            std::fs::create_dir_all(hub.path().join("default").join(split)).unwrap();
            pixel_table(
                &hub.path().join("default").join(split).join("0000.parquet"),
                rows,
            );
        }
        let mixed = ParquetReader::open(hub.path()).err().unwrap().chain();
        assert!(
            mixed.contains("several splits (train, validation)"),
            "{mixed}"
        );
        let validation = ParquetReader::open_split(hub.path(), Some("validation")).unwrap();
        assert_eq!(validation.len(), 2);
        // One split's files alone need no choice; nor do names that are not split shards.
        assert_eq!(
            ParquetReader::open(&hub.path().join("default/train"))
                .unwrap()
                .len(),
            3
        );
        let parts = tempfile::tempdir().unwrap();
        pixel_table(&parts.path().join("part-00000-c000.parquet"), 2);
        pixel_table(&parts.path().join("part-00001-c000.parquet"), 2);
        assert_eq!(ParquetReader::open(parts.path()).unwrap().len(), 4);
    }
}
