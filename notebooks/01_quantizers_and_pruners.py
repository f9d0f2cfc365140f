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
# # 1. Quantizers and pruners
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 25 minutes. **You need:** NumPy basics; no earlier notebook.
#
# ## Learning objectives
# By the end of this notebook you can
# 1. quantize a weight tensor to b bits on the signed grid `-2^(b-1) .. 2^(b-1)-1` and explain why
#    the scale is chosen to minimise the mean squared error;
# 2. prune a tensor by magnitude to an exact ratio, and find the same cut from the distribution's
#    CDF, `F^-1(1/2 + c/2)`;
# 3. compare the two at *equal compression* (b bits against sparsity `1 - b/16` over FP16) and
#    count the bitmask that unstructured pruning needs on top;
# 4. measure both errors with one yardstick, the signal-to-noise ratio in dB.
#
# Every function used here lives in the course library `pvq`; this notebook shows what each does.

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from scipy import stats

from pvq.compression import (bitmask_bits_per_weight, equivalent_sparsity, mask_overhead,
                             storage_bytes)
from pvq.exercises import check_answer
from pvq.metrics import kurtosis, snr_db
from pvq.plotting import COLORS, use_course_style, weight_histogram
from pvq.prune import magnitude_mask, magnitude_prune, magnitude_threshold, pruned_count
from pvq.quantize import (integer_codes, max_abs_scale, mse_scale, paper_search_scale,
                          quantization_grid, quantize)

use_course_style()
rng = np.random.default_rng(seed=0)

# %% [markdown]
# ## A weight tensor
# Trained weights are, to a first approximation, bell-shaped around zero. We start with a
# 256 x 256 layer drawn from a normal distribution with standard deviation 0.02 (a typical
# initialisation scale); notebook 3 turns to real trained weights with heavier tails.
# Kurtosis measures how heavy the tails are; the normal has (Pearson) kurtosis 3.

# %%
w = rng.normal(0.0, 0.02, size=(256, 256))
print(f"{w.size} weights, std {w.std():.4f}, max |w| {np.abs(w).max():.4f}, "
      f"kurtosis {kurtosis(w):.3f}")

# %% [markdown]
# ## The quantizer
# A b-bit signed integer holds the `2^b` values `-2^(b-1) .. 2^(b-1)-1`. Quantization maps a
# weight to the nearest point of that grid stretched by a scale `s`, clipping what falls outside:
#
# $$Q(w) = s \cdot \mathrm{clip}\big(\mathrm{round}(w / s),\ -2^{b-1},\ 2^{b-1}-1\big).$$
#
# Only the integers and one scale per tensor are stored. The grid for 4 bits:

# %%
print(quantization_grid(4))

# %% [markdown]
# The scale sets a trade-off. A large scale covers every weight (no clipping) but the levels are
# far apart (large rounding error); a small scale rounds finely but clips the tails.
# `mse_scale` finds the scale with the smallest mean squared error: it evaluates the error exactly,
# cell by cell, at 2,048 candidate scales and polishes the best. Compare it, at every bit-width,
# with two common shortcuts: the max-abs scale (no clipping) and the authors' published search,
# 100 clipping ranges `k (max|w| + 0.5) / 100`.
#
# To compare them we need a yardstick for the error. The signal-to-noise ratio compares the
# energy of the weights with the energy of the error `w - w_hat`, in decibels (+10 dB = ten
# times less error energy); `pvq.metrics.snr_db` computes it:
#
# $$\mathrm{SNR_{dB}} = 10 \log_{10} \frac{E[w^2]}{E[(w - \hat w)^2]}.$$

# %%
scale_rules = {"max-abs": max_abs_scale, "paper's 100-point search": paper_search_scale,
               "MSE-optimal": mse_scale}
scale_table = pd.DataFrame(
    {rule: [snr_db(w, quantize(w, b, find(w, b))) for b in range(2, 9)]
     for rule, find in scale_rules.items()}, index=pd.Index(range(2, 9), name="bits"))
