//! End-to-end tests of `ldae pca ...`, `inspect` and `run` on generated data.

use crate::common::{fit_synthetic, ldae, ok, part_bytes, read_table, strings, tensor_f32};

#[test]
fn fit_encode_inspect_show() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 300, 32);
    let out = dir.path().join("latents");
    let stdout = ok(&[
        "pca",
        "encode",
        "--input",
        "synthetic:120",
        "--pca",
        &pca,
        "--dim",
        "8",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
        "--batch-size",
        "50",
    ]);
    assert!(stdout.contains("wrote 120 rows"), "{stdout}");
    assert!(out.join("_SUCCESS").exists());
    assert!(out.join("_errors.parquet").exists());
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("_manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["rows"], 120);
    assert_eq!(manifest["rows_rejected"], 0);
    assert_eq!(manifest["job"]["operator"][3]["kind"], "pca_project");
    assert_eq!(manifest["job"]["operator"][3]["dim"], 8);
    let batches = read_table(&out);
    assert_eq!(strings(&batches, "id")[7], "synthetic:7");
    assert_eq!(tensor_f32(&batches, "latents").len(), 120 * 64 * 8);
    let cols: Vec<String> = batches[0]
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_eq!(cols, ["id", "label", "latents"]);

    let inspect = ok(&["inspect", out.to_str().unwrap()]);
    assert!(
        inspect.contains("latents: tensor<Float32> [64, 8]"),
        "{inspect}"
    );
    assert!(
        inspect.contains("rows: 120") && inspect.contains("complete"),
        "{inspect}"
    );
    // The same files in a folder no ldae job wrote (as a Hugging Face dataset is): no status.
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    for part in std::fs::read_dir(out.join("data")).unwrap() {
        let part = part.unwrap().path();
        std::fs::copy(&part, plain.join(part.file_name().unwrap())).unwrap();
    }
    let inspect = ok(&["inspect", plain.to_str().unwrap()]);
    assert!(inspect.contains("rows: 120"), "{inspect}");
    assert!(!inspect.contains("status"), "{inspect}");
    let inspect = ok(&["inspect", &pca]);
    assert!(inspect.contains("components: F64 [48, 48]"), "{inspect}");

    let png = dir.path().join("components.png");
    ok(&[
        "pca",
        "show",
        &pca,
        "--out",
        png.to_str().unwrap(),
        "--count",
        "16",
        "--zoom",
        "4",
    ]);
    let img = image::open(&png).unwrap();
    assert_eq!((img.width(), img.height()), (4 * 18 + 2, 4 * 18 + 2));
}

#[test]
fn one_and_four_threads_give_identical_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let mut outputs = Vec::new();
    for threads in ["1", "4"] {
        let out = dir.path().join(format!("t{threads}"));
        ok(&[
            "pca",
            "encode",
            "--input",
            "synthetic:333",
            "--pca",
            &pca,
            "--dim",
            "16",
            "--out",
            out.to_str().unwrap(),
            "--threads",
            threads,
            "--batch-size",
            "32",
            "--progress",
            "off",
            "--shuffle",
            "--seed",
            "5",
        ]);
        outputs.push(part_bytes(&out));
    }
    assert!(!outputs[0].is_empty());
    assert_eq!(outputs[0], outputs[1]);
}

#[test]
fn latents_do_not_depend_on_batch_size() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 200, 32);
    let mut latents = Vec::new();
    for batch in ["7", "64"] {
        let out = dir.path().join(format!("b{batch}"));
        ok(&[
            "pca",
            "encode",
            "--input",
            "synthetic:100",
            "--pca",
            &pca,
            "--dim",
            "12",
            "--out",
            out.to_str().unwrap(),
            "--batch-size",
            batch,
            "--progress",
            "off",
        ]);
        let bits: Vec<u32> = tensor_f32(&read_table(&out), "latents")
            .iter()
            .map(|v| v.to_bits())
            .collect();
        latents.push(bits);
    }
    assert_eq!(latents[0], latents[1]);
}

#[test]
fn shards_merged_equal_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    let whole = fit_synthetic(dir.path(), 250, 32);
    for i in 0..3 {
        ok(&[
            "pca",
            "fit",
            "--input",
            "synthetic:250",
            "--image-size",
            "32",
            "--patch",
            "4",
            "--shard",
            &format!("{i}/3"),
            "--partial",
            "--out",
            &d(&format!("p{i}.safetensors")),
            "--progress",
            "off",
        ]);
    }
    ok(&[
        "pca",
        "merge",
        &d("p0.safetensors"),
        &d("p1.safetensors"),
        &d("p2.safetensors"),
        "--out",
        &d("merged.safetensors"),
    ]);
    let a = ldae_operators::pca::PcaModel::load(std::path::Path::new(&whole)).unwrap();
    let b = ldae_operators::pca::PcaModel::load(std::path::Path::new(&d("merged.safetensors")))
        .unwrap();
    assert_eq!(a.meta.images, 250);
    assert_eq!(b.meta.images, 250);
    assert_eq!(a.meta.fingerprint, b.meta.fingerprint);
    for (x, y) in a.eigenvalues.iter().zip(&b.eigenvalues) {
        assert!((x - y).abs() <= 1e-9 * x.abs().max(1e-12), "{x} vs {y}");
    }
    for (x, y) in a.components.iter().zip(&b.components).take(16 * 48) {
        assert!((x - y).abs() < 1e-7, "{x} vs {y}");
    }
    // A partial is not a model, and models of other geometries do not merge.
    let err = ldae(&[
        "pca",
        "encode",
        "--input",
        "synthetic:5",
        "--pca",
        &d("p0.safetensors"),
        "--dim",
        "4",
        "--out",
        &d("x"),
    ]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("pca merge"));
}

