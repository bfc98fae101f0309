//! Nonsense flags, empty inputs and broken artifacts on the command line: a clear error (exit
//! status 1, the flag or file named, each OS error said once), never a panic, and never a
//! `_SUCCESS` over nothing.

use std::path::Path;

use crate::common::{fit_synthetic, ldae, ok, read_table, strings};

/// `ldae pca encode` of `input` with the model `pca` into `out`, plus `extra`.
fn encode(input: &str, pca: &str, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "pca",
        "encode",
        "--input",
        input,
        "--pca",
        pca,
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
    ];
    args.extend_from_slice(extra);
    ldae(&args)
}

/// The run failed cleanly: exit status 1, every needle in stderr, no panic, no `_SUCCESS`.
fn refused(result: &std::process::Output, out: &Path, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&result.stderr).to_string();
    // 1 for a failed run, 2 for flags clap refuses; 101 would be a panic.
    assert!(matches!(result.status.code(), Some(1 | 2)), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "'{n}' not in: {err}");
    }
    assert!(!out.join("_SUCCESS").exists(), "{err}");
    err
}

#[test]
fn nonsense_flags_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 40, 16);
    let out = tmp.path().join("out");
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--shard", "3/2"], &["--shard '3/2'"]),
        (&["--shard", "0/0"], &["--shard '0/0'"]),
        (&["--dim", "0"], &["latent dimension 0", "D = 48"]),
        (&["--dim", "49"], &["latent dimension 49", "D = 48"]),
        (&["--batch-size", "0"], &["--batch-size", "at least 1"]),
    ];
    for (flags, needles) in cases {
        let mut extra = flags.to_vec();
        if !flags.contains(&"--dim") {
            extra.extend(["--dim", "8"]);
        }
        refused(&encode("synthetic:20", &pca, &out, &extra), &out, needles);
    }
    let fit = ldae(&[
        "pca",
        "fit",
        "--input",
        "synthetic:10",
        "--image-size",
        "16",
        "--patch",
        "0",
        "--out",
        tmp.path().join("p0.safetensors").to_str().unwrap(),
    ]);
    refused(&fit, &out, &["--patch 0", "at least 1"]);
}

#[test]
fn empty_inputs_are_errors_not_empty_tables() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 40, 16);
    let empty = tmp.path().join("empty.tar");
    std::fs::write(&empty, [0u8; 1024]).unwrap();
    // Every row rejected is no table either: the errors are kept, the run fails.
    let images = tmp.path().join("images");
    std::fs::create_dir(&images).unwrap();
    std::fs::write(images.join("a.jpg"), b"").unwrap();
    std::fs::write(images.join("b.png"), b"not a png").unwrap();
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("synthetic:0", &[], &["synthetic:0", "no rows"]),
        ("synthetic:20", &["--limit", "0"], &["limit 0"]),
        (empty.to_str().unwrap(), &[], &["empty.tar", "no rows"]),
        (images.to_str().unwrap(), &[], &["no rows", "2 rejected"]),
    ];
    for (i, (input, flags, needles)) in cases.into_iter().enumerate() {
        let out = tmp.path().join(format!("out{i}"));
        let mut extra = vec!["--dim", "8"];
        extra.extend_from_slice(flags);
        refused(&encode(input, &pca, &out, &extra), &out, needles);
    }

    // A huge synthetic count with a limit reads only the limit.
    let out = tmp.path().join("limited");
    ok(&[
        "pca",
        "encode",
        "--input",
        "synthetic:18446744073709551615",
        "--limit",
        "8",
        "--pca",
        &pca,
        "--dim",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    assert_eq!(strings(&read_table(&out), "id").len(), 8);
}

#[test]
fn broken_artifacts_and_blocked_outputs_name_their_file() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 40, 16);
    let out = tmp.path().join("out");
    let bytes = std::fs::read(&pca).unwrap();
    let cut = tmp.path().join("cut.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 3]).unwrap();
    let err = refused(
        &encode("synthetic:20", cut.to_str().unwrap(), &out, &["--dim", "8"]),
        &out,
        &["cut.safetensors"],
    );
    assert_eq!(err.matches("cut.safetensors").count(), 1, "{err}");

    // A PCA file whose metadata is nonsense (patch 0) is refused when loaded.
    let field = br#"\"patch_size\":4"#;
    let at = bytes
        .windows(field.len())
        .position(|w| w == field)
        .expect("the metadata records the patch size");
    let mut bad = bytes.clone();
    bad[at + field.len() - 1] = b'0';
    let meta = tmp.path().join("meta.safetensors");
    std::fs::write(&meta, &bad).unwrap();
    refused(
        &encode(
            "synthetic:20",
            meta.to_str().unwrap(),
            &out,
            &["--dim", "8"],
        ),
        &out,
        &["meta.safetensors", "bad PCA metadata", "patch 0"],
    );

    // A table or a PCA file under a file: the file in the way is named, nothing said twice.
    let blocker = tmp.path().join("blocker");
    std::fs::write(&blocker, b"").unwrap();
    let under = blocker.join("out");
    let needle = format!("{} is a file, not a folder", blocker.display());
    let err = refused(
        &encode("synthetic:20", &pca, &under, &["--dim", "8"]),
        &under,
        &[&needle],
    );
    assert_eq!(err.matches(&needle).count(), 1, "{err}");
    let model = blocker.join("pca.safetensors");
    let fit = ldae(&[
        "pca",
        "fit",
        "--input",
        "synthetic:10",
        "--image-size",
        "16",
        "--patch",
        "4",
        "--out",
        model.to_str().unwrap(),
    ]);
    refused(&fit, &under, &[&needle]);

    // A Hugging Face transformers model folder of a family ldae does not import, as
    // --checkpoint: named as such, with the families it does import, not a missing field of an
    // l-DAE run's config.
    let features_of = |name: &str, config: &str| {
        let dir = tmp.path().join(name);
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("config.json"), config).unwrap();
        ldae(&[
            "features",
            "--checkpoint",
            dir.to_str().unwrap(),
            "--input",
            "synthetic:10",
            "--out",
            out.to_str().unwrap(),
        ])
    };
    let swin = features_of(
        "swin-tiny",
        r#"{"architectures": ["SwinModel"], "model_type": "swin", "embed_dim": 96}"#,
    );
    refused(
        &swin,
        &out,
        &[
            "transformers model folder",
            "\"swin\"",
            "dinov2",
            "docs/timm.md",
        ],
    );
    // One of a family it imports, without its weights: the missing file is named.
    let dinov2 = features_of(
        "dinov2-small",
        r#"{"architectures": ["Dinov2Model"], "model_type": "dinov2", "hidden_size": 384}"#,
    );
    refused(&dinov2, &out, &["model.safetensors"]);
}

