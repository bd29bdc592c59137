//! Writers for the per-byte entropies of `bltpatch entropy`.

use std::fmt::Write as _;
use std::io::{self, Cursor, Write};
use std::path::Path;

use crate::IoError;
use crate::npy::{Dtype, NpyStream};
use crate::output::OutputFile;

/// Writes one tab-separated line per byte: `offset\tbyte\tH`.
///
/// `offset` is the byte's position in the input (the first byte of `bytes` is at `offset`, so a
/// long input can be written in pieces), `byte` its value in decimal (0 to 255) and `H` its
/// entropy in nats, printed by Rust's `{}` for `f32`: the shortest decimal that reads back to the
/// same `f32` (e.g. `0.1`, `2.0794415`), never in exponent notation; `NaN` and `inf` as such.
/// No header line.
///
/// ```
/// let mut out = Vec::new();
/// bltpatch_io::write_entropy_tsv(&mut out, 10, b"ab", &[5.5451775, 0.25])?;
/// assert_eq!(out, b"10\t97\t5.5451775\n11\t98\t0.25\n");
/// # Ok::<(), std::io::Error>(())
/// ```
///
/// # Errors
///
/// Errors of `w`, and [`io::ErrorKind::InvalidInput`] when `bytes` and `h` differ in length.
pub fn write_entropy_tsv(
    w: &mut dyn Write,
    offset: usize,
    bytes: &[u8],
    h: &[f32],
) -> io::Result<()> {
    if bytes.len() != h.len() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} entropies for {} bytes", h.len(), bytes.len()),
        ));
    }
    let mut line = String::with_capacity(64 * 1024);
    for (chunk, (bytes, h)) in bytes.chunks(1024).zip(h.chunks(1024)).enumerate() {
        line.clear();
        let base = offset + chunk * 1024;
        for (i, (&byte, &h)) in bytes.iter().zip(h).enumerate() {
            writeln!(line, "{}\t{byte}\t{h}", base + i).expect("writing to a String");
        }
        w.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Streams a 1-D `<f4` (little-endian `float32`) NPY array, e.g. the entropies of every byte,
/// to a file that appears atomically (see [`OutputFile`]), or to standard output.
///
/// For a file, a placeholder header is written first and rewritten with the final length by
/// [`NpyF32Writer::finish`], so memory stays bounded. Standard output cannot seek: the array is
/// then held in memory until `finish`.
///
/// ```
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("entropy.npy");
/// let mut npy = bltpatch_io::NpyF32Writer::create(Some(&path))?;
/// npy.write(&[0.5, 1.5])?;
/// npy.write(&[2.5])?;
/// npy.finish()?;
/// let file = std::fs::read(&path)?;
/// assert_eq!(file.len(), 128 + 3 * 4);
/// assert_eq!(&file[128..132], &0.5f32.to_le_bytes());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NpyF32Writer {
    target: Target,
}

/// Where the array goes.
enum Target {
    File(NpyStream<OutputFile>),
    Stdout {
        array: NpyStream<Cursor<Vec<u8>>>,
        out: OutputFile,
    },
}

impl NpyF32Writer {
    /// Starts an array at `destination` (`None` or `-`: standard output).
    ///
    /// # Errors
    ///
    /// As [`OutputFile::create`], and [`IoError::Write`] if the header cannot be written.
    pub fn create(destination: Option<&Path>) -> Result<Self, IoError> {
        let out = OutputFile::create(destination)?;
        let path = out.path().to_path_buf();
        let error = |source| IoError::write(&path, source);
        let target = if out.is_stdout() {
            let array = NpyStream::new(Cursor::new(Vec::new()), Dtype::F32).map_err(error)?;
            Target::Stdout { array, out }
        } else {
            Target::File(NpyStream::new(out, Dtype::F32).map_err(error)?)
        };
        Ok(NpyF32Writer { target })
    }

    /// Appends values to the array.
    ///
    /// # Errors
    ///
    /// [`IoError::Write`] naming the destination.
    pub fn write(&mut self, values: &[f32]) -> Result<(), IoError> {
        let (result, path) = match &mut self.target {
            Target::File(array) => (array.push_f32(values), array_path(array)),
            Target::Stdout { array, out } => (array.push_f32(values), out.path()),
        };
        result.map_err(|source| IoError::write(path, source))
    }

