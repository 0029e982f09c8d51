//! Writing NumPy `.npy` files with `npyz`, so exported features can be
//! checked with NumPy / scikit-learn. Features leave their column-block
//! store image by image, so the array is streamed to disk row by row, never
//! built whole; `finish` checks that exactly the announced number of values
//! was written.

use npyz::WriterBuilder;
use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

pub struct Writer<T: npyz::AutoSerialize> {
    out: npyz::NpyWriter<T, BufWriter<File>>,
    expected: usize,
    written: usize,
}

impl<T: npyz::AutoSerialize> Writer<T> {
    /// A C-order array of `shape` in `path`, with `T`'s little-endian dtype.
    pub fn create(path: &Path, shape: &[usize]) -> std::io::Result<Writer<T>> {
        let dims: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
        let out = npyz::WriteOptions::new().default_dtype().shape(&dims).writer(BufWriter::new(File::create(path)?)).begin_nd()?;
        Ok(Writer { out, expected: shape.iter().product(), written: 0 })
    }

    pub fn write(&mut self, values: &[T]) -> std::io::Result<()> {
        for v in values {
            self.out.push(v)?;
        }
        self.written += values.len();
        Ok(())
    }

    pub fn finish(self) -> std::io::Result<()> {
        if self.written != self.expected {
            return Err(std::io::Error::other(format!("wrote {} values for an array of {}", self.written, self.expected)));
        }
        self.out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_array_reads_back_with_its_shape_and_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.npy");
        let mut w = Writer::<f32>::create(&path, &[2, 3]).unwrap();
        w.write(&[1.0, 2.0, 3.0]).unwrap();
        w.write(&[4.0, 5.0, 6.0]).unwrap();
        w.finish().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..6], b"\x93NUMPY");
        let header_len = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        let header = std::str::from_utf8(&bytes[10..10 + header_len]).unwrap();
        assert!(header.contains("'descr': '<f4'") && header.contains("'fortran_order': False"), "{header}");
        let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
        assert_eq!(npy.shape(), &[2, 3]);
        assert_eq!(npy.into_vec::<f32>().unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn a_short_array_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = Writer::<i64>::create(&dir.path().join("b.npy"), &[3]).unwrap();
        w.write(&[1, 2]).unwrap();
        assert!(w.finish().is_err());
    }
}
