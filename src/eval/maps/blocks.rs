//! Coarse grids of cells brought to a view's pixels and back: the masks of
//! extremal perturbation and greedy deletion delete whole cells, as the
//! deletion test deletes whole pixels.

/// A `cells` × `cells` grid brought to `height` × `width` pixels, each
/// pixel the value of its cell (the cells of [`super::cell_rect`]), and the
/// transpose of that map, which takes a gradient on the pixels to the cells.
pub(super) struct Upsample {
    cells: usize,
    /// Each pixel row's cell row, each pixel column's cell column.
    pub(super) rows: Vec<usize>,
    pub(super) cols: Vec<usize>,
}

impl Upsample {
    pub(super) fn blocks(cells: usize, height: usize, width: usize) -> Upsample {
        let axis = |len: usize| (0..len).map(|x| (0..cells).find(|&c| x < (c + 1) * len / cells).expect("a cell holds every pixel")).collect();
        Upsample { cells, rows: axis(height), cols: axis(width) }
    }

    pub(super) fn apply(&self, grid: &[f32]) -> Vec<f32> {
        self.rows.iter().flat_map(|&r| self.cols.iter().map(move |&c| grid[r * self.cells + c])).collect()
    }

    pub(super) fn adjoint(&self, pixels: &[f32]) -> Vec<f32> {
        let mut grid = vec![0.0f32; self.cells * self.cells];
        for (&r, row) in self.rows.iter().zip(pixels.chunks(self.cols.len())) {
            for (&c, v) in self.cols.iter().zip(row) {
                grid[r * self.cells + c] += v;
            }
        }
        grid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_the_cells_and_the_adjoint_their_sums() {
        let grid: Vec<f32> = (0..16).map(|i| i as f32).collect();
        let up = Upsample::blocks(4, 9, 7);
        let pixels = up.apply(&grid);
        for cell in 0..16 {
            let (rows, cols) = super::super::cell_rect(cell, 4, 9, 7);
            for y in rows {
                for x in cols.clone() {
                    assert_eq!(pixels[y * 7 + x], cell as f32);
                }
            }
        }
        // <A g, p> = <g, Aᵀ p>: each cell gathers its pixels.
        let ones = up.adjoint(&vec![1.0; 63]);
        assert_eq!(ones.iter().sum::<f32>(), 63.0);
        assert_eq!(ones[0], (9 / 4 * (7 / 4)) as f32);
    }
}
