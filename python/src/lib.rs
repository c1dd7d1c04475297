//! Python bindings of the savl runtime: the extension module `savl._savl` of the `savl` Python
//! package (`python/savl/`), built by maturin (`pip install ./python`).
//!
//! `savl.Upscaler(model=None, precision="auto", tile=None, threads=None)` loads a model (the
//! embedded one by default); `.upscale(array)` takes H×W×3 / H×W×4 uint8 or uint16 numpy arrays
//! and returns what `savl upscale` writes to a PNG file, sample for sample ([`pixels`]);
//! `.inspect(array)` returns the degradation maps. The GIL is released while the model runs.
//! Runtime errors are raised as subclasses of `savl.SavlError`, one per fault of
//! [`savl::Error`], with the runtime's message ([`module`]).
//!
//! The crate has no Rust tests: an extension module leaves the Python symbols to the
//! interpreter, so no test harness links against it. `cargo test --workspace` builds the same
//! module as the example `_savl_ext` (`target/debug/examples/lib_savl_ext.so`), and
//! `python/tests` (pytest) runs on that file (`.ci/run`).

pub mod module;
pub mod pixels;
