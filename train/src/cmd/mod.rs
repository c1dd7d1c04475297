//! Subcommands of the `savl-train` binary; each file owns one, `main.rs` only dispatches.

pub mod degrade;
pub mod export;
pub mod train;
