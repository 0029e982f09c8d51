#!/usr/bin/env python3
"""Check deepsent's layer probes against scikit-learn on exported features.

    deepsent probe --run RUN --pretrained --layers pool_final,fire9/concat \
        --export-features FEATURES
    python3 scripts/probe_sklearn.py --features FEATURES \
        --probe RUN/probe-pretrained.json \
        --folds ../shared/data/twitter/folds/five_agree

For every exported layer and every fold of the probe report, fits
scikit-learn's LinearSVC and LogisticRegression with the C deepsent chose for
that fold (same definitions: squared hinge with a penalised intercept;
logistic loss with a free intercept) on the fold's training images and scores
its test images. Exits non-zero if any accuracy differs by more than --tol
(0.01) from deepsent's. Needs numpy and scikit-learn
(`pip install scikit-learn`).
"""
import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC


def read_fold(path):
    return [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--features", required=True, help="directory written by --export-features (pretrained: one set for all folds)")
    ap.add_argument("--probe", required=True, help="the probe report (probe-pretrained.json)")
    ap.add_argument("--folds", required=True, help="directory with foldK/train.txt and foldK/test.txt")
    ap.add_argument("--tol", type=float, default=0.01)
    ap.add_argument("--layers", help="only these layers (comma-separated)")
    args = ap.parse_args()

    feats = Path(args.features)
    names = (feats / "images.txt").read_text().split()
    labels = np.load(feats / "labels.npy")
    row = {n: i for i, n in enumerate(names)}
    report = json.loads(Path(args.probe).read_text())

    worst = 0.0
    print(f"{'layer':<16} {'classifier':<8} {'fold':>4} {'C':>10} {'deepsent':>9} {'sklearn':>8} {'diff':>6} {'s':>5}")
    only = set(args.layers.split(",")) if args.layers else None
    for entry in report["layers"]:
        if only and entry["layer"] not in only:
            continue
        stem = "".join(c if c.isalnum() or c in "-." else "_" for c in entry["layer"])
        path = feats / f"{stem}.npy"
        if not path.exists():
            continue
        x = np.load(path).astype(np.float64)
        for f in entry["folds"]:
            k, c = f["fold"], f["C"]
            train = [row[n] for n in read_fold(Path(args.folds) / f"fold{k}" / "train.txt")]
            test = [row[n] for n in read_fold(Path(args.folds) / f"fold{k}" / "test.txt")]
            if entry["classifier"] == "svm":
                model = LinearSVC(C=c, loss="squared_hinge", dual=True, tol=1e-6, max_iter=1_000_000)
            else:
                # liblinear's dual solver is fast for n << d; its intercept is
                # the weight of a constant feature, penalised: a large
                # intercept_scaling makes that penalty vanish, as in deepsent.
                model = LogisticRegression(C=c, solver="liblinear", dual=True, intercept_scaling=1e3, tol=1e-6, max_iter=1_000_000)
            t0 = time.time()
            model.fit(x[train], labels[train])
            acc = float((model.predict(x[test]) == labels[test]).mean())
            diff = acc - f["acc"]
            worst = max(worst, abs(diff))
            print(flush=True, end="")
            print(f"{entry['layer']:<16} {entry['classifier']:<8} {k:>4} {c:>10.3e} {f['acc']:>9.3f} {acc:>8.3f} {diff:>+6.3f} {time.time() - t0:>5.1f}")
    print(f"largest difference: {worst:.3f} (tolerance {args.tol})")
    sys.exit(0 if worst <= args.tol else 1)


if __name__ == "__main__":
    main()
