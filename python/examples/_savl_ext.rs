//! The extension module `savl._savl` built as a cdylib example
//! (`target/debug/examples/lib_savl_ext.so`), from the library's own sources: `cargo test`
//! builds examples but not a library without an rlib, and CI's pytest step
//! (`python/tests`) imports exactly this build, copied to `savl/_savl.so`.

#[path = "../src/module.rs"]
pub mod module;
#[path = "../src/pixels.rs"]
pub mod pixels;
