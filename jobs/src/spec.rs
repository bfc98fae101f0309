//! Pipeline specs (`ldae run SPEC.toml`): a source, registered operators in order, a
//! registered sink. Each `[[operator]]` and the `[sink]` table is the config struct of its
//! `kind`, looked up in the registry, so a spec reads as the picture of the job and a new
//! operator needs no change here. docs/pipeline-spec.md lists every kind and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ldae_pipeline::{
    BuildContext, Error, Operator, OperatorSpec, Pipeline, PlanInfo, RunOptions, RunReport,
    SinkSpec, Source,
};

use crate::source::SourceSpec;
use crate::Result;
use ldae_datasets::SourceOptions;

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Where rows come from.
    pub source: SourceSpec,
    /// Operators, applied in order.
    #[serde(default, rename = "operator", skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<OperatorSpec>,
    /// Where rows go.
    pub sink: SinkSpec,
}

impl Spec {
    /// The spec with the source's batch size filled in when it was left unset: the first
    /// operator's [`OperatorConfig::batch_rows_hint`] (a `decode` fits
    /// [`BATCH_PIXEL_BYTES`](ldae_operators::decode::BATCH_PIXEL_BYTES) of f32 pixels: 256 rows at 32x32 RGB, 6 at 224x224 RGB), else
    /// [`SourceOptions::DEFAULT_BATCH_ROWS`]; rounded up to the operators'
    /// [`OperatorConfig::batch_multiple`] (an `encoder` runs its network on whole chunks).
    ///
    /// [`OperatorConfig::batch_rows_hint`]: ldae_pipeline::OperatorConfig::batch_rows_hint
    /// [`OperatorConfig::batch_multiple`]: ldae_pipeline::OperatorConfig::batch_multiple
    ///
    /// A given batch size is kept, with a warning when the network would pad every batch.
    pub fn with_sized_batches(&self) -> Spec {
        let mut spec = self.clone();
        let configs = || self.operators.iter().map(|c| c.config());
        if let Some(rows) = spec.source.options.batch_size {
            for multiple in configs().filter_map(|c| c.batch_multiple()) {
                if let Some(work) = padded_work(rows, multiple) {
                    tracing::warn!(
                        "batch size {rows} is not a multiple of {multiple}: the encoder runs its \
                         network on chunks of {multiple} images and pads the last chunk of every \
                         batch, so a batch costs the network as much as {} images ({work:.1}x); \
                         a multiple of {multiple} avoids that",
                        rows.next_multiple_of(multiple)
                    );
                }
            }
            return spec;
        }
        let rows = configs()
            .find_map(|c| c.batch_rows_hint())
            .unwrap_or(SourceOptions::DEFAULT_BATCH_ROWS);
        // A batch of 6 at 224 px would pay for a whole chunk of 32 images in the network.
        let rows = configs()
            .filter_map(|c| c.batch_multiple())
            .fold(rows, |rows, m| rows.next_multiple_of(m.max(1)));
        spec.source.options.batch_size = Some(rows);
        spec
    }

    /// Parse a spec from TOML text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Spec> {
        toml::from_str(text).map_err(|e| Error::Spec {
            component: origin.to_string(),
            source: Box::new(e),
        })
    }

    /// Read the spec file at `path`.
    pub fn read(path: &Path) -> Result<Spec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The spec as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Spec {
            component: "spec".into(),
            source: Box::new(e),
        })
    }
}

/// How many times the needed network work a batch of `rows` costs when the network runs on
/// padded chunks of `multiple` images (`None` when `rows` is a multiple: no padding).
fn padded_work(rows: usize, multiple: usize) -> Option<f64> {
    let multiple = multiple.max(1);
    match rows % multiple {
        0 => None,
        _ => Some(rows.next_multiple_of(multiple) as f64 / rows as f64),
    }
}

/// What a spec's run did.
#[derive(Debug)]
pub struct SpecReport {
    /// The report of every pass, in order (one for most sinks, one per epoch for training).
    pub passes: Vec<RunReport>,
    /// What the sink job says it wrote.
    pub output: serde_json::Value,
}

impl SpecReport {
    /// The last pass's report (what single-pass jobs print).
    pub fn last(&self) -> Option<&RunReport> {
        self.passes.last()
    }

    /// Every pass summed into one report (a training run's epochs as one table).
    pub fn total(&self) -> Option<RunReport> {
        let (first, later) = self.passes.split_first()?;
        let mut total = first.clone();
        later.iter().for_each(|pass| total.absorb(pass));
        Some(total)
    }
}

/// How to run a spec besides the spec itself.
#[derive(Clone, Default)]
pub struct RunSettings<'a> {
    /// Folder relative paths in the spec are resolved against.
    pub base: PathBuf,
    /// Threads, error policy, progress.
    pub options: RunOptions,
    /// Called with each line the sink has for the person running the job.
    pub on_message: Option<&'a dyn Fn(&str)>,
}

/// A source and its operators, built for one pass.
type Built = (Box<dyn Source>, Vec<Arc<dyn Operator>>);

fn operators(spec: &Spec, ctx: &BuildContext) -> Result<Vec<Arc<dyn Operator>>> {
    build_operators(&spec.operators, ctx)
}

