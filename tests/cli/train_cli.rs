//! `ldae train` end to end: the loss falls, and stop-and-resume reproduces the uninterrupted
//! run's per-step losses exactly on CPU.

use std::path::Path;

use crate::common::{fit_synthetic, ldae, ok, ok_with_env, small_train_args};
use ldae_model::train::metrics::read_metrics;

/// `ldae train` of a very small tiny-preset network on synthetic:96, seed 7, plus `extra`.
fn train_small(dir: &Path, pca: &str, run: &str, extra: &[&str]) -> String {
    let mut args = small_train_args(pca, &dir.join(run));
    args.extend(extra.iter().map(|a| a.to_string()));
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// [`train_small`] for 2 epochs with warmup, EMA, gradient clipping and augmentation.
fn train(dir: &Path, pca: &str, run: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "--epochs",
        "2",
        "--lr",
        "2e-3",
        "--warmup-epochs",
        "0.5",
        "--ema",
        "0.9",
        "--grad-clip",
        "1.0",
        "--augment",
    ];
    args.extend_from_slice(extra);
    train_small(dir, pca, run, &args)
}

fn losses(dir: &Path, run: &str) -> Vec<u32> {
    read_metrics(&dir.join(run).join("metrics.parquet"))
        .unwrap()
        .iter()
        .map(|m| m.loss.to_bits())
        .collect()
}

