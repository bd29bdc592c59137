//! `--format npy`: a directory of NPY arrays that numpy and PyTorch can memory-map.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::{Open, PatchWriter};
use crate::IoError;
use crate::npy::{Dtype, NpyStream};
use crate::output::{hidden_prefix, parent_dir, sync_dir};

/// The arrays of an npy output directory.
const FILES: [&str; 3] = [
    "patch_lengths.npy",
    "document_offsets.npy",
    "document_bytes.npy",
];

/// One array file being written.
type Array = NpyStream<BufWriter<File>>;

/// Writes a directory of three 1-D little-endian `int64` (`<i8`) NPY v1.0 arrays:
///
/// - `patch_lengths.npy`: every document's patch lengths, concatenated;
/// - `document_offsets.npy`: `documents + 1` entries, starting at 0: document `d`'s patches are
///   `patch_lengths[offsets[d]:offsets[d + 1]]`;
/// - `document_bytes.npy`: the number of bytes of each document.
///
/// Data starts at offset 128 in every file, so `np.load(path, mmap_mode="r")` maps it in place.
/// The arrays are streamed (a placeholder header is rewritten with the final shape), into a
/// hidden temporary sibling directory that [`PatchWriter::finish`] renames to the destination:
/// the directory appears complete or not at all. An existing destination is replaced only if it
/// is empty or holds nothing but these three files (a previous output); anything else is refused.
///
/// ```
/// use bltpatch_io::{NpyWriter, PatchWriter};
/// let dir = tempfile::tempdir()?;
/// let out = dir.path().join("patches");
/// let mut writer = Box::new(NpyWriter::create(&out)?);
/// writer.write_document("a.txt", b"hello world", &[6, 5], None)?;
/// writer.write_document("b.txt", b"abc", &[3], None)?;
/// writer.finish()?;
/// let offsets = std::fs::read(out.join("document_offsets.npy"))?;
/// let offsets: Vec<i64> = offsets[128..]
///     .chunks(8)
///     .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
///     .collect();
/// assert_eq!(offsets, [0, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NpyWriter {
    destination: PathBuf,
    staging: TempDir,
    patch_lengths: Array,
    document_offsets: Array,
    document_bytes: Array,
    patches: usize,
    open: Open,
}

impl NpyWriter {
    /// Starts an output directory at `destination`.
    ///
    /// # Errors
    ///
    /// [`IoError::Destination`] if `destination` exists and is a file, or a directory holding
    /// other files; [`IoError::Write`] if the staging directory or its files cannot be created.
    pub fn create(destination: &Path) -> Result<Self, IoError> {
        check_replaceable(destination)?;
        let error = |source| IoError::write(destination, source);
        let mut builder = tempfile::Builder::new();
        let prefix = hidden_prefix(destination);
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // the process umask applies, as for a directory created directly
            builder.permissions(std::fs::Permissions::from_mode(0o777));
        }
        let staging = builder.tempdir_in(parent_dir(destination)).map_err(error)?;
        let array = |name: &str| -> Result<Array, IoError> {
            let file = File::create(staging.path().join(name)).map_err(error)?;
            NpyStream::new(BufWriter::with_capacity(1 << 18, file), Dtype::I64).map_err(error)
        };
        let patch_lengths = array(FILES[0])?;
        let mut document_offsets = array(FILES[1])?;
        document_offsets.push_usize(&[0]).map_err(error)?;
        let document_bytes = array(FILES[2])?;
        Ok(NpyWriter {
            destination: destination.to_path_buf(),
            staging,
            patch_lengths,
            document_offsets,
            document_bytes,
            patches: 0,
            open: Open::default(),
        })
    }
}

impl PatchWriter for NpyWriter {
    fn begin_document(&mut self, name: &str, bytes: usize) -> Result<(), IoError> {
        self.open.begin(name, bytes)
    }

    fn write_lengths(&mut self, lengths: &[usize]) -> Result<(), IoError> {
        self.open.add(lengths)?;
        self.patch_lengths
            .push_usize(lengths)
            .map_err(|source| IoError::write(&self.destination, source))
    }

    fn end_document(&mut self) -> Result<(), IoError> {
        let doc = self.open.end()?;
        self.patches += doc.patches;
        self.document_offsets
            .push_usize(&[self.patches])
            .and_then(|()| self.document_bytes.push_usize(&[doc.bytes]))
            .map_err(|source| IoError::write(&self.destination, source))
    }

    fn finish(self: Box<Self>) -> Result<(), IoError> {
        self.open.check_closed()?;
        let NpyWriter {
            destination,
            staging,
            patch_lengths,
            document_offsets,
            document_bytes,
            ..
        } = *self;
        let error = |source| IoError::write(&destination, source);
        for array in [patch_lengths, document_offsets, document_bytes] {
            let file = array
                .finish()
                .map_err(error)?
                .into_inner()
                .map_err(|err| error(err.into_error()))?;
            file.sync_all().map_err(error)?;
        }
        sync_dir(staging.path());
        replace_dir(staging, &destination)
    }
}

