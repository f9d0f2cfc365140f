"""How the shipped digits baselines were trained: one recipe per network, reproducible.

``train_baseline(name)`` trains ``pvq.models.build_model(name, seed)`` from scratch with the
course's one training loop (``pvq.train.train``: SGD with momentum 0.9, cosine decay to 1 % of
the learning rate, BatchNorm re-estimated at the end) on its data (``DATA``:
``pvq.data.digits_loaders``, for ``digits_cnn_small`` the distorted digits). It runs on one
thread with deterministic kernels, so a second call gives bit-identical weights on the same
machine; ``scripts/train_baselines.py`` uses it to regenerate the files ``pvq.zoo`` loads.

Bit-identical *only* on the same kernels: PyTorch picks its CPU kernels by instruction set
(``ATEN_CPU_CAPABILITY``: default, avx2, avx512), and another summation order sends SGD down
another path. ``kernel_signature()`` names what decides the kernels, so that a retraining can be
compared bit for bit only where the signature matches a recorded one (``state_sha256``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn

from pvq._validation import check_module
from pvq.data import DigitsLoaders, digits_loaders, distorted_digits_loaders
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
    "digits_cnn_small": Recipe(epochs=20, lr=0.1, weight_decay=5e-4, batch_size=64),
}

#: the data each baseline trains on: ``loaders(batch_size=..., seed=...)``
DATA = {"digits_cnn": digits_loaders, "digits_mlp": digits_loaders,
        "digits_cnn_small": distorted_digits_loaders}


def baseline_loaders(name: str, seed: int = 0) -> DigitsLoaders:
    """The loaders ``name``'s baseline trains on, with its recipe's batch size."""
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    return DATA[name](batch_size=RECIPES[name].batch_size, seed=seed)


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


def train_baseline(name: str, epochs: int | None = None, seed: int | None = None) -> nn.Module:
    """Train the ``name`` baseline from scratch with ``RECIPES[name]`` (``epochs`` and ``seed``
    override the recipe's, e.g. for a quick check or to measure the seeds' spread); returns the
    model in eval mode.
    """
    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(ARCHITECTURES)}, got {name!r}")
    recipe = RECIPES[name]
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        recipe = dataclasses.replace(recipe, seed=seed)
    loaders = baseline_loaders(name, seed=recipe.seed)
    model = build_model(name, seed=recipe.seed)
    with _one_thread():
        train(model, loaders.train, epochs=recipe.epochs if epochs is None else epochs,
              lr=recipe.lr, momentum=0.9, weight_decay=recipe.weight_decay,
              final_lr_fraction=0.01, seed=recipe.seed, bn_batches=None, progress=False)
    return model


def cpu_model() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else ``platform.processor()``)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def kernel_signature() -> dict[str, str]:
    """What decides PyTorch's CPU kernels here: its version, the CPU and the capability in use."""
    return {"torch": torch.__version__, "cpu": cpu_model(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()}


def state_sha256(model: nn.Module) -> str:
    """SHA-256 of a model's state dict (names and raw bytes, in order): equal iff bit-identical."""
    check_module(model)
    digest = hashlib.sha256()
    for key, value in model.state_dict().items():
        digest.update(key.encode())
        digest.update(value.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()