#[test]
fn stop_and_resume_reproduces_the_losses() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    train(tmp.path(), &pca, "straight", &[]);
    let straight = losses(tmp.path(), "straight");
    assert_eq!(straight.len(), 10); // 2 epochs x ceil(96 / 20)

    // Stop mid-epoch, resume into the next epoch, stop, resume to the end.
    let out = train(tmp.path(), &pca, "split", &["--max-steps", "3"]);
    assert!(out.contains("done: 3 steps"), "{out}");
    let out = train(tmp.path(), &pca, "split", &["--resume", "--max-steps", "7"]);
    assert!(out.contains("resuming") && out.contains("step 3"), "{out}");
    train(tmp.path(), &pca, "split", &["--resume"]);
    assert_eq!(losses(tmp.path(), "split"), straight);
    // The EMA weights resumed too: the two runs end with identical EMA files.
    let ema =
        |run: &str| std::fs::read(tmp.path().join(run).join("checkpoint/ema.safetensors")).unwrap();
    assert_eq!(ema("straight"), ema("split"));

    // A run folder is never overwritten by accident.
    let again = ldae(&[
        "train",
        "--input",
        "synthetic:96",
        "--pca",
        &pca,
        "--out",
        tmp.path().join("straight").to_str().unwrap(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
}

#[test]
fn a_resumed_run_can_change_the_precision_of_its_products() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    let lr = ["--lr", "2e-3", "--warmup-epochs", "0", "--epochs", "2"];
    train_small(tmp.path(), &pca, "f32", &lr);
    let f32_losses = losses(tmp.path(), "f32");
    let max3 = [&lr[..], &["--max-steps", "3"]].concat();
    train_small(tmp.path(), &pca, "mixed", &max3);
    let resumed = [&lr[..], &["--resume", "--precision", "bf16"]].concat();
    let out = train_small(tmp.path(), &pca, "mixed", &resumed);
    assert!(out.contains("Bf16 products"), "{out}");
    let config = std::fs::read_to_string(tmp.path().join("mixed/config.json")).unwrap();
    assert!(config.contains("\"precision\": \"bf16\""), "{config}");

    // The first 3 steps are the f32 run's, bit for bit; the rest ran with bf16 products: not
    // the same bits, but the same training within bf16's rounding.
    let mixed = losses(tmp.path(), "mixed");
    assert_eq!(mixed.len(), f32_losses.len());
    assert_eq!(mixed[..3], f32_losses[..3]);
    assert_ne!(mixed[3..], f32_losses[3..]);
    for (a, b) in f32_losses.iter().zip(&mixed) {
        let (a, b) = (f32::from_bits(*a), f32::from_bits(*b));
        assert!(
            (a - b).abs() <= 0.02 * a.abs(),
            "f32 loss {a}, bf16 loss {b}"
        );
    }
}

#[test]
fn loss_falls_on_synthetic_data() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 400, 16);
    let run = tmp.path().join("run");
    ok(&[
        "train",
        "--input",
        "synthetic:400",
        "--pca",
        &pca,
        "--dim",
        "8",
        "--preset",
        "tiny",
        "--width",
        "64",
        "--depth",
        "2",
        "--heads",
        "2",
        "--epochs",
        "8",
        "--batch-size",
        "25",
        "--lr",
        "2e-3",
        "--out",
        run.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    let m = read_metrics(&run.join("metrics.parquet")).unwrap();
    assert_eq!(m.len(), 128);
    let mean = |s: &[ldae_model::train::metrics::StepMetrics]| {
        s.iter().map(|m| m.loss).sum::<f32>() / s.len() as f32
    };
    let (first, last) = (mean(&m[..16]), mean(&m[112..]));
    assert!(last < 0.6 * first, "loss {first} -> {last}");
    assert!(run.join("loss.png").exists());
    assert!(run.join("checkpoint").join("model.safetensors").exists());

    let grid = tmp.path().join("grid.png");
    ok(&[
        "denoise",
        "--checkpoint",
        run.to_str().unwrap(),
        "--input",
        "synthetic:400",
        "--out",
        grid.to_str().unwrap(),
        "--count",
        "3",
        "--sigmas",
        "0.2,1.0",
        "--zoom",
        "1",
    ]);
    let img = image::open(&grid).unwrap();
    // clean + (noisy, denoised) x 2 columns of 16 px cells with 2 px gaps; 3 rows.
    assert_eq!((img.width(), img.height()), (5 * 18 + 2, 3 * 18 + 2));
}

/// Run `ldae ARGS` with candle's worker pool at `threads` threads; insist that it succeeds.
fn ok_with_pool(threads: usize, args: &[&str]) {
    ok_with_env(("CANDLE_NUM_THREADS", &threads.to_string()), args);
}

/// The matrix products are cut into as many tiles as candle's pool has threads (1 here, 2 and 3
/// row blocks, column blocks for weight gradients): losses and features must keep every bit.
#[test]
fn training_and_features_do_not_depend_on_the_kernel_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    let mut runs = Vec::new();
    for threads in [1, 2, 3] {
        let run = tmp.path().join(format!("run{threads}"));
        let mut args = small_train_args(&pca, &run);
        // Width 64: MLP layers 256 wide, whose weight gradients are cut into column blocks;
        // batches of 32 images of 16 tokens: 512 rows, up to 3 row blocks.
        for (flag, value) in [("--width", "64"), ("--batch-size", "32")] {
            let at = args.iter().position(|a| a == flag).unwrap();
            args[at + 1] = value.into();
        }
        args.extend(["--max-steps", "3"].map(String::from));
        ok_with_pool(
            threads,
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let features = tmp.path().join(format!("features{threads}"));
        ok_with_pool(
            threads,
            &[
                "features",
                "--input",
                "synthetic:70",
                "--checkpoint",
                tmp.path().join("run1").to_str().unwrap(),
                "--out",
                features.to_str().unwrap(),
                "--batch-size",
                "64",
                "--progress",
                "off",
            ],
        );
        let bits = |v: Vec<f32>| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>();
        let weights = std::fs::read(run.join("checkpoint").join("model.safetensors")).unwrap();
        runs.push((
            (losses(tmp.path(), &format!("run{threads}")), weights),
            bits(crate::common::tensor_f32(
                &crate::common::read_table(&features),
                "features",
            )),
        ));
    }
    assert_eq!(runs[0].0 .0.len(), 3);
    for (threads, run) in [2, 3].iter().zip(&runs[1..]) {
        assert!(
            run.0 .0 == runs[0].0 .0,
            "losses differ at {threads} threads"
        );
        assert!(
            run.0 .1 == runs[0].0 .1,
            "trained weights differ at {threads} threads"
        );
        assert!(run.1 == runs[0].1, "features differ at {threads} threads");
    }
}

#[test]
fn features_do_not_depend_on_batch_size_or_threads() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    train(tmp.path(), &pca, "run", &["--max-steps", "2"]);
    let run = tmp.path().join("run");
    let mut outputs = Vec::new();
    for (batch, threads) in [("7", "1"), ("64", "4")] {
        let out = tmp.path().join(format!("f{batch}"));
        let run_features = crate::common::ldae(&[
            "features",
            "--input",
            "synthetic:70",
            "--checkpoint",
            run.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--batch-size",
            batch,
            "--threads",
            threads,
            "--progress",
            "off",
        ]);
        assert!(run_features.status.success());
        // A batch of 7 pays for a chunk of 32 in the network: the user is told.
        let stderr = String::from_utf8_lossy(&run_features.stderr);
        let warned = stderr.contains("batch size 7 is not a multiple of 32");
        assert_eq!(warned, batch == "7", "{stderr}");
        let bits: Vec<u32> =
            crate::common::tensor_f32(&crate::common::read_table(&out), "features")
                .iter()
                .map(|v| v.to_bits())
                .collect();
        assert_eq!(bits.len(), 70 * 32);
        outputs.push(bits);
    }
    assert!(
        outputs[0] == outputs[1],
        "features differ between batchings"
    );
    // Baselines have the same layout.
    for (kind, width) in [("pixels", 16 * 16 * 3), ("pca", 16 * 8), ("random", 32)] {
        let out = tmp.path().join(kind);
        ok(&[
            "features",
            "--input",
            "synthetic:10",
            "--checkpoint",
            run.to_str().unwrap(),
            "--kind",
            kind,
            "--out",
            out.to_str().unwrap(),
            "--progress",
            "off",
        ]);
        assert_eq!(
            crate::common::tensor_f32(&crate::common::read_table(&out), "features").len(),
            10 * width
        );
    }
}