    /// Writes the final header and commits the output.
    ///
    /// # Errors
    ///
    /// [`IoError::Write`] naming the destination.
    pub fn finish(self) -> Result<(), IoError> {
        match self.target {
            Target::File(array) => {
                let path = array_path(&array).to_path_buf();
                let out = array
                    .finish()
                    .map_err(|source| IoError::write(&path, source))?;
                out.commit()
            }
            Target::Stdout { array, mut out } => {
                let bytes = array
                    .finish()
                    .map_err(|source| IoError::write(out.path(), source))?
                    .into_inner();
                out.write_all(&bytes)
                    .map_err(|source| IoError::write(out.path(), source))?;
                out.commit()
            }
        }
    }
}

/// The destination of an array streamed into an [`OutputFile`].
fn array_path(array: &NpyStream<OutputFile>) -> &Path {
    array.get_ref().path()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tsv_exact_output_with_offset_and_chunks() {
        let bytes: Vec<u8> = (0..=255).cycle().take(2500).collect();
        let h: Vec<f32> = (0..2500).map(|i| i as f32 / 8.0).collect();
        let mut out = Vec::new();
        write_entropy_tsv(&mut out, 7, &bytes, &h).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2500);
        assert_eq!(lines[0], "7\t0\t0");
        assert_eq!(lines[1], "8\t1\t0.125");
        assert_eq!(lines[2499], format!("2506\t{}\t312.375", 2499 % 256));
    }

    #[test]
    fn tsv_round_trips_f32() {
        let h = [0.1f32, 1.0 / 3.0, 5.545_177_5, f32::MIN_POSITIVE, 1e-7];
        let mut out = Vec::new();
        write_entropy_tsv(&mut out, 0, &[0; 5], &h).unwrap();
        let text = String::from_utf8(out).unwrap();
        for (line, &h) in text.lines().zip(&h) {
            let back: f32 = line.rsplit('\t').next().unwrap().parse().unwrap();
            assert_eq!(back.to_bits(), h.to_bits());
        }
    }

    #[test]
    fn tsv_rejects_mismatched_lengths() {
        let err = write_entropy_tsv(&mut Vec::new(), 0, b"abc", &[1.0]).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn npy_f32_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npy");
        let mut npy = NpyF32Writer::create(Some(&path)).unwrap();
        npy.write(&[1.0, -2.5]).unwrap();
        npy.write(&[]).unwrap();
        npy.write(&[0.125]).unwrap();
        assert!(!path.exists());
        npy.finish().unwrap();
        let file = std::fs::read(&path).unwrap();
        let (descr, shape, data) = crate::npy::tests::parse(&file);
        assert_eq!((descr.as_str(), shape), ("<f4", vec![3]));
        let values: Vec<f32> = data
            .chunks(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, [1.0, -2.5, 0.125]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn npy_f32_dropped_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npy");
        let mut npy = NpyF32Writer::create(Some(&path)).unwrap();
        npy.write(&[1.0; 1000]).unwrap();
        drop(npy);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// numpy, when installed, loads the array memory-mapped.
    #[test]
    fn npy_f32_loads_in_numpy() {
        let probe = std::process::Command::new("python3")
            .args(["-c", "import numpy"])
            .output();
        if !probe.is_ok_and(|out| out.status.success()) {
            eprintln!("skipped: python3 with numpy is not available");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.npy");
        let mut npy = NpyF32Writer::create(Some(&path)).unwrap();
        npy.write(&[0.5, 5.5451775, 0.1]).unwrap();
        npy.finish().unwrap();
        let script = "import sys, numpy as np\n\
                      a = np.load(sys.argv[1], mmap_mode='r')\n\
                      assert isinstance(a, np.memmap) and a.dtype == np.float32 and a.shape == (3,)\n\
                      print(' '.join(repr(float(x)) for x in a))";
        let result = std::process::Command::new("python3")
            .args(["-c", script])
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            result.status.success(),
            "{}",
            String::from_utf8_lossy(&result.stderr)
        );
        let printed = String::from_utf8(result.stdout).unwrap();
        let values: Vec<f32> = printed
            .split_whitespace()
            .map(|v| v.parse().unwrap())
            .collect();
        assert_eq!(values, [0.5, 5.5451775, 0.1]);
    }
}
