"""Benchmark: the kurtosis x bits map of notebook 03 (target: 40 kurtoses x bits 2..8 in < 10 s)."""

import time

import numpy as np

from pvq.heavy_tails import crossover_kurtosis, snr_gap_map

TARGET_SECONDS = 10.0


def timed(function, repeats: int = 3) -> float:
    """Median wall time of ``function()`` over ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    kurtoses = np.geomspace(2.0, 1000.0, 40)
    map_seconds = timed(lambda: snr_gap_map(kurtoses, range(2, 9)))
    crossover_seconds = timed(lambda: [crossover_kurtosis(b) for b in range(2, 9)], repeats=1)
    print("## Heavy tails: the SNR-gap map (`pvq.heavy_tails`)\n")
    print("Truncated Student-t (df = 2), exact SNRs through the family's closed-form cell "
          "moments; median of 3 runs.\n")
    print("| work | time (s) | target |")
    print("|---|---:|---|")
    verdict = "met" if map_seconds < TARGET_SECONDS else "NOT met"
    print(f"| map: 40 kurtoses x bits 2..8 (280 SNR pairs) | {map_seconds:.2f} | "
          f"< {TARGET_SECONDS:.0f} s ({verdict}) |")
    print(f"| crossover kurtosis for bits 2..8 (root finding) | {crossover_seconds:.2f} | - |")


if __name__ == "__main__":
    main()
