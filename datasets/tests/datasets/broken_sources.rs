//! Broken variants of every source format, generated here: each is read to the end within a few
//! seconds (a hang fails the test), never panics, and either fails with one clear error naming
//! the file, or accounts for every row: rows in = rows out + rows rejected, each rejection
//! naming its row.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    Array, ArrayRef, BinaryArray, FixedSizeListArray, Float64Array, Int64Array, LargeStringArray,
    StringArray, StringViewArray, StructArray, UInt64Array, UInt8Array,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use ldae_datasets::{open, SourceOptions};
use ldae_pipeline::columns::{tensor_array, tensor_field};

/// What reading a source to the end gave.
#[derive(Debug)]
struct Outcome {
    /// Rows the source planned to read.
    rows_in: usize,
    /// (id, label) of every row that came out.
    rows: Vec<(String, Option<i64>)>,
    /// (id, message) of every rejected row.
    rejected: Vec<(String, String)>,
}

/// Open `input` and read it to the end on another thread, failing the test if that takes more
/// than 10 s. `Err` is the open error's text.
fn read_all(input: &Path, options: SourceOptions) -> Result<Outcome, String> {
    let input = input.to_str().unwrap().to_string();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = (|| -> Result<Outcome, String> {
            let mut source = open(&input, &options).map_err(|e| e.chain())?;
            let rows_in = source.total_rows().unwrap() as usize;
            let mut rows = Vec::new();
            let mut rejected = Vec::new();
            while let Some(p) = source.next_batch() {
                let p = p.map_err(|e| e.chain())?;
                let ids = p.batch.column_by_name("id").unwrap();
                let ids = arrow::array::AsArray::as_string::<i32>(ids);
                let labels = p.batch.column_by_name("label").unwrap();
                let labels =
                    arrow::array::AsArray::as_primitive::<arrow::datatypes::Int64Type>(labels);
                for i in 0..p.batch.num_rows() {
                    let label = labels.is_valid(i).then(|| labels.value(i));
                    rows.push((ids.value(i).to_string(), label));
                }
                rejected.extend(p.rejected.into_iter().map(|r| (r.id, r.message)));
            }
            Ok(Outcome {
                rows_in,
                rows,
                rejected,
            })
        })();
        let _ = tx.send(result);
    });
    let outcome = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("reading the source finished within 10 s (no hang)")?;
    assert_eq!(
        outcome.rows_in,
        outcome.rows.len() + outcome.rejected.len(),
        "rows in = rows out + rows rejected: {outcome:?}"
    );
    Ok(outcome)
}

fn opts() -> SourceOptions {
    SourceOptions {
        batch_size: Some(4),
        ..SourceOptions::default()
    }
}

fn expect_error(input: &Path, needles: &[&str]) -> String {
    let err = read_all(input, opts()).expect_err("a clear error");
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    err
}

fn png(value: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([value, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

// ---------------------------------------------------------------- IDX

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        out.extend(d.to_be_bytes());
    }
    out.extend(data);
    out
}

fn gz(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[test]
fn idx_broken_headers_are_one_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        (
            "truncated-images-idx3-ubyte",
            idx(&[3, 4, 4], &[1; 40]),
            &["truncated", "48"],
        ),
        (
            "magic-images-idx3-ubyte",
            b"\x12\x34\x08\x03rest".to_vec(),
            &["magic"],
        ),
        (
            "float-images-idx3-ubyte",
            vec![0, 0, 0x0d, 3, 0, 0],
            &["0x0d"],
        ),
        (
            "overflow-images-idx3-ubyte",
            idx(&[u32::MAX, u32::MAX, u32::MAX], &[0; 16]),
            &["overflow"],
        ),
        (
            "zero-images-idx3-ubyte",
            idx(&[5, 0, 4], &[]),
            &["[5, 0, 4]"],
        ),
        ("none-images-idx3-ubyte", idx(&[0, 4, 4], &[]), &["no rows"]),
        (
            "header-images-idx3-ubyte",
            vec![0, 0, 8, 3, 0, 0, 0],
            &["truncated header"],
        ),
        ("empty-images-idx3-ubyte", vec![], &["magic"]),
    ];
    for (name, bytes, needles) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let mut all = needles.to_vec();
        all.push(name);
        expect_error(&path, &all);
        // The same inside gzip.
        let gz_path = dir.path().join(format!("{name}.gz"));
        std::fs::write(&gz_path, gz(&bytes)).unwrap();
        let mut all = needles.to_vec();
        all.push(name);
        expect_error(&gz_path, &all);
    }
    // A gzip stream cut short is an error naming the file.
    let cut = dir.path().join("cut-images-idx3-ubyte.gz");
    let whole = gz(&idx(&[50, 8, 8], &[7; 3200]));
    std::fs::write(&cut, &whole[..whole.len() / 2]).unwrap();
    expect_error(&cut, &["cut-images-idx3-ubyte.gz"]);
}

