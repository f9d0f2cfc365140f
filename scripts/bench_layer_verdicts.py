"""Notebook 4's per-layer verdicts on every course layer, with intervals and metadata counted.

Prints the markdown section of BENCHMARKS.md (run by scripts/benchmark.py, or on its own):

    .venv/bin/python scripts/bench_layer_verdicts.py [--quick] [--part verdicts|granularity]
                                                      [--bits 2 3] [--layers MODEL:LAYER ...]
                                                      [--csv PREFIX]

1. ``verdicts``: every layer of ``pvq.layer_bounds.COURSE_LAYERS`` at b = 2, 3, 4, 16 seeded
   chunks per layer (4 with --quick), at the paper's granularity (one MSE scale per input
   slice across all outputs) and the paper's rule (k <= n b / 16, no metadata charged):
   each end of both SNR ranges with its 95 % bootstrap interval over chunks, and the verdict
   of the intervals.
2. ``granularity``: the same chunks (at b = 2 and 3 unless --bits says otherwise; on every
   course layer unless --layers names some) with one scale per tensor, per input
   slice, per output channel, per group of 32 and of 8 inputs, and the chunk-local ones
   (groups; an output channel that is one chunk) also fitted to the output error
   (``scale_fit="output"``); the verdict under the paper's rule (nothing charged), with the
   scales charged (16 bits each) and with pruning's mask charged too (bitmask, entropy-coded,
   CSR).
"""

from __future__ import annotations

import argparse
import time

import pandas as pd

from pvq.layer_bounds import COURSE_LAYERS, DEFAULT_COUNT, snr_ranges, sweep_layers

VERDICT_BITS = (2, 3, 4)
GRANULARITY_BITS = (2, 3)
GRANULARITIES = ["tensor", "input slice", "output channel", 32, 8]
MASKS = ["none", "bitmask", "entropy", "csr"]
SHORT = {"quantization": "Q", "pruning": "P", "not decided": "?"}


def interval(row: pd.Series, end: str) -> str:
    return (f"{row[f'{end} (dB)']:.1f} [{row[f'{end} low (dB)']:.1f}, "
            f"{row[f'{end} high (dB)']:.1f}]")


def verdict_section(count: int, csv: str | None) -> None:
    start = time.perf_counter()
    chunks = sweep_layers(COURSE_LAYERS, bit_widths=VERDICT_BITS, count=count, seed=0,
                          count_scales=False)
    ranges = snr_ranges(chunks)
    seconds = time.perf_counter() - start
    if csv:
        chunks.to_csv(f"{csv}-verdicts-chunks.csv", index=False)
        ranges.to_csv(f"{csv}-verdicts.csv", index=False)
    tally = ", ".join(f"{name} {n}" for name, n in ranges.verdict.value_counts().items())
    print(f"### At the paper's granularity and rule ({count} chunks per layer)\n")
    print(f"One MSE scale per input slice of 32 inputs across all output channels (the authors' "
          f"`ptq_sqnr_bounds.py`); pruning keeps k <= n b / 16 values per chunk, no metadata "
          f"charged. SNR over the sampled chunks in dB with its 95 % bootstrap interval over "
          f"chunks ({len(ranges)} layer-and-bit-width cases). Verdict: Q (quantization) when "
          f"the low end of quantization's achieved SNR is above the high end of pruning's "
          f"bound, P the other way round, ? not decided. Verdicts: {tally}; every pruned chunk "
          f"certified optimal: {bool(ranges.certified.all())}. {len(chunks)} chunk problems in "
          f"{seconds:.0f} s.\n")
    print("| layer | b | sparsity | quant achieved | quant bound | prune exact | prune bound "
          "| verdict |")
    print("|---|---:|---:|---|---|---|---|---|")
    for _, row in ranges.iterrows():
        print(f"| {row.model} {row.layer} | {row.bits} | {row.sparsity:.1%} | "
              f"{interval(row, 'quant heuristic')} | {interval(row, 'quant bound')} | "
              f"{interval(row, 'prune exact')} | {interval(row, 'prune bound')} | "
              f"{SHORT[row.verdict]} |")


def granularity_section(count: int, csv: str | None, layers=COURSE_LAYERS,
                        bit_widths=GRANULARITY_BITS) -> None:
    start = time.perf_counter()
    chunks = sweep_layers(layers, bit_widths=bit_widths, count=count, seed=0,
                          granularity=GRANULARITIES, scale_fit=["weights", "output"],
                          count_scales=[False, True], mask=MASKS)
    ranges = snr_ranges(chunks)
    seconds = time.perf_counter() - start
    if csv:
        ranges.to_csv(f"{csv}-granularity.csv", index=False)
    settings = [(False, "none")] + [(True, mask) for mask in MASKS]
    names = ["nothing charged", "scales", "scales + bitmask", "scales + entropy mask",
             "scales + CSR"]
    print(f"\n### Scale granularity and metadata ({count} chunks per layer, b = "
          f"{', '.join(map(str, bit_widths))})\n")
    print(f"Verdict (Q / P / ?, as above) and quantization's achieved SNR minus pruning's "
          f"exact SNR in dB, with quantization's bits per weight (b + 16 bits per scale) per "
          f"granularity (\", output fit\": the scales times the factor in 0.5 .. 1.5 that "
          f"minimizes the chunk's output error of round to nearest); pruning keeps the most "
          f"values whose bits (16 per value, plus its mask where charged) fit in "
          f"quantization's. {len(chunks)} rows in "
          f"{seconds:.0f} s.\n")
    print("| layer | b | granularity | quant bits | " + " | ".join(names) + " |")
    print("|---|---:|---|---:|" + "---|" * len(names))
    for (model, layer, bits, granularity, fit), rows in ranges.groupby(
            ["model", "layer", "bits", "granularity", "scale_fit"], sort=False):
        granularity += ", output fit" if fit == "output" else ""
        cells = rows.set_index(["scales_charged", "mask"])
        charged_bits = cells.loc[(True, "none"), "quant bits"]
        lead = cells["quant heuristic (dB)"] - cells["prune exact (dB)"]
        print(f"| {model} {layer} | {bits} | {granularity} | {charged_bits:.2f} | " +
              " | ".join(f"{SHORT[cells.loc[setting, 'verdict']]} {lead[setting]:+.1f}"
                         for setting in settings) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="4 chunks per layer, not 16")
    parser.add_argument("--part", choices=["verdicts", "granularity"], help="only this table")
    parser.add_argument("--bits", type=int, nargs="+", default=list(GRANULARITY_BITS),
                        help="bit-widths of the granularity table")
    parser.add_argument("--layers", nargs="+", metavar="MODEL:LAYER",
                        help="layers of the granularity table (default: every course layer)")
    parser.add_argument("--csv", help="also write the tables to PREFIX-*.csv")
    args = parser.parse_args()
    layers = [tuple(name.split(":", 1)) for name in args.layers] if args.layers \
        else COURSE_LAYERS
    count = 4 if args.quick else DEFAULT_COUNT
    print("## Per-layer verdicts on a larger sample (`pvq.layer_bounds`)\n")
    if args.part in (None, "verdicts"):
        verdict_section(count, args.csv)
    if args.part in (None, "granularity"):
        granularity_section(count, args.csv, layers, tuple(args.bits))


if __name__ == "__main__":
    main()
