"""The one fine-tuning loop that LSQ and gradual pruning share, and the evaluation that follows it.

Both methods get the same optimiser family, schedule and epoch budget, as in the paper: the
weights (and biases, BatchNorm) train with SGD, momentum 0.9, a cosine learning rate decaying to
``final_lr_fraction * lr``; LSQ's step sizes, if the model has any, train with Adam in their own
optimiser (the paper: lr 1e-5 on ImageNet), on the same cosine schedule. Callbacks run after every
optimiser step (gradual pruning updates its masks there). BatchNorm statistics are re-estimated
on training batches before the model is returned (the weights moved; the running averages lag).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from pvq._validation import (call_model, check_inputs, check_int, check_module, check_positive,
                             check_real)
from pvq.qat import step_size_parameters

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]


def show_progress(progress: bool | None) -> bool:
    """Whether to draw a progress bar: ``progress`` if given; by default only for a person
    watching, i.e. a terminal (stderr is a TTY) or a kernel started by a Jupyter server (which
    sets ``JPY_SESSION_NAME``). Scripts, pytest, nbval and ``jupytext --execute`` stay quiet.
    """
    if progress is not None:
        return bool(progress)
    return "JPY_SESSION_NAME" in os.environ or sys.stderr.isatty()


def checked_batches(loader: Batches, name: str = "loader") -> Iterator[tuple[torch.Tensor,
                                                                           torch.Tensor]]:
    """``loader``'s batches, each checked: finite float inputs and one int64 label per input."""
    try:
        batches = iter(loader)
    except TypeError:
        raise TypeError(f"{name} must be an iterable of (inputs, labels) batches, "
                        f"got {type(loader).__name__}") from None
    for batch in batches:
        if not (isinstance(batch, (tuple, list)) and len(batch) == 2
                and all(isinstance(part, torch.Tensor) for part in batch)):
            raise TypeError(f"{name} must yield (inputs, labels) pairs of tensors, "
                            f"got {type(batch).__name__}")
        inputs, labels = batch
        check_inputs(inputs, f"{name}'s inputs")
        if labels.dtype != torch.int64 or labels.shape != inputs.shape[:1]:
            raise ValueError(f"{name}'s labels must be int64 class indices, one per input, got "
                             f"{labels.dtype} of shape {tuple(labels.shape)} for inputs of shape "
                             f"{tuple(inputs.shape)}")
        yield inputs, labels


def loader_length(loader: Batches, name: str = "loader") -> int:
    """The number of batches of ``loader`` (at least one): it must have a length."""
    if not hasattr(loader, "__len__"):
        raise TypeError(f"{name} must have a length (a DataLoader or a list of batches), "
                        f"got {type(loader).__name__}")
    return check_int(len(loader), f"len({name})", 1)


def _loss(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of ``model`` on one checked batch; labels must name one of its outputs."""
    logits = call_model(model, inputs, "loader's inputs")
    if int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]:
        raise ValueError(f"loader's labels must lie in 0..{logits.shape[1] - 1} (the model's "
                         f"classes), got {int(labels.min())}..{int(labels.max())}")
    return F.cross_entropy(logits, labels)


@contextlib.contextmanager
def _deterministic() -> Iterator[None]:
    """Deterministic kernels inside the block; the caller's setting is restored afterwards."""
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous)