#[test]
fn idx_labels_shorter_than_images_or_outside_the_classes() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("train-images-idx3-ubyte");
    std::fs::write(&images, idx(&[3, 2, 2], &[9; 12])).unwrap();
    let labels = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&labels, idx(&[2], &[1, 2])).unwrap();
    expect_error(&images, &["train-labels-idx1-ubyte", "3 images"]);
    std::fs::write(&labels, idx(&[3], &[1])).unwrap();
    expect_error(&images, &["train-labels-idx1-ubyte", "truncated"]);

    // Fashion-MNIST names 10 classes: a label byte of 200 is a rejected row, not class 200.
    let fashion = dir.path().join("fashion");
    std::fs::create_dir(&fashion).unwrap();
    let images = fashion.join("train-images-idx3-ubyte");
    std::fs::write(&images, idx(&[3, 2, 2], &[9; 12])).unwrap();
    std::fs::write(
        fashion.join("train-labels-idx1-ubyte"),
        idx(&[3], &[1, 200, 9]),
    )
    .unwrap();
    let out = read_all(&images, opts()).unwrap();
    assert_eq!(
        out.rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        [Some(1), Some(9)]
    );
    assert_eq!(out.rejected.len(), 1);
    let (id, message) = &out.rejected[0];
    assert_eq!(id, "train-images-idx3-ubyte:1");
    assert!(
        message.contains("label 200") && message.contains("10 classes"),
        "{message}"
    );
}

// ---------------------------------------------------------------- CIFAR

const RECORD: usize = 1 + 3 * 32 * 32;

fn cifar_records(labels: &[u8]) -> Vec<u8> {
    labels
        .iter()
        .flat_map(|&l| {
            let mut r = vec![l];
            r.extend(std::iter::repeat_n(l.wrapping_mul(3), RECORD - 1));
            r
        })
        .collect()
}

#[test]
fn cifar_partial_record_and_bad_label_are_rejected_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data_batch_1.bin");
    let mut bytes = cifar_records(&[3, 200, 9]);
    bytes.extend(cifar_records(&[4])[..1000].iter());
    std::fs::write(&path, &bytes).unwrap();
    let out = read_all(&path, opts()).unwrap();
    assert_eq!(out.rows_in, 4);
    assert_eq!(
        out.rows,
        [
            ("data_batch_1.bin:0".to_string(), Some(3)),
            ("data_batch_1.bin:2".to_string(), Some(9))
        ]
    );
    let messages: Vec<&str> = out.rejected.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(out.rejected[0].0, "data_batch_1.bin:1");
    assert!(messages[0].contains("label 200"), "{messages:?}");
    assert_eq!(out.rejected[1].0, "data_batch_1.bin:3");
    assert!(
        messages[1].contains("partial record") && messages[1].contains("1000 of 3073"),
        "{messages:?}"
    );

    // Nothing but a partial record: one rejected row; an empty file: an error.
    std::fs::write(&path, &bytes[..10]).unwrap();
    let out = read_all(&path, opts()).unwrap();
    assert_eq!((out.rows.len(), out.rejected.len()), (0, 1));
    std::fs::write(&path, b"").unwrap();
    expect_error(&path, &["data_batch_1.bin", "no rows"]);
}

