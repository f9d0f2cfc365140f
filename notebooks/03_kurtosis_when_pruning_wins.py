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
# # 3. Kurtosis: when does pruning win?
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 60 minutes (with the exercises).
# **You need:** notebooks 1 (the two operations) and 2 (their
# exact SNR on the normal distribution).
#
# ## Learning objectives
# By the end of this notebook you can
# 1. say what kurtosis measures and compute it for samples and for distributions;
# 2. use the truncated Student-t family as a dial from light to outlier-heavy tails, and say what
#    choosing its degrees of freedom does;
# 3. read the map of SNR(quantization) - SNR(pruning) over kurtosis and bit-width, name the
#    crossover kurtosis above which pruning wins at each bit-width, and explain the mechanism;
# 4. check the theory against the paper's measurements on 2,704 real weight tensors of 45
#    torchvision models, knowing which rows of that table to trust and why (FP16 arithmetic),
#    and against weights of networks used in this course;
# 5. write the sample kurtosis, a cell's error from partial moments, the crossover by root
#    finding and the model zoo's win rate yourself (four graded exercises and one prediction).

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
import torch
from ipywidgets import FloatLogSlider, IntSlider
from scipy import integrate, optimize, stats

from pvq.compression import equivalent_sparsity
from pvq.data import model_zoo_sqnr
from pvq.distributions import kurtosis_of, limit_for_kurtosis, truncated_student_t
from pvq.heavy_tails import (authors_snr_db, clean_zoo, crossover_kurtosis, quirk_counts,
                             snr_gap_db, snr_gap_map, tensor_snr_table, win_rates,
                             win_rates_by_bits, zoo_rms)
from pvq.layers import compressible_layers
from pvq.metrics import kurtosis, snr_db
from pvq.plotting import COLORS, error_density, use_course_style
from pvq.prune import magnitude_prune, magnitude_threshold
from pvq.quantize import mse_scale, quantization_grid, quantize
from pvq.theory import optimal_scale, pruning_snr_db, quantization_mse, quantization_snr_db
from pvq.widgets import figure_with_sliders
from pvq.zoo import pretrained, real_layer, real_layer_names

use_course_style()
rng = np.random.default_rng(seed=0)

# %% [markdown]
# ## What kurtosis measures
# Kurtosis is the fourth standardised moment, $E[(W - \mu)^4] / \sigma^4$. It does not see the
# width of a distribution (that is the variance), only how much of its variance comes from rare,
# large values: the tails. The normal has kurtosis 3, a uniform 1.8, a Laplace 6. Many libraries,
# scipy and the paper's data among them, report the *excess* kurtosis, kurtosis - 3 (normal = 0);
# this course says "kurtosis" for the plain (Pearson) value and "excess" when it means the other.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_1

# %% [markdown]
# **Exercise 1.** Write `my_kurtosis(w)`: the sample kurtosis with the sample mean $\bar w$
# and the biased (divide by $n$) moments,
#
# $$\hat\kappa = \frac{\frac1n \sum_i (w_i - \bar w)^4}{\big(\frac1n \sum_i (w_i - \bar w)^2\big)^2}.$$
#
# The check compares it with `pvq.metrics.kurtosis` on four tiny arrays.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_kurtosis(w: np.ndarray) -> float:
    """Pearson kurtosis of a sample: mean((w - mean)^4) / mean((w - mean)^2)^2."""
    # BEGIN SOLUTION
    centred = w - np.mean(w)
    variance = np.mean(centred**2)
    return float(np.mean(centred**4) / variance**2)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_kurtosis(my_kurtosis):
    import numpy as np
    from pvq.exercises import check_function
    from pvq.metrics import kurtosis
    samples = [np.array([1.0, 2.0, 3.0, 4.0, 10.0]), np.array([-1.0, 1.0, -1.0, 1.0]),
               np.array([0.0, 0.0, 0.0, 0.0, 5.0]), np.array([[0.5, -2.0], [3.0, 0.25]])]
    check_function("Exercise 1", my_kurtosis, kurtosis, [(s,) for s in samples], rel_tol=1e-9)


test_kurtosis(my_kurtosis)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The library's `pvq.metrics.kurtosis` on a million samples of three distributions:

# %%
samples = {"uniform": rng.uniform(-1, 1, 10**6), "normal": rng.standard_normal(10**6),
           "Laplace": rng.laplace(size=10**6)}
exact = {"uniform": 1.8, "normal": 3.0, "Laplace": 6.0}
for name, sample in samples.items():
    print(f"{name:8s} sample kurtosis {kurtosis(sample):.3f}  exact {exact[name]}")
    assert abs(kurtosis(sample) - exact[name]) < 0.05

# %% [markdown]
# ## A dial for heavy tails: the truncated Student-t
# A Student-t with $\nu$ (`df`) degrees of freedom has power-law tails; with $\nu = 2$ even its variance
# is infinite. Cutting it at $\pm$`limit` (and renormalising) makes every moment finite, and the
# cut becomes a dial: a tight cut is almost uniform (kurtosis near 1.8), a wide cut keeps rare
# huge outliers (kurtosis as large as we like). `limit_for_kurtosis` turns the dial to a target
# kurtosis. The paper uses a truncated Student-t for its heavy-tail analysis.

