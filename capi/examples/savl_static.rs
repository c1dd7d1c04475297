//! The C ABI built as a staticlib example (`libsavl_static.a`), from the library's own source:
//! `cargo test` builds examples but not a library without an rlib, and the C tests
//! (`tests/capi_c.rs`) need the static library of exactly this build.

#[path = "../src/abi.rs"]
pub mod abi;
pub use abi::*;