// ---------------------------------------------------------------- WebDataset

/// A tar of `(member name, bytes)` in order, written with the `tar` crate.
fn tar_bytes(members: &[(&[u8], Vec<u8>)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.as_ustar_mut().unwrap().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        b.append(&h, &data[..]).unwrap();
    }
    b.into_inner().unwrap()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Offset of member `index`'s header in a tar made by [`tar_bytes`] (each member: one header
/// block plus its data padded to 512).
fn header_offset(members: &[(&[u8], Vec<u8>)], index: usize) -> usize {
    members[..index]
        .iter()
        .map(|(_, d)| 512 + d.len().div_ceil(512) * 512)
        .sum()
}

/// Rewrite the size field of the header at `at` and fix its checksum, as a writer with a
/// wrong size would have.
fn lie_about_size(tar: &mut [u8], at: usize, size: u64) {
    let header = &mut tar[at..at + 512];
    let field = format!("{size:011o}\0");
    header[124..136].copy_from_slice(field.as_bytes());
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| b as u32).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

#[test]
fn webdataset_truncated_member_is_a_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(&[u8], Vec<u8>)> = vec![
        (b"a.png", png(1)),
        (b"a.cls", b"1".to_vec()),
        (b"b.png", png(2)),
        (b"b.cls", b"2".to_vec()),
        (b"c.cls", b"3".to_vec()),
        (b"c.png", vec![5; 3000]),
    ];
    let tar = tar_bytes(&members);
    // Cut in the middle of c.png's data.
    let cut = header_offset(&members, 5) + 512 + 1000;
    let path = write(dir.path(), "cut.tar", &tar[..cut]);
    let out = read_all(&path, opts()).unwrap();
    assert_eq!(
        out.rows,
        [("cut.tar:a".into(), Some(1)), ("cut.tar:b".into(), Some(2))]
    );
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, "cut.tar:c");
    assert!(
        out.rejected[0].1.contains("c.png") && out.rejected[0].1.contains("cut off"),
        "{:?}",
        out.rejected
    );
    // Cut inside a header block: the members before it are kept, the partial header is no row.
    let path = write(
        dir.path(),
        "cut2.tar",
        &tar[..header_offset(&members, 2) + 100],
    );
    let result = read_all(&path, opts());
    match result {
        Ok(out) => assert_eq!(out.rows.len(), 1, "{out:?}"),
        Err(e) => assert!(e.contains("cut2.tar"), "{e}"),
    }
}

#[test]
fn webdataset_lying_size_header_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(&[u8], Vec<u8>)> = vec![
        (b"a.png", vec![1; 1500]),
        (b"b.png", vec![2; 700]),
        (b"c.png", vec![3; 700]),
    ];
    let good = tar_bytes(&members);
    for (case, size) in [("smaller", 100u64), ("larger", 1600)] {
        let mut tar = good.clone();
        lie_about_size(&mut tar, 0, size);
        let path = write(dir.path(), &format!("{case}.tar"), &tar);
        expect_error(&path, &[&format!("{case}.tar"), "corrupt tar"]);
    }
    // A size that runs past the end of the file: the member is a rejected row, and there is
    // no giant allocation.
    let mut tar = good.clone();
    lie_about_size(&mut tar, header_offset(&members, 2), 4 << 30);
    let path = write(dir.path(), "huge.tar", &tar);
    let out = read_all(&path, opts()).unwrap();
    assert_eq!(out.rows.len(), 2);
    assert_eq!(out.rejected[0].0, "huge.tar:c");
}

