"""LSQ: the forward is the course quantizer, the backward is LSQ's (hand example, the paper's code,
gradcheck where the straight-through gradient is a true derivative)."""

import copy
import math

import numpy as np
import pytest
import torch
from torch import nn

from pvq.qat import (
    LSQQuantizer,
    apply_lsq,
    gradient_scale,
    lsq_quantize,
    lsq_quantizers,
    step_size_parameters,
)
from pvq.quantize import grid_limits, mse_scale, quantize

pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_cnn(dtype=torch.float32) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 6, 3), nn.ReLU(), nn.Flatten(),
        nn.Linear(6 * 4 * 4, 10),
    ).to(dtype)


def paper_lsq(v: torch.Tensor, s: torch.Tensor, bits: int) -> torch.Tensor:
    """The LSQ paper's own PyTorch code (Esser et al. 2020, appendix), for weights."""
    qn, qp = 2 ** (bits - 1), 2 ** (bits - 1) - 1
    g = 1.0 / math.sqrt(v.numel() * qp)
    s = (s - s * g).detach() + s * g  # gradscale
    v = torch.clamp(v / s, -qn, qp)
    v = (v.round() - v).detach() + v  # roundpass
    return v * s


@pytest.mark.parametrize("bits", range(2, 9))
def test_forward_is_the_course_quantizer_and_torch_fake_quantize(bits):
    w = 0.3 * torch.randn(2000, generator=torch.Generator().manual_seed(bits))
    step = torch.tensor(mse_scale(w, bits))
    ours = lsq_quantize(w, step, bits)
    assert torch.equal(ours, quantize(w, bits, float(step)))
    lowest, highest = grid_limits(bits)
    theirs = torch.fake_quantize_per_tensor_affine(w, float(step), 0, lowest, highest)
    # torch multiplies by 1/scale: a value within 1e-4 of a cell edge may round the other way
    ratio = (w / step).numpy()
    off_edge = torch.from_numpy(np.abs(ratio - np.floor(ratio) - 0.5) > 1e-4)
    assert off_edge.float().mean() > 0.99
    assert torch.equal(ours[off_edge], theirs[off_edge])


def test_step_size_gradient_on_a_hand_example():
    # bits=2: grid -2..1, Qp = 1; w/s = [-2.6, -0.4, 0.6, 1.8, 4.0]
    w = torch.tensor([-1.3, -0.2, 0.3, 0.9, 2.0], dtype=torch.float64, requires_grad=True)
    step = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    out = lsq_quantize(w, step, 2)
    assert out.tolist() == [-1.0, 0.0, 0.5, 0.5, 0.5]
    out.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0], dtype=torch.float64))
    # per weight: -Qn, round - ratio = 0.4, 0.4, then Qp twice: -2*1 + 0.4*2 + 0.4*3 + 1*4 + 1*5
    assert step.grad.item() == pytest.approx(9.0 / math.sqrt(5 * 1), rel=1e-12)
    assert w.grad.tolist() == [0.0, 2.0, 3.0, 0.0, 0.0]
    assert gradient_scale(5, 2) == pytest.approx(1 / math.sqrt(5))
    assert gradient_scale(1000, 4) == pytest.approx(1 / math.sqrt(7000))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_gradients_match_the_lsq_papers_code(bits):
    generator = torch.Generator().manual_seed(bits)
    w = torch.randn(300, dtype=torch.float64, generator=generator)
    upstream = torch.randn(300, dtype=torch.float64, generator=generator)
    grads = []
    for function in (lsq_quantize, paper_lsq):
        w_leaf = w.clone().requires_grad_()
        step = torch.tensor(mse_scale(w, bits), dtype=torch.float64, requires_grad=True)
        out = function(w_leaf, step, bits)
        out.backward(upstream)
        grads.append((out.detach(), w_leaf.grad, step.grad))
    (out, grad_w, grad_s), (ref_out, ref_w, ref_s) = grads
    torch.testing.assert_close(out, ref_out, rtol=0, atol=1e-12)
    torch.testing.assert_close(grad_w, ref_w, rtol=1e-12, atol=0)  # theirs: s * (1 / s)
    torch.testing.assert_close(grad_s, ref_s, rtol=1e-10, atol=1e-12)


def test_gradcheck_where_every_weight_is_clipped():
    # beyond the grid the output is s * (-Qn or Qp): LSQ's gradients (g = 1) are the true ones
    w = torch.tensor([-9.0, -5.5, 4.2, 7.0], dtype=torch.float64, requires_grad=True)
    step = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda w, s: lsq_quantize(w, s, 3, grad_scale=1.0), (w, step))


