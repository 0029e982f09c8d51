#!/usr/bin/env python3
"""Splits the Twitter images on which three or four, but not all five,
annotators agree (387 images: `deepsent evaluate --subset three --exclude
five`) into two halves, stratified by label, for the calibration example of
the README: calibrate on one half, evaluate on the other.

usage: scripts/remainder_halves.py [--root TWITTER_ROOT] [--out DIR] [--seed N]

Writes DIR/remainder-calibrate.csv and DIR/remainder-evaluate.csv (`path,label`,
paths relative to DIR, as deepsent's CSV layout reads them).
"""
import argparse, os, random
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def labels(root, subset):
    rows = {}
    for line in open(root / "ground_truth" / f"twitter_{subset}_agrees.txt"):
        if line.strip():
            name, label = line.rsplit(None, 1)
            rows[name.strip()] = label
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--root", default=os.environ.get("DEEPSENT_DATA", str(ROOT.parent / "shared" / "data" / "twitter")))
    p.add_argument("--out", default=str(ROOT / "results" / "evaluate"))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    root, out = Path(a.root).resolve(), Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    three, five = labels(root, "three"), labels(root, "five")
    remainder = sorted(set(three) - set(five))
    rng = random.Random(a.seed)
    halves = ([], [])
    for label in ("0", "1"):
        names = [n for n in remainder if three[n] == label]
        rng.shuffle(names)
        for i, n in enumerate(names):
            halves[i % 2].append((n, label))
    images = Path(os.path.relpath(root / "images", out.resolve()))
    for half, stem in zip(halves, ("remainder-calibrate", "remainder-evaluate")):
        lines = ["path,label"] + [f"{(images / n).as_posix()},{l}" for n, l in sorted(half)]
        (out / f"{stem}.csv").write_text("\n".join(lines) + "\n")
        print(f"{out / stem}.csv: {len(half)} images, {sum(l == '1' for _, l in half)} positive")


if __name__ == "__main__":
    main()
