//! `bltpatch.Model`: a loaded entropy model and every way of segmenting with it.

use std::path::PathBuf;

use bltpatch::{
    Calibration, DEFAULT_CHUNK_LEN, Model, Patcher, Plan, Rule, RuleSpec, entropies_chunked_into,
    surprisals_chunked_into,
};
use numpy::ndarray::Array2;
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::boundary::{BltpatchError, run, run_doc, to_py};
use crate::decoder::PyDecoder;
use crate::input::{self, Bytes, document, documents, slices};
use crate::rule::RuleArgs;

/// A loaded entropy model: the one embedded in bltpatch (`Model.default()`) or a checkpoint
/// directory (`Model.load(path)`). Every segmenting call takes the rule as keyword arguments
/// (`rule=`, `threshold=`, `relative_threshold=`, `budget=`, `target_patch_size=`,
/// `max_patch_len=`); without them, the checkpoint's calibrated rule is used. Thread-safe; the
/// GIL is released while Rust works. Picklable (it pickles as where it was loaded from).
#[pyclass(name = "Model", module = "bltpatch", frozen)]
pub struct PyModel {
    model: Model,
    /// The checkpoint directory, absolute; `None` for the embedded model.
    source: Option<PathBuf>,
}

/// Python's keyword names for the rule, in every signature.
macro_rules! rule_args {
    ($rule:ident, $threshold:ident, $relative:ident, $budget:ident, $target:ident, $max:ident) => {
        RuleArgs {
            rule: $rule,
            threshold: $threshold,
            relative_threshold: $relative,
            budget: $budget,
            target_patch_size: $target,
            max_patch_len: $max,
        }
    };
}

#[pymethods]
impl PyModel {
    /// The model embedded in bltpatch (no file access, no download).
    #[staticmethod]
    fn default(py: Python<'_>) -> PyResult<Self> {
        let model = crate::boundary::run_serial(py, || Ok(Model::default_model()))?;
        Ok(Self {
            model,
            source: None,
        })
    }

