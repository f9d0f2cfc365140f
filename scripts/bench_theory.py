"""Time pvq.theory: the exact 2..8-bit table for the normal (target < 50 ms), and other paths.

Prints a markdown section for BENCHMARKS.md (run by scripts/benchmark.py, or on its own).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from scipy import stats

from pvq.distributions import truncated_student_t
from pvq.theory import pruning_snr_db, quantization_snr_db

NORMAL_TABLE_TARGET_MS = 50.0
BITS = range(2, 9)


def table(dist: object) -> list[tuple[float, float]]:
    """Quantization (optimal scale) and equal-compression pruning SNR, b = 2..8."""
    return [(quantization_snr_db(dist, b), pruning_snr_db(dist, 1 - b / 16)) for b in BITS]


def median_ms(task: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call, median of the following ``repeats`` calls) in milliseconds."""
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        task()
        times.append(1000.0 * (time.perf_counter() - start))
    return times[0], statistics.median(times[1:])


def main() -> None:
    rows = [("N(0, 1): closed form", *median_ms(lambda: table(stats.norm()), 20),
             f"< {NORMAL_TABLE_TARGET_MS:.0f} ms"),
            ("truncated t(2, limit 10): its closed form (`pvq.distributions`)",
             *median_ms(lambda: table(truncated_student_t(2.0, 10.0)), 5), "-"),
            ("Laplace: adaptive quadrature", *median_ms(lambda: table(stats.laplace()), 3), "-")]
    print("## Theory: exact SNR tables (`pvq.theory`)\n")
    print("One table: quantization SNR at the MSE-optimal scale and pruning SNR at sparsity "
          "1 - b/16, for b = 2..8.\n")
    print("| table | first call (ms) | median (ms) | target |")
    print("|---|---:|---:|---|")
    for name, first, median, target in rows:
        print(f"| {name} | {first:.1f} | {median:.1f} | {target} |")
    verdict = "met" if rows[0][2] < NORMAL_TABLE_TARGET_MS else "NOT met"
    print(f"\nTarget for the normal table: {verdict}.")


if __name__ == "__main__":
    main()
