//! Reading an input file (or standard input) as one byte slice.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use crate::IoError;

/// The bytes of one input: a read-only memory map of a regular file, or an owned buffer (standard
/// input, empty files, and files that cannot be mapped, such as pipes or `/proc` entries).
///
/// Dereferences to `[u8]`, so it can be passed wherever a byte slice is expected.
///
/// A memory-mapped file that another process truncates or rewrites while it is being read may show
/// the new contents or, if truncated, make the process receive `SIGBUS`; this is the usual
/// trade-off of mapping (as in ripgrep) for reading hundreds of megabytes without copying them.
pub enum Input {
    /// A memory-mapped regular file.
    Mapped(Mmap),
    /// Bytes read into memory.
    Owned(Vec<u8>),
}

impl Input {
    /// Says that the bytes of `range` will not be read again soon, so a long sequential pass
    /// keeps a bounded resident set: the pages of a mapped file that lie wholly inside `range`
    /// leave this process's resident memory (the kernel keeps them in its page cache, and
    /// reading them again simply maps them back, with the same contents). Does nothing for
    /// owned input, outside Unix, or for an empty or out-of-bounds range; never fails.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("big.txt");
    /// std::fs::write(&path, vec![b'x'; 1 << 20])?;
    /// let input = bltpatch_io::read_input(&path)?;
    /// assert_eq!(input[..8], *b"xxxxxxxx");
    /// input.release(0..input.len() / 2);
    /// assert_eq!(input[..8], *b"xxxxxxxx"); // read back transparently
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn release(&self, range: std::ops::Range<usize>) {
        #[cfg(unix)]
        if let Input::Mapped(map) = self {
            const PAGE: usize = 4096;
            // Whole pages inside the range only (a larger page size only makes the kernel round
            // the start down to a page that is still inside the map).
            let start = range.start.next_multiple_of(PAGE);
            let end = range.end.min(map.len()) / PAGE * PAGE;
            if start < end {
                // SAFETY: the map is a read-only shared file mapping (`Mmap::map`): MADV_DONTNEED
                // only drops this process's page-table entries, and the next read faults the same
                // file contents back in, so no live borrow ever sees different bytes (the caveat
                // about other processes modifying the file is that of the mapping itself).
                let _ = unsafe {
                    map.unchecked_advise_range(
                        memmap2::UncheckedAdvice::DontNeed,
                        start,
                        end - start,
                    )
                };
            }
        }
        #[cfg(not(unix))]
        let _ = range;
    }
}

impl Deref for Input {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Input::Mapped(map) => map,
            Input::Owned(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Input {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl From<Vec<u8>> for Input {
    fn from(bytes: Vec<u8>) -> Self {
        Input::Owned(bytes)
    }
}

impl std::fmt::Debug for Input {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self {
            Input::Mapped(_) => "Mapped",
            Input::Owned(_) => "Owned",
        };
        write!(f, "Input::{kind}({} bytes)", self.len())
    }
}

/// Whether `path` names standard input (`-`).
pub fn is_stdin(path: &Path) -> bool {
    path.as_os_str() == "-"
}

/// The name under which an input is shown in messages and outputs: `<stdin>` for `-`, otherwise
/// the path as given (lossily converted to UTF-8).
///
/// ```
/// use std::path::Path;
/// assert_eq!(bltpatch_io::display_name(Path::new("-")), "<stdin>");
/// assert_eq!(bltpatch_io::display_name(Path::new("data/a.txt")), "data/a.txt");
/// ```
pub fn display_name(path: &Path) -> String {
    if is_stdin(path) {
        "<stdin>".to_owned()
    } else {
        path.to_string_lossy().into_owned()
    }
}

/// Reads a whole input: `-` is standard input (read to its end), anything else a file, which is
/// memory-mapped when it is a non-empty regular file and read into memory otherwise.
///
/// # Errors
///
/// [`IoError::NotFound`] if the file does not exist, [`IoError::IsDirectory`] if it is a
/// directory, [`IoError::Read`] if it cannot be opened or read; each names the path.
pub fn read_input(path: &Path) -> Result<Input, IoError> {
    let read_error = |source| IoError::Read {
        path: path.to_path_buf(),
        source,
    };
    if is_stdin(path) {
        let mut bytes = Vec::new();
        std::io::stdin()
            .lock()
            .read_to_end(&mut bytes)
            .map_err(read_error)?;
        return Ok(Input::Owned(bytes));
    }
    let metadata = std::fs::metadata(path).map_err(|source| not_found_or(path, source))?;
    if metadata.is_dir() {
        return Err(IoError::IsDirectory {
            path: path.to_path_buf(),
        });
    }
    let mut file = File::open(path).map_err(|source| not_found_or(path, source))?;
    if metadata.is_file() && metadata.len() > 0 {
        // SAFETY: the map is read-only; see the type's documentation for what happens if another
        // process modifies the file meanwhile.
        if let Ok(map) = unsafe { Mmap::map(&file) } {
            return Ok(Input::Mapped(map));
        }
    }
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.read_to_end(&mut bytes).map_err(read_error)?;
    Ok(Input::Owned(bytes))
}

/// [`IoError::NotFound`] for a missing file, [`IoError::Read`] for any other failure.
fn not_found_or(path: &Path, source: std::io::Error) -> IoError {
    let path = PathBuf::from(path);
    if source.kind() == std::io::ErrorKind::NotFound {
        IoError::NotFound { path }
    } else {
        IoError::Read { path, source }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_regular_and_empty_files() {
        let dir = tempfile::tempdir().unwrap();
        let full = dir.path().join("full.txt");
        std::fs::write(&full, b"hello").unwrap();
        let input = read_input(&full).unwrap();
        assert!(matches!(input, Input::Mapped(_)));
        assert_eq!(&*input, b"hello");

        let empty = dir.path().join("empty.txt");
        std::fs::write(&empty, b"").unwrap();
        let input = read_input(&empty).unwrap();
        assert!(matches!(input, Input::Owned(_)));
        assert!(input.is_empty());
    }

    #[test]
    fn missing_file_and_directory_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.txt");
        let err = read_input(&missing).unwrap_err();
        assert!(matches!(err, IoError::NotFound { .. }));
        assert_eq!(
            err.to_string(),
            format!("`{}`: no such file", missing.display())
        );

        let err = read_input(dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("`{}` is a directory", dir.path().display())
        );
    }

    #[cfg(unix)]
    #[test]
    fn unreadable_file_is_named() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked.txt");
        std::fs::write(&locked, b"secret").unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        match read_input(&locked) {
            // root reads anything
            Ok(input) => assert_eq!(&*input, b"secret"),
            Err(err) => {
                assert!(matches!(err, IoError::Read { .. }));
                let message = err.to_string();
                assert!(message.starts_with(&format!("cannot read `{}`: ", locked.display())));
                assert!(!message.contains('\n'));
            }
        }
    }
}
