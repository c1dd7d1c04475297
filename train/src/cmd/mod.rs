//! Subcommands of the `savl-train` binary; each file owns one, `main.rs` only dispatches.

pub mod clean_code;
pub mod compare;
pub mod degrade;
pub mod eval;
pub mod export;
pub mod probe;
pub mod train;
