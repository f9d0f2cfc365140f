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
# # 4. Per-layer bounds: the best any quantizer or pruner could do
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 45 minutes (the code runs in about a minute on a laptop CPU). **You
# need:** notebook 1 (the quantizer, the pruner, equal compression) and notebook 3 (why the
# weight distribution alone does not settle the question).
#
# ## Learning objectives
# By the end of this notebook you can
# 1. explain why comparing *one* quantization algorithm with *one* pruning algorithm says little
#    about the *methods*, and how an achievable error plus a lower bound brackets each method;
# 2. write a layer chunk's output error as a quadratic `E(w_hat) = (w_hat - w)^T G (w_hat - w)`
#    and state the quantization and the equal-compression pruning problem on it;
# 3. explain the lifting trick behind the semidefinite (SDP) lower bound for quantization, and
#    why branch and bound gives the *exact* optimum for pruning, each on a 2-D picture;
# 4. read a per-layer figure of SNR ranges for 2, 3 and 4 bits on convolutional, linear and
#    transformer layers, and say which method wins where and whether the ranges overlap.

# %%
import itertools
import math

import cvxpy as cp
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from ipywidgets import Dropdown

from pvq.bounds import (chunk_error, equal_compression_k, prune_branch_and_bound, prune_exact,
                        pruning_box, quant_candidates, quant_sdp_bound, quant_sdp_relaxation,
                        synthetic_chunk)
from pvq.exercises import check_answer
from pvq.layer_bounds import COURSE_LAYERS, layer_problem, sample_chunks, snr_ranges, sweep_layers
from pvq.metrics import kurtosis
from pvq.plotting import COLORS, use_course_style
from pvq.quantize import grid_limits, quantize
from pvq.widgets import figure_with_sliders

# %% [markdown]
# The problems below are tiny (33 x 33 matrices): one BLAS thread is faster than several that
# wait on each other, and makes every run give the same digits.

# %%
from threadpoolctl import threadpool_limits

threadpool_limits(1)
use_course_style()

# %% [markdown]
# ## Why bounds?
# Notebooks 2 and 3 compared round-to-nearest quantization with magnitude pruning, weight by
# weight. After training, though, what matters is a layer's *output*, and both methods have
# better algorithms than the naive ones: rounding some weights *down* can cancel the error of
# others (GPTQ, AdaRound), and pruned weights' loss can be absorbed by re-fitting the kept ones
# (OBS, SparseGPT). So "GPTQ beats SparseGPT on this layer" is a statement about two
# algorithms. The paper asks about the methods: what is the *smallest* output error that any
# b-bit grid, or any k-sparse weight vector, can reach on a layer? We cannot always compute it,
# but we can bracket it:
#
# - an **achievable** error (a good heuristic's), an upper bound on the best error;
# - a **lower bound** that no algorithm can beat (a relaxation, or an exact search).
#
# If quantization's achievable SNR is above pruning's best possible SNR, quantization wins for
# *every* pair of algorithms, present or future; if the two ranges overlap, the question stays
# open for that layer.
#
# ## One layer chunk as a quadratic
# A layer computes `Y = X W^T` (a convolution too, once its input patches are unfolded into the
# rows of `X`). Like the paper, we cut `W` into **chunks**: one output channel, at most 32
# consecutive inputs. With `X_c` the chunk's input columns and `G = X_c^T X_c`, replacing the
# chunk's weights `w` by `w_hat` changes the output by
#
# `E(w_hat) = ||X_c (w_hat - w)||^2 = (w_hat - w)^T G (w_hat - w)`,
#
# and `r = w^T G w` is the chunk's output energy. Over the chunks of a layer the paper reports
# `SNR = -10 log10(sum E / sum r)` in dB.
#
# - **Quantization** at b bits: `w_hat = s x` with integers `x` in `-2^(b-1) .. 2^(b-1)-1`,
#   `s` the chunk's MSE scale (`pvq.quantize.mse_scale`).
# - **Pruning** at equal compression: at most `k = round(n b / 16)` non-zeros (the storage of
#   b-bit weights in FP16 units, notebook 1), each kept weight free to move in a box: the paper's
#   box is twice the layer's weight range, `pvq.bounds.pruning_box`.
#
# Here is one chunk of the second convolution of the course's digits CNN:

# %%
W_conv2, X_conv2 = layer_problem("digits_cnn", "conv2")
chunk = sample_chunks(W_conv2, X_conv2, 1, seed=1)[0]
print(f"W {W_conv2.shape}, X {X_conv2.shape}: output channel {chunk.output}, inputs "
      f"{chunk.inputs.start}..{chunk.inputs.stop - 1}; G is {chunk.G.shape}")
