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
# # 6. Combining pruning and quantization, and what the hardware makes of each
#
# *Course: Pruning vs Quantization, after Kuzmin et al., "Pruning vs Quantization: Which is
# Better?", NeurIPS 2023 (arXiv 2307.02973).*
#
# **Estimated time:** 75 minutes with the exercises (the code runs in a minute or two on a
# laptop CPU). **You need:** notebook 1 (quantizer, pruner, bitmask), notebook 2 (SNR of the
# normal), notebook 5 (LSQ and gradual pruning).
#
# ## Learning objectives
# By the end of this notebook you can
# 1. count the exact bytes of a layer stored as dense FP16, packed INT-b, pruned with a bitmask or
#    in CSR, or 2:4 sparse, and check the count against the bytes torch writes to disk;
# 2. combine pruning and quantization in either order, say precisely what each order does, and
#    say when their errors add: exactly for the weight error, and up to a cross term for the
#    layer's output error with correlated inputs (notebook 4);
# 3. draw the storage-vs-SNR frontier with every overhead counted, binary and ternary codes
#    included, with fixed-length and with entropy-coded codes, and read off which formats are
#    Pareto-optimal;
# 4. run both orders on a network, post-training and trained (pruning then quantization-aware
#    training, or quantization-aware training then pruning), and quantization-aware pruning;
#    compare them with each other and with quantization alone at the same bits per weight, with
#    paired 95 % intervals over seeds and test images;
# 5. time a Linear layer dense (FP32 and BF16), INT8, unstructured sparse and structurally
#    pruned, find the sparsity from which unstructured sparsity starts to pay, and tell what is
#    measured from what is arithmetic;
# 6. decide when to quantize, when to prune, and when to do both.
#
# So far the course compared the two methods at *equal compression*, $b$ bits against sparsity
# $1 - b/16$, and left two questions open: can we do both, and does the saving show up in bytes
# and in time on a real machine?
#
# You build the core of each idea yourself first, in seven graded exercises: a bitmask encoder
# and its byte count, the bytes of a CSR layer, quantize-then-prune with its tie-break, the bits
# per weight of a combined format, the Pareto-optimal points of a frontier, and two predictions.
# Each is followed at once by a check that runs your code on a tiny input and compares it with
# the library `pvq`; it says "correct", or exactly what differs.

# %%
import math
from functools import partial

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from ipywidgets import FloatSlider, IntSlider, ToggleButtons
from scipy import stats
from threadpoolctl import threadpool_limits

# One thread for torch and NumPy's BLAS: reproducible training, and fixed for the timings.
threadpool_limits(1)
torch.set_num_threads(1)

# %%
from pvq import combine, compression, hardware
from pvq.baselines import baseline_loaders, cpu_model
from pvq.data import distorted_digits_split
from pvq.finetune import LEARNING_RATE_GRIDS, accuracy_interval, per_example_correct
from pvq.layers import compressible_layers
from pvq.metrics import kurtosis, snr_db
from pvq.parallel import parallel_map
from pvq.plotting import COLORS, use_course_style
from pvq.prune import channel_mask, magnitude_mask, magnitude_prune
from pvq.quantize import mse_scale, quantize
from pvq.theory import pruning_snr_db, quantization_snr_db
from pvq.stats import paired_bootstrap
from pvq.widgets import figure_with_sliders
from pvq.zoo import pretrained, real_layer

use_course_style()
pd.set_option("display.width", 120)

# %% [markdown]
# ## 1. Storage, byte for byte
# Our real layer is the second MLP projection of block 1 of the sentence encoder
# all-MiniLM-L6-v2 (`pvq.zoo.real_layer`): $384 \times 1536$ weights (outputs by inputs), with
# $X$, the inputs that reached it on a sample of real text. Its weights have a few large outliers
# (very heavy tails, Pearson kurtosis far above the normal's 3, as in notebook 3), which will
# matter later.

# %%
layer = real_layer("blocks.1.mlp.fc2")
w = layer.w
print(f"shape {w.shape}, {w.size:,} weights, Pearson kurtosis {kurtosis(w):.0f} (normal: 3); "
      f"inputs X {layer.X.shape}")
assert kurtosis(w) > 100

# %% [markdown]
# `pvq.compression.encoded_bytes` counts every array a format needs, each rounded up to whole
# bytes. For a layer of $n$ weights in $r$ rows and $k$ kept values:
#
# - **dense FP16**: 2 bytes per weight, the paper's base format;
# - **packed INT-$b$**: $b$-bit codes back to back, $\lceil n b / 8 \rceil$ bytes, plus **one
#   FP32 scale** (4 bytes) per tensor;
# - **bitmask**: one bit per weight says kept or pruned, $\lceil n / 8 \rceil$ bytes, then the
#   $k$ kept values;
# - **CSR** (compressed sparse rows): the kept values, one column index per kept value (1536
#   columns need 11 bits, so the narrowest standard unsigned integer, **16 bits**), and $r + 1$
#   row pointers, each wide enough to hold $k$ (**32 bits** once more than 65,535 values are kept);
# - **2:4**: in every 4 consecutive weights 2 are kept, each with a 2-bit position.
#
# To check the accounting, `combine.stored_arrays` builds the arrays themselves (codes packed
# into `uint8`, the mask packed 8 per byte, indices in `uint16`/`uint32`) and
# `compression.saved_payload_bytes` measures the tensor data in the file `torch.save` writes.

# %%
FORMATS = {"FP16": (None, 0.0, "dense"), "INT8": (8, 0.0, "dense"), "INT4": (4, 0.0, "dense"),
           "FP16, 50 % pruned, bitmask": (None, 0.5, "bitmask"),
           "FP16, 50 % pruned, CSR": (None, 0.5, "csr"),
           "FP16, 90 % pruned, bitmask": (None, 0.9, "bitmask"),
           "FP16, 90 % pruned, CSR": (None, 0.9, "csr"),
           "INT8, 50 % pruned, bitmask": (8, 0.5, "bitmask"),
           "INT4, 75 % pruned, CSR": (4, 0.75, "csr"), "FP16, 2:4": (None, 0.5, "2:4"),
           "INT8, 2:4": (8, 0.5, "2:4")}

# %% [raw]
# # BEGIN QUESTION
# name: exercise_1

# %% [markdown]
# **Exercise 1.** *Predict, then run.* Pruning half the weights of the FP16 layer keeps 8 bits
# of values per weight on average; dense INT8 stores 8 bits per weight too. Counted with every
# overhead, which is smaller: `"FP16, 50 % pruned, bitmask"` or `"INT8"`? Set `predicted_smaller`
# to one of them *before* you run the next cell, which counts every format of the list above.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
predicted_smaller = "INT8"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
rows = {}
for name, (bits, sparsity, encoding) in FORMATS.items():
    counted = compression.encoded_bytes(w.shape, bits=bits, sparsity=sparsity, encoding=encoding)
    saved = compression.saved_payload_bytes(
        combine.stored_arrays(w, bits=bits, sparsity=sparsity, encoding=encoding))
    rows[name] = {"bytes (counted)": counted, "bytes (torch.save)": saved,
                  "bits/weight": 8 * counted / w.size, "% of FP16": 100 * counted / (2 * w.size)}
storage = pd.DataFrame(rows).T.astype({"bytes (counted)": int, "bytes (torch.save)": int})
print(storage.round(2).to_string())
assert (storage["bytes (counted)"] == storage["bytes (torch.save)"]).all()

# %% [raw]
# # BEGIN TESTS

# %%
def test_smaller_format(predicted_smaller, w):
    from pvq.compression import encoded_bytes
    from pvq.exercises import check_choice
    pruned = encoded_bytes(w.shape, sparsity=0.5, encoding="bitmask")
    int8 = encoded_bytes(w.shape, bits=8)
    check_choice("Exercise 1", predicted_smaller,
                 "INT8" if int8 < pruned else "FP16, 50 % pruned, bitmask",
                 ["FP16, 50 % pruned, bitmask", "INT8"])


test_smaller_format(predicted_smaller, w)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Every count agrees with the file to the byte. Three things stand out:
#
# - The bitmask costs one bit per weight whatever the sparsity, $1/16$ of FP16 (6.25 %).
#   Pruning half the weights of an FP16 layer stores 9 bits per weight, more than dense INT8.
# - CSR pays a 16-bit index for every kept value: at 50 % sparsity it is *larger* than the dense
#   FP16 layer. It beats the bitmask only when $(1 - c) \cdot 16 < 1$, i.e. above 93.75 %
#   sparsity.
# - Quantizing the kept values helps every sparse format: INT8 2:4 stores 5 bits per weight.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_2

# %% [markdown]
# **Exercise 2.** Write the bitmask encoder. `my_bitmask(w, sparsity)` prunes `w` by magnitude
# (`magnitude_mask(w, sparsity)` gives the keep-mask, True = kept) and packs the mask into bytes:
# one bit per weight, in row-major order, 8 weights per byte, least significant bit first, the
# last byte padded with zeros. `my_bitmask_bytes(w, sparsity)` counts the bytes of the whole
# pruned layer with FP16 values: the packed mask plus 2 bytes per kept value. The check
# compares your bytes with the mask that `combine.stored_arrays` writes, and your count with
# `compression.encoded_bytes`, on a $3 \times 5$ tensor (15 mask bits: 2 bytes) and a
# $4 \times 3$ one.
#
# *Hint: `np.packbits(bits, bitorder="little")` packs a flat array of 0s and 1s.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_bitmask(w: np.ndarray, sparsity: float) -> np.ndarray:
    """The keep-mask of magnitude pruning, packed 8 weights per byte, LSB first (uint8)."""
    # BEGIN SOLUTION
    keep = magnitude_mask(w, sparsity)
    flat = keep.ravel().astype(np.uint8)
    return np.packbits(flat, bitorder="little")
    # END SOLUTION