#[test]
fn webdataset_labels_keys_and_empty_members() {
    let dir = tempfile::tempdir().unwrap();
    let members: Vec<(&[u8], Vec<u8>)> = vec![
        (b"x/a\xff.png", png(1)),
        (b"x/a\xff.cls", b"1".to_vec()),
        (b"x/a\xfe.png", png(2)),
        (b"x/a\xfe.cls", b"2".to_vec()),
        (b"nolabel.png", png(3)),
        (b"labelonly.cls", b"4".to_vec()),
        (b"empty.png", vec![]),
        (b"empty.cls", b"5".to_vec()),
        (b"dup.png", png(6)),
        (b"dup.cls", b"6".to_vec()),
        (b"dup.png", png(7)),
        (b"neg.png", png(8)),
        (b"neg.cls", b"-3".to_vec()),
        (b"word.png", png(9)),
        (b"word.cls", b"cat".to_vec()),
        (b"meta.json", b"{}".to_vec()),
    ];
    let path = write(dir.path(), "s.tar", &tar_bytes(&members));
    let out = read_all(&path, opts()).unwrap();
    let ids: Vec<&str> = out.rows.iter().map(|r| r.0.as_str()).collect();
    // Keys that differ only in invalid UTF-8 bytes stay two samples, with lossless ids; the
    // 0-byte image is passed on (decode rejects it, naming it).
    assert_eq!(
        ids,
        ["s.tar:x/a%FF", "s.tar:x/a%FE", "s.tar:empty", "s.tar:dup"]
    );
    let rejected: Vec<(&str, &str)> = out
        .rejected
        .iter()
        .map(|(i, m)| (i.as_str(), m.as_str()))
        .collect();
    let find = |id: &str| {
        rejected
            .iter()
            .find(|r| r.0 == id)
            .unwrap_or_else(|| panic!("{id} not rejected: {rejected:?}"))
            .1
    };
    assert!(find("s.tar:nolabel").contains("no .cls label"));
    assert!(find("s.tar:labelonly").contains("no .jpg/.jpeg/.png image"));
    assert!(find("s.tar:dup (duplicate)").contains("repeats key 'dup'"));
    assert!(find("s.tar:neg").contains("negative"));
    assert!(find("s.tar:word").contains("not an integer"));
    assert_eq!(rejected.len(), 5);
}

#[test]
fn webdataset_empty_or_garbage_shard_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let empty = write(dir.path(), "empty.tar", &tar_bytes(&[]));
    expect_error(&empty, &["empty.tar", "no rows"]);
    let zero = write(dir.path(), "zero.tar", b"");
    expect_error(&zero, &["zero.tar", "no rows"]);
    let garbage = write(dir.path(), "garbage.tar", &[b'x'; 2000]);
    expect_error(&garbage, &["garbage.tar"]);
}

// ---------------------------------------------------------------- Parquet

fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>) {
    let fields: Vec<Field> = columns
        .iter()
        .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
        .collect();
    write_batch(
        path,
        RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns.into_iter().map(|c| c.1).collect(),
        )
        .unwrap(),
    );
}