print(f"4 bits: grid {grid_limits(4)}, pruning keeps k = {equal_compression_k(chunk.w.size, 4)} "
      f"of {chunk.w.size}; box {np.round(pruning_box(W_conv2), 3)}")

# %% [markdown]
# The two error formulas agree, as they must: the quadratic form with `G` is the output error.

# %%
w_rtn = quantize(chunk.w, 4, 0.05)
direct = float(np.sum((X_conv2[:, chunk.inputs] @ (w_rtn - chunk.w)) ** 2))
print(f"||X_c (w_hat - w)||^2 = {direct:.4f}, (w_hat - w)^T G (w_hat - w) = "
      f"{chunk_error(chunk.G, chunk.w, w_rtn):.4f}")
assert np.isclose(direct, chunk_error(chunk.G, chunk.w, w_rtn), rtol=1e-10)

# %% [markdown]
# ## Quantization: the grid, and the lifting trick
# A toy chunk with n = 2 shows the whole problem at once. The two inputs are strongly correlated
# (`G` has 0.9 off the diagonal), the grid has 2 bits (`x` in -2..1) and scale 1.

# %%
G_toy = np.array([[1.0, 0.9], [0.9, 1.0]])
w_toy, bits_toy, scale_toy = np.array([0.6, -0.45]), 2, 1.0
grid = np.array(list(itertools.product(range(-2, 2), repeat=2)), float)
grid_errors = np.array([chunk_error(G_toy, w_toy, scale_toy * x) for x in grid])
x_best = grid[grid_errors.argmin()]
candidates = quant_candidates(G_toy, w_toy, bits_toy, scale_toy)
print(f"round to nearest: x = {candidates['nearest'][0]}, E = {candidates['nearest'][1]:.4f}")
print(f"best of all 16 grid points: x = {x_best.astype(int)}, E = {grid_errors.min():.4f}")

# %% [markdown]
# Rounding each weight to its nearest level gives `(1, 0)`; the best grid point is `(1, -1)`,
# ten times better: rounding the second weight *away* from its nearest level cancels the first
# one's error along the direction the correlated inputs amplify. Finding the best grid point
# is an integer least-squares problem, NP-hard in general, and 32 weights at 4 bits have
# 16^32 grid points. So we want a **lower bound** instead.
#
# **The lifting trick** (Park & Boyd, used by the paper). Re-centre the grid at
# `c = floor(w / s)` (`x = c + z`). The error is a quadratic in `z`,
# `z^T P z + 2 q^T z + r_0` with `P = s^2 G`, so it is *linear* in the lifted matrix
# `Y = [z; 1][z; 1]^T`: `E = <C, Y>` with `C = [[P, q], [q^T, r_0]]`. The lifted integer points
# form a non-convex set; we replace it by a convex set that contains all of them: `Y` positive
# semidefinite with `Y_nn = 1`, plus linear inequalities every integer point satisfies, such as
# `Z_ii >= z_i` (because `z (z - 1) >= 0` for integers) and the grid's box. Minimising a linear
# function over a convex set is a semidefinite program (SDP), solved to global optimality; its
# optimum is at most every grid point's error, so it is a lower bound.

# %%
relaxation = quant_sdp_relaxation(G_toy, w_toy, bits_toy, scale_toy)
z_relaxed = relaxation.x - np.floor(w_toy / scale_toy)
Z_relaxed = np.diag(relaxation.covariance) + z_relaxed**2
print(f"SDP bound {relaxation.bound:.4f} <= best grid error {grid_errors.min():.4f}; "
      f"relaxed point x* = {np.round(relaxation.x, 3)}")
assert relaxation.bound <= grid_errors.min()

# %% [markdown]
# Left: the problem in weight space, the error's contours around `w / s`, the 16 grid points,
# round to nearest and the optimum. Right: what the SDP sees of coordinate 1, the plane of
# `(z_1, Z_11)`. Each integer lifts onto the parabola `Z = z^2`; positive semidefiniteness
# keeps `Z >= z^2` (above the parabola), the cuts add the secants through neighbouring integers
# (`(z - m)(z - m - 1) >= 0`), and the box caps the region with the chord between the grid's
# ends. The relaxed solution lies in this region (here on the cut `Z >= z`) but above the
# parabola: it is not a lifted integer, which is why its error can be below the best grid
# point's. Its height above the parabola, `Z_11 - z_1^2`, is a variance: the paper's
# randomized rounding samples grid points from a normal with this spread around `x*`.

