"""Notebook 4's per-layer verdicts on a larger sample: quantization's guaranteed lead in dB.

For every layer of ``pvq.layer_bounds.COURSE_LAYERS`` and b = 2, 3, 4, bracket 16 seeded random
chunks (4 with --quick; the notebook uses 2) and print, per layer and b, quantization's heuristic
SNR minus pruning's certified bound (positive: quantization beats the best possible pruning).

    .venv/bin/python scripts/bench_layer_verdicts.py [--quick]
"""

from __future__ import annotations

import argparse
import time

from pvq.layer_bounds import COURSE_LAYERS, snr_ranges, sweep_layers

BIT_WIDTHS = (2, 3, 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 chunks per layer instead of 16")
    count = 4 if parser.parse_args().quick else 16
    start = time.perf_counter()
    ranges = snr_ranges(sweep_layers(COURSE_LAYERS, bit_widths=BIT_WIDTHS, count=count, seed=0))
    seconds = time.perf_counter() - start
    ranges["lead"] = ranges["quant heuristic (dB)"] - ranges["prune bound (dB)"]
    verdicts = ", ".join(f"{name} {n}" for name, n in ranges.verdict.value_counts().items())
    print("## Per-layer verdicts on a larger sample (`pvq.layer_bounds`)\n")
    print(f"{count} seeded random chunks per layer (notebook 4 brackets 2), b = 2, 3, 4 at the "
          f"equal-compression sparsity. Quantization's guaranteed lead in dB: its heuristic SNR "
          f"minus pruning's certified bound over the sample. Verdicts: {verdicts}; every pruned "
          f"chunk certified optimal: {bool(ranges.certified.all())}. "
          f"{len(ranges) * count} chunk problems in {seconds:.0f} s.\n")
    print("| layer | " + " | ".join(f"lead at {b} bits (dB)" for b in BIT_WIDTHS) + " |")
    print("|---|" + "---:|" * len(BIT_WIDTHS))
    for (model, layer), rows in ranges.groupby(["model", "layer"], sort=False):
        leads = rows.set_index("bits")["lead"]
        print(f"| {model} {layer} | " + " | ".join(f"{leads[b]:.1f}" for b in BIT_WIDTHS) + " |")


if __name__ == "__main__":
    main()
