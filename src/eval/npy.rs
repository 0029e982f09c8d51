//! Writing NumPy `.npy` files (format version 1.0), so exported features can
//! be checked with NumPy / scikit-learn.
//!
//! Written by hand: the format is one header line, and features leave their
//! column-block store image by image, so the writer streams rows to disk
//! instead of building a multi-GB array a crate's writer would want whole.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Debug, Clone, Copy)]
pub enum Dtype {
    F32,
    I64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::I64 => "<i8",
        }
    }
}

/// Streams a C-order array of a known shape; `finish` checks that exactly
/// the announced number of values was written.
pub struct Writer {
    out: BufWriter<File>,
    expected: usize,
    written: usize,
}

impl Writer {
    pub fn create(path: &Path, dtype: Dtype, shape: &[usize]) -> std::io::Result<Writer> {
        let mut out = BufWriter::new(File::create(path)?);
        let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
        let shape_text = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let mut header = format!("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", dtype.descr(), shape_text);
        // Magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
        header.push('\n');
        out.write_all(b"\x93NUMPY\x01\x00")?;
        out.write_all(&(header.len() as u16).to_le_bytes())?;
        out.write_all(header.as_bytes())?;
        Ok(Writer { out, expected: shape.iter().product(), written: 0 })
    }

    pub fn write_f32(&mut self, values: &[f32]) -> std::io::Result<()> {
        for v in values {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.written += values.len();
        Ok(())
    }

    pub fn write_i64(&mut self, values: &[i64]) -> std::io::Result<()> {
        for v in values {
            self.out.write_all(&v.to_le_bytes())?;
        }
        self.written += values.len();
        Ok(())
    }

    pub fn finish(mut self) -> std::io::Result<()> {
        if self.written != self.expected {
            return Err(std::io::Error::other(format!("wrote {} values for an array of {}", self.written, self.expected)));
        }
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_and_data_follows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = Writer::create(&path, Dtype::F32, &[2, 3]).unwrap();
        w.write_f32(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + header_len) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<f4'") && header.contains("'shape': (2, 3)") && header.ends_with('\n'), "{header}");
        let data: Vec<f32> = bytes[10 + header_len..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        assert_eq!(data, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn a_short_array_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::create(&dir.path().join("b.npy"), Dtype::I64, &[3]).unwrap();
        w.write_i64(&[1, 2]).unwrap();
        assert!(w.finish().is_err());
    }
}
