"""Measure the course on this machine and write BENCHMARKS.md.

For every notebook: wall time to execute it top to bottom in a fresh kernel, and the peak memory
of the kernel and its worker processes (sampled every 50 ms): the sum of their proportional set
sizes (PSS), each page shared between them (torch's libraries) counted once, as the memory limit
of a container (Binder's) counts it; resident sizes where PSS is not available. Then every
scripts/bench_*.py, each of which prints a markdown section. Optionally (--suite) the wall time
of the whole test suite.

    make benchmark            # or: .venv/bin/python scripts/benchmark.py [--suite] [notebooks...]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import threading
import time
from datetime import date
from pathlib import Path

import nbformat
import psutil
import torch
from nbclient import NotebookClient

from pvq.baselines import cpu_model

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_SECONDS_TARGET, NOTEBOOK_MEMORY_TARGET_MB = 90, 1536


def _memory(process: psutil.Process) -> int:
    """Proportional set size (shared pages split among the processes sharing them), else RSS."""
    try:
        return process.memory_full_info().pss
    except (AttributeError, psutil.AccessDenied):
        return process.memory_info().rss


class PeakMemory:
    """Sample the memory of a process tree in a background thread; keep the peak."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.process, self.interval, self.peak = psutil.Process(pid), interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                tree = [self.process, *self.process.children(recursive=True)]
                self.peak = max(self.peak, sum(_memory(p) for p in tree))
            except psutil.Error:
                pass
            time.sleep(self.interval)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run_notebook(path: Path) -> tuple[float, float]:
    """Execute a notebook in a fresh kernel; return (seconds, peak MB of the kernel and its
    workers)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, kernel_name="python3", timeout=900,
                            resources={"metadata": {"path": str(path.parent)}})
    with client.setup_kernel():
        with PeakMemory(client.km.provisioner.pid) as memory:
            start = time.perf_counter()
            for index, cell in enumerate(notebook.cells):
                client.execute_cell(cell, index)
            seconds = time.perf_counter() - start
    return seconds, memory.peak / 2**20


def notebook_section(paths: list[Path]) -> str:
    lines = ["## Notebooks", "",
             f"Executed top to bottom in a fresh kernel (target: under {NOTEBOOK_SECONDS_TARGET} s "
             f"and {NOTEBOOK_MEMORY_TARGET_MB} MB each; Binder gives 2 GB).", "",
             "| notebook | time (s) | peak memory, kernel and workers (MB, PSS) | within target |",
             "|---|---:|---:|---|"]
    for path in paths:
        seconds, megabytes = run_notebook(path)
        ok = seconds < NOTEBOOK_SECONDS_TARGET and megabytes < NOTEBOOK_MEMORY_TARGET_MB
        lines.append(f"| {path.name} | {seconds:.1f} | {megabytes:.0f} | {'yes' if ok else 'NO'} |")
        print(lines[-1], flush=True)
    return "\n".join(lines)


def suite_section() -> str:
    """Wall time of the test command's pytest run (the environment already installed)."""
    start = time.perf_counter()
    result = subprocess.run(["make", "-s", "test"], cwd=ROOT, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else "(no output)"
    return (f"## The whole test command\n\n`make test` with the environment installed: "
            f"{seconds:.0f} s (target: under 300 s). Result: `{summary.strip('= ')}`")


#: scripts with a shorter mode, used by --quick (bench_bounds' full run takes about 15 minutes)
QUICK_FLAGS = {"bench_bounds.py": ["--quick"], "bench_layer_verdicts.py": ["--quick"],
               "bench_large_tensors.py": ["--quick"], "bench_headroom.py": ["--small"],
               "bench_combine.py": ["--seeds", "2"]}


def script_sections(quick: bool) -> list[str]:
    sections = []
    for script in sorted((ROOT / "scripts").glob("bench_*.py")):
        flags = QUICK_FLAGS.get(script.name, []) if quick else []
        print(f"running {script.name} {' '.join(flags)}", flush=True)
        output = subprocess.run([sys.executable, str(script), *flags], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout
        sections.append(output.strip())
    return sections


def machine_line() -> str:
    return (f"Measured {date.today().isoformat()} on {cpu_model()}, {os.cpu_count()} cores, "
            f"{psutil.virtual_memory().total / 2**30:.0f} GiB; Python {platform.python_version()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} torch threads.")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path)
    parser.add_argument("--suite", action="store_true", help="also time `make test`")
    parser.add_argument("--quick", action="store_true", help="short modes of the bench scripts")
    parser.add_argument("--output", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args()
    notebooks = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))
    sections = [notebook_section(notebooks), *script_sections(args.quick)]
    if args.suite:
        sections.append(suite_section())
    header = ("# Benchmarks\n\nWritten by `scripts/benchmark.py` (`make benchmark`); absolute "
              "times depend on the machine.\n\n" + machine_line())
    args.output.write_text("\n\n".join([header, *sections]) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
