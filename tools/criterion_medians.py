#!/usr/bin/env python3
"""Print the medians criterion measured, as a Markdown table with ratios to a baseline.

    python3 tools/criterion_medians.py GROUP BASELINE [--throughput N]

GROUP is a criterion benchmark group (a folder under target/criterion), BASELINE the
function in it that the ratios are taken against. With --throughput N (elements per
iteration), medians are also given as million elements per second.
"""
import json
import os
import pathlib
import sys


def main() -> int:
    args = sys.argv[1:]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    group, baseline = args[0], args[1]
    elements = int(args[args.index("--throughput") + 1]) if "--throughput" in args else None
    target = os.environ.get("CARGO_TARGET_DIR") or (
        pathlib.Path(__file__).resolve().parent.parent / "target"
    )
    root = pathlib.Path(target) / "criterion" / group
    medians = {}
    for est in sorted(root.glob("*/new/estimates.json")):
        name = est.parent.parent.name
        medians[name] = json.loads(est.read_text())["median"]["point_estimate"]  # ns
    if baseline not in medians:
        print(f"no results for {group}/{baseline} under {root}", file=sys.stderr)
        return 1
    base = medians[baseline]
    if elements:
        print("| variant | median time | M elements/s | throughput vs " + baseline + " |")
        print("|---|---|---|---|")
        for name, ns in medians.items():
            rate = elements / ns * 1e3
            print(f"| {name} | {ns / 1e6:.3f} ms | {rate:.1f} | {base / ns:.2f}x |")
    else:
        print("| variant | median | vs " + baseline + " |")
        print("|---|---|---|")
        for name, ns in medians.items():
            print(f"| {name} | {ns:.1f} ns | {ns / base:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
