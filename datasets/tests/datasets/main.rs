//! The integration tests of ldae-datasets, as one test binary.

mod broken_sources;
mod fuzz_parsers;
mod sources;
