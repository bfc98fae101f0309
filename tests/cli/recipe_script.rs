//! `examples/cifar10-recipe.sh` runs as documented, shortened to one epoch on 200 generated
//! JPEGs: it writes the PCA and the run and nothing else, and the run records how its features
//! are read, so `ldae features --checkpoint RUN` needs no further flags.

use std::process::Command;

use crate::common::{jpeg_folder, ok, read_table};

#[test]
fn cifar10_recipe_script_trains_a_run_that_features_reads_as_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let train = tmp.path().join("train");
    let out = tmp.path().join("out");
    jpeg_folder(&train, 200, 4);
    let script = crate::venv::manifest_dir().join("examples/cifar10-recipe.sh");
    let status = Command::new("bash")
        .arg(script)
        .arg(&train)
        .arg(&out)
        .env("LDAE", env!("CARGO_BIN_EXE_ldae"))
        .env("LDAE_RECIPE_EPOCHS", "1")
        .env("LDAE_LOG", "warn")
        .status()
        .unwrap();
    assert!(status.success(), "the recipe script failed");

    let mut made: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    made.sort();
    // The PCA fit's errors table (rows it could not read) sits beside the model.
    assert_eq!(
        made,
        ["pca.errors.parquet", "pca.safetensors", "run"],
        "the script writes the PCA and the run only"
    );
    let config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run/config.json")).unwrap())
            .unwrap();
    assert_eq!(config["epochs"], 1);
    assert!(
        config["features"]["block"].is_u64(),
        "{}",
        config["features"]
    );

    // No flags beyond the checkpoint: the recorded block, t, pooling and EMA are used.
    let feats = tmp.path().join("feats");
    let input = train.to_str().unwrap();
    let run = out.join("run");
    ok(&[
        "features",
        "--input",
        input,
        "--checkpoint",
        run.to_str().unwrap(),
        "--out",
        feats.to_str().unwrap(),
    ]);
    let batches = read_table(&feats);
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 200);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(feats.join("_manifest.json")).unwrap())
            .unwrap();
    let text = manifest.to_string();
    assert!(
        text.contains(&format!("\"blocks\":[{}]", config["features"]["block"])),
        "the features job did not read the recorded block: {text}"
    );
    assert!(
        text.contains(&format!("\"pooling\":{}", config["features"]["pooling"])),
        "the features job did not read the recorded pooling: {text}"
    );
}