# %%
def draw_quant_toy(ax):
    u, v = np.meshgrid(np.linspace(-2.5, 1.5, 201), np.linspace(-2.5, 1.5, 201))
    d = np.stack([u, v], -1) * scale_toy - w_toy
    ax.contour(u, v, np.einsum("...i,ij,...j", d, G_toy, d), levels=[0.05, 0.2, 0.7, 1.5, 3],
               colors=COLORS["data"], linewidths=0.8)
    ax.scatter(*grid.T, color="k", s=15, label="grid points")
    ax.scatter(*(w_toy / scale_toy), marker="+", s=90, color="k", label="w / s")
    ax.scatter(*candidates["nearest"][0], s=90, facecolors="none", edgecolors=COLORS["pruning"],
               label="round to nearest")
    ax.scatter(*x_best, marker="*", s=160, color=COLORS["both"], label="grid optimum")
    ax.scatter(*relaxation.x, marker="x", s=60, color=COLORS["quantization"], label="SDP x*")
    ax.set(xlabel="x_1 (grid units)", ylabel="x_2 (grid units)", aspect="equal")
    ax.legend(loc="lower left", fontsize=8)


# %%
def draw_lifting(ax, i=0):
    lowest, highest = np.array(grid_limits(bits_toy)) - np.floor(w_toy[i] / scale_toy)
    z = np.linspace(lowest, highest, 301)
    integers = np.arange(lowest, highest + 1)
    secants = [(2 * m + 1) * z - m * (m + 1) for m in integers[:-1]]
    floor_, ceiling = np.max([z**2, *secants], axis=0), (lowest + highest) * z - lowest * highest
    ax.fill_between(z, floor_, ceiling, color=COLORS["quantization"], alpha=0.2,
                    label="relaxation: PSD, cuts, box")
    ax.plot(z, z**2, color=COLORS["data"], label="Z = z^2")
    ax.scatter(integers, integers**2, color="k", s=15, label="lifted integers")
    ax.scatter(z_relaxed[i], Z_relaxed[i], marker="x", s=80, color=COLORS["quantization"],
               label="SDP solution", zorder=3)
    ax.vlines(z_relaxed[i], z_relaxed[i] ** 2, Z_relaxed[i], color=COLORS["quantization"],
              linestyles=":", lw=2, label="variance Z - z^2")


# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
draw_quant_toy(axes[0])
draw_lifting(axes[1])
axes[1].set(xlabel="z_1 (re-centred grid units)", ylabel="Z_11")
axes[1].legend(loc="upper center", fontsize=8)
plt.show()

# %% [markdown]
# *Takeaway: the relaxation trades the grid's hard "integer" for "somewhere in the convex hull
# of the lifted integers"; the SDP finds the best such point, and its error is a certified
# floor under every grid point.*
#
# The paper's relaxation leaves out the box (only `Z_ii >= z_i`); the library adds it by
# default. Both are lower bounds; the tighter one (larger) is more useful. `pvq.bounds` also
# certifies the solver's answer: the bound is recomputed from the solver's dual multipliers
# with exact eigenvalue checks, so an inaccurate solver can only weaken it, never make it wrong.

# %%
G_wide, w_wide = G_toy, np.array([1.4, -1.6])  # a chunk whose weights reach past the grid
loose = quant_sdp_bound(G_wide, w_wide, bits_toy, scale_toy, box=False)
tight = quant_sdp_bound(G_wide, w_wide, bits_toy, scale_toy)
best_wide = min(chunk_error(G_wide, w_wide, scale_toy * x) for x in grid)
print(f"paper's relaxation {loose:.4f} <= with the box {tight:.4f} <= optimum {best_wide:.4f}")
assert loose <= tight <= best_wide

# %% [markdown]
# ## Pruning: why branch and bound is exact
# Pruning picks a **support** (which k weights stay) and then the best values on it, a
# box-constrained least-squares fit. For a fixed support that fit is convex and easy; the hard
# part is the choice among `C(n, k)` supports (10.5 million for n = 32, k = 8).
#
# Take n = 2 and k = 1: the feasible set is the two axes, each cut to the box. Write the mask as
# `m_i` in {0, 1} with `lower m_i <= v_i <= upper m_i` and `m_1 + m_2 <= 1` (the paper's model).
# Letting `m` take any value in [0, 1] gives the **continuous relaxation**: its feasible set is
# the convex hull of the two segments (a diamond), so its minimum is a lower bound on the best
# pruned error. For a clear picture the toy's box is the weights' own range (factor 1).

# %%
def big_m_relaxation(w, G, lower, upper, k):
    """min E(v) with the mask relaxed to 0 <= m <= 1: (value, minimiser)."""
    v, m = cp.Variable(w.size), cp.Variable(w.size)
    hull = [lower * m <= v, v <= upper * m, m >= 0, m <= 1, cp.sum(m) <= k]
    problem = cp.Problem(cp.Minimize(cp.quad_form(v - w, G)), hull)
    problem.solve(solver="CLARABEL")
    return problem.value, v.value


