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

# %% [raw]
# # ASSIGNMENT CONFIG
# # otter-grader: `make student` turns this master into the student edition (see the README)
# init_cell: true
# check_all_cell: false
# export_cell: false
# run_tests: false
# generate: false
# tests:
#   files: false
#   ok_format: false

# %% [markdown]
# # 1. Quantizers and pruners
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 45 minutes (with the exercises).
# **You need:** NumPy basics; no earlier notebook.
#
# ## Learning objectives
# By the end of this notebook you can
# 1. quantize a weight tensor to $b$ bits on the signed grid $-2^{b-1}, \dots, 2^{b-1}-1$ and
#    explain why the scale is chosen to minimise the mean squared error;
# 2. prune a tensor by magnitude to an exact ratio, and find the same cut from the distribution's
#    CDF, $\tau = F^{-1}(1/2 + c/2)$;
# 3. compare the two at *equal compression* ($b$ bits against sparsity $1 - b/16$ over FP16) and
#    count the bitmask that unstructured pruning needs on top;
# 4. measure both errors with one yardstick, the signal-to-noise ratio in dB.
#
# Every function used here lives in the course library `pvq`. You write the core of each
# yourself first, in five graded exercises: the grid, round-to-nearest, the scale search, the
# pruner, and one prediction. Each is followed at once by a check that runs your code on a tiny
# input and compares it with the library; it says "correct", or exactly what differs.

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from scipy import stats

from pvq.compression import (bitmask_bits_per_weight, equivalent_sparsity, mask_overhead,
                             storage_bytes)
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
# A $b$-bit signed integer holds the $2^b$ values $-2^{b-1}, \dots, 2^{b-1}-1$ (one more negative
# level than positive, as in two's complement). Quantization maps a weight to the nearest point
# of that grid stretched by a scale $s$, clipping what falls outside:
#
# $$Q(w) = s \cdot \mathrm{clip}\big(\mathrm{round}(w / s),\ -2^{b-1},\ 2^{b-1}-1\big).$$
#
# Only the integers and one scale per tensor are stored.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_1

# %% [markdown]
# **Exercise 1.** Write `my_grid(bits)`: the integers $-2^{b-1}, \dots, 2^{b-1}-1$ of the
# $b$-bit grid, in increasing order, as a NumPy array.
#
# *Hint: `np.arange` stops before its end.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_grid(bits: int) -> np.ndarray:
    """The b-bit signed integer grid -2^(b-1) .. 2^(b-1)-1."""
    # BEGIN SOLUTION
    lowest = -(2 ** (bits - 1))
    highest = 2 ** (bits - 1) - 1
    return np.arange(lowest, highest + 1)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_grid(my_grid):
    from pvq.exercises import check_function
    from pvq.quantize import quantization_grid
    check_function("Exercise 1", my_grid, quantization_grid, [(1,), (2,), (3,), (4,)])


test_grid(my_grid)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The library's grid for 4 bits:

# %%
print(quantization_grid(4))

# %% [raw]
# # BEGIN QUESTION
# name: exercise_2

# %% [markdown]
# **Exercise 2.** Write `my_quantize(w, bits, scale)`, the quantizer $Q(w)$ above: divide by
# the scale, round to the nearest integer, clip to the grid's ends, multiply by the scale.
#
# *Hint: `np.round` rounds a half to the even neighbour (0.5 to 0, 1.5 to 2), as hardware
# does; the check includes such ties. `np.clip` clips.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_quantize(w: np.ndarray, bits: int, scale: float) -> np.ndarray:
    """Round-to-nearest on the b-bit grid stretched by scale, clipping at its ends."""
    # BEGIN SOLUTION
    lowest, highest = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    codes = np.clip(np.round(w / scale), lowest, highest)
    return scale * codes
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_round_to_nearest(my_quantize):
    import numpy as np
    from pvq.exercises import check_function
    from pvq.quantize import quantize
    ties_and_tails = np.array([-2.3, -0.75, -0.25, 0.1, 0.25, 0.75, 1.2, 3.0])
    check_function("Exercise 2", my_quantize, quantize,
                   [(ties_and_tails, 2, 0.5), (ties_and_tails, 4, 0.5), (ties_and_tails, 3, 0.1)])


test_round_to_nearest(my_quantize)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The scale sets a trade-off. A large scale covers every weight (no clipping) but the levels are
# far apart (large rounding error); a small scale rounds finely but clips the tails.
# `mse_scale` finds the scale with the smallest mean squared error: it evaluates the error exactly,
# cell by cell, at 2,048 candidate scales and polishes the best. Compare it, at every bit-width,
# with two common shortcuts: the max-abs scale (no clipping) and the authors' published search,
# 100 clipping ranges $k\,(\max|w| + 0.5) / 100$.
#
# To compare them we need a yardstick for the error. The signal-to-noise ratio compares the
# energy of the weights with the energy of the error $w - \hat w$, in decibels (+10 dB = ten
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