# %%
targets = [2.0, 3.0, 10.0, 50.0]
family = {k: truncated_student_t(2, limit_for_kurtosis(k)) for k in targets}
for k, dist in family.items():
    print(f"kurtosis {kurtosis_of(dist):6.2f}: limit {dist.args[1]:8.3f}, std {dist.std():.3f}")

# %%
fig, ax = plt.subplots()
for k, dist in family.items():
    x = np.linspace(-8, 8, 2001) * dist.std()
    ax.semilogy(x / dist.std(), dist.pdf(x) * dist.std(), label=f"kurtosis {k:g}")
ax.semilogy(x / dist.std(), stats.norm.pdf(x / dist.std()), "k--", label="normal")
ax.set_xlabel("weight value (units of its standard deviation)")
ax.set_ylabel("density (log scale)")
ax.set_ylim(1e-6, 2)
ax.legend()
plt.show()

# %% [markdown]
# *Takeaway: at equal variance, higher kurtosis means a sharper peak at zero and mass pushed
# out to rare, far outliers; kurtosis 3 in this family is close to, but not the same as, the
# normal.*
#
# **Why $\nu = 2$, and is it the paper's choice?** The kurtosis of the *untruncated* Student-t is
# $3 + 6/(\mathrm{df} - 4)$ for df > 4 and infinite for df <= 4. With df <= 4 the cut alone can
# therefore reach every kurtosis above 1.8, so one parameter (the limit) is the whole dial; with
# df > 4 the family stops at $3 + 6/(\mathrm{df}-4)$. The authors' repository does not settle
# the paper's df: it contains no Student-t code (its analytic-error module imports a `utils.grid`
# that is not in the repository). So $\nu = 2$ is this course's choice, and it matters. The
# crossover kurtosis (where pruning starts to win, computed below) for two heavy-tailed choices:

# %%
df_choice = pd.DataFrame({f"df = {df:g}": {b: crossover_kurtosis(b, df=df) for b in (2, 3, 4)}
                          for df in (2.0, 3.0)})
df_choice.index.name = "bits"
print(df_choice.round(1).to_string())
assert df_choice.loc[2, "df = 3"] > df_choice.loc[2, "df = 2"]
assert np.isinf(df_choice.loc[4, "df = 3"])

# %% [markdown]
# With $\nu = 3$ the tail falls faster, the same kurtosis needs a wider cut, and pruning never wins
# at 4 bits below kurtosis 10,000 (`inf`: no root in the search range). The map below is for
# $\nu = 2$, the heaviest tail of the two, which is the case most favourable to pruning.
#
# A sanity check: with very many degrees of freedom and a very wide cut, the family *is* the
# normal, and `pvq.theory` must give notebook 2's numbers for it.

# %%
almost_normal = truncated_student_t(1e6, 40.0)
for b in (2, 4, 8):
    ours = quantization_snr_db(almost_normal, b), pruning_snr_db(almost_normal, 1 - b / 16)
    normal = quantization_snr_db(stats.norm(), b), pruning_snr_db(stats.norm(), 1 - b / 16)
    print(f"{b} bits: family {ours[0]:.3f} / {ours[1]:.3f} dB, normal {normal[0]:.3f} / "
          f"{normal[1]:.3f} dB")
    assert np.allclose(ours, normal, atol=0.01)

# %% [markdown]
# ## From the normal's closed forms to any distribution
# Notebook 2 summed closed-form cell integrals of the normal. The same step works for any
# density $p$: expand $(x - c)^2 = x^2 - 2cx + c^2$ and a cell needs only three *partial
# moments*, $M_k = \int_a^b x^k p(x)\,dx$ for k = 0, 1, 2:
#
# $$\int_a^b (x - c)^2 p(x)\,dx = M_2 - 2c\,M_1 + c^2 M_0 .$$
#
# For the normal the $M_k$ are the $\Phi$ and $\varphi$ terms of notebook 2. For the Student-t
# the indefinite integrals $\int_0^x t^k\, t_{\mathrm{df}}(t)\,dt$ have closed forms too, which
# `pvq.distributions` supplies (divided by the truncation's mass). Any other scipy distribution
# is integrated cell by cell numerically (adaptive Gauss-Legendre in `pvq._quadrature`). A check
# that shares no code with either: scipy's `quad`, cell by cell, for kurtosis 10 at 3 bits and for
# a Laplace.

# %%
def mse_by_quad(dist, bits: int, scale: float) -> float:
    """Sum over the grid's cells of int (x - q s)^2 p(x) dx, each cell by scipy's quad."""
    levels = quantization_grid(bits) * scale
    low, high = dist.support()
    edges = np.concatenate([[low], (levels[:-1] + levels[1:]) / 2, [high]])
    return sum(integrate.quad(lambda x, c=c: (x - c) ** 2 * dist.pdf(x), a, b, limit=200)[0]
               for a, b, c in zip(edges[:-1], edges[1:], levels))


for name, dist in {"Student-t, kurtosis 10": family[10.0], "Laplace": stats.laplace()}.items():
    scale = optimal_scale(dist, 3)
    ours, by_quad = quantization_mse(dist, 3, scale), mse_by_quad(dist, 3, scale)
    print(f"{name}: library {ours:.10f}, quad {by_quad:.10f}")
    assert abs(ours - by_quad) < 1e-8 * by_quad

