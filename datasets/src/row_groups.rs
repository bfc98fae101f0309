//! The row groups of a Parquet image table, decoded and kept in memory: how one group is
//! decoded, several at once on their own threads, and the cache that keeps them within a
//! memory budget.

use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::path::Path;

use arrow::array::{ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;

use ldae_pipeline::{columns, Error, Result};

/// The most bytes of one batch read from a row group (see [`GroupToRead::decode`]).
const READ_BATCH_BYTES: usize = 128 << 10;

/// Most row groups decoded at once, one thread each (bounded by the machine's cores).
const MAX_DECODE_THREADS: usize = 16;

/// Threads that decode row groups at once: one per core the process may use, at most
/// [`MAX_DECODE_THREADS`].
pub(crate) fn decode_threads() -> usize {
    ldae_pipeline::cores().clamp(1, MAX_DECODE_THREADS)
}

/// One loaded row group: images (encoded bytes, or pixels), labels and, for pixel tables, ids.
pub(crate) struct Group {
    /// The images in the batches they were read in. Not concatenated: for a pixel table stored
    /// as bytes, copying the whole group into one array took as long as decoding it.
    images: Vec<ArrayRef>,
    /// The group's row of the first image of each of `images`.
    starts: Vec<usize>,
    /// The label column as stored, and cast to int64.
    pub labels: Option<(ArrayRef, ArrayRef)>,
    pub ids: Option<ArrayRef>,
}

impl Group {
    /// The images array holding the group's row `row`, and the row's index in it.
    pub fn image(&self, row: usize) -> (&ArrayRef, usize) {
        let chunk = self.starts.partition_point(|&s| s <= row).saturating_sub(1);
        (&self.images[chunk], row - self.starts[chunk])
    }

    fn bytes(&self) -> usize {
        let optional = |a: Option<&ArrayRef>| a.map_or(0, |a| a.get_array_memory_size());
        let labels = self.labels.as_ref();
        let images: usize = self.images.iter().map(|a| a.get_array_memory_size()).sum();
        images
            + optional(labels.map(|l| &l.0))
            + optional(labels.map(|l| &l.1))
            + optional(self.ids.as_ref())
    }
}

/// What it takes to decode one row group.
pub(crate) struct GroupToRead<'a> {
    pub path: &'a Path,
    /// The row group's index in its file.
    pub row_group: usize,
    /// Leaf columns to read.
    pub projection: &'a [usize],
    pub rows: usize,
    /// Its size decoded (an estimate).
    pub bytes: usize,
    /// Whether the table holds decoded pixels (`id`, `pixels`), not encoded `image` bytes.
    pub pixels: bool,
}

impl GroupToRead<'_> {
    /// Decode the group's columns into one [`Group`].
    pub fn decode(&self) -> Result<Group> {
        let path = self.path;
        let external = |e| Error::external(format!("{}", path.display()), e);
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(external)?;
        let mask = ProjectionMask::leaves(builder.parquet_schema(), self.projection.to_vec());
        // Batches of at most READ_BATCH_BYTES (one row at least): the reader grows a batch's
        // value buffer page by page, and a realloc that cannot grow in place copies it whole,
        // so one batch for a whole group of wide rows copied gigabytes (a 134 MB group of
        // 224 px pixels took 6 s). Small batches were faster still at every width measured.
        let rows = self.rows.max(1);
        let row_bytes = (self.bytes / rows).max(1);
        let reader = builder
            .with_row_groups(vec![self.row_group])
            .with_projection(mask)
            .with_batch_size((READ_BATCH_BYTES / row_bytes).clamp(1, rows))
            .build()
            .map_err(external)?;
        let batches: Vec<RecordBatch> = reader
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::external(format!("{}", path.display()), e))?;
        if batches.is_empty() {
            return Err(Error::corrupt(path, "empty row group"));
        }
        let mut images = Vec::with_capacity(batches.len());
        let mut starts = Vec::with_capacity(batches.len());
        let mut start = 0;
        for batch in &batches {
            images.push(if self.pixels {
                batch
                    .column_by_name(columns::PIXELS)
                    .cloned()
                    .ok_or_else(|| Error::data("no pixels column"))?
            } else {
                encoded_images(batch, path)?
            });
            starts.push(start);
            start += batch.num_rows();
        }
        // The small columns in one array each.
        let column = |name: &str| -> Result<Option<ArrayRef>> {
            let parts: Vec<&dyn arrow::array::Array> = batches
                .iter()
                .filter_map(|b| b.column_by_name(name).map(|c| c.as_ref()))
                .collect();
            if parts.is_empty() {
                return Ok(None);
            }
            Ok(Some(arrow::compute::concat(&parts)?))
        };
        let ids = if self.pixels {
            column(columns::ID)?
        } else {
            None
        };
        let label = column("label")?.map(|l| {
            // The column is an integer type (checked at open); a value that does not fit in
            // int64 (a u64 above 2^63) casts to null, and is told apart from a null label by
            // the original column.
            let cast = arrow::compute::cast(&l, &DataType::Int64);
            cast.map(|c| (l, c))
        });
        let label = label
            .transpose()
            .map_err(|e| Error::external(format!("{}: column 'label'", path.display()), e))?;
        let ids = match ids {
            Some(ids) => Some(arrow::compute::cast(&ids, &DataType::Utf8).map_err(|e| {
                let what = format!(
                    "{}: column 'id' ({}) cannot be read as text",
                    path.display(),
                    ids.data_type()
                );
                Error::external(what, e)
            })?),
            None => None,
        };
        Ok(Group {
            images,
            starts,
            labels: label,
            ids,
        })
    }
}

