"""GPTQ and SparseGPT (pvq.obs): brute force, hand-checked OBS steps, the certified bounds."""

import itertools

import numpy as np
import pytest
import torch

from pvq import obs, text
from pvq.bounds import equal_compression_k, pruning_box, prune_exact, quant_sdp_bound
from pvq.layer_bounds import sample_chunks
from pvq.prune import magnitude_mask
from pvq.quantize import grid_limits
from pvq.zoo import real_layer

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_layer(seed: int, rows: int = 2, inputs: int = 4, samples: int = 12):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((samples, inputs)) @ rng.standard_normal((inputs, inputs))
    return rng.standard_normal((rows, inputs)), X


def output_error(W, W_hat, X) -> float:
    return float(((np.asarray(X) @ (np.asarray(W_hat) - np.asarray(W)).T) ** 2).sum())


def test_hand_checked_obs_removal():
    # H^-1 = [[2, 1], [1, 2]]: removing w_0 = 1 moves w_1 by -(1 / 2) * 1 = -0.5; saliency 1 / 2
    H_inv = np.array([[2.0, 1.0], [1.0, 2.0]])
    w = np.array([1.0, 1.0])
    np.testing.assert_allclose(obs.obs_update(w, H_inv, 0), [0.0, 0.5])
    np.testing.assert_allclose(obs.obs_saliency(w, H_inv), [0.5, 0.5])
    # the update is the least-squares refit: no other value of w_1 has a lower loss
    H = np.linalg.inv(H_inv)
    losses = [(np.array([0.0, x]) - w) @ H @ (np.array([0.0, x]) - w) for x in (0.4, 0.5, 0.6)]
    assert np.argmin(losses) == 1 and losses[1] == pytest.approx(0.5)


@pytest.mark.parametrize("seed", range(5))
def test_sparsegpt_removing_the_first_column_is_the_exact_obs_refit(seed):
    W, X = tiny_layer(seed, rows=1)
    W[0, 0] = 1e-3  # the smallest saliency by far: SparseGPT removes it first
    H = obs.hessian(X).numpy()
    pruned = obs.sparsegpt(W, H, 0.25, damping=0.0).numpy()
    np.testing.assert_allclose(pruned[0], obs.obs_update(W[0], np.linalg.inv(H), 0), atol=1e-12)
    # and that refit is the brute-force optimum of its support
    support = np.array([1, 2, 3])
    best = np.linalg.lstsq(X[:, support], X @ W[0], rcond=None)[0]
    np.testing.assert_allclose(pruned[0, support], best, atol=1e-9)


@pytest.mark.parametrize("seed", range(3))
def test_one_column_of_gptq_is_round_to_nearest(seed):
    W, X = tiny_layer(seed, rows=5, inputs=6)
    H = obs.hessian(X)
    for bits in (2, 3, 4):
        nearest = obs.round_to_nearest(W, bits)
        assert torch.equal(obs.gptq(W, H, bits)[:, 0], nearest[:, 0])  # no feedback yet
        single = W[:, :1]
        assert torch.equal(obs.gptq(single, obs.hessian(X[:, :1]), bits),
                           obs.round_to_nearest(single, bits))


@pytest.mark.parametrize("seed", range(4))
def test_tiny_layer_against_brute_force(seed):
    W, X = tiny_layer(seed, rows=1)
    H = obs.hessian(X)
    bits = 2
    scale = float(obs.row_scales(W, bits)[0, 0])
    lowest, highest = grid_limits(bits)
    codes = np.array(list(itertools.product(range(lowest, highest + 1), repeat=W.shape[1])))
    best_quant = min(output_error(W, scale * c[None], X) for c in codes)
    assert best_quant - 1e-9 <= output_error(W, obs.gptq(W, H, bits), X)
    supports = itertools.combinations(range(W.shape[1]), 2)
    best_prune = min(output_error(W, _refit(W[0], X, list(s))[None], X) for s in supports)
    assert best_prune - 1e-9 <= output_error(W, obs.sparsegpt(W, H, 0.5), X)


