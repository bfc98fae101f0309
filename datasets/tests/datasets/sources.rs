//! Every source kind on small generated data: ids, labels, class names, order, limit, shards.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, AsArray, BinaryArray, Int64Array, StringArray, StructArray};
use arrow::datatypes::{DataType, Field, Int64Type, Schema};
use arrow::record_batch::RecordBatch;
use ldae_datasets::{open, Format, Shard, SourceOptions};
use ldae_pipeline::columns::{self, class_names, tensor_type};
use ldae_pipeline::Source;

/// One row: id, label, payload bytes or pixels.
type Row = (String, Option<i64>, Vec<u8>);

/// All rows of a source plus the rejected ids.
fn drain(mut source: Box<dyn Source>) -> (Vec<Row>, Vec<String>) {
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    while let Some(p) = source.next_batch() {
        let p = p.unwrap();
        rejected.extend(p.rejected.into_iter().map(|r| r.id));
        let b = p.batch;
        let ids = b.column_by_name("id").unwrap().as_string::<i32>().clone();
        let labels = b
            .column_by_name("label")
            .unwrap()
            .as_primitive::<Int64Type>()
            .clone();
        for i in 0..b.num_rows() {
            let payload = if let Some(img) = b.column_by_name("image") {
                img.as_binary::<i32>().value(i).to_vec()
            } else {
                let px = b.column_by_name("pixels").unwrap().as_fixed_size_list();
                px.value(i)
                    .as_primitive::<arrow::datatypes::UInt8Type>()
                    .values()
                    .to_vec()
            };
            let label = (!labels.is_null(i)).then(|| labels.value(i));
            rows.push((ids.value(i).to_string(), label, payload));
        }
    }
    (rows, rejected)
}

fn png(value: u8) -> Vec<u8> {
    let img = image::RgbImage::from_pixel(4, 4, image::Rgb([value, 0, 0]));
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn opts() -> SourceOptions {
    SourceOptions {
        batch_size: Some(3),
        ..SourceOptions::default()
    }
}

#[test]
fn folder_with_classes() {
    let dir = tempfile::tempdir().unwrap();
    for (class, n) in [("cat", 2), ("ant", 3)] {
        std::fs::create_dir_all(dir.path().join(class)).unwrap();
        for i in 0..n {
            std::fs::write(dir.path().join(class).join(format!("{i}.png")), png(i)).unwrap();
        }
    }
    std::fs::write(dir.path().join("cat").join("notes.txt"), "not an image").unwrap();
    let source = open(dir.path().to_str().unwrap(), &opts()).unwrap();
    assert_eq!(source.total_rows(), Some(5));
    assert_eq!(
        class_names(&source.schema()),
        Some(vec!["ant".into(), "cat".into()])
    );
    let (rows, rejected) = drain(source);
    assert!(rejected.is_empty());
    let ids: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    assert_eq!(
        ids,
        [
            "ant/0.png",
            "ant/1.png",
            "ant/2.png",
            "cat/0.png",
            "cat/1.png"
        ]
    );
    assert_eq!(rows[3].1, Some(1));
    assert_eq!(rows[0].2, png(0));
}

#[test]
fn folder_rows_are_each_files_bytes_whatever_the_sizes_before_them() {
    // Read buffers are reused across batches: a small file read after large ones must come
    // back as exactly its own bytes (no tail of an earlier file, no lost bytes).
    let dir = tempfile::tempdir().unwrap();
    let sizes = [70_000usize, 5, 300_000, 1, 0, 120_000, 64, 70_000, 3];
    let contents: Vec<Vec<u8>> = sizes
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    for (i, bytes) in contents.iter().enumerate() {
        std::fs::write(dir.path().join(format!("{i}.jpg")), bytes).unwrap();
    }
    let options = SourceOptions {
        batch_size: Some(2),
        ..SourceOptions::default()
    };
    let (rows, rejected) = drain(open(dir.path().to_str().unwrap(), &options).unwrap());
    assert!(rejected.is_empty());
    assert_eq!(rows.len(), sizes.len());
    for (row, bytes) in rows.iter().zip(&contents) {
        assert_eq!(&row.2, bytes, "{}", row.0);
    }
}

#[test]
fn flat_folder_is_unlabeled() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.PNG"), png(1)).unwrap();
    std::fs::write(dir.path().join("b.jpg"), b"whatever").unwrap();
    let (rows, _) = drain(open(dir.path().to_str().unwrap(), &opts()).unwrap());
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.1.is_none()));
}

fn write_idx(path: &Path, dims: &[u32], data: &[u8], gz: bool) {
    let mut bytes = vec![0, 0, 8, dims.len() as u8];
    for d in dims {
        bytes.extend(d.to_be_bytes());
    }
    bytes.extend(data);
    if gz {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&bytes).unwrap();
        bytes = e.finish().unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn idx_gz_with_labels() {
    let dir = tempfile::tempdir().unwrap();
    let images = dir.path().join("train-images-idx3-ubyte.gz");
    let pixels: Vec<u8> = (0..5 * 2 * 3).map(|i| i as u8).collect();
    write_idx(&images, &[5, 2, 3], &pixels, true);
    write_idx(
        &dir.path().join("train-labels-idx1-ubyte.gz"),
        &[5],
        &[4, 3, 2, 1, 0],
        true,
    );
    let source = open(images.to_str().unwrap(), &opts()).unwrap();
    let field = source
        .schema()
        .field_with_name(columns::PIXELS)
        .unwrap()
        .clone();
    assert_eq!(tensor_type(&field), Some((DataType::UInt8, vec![2, 3, 1])));
    let (rows, _) = drain(source);
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[1].0, "train-images-idx3-ubyte:1");
    assert_eq!(rows[1].1, Some(3));
    assert_eq!(rows[1].2, (6..12).collect::<Vec<u8>>());
}