# %%
w_prune = np.array([1.0, -0.7])
lower_toy, upper_toy = pruning_box(w_prune, factor=1.0)
root_value, root_v = big_m_relaxation(w_prune, G_toy, lower_toy, upper_toy, 1)
print(f"box [{lower_toy:.2f}, {upper_toy:.2f}]; relaxation minimum {root_value:.4f} at "
      f"v = {np.round(root_v, 3)}")

# %% [markdown]
# Branch and bound splits the problem in two: keep weight 1 (`m_2 = 0`) or keep weight 2
# (`m_1 = 0`). Each branch is a 1-D convex fit, solved exactly: weight 1 alone moves to
# `w_1 + G_12 w_2 / G_11`, clipped to the box, to absorb what weight 2 contributed.

# %%
leaves = {}
for keep, drop in ((0, 1), (1, 0)):
    v_leaf = np.zeros(2)
    refit = w_prune[keep] + G_toy[keep, drop] * w_prune[drop] / G_toy[keep, keep]
    v_leaf[keep] = np.clip(refit, lower_toy, upper_toy)
    leaves[keep] = (v_leaf, chunk_error(G_toy, w_prune, v_leaf))
    print(f"keep weight {keep + 1}: v = {np.round(v_leaf, 3)}, E = {leaves[keep][1]:.4f}")

# %%
w_exact, error_exact = prune_exact(G_toy, w_prune, 1, lower_toy, upper_toy)
print(f"prune_exact: v = {np.round(w_exact, 3)}, E = {error_exact:.4f}")
assert np.isclose(error_exact, min(error for _, error in leaves.values()), rtol=1e-9)
assert root_value <= error_exact + 1e-9

# %%
def draw_prune_toy(ax):
    u, t = np.meshgrid(np.linspace(-1.6, 2.2, 201), np.linspace(-1.6, 2.2, 201))
    d = np.stack([u, t], -1) - w_prune
    ax.contour(u, t, np.einsum("...i,ij,...j", d, G_toy, d), levels=[0.05, 0.2, 0.5, 1, 2],
               colors=COLORS["data"], linewidths=0.8)
    corners = np.array([[upper_toy, 0], [0, upper_toy], [lower_toy, 0], [0, lower_toy]])
    ax.fill(*corners.T, color=COLORS["pruning"], alpha=0.12, label="relaxation (convex hull)")
    ax.plot([lower_toy, upper_toy], [0, 0], color=COLORS["pruning"], lw=3, label="k = 1: feasible")
    ax.plot([0, 0], [lower_toy, upper_toy], color=COLORS["pruning"], lw=3)
    ax.scatter(*w_prune, marker="+", s=90, color="k", label="w")
    ax.scatter(*root_v, marker="x", s=60, color=COLORS["quantization"], label="relaxed minimum")
    for keep, (v_leaf, _) in leaves.items():
        ax.scatter(*v_leaf, marker="*" if keep == w_exact.nonzero()[0][0] else "o", s=120,
                   color=COLORS["both"], label=f"branch: keep w_{keep + 1}")


# %%
fig, ax = plt.subplots(figsize=(6, 5))
draw_prune_toy(ax)
ax.set(xlabel="v_1", ylabel="v_2", aspect="equal")
ax.legend(loc="upper right", fontsize=8)
plt.show()

# %% [markdown]
# *Takeaway: the relaxation's minimum lies inside the diamond, below every pruned point's
# error; the two branches cover the whole feasible set, so the better branch (the star) is the
# optimum.*
#
# With the paper's box (twice the range) the diamond grows until it contains `w` itself, and
# this relaxation's bound drops to 0: it proves nothing, so it could never discard a node.
# `pvq.bounds` therefore bounds its nodes with a stronger (perspective) relaxation of the same
# problem.

# %%
wide_value, _ = big_m_relaxation(w_prune, G_toy, *pruning_box(w_prune), 1)
print(f"paper's box {np.round(pruning_box(w_prune), 2)}: relaxation minimum {wide_value:.4f}")
assert wide_value < 1e-6

# %% [markdown]
# The same argument scales up, and it is why branch and bound is **exact**, not a heuristic:
#
# 1. branching partitions the supports (weight i is kept, or it is pruned), so no candidate is
#    ever lost;
# 2. every node has a lower bound valid for *all* supports below it (a convex relaxation, which
#    `pvq.bounds` certifies from its dual, like the SDP);
# 3. a node is discarded only when its bound is at least the best error found so far (the
#    incumbent, started from the heuristics), so it cannot hold anything better;
# 4. when no node is left, the incumbent is optimal, and the smallest open bound at the end is
#    a certificate: `lower_bound <= optimum <= error`.
#
# On the real 32-input chunk above at 4-bit compression (k = 8), the search looks at a tiny
# fraction of the supports and closes the gap:

# %%
lower_conv2, upper_conv2 = pruning_box(W_conv2)
solution = prune_branch_and_bound(chunk.G, chunk.w, 8, lower_conv2, upper_conv2)
print(f"error {solution.error:.5f}, certified lower bound {solution.lower_bound:.5f}; relative "
      f"gap below 1e-6: {solution.gap < 1e-6}")
print(f"{solution.nodes} nodes and {solution.enumerated} small subtrees enumerated, "
      f"instead of {math.comb(32, 8):,} supports")
assert solution.gap < 1e-6

# %% [markdown]
# ## Per-layer SNR ranges
# Now the paper's experiment on real layers: the course's digits CNN (three convolutions and the
# linear head) and MLP, and pretrained transformer layers of all-MiniLM-L6-v2 (attention and MLP
# projections of blocks 1 and 5, with their inputs on real English text; see
# `pvq.zoo.real_layer`). For each layer and b = 2, 3, 4 (sparsity 87.5, 81.25, 75 %),
# `pvq.layer_bounds.sweep_layers` brackets every sampled chunk:
#
# - quantization: round to nearest; the best heuristic (GPTQ-style sequential rounding with
#   error feedback, the SDP's randomized rounding, each polished by greedy coordinate moves);
#   the certified SDP bound;
# - pruning: magnitude mask + refit; the best heuristic (OBS greedy, swap search); the exact
#   optimum by branch and bound, and its certified bound.
#
# **A subset.** A layer has up to tens of thousands of chunks (18,432 in a MiniLM MLP layer)
# and each costs about a third of a second per bit-width (the SDP plus the exact search), so this
# notebook brackets a seeded random sample of **2 chunks per layer** (`CHUNKS_PER_LAYER`) and
# reports the SNR over that sample. The SNRs of a layer are estimates from the sample; raise
# `CHUNKS_PER_LAYER` for tighter ones (how much they move is the subject of a section below).

# %%
CHUNKS_PER_LAYER = 2
chunk_table = sweep_layers(COURSE_LAYERS, bit_widths=(2, 3, 4), count=CHUNKS_PER_LAYER, seed=0)
ranges = snr_ranges(chunk_table)
SHORT = {"digits_cnn": "CNN", "digits_mlp": "MLP", "minilm": "MiniLM"}
ranges.insert(0, "name", ranges.model.map(SHORT) + " " + ranges.layer.str.replace("blocks.", "b"))
print(chunk_table.groupby("layer", sort=False)["chunks in layer"].first().to_string())
print(f"{len(chunk_table)} chunk problems; every pruned chunk certified optimal: "
      f"{bool(ranges.certified.all())}")

# %% [markdown]
# The table: every SNR over the sampled chunks of the layer, rounded to 0.01 dB (the solver's
# tolerance is far below that). "quant heuristic .. quant bound" is quantization's range,
# "prune exact .. prune bound" pruning's, a single point when branch and bound certified
# optimality.

# %%
shown = ranges.drop(columns=["model", "layer", "sparsity", "chunks", "certified"])
shown = shown.set_index(["name", "bits"])
shown = shown.rename(columns=lambda name: name.replace(" (dB)", ""))
with pd.option_context("display.width", 200, "display.max_columns", 20):
    print(shown.round(2).to_string())

# %%
def draw_ranges(axes):
    for ax, (bits, rows) in zip(axes, ranges.groupby("bits")):
        at = np.arange(len(rows))
        ax.vlines(at - 0.12, rows["quant heuristic (dB)"], rows["quant bound (dB)"], lw=5,
                  color=COLORS["quantization"], label="quantization [heuristic, bound]")
        ax.vlines(at + 0.12, rows["prune exact (dB)"], rows["prune bound (dB)"], lw=5,
                  color=COLORS["pruning"])
        ax.scatter(at + 0.12, rows["prune exact (dB)"], marker="D", s=25,
                   color=COLORS["pruning"], label="pruning: exact (certified)")
        ax.scatter(at - 0.12, rows["quant nearest (dB)"], marker="_", s=80, color="k",
                   label="naive: nearest / magnitude")
        ax.scatter(at + 0.12, rows["prune magnitude (dB)"], marker="_", s=80, color="k")
        ax.set_xticks(at, rows["name"], rotation=60, ha="right", fontsize=8)
        ax.set_title(f"{bits} bits vs {rows.sparsity.iloc[0]:.2%} sparsity")


