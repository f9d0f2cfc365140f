"""pvq.rotation: an orthogonal Hadamard matrix leaves a layer's outputs unchanged."""

import numpy as np
import pytest
import scipy.linalg
import torch

from pvq.rotation import fold_value_rotation, hadamard, hadamard_block, rotate, rotate_layer
from pvq.transformer import gram_snr_db


@pytest.mark.parametrize("n", [1, 2, 4, 64])
def test_hadamard_is_orthogonal_with_equal_magnitudes(n):
    R = hadamard(n)
    np.testing.assert_allclose(R @ R.T, np.eye(n), atol=1e-12)
    np.testing.assert_allclose(np.abs(R), 1 / np.sqrt(n))
    np.testing.assert_array_equal(R[:2 if n > 1 else 1, 0], 1 / np.sqrt(n))


def test_rotating_weights_and_inputs_keeps_the_outputs():
    rng = np.random.default_rng(0)
    W, X, R = rng.standard_normal((3, 8)), rng.standard_normal((5, 8)), hadamard(8)
    np.testing.assert_allclose((W @ R) @ (X @ R).T, W @ X.T, atol=1e-12)


def block_diagonal(n):
    b = hadamard_block(n)
    return torch.from_numpy(scipy.linalg.block_diag(*[hadamard(b)] * (n // b)))


@pytest.mark.parametrize("n, block", [(1, 1), (6, 2), (384, 128), (1536, 512), (64, 64)])
def test_rotate_is_the_block_diagonal_hadamard_and_its_own_inverse(n, block):
    assert hadamard_block(n) == block
    x = torch.from_numpy(np.random.default_rng(n).standard_normal((2, 3, n)))
    torch.testing.assert_close(rotate(x), x @ block_diagonal(n), rtol=0, atol=1e-12)
    torch.testing.assert_close(rotate(rotate(x)), x, rtol=0, atol=1e-12)
    assert rotate(x.float()).dtype == torch.float32


def test_the_rotated_layer_computes_the_same_outputs_from_the_rotated_gram():
    rng = np.random.default_rng(1)
    X = torch.from_numpy(rng.standard_normal((40, 24)))  # 24 = 3 blocks of 8
    W = torch.from_numpy(rng.standard_normal((5, 24)))
    W_rot, G_rot = rotate_layer(W, X.T @ X)
    R = block_diagonal(24)
    torch.testing.assert_close(G_rot, (X @ R).T @ (X @ R), rtol=0, atol=1e-10)
    torch.testing.assert_close(G_rot, R.T @ (X.T @ X) @ R, rtol=0, atol=1e-10)
    torch.testing.assert_close(rotate(X) @ W_rot.T, X @ W.T, rtol=0, atol=1e-12)


def test_the_output_snr_is_the_same_in_either_basis():
    """An error D' of the rotated weights is the error D = D' R^T of the original ones, with
    the same output energy: SNR(W R, W_hat', R^T G R) = SNR(W, W_hat' R^T, G)."""
    rng = np.random.default_rng(2)
    X = torch.from_numpy(rng.standard_normal((60, 16)))
    W = torch.from_numpy(rng.standard_normal((4, 16)))
    W_rot, G_rot = rotate_layer(W, X.T @ X)
    W_hat_rot = W_rot + 0.1 * torch.from_numpy(rng.standard_normal((4, 16)))
    rotated_basis = gram_snr_db(W_rot, W_hat_rot, G_rot)
    original_basis = gram_snr_db(W, rotate(W_hat_rot), X.T @ X)
    assert rotated_basis == pytest.approx(original_basis, abs=1e-4)
    assert rotated_basis == pytest.approx(
        10 * np.log10(float((X @ W.T).square().sum() / (rotate(X) @ (W_hat_rot - W_rot).T)
                                                        .square().sum())), abs=1e-4)


def test_rotate_with_a_smaller_block_is_that_block_diagonal_hadamard():
    x = torch.from_numpy(np.random.default_rng(3).standard_normal((5, 384)))
    R = torch.from_numpy(scipy.linalg.block_diag(*[hadamard(32)] * 12))
    torch.testing.assert_close(rotate(x, 32), x @ R, rtol=0, atol=1e-12)
    torch.testing.assert_close(rotate(x, None), rotate(x), rtol=0, atol=0)
    W_rot, G_rot = rotate_layer(x[:2], x.T @ x, 32)
    torch.testing.assert_close(G_rot, R.T @ (x.T @ x) @ R, rtol=0, atol=1e-10)
    torch.testing.assert_close(W_rot, x[:2] @ R, rtol=0, atol=1e-12)


def attention(X, W_V, b_V, W_O, b_O, scores):
    """A toy attention block's output: per head h, softmax scores mix the tokens' values,
    then the output projection (the value and output projections of BERT's attention)."""
    V = X @ W_V.T + b_V
    heads = scores.shape[0]
    context = torch.cat([torch.softmax(scores[h], dim=-1) @ V[:, h * 8:(h + 1) * 8]
                         for h in range(heads)], dim=1)
    return context @ W_O.T + b_O, context


def test_a_value_rotation_folded_head_by_head_keeps_the_attention_output():
    rng = np.random.default_rng(4)
    tensor = lambda *shape: torch.from_numpy(rng.standard_normal(shape))  # noqa: E731
    X, W_V, b_V, W_O, b_O = tensor(6, 24), tensor(32, 24), tensor(32), tensor(20, 32), tensor(20)
    scores = tensor(4, 6, 6)  # 4 heads of 8 channels
    before, context = attention(X, W_V, b_V, W_O, b_O, scores)
    W_V2, b_V2, W_O2 = fold_value_rotation(W_V, b_V, W_O, 8)
    after, rotated_context = attention(X, W_V2, b_V2, W_O2, b_O, scores)
    torch.testing.assert_close(after, before, rtol=0, atol=1e-12)
    # the heads' context arrives rotated: the output projection's input, R = diag(H_8, ...)
    torch.testing.assert_close(rotated_context, rotate(context, 8), rtol=0, atol=1e-12)
    torch.testing.assert_close(W_O2, rotate(W_O, 8), rtol=0, atol=0)
    # a rotation that mixes heads does not fold: the softmax of each head weighs other values
    W_V16, b_V16, W_O16 = fold_value_rotation(W_V, b_V, W_O, 16)
    assert not torch.allclose(attention(X, W_V16, b_V16, W_O16, b_O, scores)[0], before,
                              atol=1e-3)
    # folding twice undoes it
    for again, original in zip(fold_value_rotation(W_V2, b_V2, W_O2, 8), (W_V, b_V, W_O)):
        torch.testing.assert_close(again, original, rtol=0, atol=1e-12)


@pytest.mark.parametrize("n", [0, 3, 12, 2.0, "4"])
def test_bad_sizes_name_the_argument(n):
    with pytest.raises((ValueError, TypeError), match="n"):
        hadamard(n)


@pytest.mark.parametrize("call, name", [
    (lambda: hadamard_block(0), "n"),
    (lambda: hadamard_block(2.0), "n"),
    (lambda: rotate(np.ones((2, 4))), "x"),
    (lambda: rotate(torch.ones(2, 4, dtype=torch.int64)), "x"),
    (lambda: rotate(torch.tensor(1.0)), "x"),
    (lambda: rotate(torch.tensor([1.0, float("nan")])), "x"),
    (lambda: rotate_layer(torch.ones(2, 4), torch.eye(3)), "gram"),
    (lambda: rotate_layer(torch.ones(4), torch.eye(4)), "W"),
    (lambda: rotate_layer(torch.ones(2, 4), np.eye(4)), "gram"),
    (lambda: rotate(torch.ones(2, 12), 8), "block"),
    (lambda: rotate(torch.ones(2, 12), 3), "block"),
    (lambda: rotate(torch.ones(2, 12), 2.0), "block"),
    (lambda: rotate_layer(torch.ones(2, 8), torch.eye(8), 16), "block"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(8), torch.ones(3, 8), 3),
     "head_size"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(8), torch.ones(3, 8), 16),
     "head_size"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(8), torch.ones(3, 8), 2.0),
     "head_size"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(4), torch.ones(3, 8), 4),
     "value_bias"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(8), torch.ones(3, 4), 4),
     "output_weight"),
    (lambda: fold_value_rotation(np.ones((8, 4)), torch.ones(8), torch.ones(3, 8), 4),
     "value_weight"),
    (lambda: fold_value_rotation(torch.ones(8, 4), torch.ones(1, 8), torch.ones(3, 8), 4),
     "value_bias"),
])
def test_bad_inputs_name_the_argument(call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call()