    /// Loads a checkpoint directory (`config.json` and `model.safetensors`), checking its
    /// format version, tensor names and shapes. Raises `FileNotFoundError` for a missing
    /// directory or file and `BltpatchError` for a corrupt or foreign checkpoint.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let source = std::path::absolute(&path).unwrap_or(path);
        let model = crate::boundary::run_serial(py, || Model::load(&source).map_err(to_py))?;
        Ok(Self {
            model,
            source: Some(source),
        })
    }

    /// The context length `C` in bytes: the entropy of byte `i` depends on the `C` bytes
    /// before it only.
    #[getter]
    fn context(&self) -> usize {
        self.model.config().context
    }

    /// The architecture (`"conv"`, `"ngram"`).
    #[getter]
    fn arch(&self) -> String {
        self.model.config().arch.clone()
    }

    /// The rule calibrated with the checkpoint, as stored in its `config.json` (`rule`, its
    /// parameter, `max_patch_len`, `target_patch_size`, `mean_patch_len`,
    /// `calibration_bytes`), or `None`.
    #[getter]
    fn calibration<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_string(&self.model.calibration()).map_err(json_error)?,
        )
    }

    /// The checkpoint's whole `config.json` as a dict.
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        json_to_py(
            py,
            &serde_json::to_string(self.model.config()).map_err(json_error)?,
        )
    }

    /// The checkpoint directory this model was loaded from, or `None` for the embedded model.
    #[getter]
    fn path(&self) -> Option<String> {
        self.source
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned())
    }

    /// Patch lengths of one document: an int64 array, all >= 1, summing to the document's
    /// length in bytes (empty for empty input). `str` is UTF-8 encoded. With
    /// `target_patch_size` and an entropy rule, the rule's parameter is calibrated on this
    /// document first.
    #[pyo3(signature = (data, *, rule=None, threshold=None, relative_threshold=None, budget=None, target_patch_size=None, max_patch_len=None))]
    #[allow(clippy::too_many_arguments)]
    fn segment<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        rule: Option<String>,
        threshold: Option<f64>,
        relative_threshold: Option<f64>,
        budget: Option<f64>,
        target_patch_size: Option<f64>,
        max_patch_len: Option<i64>,
    ) -> PyResult<Bound<'py, PyArray1<i64>>> {
        let doc = document(data)?;
        let spec = rule_args!(
            rule,
            threshold,
            relative_threshold,
            budget,
            target_patch_size,
            max_patch_len
        )
        .spec()?;
        let lengths = run_doc(py, doc.len(), || {
            let seg = self.model.segment_docs(&spec, &[&doc]).map_err(to_py)?;
            Ok(seg.lengths[0].iter().map(|&l| l as i64).collect::<Vec<_>>())
        })?;
        Ok(PyArray1::from_vec(py, lengths))
    }

    /// `H[i]` for every byte of one document: a float32 array of entropies in nats, bit for bit
    /// what segmentation compares.
    fn entropies<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        self.per_byte(py, data, |doc, emit| {
            entropies_chunked_into(&self.model, doc, DEFAULT_CHUNK_LEN, emit)
        })
    }

    /// `-ln p(x[i] | context)` for every byte of one document: a float32 array of surprisals
    /// in nats from the next-byte head, with the checkpoint's in-document adaptation if it has
    /// one (the embedded default does). Their sum divided by `ln 2` is the model's code length
    /// in bits: `bltpatch eval` reports the same bits/byte. Boundaries never use them.
    fn surprisals<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        self.per_byte(py, data, |doc, emit| {
            surprisals_chunked_into(&self.model, doc, DEFAULT_CHUNK_LEN, emit)
        })
    }

    /// Segments a list of documents (each from an empty context, in parallel) into int64
    /// arrays.
    ///
    /// `layout="blt"`: `{"patch_lengths": [B, P], "patch_ids": [B, L]}`, BLT's layout: each row
    /// of `patch_lengths` a document's patch lengths right-padded with 0, and `patch_ids` the
    /// patch index of every byte (`L` the longest document).
    ///
    /// `layout="hf"`: what transformers' `BltModel.forward(input_ids=..., patch_lengths=...)`
    /// takes: `{"input_ids": [B, S], "attention_mask": [B, S], "patch_lengths": [B, P]}` with
    /// `S = L + 1`: BOS (id 1), then byte + 4, then padding (id 3); a patch of 1 for BOS, then
    /// the document's patches with its padding added to the last one (so that no real
    /// position's output changes), then 0. Every row sums to `S`.
    ///
    /// With `target_patch_size` and an entropy rule, the parameter is calibrated on the whole
    /// batch. A document of 4 GiB or more raises `BltpatchError`.
    #[pyo3(signature = (docs, *, layout="blt", rule=None, threshold=None, relative_threshold=None, budget=None, target_patch_size=None, max_patch_len=None))]
    #[allow(clippy::too_many_arguments)]
    fn segment_batch<'py>(
        &self,
        py: Python<'py>,
        docs: &Bound<'py, PyAny>,
        layout: &str,
        rule: Option<String>,
        threshold: Option<f64>,
        relative_threshold: Option<f64>,
        budget: Option<f64>,
        target_patch_size: Option<f64>,
        max_patch_len: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let hf = match layout {
            "blt" => false,
            "hf" => true,
            other => {
                return Err(BltpatchError::new_err(format!(
                    "unknown layout `{other}` (expected \"blt\" or \"hf\")"
                )));
            }
        };
        let docs = documents(docs)?;
        let spec = rule_args!(
            rule,
            threshold,
            relative_threshold,
            budget,
            target_patch_size,
            max_patch_len
        )
        .spec()?;
        let arrays = run(py, || {
            let docs = slices(&docs);
            bltpatch::check_batch_len(&docs).map_err(to_py)?;
            let seg = self.model.segment_docs(&spec, &docs).map_err(to_py)?;
            if hf {
                let l = seg.hf_layout(&docs).map_err(to_py)?;
                Ok(vec![
                    ("input_ids", matrix(l.batch, l.seq_len, &l.input_ids)),
                    (
                        "attention_mask",
                        matrix(l.batch, l.seq_len, &l.attention_mask),
                    ),
                    (
                        "patch_lengths",
                        matrix(l.batch, l.max_patches, &l.patch_lengths),
                    ),
                ])
            } else {
                let l = seg.blt_layout().map_err(to_py)?;
                Ok(vec![
                    (
                        "patch_lengths",
                        matrix(l.batch, l.max_patches, &l.patch_lengths),
                    ),
                    ("patch_ids", matrix(l.batch, l.max_len, &l.patch_ids)),
                ])
            }
        })?;
        let out = PyDict::new(py);
        for (name, array) in arrays {
            out.set_item(name, array.into_pyarray(py))?;
        }
        Ok(out)
    }

    /// A byte-by-byte decoder at the start of a document, with exactly the boundaries of
    /// `segment` for the same rule. A rule that calibrates on its input (`target_patch_size`
    /// with an entropy rule) cannot stream: calibrate first (`Model.calibrate`) and pass the
    /// parameter. BPE has no decoder (its boundaries depend on later bytes).
    #[pyo3(signature = (*, rule=None, threshold=None, relative_threshold=None, budget=None, target_patch_size=None, max_patch_len=None))]
    #[allow(clippy::too_many_arguments)]
    fn decoder(
        &self,
        rule: Option<String>,
        threshold: Option<f64>,
        relative_threshold: Option<f64>,
        budget: Option<f64>,
        target_patch_size: Option<f64>,
        max_patch_len: Option<i64>,
    ) -> PyResult<PyDecoder> {
        let spec = rule_args!(
            rule,
            threshold,
            relative_threshold,
            budget,
            target_patch_size,
            max_patch_len
        )
        .spec()?;
        match spec.resolve(self.model.calibration()).map_err(to_py)? {
            Plan::Fixed(scheme) => {
                PyDecoder::new(Patcher::new(self.model.clone(), scheme).map_err(to_py)?)
            }
            Plan::Calibrate { .. } => Err(BltpatchError::new_err(
                "a decoder cannot calibrate on bytes it has not seen (target_patch_size): \
                 calibrate first with Model.calibrate and pass the calibrated parameter",
            )),
        }
    }

    /// Calibrates an entropy rule's parameter (the checkpoint's rule unless `rule=` names
    /// one) so that the mean patch length over `texts` (a document or a list of documents) is
    /// as near `target_patch_size` as the text allows. Returns a dict: `rule`, the calibrated
    /// parameter (`threshold`, `relative_threshold` or `budget`, ready to pass back as a
    /// keyword), `max_patch_len`, `value` (the calibrated number), `target_patch_size`,
    /// `mean_patch_len` (achieved), `patches` and `bytes`.
    #[pyo3(signature = (texts, target_patch_size, *, rule=None, relative_threshold=None, max_patch_len=None))]
    fn calibrate<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        target_patch_size: f64,
        rule: Option<String>,
        relative_threshold: Option<f64>,
        max_patch_len: Option<i64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let docs: Vec<Bytes> = match input::document(texts) {
            Ok(one) => vec![one],
            Err(_) => documents(texts)?,
        };
        let args = RuleArgs {
            rule,
            relative_threshold,
            target_patch_size: Some(target_patch_size),
            max_patch_len,
            ..RuleArgs::default()
        };
        let spec: RuleSpec = args.spec()?;
        let c = run(py, || {
            self.model
                .calibrate_docs(&spec, &slices(&docs))
                .map_err(to_py)
        })?;
        calibration_dict(py, &c, target_patch_size)
    }

    fn __repr__(&self) -> String {
        let source = match &self.source {
            Some(p) => format!("path={:?}", p.display().to_string()),
            None => "default".into(),
        };
        let rule = match self.model.calibration() {
            Some(c) => {
                let params = match c.rule {
                    Rule::Global { threshold } => format!("threshold={threshold}"),
                    Rule::Relative { relative_threshold } => {
                        format!("relative_threshold={relative_threshold}")
                    }
                    Rule::Combined {
                        threshold,
                        relative_threshold,
                    } => format!("threshold={threshold}, relative_threshold={relative_threshold}"),
                    Rule::Budget { budget } => format!("budget={budget}"),
                };
                format!("{}, {params}", c.rule.name())
            }
            None => "none".into(),
        };
        format!(
            "Model({source}, arch={:?}, context={}, calibrated rule: {rule})",
            self.model.config().arch,
            self.model.config().context
        )
    }

    /// Pickles as where the model came from (`Model.load(path)` or `Model.default()`), so that
    /// worker processes load their own copy.
    fn __reduce__<'py>(
        slf: &Bound<'py, Self>,
    ) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyTuple>)> {
        let py = slf.py();
        let class = slf.get_type();
        match &slf.get().source {
            Some(path) => Ok((class.getattr("load")?, PyTuple::new(py, [path.clone()])?)),
            None => Ok((class.getattr("default")?, PyTuple::empty(py))),
        }
    }
}

