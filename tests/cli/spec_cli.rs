//! Every command is a spec: `--print-spec` then `ldae run` writes what the command writes, and
//! specs compose the registered operators (noise, denoise, encoder, unpatchify) with plan-time
//! checks of what the data means.

use std::path::Path;

use crate::common::{fit_synthetic, ldae, ok, part_bytes, read_table, tensor_f32};

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Print the spec of `args` (a command plus `--print-spec`) into `path`.
fn print_spec(args: &[&str], path: &Path) {
    let mut all = args.to_vec();
    all.push("--print-spec");
    let text = ok(&all);
    assert!(
        text.contains("[source]") && text.contains("[sink]"),
        "{text}"
    );
    std::fs::write(path, text).unwrap();
}

/// A one-block network trained for one epoch on synthetic:64.
fn train_tiny(dir: &Path, pca: &str) -> std::path::PathBuf {
    train_tiny_with(dir, pca, "run", &[])
}

/// [`train_tiny`] into `dir/name`, with `extra` flags.
fn train_tiny_with(dir: &Path, pca: &str, name: &str, extra: &[&str]) -> std::path::PathBuf {
    let run = dir.join(name);
    ok(&tiny_train_args(pca, s(&run), extra));
    run
}

/// The `ldae train` arguments of [`train_tiny`] into `out`, with `extra` flags.
fn tiny_train_args<'a>(pca: &'a str, out: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "train",
        "--input",
        "synthetic:64",
        "--pca",
        pca,
        "--dim",
        "8",
        "--preset",
        "tiny",
        "--width",
        "32",
        "--depth",
        "2",
        "--heads",
        "2",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--out",
        out,
        "--progress",
        "off",
    ];
    args.extend_from_slice(extra);
    args
}

#[test]
fn features_default_to_what_the_run_records() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pca = fit_synthetic(d, 200, 32);
    let flags = [
        "--conditioning",
        "mlp",
        "--feature-block",
        "1",
        "--feature-t",
        "3",
        "--feature-pooling",
        "none",
    ];
    let run = train_tiny_with(d, &pca, "recorded", &flags);
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["model"]["conditioning"], "mlp");
    assert_eq!(config["features"]["block"], 1);
    let out = d.join("plain");
    // The arguments of `ldae features` of the run into `out`, plus `extra`.
    let features_args = |extra: &[&'static str]| {
        let mut args = vec![
            "features",
            "--input",
            "synthetic:8",
            "--checkpoint",
            s(&run),
            "--out",
            s(&out),
            "--progress",
            "off",
        ];
        args.extend_from_slice(extra);
        args
    };
    let features = |extra: &[&'static str]| ok(&features_args(extra));
    let spec = |extra: &[&'static str]| {
        let text = features(&[extra, &["--print-spec"]].concat());
        let spec: toml::Table = toml::from_str(&text).unwrap();
        spec["operator"].as_array().unwrap().last().unwrap().clone()
    };
    let recorded = spec(&[]);
    assert_eq!(recorded["kind"].as_str(), Some("encoder"));
    assert_eq!(
        recorded["blocks"].as_array().unwrap()[0].as_integer(),
        Some(1)
    );
    assert_eq!(recorded["t"].as_float(), Some(3.0));
    assert_eq!(recorded["pooling"].as_str(), Some("none"));
    // Flags win over the record.
    let flagged = spec(&["--block", "2", "--t", "7", "--pooling", "mean"]);
    assert_eq!(
        flagged["blocks"].as_array().unwrap()[0].as_integer(),
        Some(2)
    );
    assert_eq!(flagged["t"].as_float(), Some(7.0));
    assert_eq!(flagged["pooling"].as_str(), Some("mean"));
    // The recorded settings are the features a plain `ldae features` writes.
    features(&[]);
    let tokens = tensor_f32(&read_table(&out), "features");
    assert_eq!(
        tokens.len(),
        8 * 64 * 32,
        "token-level features of width 32"
    );
    // A recorded block outside the network is refused at training time.
    let bad = d.join("bad");
    let err = crate::common::ldae(&tiny_train_args(&pca, s(&bad), &["--feature-block", "9"]));
    assert!(!err.status.success());
    let text = String::from_utf8_lossy(&err.stderr);
    assert!(text.contains("feature block 9"), "{text}");
    // Poolings only a timm model has are refused for the run, each naming what it lacks, at
    // feature time and as a recorded default at training time.
    for (pooling, lacks) in [
        ("token", "a class token"),
        ("token_mean", "a class token"),
        ("map", "attention pooling"),
        ("head", "a classifier head"),
    ] {
        let refused = ldae(&features_args(&["--pooling", pooling]));
        let text = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{text}");
        assert!(
            text.contains(&format!("pooling {pooling} needs {lacks}")),
            "{text}"
        );
        let err = ldae(&tiny_train_args(
            &pca,
            s(&bad),
            &["--feature-pooling", pooling],
        ));
        let text = String::from_utf8_lossy(&err.stderr);
        assert!(!err.status.success(), "{text}");
        assert!(
            text.contains(&format!("feature pooling {pooling} needs {lacks}")),
            "{text}"
        );
    }
}