#[test]
fn plan_errors_are_clear_and_early() {
    let dir = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(dir.path(), 50, 32);
    let out = ldae(&[
        "pca",
        "encode",
        "--input",
        "synthetic:5",
        "--pca",
        &pca,
        "--dim",
        "49",
        "--out",
        dir.path().join("x").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("pca_project") && err.contains("between 1 and D = 48"),
        "{err}"
    );
    assert!(!dir.path().join("x").join("_SUCCESS").exists());

    let out = ldae(&[
        "pca",
        "fit",
        "--input",
        "synthetic:5",
        "--image-size",
        "32",
        "--patch",
        "5",
        "--out",
        "x.safetensors",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--patch 5 must divide --image-size 32"));

    let spec = dir.path().join("bad.toml");
    std::fs::write(
        &spec,
        format!(
            "[source]\ninput = \"synthetic:10\"\n[[operator]]\nkind = \"decode\"\nimage_size = 32\n\
             [[operator]]\nkind = \"normalize\"\n[[operator]]\nkind = \"patchify\"\npatch = 8\n\
             [[operator]]\nkind = \"pca_project\"\npca = \"{pca}\"\ndim = 4\n\
             [sink]\nkind = \"parquet\"\nout = \"o\"\n"
        ),
    )
    .unwrap();
    let out = ldae(&["run", spec.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plan: stage 'pca_project'") && err.contains("[16, 192]"),
        "{err}"
    );
}

#[test]
fn spec_runs_fit_then_encode() {
    let dir = tempfile::tempdir().unwrap();
    let front = "[source]\ninput = \"synthetic:90\"\nbatch_size = 16\n\
                 [[operator]]\nkind = \"decode\"\nimage_size = 16\n\
                 [[operator]]\nkind = \"normalize\"\n\
                 [[operator]]\nkind = \"patchify\"\npatch = 4\n";
    std::fs::write(
        dir.path().join("fit.toml"),
        format!("{front}[sink]\nkind = \"pca_fit\"\nout = \"pca.safetensors\"\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("encode.toml"),
        format!(
            "{front}[[operator]]\nkind = \"pca_project\"\npca = \"pca.safetensors\"\ndim = 6\n\
             [sink]\nkind = \"parquet\"\nout = \"latents\"\n"
        ),
    )
    .unwrap();
    ok(&[
        "run",
        dir.path().join("fit.toml").to_str().unwrap(),
        "--progress",
        "off",
    ]);
    ok(&[
        "run",
        dir.path().join("encode.toml").to_str().unwrap(),
        "--progress",
        "off",
    ]);
    let batches = read_table(&dir.path().join("latents"));
    assert_eq!(tensor_f32(&batches, "latents").len(), 90 * 16 * 6);
}

/// `--quiet` prints the result line and nothing else: no progress, no stage table.
#[test]
fn quiet_prints_the_result_only() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pca.safetensors");
    let args = [
        "pca",
        "fit",
        "--input",
        "synthetic:40",
        "--image-size",
        "16",
        "--patch",
        "4",
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "log",
    ];
    let loud = ldae(&args);
    assert!(String::from_utf8_lossy(&loud.stderr).contains("rows/s"));
    let quiet = ldae(&[&["-q"], &args[..]].concat());
    assert!(quiet.status.success());
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "");
    assert!(String::from_utf8_lossy(&quiet.stdout).contains("wrote"));
}

/// A Hugging Face dataset folder with train and test files is refused as one table, and
/// `--split` reads one split.
#[test]
fn split_chooses_one_split_of_a_hugging_face_folder() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("pixels.toml");
    std::fs::write(
        &spec,
        "[source]\ninput = \"synthetic:30\"\n\n[[operator]]\nkind = \"decode\"\nimage_size = 16\n\
         channels = 3\n\n[sink]\nkind = \"parquet\"\nout = \"pixels\"\n",
    )
    .unwrap();
    ok(&["run", spec.to_str().unwrap(), "--progress", "off"]);
    let part = std::fs::read_dir(dir.path().join("pixels/data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let hub = dir.path().join("hub");
    std::fs::create_dir_all(hub.join("data")).unwrap();
    for split in ["train", "test"] {
        std::fs::copy(
            &part,
            hub.join(format!("data/{split}-00000-of-00001.parquet")),
        )
        .unwrap();
    }
    let pca = dir.path().join("pca.safetensors");
    let fit = |input: &str, extra: &[&str]| {
        let mut args = vec![
            "pca",
            "fit",
            "--input",
            input,
            "--image-size",
            "16",
            "--patch",
            "4",
            "--out",
            pca.to_str().unwrap(),
            "--progress",
            "off",
        ];
        args.extend_from_slice(extra);
        ldae(&args)
    };
    let hub = hub.to_str().unwrap();
    let mixed = fit(hub, &[]);
    assert!(!mixed.status.success());
    let err = String::from_utf8_lossy(&mixed.stderr);
    assert!(err.contains("several splits (test, train)"), "{err}");
    let train = fit(hub, &["--split", "train"]);
    let out = String::from_utf8_lossy(&train.stdout);
    assert!(
        train.status.success(),
        "{}",
        String::from_utf8_lossy(&train.stderr)
    );
    assert!(out.contains("of 30 images"), "{out}");
    // A split of a dataset that is not Parquet: the flag is named.
    let images = fit("synthetic:10", &["--split", "train"]);
    let err = String::from_utf8_lossy(&images.stderr);
    assert!(
        !images.status.success() && err.contains("--split chooses"),
        "{err}"
    );
}
