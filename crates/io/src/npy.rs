//! NPY v1.0 arrays written as a stream: a fixed-size header placeholder first, the data, then the
//! header again with the final shape.
//!
//! Format: <https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html>. The header is
//! always [`HEADER_LEN`] bytes (magic, version 1.0, a little-endian `u16` header length, the dict
//! padded with spaces and ended by `\n`), so the data starts at offset 128, a multiple of 64, and
//! the largest possible shape fits in the placeholder.

use std::io::{self, Seek, SeekFrom, Write};

/// Total size of the header, magic included: a multiple of 64.
pub(crate) const HEADER_LEN: usize = 128;

/// The NPY magic string followed by the format version 1.0.
const MAGIC: &[u8; 8] = b"\x93NUMPY\x01\x00";

/// Element types this crate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dtype {
    /// Little-endian `int64`.
    I64,
    /// Little-endian `float32`.
    F32,
}

impl Dtype {
    /// The NPY `descr` string.
    fn descr(self) -> &'static str {
        match self {
            Dtype::I64 => "<i8",
            Dtype::F32 => "<f4",
        }
    }
}

/// The header of a 1-D C-order array of `len` elements of `dtype`.
pub(crate) fn header(dtype: Dtype, len: u64) -> [u8; HEADER_LEN] {
    let dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': ({len},), }}",
        dtype.descr()
    );
    let mut header = [b' '; HEADER_LEN];
    header[..MAGIC.len()].copy_from_slice(MAGIC);
    let dict_len = u16::try_from(HEADER_LEN - 10).expect("header fits in u16");
    header[8..10].copy_from_slice(&dict_len.to_le_bytes());
    // at most 79 bytes for a u64 shape, far below the 117 available before the newline
    header[10..10 + dict.len()].copy_from_slice(dict.as_bytes());
    header[HEADER_LEN - 1] = b'\n';
    header
}

/// A 1-D array being streamed into `out`.
pub(crate) struct NpyStream<W: Write + Seek> {
    out: W,
    dtype: Dtype,
    len: u64,
    scratch: Vec<u8>,
}

impl<W: Write + Seek> NpyStream<W> {
    /// Starts an array at the current position of `out` (which must be its start) by writing a
    /// placeholder header.
    pub(crate) fn new(mut out: W, dtype: Dtype) -> io::Result<Self> {
        out.write_all(&header(dtype, 0))?;
        Ok(NpyStream {
            out,
            dtype,
            len: 0,
            scratch: Vec::new(),
        })
    }

    /// Appends integers as `<i8` (the array must be [`Dtype::I64`]).
    pub(crate) fn push_usize(&mut self, values: &[usize]) -> io::Result<()> {
        debug_assert_eq!(self.dtype, Dtype::I64);
        for chunk in values.chunks(8192) {
            self.scratch.clear();
            for &value in chunk {
                // lengths and offsets are far below 2^63
                self.scratch
                    .extend_from_slice(&(value as u64).to_le_bytes());
            }
            self.out.write_all(&self.scratch)?;
        }
        self.len += values.len() as u64;
        Ok(())
    }

    /// Appends floats as `<f4` (the array must be [`Dtype::F32`]).
    pub(crate) fn push_f32(&mut self, values: &[f32]) -> io::Result<()> {
        debug_assert_eq!(self.dtype, Dtype::F32);
        for chunk in values.chunks(8192) {
            self.scratch.clear();
            for &value in chunk {
                self.scratch.extend_from_slice(&value.to_le_bytes());
            }
            self.out.write_all(&self.scratch)?;
        }
        self.len += values.len() as u64;
        Ok(())
    }

    /// The writer the array goes to.
    pub(crate) fn get_ref(&self) -> &W {
        &self.out
    }

    /// Writes the final header and returns the writer, positioned at the end of the data.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.seek(SeekFrom::Start(0))?;
        self.out.write_all(&header(self.dtype, self.len))?;
        self.out.seek(SeekFrom::End(0))?;
        Ok(self.out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A parsed NPY file: dtype descr, shape and raw data. Checks everything the format requires.
    pub(crate) fn parse(file: &[u8]) -> (String, Vec<u64>, &[u8]) {
        assert_eq!(&file[..6], b"\x93NUMPY", "magic");
        assert_eq!(&file[6..8], &[1, 0], "version 1.0");
        let header_len = usize::from(u16::from_le_bytes([file[8], file[9]]));
        let data_start = 10 + header_len;
        assert_eq!(data_start % 64, 0, "data aligned to 64 bytes");
        let dict = std::str::from_utf8(&file[10..data_start]).unwrap();
        assert!(dict.ends_with('\n'), "header ends with a newline");
        let dict = dict.trim_end();
        assert!(
            dict.starts_with("{'descr': '") && dict.ends_with(", }"),
            "{dict}"
        );
        let descr = dict["{'descr': '".len()..]
            .split('\'')
            .next()
            .unwrap()
            .to_owned();
        assert!(dict.contains("'fortran_order': False"));
        let shape = dict
            .split("'shape': (")
            .nth(1)
            .unwrap()
            .split(')')
            .next()
            .unwrap();
        let shape: Vec<u64> = shape
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| s.trim().parse().unwrap())
            .collect();
        let item = match descr.as_str() {
            "<i8" => 8,
            "<f4" => 4,
            other => panic!("unexpected descr {other}"),
        };
        let data = &file[data_start..];
        assert_eq!(
            data.len() as u64,
            shape.iter().product::<u64>() * item,
            "data length"
        );
        (descr, shape, data)
    }

    #[test]
    fn header_layout() {
        let header = header(Dtype::I64, 3);
        assert_eq!(header.len(), 128);
        let expected_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }";
        assert_eq!(
            &header[10..10 + expected_dict.len()],
            expected_dict.as_bytes()
        );
        assert!(
            header[10 + expected_dict.len()..127]
                .iter()
                .all(|&b| b == b' ')
        );
        assert_eq!(header[127], b'\n');
        let mut file = header.to_vec();
        file.extend_from_slice(&[0; 24]);
        let (descr, shape, _) = parse(&file);
        assert_eq!((descr.as_str(), shape), ("<i8", vec![3]));
    }

    #[test]
    fn largest_shape_fits() {
        let header = header(Dtype::F32, u64::MAX);
        assert_eq!(header[127], b'\n');
        assert!(
            std::str::from_utf8(&header[10..])
                .unwrap()
                .contains("(18446744073709551615,)")
        );
    }

    #[test]
    fn stream_rewrites_the_shape() {
        let mut stream = NpyStream::new(io::Cursor::new(Vec::new()), Dtype::I64).unwrap();
        stream.push_usize(&[1, 2]).unwrap();
        stream.push_usize(&[300]).unwrap();
        let file = stream.finish().unwrap().into_inner();
        let (descr, shape, data) = parse(&file);
        assert_eq!((descr.as_str(), shape), ("<i8", vec![3]));
        let values: Vec<i64> = data
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(values, [1, 2, 300]);
    }
}