def my_bitmask_bytes(w: np.ndarray, sparsity: float) -> int:
    """Bytes of w pruned to sparsity and stored as a bitmask plus its kept FP16 values."""
    # BEGIN SOLUTION
    mask_bytes = my_bitmask(w, sparsity).size
    kept = int(magnitude_mask(w, sparsity).sum())
    return mask_bytes + 2 * kept
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_bitmask(my_bitmask, my_bitmask_bytes):
    import numpy as np
    from pvq.combine import stored_arrays
    from pvq.compression import encoded_bytes
    from pvq.exercises import check_functions
    small = np.array([[0.3, -0.1, 0.05, -0.7, 0.2], [-0.02, 0.5, 0.15, -0.4, 0.01],
                      [0.6, -0.25, 0.08, 0.35, -0.9]])
    cases = [(small, 0.4), (small, 0.8), (small[:, :4].T.copy(), 0.5)]
    check_functions("Exercise 2", [
        (my_bitmask, lambda w, c: stored_arrays(w, sparsity=c, encoding="bitmask")["mask"].numpy()),
        (my_bitmask_bytes, lambda w, c: encoded_bytes(w.shape, sparsity=c, encoding="bitmask"))],
        cases)


test_bitmask(my_bitmask, my_bitmask_bytes)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
mask_bytes = storage.loc["FP16, 50 % pruned, bitmask", "bytes (counted)"] - w.size  # minus values
print(f"mask: {mask_bytes:,.0f} bytes = {mask_bytes / (2 * w.size):.2%} of FP16")
assert mask_bytes / (2 * w.size) == compression.mask_overhead() == 0.0625
break_even = 1 - 1 / 16  # (1 - c) * (16 + 16) = (1 - c) * 16 + 1
print(f"CSR with 16-bit indices beats the bitmask above {break_even:.2%} sparsity")
assert compression.csr_bits_per_weight(0.95) < compression.bitmask_bits_per_weight(0.95)
assert compression.csr_bits_per_weight(0.9) > compression.bitmask_bits_per_weight(0.9)

# %% [raw]
# # BEGIN QUESTION
# name: exercise_3

# %% [markdown]
# **Exercise 3.** Count a CSR layer's bytes by hand. Write `my_csr_bytes(shape, sparsity)` for
# a matrix of shape $(r, m)$ pruned to sparsity $c$, with $k = n - \mathrm{round}(c\,n)$ kept
# FP16 values ($n = r m$): 2 bytes per kept value, one column index per kept value in the
# narrowest unsigned integer (8, 16, 32 or 64 bits) that holds $m - 1$, and $r + 1$ row pointers
# in the narrowest that holds $k$. The check tries shapes whose column indices need 8, 16, 32
# and 64 bits and whose row pointers need 8, 16, 32 and 64 bits. The largest shapes hold billions
# of weights: count with integers, build no array.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_csr_bytes(shape: tuple[int, int], sparsity: float) -> int:
    """Bytes of an (r, m) matrix pruned to sparsity and stored in CSR with FP16 values."""
    # BEGIN SOLUTION
    rows, columns = shape
    kept = rows * columns - round(sparsity * rows * columns)

    def width(largest: int) -> int:  # bits of the narrowest unsigned integer holding largest
        return next(bits for bits in (8, 16, 32, 64) if largest < 2**bits)

    return 2 * kept + kept * width(columns - 1) // 8 + (rows + 1) * width(kept) // 8
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_csr_bytes(my_csr_bytes):
    from pvq.compression import encoded_bytes
    from pvq.exercises import check_function
    cases = [((4, 200), 0.5), ((2, 300), 0.75), ((384, 1536), 0.9), ((384, 1536), 0.5),
             ((3, 2**16 + 1), 0.25), ((1, 2**32 + 1), 0.75), ((2**20, 2**14), 0.5)]
    check_function("Exercise 3", my_csr_bytes,
                   lambda shape, c: encoded_bytes(shape, sparsity=c, encoding="csr"), cases)


test_csr_bytes(my_csr_bytes)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
sparsities = np.linspace(0.0, 0.99, 100)
fig, ax = plt.subplots()
for bits, color in ((None, COLORS["pruning"]), (8, COLORS["both"])):
    label = "FP16" if bits is None else f"INT{bits}"
    for encoding, style in (("bitmask", "-"), ("csr", "--")):
        cost = [compression.encoded_bits_per_weight(w.shape, bits=bits, sparsity=c,
                                                    encoding=encoding) for c in sparsities]
        ax.plot(sparsities, cost, style, color=color, label=f"{label} values, {encoding}")
for bits in (8, 4):
    ax.axhline(bits, color=COLORS["quantization"], lw=1, ls=":")
    ax.text(0.25, bits + 0.3, f"dense INT{bits}", color=COLORS["quantization"])  # clear of lines
ax.set(xlabel="sparsity (fraction of weights removed)", ylabel="bits per weight (all overheads)",
       ylim=(0, 34))
ax.legend()
plt.show()

# %% [markdown]
# *Takeaway: a pruned FP16 layer, with a bitmask or in CSR, stays above dense INT4 (the lower
# dotted line) until high sparsity; with its kept values quantized to 8 bits, each curve lies
# below the FP16 one of the same encoding.*

# %% [markdown]
# ## 2. Both on one tensor: two orders
# Both orders use the course's pruner and quantizer (`combine.compress`) and store the same
# thing, $k$ kept $b$-bit codes with their positions:
#
# - **prune-then-quantize**: prune the smallest $|w|$, then quantize the kept weights with the
#   MSE scale *of the kept weights*. The pruned weights are zeros by the mask; the grid ignores
#   them.
# - **quantize-then-prune**: quantize with the MSE scale of the *whole* tensor,
#   $q = Q_s(w)$, then prune the quantized tensor by magnitude: the smallest $|q|$ go first, and
#   among weights with equal codes those of smallest *original* magnitude $|w|$
#   (`combine.quantized_magnitude_mask`). Ranked by position instead, the pruner would drop
#   arbitrary weights among equal codes.
#
# The errors fall on different weights (pruned ones lose $w$, kept ones their rounding error),
# so their squared *weight* errors add:
#
# $$\|w - \hat w\|^2 = \sum_{i\ \text{pruned}} w_i^2
#   + \sum_{i\ \text{kept}} \big(w_i - Q_s(w_i)\big)^2.$$
#
# (The layer's *output* error is another matter; we come back to it below.) We start on
# 65,536 seeded samples of the standard normal, where notebook 2's exact theory is the check,
# shaped $128 \times 512$ so that CSR needs 16-bit column indices, as in real layers.

# %%
normal_w = np.random.default_rng(0).standard_normal((128, 512))
for bits in (2, 4):
    error = abs(snr_db(normal_w, combine.compress(normal_w, bits=bits).w_hat)
                - quantization_snr_db(stats.norm(), bits))
    print(f"INT{bits}: sample vs exact theory {error:.3f} dB")
    assert error < 0.1
assert abs(snr_db(normal_w, magnitude_prune(normal_w, 0.5))
           - pruning_snr_db(stats.norm(), 0.5)) < 0.1

# %% [raw]
# # BEGIN QUESTION
# name: exercise_4

# %% [markdown]
# **Exercise 4.** Write `my_quantize_then_prune(w, bits, sparsity)`: quantize `w` at the MSE
# scale of the whole tensor (`quantize(w, bits, mse_scale(w, bits))`), then set to zero the
# $\mathrm{round}(c\,n)$ quantized weights of smallest $|q|$, breaking ties between equal $|q|$
# by the original magnitude $|w|$ (smaller first), and remaining ties by position. Return the
# pruned quantized tensor, of `w`'s shape. The check's tensor has many equal codes: a tie-break
# by position alone prunes other weights and fails.
#
# *Hint: `np.lexsort((secondary, primary))` sorts by its **last** key first, stably.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_quantize_then_prune(w: np.ndarray, bits: int, sparsity: float) -> np.ndarray:
    """Quantize w at its MSE scale, then drop the smallest codes (ties: smallest |w| first)."""
    # BEGIN SOLUTION
    q = quantize(w, bits, mse_scale(w, bits))
    drop = round(sparsity * w.size)
    ranking = np.lexsort((np.abs(w).ravel(), np.abs(q).ravel()))
    pruned = q.flatten()
    pruned[ranking[:drop]] = 0.0
    return pruned.reshape(w.shape)
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_quantize_then_prune(my_quantize_then_prune):
    import numpy as np
    from pvq.combine import compress
    from pvq.exercises import check_function
    ties = np.array([[0.9, 0.31, -0.29, -0.05], [0.6, -0.33, 0.02, -1.0],
                     [0.27, 0.12, -0.35, 0.45]])
    check_function("Exercise 4", my_quantize_then_prune,
                   lambda w, b, c: compress(w, bits=b, sparsity=c,
                                            order="quantize-then-prune").w_hat,
                   [(ties, 2, 0.5), (ties, 3, 0.5), (ties, 2, 0.25), (ties.ravel(), 3, 0.75)])


test_quantize_then_prune(my_quantize_then_prune)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# The two orders on the normal tensor and on the MiniLM layer, at 50 % sparsity and several
# code widths, against each method alone (`order_table`):

# %%
def order_table(w, sparsity=0.5, bits=(2, 3, 4, 6, 8)):
    """SNR (dB) of quantization alone, pruning alone and both orders, at one sparsity."""
    rows = {b: {"quantization alone": snr_db(w, combine.compress(w, bits=b).w_hat),
                **{order: snr_db(w, combine.compress(w, bits=b, sparsity=sparsity,
                                                     order=order).w_hat)
                   for order in combine.ORDERS}} for b in bits}
    table = pd.DataFrame(rows).T.rename_axis("bits")
    table["FP16 pruning alone"] = snr_db(w, magnitude_prune(w, sparsity))
    table["PtQ - QtP"] = table["prune-then-quantize"] - table["quantize-then-prune"]
    return table

# %% [raw]
# # BEGIN QUESTION
# name: exercise_5

# %% [markdown]
# **Exercise 5.** *Predict, then run.* 2-bit codes on half the weights of the normal tensor:
# which order keeps more of the signal (a higher SNR), `"prune-then-quantize"`,
# `"quantize-then-prune"`, or `"the same"` (within 0.01 dB)? Think about which weights each
# scale is fitted to. Set `predicted_order` *before* you run the next cell.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
predicted_order = "prune-then-quantize"  # SOLUTION

# %% [raw]
# # END SOLUTION

# %%
orders = {"normal": order_table(normal_w), "MiniLM blocks.1.mlp.fc2": order_table(w)}
for title, table in orders.items():
    print(f"{title}: SNR (dB) at 50 % sparsity\n{table.round(2).to_string()}\n")
    assert (table["PtQ - QtP"] >= -1e-9).all() and table["PtQ - QtP"].max() < 0.5
    assert (table["prune-then-quantize"] <= table["FP16 pruning alone"]).all()

