#!/usr/bin/env python3
"""Fails when a module of the library imports from a layer above it.

The pipeline's layers, bottom to top (see src/lib.rs):

    support (atomic_write, download, locate, progress) < data < preprocess < model
    < train < eval < experiment < report < serve < cli

A file may use its own layer and those below. Run from the repository root:
`scripts/check_layers.py` prints each upward reference (file:line) and exits
1 if there is one. Tests call it (tests/layers_of_the_code.rs).
"""
import pathlib
import re
import sys

ORDER = ["support", "data", "preprocess", "model", "train", "eval", "experiment", "report", "serve", "cli"]
SUPPORT = {"atomic_write", "download", "locate", "progress"}


def layer_of_module(name: str) -> str:
    return "support" if name in SUPPORT else name


def layer_of_file(path: pathlib.Path) -> str | None:
    rel = path.relative_to("src")
    if rel.parts[0] in ("lib.rs", "main.rs"):
        return None
    if rel.parts[0] == "cli":
        return "cli"
    return layer_of_module(rel.parts[0].removesuffix(".rs"))


# `crate::eval::…` in library code, `deepsent::eval::…` in the CLI; also
# grouped imports `use crate::{eval::x, model::y}`.
REFERENCE = re.compile(r"\b(?:crate|deepsent)::(\w+)")
GROUP = re.compile(r"\b(?:crate|deepsent)::\{([^}]*)\}")


def references(line: str):
    for m in REFERENCE.finditer(line):
        yield m.group(1)
    for m in GROUP.finditer(line):
        for part in m.group(1).split(","):
            head = part.strip().split("::")[0]
            if head:
                yield head


def main() -> int:
    bad = []
    for path in sorted(pathlib.Path("src").rglob("*.rs")):
        own = layer_of_file(path)
        if own is None:
            continue
        in_tests = False
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip().startswith("#[cfg(test)]"):
                in_tests = True  # unit tests may reach anywhere
            if in_tests or line.strip().startswith("//"):
                continue
            for module in references(line):
                if module not in ORDER and module not in SUPPORT:
                    continue
                used = layer_of_module(module)
                if ORDER.index(used) > ORDER.index(own):
                    bad.append(f"{path}:{number}: {own} uses {used}: {line.strip()}")
    for b in bad:
        print(b)
    if bad:
        print(f"{len(bad)} upward reference(s)", file=sys.stderr)
        return 1
    print("no upward references")
    return 0


if __name__ == "__main__":
    sys.exit(main())