# %% [raw]
# # BEGIN QUESTION
# name: exercise_2

# %% [markdown]
# **Exercise 2.** Write `my_cell_error(dist, a, b, c)` from the partial moments: compute
# $M_0, M_1, M_2$ over $[a, b]$ with `integrate.quad` (for instance
# `integrate.quad(lambda x: x * dist.pdf(x), a, b)[0]` for $M_1$), then combine them as
# $M_2 - 2c\,M_1 + c^2 M_0$. The check compares it with `pvq.theory.cell_error` on cells of a
# Laplace and of the kurtosis-10 member of the family.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_cell_error(dist, a: float, b: float, c: float) -> float:
    """int_a^b (x - c)^2 p(x) dx = M2 - 2 c M1 + c^2 M0, the M_k by quadrature."""
    # BEGIN SOLUTION
    m0 = integrate.quad(dist.pdf, a, b)[0]
    m1 = integrate.quad(lambda x: x * dist.pdf(x), a, b)[0]
    m2 = integrate.quad(lambda x: x * x * dist.pdf(x), a, b)[0]
    return m2 - 2 * c * m1 + c**2 * m0
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_partial_moments(my_cell_error, family):
    from scipy import stats
    from pvq.exercises import check_function
    from pvq.theory import cell_error
    laplace = stats.laplace(scale=0.7)
    cells = [(laplace, -0.3, 0.9, 0.2), (laplace, 1.0, 3.0, 2.0),
             (family[10.0], -0.5, 0.5, 0.0), (family[10.0], 0.8, 2.4, 1.6)]
    check_function("Exercise 2", my_cell_error, cell_error, cells, rel_tol=1e-7)


test_partial_moments(my_cell_error, family)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION


# %% [markdown]
# ## The map: where does pruning win?
# For every kurtosis and bit-width we compute the exact SNR of $b$-bit quantization (at its
# MSE-optimal scale) and of pruning at the equal-compression sparsity $1 - b/16$, and plot the
# difference. Positive (blue): quantization wins; negative (red): pruning wins.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_3

# %% [markdown]
# **Exercise 3.** *Predict, then run.* At 2 bits (against 87.5 % sparsity), from which
# kurtosis on does pruning win for this family? Set `predicted_crossover` to one of
# `"below 3"` (already for normal-like tails), `"3 to 30"`, `"30 to 300"` or `"never"` before
# you run the two cells below it, which compute the map and the crossovers.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
predicted_crossover = "3 to 30"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
kurtoses = np.geomspace(2.0, 1000.0, 24)
bit_widths = range(2, 9)
gap = snr_gap_map(kurtoses, bit_widths)
crossovers = pd.Series({b: crossover_kurtosis(b) for b in bit_widths}, name="crossover kurtosis")
crossovers.index.name = "bits"

# %%
fig, ax = plt.subplots()
mesh = ax.pcolormesh(list(bit_widths), kurtoses, gap.to_numpy(), cmap="RdBu",
                     vmin=-30, vmax=30, shading="nearest")
ax.contour(list(bit_widths), kurtoses, gap.to_numpy(), levels=[0.0], colors="k")
ax.plot(crossovers.index, crossovers, "ko", ms=4)
ax.set_yscale("log")
ax.set_title("black line: gap = 0; dots: the crossover kurtosis printed below", fontsize="small")
ax.set_xlabel("bits (pruning at sparsity 1 - b/16)")
ax.set_ylabel("kurtosis (Pearson)")
fig.colorbar(mesh, label="SNR(quantization) - SNR(pruning) (dB)")
plt.show()

# %% [raw]
# # BEGIN TESTS

# %%
def test_predicted_crossover(predicted_crossover):
    from pvq.exercises import check_choice
    from pvq.heavy_tails import crossover_kurtosis
    crossover = crossover_kurtosis(2)
    bands = {"below 3": (0, 3), "3 to 30": (3, 30), "30 to 300": (30, 300)}
    truth = next((band for band, (low, high) in bands.items() if low <= crossover < high),
                 "never")
    check_choice("Exercise 3", predicted_crossover, truth, [*bands, "never"])


test_predicted_crossover(predicted_crossover)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION


# %% [markdown]
# *Takeaway: at every bit-width there is a kurtosis above which pruning wins (red, above the
# black zero contour); that crossover rises steeply with the bit-width.*
#
# The crossover at each bit-width, the root of the gap:

# %%
print(crossovers.round(1).to_string())
assert crossovers.is_monotonic_increasing and crossovers[2] > 3.0
assert 8.5 < crossovers[2] < 9.5 and 360 < crossovers[8] < 380

# %% [markdown]
# At 2 bits a tensor with kurtosis 9 (a moderately heavy tail) is already better pruned; at 8
# bits it takes a kurtosis of about 371. Pruning's region is not a corner: it is everything
# above this curve, at every bit-width; the curve just climbs out of the range of most real
# tensors as the bits grow.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_4

