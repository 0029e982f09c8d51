//! Times the classifier part of one probe (both classifiers, C search) on
//! exported features: `probe_fit_timing FEATURES/pool8.npy FEATURES/labels.npy`.
use deepsent::eval::linear::{CSearch, Classifier};
use deepsent::eval::probe::probe_layer;
use nalgebra::DMatrix;

fn read_npy_f32(path: &str) -> (Vec<usize>, Vec<f32>) {
    let b = std::fs::read(path).unwrap();
    let hl = u16::from_le_bytes([b[8], b[9]]) as usize;
    let header = std::str::from_utf8(&b[10..10 + hl]).unwrap();
    let shape: Vec<usize> = header.split("'shape': (").nth(1).unwrap().split(')').next().unwrap().split(',').filter_map(|s| s.trim().parse().ok()).collect();
    (shape, b[10 + hl..].chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (shape, x) = read_npy_f32(&args[1]);
    let lb = std::fs::read(&args[2]).unwrap();
    let hl = u16::from_le_bytes([lb[8], lb[9]]) as usize;
    let labels: Vec<i64> = lb[10 + hl..].chunks(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect();
    let (n, d) = (shape[0], shape[1]);
    let xm = DMatrix::from_fn(n, d.min(200_000), |i, j| x[i * d + j] as f64);
    let gram = &xm * xm.transpose();
    let train: Vec<usize> = (0..n).filter(|i| i % 5 != 0).collect();
    let test: Vec<usize> = (0..n).filter(|i| i % 5 == 0).collect();
    let y: Vec<f64> = train.iter().map(|&i| if labels[i] == 1 { 1.0 } else { -1.0 }).collect();
    let t = std::time::Instant::now();
    let e = deepsent::eval::linear::Embedding::new(&gram.select_rows(&train).select_columns(&train));
    println!("outer embedding {:.2} s", t.elapsed().as_secs_f64());
    for kind in [Classifier::Svm, Classifier::Softmax] {
        let t = std::time::Instant::now();
        let r = deepsent::eval::linear::select_c(kind, &e.train, &y, &CSearch::default());
        println!("{kind:?} select_c {:.2} s {:?}", t.elapsed().as_secs_f64(), r);
        let t = std::time::Instant::now();
        let _ = deepsent::eval::linear::fit(kind, &e.train, &y, r.0);
        println!("{kind:?} final fit {:.3} s", t.elapsed().as_secs_f64());
    }
    for kind in [Classifier::Svm, Classifier::Softmax] {
        let t = std::time::Instant::now();
        let r = probe_layer(&gram, &train, &test, &y, &[kind], &CSearch::default());
        println!("{kind:?}: {:.2} s (C {:.1e})", t.elapsed().as_secs_f64(), r[0].c);
    }
}
