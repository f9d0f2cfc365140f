"""How the shipped digits baselines were trained: one recipe per network, reproducible.

``train_baseline(name)`` trains ``pvq.models.build_model(name, seed)`` from scratch with the
course's one training loop (``pvq.train.train``: SGD with momentum 0.9, cosine decay to 1 % of
the learning rate, BatchNorm re-estimated at the end) on ``pvq.data.digits_loaders``. It runs on
one thread with deterministic kernels, so a second call gives bit-identical weights on the same
machine; ``scripts/train_baselines.py`` uses it to regenerate the files ``pvq.zoo`` loads.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn

from pvq.data import digits_loaders
from pvq.models import ARCHITECTURES, build_model
from pvq.train import train


@dataclass(frozen=True)
class Recipe:
    """Everything that decides a baseline's weights."""

    epochs: int
    lr: float
    weight_decay: float
    batch_size: int = 32
    seed: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


RECIPES: dict[str, Recipe] = {
    "digits_cnn": Recipe(epochs=20, lr=0.1, weight_decay=5e-4),
    "digits_mlp": Recipe(epochs=30, lr=0.1, weight_decay=5e-4),
}


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    """One intra-op thread inside the block: the networks are tiny, so a second thread only adds
    hand-off cost (it is several times slower on two busy cores), and one thread fixes the order
    of every floating-point reduction."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def train_baseline(name: str, epochs: int | None = None) -> nn.Module:
    """Train the ``name`` baseline from scratch with ``RECIPES[name]`` (``epochs`` overrides the
    recipe's epoch count, e.g. for a quick check); returns the model in eval mode.
    """
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    recipe = RECIPES[name]
    loaders = digits_loaders(batch_size=recipe.batch_size, seed=recipe.seed)
    model = build_model(name, seed=recipe.seed)
    with _one_thread():
        train(model, loaders.train, epochs=recipe.epochs if epochs is None else epochs,
              lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay,
              final_lr_fraction=0.01, seed=recipe.seed, bn_batches=None, progress=False)
    return model
