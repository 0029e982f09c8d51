#!/usr/bin/env python3
"""deepsent against PyTorch on this CPU, in one run: images per second of
inference and of a training step (forward, backward, SGD update), batch 32,
random weights, for CaffeNet, SqueezeNet v1.0 and EfficientNet-Lite0 (the
fine-tuning networks: 2 outputs, every layer trained).

usage: scripts/bench_vs_torch.py [--out DIR] [--iters N] [--rounds R] [--before PATH] [--arch A ...] [--mode M ...]

PyTorch runs ../shared/bench/torch_bench.py (or $TORCH_BENCH) channels-last
(NHWC, oneDNN) and NCHW, with as many threads as cores and with PyTorch's
default; its best configuration per row is the reference of the ratios.
Install it on Debian with `apt-get install python3-torch libopenblas0-pthread`
(run with /usr/bin/python3; this script sets the two environment variables
OpenBLAS needs on this CPU). `--before PATH` adds a column for another deepsent
binary (an older build), measured in the same run.

Writes DIR/bench.json (every measurement, the machine, versions, command) and
DIR/bench.md (the table). Absolute speeds on a shared machine move from day
to day and, within a run, from minute to minute (a neighbour's load halves a
core for seconds at a time): every configuration is measured in each of
`--rounds` rounds, in an order that rotates from round to round, and its figure
is the best of its round medians (the least disturbed one); every round's
median is kept in bench.json.
"""
import argparse, json, os, platform, re, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARCHS = ["caffenet", "squeezenet1.0", "efficientnet-lite0"]
MODES = ["infer", "train"]


def deepsent(binary, arch, mode, iters):
    out = subprocess.run([binary, "bench", "--arch", arch, "--mode", mode, "--batch", "32", "--iters", str(iters), "--json"],
                         check=True, capture_output=True, text=True).stdout
    r = json.loads(out)
    return {"images_per_second": r["images_per_second"], "median_seconds": r["median_seconds"], "all_seconds": r["all_seconds"]}


def torch(script, arch, mode, iters, layout, threads):
    env = dict(os.environ, LAYOUT=layout, LD_LIBRARY_PATH="/usr/lib/x86_64-linux-gnu/openblas-pthread", OPENBLAS_CORETYPE="Cooperlake")
    env.pop("THREADS", None)
    if threads:
        env["THREADS"] = str(threads)
    out = subprocess.run(["/usr/bin/python3", str(script), arch, mode, "32", str(iters)], check=True, capture_output=True, text=True, env=env).stdout
    m = re.search(r"RESULT torch (\S+) .* threads=(\d+): median ([\d.]+) s/iter, ([\d.]+) img/s", out)
    if not m:
        sys.exit(f"unexpected output of {script}: {out}")
    return {"version": m.group(1), "threads": int(m.group(2)), "median_seconds": float(m.group(3)), "images_per_second": float(m.group(4))}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(ROOT / "results" / "bench"))
    p.add_argument("--iters", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--before", help="another deepsent binary to measure in the same run")
    p.add_argument("--arch", nargs="*", default=ARCHS)
    p.add_argument("--mode", nargs="*", default=MODES)
    a = p.parse_args()
    binary = str(ROOT / "target" / "release" / "deepsent")
    if not Path(binary).exists():
        subprocess.run(["cargo", "build", "--release"], cwd=ROOT, check=True)
    script = Path(os.environ.get("TORCH_BENCH", ROOT.parent / "shared" / "bench" / "torch_bench.py"))
    cores = os.cpu_count()
    torch_configs = [("nhwc", cores), ("nchw", cores), ("nhwc", None)]
    rows = []
    for arch in a.arch:
        for mode in a.mode:
            # Every configuration, as a function measuring it once.
            configs = [("deepsent", lambda: deepsent(binary, arch, mode, a.iters))]
            if a.before:
                configs.append(("before", lambda: deepsent(a.before, arch, mode, a.iters)))
            for i, (l, t) in enumerate(torch_configs):
                configs.append((f"torch{i}", lambda l=l, t=t: dict(layout=l, requested_threads=t, **torch(script, arch, mode, a.iters, l, t))))
            rounds = {name: [] for name, _ in configs}
            for r in range(a.rounds):
                for name, measure in configs[r % len(configs):] + configs[:r % len(configs)]:
                    rounds[name].append(measure())
            best_of = lambda name: dict(max(rounds[name], key=lambda m: m["images_per_second"]), rounds=[m["images_per_second"] for m in rounds[name]])
            row = {"arch": arch, "mode": mode, "deepsent": best_of("deepsent")}
            if a.before:
                row["before"] = best_of("before")
            row["torch"] = [best_of(f"torch{i}") for i in range(len(torch_configs))]
            best = max(row["torch"], key=lambda r: r["images_per_second"])
            row["ratio_to_best_torch"] = row["deepsent"]["images_per_second"] / best["images_per_second"]
            rows.append(row)
            print(f"{arch} {mode}: deepsent {row['deepsent']['images_per_second']:.1f} img/s, best PyTorch {best['images_per_second']:.1f} ({best['layout']}, {best['threads']} threads): × {row['ratio_to_best_torch']:.2f}", flush=True)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    record = {
        "command": "scripts/bench_vs_torch.py " + " ".join(sys.argv[1:]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpu": cpu_name(), "cores": cores, "system": platform.platform()},
        "deepsent": version,
        "batch": 32,
        "iterations": a.iters,
        "rounds": a.rounds,
        "rows": rows,
    }
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "bench.md").write_text(markdown(record))
    print(markdown(record))


def cpu_name():
    try:
        return next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def markdown(r):
    before = any("before" in row for row in r["rows"])
    head = "| network | mode | deepsent img/s |" + (" before img/s |" if before else "") + " PyTorch NHWC | PyTorch NCHW | PyTorch NHWC, default threads | deepsent ÷ best PyTorch |\n"
    head += "|---|---|---|" + ("---|" if before else "") + "---|---|---|---|\n"
    lines = []
    for row in r["rows"]:
        t = row["torch"]
        cells = [row["arch"], row["mode"], f"{row['deepsent']['images_per_second']:.1f}"]
        if before:
            cells.append(f"{row['before']['images_per_second']:.1f}" if "before" in row else "")
        cells += [f"{x['images_per_second']:.1f} ({x['threads']} threads)" for x in t]
        cells.append(f"**{row['ratio_to_best_torch']:.2f}**")
        lines.append("| " + " | ".join(cells) + " |")
    return (f"Batch {r['batch']}, random weights; each figure the best of {r.get('rounds', 1)} rounds' medians of {r['iterations']} iterations after 2 warm-up, one run on {r['date']}: "
            f"{r['machine']['cpu']}, {r['machine']['cores']} cores; {r['deepsent']}; PyTorch {r['rows'][0]['torch'][0]['version']}.\n"
            f"Command: `{r['command']}`\n\n" + head + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