/// Decode `groups` (keyed by their global index), up to [`decode_threads`] at a time, each on
/// its own thread; results come back in the order given.
pub(crate) fn decode_all(groups: &[(usize, GroupToRead<'_>)]) -> Vec<(usize, Result<Group>)> {
    let mut decoded = Vec::with_capacity(groups.len());
    for round in groups.chunks(decode_threads()) {
        if let [(g, one)] = round {
            decoded.push((*g, one.decode()));
            continue;
        }
        std::thread::scope(|scope| {
            let running: Vec<_> = round
                .iter()
                .map(|(g, group)| (*g, scope.spawn(move || group.decode())))
                .collect();
            for (g, handle) in running {
                let result = handle
                    .join()
                    .unwrap_or_else(|_| Err(Error::msg("decoding the row group panicked")));
                decoded.push((g, result));
            }
        });
    }
    decoded
}

/// An `image` column holds encoded bytes: binary, or a struct with a binary `bytes` field.
pub(crate) fn check_image_type(field: &arrow::datatypes::Field, path: &Path) -> Result<()> {
    let binary = |t: &DataType| {
        matches!(
            t,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
    };
    let ok = match field.data_type() {
        DataType::Struct(fields) => fields
            .iter()
            .any(|f| f.name() == "bytes" && binary(f.data_type())),
        t => binary(t),
    };
    if ok {
        return Ok(());
    }
    Err(Error::corrupt(path, format!("column 'image' is {}; expected encoded image bytes (binary, or a struct with a binary 'bytes' field)", field.data_type())))
}

/// The encoded bytes of a Hugging Face `image` column (a `{bytes, path}` struct or binary).
fn encoded_images(batch: &RecordBatch, path: &Path) -> Result<ArrayRef> {
    let image = batch
        .column_by_name(columns::IMAGE)
        .cloned()
        .ok_or_else(|| Error::data("no image column"))?;
    let image = match image.data_type() {
        DataType::Struct(_) => image
            .as_struct()
            .column_by_name("bytes")
            .cloned()
            .ok_or_else(|| Error::corrupt(path, "'image' struct has no 'bytes' field"))?,
        _ => image,
    };
    Ok(arrow::compute::cast(&image, &DataType::LargeBinary)?)
}

/// Decoded row groups kept in memory, the least recently used evicted first beyond
/// [`GroupCache::BUDGET`] bytes. Reading in shuffled order touches a random row group per row:
/// with one group cached, every row decoded a whole group (a pixel cache of 45,000 CIFAR images
/// read at ~10 rows/s); with the groups kept, each is decoded once while the table fits the
/// budget.
#[derive(Default)]
pub(crate) struct GroupCache {
    groups: HashMap<usize, Group>,
    /// Least recently used first.
    order: VecDeque<usize>,
    bytes: usize,
}

impl GroupCache {
    /// Memory the decoded groups may take.
    pub const BUDGET: usize = 2 << 30;

    pub fn get(&self, g: usize) -> Option<&Group> {
        self.groups.get(&g)
    }

    pub fn contains(&self, g: usize) -> bool {
        self.groups.contains_key(&g)
    }

    /// Mark `g` as the most recently used (so that it is evicted last).
    pub fn touch(&mut self, g: usize) {
        if let Some(at) = self.order.iter().position(|&k| k == g) {
            self.order.remove(at);
            self.order.push_back(g);
        }
    }

    /// Evict the least recently used groups until `bytes` more fit in the budget (or none is
    /// left), so that groups about to be decoded do not add to a full cache.
    pub fn make_room(&mut self, bytes: usize) {
        while self.bytes + bytes > Self::BUDGET {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.groups.remove(&oldest) {
                self.bytes -= old.bytes();
            }
        }
    }

    pub fn insert(&mut self, g: usize, group: Group) {
        let size = group.bytes();
        self.make_room(size);
        self.bytes += size;
        self.order.push_back(g);
        self.groups.insert(g, group);
    }
}
