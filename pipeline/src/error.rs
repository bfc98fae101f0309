//! The engine's error type. Every variant says where it happened (stage, row or file) so the
//! command line can print one readable line.

use arrow::error::ArrowError;

/// Errors raised while planning or running a pipeline.
///
/// An error keeps its cause: the wrapping variants ([`Error::Plan`], [`Error::InStage`],
/// [`Error::Context`], [`Error::External`], [`Error::Spec`]) hold it as their `source`, and
/// [`Error::chain`] prints the whole chain on one line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The pipeline cannot be built: a missing column, a wrong shape, inconsistent settings.
    /// `source` says what is wrong.
    #[error("plan: stage '{stage}'")]
    Plan {
        stage: String,
        #[source]
        source: Box<Error>,
    },
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
    /// A file exists but does not hold what ldae expects there (a PCA file, a run folder, a
    /// table, a model folder).
    #[error("{path}: {message}")]
    Corrupt { path: String, message: String },
    /// A kind that is not registered (operator, sink, source, architecture, ...).
    #[error("unknown {what} '{name}'; known: {}", known.join(", "))]
    UnknownKind {
        what: String,
        name: String,
        known: Vec<String>,
    },
    /// A setting or an argument outside what is accepted.
    #[error("{0}")]
    Invalid(String),
    /// A table or batch without the columns, types or shapes a stage needs.
    #[error("{0}")]
    Data(String),
    /// An output folder whose state forbids what was asked: written by another job or another
    /// live process, holding foreign files, changed since its parts were committed.
    #[error("{path}: {message}")]
    Conflict { path: String, message: String },
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
    /// An ldae error with what was being done when it happened (the file, the step of a job).
    #[error("{context}")]
    Context {
        context: String,
        #[source]
        source: Box<Error>,
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
    /// A broken invariant inside ldae: a bug, to be reported.
    #[error("internal error (a bug in ldae: please report it): {0}")]
    Internal(String),
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

    /// A setting or argument that is not accepted.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// Input data without the columns, types or shapes a stage needs.
    pub fn data(message: impl Into<String>) -> Self {
        Error::Data(message.into())
    }

    /// A broken invariant (a bug in ldae).
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal(message.into())
    }

    /// The file at `path` does not hold what ldae expects there.
    pub fn corrupt(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }

    /// The output folder at `path` is in a state that forbids what was asked.
    pub fn conflict(path: impl AsRef<std::path::Path>, message: impl Into<String>) -> Self {
        Error::Conflict {
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }

    /// `name` is not one of the `known` kinds of `what` ("operator kind", "architecture", ...).
    pub fn unknown_kind<S: ToString>(
        what: impl Into<String>,
        name: impl Into<String>,
        known: impl IntoIterator<Item = S>,
    ) -> Self {
        Error::UnknownKind {
            what: what.into(),
            name: name.into(),
            known: known.into_iter().map(|k| k.to_string()).collect(),
        }
    }

    /// A plan-time error for `stage`: `message` says what is wrong.
    pub fn plan(stage: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Plan {
            stage: stage.into(),
            source: Box::new(Error::Invalid(message.into())),
        }
    }

    /// This error as a plan-time error of `stage`, unless it already is one (and so names its
    /// stage). The cause stays the source.
    pub fn at_plan(self, stage: impl Into<String>) -> Self {
        match self {
            e @ Error::Plan { .. } => e,
            other => Error::Plan {
                stage: stage.into(),
                source: Box::new(other),
            },
        }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl AsRef<std::path::Path>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.as_ref().display().to_string(),
            source,
        }
    }

    /// This error with what was being done when it happened.
    pub fn context(self, context: impl Into<String>) -> Self {
        Error::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// Attach the stage name to errors that do not carry one yet (the cause stays the source).
    pub fn in_stage(self, stage: &str) -> Self {
        match self {
            e @ (Error::Plan { .. }
            | Error::Row { .. }
            | Error::Stage { .. }
            | Error::InStage { .. }
            | Error::Interrupted) => e,
            other => Error::InStage {
                stage: stage.to_string(),
                source: Box::new(other),
            },
        }
    }

    /// Whether the error is about what was asked (settings, arguments, a spec, names) rather
    /// than about what happened while running: the Python package raises `ValueError` for these.
    pub fn is_about_settings(&self) -> bool {
        match self {
            Error::Plan { .. }
            | Error::Spec { .. }
            | Error::Invalid(_)
            | Error::UnknownKind { .. } => true,
            Error::InStage { source, .. } | Error::Context { source, .. } => {
                source.is_about_settings()
            }
            _ => false,
        }
    }

    /// Whether the error (or the one it wraps) is an output folder's [`Error::Conflict`].
    pub fn is_conflict(&self) -> bool {
        match self {
            Error::Conflict { .. } => true,
            Error::InStage { source, .. } | Error::Context { source, .. } => source.is_conflict(),
            _ => false,
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
