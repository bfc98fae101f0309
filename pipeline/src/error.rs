//! The engine's error type. Every variant says where it happened (stage, row or file) so the
//! command line can print one readable line.

use arrow::error::ArrowError;

/// Errors raised while planning or running a pipeline.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline cannot be built: a missing column, a wrong shape, inconsistent settings.
    #[error("plan: stage '{stage}': {message}")]
    Plan { stage: String, message: String },
    /// One row failed and the run was asked to stop at the first bad row (`--on-error fail`).
    #[error("stage '{stage}' rejected row '{row}': {message}")]
    Row {
        stage: String,
        row: String,
        message: String,
    },
    /// A stage failed as a whole (not because of one row).
    #[error("stage '{stage}': {message}")]
    Stage { stage: String, message: String },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// An Arrow kernel or array construction failed.
    #[error("arrow: {0}")]
    Arrow(#[from] ArrowError),
    /// A component's config in a spec could not be read (unknown key, wrong type, ...).
    #[error("spec: {component}")]
    Spec {
        component: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure inside a library ldae builds on (candle, parquet, safetensors, ...), with what
    /// was being done; the library's own error is the source.
    #[error("{context}")]
    External {
        context: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// An error raised inside a stage, wrapped with the stage's name.
    #[error("stage '{stage}'")]
    InStage {
        stage: String,
        #[source]
        source: Box<Error>,
    },
    /// The job was asked to stop ([`crate::interrupt::request`], Ctrl-C in Python).
    #[error(
        "interrupted: the job was stopped before it finished; nothing unfinished was committed"
    )]
    Interrupted,
    /// Any other failure, described in words; the executor adds the stage name.
    #[error("{0}")]
    Other(String),
}

/// Result alias used throughout the engine and the operator crates.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A free-form error; the executor attaches the stage it came from.
    pub fn msg(message: impl Into<String>) -> Self {
        Error::Other(message.into())
    }

    /// A plan-time error for `stage`.
    pub fn plan(stage: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Plan {
            stage: stage.into(),
            message: message.into(),
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// Attach the stage name to errors that do not carry one yet.
    pub fn in_stage(self, stage: &str) -> Self {
        match self {
            Error::Other(message) => Error::Stage {
                stage: stage.to_string(),
                message,
            },
            Error::Arrow(e) => Error::Stage {
                stage: stage.to_string(),
                message: format!("arrow: {e}"),
            },
            Error::Io { path, source } => Error::Stage {
                stage: stage.to_string(),
                message: format!("{path}: {source}"),
            },
            e @ (Error::External { .. } | Error::Spec { .. }) => Error::InStage {
                stage: stage.to_string(),
                source: Box::new(e),
            },
            other => other,
        }
    }

    /// Wrap a library error with what was being done.
    pub fn external(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::External {
            context: context.into(),
            source: Box::new(source),
        }
    }

    /// The message and every cause, joined by ": " (for tables and logs that keep one string).
    pub fn chain(&self) -> String {
        describe(self)
    }
}

/// `error` and its causes in one line, joined by ": ". A cause whose text the line already
/// ends with is not repeated (an I/O error shown in its wrapper's message and kept as its
/// source was printed twice: "x.parquet: No space left on device: No space left on device").
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        let part = c.to_string();
        if !part.is_empty() && !text.ends_with(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        cause = c.source();
    }
    text
}