print("SNR (dB) of each scale rule")
print(scale_table.round(2).to_string())
assert (scale_table["MSE-optimal"] >= scale_table.max(axis=1) - 1e-9).all()

# %% [markdown]
# The max-abs rule wastes levels on the rare largest weights and loses many dB at low
# bit-widths. The paper's search is close but never better: its `+ 0.5` is large next to weights
# of size 0.02, so few of its candidates fall inside the weights' range at all:

# %%
inside = np.sum(np.arange(1, 101) * (np.abs(w).max() + 0.5) / 100 <= np.abs(w).max())
loss = (scale_table["MSE-optimal"] - scale_table["paper's 100-point search"]).max()
print(f"{inside} of 100 candidates lie inside max|w|; largest loss {loss:.2f} dB")

# %% [markdown]
# From now on the course always uses `mse_scale`.
#
# At 4 bits the quantized tensor takes only the grid's 16 values, and quantizing twice changes
# nothing:

# %%
bits = 4
scale = mse_scale(w, bits)
w_quant = quantize(w, bits, scale)
codes = integer_codes(w, bits, scale)
print("distinct values:", np.unique(w_quant).size, "| codes from", codes.min(), "to", codes.max())
assert set(np.unique(codes)) <= set(quantization_grid(bits))
assert np.array_equal(quantize(w_quant, bits, scale), w_quant)

# %%
fig, ax = plt.subplots()
weight_histogram(ax, w, levels=quantization_grid(bits) * scale)
ax.set_title(f"{bits}-bit grid at the MSE-optimal scale")
plt.show()

# %% [markdown]
# *Takeaway: the optimal grid does not reach the largest weights; it spends its 16 levels where
# the weights are, and clips the rare tails.*
#
# ## The pruner
# Magnitude pruning keeps the largest weights and sets the rest to zero. To sparsity `c`, exactly
# `round(c * n)` weights go (ties broken by position, as `torch.nn.utils.prune` would count them):

# %%
sparsity = equivalent_sparsity(bits)
w_pruned = magnitude_prune(w, sparsity)
zeros = int((w_pruned == 0).sum())
print(f"sparsity {sparsity}: {zeros} of {w.size} weights are zero")
assert zeros == pruned_count(w.size, sparsity) == round(sparsity * w.size)

# %% [markdown]
# For a distribution symmetric about zero with CDF `F`, pruning a fraction `c` cuts at the
# magnitude `tau` with mass `c` inside `(-tau, tau)`, that is `tau = F^-1(1/2 + c/2)`. For our
# normal tensor the threshold from the CDF and the smallest kept magnitude agree closely:

# %%
tau = magnitude_threshold(stats.norm(scale=0.02), sparsity)
smallest_kept = np.abs(w[magnitude_mask(w, sparsity)]).min()
print(f"CDF threshold {tau:.5f}, smallest kept |w| {smallest_kept:.5f}")
assert abs(smallest_kept - tau) < 0.01 * tau

# %%
fig, ax = plt.subplots()
weight_histogram(ax, w, threshold=tau)
ax.set_title(f"Magnitude pruning to {sparsity:.0%} sparsity")
plt.show()

# %% [markdown]
# *Takeaway: at 75 % sparsity the pruned band covers the whole bulk of the distribution; only
# the tails survive.*
#
# ## The error each makes
# Both methods replace `w` by `w_hat`; the SNR defined above measures how much signal each keeps.

# %%
snr_quant, snr_prune = snr_db(w, w_quant), snr_db(w, w_pruned)
print(f"{bits}-bit quantization: {snr_quant:.2f} dB | {sparsity:.0%} pruning: {snr_prune:.2f} dB")
assert snr_quant > snr_prune