#[test]
fn cifar_binary_is_converted_to_hwc() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for label in [7u8, 2] {
        bytes.push(label);
        for c in 0..3u8 {
            bytes.extend(std::iter::repeat_n(c * 10 + label, 1024));
        }
    }
    std::fs::write(dir.path().join("data_batch_1.bin"), &bytes).unwrap();
    std::fs::write(dir.path().join("data_batch_2.bin"), &bytes[..3073]).unwrap();
    let source = open(dir.path().to_str().unwrap(), &opts()).unwrap();
    assert_eq!(class_names(&source.schema()).unwrap()[7], "horse");
    let (rows, _) = drain(source);
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1].0, "data_batch_1.bin:1");
    assert_eq!(rows[1].1, Some(2));
    assert_eq!(&rows[1].2[..6], &[2, 12, 22, 2, 12, 22]);
    assert_eq!(rows[2].0, "data_batch_2.bin:0");
}

#[test]
fn parquet_hf_layout_struct_and_binary() {
    let dir = tempfile::tempdir().unwrap();
    let bytes_field = Field::new("bytes", DataType::Binary, true);
    let path_field = Field::new("path", DataType::Utf8, true);
    let image = StructArray::from(vec![
        (
            Arc::new(bytes_field),
            Arc::new(BinaryArray::from(vec![
                png(1).as_slice(),
                png(2).as_slice(),
                png(3).as_slice(),
            ])) as Arc<dyn Array>,
        ),
        (
            Arc::new(path_field),
            Arc::new(StringArray::from(vec!["a.png", "b.png", "c.png"])) as Arc<dyn Array>,
        ),
    ]);
    let hf = r#"{"info":{"features":{"label":{"names":["x","y"],"_type":"ClassLabel"}}}}"#;
    let schema = Arc::new(Schema::new_with_metadata(
        vec![
            Field::new("image", image.data_type().clone(), true),
            Field::new("label", DataType::Int64, true),
        ],
        [("huggingface".to_string(), hf.to_string())].into(),
    ));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![Arc::new(image), Arc::new(Int64Array::from(vec![0, 1, 0]))],
    )
    .unwrap();
    let file = std::fs::File::create(dir.path().join("train-00000-of-00001.parquet")).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(2))
        .build();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let mut o = opts();
    o.shuffle = true;
    o.seed = 3;
    let source = open(dir.path().to_str().unwrap(), &o).unwrap();
    assert_eq!(
        class_names(&source.schema()),
        Some(vec!["x".into(), "y".into()])
    );
    let (mut rows, _) = drain(source);
    rows.sort();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2].0, "train-00000-of-00001.parquet:2");
    assert_eq!(rows[1].1, Some(1));
    assert_eq!(rows[2].2, png(3));
}

#[test]
fn webdataset_shards() {
    let dir = tempfile::tempdir().unwrap();
    for shard in 0..2 {
        let file = std::fs::File::create(dir.path().join(format!("shard-{shard}.tar"))).unwrap();
        let mut b = tar::Builder::new(file);
        for k in 0..3 {
            let key = format!("s{shard}/sample{k}");
            for (ext, data) in [
                ("png", png(k as u8)),
                ("cls", format!("{}\n", k + shard).into_bytes()),
            ] {
                let mut h = tar::Header::new_gnu();
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_cksum();
                b.append_data(&mut h, format!("{key}.{ext}"), data.as_slice())
                    .unwrap();
            }
        }
        b.finish().unwrap();
    }
    let source = open(dir.path().to_str().unwrap(), &opts()).unwrap();
    assert_eq!(source.total_rows(), Some(6));
    let (rows, _) = drain(source);
    assert_eq!(rows[4].0, "shard-1.tar:s1/sample1");
    assert_eq!(rows[4].1, Some(2));
    assert_eq!(rows[4].2, png(1));
}

#[test]
fn synthetic_limit_shuffle_and_shards() {
    let base = SourceOptions {
        shuffle: true,
        seed: 11,
        limit: Some(40),
        batch_size: Some(7),
        ..SourceOptions::default()
    };
    let (all, _) = drain(open("synthetic:100", &base).unwrap());
    assert_eq!(all.len(), 40);
    let (again, _) = drain(open("synthetic:100", &base).unwrap());
    assert_eq!(all, again);
    let mut union = Vec::new();
    for i in 0..3 {
        let o = SourceOptions {
            shard: Some(Shard { index: i, count: 3 }),
            ..base.clone()
        };
        union.extend(drain(open("synthetic:100", &o).unwrap()).0);
    }
    let mut a: Vec<String> = all.iter().map(|r| r.0.clone()).collect();
    let mut u: Vec<String> = union.iter().map(|r| r.0.clone()).collect();
    a.sort();
    u.sort();
    assert_eq!(a, u);
    let o = SourceOptions {
        format: Some("synthetic".parse::<Format>().unwrap()),
        ..opts()
    };
    assert!(open("synthetic:abc", &o).is_err());
}

#[test]
fn unreadable_file_is_a_rejected_row() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.png"), png(1)).unwrap();
    std::os::unix::fs::symlink(dir.path().join("missing.png"), dir.path().join("b.png")).unwrap();
    let (rows, rejected) = drain(open(dir.path().to_str().unwrap(), &opts()).unwrap());
    assert_eq!(rows.len(), 1);
    assert_eq!(rejected, vec!["b.png".to_string()]);
}