# %%
fig, axes = plt.subplots(1, 3, figsize=(13, 4.8), sharey=True)
draw_ranges(axes)
axes[0].set_ylabel("output SNR over sampled chunks (dB)")
axes[0].legend(loc="upper left", fontsize=8)
plt.show()

# %% [markdown]
# *Takeaway: on every layer and bit-width the blue bar (what quantization achieves, up to what
# any grid could) lies above the red mark (the best any pruning can do); the gap narrows at
# 2 bits.*
#
# ## Which method wins where?
# A method wins a layer for sure when its *worst* end beats the other's *best*: quantization's
# heuristic SNR above pruning's certified bound, or pruning's exact SNR above quantization's
# SDP bound. Otherwise the ranges overlap and the bounds cannot tell.

# %%
ranges["margin (dB)"] = ranges["quant heuristic (dB)"] - ranges["prune bound (dB)"]
margins = ranges.pivot_table(index="name", columns="bits", values="margin (dB)", sort=False)
print(margins.round(1).to_string())
print(ranges.verdict.value_counts().to_string())
assert (margins.diff(axis=1).iloc[:, 1:] > 0).all().all()  # the lead grows with the bits

# %% [markdown]
# The margin is quantization's *guaranteed* lead in dB (positive: quantization wins even against
# the best possible pruning). The closest call:

# %%
closest = ranges.loc[ranges["margin (dB)"].idxmin()]
print(f"{closest['name']} at {closest.bits} bits: quantization at least "
      f"{closest['quant heuristic (dB)']:.2f} dB, pruning at most "
      f"{closest['prune bound (dB)']:.2f} dB")
assert (ranges.verdict == "quantization").all() and ranges["margin (dB)"].min() > 0

# %% [markdown]
# So on every sampled layer and bit-width the two ranges are disjoint and quantization wins,
# as in the paper's conclusion (its abstract: pruning can only be beneficial at very high
# compression ratios); here the lead shrinks as the bit-width drops, but stays positive at 2 bits.
# How much of each method's SNR was the *algorithm*? The gain of the best heuristic (or the
# exact search) over the naive one, in dB, smallest and largest over the layers:

# %%
quant_gain = ranges["quant heuristic (dB)"] - ranges["quant nearest (dB)"]
prune_gain = ranges["prune exact (dB)"] - ranges["prune magnitude (dB)"]
gains = pd.DataFrame({"bits": ranges.bits, "quantization: heuristic - nearest": quant_gain,
                      "pruning: exact - magnitude+refit": prune_gain})
print(gains.groupby("bits").agg(["min", "max"]).round(1).to_string())
assert quant_gain.max() > 6 and prune_gain.max() > 6

# %% [markdown]
# Better algorithms are worth several dB for both methods, on some layers more than the 6 dB
# of one extra bit: a comparison of naive algorithms measures the algorithms as much as the
# methods. The bounds remove that doubt from the verdict.
#
# Which heuristic found the best grid point, and the best support, how often (over all chunk
# problems)? No single algorithm wins everywhere, which is why the library tries several and
# keeps the best; the bounds tell us how far even the best of them might be from the optimum.

# %%
print(chunk_table.quant_winner.value_counts().to_string())
print(chunk_table.prune_winner.value_counts().to_string())

# %% [markdown]
# ## One layer up close
# The figure above squeezes nine layers into three panels. Pick one layer below to see its
# weights (notebook 3's question: how heavy are the tails?) next to all of its numbers: each
# method's range from the achieved SNR to the bound, and the naive algorithm under it, against
# the bit-width. Nothing is solved again; the menu only re-plots `ranges`.

# %%
LAYER_WEIGHTS = {name: layer_problem(model, layer).w
                 for name, model, layer in ranges[["name", "model", "layer"]].drop_duplicates()
                 .itertuples(index=False)}
BANDS = [("quantization", "quant heuristic (dB)", "quant bound (dB)", "quant nearest (dB)"),
         ("pruning", "prune exact (dB)", "prune bound (dB)", "prune magnitude (dB)")]


# %%
def draw_layer(layer):
    rows, w = ranges[ranges["name"] == layer], LAYER_WEIGHTS[layer]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.hist(w.ravel(), bins=101, log=True, color=COLORS["data"])
    left.set(xlabel="weight", ylabel="count (log scale)",
             title=f"{layer}: {w.size:,} weights, kurtosis {kurtosis(w):.1f}")
    for method, achieved, bound, naive in BANDS:
        right.fill_between(rows.bits, rows[achieved], rows[bound], color=COLORS[method],
                           alpha=0.35, lw=2, label=f"{method}: achieved .. bound")
        right.plot(rows.bits, rows[naive], "--o", color=COLORS[method], label=f"{method}: naive")
    right.set(xlabel="bits (sparsity 1 - b/16)", ylabel="output SNR (dB)", xticks=[2, 3, 4])
    right.legend(fontsize="x-small")
    plt.show()


