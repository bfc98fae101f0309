//! docs/pipeline-spec.md carries the reference generated from the registered config structs;
//! this test fails when they drift apart (run with LDAE_BLESS=1 to rewrite the generated part).

use ldae_jobs::reference::{markdown, BEGIN, END};
use ldae_pipeline::registry::{operator_kinds, sink_kinds};

/// This crate's folder in the checkout under test (cargo sets CARGO_MANIFEST_DIR when it runs a
/// test; a shared target directory may hold a binary another checkout built).
fn manifest_dir() -> std::path::PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into())
}

fn docs_path() -> std::path::PathBuf {
    manifest_dir().join("../docs/pipeline-spec.md")
}

#[test]
fn every_kind_the_issue_names_is_registered() {
    // Linking the jobs crate links every component crate; each registers itself.
    let _ = ldae_jobs::model::encoder::CPU_CHUNK;
    let ops: Vec<&str> = operator_kinds().iter().map(|k| k.kind).collect();
    for kind in [
        "decode",
        "normalize",
        "patchify",
        "unpatchify",
        "pca_project",
        "pca_inverse",
        "noise",
        "denoise",
        "encoder",
    ] {
        assert!(
            ops.contains(&kind),
            "operator kind {kind} missing from {ops:?}"
        );
    }
    let sinks: Vec<&str> = sink_kinds().iter().map(|k| k.kind).collect();
    for kind in ["parquet", "pca_fit"] {
        assert!(
            sinks.contains(&kind),
            "sink kind {kind} missing from {sinks:?}"
        );
    }
}

#[test]
fn docs_list_every_registered_kind_with_its_keys() {
    let generated = markdown();
    let path = docs_path();
    let text = std::fs::read_to_string(&path).unwrap();
    let (start, end) = (
        text.find(BEGIN).expect("begin marker") + BEGIN.len(),
        text.find(END).expect("end marker"),
    );
    let current = text[start..end].trim();
    if current != generated.trim() {
        if std::env::var("LDAE_BLESS").is_ok() {
            let updated = format!(
                "{}\n\n{}\n{}",
                &text[..start],
                generated.trim(),
                &text[end..]
            );
            std::fs::write(&path, updated).unwrap();
            return;
        }
        panic!(
            "docs/pipeline-spec.md's generated reference is out of date with the registered \
             config structs; rerun with LDAE_BLESS=1 to regenerate it"
        );
    }
    for k in operator_kinds() {
        assert!(
            current.contains(&format!("### `{}`", k.kind)),
            "{} undocumented",
            k.kind
        );
    }
    for k in sink_kinds() {
        assert!(
            current.contains(&format!("### `{}`", k.kind)),
            "{} undocumented",
            k.kind
        );
    }
}

#[test]
fn the_example_specs_parse_as_registered_kinds() {
    let dir = manifest_dir().join("../examples");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        // ablate-*.toml are ablation specs (docs/ablate.md), not pipeline specs.
        if path.extension().is_some_and(|e| e == "toml") && !name.starts_with("ablate") {
            // Reading a spec parses every component as its registered kind's config.
            ldae_jobs::spec::Spec::read(&path)
                .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.chain()));
            checked += 1;
        }
    }
    assert!(checked >= 5, "only {checked} example specs found");
}