#[test]
fn a_non_finite_loss_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    let run = tmp.path().join("run");
    // A learning rate of 1e30 sends the weights to infinity after one step.
    let out = ldae(&[
        "train",
        "--input",
        "synthetic:96",
        "--pca",
        &pca,
        "--dim",
        "8",
        "--width",
        "32",
        "--depth",
        "1",
        "--heads",
        "2",
        "--epochs",
        "1",
        "--batch-size",
        "20",
        "--lr",
        "1e30",
        "--warmup-epochs",
        "0",
        "--checkpoint-every",
        "1",
        "--out",
        run.to_str().unwrap(),
        "--progress",
        "off",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("the loss is") && err.contains("last good checkpoint (step 1)"),
        "{err}"
    );
    let state = std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap();
    assert!(state.contains("\"step\": 1"), "{state}");
}

#[test]
fn the_pixel_cache_trains_exactly_like_the_dataset() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    // Without augmentation the cached pixels are the decoded pixels, and ids (hence noise) match.
    let no_augment = |run: &str, extra: &[&str]| {
        let mut args = vec!["--epochs", "1", "--max-steps", "3"];
        args.extend_from_slice(extra);
        train_small(tmp.path(), &pca, run, &args)
    };
    no_augment("direct", &[]);
    let cache = tmp.path().join("cache");
    let out = no_augment("cached", &["--pixel-cache", cache.to_str().unwrap()]);
    assert!(out.contains("decoding synthetic:96 once"), "{out}");
    assert!(cache.join("_SUCCESS").exists());
    // Its pixels are stored as bytes (read 8x faster than as lists).
    let part = std::fs::read_dir(cache.join("data"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    let file = std::fs::File::open(part.path()).unwrap();
    let schema = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .schema()
        .clone();
    let pixels = schema.field_with_name("pixels").unwrap();
    assert_eq!(
        ldae_pipeline::tensor_bytes::bytes_tensor_shape(pixels),
        Some(vec![16, 16, 3])
    );
    assert_eq!(losses(tmp.path(), "direct"), losses(tmp.path(), "cached"));
    // A second run reuses the complete cache.
    let out = no_augment("again", &["--pixel-cache", cache.to_str().unwrap()]);
    assert!(out.contains("using the pixel cache"), "{out}");
    assert_eq!(losses(tmp.path(), "direct"), losses(tmp.path(), "again"));
    // A run of other images does not train on the cached ones.
    let mut args = small_train_args(&pca, &tmp.path().join("other"));
    let input = args.iter().position(|a| a == "synthetic:96").unwrap();
    args[input] = "synthetic:64".into();
    args.extend(["--pixel-cache".into(), cache.display().to_string()]);
    let done = ldae(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(!done.status.success(), "{stderr}");
    assert!(
        stderr.contains("holds other images than --input's")
            && stderr.contains("\"synthetic:96\", this run's \"synthetic:64\""),
        "{stderr}"
    );
    assert!(!tmp.path().join("other").exists());
    // Nor when the cache is unfinished.
    std::fs::remove_file(cache.join("_SUCCESS")).unwrap();
    let done = ldae(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&done.stderr);
    assert!(
        stderr.contains("this unfinished pixel cache holds other images"),
        "{stderr}"
    );
    // An unfinished cache of these images whose job differs in a setting (begun by an older
    // ldae, which stored pixels as lists) is started over, and trains as before.
    let record = cache.join("_ldae/job.json");
    let mut job: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    job["job"]["sink"]
        .as_object_mut()
        .unwrap()
        .remove("tensor_storage");
    std::fs::write(&record, job.to_string()).unwrap();
    let out = no_augment("restarted", &["--pixel-cache", cache.to_str().unwrap()]);
    assert!(
        out.contains("starting the unfinished pixel cache over"),
        "{out}"
    );
    assert!(cache.join("_SUCCESS").exists());
    assert_eq!(
        losses(tmp.path(), "direct"),
        losses(tmp.path(), "restarted")
    );
}

#[test]
fn a_time_budget_chooses_the_epochs_from_the_first_steps_and_records_them() {
    use ldae_model::run_folder::TrainConfig;
    use ldae_model::train::budget::{choose_epochs, MEASURED_STEPS, WARM_STEPS};
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    // 96 rows in batches of 20: 5 steps an epoch. At most 200 epochs, 2 seconds.
    let out = train_small(
        tmp.path(),
        &pca,
        "budget",
        &["--epochs", "200", "--time-budget", "2s"],
    );
    let run = tmp.path().join("budget");
    let config: TrainConfig =
        serde_json::from_str(&std::fs::read_to_string(run.join("config.json")).unwrap()).unwrap();
    let budget = config.time_budget.expect("the budget is recorded");
    assert_eq!(budget.seconds, 2.0);
    let plan = budget.plan.expect("the choice is recorded");
    assert_eq!(plan.at_step, WARM_STEPS + MEASURED_STEPS);
    assert!(plan.seconds_per_step > 0.0);
    // The recorded choice is the rule applied to what was measured, and the run trained it.
    let expected = choose_epochs(
        plan.at_step,
        plan.seconds_left,
        plan.seconds_per_step,
        5,
        200,
    );
    assert_eq!(plan.epochs, expected);
    assert_eq!(config.epochs, plan.epochs);
    assert!(plan.epochs < 200, "2 s is not 200 epochs: {plan:?}");
    let state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("checkpoint/state.json")).unwrap())
            .unwrap();
    assert_eq!(state["step"].as_u64(), Some(plan.epochs * 5), "{state}");
    assert!(out.contains("time budget 2 s"), "{out}");
}