# %%
order = np.argsort(w.ravel())
fig, ax = plt.subplots()
ax.plot(w.ravel()[order], (w_pruned - w).ravel()[order], color=COLORS["pruning"],
        label=f"pruning {sparsity:.0%} ({snr_prune:.1f} dB)")
ax.plot(w.ravel()[order], (w_quant - w).ravel()[order], color=COLORS["quantization"],
        label=f"quantization {bits} bits ({snr_quant:.1f} dB)")
low, high = (quantization_grid(bits)[[0, -1]] + [-0.5, 0.5]) * scale  # outer cell edges
ax.axvspan(w.min(), low, color=COLORS["quantization"], alpha=0.15, label="clipped by the grid")
ax.axvspan(high, w.max(), color=COLORS["quantization"], alpha=0.15)
ax.set_xlabel("weight value w")
ax.set_ylabel("error w_hat - w")
ax.legend(loc="lower left")
plt.show()

# %% [markdown]
# The largest single errors are quantization's, in the clipped tails (shaded); pruning's largest
# error is a weight just below the threshold. But the SNR weighs the *sum* of squared errors,
# and the tails hold few weights: the optimal 4-bit grid reaches about 2.5 standard deviations
# on one side and 2.9 on the other (it has one more negative level), and a normal has less than
# 1 % of its weights beyond that.

# %%
error_quant, error_prune = w_quant - w, w_pruned - w
clipped = (w < low) | (w > high)
print(f"largest error: quantization {error_quant.flat[np.abs(error_quant).argmax()]:.4f}, "
      f"pruning {error_prune.flat[np.abs(error_prune).argmax()]:.4f}")
print(f"clipped by the grid: {clipped.sum()} weights ({clipped.mean():.2%}), those beyond "
      f"{high / w.std():.2f} or {low / w.std():.2f} standard deviations; "
      f"pruned: {np.count_nonzero(error_prune)} weights")
print(f"error energy: quantization {np.sum(error_quant**2):.4f} "
      f"({np.sum(error_quant[clipped] ** 2) / np.sum(error_quant**2):.1%} of it from clipping), "
      f"pruning {np.sum(error_prune**2):.4f}")
assert np.abs(error_quant).max() > np.abs(error_prune).max()
assert np.sum(error_prune**2) > 10 * np.sum(error_quant**2)

# %% [markdown]
# *Takeaway: quantization makes a small saw-tooth error on every weight (at most half a step)
# and a larger one on the few clipped weights in the tails; pruning makes no error on the kept
# weights but loses every pruned weight whole. Per weight, the clipped tails are worst; in total,
# pruning's tens of thousands of lost weights carry over ten times the error energy.*
#
# ## Equal compression, and the mask
# The paper compares both at the same storage relative to FP16: a b-bit tensor keeps `b/16` of
# the bits, and so does pruning to sparsity `1 - b/16` *if the positions of the kept weights were
# free*. They are not: an unstructured pruned tensor also says *which* weights it kept. A plain
# bitmask spends one bit per weight, `1/16` of FP16 on top; the table below counts that.

# %%
rows = []
for b in range(2, 9):
    c = equivalent_sparsity(b)
    rows.append({
        "bits": b, "sparsity": c,
        "pruned bits/weight with mask": bitmask_bits_per_weight(c),
        "SNR quantization (dB)": snr_db(w, quantize(w, b, mse_scale(w, b))),
        "SNR pruning (dB)": snr_db(w, magnitude_prune(w, c)),
    })
table = pd.DataFrame(rows).set_index("bits")
print(table.round(4).to_string())
assert list(table.sparsity) == [0.875, 0.8125, 0.75, 0.6875, 0.625, 0.5625, 0.5]
assert (table["SNR quantization (dB)"] > table["SNR pruning (dB)"]).all()

# %%
fig, ax = plt.subplots()
ax.plot(table.index, table["SNR quantization (dB)"], "o-", color=COLORS["quantization"],
        label="quantization, b bits")