def train(
    model: nn.Module,
    loader: Batches,
    *,
    epochs: int,
    lr: float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    step_size_lr: float = 1e-5,
    final_lr_fraction: float = 0.01,
    seed: int = 0,
    callbacks: Sequence[Callable[[int], None]] = (),
    bn_batches: int | None = 20,
    progress: bool | None = None,
) -> list[float]:
    """Fine-tune ``model`` in place with cross-entropy; return the mean training loss per epoch.

    ``loader`` yields ``(inputs, labels)`` and must have a length. After each optimiser step
    every callback is called with the number of steps done (1, 2, ...). Seeded with
    ``torch.manual_seed(seed)``, and a DataLoader's own shuffling generator (if it has one) is
    re-seeded with ``seed`` too, so the batch order depends on ``seed`` alone; kernels are
    deterministic: the same call gives the same weights, even with a reused loader.
    ``bn_batches`` training batches re-estimate BatchNorm statistics at the end (None: all).
    """
    check_module(model)
    epochs = check_int(epochs, "epochs", 1)
    lr = check_positive(lr, "lr")
    step_size_lr = check_positive(step_size_lr, "step_size_lr")
    momentum = check_real(momentum, "momentum")
    if not 0.0 <= momentum < 1.0:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    weight_decay = check_real(weight_decay, "weight_decay")
    if weight_decay < 0.0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    final_lr_fraction = check_real(final_lr_fraction, "final_lr_fraction")
    if not 0.0 <= final_lr_fraction <= 1.0:
        raise ValueError(f"final_lr_fraction must be in [0, 1], got {final_lr_fraction}")
    seed = check_int(seed, "seed")
    total_steps = epochs * loader_length(loader)
    if bn_batches is not None:
        check_int(bn_batches, "bn_batches", 1)
    if not all(callable(callback) for callback in callbacks):
        raise TypeError("callbacks must be callables taking the number of steps done")

    steps = step_size_parameters(model)
    step_ids = {id(step) for step in steps}
    weights = [p for p in model.parameters() if p.requires_grad and id(p) not in step_ids]
    optimizers = [torch.optim.SGD(weights, lr=lr, momentum=momentum, weight_decay=weight_decay)]
    if steps:
        optimizers.append(torch.optim.Adam(steps, lr=step_size_lr))
    schedules = [
        torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=total_steps, eta_min=final_lr_fraction * optimizer.defaults["lr"])
        for optimizer in optimizers
    ]

    torch.manual_seed(seed)
    shuffling = getattr(loader, "generator", None)
    if isinstance(shuffling, torch.Generator):
        shuffling.manual_seed(seed)
    losses = []
    done = 0
    with _deterministic(), tqdm(total=total_steps, desc="fine-tuning", leave=False,
                                disable=not show_progress(progress)) as bar:
        for _ in range(epochs):
            model.train()
            total, count = 0.0, 0
            for inputs, labels in checked_batches(loader):
                for optimizer in optimizers:
                    optimizer.zero_grad(set_to_none=True)
                loss = _loss(model, inputs, labels)
                if not torch.isfinite(loss):
                    raise ValueError(f"training diverged (loss {loss.item()} at step {done + 1}): "
                                     f"lower lr (got {lr})")
                loss.backward()
                for optimizer, schedule in zip(optimizers, schedules):
                    optimizer.step()
                    schedule.step()
                done += 1
                for callback in callbacks:
                    callback(done)
                value = loss.item()
                total, count = total + value * len(labels), count + len(labels)
                bar.update()
                bar.set_postfix(loss=f"{value:.3f}", refresh=False)
            losses.append(total / count)
        reestimate_batchnorm(model, loader, batches=bn_batches)
    model.eval()
    return losses


def reestimate_batchnorm(model: nn.Module, loader: Batches, batches: int | None = None) -> None:
    """Recompute every BatchNorm's running mean and variance from ``batches`` batches of
    ``loader`` (None: all): reset, then an equal-weight average over the batches (momentum None).
    """
    check_module(model)
    if batches is not None:
        batches = check_int(batches, "batches", 1)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [norm.momentum for norm in norms]
    was_training = model.training
    try:
        for norm in norms:
            norm.reset_running_stats()
            norm.momentum = None
        model.train()
        seen = 0
        with torch.no_grad():
            for inputs, _ in checked_batches(loader):
                if batches is not None and seen >= batches:
                    break
                call_model(model, inputs, "loader's inputs")
                seen += 1
        if seen == 0:
            raise ValueError("loader yields no batches: no statistics to estimate")
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.train(was_training)


def evaluate(model: nn.Module, loader: Batches, *, progress: bool | None = None) -> float:
    """Top-1 accuracy of ``model`` (in eval mode) on all of ``loader``; the model is unchanged."""
    check_module(model)
    was_training = model.training
    model.eval()
    correct = seen = 0
    try:
        with torch.no_grad():
            for inputs, labels in tqdm(checked_batches(loader), desc="evaluating", leave=False,
                                       total=len(loader) if hasattr(loader, "__len__") else None,
                                       disable=not show_progress(progress)):
                predictions = call_model(model, inputs, "loader's inputs").argmax(dim=1)
                correct += int((predictions == labels).sum())
                seen += len(labels)
    finally:
        model.train(was_training)
    if seen == 0:
        raise ValueError("loader is empty")
    return correct / seen