# %%
panel = figure_with_sliders(draw_layer, layer=Dropdown(options=list(LAYER_WEIGHTS),
                                                       value="MLP fc2", description="layer"))

# %% [markdown]
# *Takeaway: on every layer the blue band lies above the red one and both climb with the bits;
# compare "MLP fc2", the closest call above, with "MiniLM b1.mlp.fc2", the heaviest tails.*
#
# ## How much do two chunks tell?
# Every layer SNR above is an estimate from 2 of the layer's hundreds or thousands of chunks.
# How stable is it? Bracket the two layers just compared again, at 2 bits, on 16 chunks each
# (about ten seconds):

# %%
resampled = snr_ranges(sweep_layers([("digits_mlp", "fc2"), ("minilm", "blocks.1.mlp.fc2")],
                                    bit_widths=(2,), count=16, seed=0))
resampled["lead (dB)"] = resampled["quant heuristic (dB)"] - resampled["prune bound (dB)"]
resampled["kurtosis"] = [kurtosis(layer_problem(model, layer).w)
                         for model, layer in zip(resampled.model, resampled.layer)]
print(resampled[["layer", "kurtosis", "chunks", "lead (dB)", "verdict"]].round(1)
      .to_string(index=False))
leads = resampled.set_index("layer")["lead (dB)"]
assert leads["blocks.1.mlp.fc2"] < leads["fc2"] and (resampled.verdict == "quantization").all()

# %% [markdown]
# With 16 chunks the order flips: the heavy-tailed MiniLM layer (kurtosis near 140) becomes the
# closer call, as notebook 3's theory leads one to expect, and the MLP's lead grows by several
# dB. A layer SNR estimated from a few chunks can move by several dB from one sample to the
# next, most for heavy tails, where a few chunks hold the outliers; the verdict did not move.
# `scripts/bench_layer_verdicts.py` brackets all nine layers on 16 chunks each (its table is in
# BENCHMARKS.md): quantization wins all 27 layer and bit-width pairs there as well.

# %% [markdown]
# ## Solve times (from the benchmark)
# The full timing run lives in `scripts/bench_bounds.py` (run by `make benchmark`, reported in
# BENCHMARKS.md); this notebook times nothing, so that its outputs stay reproducible.
# **Quoted, not re-measured:** the recorded output of a full run of `scripts/bench_bounds.py`
# (2026-11-23, on the course's build machine: 2 CPU cores, nothing else running; BENCHMARKS.md).
# Wall time per chunk in seconds; SDP: the certified quantization bound at b = 4; B&B:
# `prune_branch_and_bound` including its heuristic incumbent; SCIP: the paper's big-M MIQP
# through PySCIPOpt, stopped at 60 s; brute force: every support of size k.
#
# *Growth with n* (synthetic correlated chunks, `pvq.bounds.synthetic_chunk`, k = round(n/4),
# mean over 5 seeds; SCIP on the first seed):
#
# | n | k | supports C(n, k) | SDP (s) | B&B mean (s) | B&B max (s) | B&B nodes | SCIP (s) | brute force (s) |
# |---:|---:|---:|---:|---:|---:|---:|---:|---:|
# | 8 | 2 | 28 | 0.05 | 0.002 | 0.003 | 1 | 0.21 | 0.001 |
# | 12 | 3 | 220 | 0.02 | 0.002 | 0.003 | 1 | 0.48 | 0.001 |
# | 16 | 4 | 1,820 | 0.04 | 0.009 | 0.011 | 9 | 0.65 | 0.002 |
# | 20 | 5 | 15,504 | 0.06 | 0.014 | 0.025 | 12 | 1.70 | 0.030 |
# | 24 | 6 | 134,596 | 0.10 | 0.030 | 0.055 | 23 | 4.61 | 0.306 |
# | 28 | 7 | 1,184,040 | 0.16 | 0.045 | 0.061 | 26 | 16.97 | 2.802 |
# | 32 | 8 | 10,518,300 | 0.26 | 0.245 | 0.630 | 157 | > 60 (limit) | - |
#
# *Real layers* (32-input chunks, b = 4, k = 8, 8 random chunks per layer; SCIP on the first):
#
# | layer | chunks | SDP mean (s) | B&B mean (s) | B&B max (s) | B&B nodes | SCIP (s) |
# |---|---:|---:|---:|---:|---:|---:|
# | digits_cnn conv2 | 8 of 128 | 0.25 | 0.148 | 0.461 | 94 | > 60 |
# | digits_cnn conv3 | 8 of 576 | 0.25 | 0.129 | 0.341 | 75 | 50.4 |
# | digits_mlp fc2 | 8 of 2048 | 0.33 | 0.064 | 0.122 | 34 | 9.8 |
# | minilm blocks.1.attn.query | 8 of 4608 | 0.22 | 0.055 | 0.098 | 32 | 33.4 |
# | minilm blocks.5.mlp.fc1 | 8 of 18432 | 0.23 | 0.070 | 0.112 | 39 | 57.2 |
# | minilm blocks.5.mlp.fc2 | 8 of 18432 | 0.25 | 0.046 | 0.083 | 24 | 44.1 |
#
# From n = 8 to n = 32 the supports grow from 28 to 10.5 million: brute force needs about 3 s at
# n = 28 (and is not attempted at 32), SCIP needs 17 s at n = 28 and hits its 60 s limit at 32,
# while branch and bound certified every chunk within 0.7 s. On the real layers SCIP took from
# 10 s to over its limit per chunk; branch and bound under half a second. The SDP bound costs
# about a quarter of a second per chunk, on the real layers a few times the exact search.