def _refit(w, X, support):
    w_hat = np.zeros_like(w)
    w_hat[support] = np.linalg.lstsq(X[:, support], X @ w, rcond=None)[0]
    return w_hat


def naive_obc(W, H, bits):
    """GPTQ the slow way (OBC): fix column j, then move the columns after it by the OBS update
    on the inverse of H restricted to them and column j, recomputed at every step."""
    W = np.array(W, dtype=np.float64)
    scales = obs.row_scales(W, bits).numpy()
    lowest, highest = grid_limits(bits)
    for j in range(W.shape[1]):
        H_inv = np.linalg.inv(H[j:, j:])
        q = scales[:, j] * np.clip(np.round(W[:, j] / scales[:, j]), lowest, highest)
        W[:, j:] -= np.outer((W[:, j] - q) / H_inv[0, 0], H_inv[0])
        W[:, j] = q
    return W


@pytest.mark.parametrize("seed", range(4))
def test_the_cholesky_sweep_in_blocks_is_the_naive_obc_sweep(seed):
    W, X = tiny_layer(seed, rows=3, inputs=6)
    H = obs.hessian(X).numpy()
    damped = H + obs.DAMPING * np.diag(H).mean() * np.eye(6)
    for bits in (2, 3):
        np.testing.assert_allclose(obs.gptq(W, H, bits, block=4).numpy(),
                                   naive_obc(W, damped, bits), atol=1e-10)


def test_gptq_beats_round_to_nearest_on_a_real_layer():
    W, X = real_layer("blocks.1.attn.query")
    H = obs.hessian(X)
    for bits in (2, 3, 4):
        assert obs.layer_output_snr_db(W, obs.gptq(W, H, bits), X) > \
            obs.layer_output_snr_db(W, obs.round_to_nearest(W, bits), X)
    assert obs.layer_output_snr_db(W, obs.sparsegpt(W, H, 0.75), X) > \
        obs.layer_output_snr_db(W, obs.magnitude(W, 0.75), X)


def test_sparsity_and_patterns_are_exact():
    W, X = real_layer("blocks.5.mlp.fc1")
    H = obs.hessian(X)
    for sparsity in (0.75, 0.8125, 0.875):
        assert float((obs.sparsegpt(W, H, sparsity) == 0).double().mean()) == sparsity
    pruned = obs.sparsegpt(W, H, n_m=(2, 4)).reshape(W.shape[0], -1, 4)
    assert bool(((pruned != 0).sum(dim=2) <= 2).all())
    both = obs.sparsegpt(W, H, 0.5, bits=4)
    assert float((both == 0).double().mean()) >= 0.5
    codes = both / obs.row_scales(W, 4)
    assert torch.allclose(codes, codes.round(), atol=1e-9)


def one_block_reference(W, H, bits, sparsity):
    """Both-at-once the slow way, one block: the mask from the saliencies w^2 / U_jj^2 of the
    starting weights, then column by column q = round(w) if kept, else 0, the error fed back."""
    U = obs.inverse_hessian_factor(H).numpy()
    scales = obs.row_scales(W, bits).numpy()  # the grid of the dense W, in both orders
    lowest, highest = grid_limits(bits)
    W = np.array(W, dtype=np.float64)
    keep = magnitude_mask(W**2 / np.diag(U)[None, :] ** 2, sparsity)
    for j in range(W.shape[1]):
        q = np.where(keep[:, j], scales[:, j] * np.clip(np.round(W[:, j] / scales[:, j]),
                                                          lowest, highest), 0.0)
        W[:, j:] -= np.outer((W[:, j] - q) / U[j, j], U[j, j:])
        W[:, j] = q
    return W


