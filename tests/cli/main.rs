//! The end-to-end tests of the `ldae` binary and the Python cross-checks, as one test binary
//! (one link of arrow, datafusion and candle instead of one per file).

mod ablate_cli;
mod array_jobs;
mod bad_inputs;
mod common;
mod demo_cli;
mod fuzz_artifacts;
mod gpu_check_script;
mod isa_cli;
mod nonsense_inputs;
mod pca_cli;
mod probe_cli;
mod python_checks;
mod recipe_script;
mod spec_cli;
mod sql_cli;
mod train_cli;
#[path = "../python/venv.rs"]
mod venv;
