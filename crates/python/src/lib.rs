//! Python bindings of bltpatch: the `bltpatch` module (`pip install ./crates/python`).
//!
//! A thin layer: arguments become the library's types (bytes-like inputs, a
//! [`bltpatch::RuleSpec`] from keyword arguments), the library does the work with the GIL
//! released on this module's rayon pool, and results come back as numpy arrays built from
//! Rust vectors (no Python object per element). Errors are Python exceptions; a panic is
//! caught at the boundary and raised as `RuntimeError`.

mod boundary;
mod decoder;
mod input;
mod model;
mod rule;

use pyo3::prelude::*;

/// bltpatch: an entropy-patching byte tokenizer.
///
/// A small causal next-byte model predicts how hard each byte is; patch (token) boundaries go
/// where that entropy is high or jumps, or where the entropy summed over a patch reaches a
/// budget, as in Meta's Byte Latent Transformer. Streaming byte by byte (`Model.decoder`) finds
/// exactly the boundaries of batch segmentation.
#[pymodule]
#[pyo3(name = "bltpatch")]
fn bltpatch_python(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BltpatchError", py.get_type::<boundary::BltpatchError>())?;
    m.add_class::<model::PyModel>()?;
    m.add_class::<decoder::PyDecoder>()?;
    m.add_function(wrap_pyfunction!(boundary::set_num_threads, m)?)?;
    m.add_function(wrap_pyfunction!(boundary::get_num_threads, m)?)?;
    Ok(())
}