#[test]
fn broken_rows_of_each_format_land_in_the_errors_table() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 40, 16);
    // A WebDataset shard with a good image, a 0-byte image and a sample whose label is no
    // integer: 3 rows in, 1 out, 2 rejected naming their members.
    let mut png = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(20, 20, image::Rgb([9, 90, 200]))
        .write_to(&mut png, image::ImageFormat::Png)
        .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    let members: [(&str, &[u8]); 6] = [
        ("good.png", png.get_ref()),
        ("good.cls", b"1"),
        ("empty.png", b""),
        ("empty.cls", b"2"),
        ("word.png", png.get_ref()),
        ("word.cls", b"cat"),
    ];
    for (name, data) in members {
        let mut h = tar::Header::new_ustar();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_path(name).unwrap();
        h.set_cksum();
        b.append(&h, data).unwrap();
    }
    let shard = tmp.path().join("s.tar");
    std::fs::write(&shard, b.into_inner().unwrap()).unwrap();
    let out = tmp.path().join("out");
    let result = encode(shard.to_str().unwrap(), &pca, &out, &["--dim", "8"]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(strings(&read_table(&out), "id"), ["s.tar:good"]);
    let errors = crate::common::read_file(&out.join("_errors.parquet"));
    let mut rows: Vec<(String, String, String)> = strings(&errors, "id")
        .into_iter()
        .zip(strings(&errors, "stage"))
        .zip(strings(&errors, "message"))
        .map(|((i, s), m)| (i, s, m))
        .collect();
    rows.sort();
    assert_eq!(
        (rows[0].0.as_str(), rows[0].1.as_str()),
        ("s.tar:empty", "decode")
    );
    assert!(rows[0].2.contains("empty"), "{rows:?}");
    assert_eq!(
        (rows[1].0.as_str(), rows[1].1.as_str()),
        ("s.tar:word", "source:webdataset")
    );
    assert!(rows[1].2.contains("not an integer"), "{rows:?}");
    assert_eq!(rows.len(), 2);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(
        (
            manifest["rows_in"].as_u64(),
            manifest["rows"].as_u64(),
            manifest["rows_rejected"].as_u64()
        ),
        (Some(3), Some(1), Some(2))
    );
}

/// Run `ldae ARGS` with files limited to `bytes` (RLIMIT_FSIZE, SIGXFSZ ignored): every write
/// past the limit fails with EFBIG, as a full disk fails with ENOSPC.
fn ldae_with_file_limit(args: &[&str], bytes: u64) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut command = crate::common::ldae_command(args);
    // SAFETY: only async-signal-safe calls (signal, setrlimit) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let limit = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    command.output().expect("the ldae binary runs")
}

#[test]
fn a_full_disk_names_the_file_being_written_and_says_the_os_error_once() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 40, 16);
    let run = tmp.path().join("run");
    let result = ldae_with_file_limit(
        &[
            "train",
            "--input",
            "synthetic:40",
            "--pca",
            &pca,
            "--dim",
            "4",
            "--width",
            "64",
            "--depth",
            "2",
            "--heads",
            "2",
            "--batch-size",
            "20",
            "--out",
            run.to_str().unwrap(),
            "--progress",
            "off",
        ],
        100_000,
    );
    let err = refused(&result, &run, &["model.safetensors", "os error 27"]);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(
        !run.join("checkpoint").exists(),
        "no checkpoint that looks complete"
    );

    let out = tmp.path().join("latents");
    let result = ldae_with_file_limit(
        &[
            "pca",
            "encode",
            "--input",
            "synthetic:400",
            "--pca",
            &pca,
            "--dim",
            "16",
            "--out",
            out.to_str().unwrap(),
            "--progress",
            "off",
        ],
        20_000,
    );
    let err = refused(&result, &out, &["part-00000.parquet", "os error 27"]);
    assert_eq!(err.matches("os error").count(), 1, "{err}");
    assert!(!out.join("data").exists());
}