#[test]
fn pca_fit_and_encode_print_the_spec_they_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fit = |out: &Path| {
        vec![
            "pca".to_string(),
            "fit".into(),
            "--input".into(),
            "synthetic:150".into(),
            "--image-size".into(),
            "32".into(),
            "--patch".into(),
            "4".into(),
            "--out".into(),
            s(out).to_string(),
            "--progress".into(),
            "off".into(),
            "--batch-size".into(),
            "40".into(),
        ]
    };
    let direct = d.join("direct.safetensors");
    let a: Vec<String> = fit(&direct);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let via = d.join("via.safetensors");
    let b: Vec<String> = fit(&via);
    print_spec(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        &d.join("fit.toml"),
    );
    assert!(!via.exists(), "--print-spec must not run the job");
    ok(&["run", s(&d.join("fit.toml")), "--progress", "off"]);
    assert_eq!(
        std::fs::read(&direct).unwrap(),
        std::fs::read(&via).unwrap()
    );

    let encode = |out: &Path| {
        vec![
            "pca".to_string(),
            "encode".into(),
            "--input".into(),
            "synthetic:90".into(),
            "--pca".into(),
            s(&direct).to_string(),
            "--dim".into(),
            "8".into(),
            "--out".into(),
            s(out).to_string(),
            "--progress".into(),
            "off".into(),
            "--batch-size".into(),
            "25".into(),
        ]
    };
    let (e1, e2) = (d.join("latents-direct"), d.join("latents-via"));
    let a = encode(&e1);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let b = encode(&e2);
    print_spec(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        &d.join("encode.toml"),
    );
    ok(&["run", s(&d.join("encode.toml")), "--progress", "off"]);
    assert_eq!(part_bytes(&e1), part_bytes(&e2));
    assert!(!part_bytes(&e1).is_empty());
}

