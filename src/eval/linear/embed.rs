//! The exact low-dimensional embedding of features given by their Gram matrix.

use nalgebra::{DMatrix, SymmetricEigen};

/// Maps images to coordinates whose inner products equal the features'.
pub struct Embedding {
    /// U S^-½ restricted to the kept eigenpairs: n_train × r.
    projection: DMatrix<f64>,
    /// The training images' coordinates (n_train × r).
    pub train: DMatrix<f64>,
}

impl Embedding {
    /// From the training Gram matrix K (n × n, symmetric). Eigenvalues below
    /// 1e-12 of the largest are dropped (their directions carry no data).
    pub fn new(gram: &DMatrix<f64>) -> Embedding {
        let eig = SymmetricEigen::new(gram.clone());
        let max = eig.eigenvalues.iter().cloned().fold(0.0f64, f64::max);
        let keep: Vec<usize> = (0..eig.eigenvalues.len()).filter(|&i| eig.eigenvalues[i] > 1e-12 * max).collect();
        let n = gram.nrows();
        let mut projection = DMatrix::zeros(n, keep.len());
        for (j, &i) in keep.iter().enumerate() {
            let scale = 1.0 / eig.eigenvalues[i].sqrt();
            projection.set_column(j, &(eig.eigenvectors.column(i) * scale));
        }
        let train = gram * &projection;
        Embedding { projection, train }
    }

    /// Coordinates of other images from their inner products with the
    /// training images (m × n_train).
    pub fn embed(&self, cross_gram: &DMatrix<f64>) -> DMatrix<f64> {
        cross_gram * &self.projection
    }

    pub fn dims(&self) -> usize {
        self.projection.ncols()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedding_reproduces_inner_products() {
        // 4 training points in 6-D (rank 4), 2 test points.
        let x = DMatrix::from_fn(4, 6, |i, j| ((i * 7 + j * 3) % 5) as f64 - 2.0 + (i == j) as u8 as f64);
        let t = DMatrix::from_fn(2, 6, |i, j| (i + 2 * j) as f64 * 0.3 - 1.0);
        let e = Embedding::new(&(&x * x.transpose()));
        let z = &e.train;
        assert!((z * z.transpose() - &x * x.transpose()).abs().max() < 1e-9);
        let zt = e.embed(&(&t * x.transpose()));
        // Test–train inner products are kept exactly.
        assert!((&zt * z.transpose() - &t * x.transpose()).abs().max() < 1e-9);
    }
}