ax.plot(table["pruned bits/weight with mask"], table["SNR pruning (dB)"], "s-",
        color=COLORS["pruning"], label="pruning to 1 - b/16, plus bitmask")
ax.set_xlabel("storage (bits per weight)")
ax.set_ylabel("SNR (dB)")
ax.legend()
plt.show()

# %% [markdown]
# *Takeaway: on normal weights quantization keeps far more signal at every budget, and the
# bitmask pushes each pruning point one more bit to the right.*
#
# What the mask costs, in numbers: one bit per weight is `mask_overhead()` of FP16, and for this
# layer at the 4-bit budget it turns 4 bits per weight into 5. One bit is the cost of a plain
# bitmask, not a lower bound: a mask whose positions are independent, each kept with probability
# `1 - c`, can be entropy-coded in `H(c) = -c log2 c - (1 - c) log2 (1 - c)` bits per weight.

# %%
print(f"mask overhead over FP16: {mask_overhead():.2%}")
mask_entropy = stats.entropy([sparsity, 1 - sparsity], base=2)
print(f"entropy-coded mask at {sparsity:.0%} sparsity: {mask_entropy:.3f} bit per weight "
      f"({mask_entropy / 16:.2%} of FP16)")
assert abs(mask_entropy - 0.811) < 1e-3
print(f"bytes for this layer: INT4 {storage_bytes(w.size, 4)}, "
      f"75% pruned + bitmask {storage_bytes(w.size, bitmask_bits_per_weight(0.75))}, "
      f"FP16 {storage_bytes(w.size, 16)}")

# %% [markdown]
# ## Exercises
# Each exercise has a cell for your answer (replace the placeholder) and a check cell.
#
# **Exercise 1.** Pruning with a bitmask should cost exactly 4 bits per weight, the budget of
# INT4, mask included. Which sparsity must it reach? Give a number between 0 and 1.
#
# *Hint: kept values cost 16 bits each, the mask 1 bit per weight.*

# %% tags=["solution"]
answer_sparsity = 1 - (4 - 1) / 16

# %%
check_answer("Exercise 1", answer_sparsity, 13 / 16)
assert bitmask_bits_per_weight(answer_sparsity) == 4

# %% [markdown]
# **Exercise 2.** Quantization also produces zeros: every weight in the zero cell
# `(-s/2, s/2)` rounds to 0. What fraction of our tensor `w` becomes exactly zero when it is
# quantized to 3 bits at the MSE-optimal scale? Compute it with `quantize` and `mse_scale`.

# %% tags=["solution"]
answer_zero_fraction = np.mean(quantize(w, 3, mse_scale(w, 3)) == 0)

# %%
check_answer("Exercise 2", answer_zero_fraction,
             np.mean(np.abs(w) < mse_scale(w, 3) / 2), rel_tol=1e-3)
print(f"3-bit quantization sets {answer_zero_fraction:.1%} of the weights to zero")

# %% [markdown]
# ## Recap
# - Quantization: `Q(w) = s * clip(round(w/s), -2^(b-1), 2^(b-1)-1)`; the scale trades rounding
#   error against clipping error, and the MSE-optimal scale (`pvq.quantize.mse_scale`) beats both
#   the max-abs rule and a coarse grid search.
# - Magnitude pruning removes exactly `round(c * n)` weights; for a symmetric distribution the
#   cut is `F^-1(1/2 + c/2)`.
# - Equal compression over FP16 pairs b bits with sparsity `1 - b/16`; unstructured pruning also
#   stores its mask: one bit per weight as a bitmask (6.25 % of FP16), about 0.81 bit
#   entropy-coded at 75 % sparsity.
# - On normal weights, quantization's SNR is far higher at every budget.
#
# **Next:** notebook 2 computes these SNRs exactly for the normal distribution and shows why the
# gap is so large.
#
# *On Binder (2 GB of memory), shut this notebook's kernel down before you open the next one:
# Kernel > Shut Down Kernel.*
