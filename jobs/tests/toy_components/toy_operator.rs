//! A toy operator kind, registered here and nowhere else.

use std::sync::Arc;

use arrow::array::{Array, Int64Array, RecordBatch};
use arrow::datatypes::{DataType, SchemaRef};
use ldae_pipeline::{
    BoundOperator, BuildContext, Error, Operator, OperatorConfig, ProcessWithSchema, Processed,
    Result, WithSchema,
};

/// `toy_label_shift`: adds `shift` to every label.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToyLabelShift {
    /// What is added to each label.
    pub shift: i64,
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
