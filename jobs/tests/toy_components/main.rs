//! A new dataset format and a new operator kind are one file each: this test binary registers a
//! toy format (`toy_source.rs`) and a toy operator (`toy_operator.rs`) that the engine has never
//! heard of, and a spec that names them is read, documented, checked and run like the built-in
//! ones, with no change to the engine, the spec runner or the registries.

mod toy_operator;
mod toy_source;

use arrow::array::{Array, Int64Array};
use ldae_jobs::spec::{RunSettings, Spec};

fn labels(dir: &std::path::Path) -> Vec<i64> {
    let mut out = Vec::new();
    let mut parts: Vec<_> = std::fs::read_dir(dir.join("data"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    for part in parts {
        let file = std::fs::File::open(part).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let col = batch.column_by_name("label").unwrap();
            let col = col.as_any().downcast_ref::<Int64Array>().unwrap();
            out.extend(col.iter().map(|l| l.unwrap()));
        }
    }
    out
}

fn spec(out: &std::path::Path, source: &str, toy: &str) -> String {
    format!(
        "[source]\n{source}\n\n[[operator]]\nkind = \"toy_label_shift\"\n{toy}\n\n\
         [sink]\nkind = \"parquet\"\nout = \"{}\"\n",
        out.display()
    )
}

fn run(text: &str) -> ldae_pipeline::Result<()> {
    let spec = Spec::parse(text, "toy.toml")?;
    ldae_jobs::spec::run(&spec, &RunSettings::default()).map(|_| ())
}

#[test]
fn an_operator_registered_outside_the_engine_is_read_documented_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let synthetic = "input = \"synthetic:12\"";
    let plain = tmp.path().join("plain");
    let shifted = tmp.path().join("shifted");
    run(&spec(&plain, synthetic, "shift = 0")).unwrap();
    run(&spec(&shifted, synthetic, "shift = 100")).unwrap();
    let (before, after) = (labels(&plain), labels(&shifted));
    assert_eq!(before.len(), 12);
    assert_eq!(after, before.iter().map(|l| l + 100).collect::<Vec<_>>());

    // Its keys are checked when the spec is read, and its doc comments are its reference.
    let err = Spec::parse(&spec(&plain, synthetic, "shfit = 1"), "toy.toml")
        .unwrap_err()
        .chain();
    assert!(err.contains("toy.toml") && err.contains("shfit"), "{err}");
    let reference = ldae_jobs::reference::markdown();
    assert!(reference.contains("### `toy_label_shift`"), "{reference}");
    assert!(reference.contains("What is added to each label."));
    // And it prints back as it was written.
    let text = Spec::parse(&spec(&plain, synthetic, "shift = 7"), "toy.toml")
        .unwrap()
        .to_toml()
        .unwrap();
    assert!(
        text.contains("kind = \"toy_label_shift\"\nshift = 7"),
        "{text}"
    );
}

#[test]
fn a_format_registered_outside_the_engine_is_detected_configured_documented_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    // Detected from the input, with its own settings table, through the toy operator.
    let out = tmp.path().join("toy");
    let source = "input = \"toy:5\"\n\n[source.toy_rows]\nlabel = 3";
    run(&spec(&out, source, "shift = 100")).unwrap();
    assert_eq!(labels(&out), vec![103; 5]);
    // Named, with its defaults.
    let named = tmp.path().join("named");
    run(&spec(
        &named,
        "input = \"toy:4\"\nformat = \"toy_rows\"",
        "shift = 1",
    ))
    .unwrap();
    assert_eq!(labels(&named), vec![1; 4]);

    // Its settings are checked when the spec is read; settings of a format that does not read
    // the input are an error, not ignored.
    let typo = "input = \"toy:5\"\n\n[source.toy_rows]\nlabl = 3";
    let err = Spec::parse(&spec(&out, typo, "shift = 0"), "toy.toml")
        .unwrap_err()
        .chain();
    assert!(err.contains("toy.toml") && err.contains("labl"), "{err}");
    let unknown = "input = \"toy:5\"\nlimt = 3";
    let err = Spec::parse(&spec(&out, unknown, "shift = 0"), "toy.toml")
        .unwrap_err()
        .chain();
    assert!(err.contains("limt") && err.contains("toy_rows"), "{err}");
    let elsewhere = "input = \"synthetic:5\"\n\n[source.toy_rows]\nlabel = 3";
    let err = run(&spec(&tmp.path().join("x"), elsewhere, "shift = 0"))
        .unwrap_err()
        .chain();
    assert!(
        err.contains("[source.toy_rows]") && err.contains("synthetic"),
        "{err}"
    );

    // It is documented from its doc comments, prints back, and `--format` knows it.
    let reference = ldae_jobs::reference::markdown();
    assert!(
        reference.contains("### `toy_rows` (`[source.toy_rows]`)"),
        "{reference}"
    );
    assert!(reference.contains("The label of every row."));
    let text = Spec::parse(&spec(&out, source, "shift = 0"), "toy.toml")
        .unwrap()
        .to_toml()
        .unwrap();
    assert!(text.contains("[source.toy_rows]\nlabel = 3"), "{text}");
    assert_eq!(
        "toy_rows".parse::<ldae_datasets::Format>().unwrap().name(),
        "toy_rows"
    );
}