# %% [markdown]
# **Exercise 4.** Find the crossover yourself. Write `my_crossover(bits)`: the kurtosis where
# the gap `snr_gap_db(kurtosis, bits)` (quantization minus pruning, in dB, for the family with
# $\nu = 2$) crosses zero, by `scipy.optimize.brentq` between kurtosis 2 and 1000 (the gap is
# positive at one end and negative at the other), with a relative tolerance `rtol` of `1e-8`.
# The check compares it with `pvq.heavy_tails.crossover_kurtosis` at 2 and 3 bits.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_crossover(bits: int) -> float:
    """The kurtosis at which quantization's and pruning's SNR are equal at this bit-width."""
    # BEGIN SOLUTION
    def gap_db(kurtosis: float) -> float:
        return snr_gap_db(kurtosis, bits)
    return float(optimize.brentq(gap_db, 2.0, 1000.0, rtol=1e-8))
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_crossover(my_crossover):
    from pvq.exercises import check_function
    from pvq.heavy_tails import crossover_kurtosis
    check_function("Exercise 4", my_crossover, crossover_kurtosis, [(2,), (3,)], rel_tol=1e-5)


test_crossover(my_crossover)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION
#
#
# ## The mechanism
# Why does the gap fall with kurtosis? Look at the density, the 3-bit grid at its optimal scale
# and the 81.25 % pruning band for kurtosis 3, 10 and 100 (top), and at each method's squared
# error weighted by the density (bottom: the area under each curve is its MSE).

# %%
mechanism = [3.0, 10.0, 100.0]
fig, axes = plt.subplots(2, 3, figsize=(12, 5), sharex="col")
for column, k in zip(axes.T, mechanism):
    dist = truncated_student_t(2, limit_for_kurtosis(k))
    error_density(column, dist, 3, optimal_scale(dist, 3), equivalent_sparsity(3),
                  x=np.linspace(-4, 4, 2001) * dist.std())
    column[0].set_title(f"kurtosis {k:g}: quantization {quantization_snr_db(dist, 3):.1f} dB, "
                        f"pruning {pruning_snr_db(dist, equivalent_sparsity(3)):.1f} dB",
                        fontsize="small")
    column[1].legend(loc="upper left", fontsize="small")  # the tails are empty, the centre is not
plt.show()

# %% [markdown]
# *Takeaway: as the kurtosis grows the grid must stretch to reach the outliers, its cells widen,
# and the quantization error grows over the whole bulk; pruning's band covers less and less of
# the spread.*
#
# In numbers: the grid's step, the pruning threshold $\tau$, and both in units of the standard
# deviation, at 3 bits:

# %%
rows = {}
for k in (3.0, 10.0, 100.0, 1000.0):
    dist = truncated_student_t(2, limit_for_kurtosis(k))
    step, std = optimal_scale(dist, 3), dist.std()
    tau = magnitude_threshold(dist, equivalent_sparsity(3))
    rows[k] = {"std": std, "step s": step, "tau": tau, "s / std": step / std,
               "tau / std": tau / std}
band = pd.DataFrame.from_dict(rows, orient="index").rename_axis("kurtosis")
print(f"3 bits against {equivalent_sparsity(3):.2%} sparsity")
print(band.round(2).to_string())
assert band["tau / std"].is_monotonic_decreasing and band["s / std"].is_monotonic_increasing
assert band.loc[10.0:, "tau"].between(1.93, 1.98).all()

# %% [markdown]
# Two readings of "the band shrinks". In units of the standard deviation it does: $\tau / \sigma$
# falls from 1.34 at kurtosis 3 to 0.62 at 1000, so pruning zeroes an ever narrower core. On an
# absolute axis (as in the widget below, where the Student-t's scale is fixed) the threshold
# hardly moves, from 1.93 to 1.97 between kurtosis 10 and 1000, while the grid's step grows
# fourfold: the change is on quantization's side.
#
# Move the kurtosis slider to see the density, the grid and the pruning band change together,
# with both SNRs. Executed non-interactively, the cell draws the default (kurtosis 10, 3 bits).

# %%
def draw(kurtosis: float = 10.0, bits: int = 3) -> None:
    """Density, grid and pruning band, and each method's squared error, for one member."""
    dist = truncated_student_t(2, limit_for_kurtosis(kurtosis))
    sparsity = equivalent_sparsity(bits)
    fig, axes = plt.subplots(2, 1, sharex=True, figsize=(7.0, 5.0))
    error_density(axes, dist, bits, optimal_scale(dist, bits), sparsity)
    axes[0].set_title(f"kurtosis {kurtosis:.3g}: {bits}-bit quantization "
                      f"{quantization_snr_db(dist, bits):.2f} dB | {sparsity:.2%} pruning "
                      f"{pruning_snr_db(dist, sparsity):.2f} dB")
    plt.show()


panel = figure_with_sliders(
    draw, kurtosis=FloatLogSlider(value=10.0, base=10, min=0.3, max=3, description="kurtosis"),
    bits=IntSlider(value=3, min=2, max=8, description="bits"))

# %% [markdown]
# ## The model zoo: 2,704 real tensors
# The paper measured both SNRs on every Conv2d and Linear weight of 45 torchvision models, for
# b = 2..8 at equal compression. The table ships with this course (`pvq.data.model_zoo_sqnr`,
# with its provenance notice). Its columns `quant_sqnr_db` and `pruning_sqnr_db` are the SQNR,
# the paper's name for the SNR (signal-to-quantization-noise ratio; the table uses it for both
# methods). Its `sample_kurtosis` is the *excess* kurtosis.