# %% [raw]
# # BEGIN TESTS

# %%
def test_order_prediction(predicted_order, normal_w):
    from pvq.combine import ORDERS, compress
    from pvq.exercises import check_choice
    from pvq.metrics import snr_db
    snr = {order: snr_db(normal_w, compress(normal_w, bits=2, sparsity=0.5, order=order).w_hat)
           for order in ORDERS}
    gap = snr["prune-then-quantize"] - snr["quantize-then-prune"]
    correct = "the same" if abs(gap) < 0.01 else max(snr, key=snr.get)
    check_choice("Exercise 5", predicted_order, correct, [*ORDERS, "the same"])


test_order_prediction(predicted_order, normal_w)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
same_mask = all((combine.compress(x, bits=b, sparsity=0.5, order=combine.ORDERS[0]).mask
                 == combine.compress(x, bits=b, sparsity=0.5, order=combine.ORDERS[1]).mask).all()
                for x in (normal_w, w) for b in (2, 3, 4, 6, 8))
print(f"both orders prune the same weights in every case of both tables: {same_mask}")
assert same_mask

# %% [markdown]
# - **Both orders prune the same weights.** Below the clipping level a larger $|w|$ never gets a
#   smaller code, so ranking codes first and original magnitudes among equal codes is ranking
#   $|w|$: the mask is the magnitude mask either way (it could differ only if a clipped weight
#   were pruned). What differs is the scale.
# - **Prune first, then quantize, for the weight error.** Quantize-then-prune spends its grid on
#   the whole distribution, including the small weights that are about to be zeroed; prune-then-
#   quantize fits it to the kept weights, and for a given mask that scale minimizes the total
#   error. So it can only win here, but by little: the difference column of the table is a few
#   tenths of a dB at most, because the small weights barely move the MSE scale.
# - **The weight errors add.** At 8 bits the combination keeps within a fraction of a dB of FP16
#   pruning on the normal: the 8-bit rounding of the kept weights is tiny next to what pruning
#   removed. The outlier-heavy MiniLM layer loses a little more, because its 8-bit grid must
#   stretch to cover the outliers.
#
# How much of the combined error does each part bring? `combine.error_split` splits
# $w - \hat w = e_p + e_r$, with $e_p$ the pruned weights and $e_r$ the rounding error of the kept
# ones. For the weight error the two sit on disjoint weights, so $\langle e_p, e_r \rangle = 0$
# and the shares add to one exactly:

# %%
def split_table(w, X=None, bits=(2, 4, 8), sparsity=0.5):
    """Shares of pruning, rounding and their cross term in the squared error, per bit-width."""
    rows = {f"INT{b}": combine.error_split(w, combine.compress(w, bits=b, sparsity=sparsity), X)
            for b in bits}
    table = pd.DataFrame(rows).T
    return table[["pruning", "rounding", "cross"]].div(table["total"], axis=0)

# %%
weight_split = split_table(normal_w)
print("normal, 50 % pruned: shares of the weight error ||w - w_hat||²")
print(weight_split.round(3).to_string())
assert (weight_split["cross"] == 0).all()
assert weight_split.loc["INT8", "rounding"] < 0.05 and weight_split.loc["INT2", "rounding"] > 0.5

# %% [markdown]
# At 8 bits rounding adds almost nothing to pruning's error; at 2 bits it brings more than half.
#
# **The output error has a cross term.** Notebook 4 taught that what a layer must preserve is its
# output $X w^\top$ on real inputs, and the squared output error is
# $\|(e_p + e_r) X^\top\|^2$. It splits into
#
# $$\|(e_p + e_r) X^\top\|^2 = \|e_p X^\top\|^2 + \|e_r X^\top\|^2
#   + 2 \langle e_p X^\top, e_r X^\top \rangle:$$
#
# the errors sit on different weights, but when inputs are correlated the outputs they disturb
# overlap, and the cross term is not zero. The MiniLM layer with its real inputs $X$, same split:

# %%
output_split = pd.concat({"weight error": split_table(w),
                          "output error": split_table(w, layer.X)}, axis=1)
print("MiniLM blocks.1.mlp.fc2, 50 % pruned: shares of the squared error")
print(output_split.round(4).to_string())
assert (output_split[("weight error", "cross")] == 0).all()
assert (output_split[("output error", "cross")].abs() > 1e-4).all()
assert (output_split[("output error", "pruning")] < output_split[("weight error", "pruning")]).all()
assert (output_split[("output error", "rounding")] > 0.5).all()

# %% [markdown]
# Two lessons. The weight-error split is an identity: it holds for any tensor, any inputs,
# because pruning and rounding touch disjoint weights. The output-error split holds only when
# the inputs are uncorrelated with equal energy ($X^\top X$ proportional to the identity, as the
# weight error silently assumes); here the cross term is small but not zero. And the shares move
# far more than the cross term: weighted by the inputs, rounding dominates the output error at
# every bit-width, because rounding's error includes the clipping of the largest weights, and a
# clipped weight that meets an input feature of large energy disturbs every output it feeds. At
# 8 bits a single clipped weight does most of it:

# %%
int8 = combine.compress(w, bits=8, sparsity=0.5)
clipped = int8.mask & (np.abs(w - int8.w_hat) > int8.scale / 2)
feature_energy = np.sum(layer.X**2, axis=0)
rank = int(np.sum(feature_energy > feature_energy[np.nonzero(clipped)[1]].max()))
share = np.sum((np.where(clipped, w - int8.w_hat, 0) @ layer.X.T) ** 2) / combine.error_split(
    w, int8, layer.X)["rounding"]
print(f"INT8: {clipped.sum()} clipped weight(s), in the input feature of energy rank {rank} "
      f"(0 = largest); share of rounding's output error {share:.3f}")
assert clipped.sum() == 1 and rank == 0 and share > 0.9

# %% [markdown]
# So *"pruning followed by quantization degrades performance"* is true only in the sense that
# the second error adds to the first, exactly for the weights and nearly for the outputs. Which
# error dominates the output depends on where the inputs put their energy, as notebook 4 showed.
# What matters next is the storage each pair buys.

# %% [markdown]
# ## 3. The storage-vs-SNR frontier
# `combine.frontier` runs every method at every level: quantization alone at 2, 3, 4, 6 and 8
# bits; FP16 pruning; and both orders of $b$-bit codes pruned to sparsity $c$. Each pruned format
# is costed with a bitmask and with CSR, for this tensor's shape and with every overhead:
# what a file would really hold, not the large-tensor approximation.

# %% [raw]
# # BEGIN QUESTION
# name: exercise_6

# %% [markdown]
# **Exercise 6.** Work out the exact storage cost of the combination. Write
# `my_bits_per_weight(shape, bits, sparsity)`: the bits per weight of a tensor of `shape` (any
# number of dimensions, $n$ weights) pruned by magnitude to sparsity $c$, so that
# $k = n - \mathrm{round}(c\,n)$ weights are kept, and stored as three arrays: the bitmask of
# Exercise 2, the $k$ kept `bits`-bit codes packed end to end, and one FP32 scale. A file holds
# whole bytes, so each array is rounded up to a whole number of bytes. The check compares your
# cost with `compression.encoded_bits_per_weight` on small shapes, where the rounding and the
# scale matter, and on the MiniLM layer's shape, where they hardly do.
#
# *Hint: count each array's bytes first; bits per weight are then $8 \times$ bytes$/\,n$.*

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_bits_per_weight(shape: tuple[int, ...], bits: int, sparsity: float) -> float:
    """Bits per weight of b-bit codes at a sparsity, with a bitmask and an FP32 scale."""
    # BEGIN SOLUTION
    n = math.prod(shape)
    kept = n - round(sparsity * n)
    stored_bytes = math.ceil(n / 8) + math.ceil(kept * bits / 8) + 4
    return 8 * stored_bytes / n
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_bits_per_weight(my_bits_per_weight):
    from pvq.compression import encoded_bits_per_weight
    from pvq.exercises import check_function
    cases = [((3, 5), 4, 0.5), ((6, 6), 3, 0.25), ((8, 2, 3, 3), 2, 0.875),
             ((384, 1536), 4, 0.5)]
    check_function("Exercise 6", my_bits_per_weight,
                   lambda shape, b, c: encoded_bits_per_weight(shape, bits=b, sparsity=c,
                                                                encoding="bitmask"), cases)


test_bits_per_weight(my_bits_per_weight)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %% [markdown]
# Written out, $b$-bit codes on $k$ of $n$ weights with a bitmask cost
#
# $$\text{bits per weight} = \frac{8}{n}\Big(\big\lceil n/8 \big\rceil
#   + \big\lceil k b / 8 \big\rceil + 4\Big),$$
#
# the mask, the packed codes and the FP32 scale: a little above the large-tensor cost
# $(1 - c)\,b + 1$.
#
# Quantization does not stop at 2 bits. The course's $b$-bit grid has no useful 1-bit member
# (`quantize(w, 1, s)` has the levels $\{-s, 0\}$), so `combine.low_bit_rows` adds the two
# classic grids below it: **binary** codes $s \cdot \mathrm{sign}(w)$ at
# $s = \overline{|w|}$ (the mean magnitude), their MSE optimum, 1 bit per weight (BinaryConnect);
# and **ternary** codes $\{-s, 0, s\}$ (`quantize(w, 2, s, symmetric=True)`) at their exact MSE
# scale `pvq.quantize.ternary_scale`, stored as 2-bit codes (Ternary Weight Networks). Three
# levels carry $\log_2 3 \approx 1.58$ bits of information, so a ternary code packed 5 to a
# byte ($3^5 = 243 \le 256$) needs 1.6 bits; an entropy coder needs less (below). A point is
# **Pareto-optimal** if no other point has at most its bits per weight and at least its SNR.

# %%
LEVELS = {"bits": (2, 3, 4, 6, 8), "sparsities": (0.25, 0.5, 0.75, 0.875, 0.95)}
NORMAL, MINILM = "normal (65,536 samples)", "MiniLM blocks.1.mlp.fc2"

