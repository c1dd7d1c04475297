//! The extension module `savl._savl`: the `Upscaler` class over [`savl::Upscaler`], its
//! argument checks, and the exception classes the runtime's errors are raised as.
//!
//! A new method goes in `#[pymethods] impl PyUpscaler` here, with its line in
//! `python/savl/_savl.pyi` and, if users should call it, a wrapper in `python/savl/__init__.py`.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::ndarray::{Array2, Array3};
use numpy::{IntoPyArray, PyArray3, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyTuple, PyType};

use crate::pixels::{self, Pixels, Samples};

/// The exception classes, made once per interpreter by [`make_exceptions`].
struct Exceptions {
    base: Py<PyType>,
    model: Py<PyType>,
    invalid_input: Py<PyType>,
    config: Py<PyType>,
    limits: Py<PyType>,
    memory: Py<PyType>,
    unsupported: Py<PyType>,
    file: Py<PyType>,
    inference: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// `type(name, bases, {...})`: a class of module `savl` (so that tracebacks say `savl.…`).
fn new_class<'py>(
    py: Python<'py>,
    name: &str,
    bases: Vec<Bound<'py, PyAny>>,
    doc: &str,
) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("__module__", "savl")?;
    ns.set_item("__doc__", doc)?;
    let class =
        py.import("builtins")?
            .getattr("type")?
            .call1((name, PyTuple::new(py, bases)?, ns))?;
    Ok(class.cast_into::<PyType>()?.unbind())
}

/// Builds the exception hierarchy: `SavlError` and one subclass per fault of [`savl::Error`],
/// each also deriving from the standard exception of that fault where there is one.
fn make_exceptions(py: Python<'_>) -> PyResult<Exceptions> {
    let builtin =
        |name: &str| -> PyResult<Bound<'_, PyAny>> { py.import("builtins")?.getattr(name) };
    let base = new_class(
        py,
        "SavlError",
        vec![builtin("Exception")?],
        "Base class of every error savl raises; str(e) is the runtime's message.",
    )?;
    let b = || base.bind(py).clone().into_any();
    Ok(Exceptions {
        model: new_class(
            py,
            "ModelError",
            vec![b()],
            "The model file is missing, corrupt, or does not follow the savl model contract.",
        )?,
        invalid_input: new_class(
            py,
            "InvalidInputError",
            vec![b(), builtin("ValueError")?],
            "The picture cannot be processed: wrong dtype, shape or memory layout, or empty.",
        )?,
        config: new_class(
            py,
            "ConfigError",
            vec![b(), builtin("ValueError")?],
            "A setting is out of range (attributes: parameter, value, expected).",
        )?,
        limits: new_class(
            py,
            "LimitsError",
            vec![b()],
            "A resource limit would be exceeded (attributes: what, requested, limit, unit).",
        )?,
        memory: new_class(
            py,
            "OutOfMemoryError",
            vec![b(), builtin("MemoryError")?],
            "Memory for a buffer could not be allocated.",
        )?,
        unsupported: new_class(
            py,
            "UnsupportedError",
            vec![b()],
            "Valid but not supported by this model or build (e.g. inspect on a model without degradation outputs).",
        )?,
        file: new_class(
            py,
            "FileError",
            vec![b(), builtin("OSError")?],
            "An I/O error on a file the runtime reads.",
        )?,
        inference: new_class(
            py,
            "InferenceError",
            vec![b(), builtin("RuntimeError")?],
            "Running the model failed (a bug or an engine limitation, not bad input).",
        )?,
        base,
    })
}

fn exceptions(py: Python<'_>) -> PyResult<&Exceptions> {
    EXCEPTIONS.get_or_try_init(py, || make_exceptions(py))
}

