#!/usr/bin/env python3
"""The reference values of src/eval/binary_metrics.rs's tests, from
scikit-learn, on the fixed score vector of `case()` there. Run once when the
case changes and paste the printed constants into the test module:

    pip install scikit-learn && scripts/metrics_sklearn.py
"""
import sklearn
from sklearn import metrics

scores = [0.95, 0.9, 0.8, 0.8, 0.7, 0.65, 0.6, 0.55, 0.5, 0.45, 0.4, 0.35, 0.3, 0.2, 0.1, 0.52, 0.8, 0.62, 0.33, 0.99]
labels = [1, 1, 0, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1]
predicted = [int(s > 0.5) for s in scores]
p, r, f, _ = metrics.precision_recall_fscore_support(labels, predicted, labels=[0, 1], zero_division=0)
cm = metrics.confusion_matrix(labels, predicted, labels=[0, 1])
print(f"    // scikit-learn {sklearn.__version__}")
print(f"    const SK_ACCURACY: f64 = {metrics.accuracy_score(labels, predicted)!r};")
print(f"    const SK_BALANCED_ACCURACY: f64 = {metrics.balanced_accuracy_score(labels, predicted)!r};")
print(f"    const SK_ROC_AUC: f64 = {metrics.roc_auc_score(labels, scores)!r};")
print(f"    const SK_AVERAGE_PRECISION: f64 = {metrics.average_precision_score(labels, scores)!r};")
print(f"    const SK_LOG_LOSS: f64 = {metrics.log_loss(labels, scores)!r};")
print(f"    const SK_BRIER: f64 = {metrics.brier_score_loss(labels, scores)!r};")
print(f"    const SK_PRECISION: [f64; 2] = [{float(p[0])!r}, {float(p[1])!r}];")
print(f"    const SK_RECALL: [f64; 2] = [{float(r[0])!r}, {float(r[1])!r}];")
print(f"    const SK_F1: [f64; 2] = [{float(f[0])!r}, {float(f[1])!r}];")
print(f"    const SK_CONFUSION: [[usize; 2]; 2] = [[{cm[0][0]}, {cm[0][1]}], [{cm[1][0]}, {cm[1][1]}]];")