# %%
zoo = model_zoo_sqnr()
print(f"{zoo.model.nunique()} models, {len(zoo[zoo.bits == 2])} tensors per bit-width")
print(zoo[["model", "layer", "bits", "sample_kurtosis", "quant_sqnr_db", "pruning_sqnr_db"]]
      .iloc[1:4].round(2).to_string())

# %% [markdown]
# ### The table's quirks, handled once
# The authors' code converted every weight to FP16 and computed in FP16 (their
# `quant_pruning_weights_sqnr.py` and `utils/moment_estimators.py`). Three kinds of rows come out
# as artefacts of that arithmetic rather than measurements:
# - **infinite pruning SNR**: every pruned weight is zero or so small that its square rounds to
#   zero in FP16 (the smallest FP16 number is about 6e-8, the square of 2.4e-4): the pruning
#   error is 0;
# - **excess kurtosis exactly -3**: small weights whose fourth powers underflow to 0 in FP16, a
#   kurtosis of 0, impossible for real data;
# - **infinite excess kurtosis**: large weights whose fourth powers overflow FP16's largest
#   number (65,504, the fourth power of 16).
#
# `pvq.heavy_tails.clean_zoo` drops every row with any of them; everything below uses it. How
# many rows each quirk flags (a row can have several), per bit-width:

# %%
quirks = quirk_counts(zoo)
print(quirks.to_string())
print(f"pruned at 2 bits {equivalent_sparsity(2):.1%}, at 8 bits {equivalent_sparsity(8):.1%}")
assert (quirks["excess kurtosis exactly -3"] == 139).all()
assert (quirks["infinite excess kurtosis"] == 12).all() and quirks["any quirk"].sum() == 1326
clean = clean_zoo(zoo)

# %% [markdown]
# The two kurtosis quirks are the same 139 and 12 tensors at every bit-width (973 and 84 rows);
# the infinite pruning SNRs grow with the bit-width, from 10 tensors at 2 bits (87.5 % pruned)
# to 107 at 8 bits (50 % pruned): the fewer weights are pruned, the smaller the largest of them.
# In all, 1,326 of the 18,928 rows go. The weights' sizes (rms, from the table's SNR and MSE)
# confirm the two kurtosis quirks, and name the 12 tensors with infinite kurtosis:

# %%
infinite_kurtosis = zoo[(zoo.bits == 2) & np.isinf(zoo.sample_kurtosis)]
print(infinite_kurtosis.model.value_counts().to_string())
shufflenets = infinite_kurtosis[infinite_kurtosis.model.str.startswith("shufflenet")]
print("shufflenet layers:", list(shufflenets.layer))
excess = zoo[zoo.bits == 8].set_index(zoo_rms(zoo[zoo.bits == 8])).sample_kurtosis
for name, rms in {"excess kurtosis -3": excess.index[excess == -3],
                  "infinite excess kurtosis": excess.index[np.isinf(excess)]}.items():
    print(f"{name}: rms {rms.min():.4f} to {rms.max():.4f}")

# %% [markdown]
# ### What FP16 does to the measured SNRs
# The same arithmetic also moves the finite numbers. `pvq.heavy_tails.authors_snr_db` repeats the
# authors' measurement step by step (their 100-candidate range search $k\,(\max|w| + 0.5) / 100$,
# the search's error summed in FP16, the final error in FP32, the signal power in FP16), in FP16
# or FP32. On constructed normal tensors of 65,536 weights and two sizes, at 8 and 7 bits:

# %%
fp16_rows = []
for std, b in ((0.05, 8), (0.005, 7), (0.005, 8)):  # FP16 arithmetic on a CPU is slow: 3 cases
    w_normal = np.random.default_rng(0).normal(0.0, std, (256, 256))
    half, single = authors_snr_db(w_normal, b), authors_snr_db(w_normal, b, torch.float32)
    fp16_rows.append({"std": std, "bits": b, "FP16 (dB)": half[0], "FP32 (dB)": single[0],
                      "MSE-optimal, float64 (dB)": snr_db(w_normal, quantize(
                          w_normal, b, mse_scale(w_normal, b)))})
fp16_table = pd.DataFrame(fp16_rows).set_index(["std", "bits"])
print(fp16_table.round(2).to_string())
print(f"search candidates for std 0.005 lie {(np.abs(w_normal).max() + 0.5) / 100:.4f} apart")
assert fp16_table.loc[(0.005, 8), "FP32 (dB)"] - fp16_table.loc[(0.005, 8), "FP16 (dB)"] > 1.5
assert abs(fp16_table.loc[(0.05, 8), "FP32 (dB)"] - fp16_table.loc[(0.05, 8), "FP16 (dB)"]) < 0.1

# %% [markdown]
# For weights of size 0.05 FP16 changes nothing. For weights of size 0.005 the 8-bit
# quantization errors are so small that their squares round to zero in FP16; the range search
# then cannot tell good candidates from bad ones and picks a worse range: 38.49 dB in FP16
# against 40.15 dB for the same procedure in FP32 (and 40.26 dB at the MSE-optimal scale). At
# 7 bits FP16 costs nothing, but the coarse search does (34.29 dB against 34.99 dB): its
# candidates are 0.0052 apart, a step as large as these weights' spread. Both effects lower the
# high-bit SNRs of small tensors. The table shows it: the median gain from 7 to 8 bits is
# 4.16 dB for tensors with rms below 0.005 against 5.72 dB above 0.05 (all rows here, because
# the clean rows keep almost no tensor with rms below 0.005: the quirks sit exactly there):

