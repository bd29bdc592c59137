//! `bltpatch.Decoder`: the generation-time, byte-by-byte decoder.

use std::sync::Mutex;

use bltpatch::{Decoder, Model, Patcher};
use numpy::PyArray1;
use pyo3::prelude::*;

use crate::boundary::{BltpatchError, run_serial, to_py};
use crate::input::document;

self_cell::self_cell!(
    /// A decoder together with the patcher it borrows, so that Python can hold it.
    struct OwnedDecoder {
        owner: Patcher<Model>,
        #[not_covariant]
        dependent: Decoder,
    }
);

/// Pushes bytes one at a time and says whether each starts a patch, exactly as `Model.segment`
/// with the same rule cuts the whole document. For entropy rules and static patches the answer
/// is known before the byte exists (`next_starts_patch`), so a generator can open the new patch
/// first. Made by `Model.decoder(...)`; one document at a time (`finish` or `reset` starts the
/// next). The GIL is released while the model runs.
#[pyclass(name = "Decoder", module = "bltpatch", frozen)]
pub struct PyDecoder {
    inner: Mutex<OwnedDecoder>,
}

impl PyDecoder {
    /// A decoder for the patcher's scheme.
    ///
    /// # Errors
    /// `BltpatchError` for BPE, which has no byte-by-byte decoder.
    pub fn new(patcher: Patcher<Model>) -> PyResult<Self> {
        let inner = OwnedDecoder::try_new(patcher, |p| p.decoder()).map_err(to_py)?;
        Ok(Self {
            inner: Mutex::new(inner),
        })
    }

    /// Runs `f` on the decoder with the GIL released (the lock is taken without the GIL, so a
    /// thread waiting for it never blocks one that needs the GIL back).
    fn with<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Decoder<'_>) -> T + Send,
    ) -> PyResult<T> {
        run_serial(py, || {
            let mut guard = self.inner.lock().map_err(|_| {
                BltpatchError::new_err("the decoder is unusable after an internal error")
            })?;
            Ok(guard.with_dependent_mut(|_, d| f(d)))
        })
    }
}

#[pymethods]
impl PyDecoder {
    /// Whether the byte to come starts a patch whatever its value (`True`/`False`), or `None`
    /// when that depends on the byte itself (space patching after a space-like byte).
    fn next_starts_patch(&self, py: Python<'_>) -> PyResult<Option<bool>> {
        self.with(py, |d| d.next_starts_patch())
    }

    /// The entropy (nats) of the byte to come, for entropy rules; `None` for the baselines.
    fn next_entropy(&self, py: Python<'_>) -> PyResult<Option<f32>> {
        self.with(py, |d| d.next_entropy())
    }

    /// Appends one byte (0..=255); returns whether it starts a patch.
    fn push(&self, py: Python<'_>, byte: u8) -> PyResult<bool> {
        self.with(py, |d| d.push(byte))
    }

    /// Appends bytes (bytes, bytearray, memoryview or str); returns a bool array: whether each
    /// byte starts a patch.
    fn push_bytes<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let bytes = document(data)?;
        let starts = self.with(py, |d| {
            let mut starts = Vec::with_capacity(bytes.len());
            d.push_slice(&bytes, |s| starts.push(s));
            starts
        })?;
        Ok(PyArray1::from_vec(py, starts))
    }

    /// Ends the document: returns the length of the open (last) patch, or `None` if no byte
    /// was pushed, and starts a new document.
    fn finish(&self, py: Python<'_>) -> PyResult<Option<usize>> {
        self.with(py, |d| {
            let last = (!d.is_empty()).then(|| d.current_patch_len());
            d.reset();
            last
        })
    }

    /// Starts a new document (empty context, no patches).
    fn reset(&self, py: Python<'_>) -> PyResult<()> {
        self.with(py, |d| d.reset())
    }

    /// Patches started in this document.
    #[getter]
    fn patches(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |d| d.patches())
    }

    /// Bytes in the open patch (0 before the first byte).
    #[getter]
    fn current_patch_len(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |d| d.current_patch_len())
    }

    /// Bytes pushed in this document.
    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.with(py, |d| d.len())
    }
}
