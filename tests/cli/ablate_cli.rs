//! `ldae ablate` end to end at a toy size: two seeds of every setting, the recipe's training
//! extras (augmentation, EMA, weight decay) and the shared pixel cache, and the report's rows,
//! spreads, CSV and plots.

use crate::common::ok;

#[test]
fn ablation_runs_every_setting_and_seed_with_the_recipe_extras() {
    let tmp = tempfile::tempdir().unwrap();
    let spec = tmp.path().join("spec.toml");
    std::fs::write(
        &spec,
        r#"
train = "synthetic:96"
test = "synthetic:48"
out = "abl"
image_size = 16
epochs = 1
batch_size = 32
probe_train_rows = 64
knn = false
dims = [4, 48]
noises = ["multi"]
latent_scales = ["global"]
blocks = [1, 6]
seeds = [0, 1]
pooling = "grid2"
augment = true
ema = 0.9
weight_decay = 0.05
"#,
    )
    .unwrap();
    let stdout = ok(&["ablate", spec.to_str().unwrap(), "--progress", "off"]);
    let out = tmp.path().join("abl");

    // The pixel cache is decoded once and shared by every run.
    assert!(out.join("pixel-cache/_SUCCESS").exists(), "{stdout}");
    assert_eq!(
        stdout.matches("decoding synthetic:96 once").count(),
        1,
        "{stdout}"
    );

    // Three settings (base d = 16, d = 4, d = 48) x two seeds, each a run folder that records
    // the extras and reads its features from the EMA weights.
    for run in [
        "run-00",
        "run-00-seed1",
        "run-01",
        "run-01-seed1",
        "run-02",
        "run-02-seed1",
    ] {
        let config: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(run).join("config.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(config["ema"], 0.9, "{run}: {config}");
        assert_eq!(config["augment"], true, "{run}");
        assert_eq!(config["adamw"]["weight_decay"], 0.05, "{run}");
        assert_eq!(config["features"]["ema"], true, "{run}");
    }

    // The CSV has a row per probe and seed: the base run at blocks 1 and 6 and at block 3 (the
    // encoder's last, where the other runs are probed), and d = 4, 48.
    let csv = std::fs::read_to_string(out.join("ablation.csv")).unwrap();
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    assert_eq!(rows.len(), (3 + 2) * 2, "{csv}");
    for seed in ["0", "1"] {
        assert_eq!(
            rows.iter()
                .filter(|r| r.split(',').nth(2) == Some(seed))
                .count(),
            5,
            "{csv}"
        );
    }

    // The Markdown shows the extras and a mean ± spread for every setting.
    let md = std::fs::read_to_string(out.join("ablation.md")).unwrap();
    assert!(
        md.contains("weight decay 0.05, augmentation on, EMA 0.9"),
        "{md}"
    );
    assert!(md.contains("grid2 pooling"), "{md}");
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).skip(1).collect();
    assert_eq!(table.len(), 5, "{md}");
    for line in &table {
        assert!(line.contains('±'), "no spread in {line}");
    }
    assert!(md.contains("probed after block 3"), "{md}");
    assert!(out.join("ablation-dim.png").exists());
    assert!(out.join("ablation-block.png").exists());

    // Run again: every finished pre-training and probe is reused, with the same results.
    let again = ok(&["ablate", spec.to_str().unwrap(), "--progress", "off"]);
    assert_eq!(
        again.matches("reusing the finished pre-training").count(),
        6,
        "{again}"
    );
    assert!(!again.contains("training tiny"), "{again}");
    assert_eq!(
        std::fs::read_to_string(out.join("ablation.csv")).unwrap(),
        csv
    );

    // A changed training setting (the learning rate) makes every finished step stale.
    std::fs::write(
        &spec,
        std::fs::read_to_string(&spec)
            .unwrap()
            .replace("epochs = 1", "epochs = 1\nlr = 0.002"),
    )
    .unwrap();
    let changed = ok(&["ablate", spec.to_str().unwrap(), "--progress", "off"]);
    assert!(!changed.contains("reusing"), "{changed}");
}