# the two tensors' frontiers (binary and ternary rows included) on both cores (pvq.parallel)
frontiers = dict(zip([NORMAL, MINILM], parallel_map(
    partial(combine.frontier, low_bit=True, **LEVELS), [normal_w, w])))

# %% [raw]
# # BEGIN QUESTION
# name: exercise_7

# %% [markdown]
# **Exercise 7.** Find the Pareto-optimal points yourself. Write `my_pareto(cost, quality)`:
# for two equally long arrays, a boolean array that is True for each point $i$ that no other
# point $j$ *beats*, where $j$ beats $i$ if $\text{cost}_j \le \text{cost}_i$ and
# $\text{quality}_j \ge \text{quality}_i$ with at least one of the two strict. Of several
# identical points only the first counts as optimal. The check compares your answer with
# `combine.pareto_optimal` on a few small lists, ties included.

# %% [raw]
# # BEGIN SOLUTION

# %% tags=["solution"]
def my_pareto(cost: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """True for each point that no other point beats (of identical points, the first)."""
    # BEGIN SOLUTION
    cost, quality = np.asarray(cost, dtype=float), np.asarray(quality, dtype=float)
    optimal = np.zeros(cost.size, dtype=bool)
    for i in range(cost.size):
        no_worse = (cost <= cost[i]) & (quality >= quality[i])
        better = (cost < cost[i]) | (quality > quality[i])
        twin_before = ((cost == cost[i]) & (quality == quality[i]))[:i].any()
        optimal[i] = not (no_worse & better).any() and not twin_before
    return optimal
    # END SOLUTION


# %% [raw]
# # END SOLUTION

# %% [raw]
# # BEGIN TESTS

# %%
def test_pareto(my_pareto):
    import numpy as np
    from pvq.combine import pareto_optimal
    from pvq.exercises import check_function
    cost = np.array([4.0, 3.0, 2.0, 2.0, 1.0, 5.0, 3.0])
    quality = np.array([12.0, 11.0, 9.0, 10.0, 5.0, 12.0, 11.0])
    check_function("Exercise 7", my_pareto, pareto_optimal,
                   [(cost, quality), (cost[::-1], quality[::-1]), (cost[:3], -quality[:3]),
                    (np.array([1.0, 2.0, 3.0]), np.array([9.0, 8.0, 7.0]))])


test_pareto(my_pareto)

# %% [raw]
# # END TESTS

# %% [raw]
# # END QUESTION

# %%
MARKERS = {"quantization": "s", "pruning": "^", "prune-then-quantize": "o",
           "quantize-then-prune": "D", "binary": "v", "ternary": "P"}
COLOR = {"quantization": COLORS["quantization"], "pruning": COLORS["pruning"],
         "prune-then-quantize": COLORS["both"], "quantize-then-prune": COLORS["data"],
         "binary": COLORS["quantization"], "ternary": COLORS["quantization"]}

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for ax, (title, table) in zip(axes, frontiers.items()):
    for (method, encoding), part in table.groupby(["method", "encoding"], sort=False):
        ax.scatter(part["bits_per_weight"], part["snr_db"], marker=MARKERS[method], s=20,
                   color="none" if encoding == "csr" else COLOR[method],
                   edgecolors=COLOR[method], label=f"{method} ({encoding})")
    front = table[table["pareto"]].sort_values("bits_per_weight")
    ax.step(front["bits_per_weight"], front["snr_db"], where="post", color="k", lw=0.8,
            label="Pareto front")
    ax.set(title=title, xlabel="bits per weight (all overheads)", xlim=(0, 14))
axes[0].set_ylabel("SNR (dB)")
axes[1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # hides no data
plt.show()

# %% [markdown]
# *Takeaway: dense quantization is on the front at every bit-width, and so are binary codes at
# 1 bit per weight; pure FP16 pruning and quantize-then-prune never are (except where the grid
# stops at 8 bits); below 2 bits per weight binary codes and pruned-and-quantized formats share
# the front.*
#
# The Pareto-optimal points, cheapest first:

# %%
def print_front(title, table, cost="bits_per_weight", decimals=2):
    """The Pareto-optimal rows of one frontier table, cheapest first."""
    front = table[table["pareto"]].sort_values(cost)
    print(title)
    digits = {"sparsity": 4, "snr_db": 2} | {column: decimals for column in front
                                             if column.endswith("bits_per_weight")}
    print(front.drop(columns="pareto").round(digits).to_string(index=False), end="\n\n")
    return front


for title, table in frontiers.items():
    print_front(title, table)

# %%
for table in frontiers.values():
    front = table[table["pareto"]]
    assert set(front.loc[front["method"] == "quantization", "value_bits"]) == {2, 3, 4, 6, 8}
    assert "quantize-then-prune" not in set(front["method"])
    assert (front.loc[front["encoding"] == "csr", "sparsity"] >= 0.95).all()
    assert set(front.loc[front["bits_per_weight"] < 2, "method"]) == {"binary",
                                                                       "prune-then-quantize"}
    assert "ternary" not in set(front["method"])  # 2-bit codes: INT2 has one level more
assert "pruning" not in set(frontiers[NORMAL].query("pareto")["method"])

# %% [markdown]
# Reading the two fronts:
#
# - **At 2 bits per weight and above, quantization carries the front.** The combinations on
#   it sit where the dense grid has no point (at 2.5 bits, for instance, 3-bit codes on half
#   the weights; at 5.5 bits 6-bit codes on three quarters); mixing bit-widths across tensors
#   is the other way to fill those gaps.
# - **Below 2 bits per weight, quantization goes on with binary codes**, and pruning with
#   quantized values: binary codes (1 bit) are on the front, and pruned formats fill the gaps
#   between 1 and 2 bits and go below 1 bit; CSR joins only at 95 % sparsity, where its indices
#   finally cost less than a mask. Ternary codes, stored as 2-bit codes, lose to INT2 at the same
#   storage; they come into their own with entropy coding, next.
# - **FP16 pruning is nowhere on the normal tensor's front.** On the MiniLM layer it ends the
#   front: at 25 % sparsity FP16 values (13 bits per weight) keep 22.38 dB, while the same mask
#   with 8-bit values (7 bits per weight) keeps 17.88 dB and dense INT8 19.48 dB. Our grid has
#   nothing between 8 and 16 bits.
#
# How close do the combinations come to a dense grid at its own storage? At exactly 3 bits per
# weight with the mask (`combine.matched_formats(3)`), each code width against INT3 on the
# MiniLM layer:

# %%
int3 = snr_db(w, combine.compress(w, bits=3).w_hat)
for bits, sparsity in combine.matched_formats(3, bits=range(2, 9)):
    if bits is not None and sparsity > 0:
        gap = snr_db(w, combine.compress(w, bits=bits, sparsity=sparsity).w_hat) - int3
        print(f"INT{bits}, {sparsity:.1%} pruned: {gap:+.2f} dB against INT3 ({int3:.2f} dB)")
        assert gap < 0

# %% [markdown]
# Every pair loses, the nearest by hundredths of a dB.
#
# ### Entropy coding moves the points
# Everything so far used **fixed-length** codes: $b$ bits for every code, however unequal their
# frequencies, and one mask bit per weight whatever the sparsity. On a bell-shaped tensor the
# codes near zero are far more frequent than the extreme ones, and a mask at 87.5 % sparsity is
# mostly zeros. An entropy coder (Huffman coding, arithmetic coding) spends about $-\log_2 p$
# bits on a symbol of frequency $p$; on average the empirical entropy
# $H = -\sum_i p_i \log_2 p_i$. Costed that way (`compression.entropy_coded_bits_per_weight`), a
# format with kept fraction $d$ of $n$ weights needs
#
# $$H(d) + d\,H(\text{kept codes}) + 32/n \ \text{bits per weight}, \qquad
#   H(d) = -d \log_2 d - (1-d) \log_2 (1-d),$$
#
# the entropy of the mask, of the codes, and the FP32 scale. This is the **Shannon bound**, which
# an arithmetic coder approaches on long sequences; it is a count of bits, not of a file's bytes.
# For a measured point, `compression.lzma_payload_bytes` compresses the stored arrays (packed
# codes, packed mask) with the LZMA coder of Python's standard library and counts its bytes.
#
# Pruning, quantizing the kept weights and entropy-coding both is the recipe of **Deep
# Compression** (Han, Mao and Dally, ICLR 2016, arXiv 1510.00149: pruning, trained quantization
# with shared values, and Huffman coding), the classic reference for combining the two methods.
# `combine.entropy_frontier` costs binary, ternary, quantization alone and prune-then-quantize
# at the Shannon bound:

# %%
ENTROPY_LEVELS = {"bits": (2, 3, 4), "sparsities": (0.5, 0.75, 0.875, 0.95)}  # 8 bits: below
entropy_fronts = {NORMAL: combine.entropy_frontier(normal_w, **ENTROPY_LEVELS),
                  MINILM: combine.entropy_frontier(w, **ENTROPY_LEVELS)}

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
for ax, (title, table) in zip(axes, entropy_fronts.items()):
    for method, part in table.groupby("method", sort=False):
        ax.scatter(part["fixed_bits_per_weight"], part["snr_db"], marker=MARKERS[method], s=20,
                   color="none", edgecolors=COLOR[method], alpha=0.6)
        ax.scatter(part["entropy_bits_per_weight"], part["snr_db"], marker=MARKERS[method],
                   s=20, color=COLOR[method], label=method)
    fixed = table.assign(pareto=combine.pareto_optimal(table["fixed_bits_per_weight"],
                                                       table["snr_db"]))
    for column, front, style in (("fixed_bits_per_weight", fixed, ":"),
                                 ("entropy_bits_per_weight", table, "-")):
        front = front[front["pareto"]].sort_values(column)
        ax.step(front[column], front["snr_db"], style, where="post", color="k", lw=0.8,
                label="front, " + ("fixed-length (hollow)" if style == ":" else "entropy-coded"))
    ax.set(title=title, xlabel="bits per weight (all overheads)", xlim=(0, 5))
axes[0].set_ylabel("SNR (dB)")
axes[1].legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # hides no data
plt.show()

# %% [markdown]
# *Takeaway: entropy coding moves every point but the binary codes (which stay at 1 bit per
# weight) to the left (filled against hollow markers), the pruned formats most, since their
# mask costs $H(d) < 1$ bit; the entropy-coded front below
# 2 bits per weight is mostly pruned-and-quantized formats, while quantization alone stays on it
# at 2, 3 and 4 bits.*

# %%
for title, table in entropy_fronts.items():
    front = print_front(f"{title}: entropy-coded Pareto front (Shannon bound)", table,
                        cost="entropy_bits_per_weight", decimals=3)
    assert set(front.loc[front["method"] == "quantization", "value_bits"]) == {2, 3, 4}
    assert (table["entropy_bits_per_weight"] < table["fixed_bits_per_weight"] + 1e-9).all()
    saving = (table["fixed_bits_per_weight"] - table["entropy_bits_per_weight"]).groupby(
        table["method"]).mean()
    assert saving["prune-then-quantize"] > saving["quantization"]
    below_two = front[front["entropy_bits_per_weight"] < 2]
    assert (below_two["method"] == "prune-then-quantize").mean() > 0.5
normal_methods = set(entropy_fronts[NORMAL].query("pareto")["method"])
minilm_methods = set(entropy_fronts[MINILM].query("pareto")["method"])
assert {"binary", "ternary"} <= normal_methods and not {"binary", "ternary"} & minilm_methods

# %% [markdown]
# How close does a real coder come to the bound? LZMA on the stored arrays of a few formats of
# the MiniLM layer:

# %%
def coded_sizes(w, bits, sparsity):
    """Fixed-length, Shannon-bound and LZMA-measured bits per weight of one format."""
    result = combine.compress(w, bits=bits, sparsity=sparsity)
    mask = result.mask if sparsity else None
    stored = compression.encode(result.w_hat, mask=mask, bits=bits, scale=result.scale,
                                encoding="bitmask" if sparsity else "dense")
    codes = np.round(result.w_hat / result.scale)
    return {"SNR (dB)": snr_db(w, result.w_hat),
            "fixed-length": 8 * compression.saved_payload_bytes(stored) / w.size,
            "Shannon bound": compression.entropy_coded_bits_per_weight(codes, mask),
            "LZMA (measured)": 8 * compression.lzma_payload_bytes(stored) / w.size}

# %%
CODED = {"INT2": (2, 0.0), "INT4": (4, 0.0), "INT8": (8, 0.0), "INT2, 75 % pruned": (2, 0.75),
         "INT3, 87.5 % pruned": (3, 0.875)}
coded = pd.DataFrame({name: coded_sizes(w, *case) for name, case in CODED.items()}).T
print("MiniLM blocks.1.mlp.fc2: bits per weight")
print(coded.round(3).to_string())
assert (coded["LZMA (measured)"] < coded["fixed-length"]).all()
assert (coded["Shannon bound"] < coded["fixed-length"]).all()
assert (coded["LZMA (measured)"] - coded["Shannon bound"]).abs().max() < 0.1
assert coded.loc["INT8", "Shannon bound"] < 0.6 * 8

# %% [markdown]
# - **The bound is reachable.** LZMA, a general-purpose coder that knows nothing about weights,
#   lands within a tenth of a bit per weight of the Shannon bound on every format of the table;
#   a coder built for the job (arithmetic coding of the codes with their measured frequencies)
#   would close most of the rest.
# - **Heavy tails compress well.** The MiniLM layer's MSE grid stretches to its outliers, so most
#   of its 8-bit codes sit near zero: entropy-coded, INT8 needs less than 60 % of its 8 bits.
# - **Ternary is pruning with 1-bit values.** A ternary code zeroes the weights below half its
#   scale and keeps the sign of the rest, with one shared magnitude. Entropy-coded, on the normal
#   it joins the front between binary codes and INT2; on the MiniLM layer pruned formats beat
#   it.
# - **The comparison depends on the coding.** With fixed-length codes (the paper's setting, and
#   what simple hardware reads) quantization holds the front from 2 bits up; with entropy coding
#   (what storage and transmission can use, as in Deep Compression) pruned formats gain ground at
#   low storage. Say which one you compare.
#
# ### Play with it
# Choose the code width, the sparsity (0 is quantization alone) and the order for the MiniLM
# layer. Left: how many weights fall in each narrow bin before ($w$) and after ($\hat w$), on a
# log axis so that both the spike of pruned zeros and the grid points of the kept codes show.
# Right: the format's bits per weight (bitmask if pruned) and SNR, a star among the formats of
# the frontier above. Below is the default, 3-bit codes on half the weights; in a running
# notebook, move a control and the figure under it redraws. Try to beat INT3 at 3 bits per
# weight or fewer (4 bits at 50 %, 3 bits at 35 %), go below 2 bits per weight with a pruned
# format and compare it with the binary codes at 1 bit, and switch the order.

# %%
def on_frontier(ax: plt.Axes, table: pd.DataFrame, cost: float, snr: float) -> None:
    """The frontier's formats in grey, its Pareto front, and one more format as a star."""
    ax.scatter(table["bits_per_weight"], table["snr_db"], s=12, color=COLORS["data"],
               alpha=0.5, label="formats of the frontier above")
    front = table[table["pareto"]].sort_values("bits_per_weight")
    ax.step(front["bits_per_weight"], front["snr_db"], where="post", color="k", lw=0.8,
            label="Pareto front")
    ax.plot(cost, snr, "*", ms=16, color=COLORS["both"], label="your format")
    ax.set(xlabel="bits per weight (all overheads)", ylabel="SNR (dB)", xlim=(0, 14))
    ax.legend(loc="upper left")

# %%
# 400 bins over +-8 standard deviations: each narrower than the finest (8-bit) grid step
W_COUNTS, EDGES = np.histogram(w, bins=400, range=(-8 * w.std(), 8 * w.std()))


def histograms(ax: plt.Axes, w_hat: np.ndarray) -> None:
    """Weights per bin before (w) and after (w_hat), on a log axis."""
    stored = np.histogram(w_hat, EDGES)[0]
    ax.stairs(W_COUNTS, EDGES, color=COLORS["data"], label="$w$ (original)")
    ax.stairs(stored, EDGES, color=COLORS["both"], label=r"$\hat w$ (stored)")
    ax.set(yscale="log", xlabel="weight value (within ±8 standard deviations)",
           ylabel="weights per bin (log scale)",
           ylim=(0.5, 100 * max(W_COUNTS.max(), stored.max())))  # room above the data
    ax.legend(loc="upper right")

# %%
def draw(bits: int = 3, sparsity: float = 0.5, order: str = combine.ORDERS[0]) -> None:
    """The format's histogram (left) and its place on the MiniLM frontier (right)."""
    w_hat = combine.compress(w, bits=bits, sparsity=sparsity, order=order).w_hat
    cost = compression.encoded_bits_per_weight(
        w.shape, bits=bits, sparsity=sparsity, encoding="bitmask" if sparsity else "dense")
    snr = snr_db(w, w_hat)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    histograms(left, w_hat)
    on_frontier(right, frontiers[MINILM], cost, snr)
    name = f"INT{bits}, {sparsity:.0%} pruned, {order}" if sparsity else f"INT{bits} alone"
    fig.suptitle(f"{name}: SNR {snr:.2f} dB at {cost:.2f} bits per weight (all overheads)")
    plt.show()

# %%
panel = figure_with_sliders(
    draw, bits=IntSlider(value=3, min=2, max=8, description="bits"),
    sparsity=FloatSlider(value=0.5, min=0.0, max=0.95, step=0.05, description="sparsity"),
    order=ToggleButtons(options=combine.ORDERS, description="order",
                        style={"button_width": "auto"}))

# %% [markdown]
# *Takeaway: the default star, 3-bit codes on half the weights (prune-then-quantize), sits on
# the Pareto front at 2.5 bits per weight, where the dense grid has no point; the other formats
# named above are for you to try (the printout before the entropy section already compared each
# pair at 3 bits per weight with INT3).*
#
# ## 4. A trained network at matched storage
# Now accuracy, on the task of notebook 5 that leaves room to lose some: `digits_cnn_small` (`pvq.zoo.pretrained`, 6,152 weights in its Conv2d and
# Linear layers) on the distorted digits (`pvq.data.distorted`: every image a randomly rotated,
# scaled, shifted and noisy copy of a digit; 3,600 test images made from the 360 held-out test
# originals only), where notebook 5 showed the small network well below the clean digits' ceiling,
# so that compression has room to show. The 10 copies of one original are not independent
# examples, so every interval below resamples *originals* (`pvq.stats.paired_bootstrap(...,
# groups=originals)`), and every difference between two models is measured *paired*, on the same
# test images.

# %%
baseline, loaders = pretrained("digits_cnn_small"), baseline_loaders("digits_cnn_small")
originals = distorted_digits_split().test_source  # the original each test image was made from


def in_points(result):
    """An accuracy or a paired gap (`pvq.stats.PairedGap`) with its 95 % interval, in points."""
    return pd.Series({"%": 100 * result.gap, "low": 100 * result.low, "high": 100 * result.high})

# %%
# NBVAL_IGNORE_OUTPUT
fp32_correct = per_example_correct(baseline, loaders.test)
fp32 = in_points(accuracy_interval(fp32_correct, groups=originals))
weights = sum(layer.weight.numel() for layer in compressible_layers(baseline).values())
print(f"{weights:,} compressible weights; FP32 test accuracy {fp32['%']:.1f} % (95 % interval "
      f"over originals {fp32['low']:.1f} to {fp32['high']:.1f}) on {fp32_correct.size:,} images")
assert weights == 6152 and fp32_correct.size == 3600
assert 85 < fp32["%"] < 95

# %% [markdown]
# For a budget of $B$ bits per weight with a bitmask, `combine.matched_formats(B)` lists
# quantization alone (INT-$B$), FP16 pruning to sparsity $1 - (B-1)/16$, and $b$-bit codes
# pruned to $1 - (B-1)/b$, every overhead counted. **Post-training** first: compress every
# layer in each order, re-estimate BatchNorm (notebook 5), no gradient step.

# %%
def describe(bits, sparsity):
    values = "FP16" if bits is None else f"INT{bits}"
    return values if sparsity == 0 else f"{values}, {100 * sparsity:.4g} % pruned"


CASES = [(budget, bits, sparsity, order) for budget in (4, 3, 2)
         for bits, sparsity in combine.matched_formats(budget)
         for order in (combine.ORDERS if bits and sparsity else [None])]

# %%
# every case from the shipped weights, on both cores (pvq.parallel)
results = parallel_map(combine.post_training_test_correct,
                       [(bits, sparsity, order or combine.ORDERS[0]) for _, bits, sparsity, order
                        in CASES])
post = pd.DataFrame([{"budget": budget, "format": describe(bits, sparsity), "order": order or "-",
                      "bits/weight": combine.model_bits_per_weight(baseline, bits=bits,
                                                                   sparsity=sparsity), **result}
                     for (budget, bits, sparsity, order), result in zip(CASES, results)])
post["test %"] = 100 * post["correct"].map(np.mean)

# %%
# NBVAL_IGNORE_OUTPUT
print(post.drop(columns="correct").set_index(["budget", "format", "order"]).round(2).to_string())

# %%
# NBVAL_IGNORE_OUTPUT
lead = {}
for budget, group in post.groupby("budget"):
    assert (group["bits/weight"] - budget).abs().max() < 0.03  # matched, scales included
    alone = group.iloc[0]  # INT-B, quantization alone
    assert group["worst layer SNR (dB)"].max() == alone["worst layer SNR (dB)"]
    lead[budget] = alone["test %"] - group["test %"].drop(group.index[0]).max()
print("quantization alone ahead of the best other format by (points):",
      {budget: round(float(points), 2) for budget, points in lead.items()})
assert lead[4] > 1.5 and lead[3] > 5 and lead[2] > 5  # a few images flip between CPU kernels

# %% [markdown]
# Without training, quantization alone has the best worst-layer SNR (the weight SNR
# of its least accurate layer, the column printed) and the best accuracy at every budget: ahead of
# the best other format by the margins printed, asserted above one and a half points at 4 bits per
# weight and above five at 3 and 2. FP16 pruning collapses (at 2 bits per weight it must remove 15
# of every 16 weights). Between the two orders, paired on the same test images, `PtQ - QtP` is
# prune-then-quantize's accuracy minus quantize-then-prune's, in points, with its 95 % interval:

# %%
def order_gaps(frame, by):
    """Per group of `by`: prune-then-quantize minus quantize-then-prune, paired, in points."""
    rows = {}
    for key, pair in frame[frame["order"] != "-"].groupby(by, sort=False):
        correct = pair.set_index("order")["correct"]
        rows[key] = in_points(paired_bootstrap(correct[combine.ORDERS[0]],
                                               correct[combine.ORDERS[1]], groups=originals))
    return pd.DataFrame(rows).T.rename(columns={"%": "PtQ - QtP"})

# %%
# NBVAL_IGNORE_OUTPUT
post_gaps = order_gaps(post, ["budget", "format"])
print(post_gaps.round(2).to_string())

# %%
clearly_ahead = set(post_gaps.index[post_gaps["low"] > 0])
assert {(3, "INT3, 33.33 % pruned"), (3, "INT4, 50 % pruned"),
        (2, "INT2, 50 % pruned")} <= clearly_ahead
assert post_gaps.drop(index=list(clearly_ahead))["PtQ - QtP"].abs().max() < 1

# %% [markdown]
# Read the table row by row (a few test images flip between CPU kernels, so an interval that
# ends near zero can move on another machine):
#
# - **Prune-then-quantize is ahead, its interval above zero, with 2- to 4-bit codes on one
#   third to two thirds of the weights**: `INT3, 33.33 % pruned` (codes on two thirds) and
#   `INT4, 50 % pruned` at 3 bits per weight, and `INT2, 50 % pruned` at 2 (the three rows the
#   cell above asserts). Both orders prune the same weights (section 2); what differs is the
#   scale.
# - **Every other row is within a point either way** (asserted). Some of those rows may show an
#   interval just off zero on your machine, in either direction; an interval that close to zero
#   moves with the CPU's kernels, so the text draws no conclusion from it.
#
# **Trained.** The course defines the two orders by what is trained when:
#
# - **prune-then-quantize**: gradual magnitude pruning (GMP, notebook 5) of the float network,
#   then quantization-aware training (LSQ) of the pruned network with its mask fixed;
# - **quantize-then-prune**: LSQ first, then gradual pruning of the *quantized* network (LSQ
#   goes on training; the masks are chosen on the float weights beneath the quantizer, which
#   rank like the codes with ties broken by the original magnitude);
# - and, for comparison, **quantization-aware pruning** (QAP), both at once: every layer
#   computes $Q_s(m \odot w)$ while the mask $m$ grows on the cubic schedule, and **LSQ alone at 3
#   bits**, quantization alone at the same storage.
#
# One format for all: 4-bit codes on half the weights, 3 bits per weight with the mask, like
# INT3, and 5 seeds per method. The protocol is notebook 5's:
#
# - **the same training**: SGD with momentum and a cosine schedule, LSQ's step sizes by Adam at
#   the same rate, the cubic pruning schedule reaching its sparsity after three quarters of the
#   steps with masks updated every 5 steps, BatchNorm re-estimated at the end (the defaults of
#   `pvq.finetune.Budget`);
# - **the same learning-rate grids and choice**: notebook 5 searched LSQ over
#   $\{0.0003, 0.001, 0.003, 0.01\}$ and GMP over $\{0.03, 0.1, 0.3, 1\}$
#   (`pvq.finetune.LEARNING_RATE_GRIDS`); every combination here has a quantization part and a
#   pruning part, so every method (LSQ INT3 included) searches the union of the two grids,
#   eight rates a factor of about 3 apart (`combine.TRAINED_GRID`). The pick is the rate with
#   the best calibration accuracy, mean of seeds 0 and 1 (`pvq.finetune.learning_rate_choice`,
#   as in notebook 5); the test split plays no part.
#
# Two things differ, and why:
#
# - **The budget is 2 epochs per method, not 1.** An order trains in two stages, and a stage is
#   at least one whole epoch; so that each method gets the same budget, QAP and LSQ INT3 get 2
#   epochs too. One rate serves both stages of an order.
# - **The grid search runs outside the notebook.** Four methods, eight rates and two seeds are
#   64 trained models, several minutes on two cores, beyond this notebook's time. It runs in
#   `scripts/bench_combine.py` (BENCHMARKS.md, "Combining both"), whose picks are recorded in
#   `combine.TRAINED_LEARNING_RATES`; the script checks that it picks those rates again, and the
#   cell below that each lies inside the grid, not on its edge.

# %%
TRAINED, LR, GRID = combine.TRAINED_FORMATS, combine.TRAINED_LEARNING_RATES, combine.TRAINED_GRID
print(f"grid: {GRID}")
print(f"rates chosen on calibration accuracy (scripts/bench_combine.py): {LR}")
assert set(GRID) == {lr for grid in LEARNING_RATE_GRIDS.values() for lr in grid}
assert all(lr in GRID and GRID[0] < lr < GRID[-1] for lr in LR.values())
SEEDS = range(5)
JOBS = [(name, seed) for name in TRAINED for seed in SEEDS]

# %% [markdown]
# Twenty trained models, each a function of its method, learning rate and seed alone
# (`combine.trained_test_correct` starts from the shipped weights), so they run on both cores
# (`pvq.parallel.parallel_map`, two processes, each computing what one process alone would).

# %%
correct = parallel_map(combine.trained_test_correct,
                       [(*TRAINED[name], LR[name], seed, combine.TRAINED_EPOCHS)
                        for name, seed in JOBS])
tuned = {name: np.stack([c for (n, _), c in zip(JOBS, correct) if n == name]) for name in TRAINED}
assert all(combine.model_bits_per_weight(baseline, bits=b, sparsity=c) - 3 < 0.03
           for _, b, c in TRAINED.values())

# %%
# NBVAL_IGNORE_OUTPUT
per_seed = pd.DataFrame({name: 100 * c.mean(axis=1) for name, c in tuned.items()}).T
summary = pd.DataFrame({"lr": LR, "test % (mean of seeds)": per_seed.mean(axis=1),
                        "std over seeds": per_seed.std(axis=1, ddof=1),
                        "seeds": per_seed.count(axis=1)})
print(summary.round(2).to_string(), end="\n\n")
tuned_gaps = pd.DataFrame({f"{a} - {b}": in_points(paired_bootstrap(tuned[a], tuned[b],
                                                                     groups=originals))
                           for a, b in combine.TRAINED_PAIRS}).T
tuned_gaps = tuned_gaps.rename(columns={"%": "gap (points)"})
print("paired on the same test images, seeds paired by number; 95 % bootstrap over seeds "
      "and originals")
print(tuned_gaps.round(2).to_string())

# %%
# NBVAL_IGNORE_OUTPUT
# Margins from the spread: the seeds' standard deviations are a few tenths of a point, and
# another CPU kernel moves a run about as much as another seed (notebook 5).
gap = tuned_gaps["gap (points)"]
for combination in ("QAP (both at once)", "prune-then-quantize", "quantize-then-prune"):
    assert tuned_gaps.loc[f"LSQ INT3 - {combination}", "low"] > 0
assert gap["QAP (both at once) - prune-then-quantize"] > 0.3
assert gap["QAP (both at once) - quantize-then-prune"] > 0.3
assert tuned_gaps.loc["prune-then-quantize - quantize-then-prune", "low"] > 0
assert per_seed.loc["LSQ INT3"].mean() > fp32["%"] - 2  # LSQ at 3 bits stays near FP32
pruned_half = post.set_index(["format", "order"])["test %"]
assert pruned_half[("INT4, 50 % pruned", "prune-then-quantize")] < pruned_half[("INT4", "-")] - 10

# %% [markdown]
# These runs depend on the CPU's kernels (notebook 5 explains why), so the tables are printed
# for you to read and the claims are checked with margins wider than the seeds' spread. At 3 bits
# per weight, with the same training budget:
#
# - **Quantization alone wins.** LSQ at 3 bits stays close to FP32 and is ahead of every
#   combination, each 95 % interval above zero.
# - **Of the combinations, both at once (QAP) is ahead of either order, and prune-then-quantize
#   ahead of quantize-then-prune**, its interval above zero too: the trained orders rank as the
#   post-training ones did at this format.
# - **Why this ranking?** Pruning half the weights is the step that costs accuracy (post-training,
#   4-bit codes on half the weights lose far more than 4-bit codes alone, in the table above);
#   quantization to 4 bits costs little. Quantize-then-prune prunes last: its masks reach half
#   the weights three quarters into the second stage, a quarter of an epoch before the end, so
#   the least training is left to recover. Prune-then-quantize has a quarter of its first stage
#   and all of its second left after pruning; QAP spreads the pruning over one and a half epochs,
#   in smaller steps. This reading fits the table but is not tested here (a longer second stage
#   would test it).
# - **What the intervals do not say**: this is one format, one small network and 2 epochs; the
#   paper's ImageNet networks trained for 20 epochs may rank the orders otherwise.
#
# ## 5. What the hardware makes of it: timing one Linear layer
# Storage is one saving; speed is another, and it depends on what the hardware can skip. We time
# the MiniLM layer (`hardware.linear_variants`) on a batch of 128 tokens, on **one** CPU thread:
#
# - **dense FP32** (`torch.nn.functional.linear`): the baseline;
# - **dense BF16**: the same product in bfloat16, the 16-bit format CPUs compute in (torch has
#   no fast FP16 matmul on CPU). Storage in this course is counted against FP16, so the natural
#   speed base is a 16-bit one; whether BF16 is fast depends on whether the CPU has BF16
#   arithmetic (printed below); without it torch converts to FP32 and BF16 is *slower*;
# - **INT8** (`torch.ao.quantization.quantize_dynamic`, its weight set to the course's 8-bit grid;
#   activations are quantized to 8 bits on the fly, so the product is an 8-bit by 8-bit integer
#   one, unlike the weight-only quantization of the rest of the course);
# - **CSR** at 50-99 % sparsity, on a finer grid between 50 % and 90 %: unstructured magnitude
#   pruning, `torch.sparse_csr` times dense;
# - **structured** pruning at the same parameter count: whole output rows removed (the rows of
#   smallest norm, `prune.channel_mask`), which leaves a smaller *dense* matrix.
#
# First, that every variant computes what it claims, $x W^\top$ with its own (pruned or
# quantized) weight $W$:

# %%
weight = torch.from_numpy(w).float()
variants = (hardware.linear_variants(weight) + [hardware.dense_variant(weight, torch.bfloat16)]
            + [hardware.csr_variant(weight, c) for c in (0.6, 0.7, 0.8, 0.85)])
tokens = hardware.layer_input()
for variant in variants:
    reference = torch.nn.functional.linear(tokens, variant.weight)
    rounded = variant.kind in ("int8", "bf16")  # activations rounded too
    assert snr_db(reference, variant.output(tokens).float()) > (30 if rounded else 100)
print(f"{len(variants)} variants agree with x @ weight.T "
      "(INT8 and BF16 within their activation rounding, SNR > 30 dB)")

# %%
# NBVAL_IGNORE_OUTPUT
print(f"CPU: {cpu_model()}\ntorch CPU kernels: {torch.backends.cpu.get_cpu_capability()}; "
      f"native BF16 arithmetic: {hardware.has_native_bf16()}")

# %% [markdown]
# Now the timing: `torch.utils.benchmark`, five rounds that interleave the variants (a slow
# moment of a shared machine hits all of them), blocks of at least 20 ms; per call, the median
# over all blocks with its distribution-free 95 % interval (`hardware.median_interval`, from
# order statistics), and the speed-up over dense FP32 and over dense BF16. **Everything in this
# section is measured on this machine** (and depends on what else it is doing): the cells that
# print times are excluded from the notebook's output checks (`# NBVAL_IGNORE_OUTPUT`), and the
# assertions below compare medians, not intervals.

# %%
# NBVAL_IGNORE_OUTPUT
timings = hardware.time_variants(variants, tokens, rounds=5, min_run_time=0.02)
timings["vs FP32"] = hardware.speedups(timings).to_numpy()
timings["vs BF16"] = hardware.speedups(timings, base="bf16").to_numpy()
timings["interval/median"] = (timings["ci_high_us"] - timings["ci_low_us"]) / timings["median_us"]
print(timings.sort_values(["kind", "sparsity"])[
    ["name", "median_us", "ci_low_us", "ci_high_us", "interval/median", "blocks", "vs FP32",
     "vs BF16"]].round(2).to_string(index=False))

# %% [markdown]
# The `interval/median` column says how far to trust each median. On a busy machine
# (other processes sharing the cores) the intervals can be wider than the differences between
# variants; where two variants' intervals overlap, only their medians order them, and the cell
# is worth rerunning at a quiet moment, or with more rounds. The claims below, and the
# assertions that check them, compare medians only.

# %%
fig, ax = plt.subplots()
for kind, color in (("csr", COLORS["pruning"]), ("structured", COLORS["both"])):
    part = timings[timings["kind"] == kind]
    part = part.sort_values("sparsity")
    ax.errorbar(part["sparsity"], part["median_us"], fmt="o-", color=color, capsize=3,
                yerr=[part["median_us"] - part["ci_low_us"],
                      part["ci_high_us"] - part["median_us"]],
                label=f"{kind} (median, 95 % interval)")
for kind, color in (("dense", COLORS["data"]), ("bf16", "k"), ("int8", COLORS["quantization"])):
    row = timings[timings["kind"] == kind].iloc[0]
    ax.axhspan(row["ci_low_us"], row["ci_high_us"], color=color, alpha=0.25)
    ax.axhline(row["median_us"], color=color, label=row["name"])
ax.set(yscale="log", xlabel="sparsity (fraction of weights removed)",
       ylabel="time per call (µs, log scale)",
       title=r"$384 \times 1536$ Linear, 128 tokens, 1 thread")
ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))  # hides no data
plt.show()

