//! Helpers for the end-to-end tests: run the built `ldae` binary, read its Parquet outputs.

#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

use arrow::array::{AsArray, RecordBatch};
use arrow::datatypes::Float32Type;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// The command `ldae ARGS`, logging warnings only, to adjust before running.
pub fn ldae_command(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ldae"));
    command.args(args).env("LDAE_LOG", "warn");
    command
}

/// Run `ldae ARGS`, logging warnings only.
pub fn ldae(args: &[&str]) -> Output {
    ldae_command(args).output().expect("the ldae binary runs")
}

/// Run `ldae ARGS` and insist that it succeeds; returns stdout.
pub fn ok(args: &[&str]) -> String {
    let out = ldae(args);
    assert!(
        out.status.success(),
        "ldae {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Run `ldae ARGS` with one more environment variable; insist that it succeeds; returns stdout.
pub fn ok_with_env((name, value): (&str, &str), args: &[&str]) -> String {
    let out = ldae_command(args)
        .env(name, value)
        .output()
        .expect("the ldae binary runs");
    assert!(
        out.status.success(),
        "{name}={value} ldae {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// The `part-*.parquet` files of the table folder `dir` (in its `data/`, where an ldae table
/// keeps them once published), in name order.
pub fn part_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let data = dir.join("data");
    let data = if data.is_dir() {
        data
    } else {
        dir.to_path_buf()
    };
    let mut files: Vec<_> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("part-")
        })
        .collect();
    files.sort();
    files
}

/// Every batch of every part file of the table `dir`, in name order.
pub fn read_table(dir: &Path) -> Vec<RecordBatch> {
    part_files(dir).iter().flat_map(|f| read_file(f)).collect()
}

/// The batches of one Parquet file.
pub fn read_file(path: &Path) -> Vec<RecordBatch> {
    let file = std::fs::File::open(path).unwrap();
    ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap()
        .map(|b| b.unwrap())
        .collect()
}

/// A string column of a table, concatenated.
pub fn strings(batches: &[RecordBatch], column: &str) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            b.column_by_name(column)
                .unwrap()
                .as_string::<i32>()
                .iter()
                .map(|s| s.unwrap().to_string())
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The flat f32 values of a tensor column, concatenated.
pub fn tensor_f32(batches: &[RecordBatch], column: &str) -> Vec<f32> {
    batches
        .iter()
        .flat_map(|b| {
            let list = b.column_by_name(column).unwrap().as_fixed_size_list();
            list.values()
                .as_primitive::<Float32Type>()
                .values()
                .to_vec()
        })
        .collect()
}

/// Raw bytes of every part file of `dir`, in name order.
pub fn part_bytes(dir: &Path) -> Vec<Vec<u8>> {
    part_files(dir)
        .iter()
        .map(|f| std::fs::read(f).unwrap())
        .collect()
}

/// Fit a PCA (patch 4) on `synthetic:N` images of side `image_size` into `dir/pca.safetensors`.
pub fn fit_synthetic(dir: &Path, n: usize, image_size: usize) -> String {
    let pca = dir.join("pca.safetensors");
    ok(&[
        "pca",
        "fit",
        "--input",
        &format!("synthetic:{n}"),
        "--image-size",
        &image_size.to_string(),
        "--patch",
        "4",
        "--out",
        pca.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    pca.to_str().unwrap().to_string()
}

/// The arguments of `ldae train` for a very small tiny-preset network (width 32, one block, two
/// heads, d = 8) on synthetic:96 in batches of 20, seed 7, into `out`.
pub fn small_train_args(pca: &str, out: &Path) -> Vec<String> {
    [
        "train",
        "--input",
        "synthetic:96",
        "--pca",
        pca,
        "--dim",
        "8",
        "--preset",
        "tiny",
        "--width",
        "32",
        "--depth",
        "1",
        "--heads",
        "2",
        "--batch-size",
        "20",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
        "--seed",
        "7",
    ]
    .map(String::from)
    .to_vec()
}

/// `n` smooth 32x32 JPEGs in `classes` class folders under `dir`.
pub fn jpeg_folder(dir: &Path, n: usize, classes: usize) {
    for i in 0..n {
        let class = dir.join(format!("class{}", i % classes));
        std::fs::create_dir_all(&class).unwrap();
        let mut pixels = Vec::with_capacity(32 * 32 * 3);
        for y in 0..32u32 {
            for x in 0..32u32 {
                let k = i as u32;
                pixels.push(((x * (3 + k % 5) + k * 17) % 256) as u8);
                pixels.push(((y * (2 + k % 3) + k * 29) % 256) as u8);
                pixels.push((((x + y) * (k % 4 + 1) + (i % classes) as u32 * 60) % 256) as u8);
            }
        }
        let mut bytes = Vec::new();
        jpeg_encoder::Encoder::new(&mut bytes, 90)
            .encode(&pixels, 32, 32, jpeg_encoder::ColorType::Rgb)
            .unwrap();
        std::fs::write(class.join(format!("{i:04}.jpg")), bytes).unwrap();
    }
}
