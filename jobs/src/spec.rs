//! Pipeline specs (`ldae run SPEC.toml`): a source, registered operators in order, a
//! registered sink. Each `[[operator]]` and the `[sink]` table is the config struct of its
//! `kind`, looked up in the registry, so a spec reads as the picture of the job and a new
//! operator needs no change here. docs/pipeline-spec.md lists every kind and key.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ldae_pipeline::registry::{build_operator, build_sink};
use ldae_pipeline::{
    BuildContext, Error, Operator, OperatorConfig, Pipeline, PlanInfo, RunOptions, RunReport,
    SinkConfig, Source,
};

use crate::source::SourceSpec;
use crate::Result;
use ldae_datasets::SourceOptions;

/// One `[[operator]]` or the `[sink]`: `kind` and the kind's own keys.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Component(pub toml::Table);

impl Component {
    /// The component of operator config `config`.
    pub fn operator<C: OperatorConfig>(config: &C) -> Result<Component> {
        Self::of(C::KIND, config)
    }

    /// The component of sink config `config`.
    pub fn sink<C: SinkConfig>(config: &C) -> Result<Component> {
        Self::of(C::KIND, config)
    }

    fn of<C: serde::Serialize>(kind: &str, config: &C) -> Result<Component> {
        let keys = toml::Table::try_from(config).map_err(|e| Error::Spec {
            component: kind.to_string(),
            source: Box::new(e),
        })?;
        let mut table = toml::Table::new();
        table.insert("kind".into(), toml::Value::String(kind.into()));
        table.extend(keys);
        Ok(Component(table))
    }

    /// The `kind` and the remaining keys as JSON (what the registry's builders parse).
    fn parts(&self, what: &str) -> Result<(String, serde_json::Value)> {
        let mut table = self.0.clone();
        let kind = match table.remove("kind") {
            Some(toml::Value::String(k)) => k,
            _ => {
                return Err(Error::invalid(format!(
                    "every {what} needs kind = \"...\" (see docs/pipeline-spec.md)"
                )))
            }
        };
        let value = serde_json::to_value(&table).map_err(|e| Error::Spec {
            component: kind.clone(),
            source: Box::new(e),
        })?;
        Ok((kind, value))
    }
}

/// A whole pipeline.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// Where rows come from.
    pub source: SourceSpec,
    /// Operators, applied in order.
    #[serde(default, rename = "operator", skip_serializing_if = "Vec::is_empty")]
    pub operators: Vec<Component>,
    /// Where rows go.
    pub sink: Component,
}

/// Bytes of decoded f32 pixels one batch may hold when its size is chosen from the images:
/// small enough that a batch's buffers are reused by the allocator (not mapped, faulted in and
/// returned for every batch: at 224 px, 256 rows are 154 MB of f32 pixels per stage), large
/// enough that per-batch costs vanish.
pub const BATCH_PIXEL_BYTES: usize = 4 << 20;

impl Spec {
    /// The spec with the source's batch size filled in when it was left unset: as many rows as
    /// fit [`BATCH_PIXEL_BYTES`] of f32 pixels at the first `decode` operator's image size and
    /// channels (256 at 32x32 RGB, 6 at 224x224 RGB), capped at
    /// [`SourceOptions::DEFAULT_BATCH_ROWS`]; that default when nothing decodes. With an
    /// `encoder`, rounded up to whole chunks of its network ([`ldae_model::encoder::CHUNK`]).
    pub fn with_sized_batches(&self) -> Spec {
        let mut spec = self.clone();
        if spec.source.options.batch_size.is_some() {
            return spec;
        }
        let decode = self.operators.iter().find(|c| {
            c.0.get("kind").and_then(|k| k.as_str())
                == Some(ldae_operators::decode::DecodeConfig::KIND)
        });
        let rows = decode.map_or(SourceOptions::DEFAULT_BATCH_ROWS, |c| {
            let get = |key: &str, default: i64| {
                c.0.get(key)
                    .and_then(|v| v.as_integer())
                    .unwrap_or(default)
                    .max(1) as usize
            };
            let defaults = ldae_operators::decode::DecodeConfig::default();
            let side = get("image_size", defaults.image_size as i64);
            let channels = get("channels", defaults.channels as i64);
            let bytes = side
                .saturating_mul(side)
                .saturating_mul(channels)
                .saturating_mul(4);
            (BATCH_PIXEL_BYTES / bytes).clamp(1, SourceOptions::DEFAULT_BATCH_ROWS)
        });
        // The encoder runs its network on chunks of a fixed number of images, padding the last
        // one: a batch of 6 at 224 px would pay for 32 images. Whole chunks waste nothing.
        let encodes = self.operators.iter().any(|c| {
            c.0.get("kind").and_then(|k| k.as_str())
                == Some(<ldae_model::encoder::EncoderConfig as OperatorConfig>::KIND)
        });
        let rows = match encodes {
            true => rows.next_multiple_of(ldae_model::encoder::CHUNK),
            false => rows,
        };
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

    /// Check that every component names a registered kind and that its keys parse as that
    /// kind's config, without building anything (no file is opened).
    pub fn check(&self) -> Result<()> {
        let ops = ldae_pipeline::registry::operator_kinds();
        for (i, c) in self.operators.iter().enumerate() {
            let (kind, value) = c.parts("[[operator]]")?;
            let k = ops.iter().find(|k| k.kind == kind).ok_or_else(|| {
                Error::unknown_kind("operator kind", &kind, ops.iter().map(|k| k.kind))
                    .context(format!("operator {}", i + 1))
            })?;
            (k.check)(value)?;
        }
        let (kind, value) = self.sink.parts("[sink]")?;
        let sinks = ldae_pipeline::registry::sink_kinds();
        let k = sinks.iter().find(|k| k.kind == kind).ok_or_else(|| {
            Error::unknown_kind("sink kind", &kind, sinks.iter().map(|k| k.kind)).context("sink")
        })?;
        (k.check)(value)
    }

    /// The spec as TOML.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::Spec {
            component: "spec".into(),
            source: Box::new(e),
        })
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
    components: &[Component],
    ctx: &BuildContext,
) -> Result<Vec<Arc<dyn Operator>>> {
    components
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let (kind, value) = c.parts("[[operator]]")?;
            build_operator(&kind, value, ctx).map_err(|e| match e {
                // Plan errors already name their stage.
                Error::Plan { .. } => e,
                other => Error::InStage {
                    stage: format!("operator {} ({kind})", i + 1),
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
    let base_ctx = BuildContext {
        base: settings.base.clone(),
        epoch: 0,
        input: spec.source.resolved_input(&settings.base),
        shard: spec.source.options.shard.map(|s| (s.index, s.count)),
        job,
    };
    let (kind, value) = spec.sink.parts("[sink]")?;
    let mut sink_job = build_sink(&kind, value, &base_ctx).map_err(|e| Error::InStage {
        stage: format!("sink ({kind})"),
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
}
