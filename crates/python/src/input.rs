//! Python inputs as bytes: `bytes`, `bytearray`, any buffer of bytes (`memoryview`, a `uint8`
//! numpy array, `mmap`), and `str` (UTF-8).

use std::ops::Deref;

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyByteArray, PyBytes, PyString};

/// One document's bytes, readable without the GIL.
pub enum Bytes {
    /// An immutable `bytes` object, borrowed (no copy).
    Immutable(PyBackedBytes),
    /// A `str`'s UTF-8 form, borrowed from the string (no copy where Python keeps it).
    Str(PyBackedStr),
    /// A copy of a mutable buffer (`bytearray`, `memoryview`, ...): another thread may change
    /// the original while the GIL is released.
    Owned(Vec<u8>),
}

impl Deref for Bytes {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Bytes::Immutable(b) => b,
            Bytes::Str(s) => s.as_bytes(),
            Bytes::Owned(v) => v,
        }
    }
}

const EXPECTED: &str = "bytes, bytearray, memoryview (or another buffer of bytes) or str";

/// Reads one document.
///
/// # Errors
/// `TypeError` for anything else; `UnicodeEncodeError` for a `str` that is not valid Unicode
/// (lone surrogates).
pub fn document(obj: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Bytes::Immutable(PyBackedBytes::from(b.clone())));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Bytes::Owned(b.to_vec()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Bytes::Str(PyBackedStr::try_from(s.clone())?));
    }
    match PyBuffer::<u8>::get(obj) {
        Ok(buffer) => Ok(Bytes::Owned(buffer.to_vec(obj.py())?)),
        Err(_) => Err(PyTypeError::new_err(format!(
            "expected {EXPECTED}, got {}",
            type_name(obj)
        ))),
    }
}

/// Reads a sequence (any iterable) of documents; a single document is refused, so that a `str`
/// is never taken as a list of one-character documents.
///
/// # Errors
/// `TypeError` for a single document, a non-iterable, or an element that is not a document.
pub fn documents(obj: &Bound<'_, PyAny>) -> PyResult<Vec<Bytes>> {
    if obj.is_instance_of::<PyBytes>()
        || obj.is_instance_of::<PyByteArray>()
        || obj.is_instance_of::<PyString>()
    {
        return Err(PyTypeError::new_err(format!(
            "expected a list of documents, got a single {}: wrap it in a list",
            type_name(obj)
        )));
    }
    let iter = obj.try_iter().map_err(|_| {
        PyTypeError::new_err(format!(
            "expected a list of documents ({EXPECTED}), got {}",
            type_name(obj)
        ))
    })?;
    iter.enumerate()
        .map(|(i, item)| {
            document(&item?).map_err(|e| {
                if e.is_instance_of::<PyTypeError>(obj.py()) {
                    PyTypeError::new_err(format!("document {i}: {}", e.value(obj.py())))
                } else {
                    e
                }
            })
        })
        .collect()
}

/// Documents as slices.
pub fn slices(docs: &[Bytes]) -> Vec<&[u8]> {
    docs.iter().map(|d| &d[..]).collect()
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "an unknown type".into())
}