/// Build `components` (a spec's `[[operator]]` list) in order; a failure names the operator
/// by position and kind.
pub fn build_operators(
    components: &[OperatorSpec],
    ctx: &BuildContext,
) -> Result<Vec<Arc<dyn Operator>>> {
    components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let config = c.config();
            config.build(ctx).map_err(|e| match e {
                // Plan errors already name their stage.
                Error::Plan { .. } => e,
                other => Error::InStage {
                    stage: format!("operator {} ({})", i + 1, config.kind()),
                    source: Box::new(other),
                },
            })
        })
        .collect()
}

/// Build and run `spec` to the end: one pipeline per pass the sink asks for.
pub fn run(spec: &Spec, settings: &RunSettings<'_>) -> Result<SpecReport> {
    let spec = &spec.with_sized_batches();
    let job = serde_json::to_value(spec).unwrap_or_default();
    let base_ctx = spec.source.build_context(&settings.base, 0, job);
    let sink = spec.sink.config();
    let mut sink_job = sink.build(&base_ctx).map_err(|e| Error::InStage {
        stage: format!("sink ({})", sink.kind()),
        source: Box::new(e),
    })?;

    // Bind the sink to the planned schema before any pass: it may size itself from it.
    let source = spec.source.open(&settings.base)?;
    let ops = operators(spec, &base_ctx)?;
    let schema = ldae_pipeline::executor::plan_schema(source.schema(), &ops)?;
    sink_job.bind(&PlanInfo {
        schema,
        rows: source.total_rows(),
    })?;
    let mut first: Option<Built> = Some((source, ops));
    let say = |job: &mut Box<dyn ldae_pipeline::SinkJob>| {
        for line in job.messages() {
            if let Some(f) = &settings.on_message {
                f(&line);
            }
        }
    };
    say(&mut sink_job);

    let mut passes = Vec::new();
    while let Some(pass) = sink_job.next_pass()? {
        let default_pass = pass == ldae_pipeline::Pass::default();
        let (source, ops) = match first.take() {
            Some(built) if default_pass => built,
            _ => {
                let mut source_spec = spec.source.clone();
                let o = &mut source_spec.options;
                if let Some(seed) = pass.shuffle_seed {
                    o.shuffle = true;
                    o.seed = seed;
                }
                // The pass skips rows of the order the spec asked for (which may skip itself).
                o.skip += pass.skip_rows;
                if let Some(limit) = pass.limit_rows {
                    o.limit = Some(o.limit.map_or(limit, |l| l.min(limit)));
                }
                if let Some(b) = pass.batch_size {
                    o.batch_size = Some(b.max(1));
                }
                let ctx = BuildContext {
                    epoch: pass.epoch,
                    ..base_ctx.clone()
                };
                (source_spec.open(&settings.base)?, operators(spec, &ctx)?)
            }
        };
        let sink = sink_job.sink(&pass)?;
        let mut pipeline = Pipeline::new(source, sink);
        for op in ops {
            pipeline = pipeline.then(op);
        }
        let mut options = settings.options.clone();
        if !pass.label.is_empty() {
            options.label = pass.label.clone();
        }
        options.status = sink_job.status().or(options.status);
        let report = match pipeline.run(&options) {
            Ok(report) => report,
            Err(e) => {
                sink_job.fail(&e);
                return Err(e);
            }
        };
        sink_job.end_pass(&pass, &report)?;
        say(&mut sink_job);
        passes.push(report);
    }
    let output = sink_job.finish()?;
    say(&mut sink_job);
    Ok(SpecReport { passes, output })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_with(decode: &str, batch: &str) -> Spec {
        let text = format!(
            "[source]\ninput = \"synthetic:10\"\n{batch}\n{decode}\n[sink]\nkind = \"parquet\"\nout = \"x\"\n"
        );
        Spec::parse(&text, "test").unwrap()
    }

    #[test]
    fn batches_are_sized_from_the_decoded_pixels_unless_given() {
        let rows = |spec: Spec| spec.with_sized_batches().source.options.batch_size;
        let decode = |s: u32, c: u8| {
            format!("[[operator]]\nkind = \"decode\"\nimage_size = {s}\nchannels = {c}\n")
        };
        // 4 MiB of f32 pixels: 6 rows of 224x224x3, the cap of 256 at 32x32.
        assert_eq!(rows(spec_with(&decode(224, 3), "")), Some(6));
        assert_eq!(rows(spec_with(&decode(32, 3), "")), Some(256));
        assert_eq!(rows(spec_with(&decode(128, 1), "")), Some(64));
        assert_eq!(rows(spec_with(&decode(4096, 3), "")), Some(1));
        // Nothing decodes: the default; a given size is kept.
        assert_eq!(rows(spec_with("", "")), Some(256));
        assert_eq!(
            rows(spec_with(&decode(224, 3), "batch_size = 100")),
            Some(100)
        );
    }

    #[test]
    fn padded_work_counts_the_chunks_a_batch_pays_for() {
        assert_eq!(padded_work(64, 32), None);
        assert_eq!(padded_work(1, 32), Some(32.0));
        assert_eq!(padded_work(8, 32), Some(4.0));
        assert_eq!(padded_work(50, 32), Some(64.0 / 50.0));
    }
}
