//! The `ldae` command line as a library: its flags ([`cli`]) and commands ([`commands`]).
//!
//! The binary (`src/main.rs`) parses the process's arguments and runs one command; the Python
//! package parses keyword arguments into the same [`cli::Cli`] and runs the same command, so
//! both share every default, check and error message.

pub mod cli;
pub mod commands;
pub mod flags;
