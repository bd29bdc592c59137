//! What happens at the edge between Python and Rust: the exception types, running work with the
//! GIL released on this module's thread pool, and catching panics.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use bltpatch::checkpoint::CheckpointError;
use pyo3::exceptions::{PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::ThreadPool;

pyo3::create_exception!(
    bltpatch,
    BltpatchError,
    PyValueError,
    "A bad parameter, a bad combination of rule parameters, an unusable checkpoint, or input that \
     the operation cannot take. A subclass of ValueError."
);

/// The library's error as the Python exception that fits: `FileNotFoundError` for a missing
/// checkpoint directory or file, `OSError` for other I/O errors, [`BltpatchError`] otherwise.
pub fn to_py(e: bltpatch::Error) -> PyErr {
    let message = python_names(&e.to_string());
    match &e {
        bltpatch::Error::Checkpoint(
            CheckpointError::NotFound(_) | CheckpointError::MissingFile { .. },
        ) => PyFileNotFoundError::new_err(message),
        bltpatch::Error::Checkpoint(CheckpointError::Io { source, .. }) => {
            if source.kind() == std::io::ErrorKind::NotFound {
                PyFileNotFoundError::new_err(message)
            } else {
                PyOSError::new_err(message)
            }
        }
        _ => BltpatchError::new_err(message),
    }
}

/// The library's messages name command-line flags (`--budget`); in Python they are keyword
/// arguments (`budget=`). `tests/test_errors.py` checks the messages.
fn python_names(message: &str) -> String {
    [
        ("--target-patch-size", "target_patch_size"),
        ("--relative-threshold", "relative_threshold"),
        ("--max-patch-len", "max_patch_len"),
        ("--threshold", "threshold"),
        ("--budget", "budget"),
        ("--rule", "rule"),
    ]
    .iter()
    .fold(message.to_string(), |m, (flag, kw)| m.replace(flag, kw))
}

/// A Rust panic as a Python exception: a bug, never expected.
fn panic_to_py(payload: Box<dyn Any + Send>) -> PyErr {
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    PyRuntimeError::new_err(format!(
        "bltpatch internal error (please report it): {what}"
    ))
}

/// Runs `work` with the GIL released, on this module's thread pool, turning a panic into a
/// `RuntimeError`.
pub fn run<T: Send>(py: Python<'_>, work: impl FnOnce() -> PyResult<T> + Send) -> PyResult<T> {
    let pool = pool()?;
    py.detach(|| {
        catch_unwind(AssertUnwindSafe(|| pool.install(work)))
            .unwrap_or_else(|p| Err(panic_to_py(p)))
    })
}

/// [`run`] for the work of one document of `len` bytes: on the calling thread when the document
/// fits in one chunk of [`bltpatch::DEFAULT_CHUNK_LEN`] (nothing to share out, and a hand-off to
/// the pool costs two thread wake-ups, several times the segmentation of a paragraph), else on
/// the pool. The result is the same either way.
pub fn run_doc<T: Send>(
    py: Python<'_>,
    len: usize,
    work: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<T> {
    if len <= bltpatch::DEFAULT_CHUNK_LEN {
        run_serial(py, work)
    } else {
        run(py, work)
    }
}

/// Like [`run`] for work that needs no thread pool (the byte-by-byte decoder).
pub fn run_serial<T: Send>(
    py: Python<'_>,
    work: impl FnOnce() -> PyResult<T> + Send,
) -> PyResult<T> {
    py.detach(|| catch_unwind(AssertUnwindSafe(work)).unwrap_or_else(|p| Err(panic_to_py(p))))
}

/// Threads asked for by `set_num_threads` (0: rayon's default, `RAYON_NUM_THREADS` or one per
/// CPU).
static THREADS: AtomicUsize = AtomicUsize::new(0);

/// The pool and the process that built it.
static POOL: Mutex<Option<(u32, Arc<ThreadPool>)>> = Mutex::new(None);

/// This process's thread pool. A process forked from one that used the pool (`multiprocessing`,
/// `datasets.map(num_proc=...)`) inherits the pool's bookkeeping but not its threads, so a pool
/// built by another process id is left alone (leaked) and a new one is built.
fn pool() -> PyResult<Arc<ThreadPool>> {
    let mut slot = POOL.lock().unwrap_or_else(|p| p.into_inner());
    let pid = std::process::id();
    if let Some((owner, pool)) = slot.as_ref()
        && *owner == pid
    {
        return Ok(pool.clone());
    }
    if let Some(inherited) = slot.take() {
        std::mem::forget(inherited);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(THREADS.load(Ordering::Relaxed))
        .thread_name(|i| format!("bltpatch-{i}"))
        .build()
        .map_err(|e| PyRuntimeError::new_err(format!("cannot start threads: {e}")))?;
    let pool = Arc::new(pool);
    *slot = Some((pid, pool.clone()));
    Ok(pool)
}

/// Sets the number of threads that bltpatch uses for batches and long inputs in this process
/// (0: one per CPU, or the `RAYON_NUM_THREADS` environment variable). Results do not depend on
/// it.
#[pyfunction]
pub fn set_num_threads(n: usize) -> PyResult<()> {
    THREADS.store(n, Ordering::Relaxed);
    let mut slot = POOL.lock().unwrap_or_else(|p| p.into_inner());
    // The next call builds a pool of the new size; one in use finishes its work first. A pool
    // inherited through fork has no threads here and is left alone (see `pool`).
    if let Some((owner, pool)) = slot.take()
        && owner != std::process::id()
    {
        std::mem::forget(pool);
    }
    Ok(())
}

/// The number of threads that bltpatch uses in this process.
#[pyfunction]
pub fn get_num_threads() -> PyResult<usize> {
    Ok(pool()?.current_num_threads())
}