# %% [markdown]
# *Takeaway: by the medians of this run, unstructured sparsity (CSR) is slower than dense FP32
# until high sparsity, removing whole rows (three quarters of them, at 75 %) is faster, and INT8
# is faster with nothing removed; where the shaded and barred 95 % intervals overlap, this run
# does not order the variants.*
#
# Where exactly does CSR catch up? `hardware.interpolated_break_even` takes the last timed
# sparsity at which CSR is still slower and the next one, and interpolates the logarithm of the
# time ratio linearly between them to the sparsity where it crosses 1:

# %%
# NBVAL_IGNORE_OUTPUT
for base, name in (("dense", "FP32"), ("bf16", "BF16")):
    csr = hardware.interpolated_break_even(timings, "csr", base=base)
    where = "at or below" if csr == timings["sparsity"][timings["kind"] == "csr"].min() else "at"
    print(f"CSR as fast as dense {name} {where} {csr:.1%} sparsity")
print(f"structured rows: faster than dense FP32 at every timed sparsity (the lowest is 50 %): "
      f"{hardware.interpolated_break_even(timings, 'structured') == 0.5}")
int8_row = timings[timings["kind"] == "int8"].iloc[0]
print(f"INT8 speed-up over FP32: {int8_row['vs FP32']:.1f}x, over BF16: {int8_row['vs BF16']:.1f}x")