@pytest.mark.parametrize("grad_scale", [1.0, 0.1])
def test_gradcheck_against_the_straight_through_surrogate(grad_scale):
    # The straight-through estimator is the derivative of the surrogate
    # h(w, s) = s' (clip(w / s', -Qn, Qp) + r0) with s' = s0 + g (s - s0) and the rounding residual
    # r0 = round(.) - clip(.) frozen at (w0, s0). `probe` has LSQ's backward and h's values, so
    # gradcheck compares LSQ's analytic gradient with h's finite differences.
    bits, s0 = 3, 0.25
    codes = torch.tensor([-4.0, -2.0, -1.0, 0.0, 1.0, 3.0])
    offsets = torch.tensor([-0.3, 0.2, -0.4, 0.35, 0.1, 0.3])
    w0 = (s0 * (codes + offsets)).to(torch.float64)  # inside or clipped, away from every edge
    w0 = torch.cat([w0, torch.tensor([-2.0, 1.5], dtype=torch.float64)]).requires_grad_()
    step0 = torch.tensor(s0, dtype=torch.float64, requires_grad=True)
    lowest, highest = grid_limits(bits)
    clipped0 = torch.clamp(w0.detach() / s0, lowest, highest)
    residual = torch.round(clipped0) - clipped0

    def probe(w, s):
        scaled = s0 + grad_scale * (s - s0)
        surrogate = scaled * (torch.clamp(w / scaled, lowest, highest) + residual)
        lsq = lsq_quantize(w, s, bits, grad_scale=grad_scale)
        return lsq + (surrogate - lsq).detach()

    assert torch.autograd.gradcheck(probe, (w0, step0))


def test_quantizer_starts_at_the_mse_scale():
    weight = torch.randn(64, 32, generator=torch.Generator().manual_seed(3))
    quantizer = LSQQuantizer(weight, 4)
    assert quantizer.step.item() == pytest.approx(mse_scale(weight, 4), rel=1e-6)
    assert quantizer.grad_scale == gradient_scale(weight.numel(), 4)
    assert torch.equal(quantizer(weight), quantize(weight, 4, quantizer.step.item()))


def test_apply_lsq_makes_the_post_training_quantized_model():
    model, reference = tiny_cnn(), tiny_cnn()
    quantizers = apply_lsq(model, 3)
    assert list(quantizers) == ["0", "2", "5"]
    assert {q.bits for q in quantizers.values()} == {3}
    with torch.no_grad():
        for layer in (reference[0], reference[2], reference[5]):
            layer.weight.copy_(quantize(layer.weight, 3, mse_scale(layer.weight, 3)))
    x = torch.randn(5, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-6)


def test_first_and_last_layer_can_stay_at_8_bits():
    quantizers = apply_lsq(tiny_cnn(), 2, first_last_bits=8)
    assert {name: q.bits for name, q in quantizers.items()} == {"0": 8, "2": 2, "5": 8}


def test_gradients_reach_float_weights_and_step_sizes():
    model = tiny_cnn()
    apply_lsq(model, 4)
    model(torch.randn(3, 1, 8, 8)).square().sum().backward()
    steps = step_size_parameters(model)
    assert len(steps) == 3 and all(s.grad is not None and s.grad.ndim == 0 for s in steps)
    originals = [model[i].parametrizations.weight.original for i in (0, 2, 5)]
    assert all(w.grad is not None and w.grad.abs().sum() > 0 for w in originals)
    assert {id(p) for p in model.parameters()} >= {id(s) for s in steps}


def test_copies_and_state_dicts_keep_the_quantizers():
    model = tiny_cnn()
    apply_lsq(model, 4)
    with torch.no_grad():
        step_size_parameters(model)[1].mul_(1.5)
    clone = copy.deepcopy(model)
    fresh = tiny_cnn()
    apply_lsq(fresh, 4)
    fresh.load_state_dict(model.state_dict())
    x = torch.randn(2, 1, 8, 8)
    assert torch.equal(clone(x), model(x)) and torch.equal(fresh(x), model(x))
    assert list(lsq_quantizers(clone)) == ["0", "2", "5"]


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda: apply_lsq(tiny_cnn(), 1), ValueError, "bits"),
        (lambda: apply_lsq(tiny_cnn(), 4, first_last_bits=1.5), TypeError, "first_last_bits"),
        (lambda: apply_lsq(nn.ReLU(), 4), ValueError, "Conv2d or Linear"),
        (lambda: apply_lsq("model", 4), TypeError, "model"),
        (lambda: lsq_quantize(torch.ones(3), torch.ones(2), 4), ValueError, "step"),
        (lambda: lsq_quantize(torch.ones(3), torch.tensor(-1.0), 4), ValueError, "step"),
        (lambda: lsq_quantize(torch.ones(3), torch.tensor(1.0), 4, 0.0), ValueError, "grad_scale"),
        (lambda: gradient_scale(0, 4), ValueError, "size"),
    ],
)
def test_bad_input_is_refused_with_the_argument_named(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_lsq_cannot_be_applied_twice():
    model = tiny_cnn()
    apply_lsq(model, 4)
    with pytest.raises(ValueError, match="already"):
        apply_lsq(model, 4)