# %%
by_tensor = zoo.pivot_table(index=["model", "layer"], columns="bits", values="quant_sqnr_db")
rms = zoo_rms(zoo[zoo.bits == 8]).set_axis(by_tensor.index)
size_class = pd.cut(rms, [0, 0.005, 0.05, np.inf], right=False)
gain = (by_tensor[8] - by_tensor[7]).groupby(size_class, observed=True).agg(["median", "size"])
assert gain.iloc[0, 0] < gain.iloc[-1, 0] - 1.0
print(gain.rename(columns={"median": "median gain 7 -> 8 bits (dB)", "size": "tensors"})
      .round(2).to_string())
small_clean = (zoo_rms(clean[clean.bits == 8]) < 0.005).sum()
print(f"clean rows with rms below 0.005 at 8 bits: {small_clean}")

# %% [markdown]
# So the high-bit part of the scatter below is biased against quantization for small tensors:
# at 7 and 8 bits their quantization SNRs are FP16 numbers, lower than the weights deserve, and
# a "win" of pruning there may be an artefact. The low-bit part (errors far above FP16's
# resolution) is not affected.
#
# ### Pruning against quantization, tensor by tensor
# One panel per bit-width, each with its own axes (the 2-bit cloud lives far below the 8-bit
# one). Points above the dashed diagonal are tensors where pruning wins.

# %%
fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), layout="constrained")
for ax, b in zip(axes, (2, 4, 8)):
    rows = clean[clean.bits == b]
    points = ax.scatter(rows.quant_sqnr_db, rows.pruning_sqnr_db, c=np.log10(rows["kurtosis"]),
                        s=4, cmap="viridis", vmin=0, vmax=3)
    low = min(rows.quant_sqnr_db.min(), rows.pruning_sqnr_db.min())
    high = max(rows.quant_sqnr_db.max(), rows.pruning_sqnr_db.max())
    ax.plot([low, high], [low, high], "k--", lw=1, label="y = x (equal SNR)")
    ax.set_title(f"{b} bits vs {equivalent_sparsity(b):.2%} sparsity")
    ax.set_xlabel("quantization SNR (dB)")
axes[0].set_ylabel("pruning SNR (dB)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center")
fig.colorbar(points, ax=axes, label="log10 kurtosis")
plt.show()

# %% [markdown]
# How often does pruning win, per bit-width, over all rows and over the clean rows (the share
# above the diagonal in the panels):

# %%
rates = win_rates_by_bits(zoo)
shown = rates.copy()
for part in ("all rows", "clean rows"):
    shown[(part, "pruning wins")] = (100 * rates[(part, "pruning wins")]).round(1)
shown.columns = [f"{part}: {what}{' (%)' if what == 'pruning wins' else ''}"
                 for part, what in shown.columns]
print(shown.to_string())
eight_all = zoo[zoo.bits == 8]
infinite_wins = np.isinf(eight_all.pruning_sqnr_db).sum()
print(f"8 bits, all rows: {(eight_all.pruning_sqnr_db > eight_all.quant_sqnr_db).sum()} wins, "
      f"{infinite_wins} of them infinite pruning SNRs")
assert rates[("clean rows", "pruning wins")].is_monotonic_decreasing

# %% [markdown]
# *Takeaway: quantization wins for most tensors at every bit-width, but not for "almost every"
# tensor at 2 bits: there pruning wins for 26.2 % of the 2,546 clean tensors. The share falls
# with every added bit, to 1.8 % at 8 bits. Over all rows the high-bit shares are higher (5.7 %
# at 8 bits); the extra wins are almost all infinite pruning SNRs, which always count as a
# "win" (last line printed).*
#
# By kurtosis (clean rows, 2, 4 and 8 bits; Pearson kurtosis buckets):

# %%
clean_248 = clean[clean.bits.isin([2, 4, 8])]
buckets = pd.cut(clean_248["kurtosis"], [1, 3, 6, 13, 33, 103, np.inf], right=False)
by_kurtosis = win_rates(clean_248.assign(**{"kurtosis bucket": buckets}),
                        ["kurtosis bucket", "bits"])
print((100 * by_kurtosis["pruning wins"].unstack()).round(1).to_string())
print(by_kurtosis["tensors"].unstack().to_string())

# %% [raw]
# # BEGIN QUESTION
# name: exercise_5