/// Checks that `destination` is absent, or a directory that may be replaced (empty, or holding
/// only [`FILES`]); returns whether it exists.
fn check_replaceable(destination: &Path) -> Result<bool, IoError> {
    let refuse = |reason| IoError::Destination {
        path: destination.to_path_buf(),
        reason,
    };
    let metadata = match std::fs::symlink_metadata(destination) {
        Ok(metadata) => metadata,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(err) => return Err(IoError::write(destination, err)),
    };
    if !metadata.is_dir() {
        return Err(refuse("it exists and is not a directory"));
    }
    let entries = std::fs::read_dir(destination).map_err(|err| IoError::write(destination, err))?;
    for entry in entries {
        let entry = entry.map_err(|err| IoError::write(destination, err))?;
        if !FILES.iter().any(|name| entry.file_name() == *name) {
            return Err(refuse(
                "it is a directory holding other files than an npy output",
            ));
        }
    }
    Ok(true)
}

/// Renames the finished `staging` directory to `destination`, replacing a previous output there:
/// the old directory is first moved aside (into an empty temporary directory, which rename(2)
/// allows to be replaced), then removed.
fn replace_dir(mut staging: TempDir, destination: &Path) -> Result<(), IoError> {
    let error = |source| IoError::write(destination, source);
    let parent = parent_dir(destination);
    let aside = if check_replaceable(destination)? {
        let aside = tempfile::Builder::new()
            .prefix(&hidden_prefix(destination))
            .suffix(".old")
            .tempdir_in(parent)
            .map_err(error)?;
        std::fs::rename(destination, aside.path()).map_err(error)?;
        Some(aside)
    } else {
        None
    };
    if let Err(err) = std::fs::rename(staging.path(), destination) {
        if let Some(aside) = aside {
            // put the previous output back
            let _ = std::fs::rename(aside.path(), destination);
        }
        return Err(error(err));
    }
    // `staging` now is `destination`: keep it
    staging.disable_cleanup(true);
    sync_dir(parent);
    drop(aside);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::npy::tests::parse;

    fn read_i64(path: &Path) -> Vec<i64> {
        let file = std::fs::read(path).unwrap();
        let (descr, shape, data) = parse(&file);
        assert_eq!(descr, "<i8");
        assert_eq!(shape.len(), 1);
        data.chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect()
    }

    fn write(destination: &Path, docs: &[(&[u8], &[usize])]) -> Result<(), IoError> {
        let mut writer = Box::new(NpyWriter::create(destination)?);
        for (i, (bytes, lengths)) in docs.iter().enumerate() {
            writer.write_document(&format!("doc{i}"), bytes, lengths, None)?;
        }
        writer.finish()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn three_arrays_exact() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write(
            &out,
            &[(b"hello world", &[6, 5]), (b"", &[]), (b"abc", &[1, 2])],
        )
        .unwrap();
        assert_eq!(read_i64(&out.join("patch_lengths.npy")), [6, 5, 1, 2]);
        assert_eq!(read_i64(&out.join("document_offsets.npy")), [0, 2, 2, 4]);
        assert_eq!(read_i64(&out.join("document_bytes.npy")), [11, 0, 3]);
        assert_eq!(names(dir.path()), ["out"], "no staging directory left");
    }

    #[test]
    fn no_documents() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write(&out, &[]).unwrap();
        assert!(read_i64(&out.join("patch_lengths.npy")).is_empty());
        assert_eq!(read_i64(&out.join("document_offsets.npy")), [0]);
        assert!(read_i64(&out.join("document_bytes.npy")).is_empty());
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let mut writer = NpyWriter::create(&out).unwrap();
        writer.write_document("d", b"ab", &[2], None).unwrap();
        drop(writer);
        assert!(names(dir.path()).is_empty());
    }

    #[test]
    fn replaces_a_previous_output_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write(&out, &[(b"ab", &[2])]).unwrap();
        write(&out, &[(b"abc", &[1, 1, 1])]).unwrap();
        assert_eq!(read_i64(&out.join("patch_lengths.npy")), [1, 1, 1]);
        assert_eq!(names(dir.path()), ["out"]);

        std::fs::write(out.join("notes.txt"), b"mine").unwrap();
        let err = write(&out, &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "cannot write `{}`: it is a directory holding other files than an npy output",
                out.display()
            )
        );
        assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");

        let file = dir.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let err = write(&file, &[]).unwrap_err();
        assert!(
            err.to_string()
                .ends_with("it exists and is not a directory")
        );

        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write(&empty, &[(b"a", &[1])]).unwrap();
        assert_eq!(read_i64(&empty.join("patch_lengths.npy")), [1]);
    }

    /// numpy, when installed, loads the arrays memory-mapped.
    #[test]
    fn numpy_loads_memory_mapped() {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import numpy"])
            .output();
        if !probe.is_ok_and(|out| out.status.success()) {
            eprintln!("skipped: python3 with numpy is not available");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        write(&out, &[(b"hello world", &[6, 5]), (b"abc", &[1, 2])]).unwrap();
        let script = r#"
import sys, numpy as np
d = sys.argv[1]
a = {n: np.load(f"{d}/{n}.npy", mmap_mode="r") for n in ["patch_lengths", "document_offsets", "document_bytes"]}
assert all(isinstance(v, np.memmap) and v.dtype == np.int64 and v.ndim == 1 for v in a.values()), a
print(a["patch_lengths"].tolist(), a["document_offsets"].tolist(), a["document_bytes"].tolist())
"#;
        let result = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&out)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert!(result.status.success(), "{stderr}");
        assert_eq!(
            String::from_utf8_lossy(&result.stdout).trim(),
            "[6, 5, 1, 2] [0, 2, 4] [11, 3]"
        );
    }
}