/// A `[rows, cols]` int64 matrix from row-major values.
fn matrix<T: Copy + Into<i64>>(rows: usize, cols: usize, values: &[T]) -> Array2<i64> {
    let v: Vec<i64> = values.iter().map(|&x| x.into()).collect();
    Array2::from_shape_vec((rows, cols), v).expect("rows * cols values")
}

/// The result of a calibration as a dict.
fn calibration_dict<'py>(
    py: Python<'py>,
    c: &Calibration,
    target_patch_size: f64,
) -> PyResult<Bound<'py, PyDict>> {
    let rule = c.config.rule();
    let out = json_to_py(py, &serde_json::to_string(&rule).map_err(json_error)?)?
        .cast_into::<PyDict>()?;
    out.set_item("max_patch_len", c.config.max_patch_len())?;
    out.set_item("value", c.value)?;
    out.set_item("target_patch_size", target_patch_size)?;
    out.set_item("mean_patch_len", c.mean_patch_len)?;
    out.set_item("patches", c.patches)?;
    out.set_item("bytes", c.bytes)?;
    Ok(out)
}

fn json_to_py<'py>(py: Python<'py>, json: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (json,))
}

impl PyModel {
    /// One float32 value per byte of `data`, from `values(doc, emit)` (the library's chunked
    /// entropies or surprisals, handing each chunk's values to `emit` in order), with the GIL
    /// released.
    fn per_byte<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyAny>,
        values: impl FnOnce(&[u8], &mut dyn FnMut(&[f32])) + Send,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let doc = document(data)?;
        let v = run_doc(py, doc.len(), || {
            let mut v = Vec::with_capacity(doc.len());
            values(&doc, &mut |part| v.extend_from_slice(part));
            Ok(v)
        })?;
        Ok(PyArray1::from_vec(py, v))
    }
}

fn json_error(e: serde_json::Error) -> PyErr {
    BltpatchError::new_err(format!("cannot serialise the configuration: {e}"))
}