fn write_batch(path: &Path, batch: RecordBatch) {
    let file = std::fs::File::create(path).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

fn hf_images(n: usize) -> ArrayRef {
    let bytes: BinaryArray = (0..n)
        .map(|i| Some(png(i as u8)))
        .collect::<Vec<_>>()
        .into_iter()
        .collect();
    Arc::new(bytes)
}

#[test]
fn parquet_label_columns_of_the_wrong_type_are_one_error() {
    let dir = tempfile::tempdir().unwrap();
    let floats = dir.path().join("floats.parquet");
    write_parquet(
        &floats,
        vec![
            ("image", hf_images(3)),
            ("label", Arc::new(Float64Array::from(vec![0.0, 2.7, 1.0]))),
        ],
    );
    expect_error(
        &floats,
        &["floats.parquet", "'label'", "Float64", "integers"],
    );
    let words = dir.path().join("words.parquet");
    write_parquet(
        &words,
        vec![
            ("image", hf_images(2)),
            ("label", Arc::new(StringArray::from(vec!["cat", "dog"]))),
        ],
    );
    expect_error(&words, &["words.parquet", "'label'", "Utf8"]);
    let paths = dir.path().join("paths.parquet");
    write_parquet(
        &paths,
        vec![("image", Arc::new(StringArray::from(vec!["a.jpg", "b.jpg"])))],
    );
    expect_error(&paths, &["paths.parquet", "'image'", "binary"]);
    let none = dir.path().join("none.parquet");
    write_parquet(&none, vec![("picture", hf_images(2))]);
    expect_error(&none, &["none.parquet", "no 'image'"]);
}

#[test]
fn parquet_bad_values_reject_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    // Struct {bytes, path} with a null image, labels from a u64 column with one value above
    // i64::MAX and one outside the named classes.
    let bytes: BinaryArray = vec![Some(png(1)), None, Some(png(3)), Some(png(4))]
        .into_iter()
        .collect();
    let paths = StringArray::from(vec![Some("a"), Some("b"), Some("c"), Some("d")]);
    let image = StructArray::from(vec![
        (
            Arc::new(Field::new("bytes", DataType::Binary, true)),
            Arc::new(bytes) as ArrayRef,
        ),
        (
            Arc::new(Field::new("path", DataType::Utf8, true)),
            Arc::new(paths) as ArrayRef,
        ),
    ]);
    let labels = UInt64Array::from(vec![Some(1), Some(0), Some(u64::MAX), Some(7)]);
    let fields = vec![
        Field::new("image", image.data_type().clone(), true),
        Field::new("label", DataType::UInt64, true),
    ];
    let meta = std::collections::HashMap::from([(
        "huggingface".to_string(),
        r#"{"info":{"features":{"label":{"names":["a","b","c"]}}}}"#.to_string(),
    )]);
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new_with_metadata(fields, meta)),
        vec![Arc::new(image), Arc::new(labels)],
    )
    .unwrap();
    write_batch(&path, batch);
    let out = read_all(&path, opts()).unwrap();
    assert_eq!(out.rows, [("t.parquet:0".into(), Some(1))]);
    let messages: Vec<&str> = out.rejected.iter().map(|r| r.1.as_str()).collect();
    assert!(messages[0].contains("no embedded bytes"), "{messages:?}");
    assert!(
        messages[1].contains("does not fit in int64"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("label 7") && messages[2].contains("3 classes"),
        "{messages:?}"
    );
}

/// A decoded-pixel table (ldae's own layout) whose `id` column is `ids`.
fn pixel_table(path: &Path, ids: ArrayRef) {
    let n = ids.len();
    let values = UInt8Array::from(vec![7u8; n * 2 * 2]);
    let field = tensor_field("pixels", DataType::UInt8, &[2, 2, 1]);
    let pixels: FixedSizeListArray = tensor_array(Arc::new(values), &[2, 2, 1]).unwrap();
    let label = Int64Array::from(vec![0i64; n]);
    let fields = vec![
        Field::new("id", ids.data_type().clone(), true),
        Field::new("label", DataType::Int64, true),
        field,
    ];
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        vec![ids, Arc::new(label), Arc::new(pixels)],
    )
    .unwrap();
    write_batch(path, batch);
}

#[test]
fn parquet_pixel_tables_read_ids_of_any_text_or_integer_type() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, ArrayRef)> = vec![
        (
            "large.parquet",
            Arc::new(LargeStringArray::from(vec!["p", "q"])),
        ),
        (
            "view.parquet",
            Arc::new(StringViewArray::from(vec!["p", "q"])),
        ),
        ("int.parquet", Arc::new(Int64Array::from(vec![10, 11]))),
    ];
    for (name, ids) in cases {
        let path = dir.path().join(name);
        let expected: Vec<String> = if name == "int.parquet" {
            vec!["10".into(), "11".into()]
        } else {
            vec!["p".into(), "q".into()]
        };
        pixel_table(&path, ids);
        let out = read_all(&path, opts()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids: Vec<String> = out.rows.into_iter().map(|r| r.0).collect();
        assert_eq!(ids, expected, "{name}");
    }
}

