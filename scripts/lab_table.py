#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Markdown table of the lab's sweeps (scripts/lab_table.sh): one row per attack and poison rate, mean and range
over the seeds of C-Acc, ASR (all), ASR (true label != target) and R-Acc, as percentages, and seconds per cell.

    scripts/lab_table.py OUT_DIR NAME [NAME ...]     (reads OUT_DIR/NAME/sweep.json)
"""
import json
import os
import sys


def pct(spread):
    mean, lo, hi = 100 * spread["mean"], 100 * spread["min"], 100 * spread["max"]
    return f"{mean:.2f} ({lo:.2f}-{hi:.2f})"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out = sys.argv[1]
    print("| attack | poison rate | seeds | poisoned images | C-Acc % | ASR (all) % | ASR (true label != target) % | R-Acc % | s per cell |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in sys.argv[2:]:
        path = os.path.join(out, name, "sweep.json")
        try:
            with open(path) as f:
                sweep = json.load(f)
        except (OSError, ValueError) as e:
            print(f"| {name} | (no result: {path}: {e}) | | | | | | | |")
            continue
        for p in sweep["points"]:
            cells = [c for c in sweep["cells"] if c["poison_rate"] is not None and abs(c["poison_rate"] - p["poison_rate"]) < 1e-12]
            poisoned = sorted({c["poisoned_images"] for c in cells})
            poisoned_text = "/".join(str(v) for v in poisoned) if poisoned else "?"
            secs = p["total_seconds"]
            print(f"| {name} | {p['poison_rate']:g} | {p['seeds']} | {poisoned_text} | {pct(p['clean_accuracy'])} | "
                  f"{pct(p['attack_success_rate'])} | {pct(p['attack_success_rate_non_target'])} | {pct(p['robust_accuracy'])} | "
                  f"{secs['mean']:.0f} |")


if __name__ == "__main__":
    main()