#[test]
fn features_print_the_spec_they_run_and_read_several_blocks_in_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pca = fit_synthetic(d, 200, 32);
    let run = train_tiny(d, &pca);
    let features = |out: &Path, blocks: &str, pooling: &str| {
        vec![
            "features".to_string(),
            "--input".into(),
            "synthetic:40".into(),
            "--checkpoint".into(),
            s(&run).to_string(),
            "--block".into(),
            blocks.into(),
            "--pooling".into(),
            pooling.into(),
            "--out".into(),
            s(out).to_string(),
            "--progress".into(),
            "off".into(),
            "--batch-size".into(),
            "16".into(),
        ]
    };
    let (f1, f2) = (d.join("f-direct"), d.join("f-via"));
    let a = features(&f1, "1,2", "none");
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let b = features(&f2, "1,2", "none");
    print_spec(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        &d.join("features.toml"),
    );
    ok(&["run", s(&d.join("features.toml")), "--progress", "off"]);
    assert_eq!(part_bytes(&f1), part_bytes(&f2));

    // Token-level features of blocks 1 and 2, one column each, [64 tokens, width 32].
    let batches = read_table(&f1);
    let schema = batches[0].schema();
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, ["id", "label", "features_1", "features_2"]);
    let tokens_2 = tensor_f32(&batches, "features_2");
    assert_eq!(tokens_2.len(), 40 * 64 * 32);

    // Mean pooling of block 2 alone is the mean over those tokens.
    let f3 = d.join("f-mean");
    let c = features(&f3, "2", "mean");
    ok(&c.iter().map(String::as_str).collect::<Vec<_>>());
    let pooled = tensor_f32(&read_table(&f3), "features");
    assert_eq!(pooled.len(), 40 * 32);
    for (row, p) in pooled.chunks(32).enumerate().take(3) {
        for (w, &v) in p.iter().enumerate() {
            let mean: f32 = (0..64)
                .map(|t| tokens_2[row * 64 * 32 + t * 32 + w])
                .sum::<f32>()
                / 64.0;
            assert!((mean - v).abs() < 1e-4, "row {row} w {w}: {mean} vs {v}");
        }
    }
}

#[test]
fn noise_denoise_unpatchify_compose_into_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pca = fit_synthetic(d, 200, 32);
    let run = train_tiny(d, &pca);
    let spec = format!(
        r#"
[source]
input = "synthetic:20"
batch_size = 8

[[operator]]
kind = "decode"
image_size = 32

[[operator]]
kind = "normalize"

[[operator]]
kind = "patchify"
patch = 4

[[operator]]
kind = "noise"
pca = "{pca}"
dim = 8
sigma = 0.3
seed = 5

[[operator]]
kind = "denoise"
checkpoint = "{run}"

[[operator]]
kind = "unpatchify"
column = "denoised"
output = "denoised_pixels"

[sink]
kind = "parquet"
out = "denoised"
"#,
        run = s(&run)
    );
    std::fs::write(d.join("denoise.toml"), spec).unwrap();
    ok(&["run", s(&d.join("denoise.toml")), "--progress", "off"]);
    let batches = read_table(&d.join("denoised"));
    let schema = batches[0].schema();
    let field = schema.field_with_name("denoised_pixels").unwrap();
    assert_eq!(
        ldae_pipeline::columns::tensor_type(field),
        Some((arrow::datatypes::DataType::UInt8, vec![32, 32, 3]))
    );
    let sigma: Vec<f32> = batches
        .iter()
        .flat_map(|b| {
            arrow::array::AsArray::as_primitive::<arrow::datatypes::Float32Type>(
                b.column_by_name("sigma").unwrap(),
            )
            .values()
            .to_vec()
        })
        .collect();
    assert_eq!(sigma, vec![0.3; 20]);

    // The same spec with noise from a PCA of other pixels is refused before any work.
    let other = d.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let other_pca = fit_synthetic(&other, 100, 16);
    let text = std::fs::read_to_string(d.join("denoise.toml"))
        .unwrap()
        .replace(&pca, &other_pca)
        .replace("image_size = 32", "image_size = 16");
    std::fs::write(d.join("mixed.toml"), text).unwrap();
    let out = ldae(&["run", s(&d.join("mixed.toml")), "--progress", "off"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("denoise") && err.contains("ldae.pca_model"),
        "{err}"
    );
}