#[test]
fn parquet_empty_or_truncated_tables_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.parquet");
    write_parquet(&empty, vec![("image", hf_images(0))]);
    expect_error(&empty, &["empty.parquet", "no rows"]);
    let good = dir.path().join("good.parquet");
    write_parquet(&good, vec![("image", hf_images(5))]);
    let bytes = std::fs::read(&good).unwrap();
    let cut = write(dir.path(), "cut.parquet", &bytes[..bytes.len() / 2]);
    expect_error(&cut, &["cut.parquet"]);
    // Corrupt data pages (the footer intact): every row of the row group is rejected with the
    // reason, and the group is decoded once, not once per row.
    let mut bad = bytes.clone();
    for b in &mut bad[8..bytes.len() / 2] {
        *b ^= 0x5a;
    }
    let bad = write(dir.path(), "bad.parquet", &bad);
    match read_all(&bad, opts()) {
        Ok(out) => {
            assert_eq!(out.rejected.len(), 5, "{out:?}");
            assert!(out.rejected.iter().all(|r| r.1.contains("bad.parquet")));
        }
        Err(e) => assert!(e.contains("bad.parquet"), "{e}"),
    }
}

// ---------------------------------------------------------------- Folders

#[test]
fn folder_links_back_up_neither_loop_nor_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("flat");
    std::fs::create_dir(&root).unwrap();
    for i in 0..8 {
        std::fs::write(root.join(format!("{i}.png")), png(i)).unwrap();
    }
    std::os::unix::fs::symlink(".", root.join("self")).unwrap();
    std::os::unix::fs::symlink(".", root.join("again")).unwrap();
    // Two links pointing at each other, one of them named like an image.
    std::os::unix::fs::symlink("loop-b.jpg", root.join("loop-a")).unwrap();
    std::os::unix::fs::symlink("loop-a", root.join("loop-b.jpg")).unwrap();
    let out = read_all(&root, opts()).unwrap();
    let mut ids: Vec<&str> = out.rows.iter().map(|r| r.0.as_str()).collect();
    ids.sort();
    assert_eq!(
        ids,
        ["0.png", "1.png", "2.png", "3.png", "4.png", "5.png", "6.png", "7.png"]
    );
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, "loop-b.jpg");

    // With classes: a class folder linked under another name is one class, read once.
    let classes = dir.path().join("classes");
    for class in ["ant", "cat"] {
        std::fs::create_dir_all(classes.join(class)).unwrap();
        std::fs::write(classes.join(class).join("1.png"), png(1)).unwrap();
    }
    std::os::unix::fs::symlink("cat", classes.join("kitten")).unwrap();
    std::os::unix::fs::symlink("..", classes.join("cat").join("up")).unwrap();
    let source = open(classes.to_str().unwrap(), &opts()).unwrap();
    assert_eq!(
        ldae_pipeline::columns::class_names(&source.schema()),
        Some(vec!["ant".to_string(), "cat".to_string()])
    );
    let out = read_all(&classes, opts()).unwrap();
    assert_eq!(
        out.rows,
        [("ant/1.png".into(), Some(0)), ("cat/1.png".into(), Some(1))]
    );
}

#[test]
fn folder_fifo_and_directory_named_like_images() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cls");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("a.png"), png(1)).unwrap();
    let fifo = root.join("fifo.jpg");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // A directory named x.jpg is a folder of the tree, not an image.
    std::fs::create_dir(root.join("x.jpg")).unwrap();
    std::fs::write(root.join("x.jpg").join("b.png"), png(2)).unwrap();
    let out = read_all(dir.path(), opts()).unwrap();
    let ids: Vec<&str> = out.rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(ids, ["cls/a.png", "cls/x.jpg/b.png"]);
    assert_eq!(out.rejected.len(), 1);
    assert_eq!(out.rejected[0].0, "cls/fifo.jpg");
    assert!(out.rejected[0].1.contains("FIFO"), "{:?}", out.rejected);
}

