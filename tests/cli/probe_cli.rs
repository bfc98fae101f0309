//! `ldae probe` from the command line: outputs, predicates and clear errors.

use crate::common::{fit_synthetic, ldae, ok};

fn pixel_features(dir: &std::path::Path, pca: &str, name: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let mut args = vec![
        "features",
        "--kind",
        "pixels",
        "--pca",
        pca,
        "--out",
        out.to_str().unwrap(),
        "--progress",
        "off",
    ];
    args.extend_from_slice(extra);
    ok(&args);
    out.to_str().unwrap().to_string()
}

#[test]
fn probe_writes_results_and_names_bad_columns() {
    let tmp = tempfile::tempdir().unwrap();
    let pca = fit_synthetic(tmp.path(), 200, 16);
    let train = pixel_features(tmp.path(), &pca, "train", &["--input", "synthetic:200"]);
    let test = pixel_features(
        tmp.path(),
        &pca,
        "test",
        &["--input", "synthetic:300", "--skip", "200"],
    );
    let json = tmp.path().join("out/results.json");
    let stdout = ok(&[
        "probe",
        "--train",
        &train,
        "--test",
        &test,
        "--knn",
        "--out",
        json.to_str().unwrap(),
        "--epochs",
        "10",
        "--test-where",
        "label < 5",
    ]);
    assert!(
        stdout.contains("linear") && stdout.contains("knn"),
        "{stdout}"
    );
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r["train_rows"], 200);
    assert_eq!(
        r["test_rows"], 50,
        "the predicate keeps labels 0..4 of 100 rows"
    );
    assert_eq!(r["features"], 16 * 16 * 3);
    assert_eq!(r["classes"].as_array().unwrap().len(), 10);
    assert_eq!(r["linear_grid"].as_array().unwrap().len(), 9);
    for f in [
        "results.predictions.parquet",
        "results.linear-confusion.png",
        "results.knn-confusion.png",
    ] {
        assert!(tmp.path().join("out").join(f).exists(), "{f}");
    }

    let bad = ldae(&[
        "probe", "--train", &train, "--test", &test, "--column", "latents",
    ]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("no column 'latents'") && err.contains("features"),
        "{err}"
    );

    let none = ldae(&[
        "probe",
        "--train",
        &train,
        "--test",
        &test,
        "--where",
        "label > 99",
    ]);
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("no labelled rows"), "{err}");
}