# %%
median = timings.set_index("name")["median_us"]
assert median["structured 75%"] < median["dense FP32"]  # a quarter of the rows
assert median["CSR 50%"] > median["dense FP32"] and median["CSR 99%"] < median["dense FP32"]
assert median["INT8 dynamic"] < median["dense FP32"]
assert 0.6 < hardware.interpolated_break_even(timings, "csr") < 0.98
if not hardware.has_native_bf16():  # BF16 is converted to FP32 inside the product
    assert median["dense BF16"] > median["dense FP32"]

# %% [markdown]
# The speed base matters. Storage was counted against FP16, but a CPU without BF16 arithmetic
# (as printed above, for the machine that ran this notebook) computes fastest in FP32: against
# the BF16 base every speed-up looks larger, by the BF16/FP32 time ratio. The fair comparison on
# such a CPU is against FP32, the fastest dense format it has; on a CPU with BF16 arithmetic
# (recent Xeons with AMX or AVX512-BF16, recent Arm cores), BF16 is the base.

# %% [markdown]
# Structured pruning is fast, but is it as good? At the same number of parameters it removes
# whole rows, including their large weights, and loses far more signal than unstructured
# pruning:

# %%
for sparsity in (0.5, 0.75):
    unstructured = snr_db(w, magnitude_prune(w, sparsity))
    structured = snr_db(w, w * channel_mask(w, sparsity))
    print(f"{sparsity:.0%}: unstructured {unstructured:.2f} dB, "
          f"structured rows {structured:.2f} dB")
    assert structured < unstructured - 3