#[test]
fn folder_non_utf8_names_are_read_with_distinct_ids() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for (i, name) in [&b"a\xff.png"[..], b"a\xfe.png", b"a%FF.png"]
        .iter()
        .enumerate()
    {
        std::fs::write(root.join(std::ffi::OsStr::from_bytes(name)), png(i as u8)).unwrap();
    }
    let out = read_all(root, opts()).unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);
    let mut ids: Vec<&str> = out.rows.iter().map(|r| r.0.as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["a%25FF.png", "a%FE.png", "a%FF.png"]);
}

#[test]
fn empty_inputs_and_nonsense_options_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    expect_error(dir.path(), &["no image files"]);
    let err = read_all(Path::new("synthetic:0"), opts()).unwrap_err();
    assert!(err.contains("no rows"), "{err}");
    let limit0 = SourceOptions {
        limit: Some(0),
        ..opts()
    };
    let err = read_all(Path::new("synthetic:10"), limit0).unwrap_err();
    assert!(err.contains("limit 0"), "{err}");
    let batch0 = SourceOptions {
        batch_size: Some(0),
        ..opts()
    };
    let err = read_all(Path::new("synthetic:10"), batch0).unwrap_err();
    assert!(err.contains("batch size 0"), "{err}");
    // A huge synthetic count with a limit reads only the limit.
    let limited = SourceOptions {
        limit: Some(8),
        ..opts()
    };
    let out = read_all(Path::new("synthetic:18446744073709551615"), limited).unwrap();
    assert_eq!(out.rows.len(), 8);
}

/// Members read ahead several at once (`prefetch`) are the members read one by one, broken
/// samples included, whatever the order over the shards.
#[test]
fn webdataset_members_read_ahead_are_the_members_read_one_by_one() {
    use ldae_datasets::webdataset::WebDatasetReader;
    use ldae_datasets::{Payload, RowReader};
    let dir = tempfile::tempdir().unwrap();
    for shard in 0..3u8 {
        let mut members: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for i in 0..30u8 {
            members.push((
                format!("s{i}.png").into_bytes(),
                png(i.wrapping_mul(7) ^ shard),
            ));
            let label = if i % 11 == 5 {
                "x".to_string()
            } else {
                (i % 4).to_string()
            };
            members.push((format!("s{i}.cls").into_bytes(), label.into_bytes()));
        }
        members.push((b"nolabel.png".to_vec(), png(1)));
        let members: Vec<(&[u8], Vec<u8>)> = members
            .iter()
            .map(|(n, d)| (n.as_slice(), d.clone()))
            .collect();
        write(
            dir.path(),
            &format!("shard-{shard}.tar"),
            &tar_bytes(&members),
        );
    }
    let mut one_by_one = WebDatasetReader::open(dir.path()).unwrap();
    let mut ahead = WebDatasetReader::open(dir.path()).unwrap();
    let n = one_by_one.len();
    // A shuffled order over the three shards, read in batches of 5.
    let order: Vec<usize> = (0..n).map(|i| (i * 37) % n).collect();
    let outcome = |r: Result<ldae_datasets::RawRow, ldae_pipeline::Rejection>| match r {
        Ok(row) => match row.payload {
            Payload::Encoded(bytes) => Ok((row.id, row.label, bytes)),
            Payload::Pixels(_) => panic!("pixels from a WebDataset"),
        },
        Err(rejection) => Err((rejection.id, rejection.message)),
    };
    let mut rejected = 0;
    for (at, &index) in order.iter().enumerate() {
        if at % 5 == 0 {
            ahead.prefetch(&order[at..], 5);
        }
        let expected = outcome(one_by_one.read(index));
        rejected += expected.is_err() as usize;
        assert_eq!(outcome(ahead.read(index)), expected, "sample {index}");
    }
    assert_eq!(
        rejected,
        3 * (3 + 1),
        "the broken labels and the unlabelled samples"
    );
}
