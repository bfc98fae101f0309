//! A new operator kind is one file: this test binary registers a toy operator the engine has
//! never heard of, and a spec that names it is read, documented, checked and run like any
//! built-in kind, with no change to the engine, the spec runner or the registry.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use ldae_jobs::spec::{RunSettings, Spec};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

/// `toy_label_shift`: adds `shift` to every label.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
struct ToyLabelShift {
    /// What is added to each label.
    shift: i64,
}

impl OperatorConfig for ToyLabelShift {
    const KIND: &'static str = "toy_label_shift";
    fn build(&self, _ctx: &BuildContext) -> Result<Arc<dyn Operator>> {
        Ok(Arc::new(self.clone()))
    }
}
ldae_pipeline::register_operator!(ToyLabelShift);

impl Operator for ToyLabelShift {
    fn name(&self) -> String {
        Self::KIND.into()
    }
    fn bind(&self, input: &SchemaRef) -> Result<Arc<dyn BoundOperator>> {
        let label = input
            .field_with_name("label")
            .map_err(|_| Error::plan(Self::KIND, "needs a label column"))?;
        if label.data_type() != &DataType::Int64 {
            return Err(Error::plan(Self::KIND, "labels must be int64"));
        }
        Ok(Arc::new(WithSchema {
            schema: input.clone(),
            op: self.clone(),
        }))
    }
}

impl ProcessWithSchema for ToyLabelShift {
    fn process_with(&self, batch: RecordBatch, schema: &SchemaRef) -> Result<Processed> {
        let at = schema.index_of("label")?;
        let labels = batch
            .column(at)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap();
        let shifted: Int64Array = labels.iter().map(|l| l.map(|l| l + self.shift)).collect();
        let mut columns = batch.columns().to_vec();
        columns[at] = Arc::new(shifted);
        Ok(Processed::ok(RecordBatch::try_new(
            schema.clone(),
            columns,
        )?))
    }
}

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

fn spec(out: &std::path::Path, toy: &str) -> String {
    format!(
        "[source]\ninput = \"synthetic:12\"\n\n[[operator]]\nkind = \"toy_label_shift\"\n{toy}\n\n\
         [sink]\nkind = \"parquet\"\nout = \"{}\"\n",
        out.display()
    )
}

#[test]
fn a_kind_registered_outside_the_engine_is_read_documented_and_run() {
    let tmp = tempfile::tempdir().unwrap();
    let run = |out: &std::path::Path, toy: &str| {
        let spec = Spec::parse(&spec(out, toy), "toy.toml")?;
        ldae_jobs::spec::run(&spec, &RunSettings::default())
    };
    let plain = tmp.path().join("plain");
    let shifted = tmp.path().join("shifted");
    run(&plain, "shift = 0").unwrap();
    run(&shifted, "shift = 100").unwrap();
    let (before, after) = (labels(&plain), labels(&shifted));
    assert_eq!(before.len(), 12);
    assert_eq!(after, before.iter().map(|l| l + 100).collect::<Vec<_>>());

    // Its keys are checked when the spec is read, and its doc comments are its reference.
    let err = Spec::parse(&spec(&plain, "shfit = 1"), "toy.toml")
        .unwrap_err()
        .chain();
    assert!(err.contains("toy.toml") && err.contains("shfit"), "{err}");
    let reference = ldae_jobs::reference::markdown();
    assert!(reference.contains("### `toy_label_shift`"), "{reference}");
    assert!(reference.contains("What is added to each label."));
    // And it prints back as it was written.
    let text = Spec::parse(&spec(&plain, "shift = 7"), "toy.toml")
        .unwrap()
        .to_toml()
        .unwrap();
    assert!(
        text.contains("kind = \"toy_label_shift\"\nshift = 7"),
        "{text}"
    );
}