# %% [markdown]
# **Exercise 5.** Count the wins yourself. Write `my_win_rate(table, min_kurtosis)`: keep the
# rows of a table shaped like `clean` (columns `bits`, `kurtosis`, `quant_sqnr_db`,
# `pruning_sqnr_db`) whose kurtosis is at least `min_kurtosis`, and return, per bit-width, the
# fraction of them where pruning's SNR is above quantization's (a pandas Series indexed by
# `bits`, in increasing order). The check runs it on an eight-row table and compares it with
# `pvq.heavy_tails.win_rates`.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_win_rate(table: pd.DataFrame, min_kurtosis: float) -> pd.Series:
    """Per bit-width, the share of rows with kurtosis >= min_kurtosis where pruning wins."""
    # BEGIN SOLUTION
    heavy = table[table["kurtosis"] >= min_kurtosis]
    pruning_wins = heavy.pruning_sqnr_db > heavy.quant_sqnr_db
    return pruning_wins.groupby(heavy.bits).mean()
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_win_rate(my_win_rate):
    import pandas as pd
    from pvq.exercises import check_function
    from pvq.heavy_tails import win_rates
    rows = pd.DataFrame({"bits": [2, 2, 2, 2, 4, 4, 4, 4],
                         "kurtosis": [2.5, 8.0, 40.0, 120.0, 3.0, 9.0, 50.0, 200.0],
                         "quant_sqnr_db": [9.0, 7.0, 4.0, 3.0, 20.0, 18.0, 15.0, 9.0],
                         "pruning_sqnr_db": [3.0, 8.0, 6.0, 2.0, 6.0, 7.0, 9.0, 11.0]})

    def reference(table, min_kurtosis):
        shares = win_rates(table[table["kurtosis"] >= min_kurtosis], "bits")["pruning wins"]
        return shares.to_numpy()

    check_function("Exercise 5", my_win_rate, reference, [(rows, 1.0), (rows, 5.0), (rows, 30.0)],
                   rel_tol=1e-12)


test_win_rate(my_win_rate)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Both tables follow the theory's shape: pruning wins more often at fewer bits and at higher
# kurtosis. But pruning still wins for a few tensors at 8 bits, far below the 8-bit crossover
# kurtosis of the family (about 371). Who are they?

# %%
eight = clean[clean.bits == 8]
winners = eight[eight.pruning_sqnr_db > eight.quant_sqnr_db]
print(f"{len(winners)} of {len(eight)} clean tensors; kurtosis {winners['kurtosis'].min():.1f} "
      f"to {winners['kurtosis'].max():.1f}; rms {zoo_rms(winners).min():.4f} to "
      f"{zoo_rms(winners).max():.3f} (median {zoo_rms(winners).median():.3f})")
print(winners.model.value_counts().head(4).to_string())
densenets = winners[winners.model.str.startswith("densenet")]
print(f"{len(densenets)} DenseNet layers among them, named:",
      sorted(densenets.layer.str.rsplit(".", n=1).str[-1].unique()))
assert len(winners) == 45 and winners["kurtosis"].max() < crossovers[8]

# %% [markdown]
# Kurtoses of 6.6 to 123.9, all below the 8-bit crossover; 17 of the 45 are DenseNet layers,
# all of them `conv1` (the 1x1 bottleneck convolution of a dense layer) or the classifier. The
# table cannot tell us their shape (it holds no weights, and we cannot download them offline), so
# we cannot say *why* these win; the FP16 bias above is one candidate. Another is shape: kurtosis
# is one number, and different shapes share it. A constructed spike-and-slab tensor (half of its
# weights 100 times smaller than the rest) shows that a shape can exist where pruning wins at 8
# bits with a kurtosis where the family says quantization wins by far:

# %%
slab = rng.standard_normal(200_000)
slab[rng.random(slab.size) < 0.5] *= 0.01
spike_kurtosis = kurtosis(slab)
spike_gap = (snr_db(slab, quantize(slab, 8, mse_scale(slab, 8)))
             - snr_db(slab, magnitude_prune(slab, 0.5)))
print(f"spike and slab: kurtosis {spike_kurtosis:.2f}, gap at 8 bits {spike_gap:.2f} dB; "
      f"Student-t family at that kurtosis: {snr_gap_db(spike_kurtosis, 8):.2f} dB")
assert spike_gap < 0 < snr_gap_db(spike_kurtosis, 8)

# %% [markdown]
# At the same kurtosis the spike-and-slab tensor is better pruned even at 8 bits, while the
# heavy-tailed family is far better quantized. So kurtosis predicts the trend (the tables
# above), not every tensor; the shape near zero matters too.
#
# ## Our own weights
# The same measurement, with this course's definitions (`mse_scale`, exact pruning ratio, float64
# arithmetic), on two kinds of weights: the digits CNN and MLP trained for this course
# (`pvq.zoo.pretrained`), and twelve Linear layers of the real pretrained sentence encoder
# all-MiniLM-L6-v2 (blocks 1 and 5; `pvq.zoo.real_layer`, shipped with their provenance notice).

# %%
tensors = {f"{name}/{layer}": module.weight.detach().numpy()
           for name in ("digits_cnn", "digits_mlp")
           for layer, module in compressible_layers(pretrained(name)).items()}
tensors |= {f"MiniLM/{layer}": real_layer(layer).w for layer in real_layer_names()}
ours = tensor_snr_table(tensors, bit_widths=(2, 4))
print(ours[ours.bits == 2].set_index("layer")[["kurtosis", "quant_sqnr_db", "pruning_sqnr_db"]]
      .round(2).to_string())

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True, layout="constrained")
for ax, b in zip(axes, (2, 4)):
    rows = clean[clean.bits == b]
    ax.scatter(rows["kurtosis"], rows.quant_sqnr_db - rows.pruning_sqnr_db, s=4,
               color=COLORS["data"], alpha=0.4, label="model zoo (paper), clean rows")
    mine = ours[ours.bits == b]
    ax.scatter(mine["kurtosis"], mine.quant_sqnr_db - mine.pruning_sqnr_db, s=30, marker="*",
               color=COLORS["both"], label="our tensors")
    ax.plot(gap.index, gap[b], color="k", label="truncated Student-t theory (df = 2)")
    ax.axhline(0.0, color=COLORS["pruning"], lw=1, label="equal SNR")
    ax.set_xscale("log")
    ax.set_title(f"{b} bits vs {equivalent_sparsity(b):.2%} sparsity")
    ax.set_xlabel("kurtosis (Pearson)")