# %% [markdown]
# ## 6. The paper's hardware points: what is measured, what is arithmetic
# The paper's discussion of hardware makes three points. Each is marked here by what backs it:
# a **count** (exact arithmetic, checked against real files), a **measurement** (timed on this
# machine) or a **formula** (a model of hardware cost, not measured by this course).
#
# **1. A mask costs at least 6.25 % over FP16 *(count)*.** Unstructured pruning must say *which*
# weights it kept. The cheapest fixed-length way is one bit per weight, $1/16$ of FP16; we
# counted it byte for byte in section 1. CSR indices cost more unless sparsity exceeds 93.75 %.
# An entropy-coded mask costs $H(1 - c)$ bits per weight, less than one bit away from 50 %
# sparsity (section 3).
#
# **2. Lower bit-widths save compute quadratically *(formula)*; unstructured sparsity saves all
# or nothing *(measured)*.** The area and energy of an integer multiplier grow roughly with the
# square of its bit-width, so a $b$-bit by $b$-bit multiply costs about $(b/16)^2$ of a 16-bit one,
# on every layer, at any density. This assumes weights **and activations** at b bits: with
# weight-only quantization, as everywhere else in this course, the multiplier still sees 16-bit
# activations, and the saving is in storage and memory traffic ($b/16$), not quadratic. Pruning
# to $1 - b/16$ skips a fraction $b/16$ of the multiplies *only* if the hardware can skip zeros;
# if it cannot, it saves nothing. The medians of our timings show both sides: INT8 (8-bit
# weights *and* activations) had a lower median than FP32 with nothing removed, while CSR had a
# higher one at 50 % sparsity and caught up only at the break-even sparsity printed above (read
# the intervals of the timing table before trusting either order). The table below is the
# formula, not a measurement:

# %%
bits = np.array([8, 6, 4, 3, 2])
compute = pd.DataFrame({"weights stored (fraction of FP16)": bits / 16,
                        "multiply cost (b/16)^2, W and A at b bits": (bits / 16) ** 2,
                        "pruning: multiplies left if zeros are skipped": bits / 16,
                        "pruning: multiplies left if they are not": 1.0},
                       index=pd.Index(bits, name="bits"))
print(compute.round(3).to_string())

# %% [markdown]
# **3. 2:4 semi-structured sparsity on GPUs *(count and measured SNR; speed not measured)*.**
# NVIDIA's sparse tensor cores (Ampere and later)
# accept one pattern: in every 4 consecutive weights of a row, 2 are zero. The hardware then skips
# half the multiplies for up to 2x math throughput, with a 2-bit position per kept value as
# metadata. It is the one pruning pattern mainstream hardware speeds up without high sparsity.
# torch supports it (`to_sparse_semi_structured`) only on CUDA GPUs, so **it is not timed
# here**: the up-to-2x is NVIDIA's figure, not ours. We can count its bytes and measure its error
# on the MiniLM layer:

# %%
SEMI = {"FP16, 2:4": (None, "2:4"), "INT8, 2:4": (8, "2:4"),
        "FP16, 50 % unstructured": (None, "bitmask"), "INT8, 50 % unstructured": (8, "bitmask"),
        "INT8 dense": (8, "dense"), "INT4 dense": (4, "dense")}

def two_four_row(bits, encoding):
    sparsity = 0.0 if encoding == "dense" else 0.5
    w_hat = (combine.semi_structured(w, bits=bits) if encoding == "2:4"
             else combine.compress(w, bits=bits, sparsity=sparsity)).w_hat
    return {"bits/weight": compression.encoded_bits_per_weight(
                w.shape, bits=bits, sparsity=sparsity, encoding=encoding),
            "SNR (dB)": snr_db(w, w_hat)}

# %%
semi = pd.DataFrame({name: two_four_row(*case) for name, case in SEMI.items()}).T
print(semi.round(2).to_string())
assert semi.loc["FP16, 2:4", "bits/weight"] == 9.0
assert semi.loc["FP16, 2:4", "SNR (dB)"] < semi.loc["FP16, 50 % unstructured", "SNR (dB)"]

# %% [markdown]
# 2:4 stores exactly as much as a bitmask at 50 % (9 bits per weight in FP16, 5 with INT8
# values), and forcing 2 zeros into *every* group of 4 costs some signal against free choice.
# Its real advantage is speed on GPUs that support it. Still, INT8 dense stores fewer bits than
# FP16 2:4 and keeps far more signal, and INT4 dense stores fewer bits than INT8 2:4: where both
# run fast, quantization remains the better trade.

# %% [markdown]
# ## Recap
# - **Storage is exact arithmetic.** Dense FP16 is 16 bits per weight, packed INT-$b$ is $b$
#   bits plus one scale, a bitmask adds 1 bit per weight (6.25 % of FP16) and CSR a 16-bit index per
#   kept value; `torch.save` confirms each count to the byte. Entropy coding (the Shannon bound,
#   or LZMA as a measured coder) stores every format except binary codes in fewer bits, pruned
#   formats (their masks) most.
# - **Both methods on one tensor**: with equal codes ranked by the original magnitude, both
#   orders prune the same weights and differ only in the scale; pruning first, then quantizing
#   the kept weights with their own scale, kept at least the SNR of the other order at every
#   bit-width (section 2's table). The two *weight* errors add exactly, since they sit on
#   different weights; the layer's *output* error adds them only up to a cross term that
#   correlated inputs create, and weights each by where the inputs put their energy. At 8 bits
#   quantization adds almost nothing to pruning's weight error on the normal tensor; on the
#   outlier-heavy MiniLM layer it adds more, and FP16 pruning at 25 % sparsity ends that layer's
#   fixed-length front.
# - **On a trained network at matched storage** (section 4, a task with headroom, paired 95 %
#   intervals over originals and seeds): quantization alone was the most accurate format at
#   every budget post-training, and at 3 bits per weight after training as well, ahead of every
#   combination. Post-training, prune-then-quantize was ahead of quantize-then-prune, its
#   interval above zero, with 2- to 4-bit codes on one to two thirds of the weights; in the
#   other rows the gaps were under a point either way; trained
#   with the same budget, both at once (QAP) came first among the combinations, then
#   prune-then-quantize, then quantize-then-prune.
# - **On the frontier**, with every overhead counted and fixed-length codes, dense quantization is
#   Pareto-optimal at every bit-width from 2 to 8, and binary codes at 1 bit; pruned formats
#   (always with quantized values) share the region below 2 bits with binary codes and fill a
#   few points where the dense grid has none; on the MiniLM layer FP16 pruning ends the front
#   above 8 bits. With entropy-coded codes and masks, pruned-and-quantized formats take more
#   of the front at low storage (see the printed entropy-coded fronts).
# - **On hardware** (measured on the machine that ran it; medians only, the 95 % intervals say
#   how far to trust each): INT8, with 8-bit activations too, had a lower median than FP32 with
#   nothing removed; BF16 is the right speed base only where the CPU computes in it; unstructured
#   CSR had a higher median than dense below the interpolated break-even; removing whole rows
#   had lower medians but lost far more signal. The quadratic saving of low bit-widths is a
#   formula that needs low-bit activations as well; 2:4 is the GPU compromise, at the storage of a
#   bitmask, and was not timed here.
#
# This closes the course. Across six notebooks the answer to the paper's question held up:
#
# - **Quantize, and usually only quantize.** At equal storage quantization keeps more signal on
#   normal-like weights (notebooks 1-2), on most real tensors (notebook 3), layer by layer
#   (notebook 4), after fine-tuning (notebook 5) and here with every overhead counted in
#   fixed-length codes; on section 4's network it beat every combination at the same storage,
#   trained or not; and INT8 had a lower median time than FP32 on this ordinary CPU.
# - **Prune when** the weights are very heavy-tailed at very low bit-widths (notebook 3), when the
#   budget is below about 2 bits per weight (where binary codes are quantization's answer, and
#   entropy-coded pruned formats compete well), or when the hardware exploits the pattern:
#   structured pruning anywhere (at a real cost in signal), 2:4 on GPUs that support it, and
#   unstructured sparsity only where it is high enough for sparse kernels to beat dense ones
#   (section 5).
# - **Do both when** you prune anyway: quantize the kept weights (at 8 bits it cost little
#   signal: compare the FP16 pruning and prune-then-quantize columns of section 2), fit the
#   scale to the kept weights (prune, then quantize: never worse on the weight error; on
#   accuracy post-training ahead with few levels, and otherwise within a point either way),
#   train both at once if you train (QAP led both orders in section 4), and count the mask.
#
# ## References
# - A. Kuzmin, M. Nagel, M. van Baalen, A. Behboodi, T. Blankevoort. *Pruning vs Quantization:
#   Which is Better?* NeurIPS 2023. [arXiv:2307.02973](https://arxiv.org/abs/2307.02973); the
#   authors' code:
#   [Qualcomm-AI-research/pruning-vs-quantization](https://github.com/Qualcomm-AI-research/pruning-vs-quantization).
# - S. Han, H. Mao, W. J. Dally. *Deep Compression: Compressing Deep Neural Networks with
#   Pruning, Trained Quantization and Huffman Coding*, ICLR 2016 (pruning, then quantizing the
#   kept weights, then entropy coding). [arXiv:1510.00149](https://arxiv.org/abs/1510.00149).
# - S. K. Esser, J. L. McKinstry, D. Bablani, R. Appuswamy, D. S. Modha. *Learned Step Size
#   Quantization*, ICLR 2020 (LSQ, the quantization-aware training of section 4).
#   [arXiv:1902.08153](https://arxiv.org/abs/1902.08153).
# - M. Zhu, S. Gupta. *To prune, or not to prune: exploring the efficacy of pruning for model
#   compression*, 2017 (gradual magnitude pruning on the cubic schedule).
#   [arXiv:1710.01878](https://arxiv.org/abs/1710.01878).
# - B. Hawks, J. Duarte, N. J. Fraser, A. Pappalardo, N. Tran, Y. Umuroglu. *Ps and Qs:
#   Quantization-Aware Pruning for Efficient Low Latency Neural Network Inference*, Frontiers in
#   Artificial Intelligence 4, 2021 (pruning during quantization-aware training, the "QAP" of
#   section 4). [arXiv:2102.11289](https://arxiv.org/abs/2102.11289).
# - M. van Baalen, C. Louizos, M. Nagel, R. A. Amjad, Y. Wang, T. Blankevoort, M. Welling.
#   *Bayesian Bits: Unifying Quantization and Pruning*, NeurIPS 2020 (pruning as a 0-bit option
#   of learned mixed precision). [arXiv:2005.07093](https://arxiv.org/abs/2005.07093).
# - M. Courbariaux, Y. Bengio, J.-P. David. *BinaryConnect: Training Deep Neural Networks with
#   binary weights during propagations*, NeurIPS 2015 (binary codes).
#   [arXiv:1511.00363](https://arxiv.org/abs/1511.00363).
# - F. Li, B. Zhang, B. Liu. *Ternary Weight Networks*, 2016 (ternary codes).
#   [arXiv:1605.04711](https://arxiv.org/abs/1605.04711).
# - A. Mishra, J. A. Latorre, J. Pool, D. Stosic, D. Stosic, G. Venkatesh, C. Yu, P.
#   Micikevicius. *Accelerating Sparse Deep Neural Networks*, 2021 (2:4 semi-structured sparsity
#   on NVIDIA Ampere). [arXiv:2104.08378](https://arxiv.org/abs/2104.08378).
# - C. E. Shannon. *A Mathematical Theory of Communication*, Bell System Technical Journal 27,
#   1948 (the entropy bound of section 3).
#   [doi:10.1002/j.1538-7305.1948.tb01338.x](https://doi.org/10.1002/j.1538-7305.1948.tb01338.x).
# - The PyTorch tools used here: [`torch.sparse`](https://pytorch.org/docs/stable/sparse.html)
#   (CSR), [`torch.ao.quantization.quantize_dynamic`](https://pytorch.org/docs/stable/generated/torch.ao.quantization.quantize_dynamic.html)
#   (INT8) and [`torch.utils.benchmark`](https://pytorch.org/docs/stable/benchmark_utils.html)
#   (timing).