/// An exception of class `class` with message `msg` and the given attributes.
fn raise(
    py: Python<'_>,
    class: &Py<PyType>,
    msg: String,
    attrs: &[(&str, Bound<'_, PyAny>)],
) -> PyErr {
    let made = (|| -> PyResult<PyErr> {
        let e = class.bind(py).call1((msg.clone(),))?;
        for (k, v) in attrs {
            e.setattr(*k, v)?;
        }
        Ok(PyErr::from_value(e))
    })();
    made.unwrap_or_else(|e| PyRuntimeError::new_err(format!("{msg} (and raising it failed: {e})")))
}

/// The runtime's error as the Python exception of its fault, with the runtime's message.
fn to_py(py: Python<'_>, e: savl::Error) -> PyErr {
    let ex = match exceptions(py) {
        Ok(ex) => ex,
        Err(err) => return err,
    };
    let msg = e.to_string();
    let any = |v: &str| pyo3::types::PyString::new(py, v).into_any();
    match &e {
        savl::Error::Model { .. } => raise(py, &ex.model, msg, &[]),
        savl::Error::InvalidInput(_) => raise(py, &ex.invalid_input, msg, &[]),
        savl::Error::InvalidConfig {
            parameter,
            value,
            expected,
        } => raise(
            py,
            &ex.config,
            msg,
            &[
                ("parameter", any(parameter)),
                ("value", any(value)),
                ("expected", any(expected)),
            ],
        ),
        savl::Error::Limits {
            what,
            requested,
            limit,
            unit,
        } => {
            let Ok(r) = requested.into_pyobject(py);
            let Ok(l) = limit.into_pyobject(py);
            raise(
                py,
                &ex.limits,
                msg,
                &[
                    ("what", any(what)),
                    ("requested", r.into_any()),
                    ("limit", l.into_any()),
                    ("unit", any(unit)),
                ],
            )
        }
        savl::Error::OutOfMemory { .. } => raise(py, &ex.memory, msg, &[]),
        savl::Error::Unsupported(_) => raise(py, &ex.unsupported, msg, &[]),
        savl::Error::Io { .. } => raise(py, &ex.file, msg, &[]),
        savl::Error::Runtime(_) | savl::Error::Sink(_) => raise(py, &ex.inference, msg, &[]),
        _ => raise(py, &ex.base, msg, &[]),
    }
}

/// `InvalidInputError(msg)`.
fn invalid_input(py: Python<'_>, msg: String) -> PyErr {
    match exceptions(py) {
        Ok(ex) => raise(py, &ex.invalid_input, msg, &[]),
        Err(e) => e,
    }
}

/// What `upscale` and `inspect` accept, in words (for error messages).
const ACCEPTED: &str = "an H×W×3 (RGB) or H×W×4 (RGBA) numpy array of dtype uint8 or uint16";

fn shape_str(shape: &[usize]) -> String {
    let parts: Vec<String> = shape.iter().map(usize::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Copies a checked numpy array into [`Pixels`]: `array` must be C-contiguous, H×W×3 or H×W×4,
/// uint8 or uint16 (native byte order), and not empty; anything else is an
/// `InvalidInputError` naming the problem.
fn read_pixels(py: Python<'_>, array: &Bound<'_, PyAny>) -> PyResult<Pixels> {
    let Ok(untyped) = array.cast::<PyUntypedArray>() else {
        let ty = array
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        return Err(invalid_input(
            py,
            format!("expected {ACCEPTED} (or a PIL image), got {ty}"),
        ));
    };
    let shape = untyped.shape().to_vec();
    let is_u8 = array.cast::<numpy::PyArrayDyn<u8>>().is_ok();
    let is_u16 = array.cast::<numpy::PyArrayDyn<u16>>().is_ok();
    if !is_u8 && !is_u16 {
        let dtype = untyped
            .dtype()
            .str()
            .map(|s| s.to_string())
            .unwrap_or_default();
        return Err(invalid_input(
            py,
            format!("unsupported dtype {dtype}: expected {ACCEPTED}"),
        ));
    }
    if shape.len() != 3 || !(shape[2] == 3 || shape[2] == 4) {
        return Err(invalid_input(
            py,
            format!(
                "unsupported shape {}: expected {ACCEPTED}",
                shape_str(&shape)
            ),
        ));
    }
    if shape.contains(&0) {
        return Err(invalid_input(
            py,
            format!(
                "empty array of shape {}: the picture needs at least one pixel",
                shape_str(&shape)
            ),
        ));
    }
    if !untyped.is_c_contiguous() {
        return Err(invalid_input(
            py,
            format!(
                "the array of shape {} is not C-contiguous (strides {:?}, e.g. a slice like a[:, ::2] or a transpose): pass numpy.ascontiguousarray(a)",
                shape_str(&shape),
                untyped.strides()
            ),
        ));
    }
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    let too_big = || {
        invalid_input(
            py,
            format!(
                "array of shape {} is too large: sides must fit in 32 bits",
                shape_str(&shape)
            ),
        )
    };
    let width = u32::try_from(w).map_err(|_| too_big())?;
    let height = u32::try_from(h).map_err(|_| too_big())?;
    let not_contig = |e: numpy::NotContiguousError| invalid_input(py, e.to_string());
    let samples = if is_u8 {
        let a = array.cast::<numpy::PyArrayDyn<u8>>()?.readonly();
        Samples::U8(a.as_slice().map_err(not_contig)?.to_vec())
    } else {
        let a = array.cast::<numpy::PyArrayDyn<u16>>()?.readonly();
        Samples::U16(a.as_slice().map_err(not_contig)?.to_vec())
    };
    Ok(Pixels {
        width,
        height,
        channels: c,
        samples,
    })
}

/// What `inspect` returns: `mu` (d × H × W) and `severity` (H × W).
type Maps<'py> = (Bound<'py, PyArray3<f32>>, Bound<'py, numpy::PyArray2<f32>>);

/// A loaded model, ready to upscale pictures; safe to share between Python threads (the GIL is
/// released while the model runs).
#[pyclass(name = "Upscaler", module = "savl._savl", frozen)]
pub struct PyUpscaler {
    inner: Arc<savl::Upscaler>,
}

#[pymethods]
impl PyUpscaler {
    /// Loads `model` (a path, the file's bytes, or None for the model embedded in the library)
    /// at `precision` ("auto", "f32", "f16", "int8"), with tiles of `tile` LR pixels and
    /// `threads` worker threads (None: the runtime's defaults). Raises ModelError, ConfigError.
    #[new]
    #[pyo3(signature = (model=None, precision="auto", tile=None, threads=None))]
    fn new(
        py: Python<'_>,
        model: Option<&Bound<'_, PyAny>>,
        precision: &str,
        tile: Option<usize>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let precision: savl::Precision = precision.parse().map_err(|e| to_py(py, e))?;
        let mut builder = savl::Upscaler::builder().precision(precision);
        match model {
            None => {}
            Some(m) if m.is_none() => {}
            Some(m) => {
                if let Ok(b) = m.cast::<PyBytes>() {
                    builder = builder.model_bytes(b.as_bytes().to_vec());
                } else {
                    let path: PathBuf = m.extract().map_err(|_| match exceptions(py) {
                        Ok(ex) => raise(
                            py,
                            &ex.config,
                            "model must be a path (str or os.PathLike), bytes, or None".into(),
                            &[],
                        ),
                        Err(e) => e,
                    })?;
                    builder = builder.model_path(path);
                }
            }
        }
        if let Some(t) = tile {
            builder = builder.tile(t);
        }
        if let Some(t) = threads {
            builder = builder.threads(t);
        }
        let up = py.detach(|| builder.build()).map_err(|e| to_py(py, e))?;
        Ok(PyUpscaler {
            inner: Arc::new(up),
        })
    }

    /// Upscales an H×W×3 or H×W×4 uint8 / uint16 array into a (scale·H)×(scale·W) array of the
    /// same channel count and dtype, equal to `savl upscale`'s PNG output: grey in, grey out;
    /// alpha upscaled on its own; 16 bits quantised from the model's float output.
    fn upscale<'py>(
        &self,
        py: Python<'py>,
        array: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let pixels = read_pixels(py, array)?;
        let img = pixels.into_dynamic().map_err(|e| invalid_input(py, e))?;
        let up = Arc::clone(&self.inner);
        let out = py
            .detach(move || pixels::upscale(&up, img))
            .map_err(|e| to_py(py, e))?;
        let shape = (out.height as usize, out.width as usize, out.channels);
        let bad = |e: numpy::ndarray::ShapeError| {
            PyRuntimeError::new_err(format!("internal error: output shape: {e}"))
        };
        Ok(match out.samples {
            Samples::U8(v) => Array3::from_shape_vec(shape, v)
                .map_err(bad)?
                .into_pyarray(py)
                .into_any(),
            Samples::U16(v) => Array3::from_shape_vec(shape, v)
                .map_err(bad)?
                .into_pyarray(py)
                .into_any(),
        })
    }

    /// The model's degradation maps of an H×W×3 or H×W×4 uint8 / uint16 array (given to the
    /// model as RGB8, as `savl inspect` does): `(mu, severity)`, float32 arrays of shapes
    /// (d, H, W) and (H, W). UnsupportedError for models without them.
    fn inspect<'py>(&self, py: Python<'py>, array: &Bound<'py, PyAny>) -> PyResult<Maps<'py>> {
        let pixels = read_pixels(py, array)?;
        let img = pixels.into_dynamic().map_err(|e| invalid_input(py, e))?;
        let up = Arc::clone(&self.inner);
        let est = py
            .detach(move || up.estimate(&pixels::inspect_input(img)))
            .map_err(|e| to_py(py, e))?;
        let bad = |e: numpy::ndarray::ShapeError| {
            PyRuntimeError::new_err(format!("internal error: map shape: {e}"))
        };
        let mu = Array3::from_shape_vec((est.dim, est.height, est.width), est.mu).map_err(bad)?;
        let sev = Array2::from_shape_vec((est.height, est.width), est.severity).map_err(bad)?;
        Ok((mu.into_pyarray(py), sev.into_pyarray(py)))
    }

    /// The model's scale factor (4).
    #[getter]
    fn scale(&self) -> usize {
        self.inner.scale()
    }

    /// The precision that runs ("f32", "f16" or "int8"; never "auto").
    #[getter]
    fn precision(&self) -> String {
        self.inner.precision().to_string()
    }

    /// The fixed tile side in LR pixels, or `None` when each picture gets the largest tile within
    /// the memory budget (`tile_for`).
    #[getter]
    fn tile(&self) -> Option<usize> {
        self.inner.tile()
    }

    /// The tile side used for a `width × height` picture.
    fn tile_for(&self, width: usize, height: usize) -> usize {
        self.inner.tile_for(width, height)
    }

    /// The tile halo in LR pixels.
    #[getter]
    fn halo(&self) -> usize {
        self.inner.halo()
    }

    /// Worker threads of this upscaler.
    #[getter]
    fn threads(&self) -> usize {
        self.inner.threads()
    }

    /// The model file that was loaded (`<embedded:…>` for the embedded model).
    #[getter]
    fn model_name(&self) -> String {
        self.inner.model_name().display().to_string()
    }

    /// Whether the model has degradation outputs (what `inspect` needs).
    #[getter]
    fn has_estimate(&self) -> bool {
        self.inner.has_estimate()
    }

    /// Model, precision and why, CPU features, tiling and threads, as `savl -v` prints them.
    fn describe(&self) -> String {
        self.inner.describe()
    }

    fn __repr__(&self) -> String {
        format!(
            "savl.Upscaler(model={:?}, precision={:?}, tile={}, threads={})",
            self.inner.model_name().display().to_string(),
            self.inner.precision().to_string(),
            self.inner
                .tile()
                .map_or_else(|| "None".to_string(), |t| t.to_string()),
            self.inner.threads()
        )
    }
}

/// The extension module: `Upscaler`, the exception classes and `__version__`.
#[pymodule]
pub fn _savl(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<PyUpscaler>()?;
    let ex = exceptions(py)?;
    for (name, class) in [
        ("SavlError", &ex.base),
        ("ModelError", &ex.model),
        ("InvalidInputError", &ex.invalid_input),
        ("ConfigError", &ex.config),
        ("LimitsError", &ex.limits),
        ("OutOfMemoryError", &ex.memory),
        ("UnsupportedError", &ex.unsupported),
        ("FileError", &ex.file),
        ("InferenceError", &ex.inference),
    ] {
        m.add(name, class.bind(py))?;
    }
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