axes[0].set_ylabel("SNR(quantization) - SNR(pruning) (dB)")
fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center", ncols=4)
plt.show()

# %% [markdown]
# *Takeaway: our tensors sit where the zoo's do, and the gap falls with kurtosis as the theory
# curve does; points below the red line are where pruning wins.*
#
# All our tensors but the two MiniLM `mlp.fc2` layers have kurtosis below 5 (the table above).
# The heaviest is different:

# %%
heaviest = ours[ours.bits == 2].sort_values("kurtosis").iloc[-1]
theory_gap = snr_gap_db(heaviest["kurtosis"], 2)
print(f"{heaviest.layer}: kurtosis {heaviest['kurtosis']:.1f}, measured gap at 2 bits "
      f"{heaviest.quant_sqnr_db - heaviest.pruning_sqnr_db:.2f} dB, theory for the family "
      f"{theory_gap:.2f} dB")
assert (ours.quant_sqnr_db > ours.pruning_sqnr_db).all() and theory_gap < 0

# %% [markdown]
# For the family, that kurtosis would make pruning win at 2 bits; for this real layer,
# quantization still wins. Where does its kurtosis come from?

# %%
w_fc2 = tensors[heaviest.layer]
outliers = np.abs(w_fc2) > 10 * w_fc2.std()
print(f"{outliers.sum()} of {w_fc2.size} weights lie beyond 10 standard deviations (largest: "
      f"{np.abs(w_fc2).max() / w_fc2.std():.0f}); they carry "
      f"{(w_fc2[outliers] ** 2).sum() / (w_fc2 ** 2).sum():.1%} of the energy; the other "
      f"weights have kurtosis {kurtosis(w_fc2[~outliers]):.2f}")
assert kurtosis(w_fc2[~outliers]) < 6.0

# %% [markdown]
# A handful of extreme outliers make the kurtosis huge but hold little of the signal: the
# MSE-optimal 2-bit grid simply clips them, and the rest of the layer has a modest kurtosis (the
# last number printed). The truncated Student-t of the same kurtosis spreads its tail over many
# weights instead. Kurtosis predicts the *trend*, not every tensor, which is also what the
# scatter of the zoo shows.

# %% [markdown]
# ## Recap
# - Kurtosis measures tail weight (normal 3); the paper's data reports excess kurtosis (normal 0).
# - The truncated Student-t is a dial from uniform to outlier-heavy; at its normal limit it
#   reproduces notebook 2. Its $\nu$ is the course's choice (2); with $\nu = 3$ pruning wins much less.
# - Any density's quantization error is a sum of cell integrals $M_2 - 2cM_1 + c^2M_0$.
# - At every bit-width pruning wins above a crossover kurtosis, which rises steeply: about 9 at
#   2 bits, 28 at 4, 371 at 8 ($\nu = 2$). The mechanism: outliers stretch the grid.
# - The paper's model-zoo table was computed in FP16: drop its 1,326 quirk rows (infinite pruning
#   SNR, excess kurtosis -3 or infinite), and read its high-bit SNRs of small tensors with care.
# - On the clean rows pruning wins for 26.2 % of the tensors at 2 bits and 1.8 % at 8; more
#   often at higher kurtosis, as the theory says, but kurtosis does not decide every tensor.
#
# **Next:** notebook 4 leaves distributions behind and bounds the best possible post-training
# error of each method on real layers.
#
# *On Binder (2 GB of memory), shut this notebook's kernel down before you open the next one:
# Kernel > Shut Down Kernel.*
#
# ## References
# - A. Kuzmin, M. Nagel, M. van Baalen, A. Behboodi, T. Blankevoort. *Pruning vs Quantization:
#   Which is Better?* NeurIPS 2023 (Sec. 3: heavy tails and the model-zoo comparison).
#   [arXiv:2307.02973](https://arxiv.org/abs/2307.02973); the authors' code and model-zoo table:
#   [Qualcomm-AI-research/pruning-vs-quantization](https://github.com/Qualcomm-AI-research/pruning-vs-quantization).
# - R. P. Brent. *Algorithms for Minimization without Derivatives*, Prentice-Hall 1973 (the root
#   finder behind `scipy.optimize.brentq`);
#   [SciPy's documentation](https://docs.scipy.org/doc/scipy/reference/generated/scipy.optimize.brentq.html).
# - The torchvision models of the model zoo:
#   [torchvision.models](https://pytorch.org/vision/stable/models.html).
# - N. Reimers, I. Gurevych. *Sentence-BERT*, EMNLP 2019, and the all-MiniLM-L6-v2 encoder whose
#   layers ship with the course. [arXiv:1908.10084](https://arxiv.org/abs/1908.10084).
