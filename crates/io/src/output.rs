//! Atomic output: a file appears complete or not at all; `-` is standard output.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Seek, SeekFrom, Stdout, Write};
use std::path::{Path, PathBuf};

use tempfile::NamedTempFile;

use crate::IoError;
use crate::input::is_stdin;

/// Buffer size of output files and of standard output.
const BUFFER: usize = 1 << 18;

/// An output destination that is never left half-written.
///
/// A file destination is written to a temporary file in the same directory (so the final rename
/// cannot cross file systems), named `.NAME.XXXXXX.tmp`; [`OutputFile::commit`] flushes it, syncs
/// it to disk and renames it over the destination in one step. Dropping an `OutputFile` without
/// committing (an error, a panic, Ctrl-C handled by unwinding) deletes the temporary file and
/// leaves any previous file at the destination untouched.
///
/// The destination `-` (or `None`) is standard output, buffered; it cannot be atomic, and
/// [`Seek`] fails on it.
///
/// ```
/// use std::io::Write;
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("out.txt");
/// let mut out = bltpatch_io::OutputFile::create(Some(&path))?;
/// out.write_all(b"hello\n")?;
/// assert!(!path.exists()); // not before commit
/// out.commit()?;
/// assert_eq!(std::fs::read(&path)?, b"hello\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OutputFile {
    /// The destination as given (`-` for standard output).
    path: PathBuf,
    sink: Sink,
}

/// Where the bytes go.
enum Sink {
    Stdout(BufWriter<Stdout>),
    File(BufWriter<NamedTempFile>),
}

impl OutputFile {
    /// Opens a destination: `None` or `-` is standard output, anything else a file written
    /// atomically (see the type's documentation).
    ///
    /// # Errors
    ///
    /// [`IoError::IsDirectory`] if the destination is a directory, [`IoError::Write`] if the
    /// temporary file cannot be created (e.g. the destination's directory does not exist or is
    /// not writable).
    pub fn create(destination: Option<&Path>) -> Result<Self, IoError> {
        let path = match destination {
            Some(path) if !is_stdin(path) => path,
            _ => return Ok(Self::stdout()),
        };
        if path.is_dir() {
            return Err(IoError::IsDirectory {
                path: path.to_path_buf(),
            });
        }
        let mut builder = tempfile::Builder::new();
        let prefix = hidden_prefix(path);
        builder.prefix(&prefix).suffix(".tmp");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // the process umask applies, as for a file created directly
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let file = builder
            .tempfile_in(parent_dir(path))
            .map_err(|source| IoError::write(path, source))?;
        Ok(OutputFile {
            path: path.to_path_buf(),
            sink: Sink::File(BufWriter::with_capacity(BUFFER, file)),
        })
    }

    /// Standard output, buffered.
    pub fn stdout() -> Self {
        OutputFile {
            path: PathBuf::from("-"),
            sink: Sink::Stdout(BufWriter::with_capacity(BUFFER, io::stdout())),
        }
    }

    /// The destination as given (`-` for standard output), for messages.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this writes to standard output.
    pub fn is_stdout(&self) -> bool {
        matches!(self.sink, Sink::Stdout(_))
    }

    /// Finishes the output: flushes it and, for a file, syncs it to disk and renames it over the
    /// destination (replacing any file there).
    ///
    /// # Errors
    ///
    /// [`IoError::Write`] naming the destination if a write, the sync or the rename fails; the
    /// temporary file is then removed.
    pub fn commit(self) -> Result<(), IoError> {
        let path = self.path;
        let error = |source| IoError::write(&path, source);
        match self.sink {
            Sink::Stdout(mut out) => out.flush().map_err(error),
            Sink::File(out) => {
                let file = out.into_inner().map_err(|err| error(err.into_error()))?;
                file.as_file().sync_all().map_err(error)?;
                file.persist(&path).map_err(|err| error(err.error))?;
                sync_dir(parent_dir(&path));
                Ok(())
            }
        }
    }

    /// The underlying writer.
    fn writer(&mut self) -> &mut dyn Write {
        match &mut self.sink {
            Sink::Stdout(out) => out,
            Sink::File(out) => out,
        }
    }
}

impl Write for OutputFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer().write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.writer().flush()
    }
}

impl Seek for OutputFile {
    /// Seeks within the temporary file; fails with [`io::ErrorKind::Unsupported`] on standard
    /// output.
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        match &mut self.sink {
            Sink::File(out) => out.seek(pos),
            Sink::Stdout(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "standard output cannot seek",
            )),
        }
    }
}

impl std::fmt::Debug for OutputFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutputFile")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Whether standard output is a terminal (then the text format is coloured).
pub fn is_terminal_stdout() -> bool {
    io::stdout().is_terminal()
}

/// The directory holding `path` (`.` for a bare file name).
pub(crate) fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// `.NAME.`: the prefix of temporary siblings of `path`, hidden on Unix.
pub(crate) fn hidden_prefix(path: &Path) -> OsString {
    let mut prefix = OsString::from(".");
    prefix.push(path.file_name().unwrap_or(path.as_os_str()));
    prefix.push(".");
    prefix
}

/// Makes a rename in `dir` durable (best effort: not every platform can sync a directory).
pub(crate) fn sync_dir(dir: &Path) {
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn dropping_without_commit_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        let mut out = OutputFile::create(Some(&path)).unwrap();
        out.write_all(&[b'x'; 1 << 20]).unwrap();
        assert_eq!(
            entries(dir.path()).len(),
            1,
            "the temporary file exists while writing"
        );
        drop(out);
        assert!(entries(dir.path()).is_empty());
    }

    #[test]
    fn dropping_without_commit_keeps_the_old_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"old").unwrap();
        let mut out = OutputFile::create(Some(&path)).unwrap();
        out.write_all(b"new and half").unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"old");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[test]
    fn commit_replaces_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        std::fs::write(&path, b"old").unwrap();
        let mut out = OutputFile::create(Some(&path)).unwrap();
        out.write_all(b"new").unwrap();
        out.commit().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(dir.path()), ["out.txt"]);
    }

    #[cfg(unix)]
    #[test]
    fn committed_file_has_ordinary_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        OutputFile::create(Some(&path)).unwrap().commit().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_ne!(
            mode & 0o044,
            0,
            "readable beyond the owner under a usual umask: {mode:o}"
        );
    }

    #[test]
    fn bad_destinations_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = OutputFile::create(Some(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{}` is a directory", dir.path().display())
        );

        let path = dir.path().join("missing").join("out.txt");
        let err = OutputFile::create(Some(&path)).unwrap_err();
        let message = err.to_string();
        assert!(
            message.starts_with(&format!("cannot write `{}`: ", path.display())),
            "{message}"
        );
    }

    #[test]
    fn dash_is_stdout_and_cannot_seek() {
        let mut out = OutputFile::create(Some(Path::new("-"))).unwrap();
        assert!(out.is_stdout());
        assert_eq!(out.path(), Path::new("-"));
        assert!(out.seek(SeekFrom::Start(0)).is_err());
        assert!(OutputFile::create(None).unwrap().is_stdout());
    }
}