/// A pixel cache larger than the row groups a read keeps decoded is written in a shuffled
/// order (its reads are shuffled in windows of row groups, which should each be a random
/// sample); a smaller one keeps the dataset's order, so it trains exactly like the dataset.
#[test]
fn a_pixel_cache_larger_than_memory_is_written_shuffled() {
    use ldae_datasets::parquet_table::DECODED_GROUPS_BUDGET;
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 96, 16);
    let cache_of = |rows: usize| {
        let job = ldae_jobs::train::TrainJob {
            input: format!("synthetic:{rows}"),
            format: None,
            split: None,
            limit: None,
            pixel_cache: Some(tmp.path().join("cache")),
            pca: pca.clone().into(),
            dim: 4,
            latent_scale: None,
            sigma: None,
            augment: false,
            train: serde_json::from_value(serde_json::json!({ "out": "run" })).unwrap(),
        };
        job.pixel_cache_spec().unwrap().unwrap().source.options
    };
    // 16 x 16 RGB rows: 768 bytes each.
    let fits = DECODED_GROUPS_BUDGET / 768;
    assert!(!cache_of(fits).shuffle);
    let larger = cache_of(fits + 1);
    assert!(larger.shuffle);
    assert_eq!(
        larger.seed, 0,
        "one order for every run that shares the cache"
    );
}