@pytest.mark.parametrize("seed", range(3))
def test_the_two_orders_are_the_sweeps_they_say(seed):
    W, X = tiny_layer(seed, rows=3, inputs=8, samples=24)
    H = obs.hessian(X).numpy()
    # prune then quantize (SparseGPT's joint mode): mask from W, kept weights rounded, one sweep
    np.testing.assert_allclose(obs.sparsegpt(W, H, 0.5, bits=3, block=8).numpy(),
                               one_block_reference(W, H, 3, 0.5), atol=1e-10)
    # quantize then prune: GPTQ first, then the same sweep from Q on W's grid
    Q = obs.gptq(W, H, 3).numpy()
    # the reference takes the scales of its input: Q's are W's, so it prunes on Q's own grid
    np.testing.assert_allclose(obs.row_scales(Q, 3).numpy(), obs.row_scales(W, 3).numpy())
    np.testing.assert_allclose(obs.quantize_then_prune(W, H, 3, 0.5, block=8).numpy(),
                               one_block_reference(Q, H, 3, 0.5), atol=1e-10)


@pytest.mark.parametrize("order", ["prune first", "quantize first"])
def test_both_orders_store_the_same_on_the_grid_at_exact_sparsity(order):
    W, X = real_layer("blocks.1.attn.query")
    H = obs.hessian(X)
    lowest, highest = grid_limits(4)
    scales = obs.row_scales(W, 4)
    for sparsity, n_m in [(0.5, None), (None, (2, 4))]:
        config = obs.Compression(4, sparsity, n_m, quantize_first=order == "quantize first")
        both, = obs.obs_compress(W, H, [config])
        codes = both / scales  # survivors are 4-bit codes of the dense layer's scales
        assert torch.allclose(codes, codes.round(), atol=1e-9)
        assert lowest <= float(codes.round().min()) and float(codes.round().max()) <= highest
        # the mask removes exactly half (a kept weight may also round to the code 0) ...
        assert float((both == 0).double().mean()) >= 0.5
        if n_m is not None:
            assert bool(((both != 0).reshape(W.shape[0], -1, 4).sum(dim=2) <= 2).all())
        # ... and with a grid too fine for a kept weight to round to 0 (and no dead input,
        # which both orders zero), exactly half are zeros
        W_fine, X_fine = tiny_layer(1, rows=8, inputs=64, samples=256)
        fine, = obs.obs_compress(W_fine, obs.hessian(X_fine), [config._replace(bits=16)])
        assert float((fine == 0).double().mean()) == 0.5


def test_the_two_orders_by_hand():
    # H = 2 I and no damping: no feedback between weights, U_jj all equal, so both orders are
    # magnitude pruning and round to nearest. w = (7, 1, -2, 0.4) at 4 bits: the scale is
    # max|w| / 7 = 1 (the other clipping ranges round 7 worse), round to nearest gives
    # (7, 1, -2, 0); keeping the larger half, either way: (7, 0, -2, 0).
    W, H = np.array([[7.0, 1.0, -2.0, 0.4]]), 2.0 * np.eye(4)
    assert float(obs.row_scales(W, 4)[0, 0]) == 1.0
    for result in (obs.sparsegpt(W, H, 0.5, bits=4, damping=0.0),
                   obs.quantize_then_prune(W, H, 4, 0.5, damping=0.0)):
        np.testing.assert_array_equal(result.numpy(), [[7.0, 0.0, -2.0, 0.0]])


def test_obs_compress_shares_the_gptq_stage_of_quantize_first():
    W, X = tiny_layer(4, rows=4, inputs=8)
    H = obs.hessian(X)
    configs = [obs.Compression(bits=4), obs.Compression(4, 0.5),
               obs.Compression(4, 0.5, quantize_first=True), obs.Compression(4, n_m=(2, 4))]
    together = obs.obs_compress(W, H, configs)
    assert torch.equal(together[0], obs.gptq(W, H, 4))
    assert torch.equal(together[1], obs.sparsegpt(W, H, 0.5, bits=4))
    assert torch.equal(together[2], obs.quantize_then_prune(W, H, 4, 0.5))
    assert torch.equal(together[3], obs.sparsegpt(W, H, n_m=(2, 4), bits=4))
    assert not torch.equal(together[1], together[2])  # the order matters