# %% [markdown]
# ## Exercises
# **Exercise 1.** A 32-input chunk is pruned at the storage of 3-bit weights. How many weights
# may it keep? (Notebook 1: sparsity `1 - b/16`.)

# %% tags=["solution"]
answer_k_3bit = round(32 * 3 / 16)

# %%
check_answer("Exercise 1", answer_k_3bit, equal_compression_k(32, 3))

# %% [markdown]
# **Exercise 2.** Brute-force a toy n = 3 pruning problem with k = 2 and check it against
# `prune_exact`. `support_error` (below) fits the kept weights by box-constrained least
# squares (scipy's `lsq_linear` on a square root `R` of `G`, `R^T R = G`) and returns the error.
# Find the smallest error over all supports of size 2.

# %%
from scipy.optimize import lsq_linear

G3, w3 = synthetic_chunk(3, seed=4)
lower3, upper3 = pruning_box(w3)
R3 = np.linalg.cholesky(G3).T


def support_error(support):
    fit = lsq_linear(R3[:, support], R3 @ w3, bounds=(lower3, upper3))
    return float(np.sum((R3[:, support] @ fit.x - R3 @ w3) ** 2))


# %% tags=["solution"]
answer_brute = min(support_error(list(s)) for s in itertools.combinations(range(3), 2))

# %%
check_answer("Exercise 2", answer_brute, prune_exact(G3, w3, 2, lower3, upper3)[1], rel_tol=1e-6)

# %% [markdown]
# **Exercise 3.** From `chunk_table` (one row per sampled chunk and bit-width, with columns
# `quant_bound` and `energy`), compute with the paper's formula the SNR that the SDP bound
# allows for the MiniLM layer `blocks.5.mlp.fc1` at 2 bits (its rows are `rows_fc1`).

# %%
rows_fc1 = chunk_table.query("layer == 'blocks.5.mlp.fc1' and bits == 2")

# %% tags=["solution"]
answer_bound_snr = -10 * np.log10(rows_fc1.quant_bound.sum() / rows_fc1.energy.sum())

# %%
expected = ranges.set_index(["layer", "bits"]).loc[("blocks.5.mlp.fc1", 2), "quant bound (dB)"]
check_answer("Exercise 3", answer_bound_snr, expected, rel_tol=1e-9)

# %% [markdown]
# ## Recap
# - Comparing one quantizer with one pruner compares algorithms; bracketing each method between
#   an achievable error and a lower bound compares the methods themselves.
# - A chunk's output error is the quadratic `(w_hat - w)^T G (w_hat - w)`, `G = X_c^T X_c`;
#   the layer SNR is `-10 log10(sum E / sum r)`.
# - Quantization's lower bound lifts `z` to `Y = [z; 1][z; 1]^T`, where the error is linear,
#   and relaxes the lifted integer points to a convex set: an SDP, certified from its duals.
# - Pruning's optimum comes from branch and bound: branches partition the supports, certified
#   relaxations bound each node, so discarding a node never loses the optimum.
# - On our sample of digits and MiniLM layers, quantization's achieved SNR beats pruning's best
#   possible SNR at 2, 3 and 4 bits, with the smallest lead at 2 bits; better algorithms gain
#   several dB over the naive ones for both methods.
# - A layer SNR from a few chunks is an estimate: with 16 chunks the closest call moved from the
#   MLP to the heavy-tailed MiniLM layer, while the verdict stayed the same.
#
# **Next:** notebook 5 fine-tunes whole networks (QAT against gradual pruning) and checks
# whether training changes the picture.
#
# *On Binder (2 GB of memory), shut this notebook's kernel down before you open the next one:
# Kernel > Shut Down Kernel.*
