//! Bad inputs never crash a run: valid images decode, the rest land in the errors table, and
//! rows in = rows out + rows rejected. With `--on-error fail` the run stops, naming the file.

use std::io::Cursor;
use std::path::Path;

use crate::common::{fit_synthetic, ldae, ok, read_file, read_table, strings};

fn encode_image(img: image::DynamicImage, format: image::ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, format).unwrap();
    out.into_inner()
}

fn gradient(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x + y) * 3) as u8])
    })
}

/// A PNG that declares `w x h` pixels but holds (almost) no image data.
fn png_header_only(w: u32, h: u32) -> Vec<u8> {
    let mut out = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut crc = crc32fast::Hasher::new();
        crc.update(kind);
        crc.update(data);
        out.extend(kind);
        out.extend(data);
        out.extend(crc.finalize().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend(w.to_be_bytes());
    ihdr.extend(h.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]); // 8-bit RGB
    chunk(b"IHDR", &ihdr);
    // A tiny valid zlib stream: real bombs compress well, the header is what must be refused.
    chunk(
        b"IDAT",
        &[
            0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x00, 0x01,
        ],
    );
    chunk(b"IEND", &[]);
    out
}

/// The folder of good and bad files; returns (valid names, bad names).
fn make_inputs(dir: &Path) -> (Vec<&'static str>, Vec<&'static str>) {
    let rgb = image::DynamicImage::ImageRgb8(gradient(40, 30));
    let jpeg = encode_image(rgb.clone(), image::ImageFormat::Jpeg);
    std::fs::write(dir.join("valid.jpg"), &jpeg).unwrap();
    std::fs::write(
        dir.join("valid.png"),
        encode_image(rgb.clone(), image::ImageFormat::Png),
    )
    .unwrap();
    std::fs::write(
        dir.join("gray.png"),
        encode_image(rgb.grayscale(), image::ImageFormat::Png),
    )
    .unwrap();
    std::fs::write(
        dir.join("rgba.png"),
        encode_image(
            image::DynamicImage::ImageRgba8(rgb.to_rgba8()),
            image::ImageFormat::Png,
        ),
    )
    .unwrap();
    let sixteen = image::DynamicImage::ImageRgb16(rgb.to_rgb16());
    std::fs::write(
        dir.join("sixteen.png"),
        encode_image(sixteen, image::ImageFormat::Png),
    )
    .unwrap();
    let cmyk: Vec<u8> = gradient(40, 30)
        .pixels()
        .flat_map(|p| [255 - p[0], 255 - p[1], 255 - p[2], 20])
        .collect();
    let mut cmyk_jpeg = Vec::new();
    jpeg_encoder::Encoder::new(&mut cmyk_jpeg, 90)
        .encode(&cmyk, 40, 30, jpeg_encoder::ColorType::Cmyk)
        .unwrap();
    std::fs::write(dir.join("cmyk.jpg"), cmyk_jpeg).unwrap();

    std::fs::write(dir.join("truncated.jpg"), &jpeg[..jpeg.len() / 2]).unwrap();
    std::fs::write(dir.join("empty.jpg"), b"").unwrap();
    std::fs::write(dir.join("text.jpg"), b"this is not an image\n").unwrap();
    std::fs::write(dir.join("huge.png"), png_header_only(100_000, 100_000)).unwrap();
    std::os::unix::fs::symlink(dir.join("gone.png"), dir.join("unreadable.png")).unwrap();
    (
        vec![
            "cmyk.jpg",
            "gray.png",
            "rgba.png",
            "sixteen.png",
            "valid.jpg",
            "valid.png",
        ],
        vec![
            "empty.jpg",
            "huge.png",
            "text.jpg",
            "truncated.jpg",
            "unreadable.png",
        ],
    )
}

#[test]
fn bad_files_are_rejected_and_accounted_for() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    let (valid, bad) = make_inputs(&images);
    let pca = fit_synthetic(tmp.path(), 60, 16);
    let out = tmp.path().join("latents");
    ok(&[
        "pca",
        "encode",
        "--input",
        images.to_str().unwrap(),
        "--pca",
        &pca,
        "--dim",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--batch-size",
        "4",
        "--progress",
        "off",
    ]);
    assert!(out.join("_SUCCESS").exists());
    let ids = strings(&read_table(&out), "id");
    assert_eq!(ids, valid);
    let errors = read_file(&out.join("_errors.parquet"));
    let mut rejected = strings(&errors, "id");
    rejected.sort();
    assert_eq!(rejected, bad);
    let stages = strings(&errors, "stage");
    let messages = strings(&errors, "message");
    for ((id, stage), message) in strings(&errors, "id").iter().zip(&stages).zip(&messages) {
        let expected_stage = if id == "unreadable.png" {
            "source:folder"
        } else {
            "decode"
        };
        assert_eq!(stage, expected_stage, "{id}: {message}");
        if id == "huge.png" {
            assert!(
                message.contains("100000x100000") && message.contains("limit"),
                "{message}"
            );
        }
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["rows_in"], 11);
    assert_eq!(manifest["rows"], 6);
    assert_eq!(manifest["rows_rejected"], 5);

    // A PCA fit on the same folder records its rejections beside the model.
    let model = tmp.path().join("folder-pca.safetensors");
    ok(&[
        "pca",
        "fit",
        "--input",
        images.to_str().unwrap(),
        "--image-size",
        "16",
        "--patch",
        "4",
        "--out",
        model.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    let errors = read_file(&tmp.path().join("folder-pca.errors.parquet"));
    assert_eq!(strings(&errors, "id").len(), 5);
}

#[test]
fn fail_mode_exits_non_zero_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(
        images.join("a.png"),
        encode_image(
            image::DynamicImage::ImageRgb8(gradient(20, 20)),
            image::ImageFormat::Png,
        ),
    )
    .unwrap();
    std::fs::write(images.join("b.jpg"), b"").unwrap();
    let pca = fit_synthetic(tmp.path(), 60, 16);
    let out = tmp.path().join("latents");
    let result = ldae(&[
        "pca",
        "encode",
        "--input",
        images.to_str().unwrap(),
        "--pca",
        &pca,
        "--dim",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--on-error",
        "fail",
        "--progress",
        "off",
    ]);
    assert!(!result.status.success());
    let err = String::from_utf8_lossy(&result.stderr);
    assert!(
        err.contains("b.jpg") && err.contains("decode") && err.contains("empty file"),
        "{err}"
    );
    assert!(!out.join("_SUCCESS").exists());
    // Nothing that reads as rows: no published data folder, no part file at the top.
    assert!(!out.join("data").exists());
    assert!(std::fs::read_dir(&out).unwrap().all(|e| {
        let name = e.unwrap().file_name().to_string_lossy().to_string();
        !name.starts_with("part-")
    }));
}
