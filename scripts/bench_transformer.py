"""Both at once on all-MiniLM-L6-v2 (issue 19): SparseGPT at 50 % with 4-bit GPTQ on what
remains, and the same on the 2:4 pattern, against 3-bit GPTQ, the comparison the SparseGPT paper
makes. The wider run behind notebook 07: all 128 calibration paragraphs, all held-out ones.

Storage per weight (scales one FP16 per output channel for all three): 3-bit GPTQ 3 bits; 50 %
sparse 4-bit codes 2 bits of codes plus the mask, 1 bit as a bitmask (also its entropy at density
1/2), so 3 bits; 2:4 with 4-bit codes 2 bits plus 1 bit of positions (2 bits per kept weight, as
the sparse tensor cores store it). One sweep per layer (``pvq.obs.obs_compress``), each layer on
the full-precision model's inputs as in the notebook. Measured: per-layer output SNR on the
held-out Grams, the embeddings' cosine to full precision, retrieval accuracy with paired
bootstrap 95 % intervals. Prints a markdown section for BENCHMARKS.md.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from pvq import obs, text, transformer
from pvq.stats import paired_bootstrap

CONFIGS = {"GPTQ 3-bit": obs.Compression(bits=3),
           "SparseGPT 50 % + 4-bit": obs.Compression(bits=4, sparsity=0.5),
           "SparseGPT 2:4 + 4-bit": obs.Compression(bits=4, n_m=(2, 4))}
HALF_TOKENS = 32


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
    compressed: dict[str, dict[str, torch.Tensor]] = {label: {} for label in CONFIGS}
    snrs: dict[str, list[float]] = {label: [] for label in CONFIGS}
    for name in transformer.layer_names():
        W = model.get_submodule(name).weight.detach().double()
        results = obs.obs_compress(W, 2.0 * grams[name].double(), list(CONFIGS.values()))
        for label, result in zip(CONFIGS, results):
            compressed[label][name] = result.half()
        for label, snr in zip(CONFIGS, transformer.gram_snrs_db(W, results, held_out_grams[name])):
            snrs[label].append(snr)
    embedded = dict(zip(CONFIGS, transformer.embed_each(
        tokenizer, model, list(compressed.values()), halves, max_tokens=HALF_TOKENS)))
    correct = {label: transformer.retrieval_correct(e[:n], e[n:]) for label, e in embedded.items()}
    full = transformer.retrieval_correct(reference[:n], reference[n:])
    baseline = correct["GPTQ 3-bit"]
    print("## Both at once on all-MiniLM-L6-v2 (notebook 07's wider run)\n")
    print(f"{len(split.calibration)} calibration paragraphs ({int(grams['tokens'])} tokens), "
          f"{n} held-out paragraphs ({int(held_out_grams['tokens'])} tokens, halves cut at "
          f"{HALF_TOKENS}); full precision retrieves {full.mean():.3f}. 3 bits per weight for "
          "each (module docstring). Paired bootstrap 95 % intervals over the paragraphs.\n")
    print("| method | mean layer SNR (dB) | layers above GPTQ 3-bit | cosine to FP | retrieval "
          "| vs GPTQ 3-bit (95 % interval) |")
    print("|---|---:|---:|---:|---:|---|")
    for label in CONFIGS:
        above = sum(a > b for a, b in zip(snrs[label], snrs["GPTQ 3-bit"]))
        cosine = float((embedded[label] * reference).sum(1).mean())
        gap = paired_bootstrap(correct[label], baseline)
        vs = "-" if label == "GPTQ 3-bit" else f"{gap.gap:+.3f} ({gap.low:+.3f}, {gap.high:+.3f})"
        print(f"| {label} | {np.mean(snrs[label]):.2f} | {above} of {len(snrs[label])} | "
              f"{cosine:.3f} | {correct[label].mean():.3f} | {vs} |")
    print(f"\nRun time {time.perf_counter() - start:.0f} s on one thread per job.")


if __name__ == "__main__":
    main()