@pytest.mark.parametrize("bits", [2, 4])
def test_real_chunks_never_beat_the_certified_bounds(bits):
    W, X = real_layer("blocks.1.mlp.fc2")
    lower, upper = pruning_box(W)
    for chunk in sample_chunks(W, X, count=3, seed=bits):
        w, G = chunk.w[None, :], chunk.G
        H = 2.0 * G
        quantized = obs.gptq(w, H, bits).numpy()[0]
        scale = float(obs.row_scales(w, bits)[0, 0])
        error = float((quantized - chunk.w) @ G @ (quantized - chunk.w))
        assert error >= quant_sdp_bound(G, chunk.w, bits, scale) * (1 - 1e-6) - 1e-12
        k = equal_compression_k(w.size, bits)
        pruned = obs.sparsegpt(w, H, 1 - k / w.size).numpy()[0]
        assert np.count_nonzero(pruned) <= k and lower <= pruned.min() <= pruned.max() <= upper
        error = float((pruned - chunk.w) @ G @ (pruned - chunk.w))
        assert error >= prune_exact(G, chunk.w, k, lower, upper)[1] * (1 - 1e-6) - 1e-12


@pytest.mark.parametrize("call, name", [
    (lambda: obs.gptq(np.ones(3), np.eye(3), 4), "W"),
    (lambda: obs.gptq(np.ones((2, 3)), np.eye(2), 4), "H"),
    (lambda: obs.gptq(np.ones((2, 3)), np.eye(3), 0), "bits"),
    (lambda: obs.gptq(np.ones((2, 3)), np.eye(3), 4, damping=-1.0), "damping"),
    (lambda: obs.gptq(np.ones((2, 3)), np.eye(3), 4, "channel"), "granularity"),
    (lambda: obs.gptq(np.full((2, 3), np.nan), np.eye(3), 4), "W"),
    (lambda: obs.sparsegpt(np.ones((2, 3)), np.eye(3), 1.5), "sparsity"),
    (lambda: obs.sparsegpt(np.ones((2, 4)), np.eye(4)), "sparsity"),
    (lambda: obs.sparsegpt(np.ones((2, 4)), np.eye(4), n_m=(3, 2)), "n_m"),
    (lambda: obs.sparsegpt(np.ones((2, 3)), np.array([[1.0, 2, 0], [0, 1, 0], [0, 0, 1]]), 0.5),
     "H"),
    (lambda: obs.inverse_hessian_factor(-np.eye(3), 0.0), "damping"),
    (lambda: obs.row_scales(np.ones((2, 6)), 4, 4), "group"),
    (lambda: obs.magnitude("w", 0.5), "W"),
    (lambda: obs.obs_update(np.ones(2), np.eye(3), 0), "H_inv"),
    (lambda: obs.obs_update(np.ones(2), np.eye(2), 2), "j"),
    (lambda: obs.quantize_then_prune(np.ones((2, 4)), np.eye(4), 0, 0.5), "bits"),
    (lambda: obs.quantize_then_prune(np.ones((2, 4)), np.eye(4), 4), "sparsity"),
    (lambda: obs.obs_compress(np.ones((2, 4)), np.eye(4), [obs.Compression(4, None, None, True)]),
     "quantize_first"),
    (lambda: obs.obs_compress(np.ones((2, 4)), np.eye(4), [obs.Compression(4, 0.5, None, 1)]),
     "quantize_first"),
    (lambda: text.split_paragraphs(calibration=0), "calibration"),
    (lambda: text.halves(3), "paragraph"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()


def test_text_split_is_disjoint_seeded_and_covers_the_corpus():
    paragraphs = text.prose_paragraphs()
    split = text.split_paragraphs()
    assert len(split.calibration) == text.CALIBRATION_COUNT
    assert set(split.calibration).isdisjoint(split.held_out)
    assert sorted(split.calibration + split.held_out) == sorted(paragraphs)
    assert text.split_paragraphs() == split and text.split_paragraphs(seed=1) != split
    first, second = text.halves(split.held_out[0])
    assert f"{first} {second}" == split.held_out[0]
