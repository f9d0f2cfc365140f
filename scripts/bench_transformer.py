"""The wider runs behind notebook 07 on all-MiniLM-L6-v2 (issue 19): all 128 calibration
paragraphs, all held-out ones. Prints markdown sections for BENCHMARKS.md (``--part`` picks
one).

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
3. The rotation (``pvq.transformer.compress_layers(..., rotate=True)``, ``pvq.rotation``): every
   layer's inputs rotated by the block-diagonal Hadamard, at 4, 3 and 2 bits, for all four
   methods (RTN, GPTQ, magnitude, SparseGPT), against the same method and budget unrotated:
   the change of the mean layer SNR (bootstrap interval over the 36 layers), of the
   embeddings' cosine to full precision (paired bootstrap over paragraphs, the two halves of a
   paragraph together) and of retrieval accuracy (``pvq.stats.paired_bootstrap``).
4. The rotation folded per head (``pvq.rotation.fold_value_rotation``): in each block the
   value projection's outputs rotated head by head (Hadamard of 32, one per head) and folded
   into the value weights and the attention output projection's input columns, replacing the
   online rotation (blocks of 128) of that projection's inputs; the value projection keeps its
   online input rotation. GPTQ and SparseGPT at the three budgets: the SNR of the six value and
   six attention output layers unrotated, online and folded, and end to end folded - online.

Measured: per-layer output SNR on the held-out Grams of the full-precision model, the
embeddings' cosine to full precision, retrieval accuracy with paired bootstrap 95 % intervals.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import scipy.stats
import torch
from threadpoolctl import threadpool_limits

from pvq import obs, rotation, text, transformer
from pvq.stats import UNDECIDED, interval_verdict, paired_bootstrap

BOTH = {"GPTQ 3-bit": obs.Compression(bits=3),
        "prune 50 %, then 4-bit (SparseGPT joint)": obs.Compression(bits=4, sparsity=0.5),
        "4-bit GPTQ, then prune 50 %": obs.Compression(bits=4, sparsity=0.5, quantize_first=True),
        "prune 2:4, then 4-bit": obs.Compression(bits=4, n_m=(2, 4))}
BUDGETS = [(4, 0.75), (3, 0.8125), (2, 0.875)]
HESSIAN_AWARE = {("GPTQ", b): obs.Compression(bits=b) for b, _ in BUDGETS} | \
    {("SparseGPT", b): obs.Compression(sparsity=c) for b, c in BUDGETS}
HALF_TOKENS = 32
#: the head size of all-MiniLM-L6-v2's attention (12 heads of 32 channels)
HEAD_SIZE = 32
PARTS = ("both", "sequential", "rotation")


def interval(correct: np.ndarray, baseline: np.ndarray) -> str:
    gap = paired_bootstrap(correct, baseline)
    return f"{gap.gap:+.3f} ({gap.low:+.3f}, {gap.high:+.3f})"


def sign(low: float, high: float) -> str:
    """``+`` or ``-`` where the interval excludes zero, ``?`` where it does not."""
    named = interval_verdict(low, high, "+", "-")
    return "?" if named == UNDECIDED else named


def mean_change(change: np.ndarray, digits: int = 3) -> str:
    """The mean of paired changes, its percentile bootstrap 95 % interval and what it names."""
    ci = scipy.stats.bootstrap((np.asarray(change),), np.mean, method="percentile",
                               random_state=0).confidence_interval
    return (f"{np.mean(change):+.{digits}f} ({ci.low:+.{digits}f}, {ci.high:+.{digits}f}) "
            f"{sign(ci.low, ci.high)}")


def retrieval_change(correct: np.ndarray, baseline: np.ndarray) -> str:
    gap = paired_bootstrap(correct, baseline)
    return f"{interval(correct, baseline)} {sign(gap.low, gap.high)}"


def folded_compression(model: torch.nn.Module, grams: dict, online: dict) -> dict:
    """GPTQ and SparseGPT at each budget with the value rotation folded per head: per block,
    the value layer ``R_h^T W_V R`` (online input rotation ``R`` kept) on its rotated Gram, the
    attention output layer ``W_O R_h`` on ``R_h^T G R_h``, both returned in the original basis;
    every other layer as in ``online`` (``compress_layers(..., rotate=True)``)."""
    configs = list(HESSIAN_AWARE.values())
    folded = {key: dict(online[key]) for key in HESSIAN_AWARE}
    for block in range(transformer.BLOCKS):
        value_name = f"encoder.layer.{block}.attention.self.value"
        output_name = f"encoder.layer.{block}.attention.output.dense"
        value, output = model.get_submodule(value_name), model.get_submodule(output_name)
        W_V, H_V = rotation.rotate_layer(value.weight.detach().double(),
                                         2.0 * grams[value_name].double())
        W_V, b_V, W_O = rotation.fold_value_rotation(W_V, value.bias.detach().double(),
                                                     output.weight.detach().double(), HEAD_SIZE)
        H_O = rotation.rotate_layer(output.weight.detach().double(),
                                    2.0 * grams[output_name].double(), HEAD_SIZE)[1]
        for key, V_hat, O_hat in zip(HESSIAN_AWARE, obs.obs_compress(W_V, H_V, configs),
                                     obs.obs_compress(W_O, H_O, configs)):
            V_hat, _, O_hat = rotation.fold_value_rotation(V_hat, b_V, O_hat, HEAD_SIZE)  # back
            folded[key][value_name] = rotation.rotate(V_hat).half()
            folded[key][output_name] = O_hat.half()
    return folded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=PARTS, help="only this section (default: all)")
    part = parser.parse_args().part
    parts = [part] if part else list(PARTS)
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
    full = transformer.retrieval_correct(reference[:n], reference[n:])
    setup = (f"{len(split.calibration)} calibration paragraphs ({int(grams['tokens'])} tokens), "
             f"{n} held-out paragraphs ({int(held_out_grams['tokens'])} tokens, halves cut at "
             f"{HALF_TOKENS}); full precision retrieves {full.mean():.3f}. Paired bootstrap 95 % "
             "intervals over the paragraphs. ATEN_CPU_CAPABILITY="
             f"{os.environ.get('ATEN_CPU_CAPABILITY', 'native')}.\n")
    measured = Measured(model, held_out_grams, reference, n, tokenizer, halves)
    if "both" in parts or "sequential" in parts:
        one_shot_sections(tokenizer, model, split, grams, measured, setup, parts)
    if "rotation" in parts:
        rotation_sections(model, grams, measured, setup)
    print(f"\nRun time {time.perf_counter() - start:.0f} s on one thread per job.")


class Measured:
    """Per-layer held-out SNRs, embeddings, cosines and retrieval outcomes of configurations."""

    def __init__(self, model, held_out_grams, reference, n, tokenizer, halves) -> None:
        self.model, self.grams, self.reference, self.n = model, held_out_grams, reference, n
        self.tokenizer, self.halves = tokenizer, halves

    def __call__(self, compressed: dict) -> tuple[dict, dict, dict, dict]:
        """``(snrs, paragraph cosines, cosine, correct)`` per key of ``compressed``."""
        per_layer = [transformer.gram_snrs_db(self.model.get_submodule(name).weight.detach(),
                                              [weights[name] for weights in compressed.values()],
                                              self.grams[name])
                     for name in transformer.layer_names()]
        snrs = {key: np.array(column) for key, column in zip(compressed, zip(*per_layer))}
        embedded = dict(zip(compressed, transformer.embed_each(
            self.tokenizer, self.model, list(compressed.values()), self.halves,
            max_tokens=HALF_TOKENS)))
        n = self.n
        correct = {key: transformer.retrieval_correct(e[:n], e[n:]) for key, e in embedded.items()}
        # cosine to full precision per paragraph: the mean over its two halves
        paragraph = {key: (e * self.reference).sum(1).reshape(2, n).mean(0).numpy()
                     for key, e in embedded.items()}
        cosine = {key: float(c.mean()) for key, c in paragraph.items()}
        return snrs, paragraph, cosine, correct

def one_shot_sections(tokenizer, model, split, grams, measured, setup, parts) -> None:
    """Sections 1 and 2 of the module docstring."""
    start = time.perf_counter()
    one_shot = {**BOTH, **HESSIAN_AWARE}
    compressed: dict = {key: {} for key in one_shot}
    for name in transformer.layer_names():
        W = model.get_submodule(name).weight.detach().double()
        results = obs.obs_compress(W, 2.0 * grams[name].double(), list(one_shot.values()))
        for key, result in zip(one_shot, results):
            compressed[key][name] = result.half()
    one_shot_seconds = time.perf_counter() - start
    sequential_seconds = 0.0
    if "sequential" in parts:
        sequential_start = time.perf_counter()
        sequential = transformer.compress_sequentially(tokenizer, model, split.calibration,
                                                       HESSIAN_AWARE)
        sequential_seconds = time.perf_counter() - sequential_start
        compressed |= {("sequential", *key): weights for key, weights in sequential.items()}
    snrs, _, cosine, correct = measured(compressed)

    if "both" in parts:
        print("## Both at once on all-MiniLM-L6-v2 (notebook 07's wider run)\n")
        print(setup + "3 bits per weight for each (module docstring).\n")
        print("| method | mean layer SNR (dB) | layers above GPTQ 3-bit | cosine to FP | "
              "retrieval | vs GPTQ 3-bit (95 % interval) |")
        print("|---|---:|---:|---:|---:|---|")
        for label in BOTH:
            above = sum(a > b for a, b in zip(snrs[label], snrs["GPTQ 3-bit"]))
            vs = "-" if label == "GPTQ 3-bit" else interval(correct[label], correct["GPTQ 3-bit"])
            print(f"| {label} | {np.mean(snrs[label]):.2f} | {above} of {len(snrs[label])} | "
                  f"{cosine[label]:.3f} | {correct[label].mean():.3f} | {vs} |")

    if "sequential" in parts:
        print("\n## Sequential calibration on all-MiniLM-L6-v2\n")
        print(setup + "One-shot: every layer calibrated on the full-precision model's inputs "
              "(the notebook); sequential: block by block on the compressed blocks' outputs. "
              "SNR on the full-precision model's held-out inputs.\n")
        print("| method | bits | mean layer SNR one-shot / sequential (dB) | cosine one-shot / "
              "sequential | retrieval one-shot / sequential | sequential - one-shot (95 % "
              "interval) |")
        print("|---|---:|---:|---:|---:|---|")
        for key in HESSIAN_AWARE:
            seq = ("sequential", *key)
            print(f"| {key[0]} | {key[1]} | {np.mean(snrs[key]):.2f} / {np.mean(snrs[seq]):.2f} "
                  f"| {cosine[key]:.3f} / {cosine[seq]:.3f} | {correct[key].mean():.3f} / "
                  f"{correct[seq].mean():.3f} | {interval(correct[seq], correct[key])} |")
    print(f"\nOne-shot compression {one_shot_seconds:.0f} s, sequential "
          f"{sequential_seconds:.0f} s.")


def rotation_sections(model, grams, measured, setup) -> None:
    """Sections 3 and 4 of the module docstring."""
    start = time.perf_counter()
    plain = transformer.compress_layers(model, grams, BUDGETS)
    online = transformer.compress_layers(model, grams, BUDGETS, rotate=True)
    folded = folded_compression(model, grams, online)
    compress_seconds = time.perf_counter() - start
    configurations = {("plain", *key): w for key, w in plain.items()} | \
        {("online", *key): w for key, w in online.items()} | \
        {("folded", *key): w for key, w in folded.items()}
    del plain, online, folded
    snrs, paragraph, cosine, correct = measured(configurations)

    print("\n## The rotation on all-MiniLM-L6-v2, every method and budget\n")
    print(setup + "Each change is rotated - unrotated, the same method and budget: mean, 95 % "
          "interval and the sign it supports (+ / - / ? for neither). Mean layer SNR: "
          "bootstrap over the 36 layers; cosine to full precision: over paragraphs (the mean "
          "of a paragraph's two halves); retrieval: paired bootstrap over paragraphs.\n")
    print("| method | bits | mean layer SNR unrotated (dB) | SNR change (dB) | layers that gain "
          "| cosine unrotated / rotated | cosine change | retrieval unrotated / rotated | "
          "retrieval change |")
    print("|---|---:|---:|---|---:|---|---|---|---|")
    for method in transformer.METHODS:
        for b, _ in BUDGETS:
            before, after = ("plain", method, b), ("online", method, b)
            snr_change = snrs[after] - snrs[before]
            print(f"| {method} | {b} | {snrs[before].mean():.2f} | {mean_change(snr_change, 2)} "
                  f"| {int((snr_change > 0).sum())} of {len(snr_change)} | "
                  f"{cosine[before]:.3f} / {cosine[after]:.3f} | "
                  f"{mean_change(paragraph[after] - paragraph[before])} | "
                  f"{correct[before].mean():.3f} / {correct[after].mean():.3f} | "
                  f"{retrieval_change(correct[after], correct[before])} |")

    names = transformer.layer_names()
    kinds = {"value": [i for i, name in enumerate(names) if name.endswith(".self.value")],
             "attention output": [i for i, name in enumerate(names)
                                  if name.endswith("attention.output.dense")]}
    print("\n## The value rotation folded per head (all-MiniLM-L6-v2)\n")
    print(setup + f"Folded: Hadamard of {HEAD_SIZE} per head on the value projection's outputs, "
          "folded into it and the attention output projection (no online rotation there); "
          "online: the notebook's rotation (blocks of 128, online) of every layer's inputs. "
          "The other layers as online. Mean SNR over the six layers of each kind; folded - "
          "online changes with 95 % intervals as above (SNR: over the six layers).\n")
    print("| method | bits | value SNR unrotated / online / folded (dB) | attention output SNR "
          "unrotated / online / folded (dB) | attention output folded - online (dB) | cosine "
          "online / folded | cosine change | retrieval change |")
    print("|---|---:|---|---|---|---|---|---|")
    for method, b in HESSIAN_AWARE:
        plain_key, online_key, folded_key = (("plain", method, b), ("online", method, b),
                                             ("folded", method, b))
        cells = [" / ".join(f"{snrs[key][rows].mean():.2f}"
                            for key in (plain_key, online_key, folded_key))
                 for rows in kinds.values()]
        rows = kinds["attention output"]
        print(f"| {method} | {b} | {cells[0]} | {cells[1]} | "
              f"{mean_change(snrs[folded_key][rows] - snrs[online_key][rows], 2)} | "
              f"{cosine[online_key]:.3f} / {cosine[folded_key]:.3f} | "
              f"{mean_change(paragraph[folded_key] - paragraph[online_key])} | "
              f"{retrieval_change(correct[folded_key], correct[online_key])} |")
    print(f"\nCompression of the rotation sections {compress_seconds:.0f} s.")


if __name__ == "__main__":
    main()