# %% [raw]
# # BEGIN QUESTION
# name: exercise_3

# %% [markdown]
# **Exercise 3.** Search the scale yourself. Write `my_mse_scale(w, bits, candidates)`: for
# every candidate scale $s$, quantize `w` (with `quantize`, or your `my_quantize`) and measure
# the mean squared error $\frac{1}{n}\sum_i (w_i - Q_s(w_i))^2$; return the candidate with the
# smallest error. The check runs it on 64 weights with 400 candidates and compares the error at
# your scale with the error at the library's optimum, `mse_scale` (found by an exact search,
# cell by cell): a grid of 400 candidates comes within 1 % of it.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_mse_scale(w: np.ndarray, bits: int, candidates: np.ndarray) -> float:
    """The candidate scale whose b-bit quantization of w has the smallest mean squared error."""
    # BEGIN SOLUTION
    errors = []
    for s in candidates:
        errors.append(np.mean((w - quantize(w, bits, s)) ** 2))
    return float(candidates[int(np.argmin(errors))])
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_scale_search(my_mse_scale):
    import numpy as np
    from pvq.exercises import ExerciseNotAnswered, check_value
    from pvq.quantize import mse_scale, quantize
    w = np.random.default_rng(1).normal(0.0, 1.0, 64)
    candidates = np.linspace(0.01, 1.0, 400) * np.abs(w).max()
    for bits in (2, 3, 4):
        found = my_mse_scale(w, bits, candidates) if my_mse_scale else None
        if found is None or found is Ellipsis:
            raise ExerciseNotAnswered("Exercise 3: no answer yet: write my_mse_scale's body.")
        check_value("Exercise 3", f"whether your {bits}-bit scale {found:.4g} is a candidate",
                    bool(np.isin(found, candidates)), True)
        best = mse_scale(w, bits)
        check_value("Exercise 3", f"the MSE at your {bits}-bit scale {found:.4g} (the library's "
                    f"optimal scale is {best:.4g})", np.mean((w - quantize(w, bits, found)) ** 2),
                    np.mean((w - quantize(w, bits, best)) ** 2), rel_tol=0.01)
    print("Exercise 3: correct at 2, 3 and 4 bits")


test_scale_search(my_mse_scale)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

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
# Magnitude pruning keeps the largest weights and sets the rest to zero. To sparsity $c$, exactly
# $\mathrm{round}(c\,n)$ weights go (ties broken by position, as `torch.nn.utils.prune` would count them):

# %%
sparsity = equivalent_sparsity(bits)
w_pruned = magnitude_prune(w, sparsity)
zeros = int((w_pruned == 0).sum())
print(f"sparsity {sparsity}: {zeros} of {w.size} weights are zero")
assert zeros == pruned_count(w.size, sparsity) == round(sparsity * w.size)

# %% [raw]
# # BEGIN QUESTION
# name: exercise_4

# %% [markdown]
# **Exercise 4.** Write `my_prune(w, sparsity)`: a copy of `w` (any shape) in which the
# $\mathrm{round}(c\, n)$ entries of smallest magnitude are set to zero, $n$ the number of
# entries and $c$ the sparsity.
#
# *Hint: `np.argsort(np.abs(w), axis=None)` orders the flattened magnitudes; `w.flatten()` is a
# copy you may change; `reshape(w.shape)` restores the shape.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_prune(w: np.ndarray, sparsity: float) -> np.ndarray:
    """w with the round(sparsity * w.size) smallest magnitudes set to zero."""
    # BEGIN SOLUTION
    drop = round(sparsity * w.size)
    order = np.argsort(np.abs(w), axis=None, kind="stable")
    pruned = w.flatten()
    pruned[order[:drop]] = 0.0
    return pruned.reshape(w.shape)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_prune(my_prune):
    import numpy as np
    from pvq.exercises import check_function
    from pvq.prune import magnitude_prune
    eight = np.array([0.3, -0.1, 0.05, -0.7, 0.2, -0.02, 0.5, 0.15])
    check_function("Exercise 4", my_prune, magnitude_prune,
                   [(eight, 0.25), (eight, 0.5), (eight, 0.75), (eight.reshape(2, 4), 0.5)])


