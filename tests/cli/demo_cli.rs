//! `ldae demo` end to end, at a reduced size: PCA, a short pre-training, four kinds of
//! features and their probes, and one table with all four rows.

use crate::common::ok;

#[test]
fn demo_runs_end_to_end_and_prints_the_four_way_table() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let stdout = ok(&[
        "demo",
        "--out",
        out.to_str().unwrap(),
        "--images",
        "320",
        "--test-images",
        "160",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--progress",
        "off",
    ]);
    assert!(stdout.contains("explained variance"), "{stdout}");
    let table: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("features"))
        .take(5)
        .collect();
    assert_eq!(table.len(), 5, "{stdout}");
    for (line, name) in table[1..].iter().zip([
        "l-DAE (tiny, trained)",
        "raw pixels",
        "PCA latents (d=16)",
        "random-init network",
    ]) {
        assert!(line.starts_with(name), "row '{line}' should be {name}");
        // Two percentages: linear and kNN top-1.
        assert_eq!(line.matches('%').count(), 2, "{line}");
    }
    for kind in ["ldae", "pixels", "pca", "random"] {
        assert!(out.join(format!("features-{kind}-train/_SUCCESS")).exists());
        assert!(out.join(format!("features-{kind}-test/_SUCCESS")).exists());
        assert!(out.join(format!("probe-{kind}.json")).exists());
        assert!(out
            .join(format!("probe-{kind}.linear-confusion.png"))
            .exists());
    }
    assert!(out.join("components.png").exists());
    assert!(out.join("run/loss.png").exists());
}