#[test]
fn a_pca_fitted_on_other_normalisation_is_a_plan_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pca = fit_synthetic(d, 100, 32);
    let spec = format!(
        r#"
[source]
input = "synthetic:10"

[[operator]]
kind = "decode"
image_size = 32

[[operator]]
kind = "normalize"
mode = "mean_std"
mean = [0.5, 0.5, 0.5]
std = [0.25, 0.25, 0.25]

[[operator]]
kind = "patchify"
patch = 4

[[operator]]
kind = "pca_project"
pca = "{pca}"
dim = 8

[sink]
kind = "parquet"
out = "latents"
"#
    );
    std::fs::write(d.join("mixed.toml"), spec).unwrap();
    let out = ldae(&["run", s(&d.join("mixed.toml")), "--progress", "off"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("pca_project") && err.contains("mean_std") && err.contains("minus_one_one"),
        "{err}"
    );
    assert!(!d.join("latents").exists(), "nothing may be written");
}

#[test]
fn unknown_kinds_and_keys_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("bad.toml"),
        "[source]\ninput = \"synthetic:4\"\n[[operator]]\nkind = \"decoder\"\n[sink]\nkind = \"parquet\"\nout = \"x\"\n",
    )
    .unwrap();
    let out = ldae(&["run", s(&d.join("bad.toml"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown operator kind 'decoder'") && err.contains("decode"),
        "{err}"
    );
    std::fs::write(
        d.join("bad2.toml"),
        "[source]\ninput = \"synthetic:4\"\n[[operator]]\nkind = \"patchify\"\npatch_size = 4\n[sink]\nkind = \"parquet\"\nout = \"x\"\n",
    )
    .unwrap();
    let out = ldae(&["run", s(&d.join("bad2.toml"))]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("patchify") && err.contains("patch_size"),
        "{err}"
    );
}

#[test]
fn train_prints_the_spec_it_runs_and_resumes_from_its_saved_spec() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let pca = fit_synthetic(d, 100, 16);
    let train = |out: &Path| {
        vec![
            "train".to_string(),
            "--input".into(),
            "synthetic:60".into(),
            "--pca".into(),
            pca.clone(),
            "--dim".into(),
            "8".into(),
            "--width".into(),
            "32".into(),
            "--depth".into(),
            "1".into(),
            "--heads".into(),
            "2".into(),
            "--batch-size".into(),
            "20".into(),
            "--epochs".into(),
            "2".into(),
            "--augment".into(),
            "--ema".into(),
            "0.9".into(),
            "--out".into(),
            s(out).to_string(),
            "--progress".into(),
            "off".into(),
        ]
    };
    let (direct, via) = (d.join("direct"), d.join("via"));
    let a = train(&direct);
    ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let b = train(&via);
    print_spec(
        &b.iter().map(String::as_str).collect::<Vec<_>>(),
        &d.join("train.toml"),
    );
    assert!(!via.exists(), "--print-spec must not start the run");
    // `ldae run` uses every core for the operators; the run is the same.
    ok(&["run", s(&d.join("train.toml")), "--progress", "off"]);
    let losses = |run: &Path| -> Vec<u32> {
        ldae_model::train::metrics::read_metrics(&run.join("metrics.parquet"))
            .unwrap()
            .iter()
            .map(|m| m.loss.to_bits())
            .collect()
    };
    assert_eq!(losses(&direct).len(), 6);
    assert_eq!(losses(&direct), losses(&via));
    for file in ["model.safetensors", "ema.safetensors"] {
        let read = |run: &Path| std::fs::read(run.join("checkpoint").join(file)).unwrap();
        assert_eq!(read(&direct), read(&via), "{file}");
    }

    // Resuming needs only the run folder: its spec.json rebuilds the pipeline.
    let split = d.join("split");
    let mut c = train(&split);
    c.extend(["--max-steps".to_string(), "4".into()]);
    ok(&c.iter().map(String::as_str).collect::<Vec<_>>());
    let out = ok(&["train", "--resume", "--out", s(&split), "--progress", "off"]);
    assert!(out.contains("resuming") && out.contains("step 4"), "{out}");
    assert_eq!(losses(&split), losses(&direct));
}
