"""The wider runs behind notebook 07 on all-MiniLM-L6-v2 (issue 19): all 128 calibration
paragraphs, all held-out ones. Prints two markdown sections for BENCHMARKS.md.

1. Both at once: SparseGPT at 50 % with 4-bit GPTQ on what remains, in both orders (prune then
   quantize, SparseGPT's joint sweep; quantize then prune, ``pvq.obs.quantize_then_prune``), and
   the same on the 2:4 pattern, against 3-bit GPTQ, the comparison the SparseGPT paper makes.
   Storage per weight (scales one FP16 per output channel for all): 3-bit GPTQ 3 bits; 50 %
   sparse 4-bit codes 2 bits of codes plus the mask, 1 bit as a bitmask (also its entropy at
   density 1/2), so 3 bits; 2:4 with 4-bit codes 2 bits plus 1 bit of positions (2 bits per kept
   weight, as the sparse tensor cores store it). Each layer on the full-precision model's
   inputs, as in the notebook.
2. Sequential calibration: GPTQ and SparseGPT at 4/3/2 bits against 75/81.25/87.5 % sparsity,
   each layer calibrated on the full-precision model's inputs (the notebook's one-shot
   departure, one sweep per layer for all configurations) against block by block on the
   compressed blocks' outputs (``pvq.transformer.compress_sequentially``, as GPTQ and
   SparseGPT do).

Measured: per-layer output SNR on the held-out Grams of the full-precision model, the
embeddings' cosine to full precision, retrieval accuracy with paired bootstrap 95 % intervals.
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from pvq import obs, text, transformer
from pvq.stats import paired_bootstrap

BOTH = {"GPTQ 3-bit": obs.Compression(bits=3),
        "prune 50 %, then 4-bit (SparseGPT joint)": obs.Compression(bits=4, sparsity=0.5),
        "4-bit GPTQ, then prune 50 %": obs.Compression(bits=4, sparsity=0.5, quantize_first=True),
        "prune 2:4, then 4-bit": obs.Compression(bits=4, n_m=(2, 4))}
BUDGETS = [(4, 0.75), (3, 0.8125), (2, 0.875)]
HESSIAN_AWARE = {("GPTQ", b): obs.Compression(bits=b) for b, _ in BUDGETS} | \
    {("SparseGPT", b): obs.Compression(sparsity=c) for b, c in BUDGETS}
HALF_TOKENS = 32


def interval(correct: np.ndarray, baseline: np.ndarray) -> str:
    gap = paired_bootstrap(correct, baseline)
    return f"{gap.gap:+.3f} ({gap.low:+.3f}, {gap.high:+.3f})"


def main() -> None:
    threadpool_limits(1)
    torch.set_num_threads(1)
    start = time.perf_counter()
    tokenizer, model = transformer.load_minilm()
    split = text.split_paragraphs()
    first, second = map(list, zip(*(text.halves(p) for p in split.held_out)))
    halves, n = first + second, len(first)
    grams = transformer.input_grams(tokenizer, model, split.calibration)
    with transformer.recording_grams(model) as held_out_grams:
        reference = transformer.embed(tokenizer, model, halves, max_tokens=HALF_TOKENS)
    one_shot = {**BOTH, **HESSIAN_AWARE}
    compressed: dict = {key: {} for key in one_shot}
    for name in transformer.layer_names():
        W = model.get_submodule(name).weight.detach().double()
        results = obs.obs_compress(W, 2.0 * grams[name].double(), list(one_shot.values()))
        for key, result in zip(one_shot, results):
            compressed[key][name] = result.half()
    one_shot_seconds = time.perf_counter() - start
    sequential_start = time.perf_counter()
    sequential = transformer.compress_sequentially(tokenizer, model, split.calibration,
                                                   HESSIAN_AWARE)
    sequential_seconds = time.perf_counter() - sequential_start
    compressed |= {("sequential", *key): weights for key, weights in sequential.items()}
    per_layer = [transformer.gram_snrs_db(model.get_submodule(name).weight.detach(),
                                          [weights[name] for weights in compressed.values()],
                                          held_out_grams[name])
                 for name in transformer.layer_names()]
    snrs = dict(zip(compressed, map(list, zip(*per_layer))))
    embedded = dict(zip(compressed, transformer.embed_each(
        tokenizer, model, list(compressed.values()), halves, max_tokens=HALF_TOKENS)))
    correct = {key: transformer.retrieval_correct(e[:n], e[n:]) for key, e in embedded.items()}
    cosine = {key: float((e * reference).sum(1).mean()) for key, e in embedded.items()}
    full = transformer.retrieval_correct(reference[:n], reference[n:])
    setup = (f"{len(split.calibration)} calibration paragraphs ({int(grams['tokens'])} tokens), "
             f"{n} held-out paragraphs ({int(held_out_grams['tokens'])} tokens, halves cut at "
             f"{HALF_TOKENS}); full precision retrieves {full.mean():.3f}. Paired bootstrap 95 % "
             "intervals over the paragraphs. ATEN_CPU_CAPABILITY="
             f"{os.environ.get('ATEN_CPU_CAPABILITY', 'native')}.\n")

    print("## Both at once on all-MiniLM-L6-v2 (notebook 07's wider run)\n")
    print(setup + "3 bits per weight for each (module docstring).\n")
    print("| method | mean layer SNR (dB) | layers above GPTQ 3-bit | cosine to FP | retrieval "
          "| vs GPTQ 3-bit (95 % interval) |")
    print("|---|---:|---:|---:|---:|---|")
    for label in BOTH:
        above = sum(a > b for a, b in zip(snrs[label], snrs["GPTQ 3-bit"]))
        vs = "-" if label == "GPTQ 3-bit" else interval(correct[label], correct["GPTQ 3-bit"])
        print(f"| {label} | {np.mean(snrs[label]):.2f} | {above} of {len(snrs[label])} | "
              f"{cosine[label]:.3f} | {correct[label].mean():.3f} | {vs} |")

    print("\n## Sequential calibration on all-MiniLM-L6-v2\n")
    print(setup + "One-shot: every layer calibrated on the full-precision model's inputs (the "
          "notebook); sequential: block by block on the compressed blocks' outputs. SNR on the "
          "full-precision model's held-out inputs.\n")
    print("| method | bits | mean layer SNR one-shot / sequential (dB) | cosine one-shot / "
          "sequential | retrieval one-shot / sequential | sequential - one-shot (95 % interval) |")
    print("|---|---:|---:|---:|---:|---|")
    for key in HESSIAN_AWARE:
        seq = ("sequential", *key)
        print(f"| {key[0]} | {key[1]} | {np.mean(snrs[key]):.2f} / {np.mean(snrs[seq]):.2f} | "
              f"{cosine[key]:.3f} / {cosine[seq]:.3f} | {correct[key].mean():.3f} / "
              f"{correct[seq].mean():.3f} | {interval(correct[seq], correct[key])} |")
    print(f"\nRun time {time.perf_counter() - start:.0f} s on one thread per job (one-shot "
          f"compression {one_shot_seconds:.0f} s with loading, sequential "
          f"{sequential_seconds:.0f} s).")


if __name__ == "__main__":
    main()
