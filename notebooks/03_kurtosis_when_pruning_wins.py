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
# # 3. Kurtosis: when does pruning win?
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 35 minutes. **You need:** notebooks 1 (the two operations) and 2 (their
# exact SNR on the normal distribution).
#
# ## Learning objectives
# By the end of this notebook you can
# 1. say what kurtosis measures and compute it for samples and for distributions;
# 2. use the truncated Student-t family as a dial from light to outlier-heavy tails;
# 3. read the map of SNR(quantization) - SNR(pruning) over kurtosis and bit-width, and name the
#    crossover kurtosis above which pruning wins at each bit-width;
# 4. check the theory against the paper's measurements on 2,704 real weight tensors of 45
#    torchvision models, and against weights of networks trained in this course.

# %%
import numpy as np
import pandas as pd
import matplotlib.pyplot as plt
from ipywidgets import FloatLogSlider, IntSlider
from scipy import stats

from pvq.compression import equivalent_sparsity
from pvq.data import model_zoo_sqnr
from pvq.distributions import kurtosis_of, limit_for_kurtosis, truncated_student_t
from pvq.exercises import check_answer
from pvq.heavy_tails import crossover_kurtosis, snr_gap_db, snr_gap_map, tensor_snr_table, win_rates
from pvq.layers import compressible_layers
from pvq.metrics import kurtosis, snr_db
from pvq.plotting import COLORS, error_density, use_course_style
from pvq.prune import magnitude_prune
from pvq.quantize import mse_scale, quantize
from pvq.theory import optimal_scale, pruning_snr_db, quantization_snr_db
from pvq.widgets import figure_with_sliders
from pvq.zoo import pretrained, real_layer, real_layer_names

use_course_style()
rng = np.random.default_rng(seed=0)

# %% [markdown]
# ## What kurtosis measures
# Kurtosis is the fourth standardised moment, `E[(W - mu)^4] / sigma^4`. It does not see the
# width of a distribution (that is the variance), only how much of its variance comes from rare,
# large values: the tails. The normal has kurtosis 3, a uniform 1.8, a Laplace 6. Many libraries,
# scipy and the paper's data among them, report the *excess* kurtosis, kurtosis - 3 (normal = 0);
# this course says "kurtosis" for the plain (Pearson) value and "excess" when it means the other.

# %%
samples = {"uniform": rng.uniform(-1, 1, 10**6), "normal": rng.standard_normal(10**6),
           "Laplace": rng.laplace(size=10**6)}
exact = {"uniform": 1.8, "normal": 3.0, "Laplace": 6.0}
for name, sample in samples.items():
    print(f"{name:8s} sample kurtosis {kurtosis(sample):.3f}  exact {exact[name]}")
    assert abs(kurtosis(sample) - exact[name]) < 0.05

# %% [markdown]
# ## A dial for heavy tails: the truncated Student-t
# A Student-t with `df` degrees of freedom has power-law tails; with `df = 2` even its variance
# is infinite. Cutting it at `+-limit` (and renormalising) makes every moment finite, and the
# cut becomes a dial: a tight cut is almost uniform (kurtosis near 1.8), a wide cut keeps rare
# huge outliers (kurtosis as large as we like). `limit_for_kurtosis` turns the dial to a target
# kurtosis. The paper uses this family for its heavy-tail analysis.

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
# A sanity check first: with very many degrees of freedom and a very wide cut, the family *is*
# the normal, and `pvq.theory` must give notebook 2's numbers for it.

# %%
almost_normal = truncated_student_t(1e6, 40.0)
for b in (2, 4, 8):
    ours = quantization_snr_db(almost_normal, b), pruning_snr_db(almost_normal, 1 - b / 16)
    normal = quantization_snr_db(stats.norm(), b), pruning_snr_db(stats.norm(), 1 - b / 16)
    print(f"{b} bits: family {ours[0]:.3f} / {ours[1]:.3f} dB, normal {normal[0]:.3f} / "
          f"{normal[1]:.3f} dB")
    assert np.allclose(ours, normal, atol=0.01)

# %% [markdown]
# ## The map: where does pruning win?
# For every kurtosis and bit-width we compute the exact SNR of b-bit quantization (at its
# MSE-optimal scale) and of pruning at the equal-compression sparsity `1 - b/16`, and plot the
# difference. Positive (blue): quantization wins; negative (red): pruning wins.

# %%
kurtoses = np.geomspace(2.0, 1000.0, 24)
bit_widths = range(2, 9)
gap = snr_gap_map(kurtoses, bit_widths)

# %%
fig, ax = plt.subplots()
mesh = ax.pcolormesh(list(bit_widths), kurtoses, gap.to_numpy(), cmap="RdBu",
                     vmin=-30, vmax=30, shading="nearest")
ax.contour(list(bit_widths), kurtoses, gap.to_numpy(), levels=[0.0], colors="k")
ax.set_yscale("log")
ax.set_xlabel("bits (pruning at sparsity 1 - b/16)")
ax.set_ylabel("kurtosis (Pearson)")
fig.colorbar(mesh, label="SNR(quantization) - SNR(pruning) (dB)")
plt.show()

# %% [markdown]
# *Takeaway: the black zero contour bends up steeply; pruning wins only in the corner of very
# heavy tails and very few bits.*
#
# The crossover kurtosis at each bit-width, the root of the gap:

# %%
crossovers = pd.Series({b: crossover_kurtosis(b) for b in bit_widths}, name="crossover kurtosis")
crossovers.index.name = "bits"
print(crossovers.round(1).to_string())
assert crossovers.is_monotonic_increasing and crossovers[2] > 3.0

# %% [markdown]
# The crossover grows steeply with the bit-width: at 2 bits a moderately heavy-tailed tensor is
# already better pruned, while at 8 bits only an extremely heavy tail would make pruning win.
#
# ## The model zoo: 2,704 real tensors
# The paper measured both SNRs on every Conv2d and Linear weight of 45 torchvision models (FP16
# weights first), for b = 2..8 at equal compression. The table ships with this course
# (`pvq.data.model_zoo_sqnr`, with its provenance notice). Its `sample_kurtosis` is the
# *excess* kurtosis; we add 3 to compare with our map.

# %%
zoo = model_zoo_sqnr()
zoo["kurtosis"] = zoo.sample_kurtosis + 3.0
print(f"{zoo.model.nunique()} models, {len(zoo[zoo.bits == 2])} tensors per bit-width")
print(zoo[["model", "layer", "bits", "kurtosis", "quant_sqnr_db", "pruning_sqnr_db"]].head(3))

# %% [markdown]
# Two quirks of the data, worth knowing before plotting it. Some tensors are mostly exact zeros,
# so pruning loses nothing at some ratios (infinite SNR). And some tensors report an excess
# kurtosis of exactly -3 (a kurtosis of 0, impossible for real data): their weights are so small
# that the fourth powers underflow in FP16, where the authors computed them.

# %%
infinite = np.isinf(zoo.pruning_sqnr_db)
underflow = zoo.sample_kurtosis == -3
print(f"rows with infinite pruning SNR: {infinite.sum()}; tensors with excess kurtosis -3: "
      f"{underflow[zoo.bits == 2].sum()}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(11, 3.6), sharex=True, sharey=True)
for ax, b in zip(axes, (2, 4, 8)):
    rows = zoo[(zoo.bits == b) & ~infinite & ~underflow]
    points = ax.scatter(rows.quant_sqnr_db, rows.pruning_sqnr_db, c=np.log10(rows["kurtosis"]),
                        s=4, cmap="viridis", vmin=0, vmax=3)
    ax.plot([0, 60], [0, 60], "k--", lw=1, label="y = x")
    ax.set_title(f"{b} bits vs {equivalent_sparsity(b):.2%} sparsity")
    ax.set_xlabel("quantization SNR (dB)")
axes[0].set_ylabel("pruning SNR (dB)")
axes[0].legend(loc="upper left")
fig.colorbar(points, ax=axes, label="log10 kurtosis")
plt.show()

# %% [markdown]
# *Takeaway: almost every tensor lies below the diagonal (quantization better); the ones above
# it are the bright, high-kurtosis ones, and there are more of them at 2 bits.*
#
# How often does pruning win? By bit-width over all rows, then by kurtosis, leaving out the two
# quirks above (infinite pruning SNR, FP16 underflow).

# %%
print(win_rates(zoo, "bits").round(3).T.to_string())

# %%
zoo["kurtosis bucket"] = pd.cut(zoo["kurtosis"], [1, 3, 6, 13, 33, 103, np.inf], right=False)
clean = zoo[zoo.bits.isin([2, 4, 8]) & ~infinite & ~underflow]
print(win_rates(clean, ["kurtosis bucket", "bits"])
      ["pruning wins"].unstack().round(2).to_string())

# %% [markdown]
# Both tables follow the theory's shape: pruning wins more often at fewer bits and at higher
# kurtosis. Two things need a closer look. First, pruning "wins" for several percent of the
# tensors even at 8 bits. Most of those rows are the tensors with infinite pruning SNR: at least
# half of their weights are exact zeros (dead channels), so pruning 50 % removes nothing but
# zeros. Leaving them out, quantization wins at 8 bits for more than 95 % of the tensors:

# %%
eight = zoo[(zoo.bits == 8) & ~infinite]
share_quant_wins = (eight.quant_sqnr_db > eight.pruning_sqnr_db).mean()
print(f"8 bits: {infinite[zoo.bits == 8].sum()} tensors with infinite pruning SNR left out; "
      f"quantization wins for {share_quant_wins:.1%} of the other {len(eight)}")
assert share_quant_wins > 0.95

# %% [markdown]
# Second, the tensors where pruning still wins at 8 bits have kurtoses of about 7 to 120, while
# the theory map puts the 8-bit crossover of the Student-t family far higher. Kurtosis is one
# number, and different shapes share it. Many of these tensors (DenseNet bottlenecks, early
# MobileNet blocks) have a *spike* of near-zero weights beside a normal bulk: exactly what
# pruning removes for free. A spike-and-slab tensor makes the point: half of its weights are
# 100 times smaller than the rest.

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
# above), not every tensor; the shape near zero matters as much as the tails.
#
# %% [markdown]
# ## Our own weights
# The same measurement, with this course's definitions (`mse_scale`, exact pruning ratio), on
# two kinds of weights: the digits CNN and MLP trained for this course (`pvq.zoo.pretrained`),
# and twelve Linear layers of the real pretrained sentence encoder all-MiniLM-L6-v2 (blocks 1
# and 5; `pvq.zoo.real_layer`, shipped with their provenance notice).

# %%
tensors = {f"{name}/{layer}": module.weight.detach().numpy()
           for name in ("digits_cnn", "digits_mlp")
           for layer, module in compressible_layers(pretrained(name)).items()}
tensors |= {f"MiniLM/{layer}": real_layer(layer).w for layer in real_layer_names()}
ours = tensor_snr_table(tensors, bit_widths=(2, 4))
print(ours[ours.bits == 2].set_index("layer")[["kurtosis", "quant_sqnr_db", "pruning_sqnr_db"]]
      .round(2).to_string())

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for ax, b in zip(axes, (2, 4)):
    rows = zoo[(zoo.bits == b) & ~infinite & ~underflow]
    ax.scatter(rows["kurtosis"], rows.quant_sqnr_db - rows.pruning_sqnr_db, s=4,
               color=COLORS["data"], alpha=0.4, label="model zoo (paper)")
    mine = ours[ours.bits == b]
    ax.scatter(mine["kurtosis"], mine.quant_sqnr_db - mine.pruning_sqnr_db, s=30, marker="*",
               color=COLORS["both"], label="our tensors")
    ax.plot(gap.index, gap[b], color="k", label="truncated Student-t theory")
    ax.axhline(0.0, color=COLORS["pruning"], lw=1)
    ax.set_xscale("log")
    ax.set_title(f"{b} bits vs {equivalent_sparsity(b):.2%} sparsity")
    ax.set_xlabel("kurtosis (Pearson)")
axes[0].set_ylabel("SNR(quantization) - SNR(pruning) (dB)")
axes[0].legend()
plt.show()

# %% [markdown]
# *Takeaway: our tensors sit where the zoo's do, and the gap falls with kurtosis as the theory
# curve does; points below the red line are where pruning wins.*
#
# Most of our tensors are close to normal (kurtosis near 3). One MiniLM layer is different:

# %%
heaviest = ours[ours.bits == 2].sort_values("kurtosis").iloc[-1]
theory_gap = snr_gap_db(heaviest["kurtosis"], 2)
print(f"{heaviest.layer}: kurtosis {heaviest['kurtosis']:.1f}, measured gap at 2 bits "
      f"{heaviest.quant_sqnr_db - heaviest.pruning_sqnr_db:.2f} dB, theory for the family "
      f"{theory_gap:.2f} dB")
assert (ours.quant_sqnr_db > ours.pruning_sqnr_db).all()

# %% [markdown]
# For the family, that kurtosis would make pruning win at 2 bits; for this real layer,
# quantization still wins. Where does its kurtosis come from?

# %%
w_fc2 = tensors[heaviest.layer]
outliers = np.abs(w_fc2) > 10 * w_fc2.std()
print(f"{outliers.sum()} of {w_fc2.size} weights lie beyond 10 standard deviations (largest: "
      f"{np.abs(w_fc2).max() / w_fc2.std():.0f}); they carry "
      f"{(w_fc2[outliers] ** 2).sum() / (w_fc2 ** 2).sum():.1%} of the energy")

# %% [markdown]
# A handful of extreme outliers make the kurtosis huge but hold little of the signal: the
# MSE-optimal 2-bit grid simply clips them, and the bulk of the layer is close to normal. The
# truncated Student-t of the same kurtosis spreads its tail over many weights instead.
# Kurtosis predicts the *trend*, not every tensor, which is also what the scatter of the zoo
# shows.

# %% [markdown]
# ## An interactive look
# Move the kurtosis slider to see how the density, the 3-bit grid and the 81.25 % pruning band
# change together, with both SNRs. Executed non-interactively, the cell draws the default
# (kurtosis 10).

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
# *Takeaway: as the kurtosis grows the grid must stretch to cover the outliers, its cells widen
# and the quantization error grows everywhere, while the pruning band shrinks toward zero.*

# %% [markdown]
# ## Exercises
# **Exercise 1.** Using `snr_gap_db`, find by how many dB quantization beats pruning at 4 bits
# for a tensor with kurtosis 6 (a Laplace-like tail). Round to 0.1 dB.

# %% tags=["solution"]
answer_gap_4bit = round(snr_gap_db(6.0, 4), 1)

# %%
dist6 = truncated_student_t(2, limit_for_kurtosis(6.0))
check_answer("Exercise 1", answer_gap_4bit,
             quantization_snr_db(dist6, 4) - pruning_snr_db(dist6, 0.75), abs_tol=0.051)

# %% [markdown]
# **Exercise 2.** In the model-zoo table at 2 bits, what fraction of the tensors with kurtosis
# of at least 33 (excess >= 30) are better pruned than quantized? (Leave out the rows with
# infinite pruning SNR.)

# %% tags=["solution"]
answer_heavy_share = win_rates(zoo[(zoo.bits == 2) & (zoo["kurtosis"] >= 33) & ~infinite],
                               "bits")["pruning wins"].iloc[0]

# %%
heavy_rows = zoo.query("bits == 2 and sample_kurtosis >= 30 and pruning_sqnr_db < inf")
check_answer("Exercise 2", answer_heavy_share,
             float(np.mean(heavy_rows.pruning_sqnr_db > heavy_rows.quant_sqnr_db)), rel_tol=1e-9)
print(f"at 2 bits pruning wins for {answer_heavy_share:.0%} of the heavy-tailed tensors")

# %% [markdown]
# ## Recap
# - Kurtosis measures tail weight (normal 3); the paper's data reports excess kurtosis (normal 0).
# - The truncated Student-t is a dial from uniform to outlier-heavy; at its normal limit it
#   reproduces notebook 2.
# - Quantization wins everywhere except at very high kurtosis with very few bits; the crossover
#   kurtosis rises steeply with the bit-width.
# - The paper's 2,704 tensors follow the same trend (pruning wins more at fewer bits and higher
#   kurtosis), but kurtosis does not decide every tensor: a spike of near-zero weights favours
#   pruning, a few extreme outliers favour quantization.
#
# **Next:** notebook 4 leaves distributions behind and bounds the best possible post-training
# error of each method on real layers.
#
# *On Binder (2 GB of memory), shut this notebook's kernel down before you open the next one:
# Kernel > Shut Down Kernel.*