test_prune(my_prune)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# For a distribution symmetric about zero with CDF `F`, pruning a fraction `c` cuts at the
# magnitude $\tau$ with mass $c$ inside $(-\tau, \tau)$, that is $\tau = F^{-1}(1/2 + c/2)$. For our
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
# Both methods replace $w$ by $\hat w$; the SNR defined above measures how much signal each
# keeps.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_5

# %% [markdown]
# **Exercise 5.** *Predict, then run.* Quantization keeps 16 levels for every weight; pruning
# keeps a quarter of the weights exactly and loses the rest. At this budget (4 bits against
# 75 % sparsity), which keeps more of the signal of our tensor `w`? Set `predicted_winner` to
# `"quantization"` or `"pruning"` *before* you run the next cell, which measures both.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
predicted_winner = "quantization"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
snr_quant, snr_prune = snr_db(w, w_quant), snr_db(w, w_pruned)
print(f"{bits}-bit quantization: {snr_quant:.2f} dB | {sparsity:.0%} pruning: {snr_prune:.2f} dB")
assert snr_quant > snr_prune

# %% [raw]
# # BEGIN TESTS

# %%
def test_prediction(predicted_winner, w):
    from pvq.exercises import check_choice
    from pvq.metrics import snr_db
    from pvq.prune import magnitude_prune
    from pvq.quantize import mse_scale, quantize
    quantized = snr_db(w, quantize(w, 4, mse_scale(w, 4)))
    pruned = snr_db(w, magnitude_prune(w, 0.75))
    check_choice("Exercise 5", predicted_winner,
                 "quantization" if quantized > pruned else "pruning", ["quantization", "pruning"])


test_prediction(predicted_winner, w)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

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
# The paper compares both at the same storage relative to FP16: a b-bit tensor keeps $b/16$ of
# the bits, and so does pruning to sparsity $1 - b/16$ *if the positions of the kept weights were
# free*. They are not: an unstructured pruned tensor also says *which* weights it kept. A plain
# bitmask spends one bit per weight, $1/16$ of FP16 on top; the table below counts that.

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
# $1 - c$, can be entropy-coded in $H(c) = -c \log_2 c - (1 - c) \log_2 (1 - c)$ bits per weight.

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
# ## Recap
# - Quantization: $Q(w) = s \cdot \mathrm{clip}(\mathrm{round}(w/s), -2^{b-1}, 2^{b-1}-1)$; the
#   scale trades rounding error against clipping error, and the MSE-optimal scale
#   (`pvq.quantize.mse_scale`) beats both the max-abs rule and a coarse grid search.
# - Magnitude pruning removes exactly $\mathrm{round}(c\,n)$ weights; for a symmetric
#   distribution the cut is $\tau = F^{-1}(1/2 + c/2)$.
# - Equal compression over FP16 pairs $b$ bits with sparsity $1 - b/16$; unstructured pruning
#   also stores its mask: one bit per weight as a bitmask (6.25 % of FP16), about 0.81 bit
#   entropy-coded at 75 % sparsity.
# - On normal weights, quantization's SNR is far higher at every budget.
#
# **Next:** notebook 2 computes these SNRs exactly for the normal distribution and shows why the
# gap is so large.
#
# *On Binder (2 GB of memory), shut this notebook's kernel down before you open the next one:
# Kernel > Shut Down Kernel.*
#
# ## References
# - A. Kuzmin, M. Nagel, M. van Baalen, A. Behboodi, T. Blankevoort. *Pruning vs Quantization:
#   Which is Better?* NeurIPS 2023. [arXiv:2307.02973](https://arxiv.org/abs/2307.02973); the
#   authors' code:
#   [Qualcomm-AI-research/pruning-vs-quantization](https://github.com/Qualcomm-AI-research/pruning-vs-quantization).
# - M. Nagel, M. Fournarakis, R. A. Amjad, Y. Bondarenko, M. van Baalen, T. Blankevoort. *A
#   White Paper on Neural Network Quantization*, 2021 (the uniform grid, round-to-nearest and the
#   MSE range setting). [arXiv:2106.08295](https://arxiv.org/abs/2106.08295).
# - S. Han, J. Pool, J. Tran, W. J. Dally. *Learning both Weights and Connections for Efficient
#   Neural Networks*, NeurIPS 2015 (magnitude pruning).
#   [arXiv:1506.02626](https://arxiv.org/abs/1506.02626).
# - S. Han, H. Mao, W. J. Dally. *Deep Compression*, ICLR 2016 (storing pruned and quantized
#   weights). [arXiv:1510.00149](https://arxiv.org/abs/1510.00149).
# - PyTorch's pruning utilities, whose counting `pvq.prune` follows:
#   [`torch.nn.utils.prune`](https://pytorch.org/docs/stable/generated/torch.nn.utils.prune.l1_unstructured.html).
