"""Quantization against pruning at equal compression, before and after fine-tuning.

b-bit quantization is paired with pruning to sparsity ``1 - b/16`` (``pvq.compression``). Each
method comes in two stages, both applied to every Conv2d/Linear weight of a copy of the model:

============  ==========================================  ==========================================
method        post-training (no gradient step)            fine-tuned (``pvq.train.train``)
============  ==========================================  ==========================================
quantization  PTQ: per-tensor MSE scales                  LSQ: weights and step sizes learned
pruning       one-shot magnitude pruning                  gradual magnitude pruning, cubic schedule
============  ==========================================  ==========================================

Both stages re-estimate BatchNorm statistics on the same training batches (the fine-tuning loop
always does), so what separates a post-training model from its fine-tuned twin is the gradient
steps alone. Results are records (one row per model) with the calibration and the test accuracy
and which test examples the model gets right (``test_correct``, for paired comparisons):
learning rates are chosen on calibration accuracy, test accuracy is only reported.

The protocol of a comparison: ``grid_sweep`` (each method over its own learning-rate grid, a few
seeds), ``learning_rate_choice`` (the pick and whether it is inside its grid), ``at_chosen_rates``
(more seeds at the picks), ``paired_gap_table`` / ``accuracy_intervals`` (bootstrap intervals
over seeds and test examples or their originals) and, for representations, the control
``uncompressed_runs`` (the same training without compression).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, SequentialSampler, TensorDataset
from torch.utils.data.dataloader import default_collate

from pvq._validation import (call_model, check_bits, check_fraction, check_int, check_module,
                             check_positive)
from pvq.compression import equivalent_sparsity
from pvq.data import DigitsLoaders
from pvq.layers import compressible_layers
from pvq.pruning_schedule import GradualMagnitudePruning
from pvq.qat import apply_lsq, lsq_quantizers
from pvq.representations import compare_layers
from pvq.stats import PairedGap, paired_bootstrap
from pvq.train import Batches, checked_batches, loader_length, reestimate_batchnorm, train

#: the two ways to compress, named as in ``pvq.plotting.COLORS``
METHODS = ("quantization", "pruning")
#: what each method is called in each stage
NAMES = {("quantization", "post-training"): "PTQ", ("pruning", "post-training"): "one-shot",
         ("quantization", "fine-tuned"): "LSQ", ("pruning", "fine-tuned"): "GMP"}
#: the bit-widths the paper compares (sparsities 50, 62.5, 75, 81.25 and 87.5 %)
BITS = (8, 6, 4, 3, 2)
#: notebook 5's learning-rate grids on the task with headroom (one epoch of fine-tuning): four
#: rates a factor of about 3 apart per method; notebook 6 searches their union
LEARNING_RATE_GRIDS = {"quantization": (0.0003, 0.001, 0.003, 0.01),
                       "pruning": (0.03, 0.1, 0.3, 1.0)}


@dataclass(frozen=True)
class Budget:
    """What every fine-tuning run gets, whichever the method.

    ``epochs`` of SGD (momentum 0.9, cosine schedule), LSQ's step sizes with Adam at
    ``step_size_lr``; gradual pruning reaches its final sparsity after ``pruning_fraction`` of the
    steps (the paper: 15 of 20 epochs) and updates its masks every ``update_every`` steps;
    ``bn_batches`` training batches re-estimate BatchNorm at the end.
    """

    epochs: int = 5
    step_size_lr: float = 1e-4
    pruning_fraction: float = 0.75
    update_every: int = 5
    bn_batches: int = 20

    def __post_init__(self) -> None:
        check_fraction(self.pruning_fraction, "pruning_fraction")
        check_positive(self.step_size_lr, "step_size_lr")
        for name in ("epochs", "update_every", "bn_batches"):
            check_int(getattr(self, name), name, 1)


def _check_loaders(loaders: object) -> DigitsLoaders:
    if not isinstance(loaders, DigitsLoaders):
        raise TypeError(f"loaders must be a pvq.data.DigitsLoaders (train, calibration, test), "
                        f"got {type(loaders).__name__}")
    return loaders


def _check_budget(budget: object) -> Budget:
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a pvq.finetune.Budget, got {type(budget).__name__}")
    return budget


def _check_records(records: object, *columns: str) -> pd.DataFrame:
    """Records as ``run``, ``sweep`` and ``uncompressed_runs`` return them, with ``columns``."""
    if not isinstance(records, pd.DataFrame):
        raise TypeError(f"records must be a pandas DataFrame of runs (sweep, grid_sweep), "
                        f"got {type(records).__name__}")
    missing = [column for column in ("method", "stage", *columns) if column not in records]
    if missing:
        raise ValueError(f"records lack the columns {missing}")
    return records


def _seeds(seeds: Iterable[int]) -> tuple[int, ...]:
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(f"seeds must be a collection of integers, got {seeds!r}")
    seeds = tuple(check_int(seed, "seeds", 0) for seed in seeds)
    if not seeds:
        raise ValueError("seeds must not be empty")
    return seeds


def _check_method(method: object) -> str:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    return method


def _compress(model: nn.Module, method: str, bits: int,
              *, end_step: int, update_every: int) -> list[Callable[[int], None]]:
    """Quantize (LSQ at MSE scales) or prune ``model`` in place; return the training callbacks.

    A model whose every layer already carries an LSQ quantizer at ``bits`` keeps them.
    """
    if _check_method(method) == "quantization":
        quantizers = lsq_quantizers(model)
        if not quantizers:
            apply_lsq(model, bits)
        elif len(quantizers) != len(compressible_layers(model)) or any(
                quantizer.bits != bits for quantizer in quantizers.values()):
            raise ValueError(f"model is already quantized, but not every layer at {bits} bits")
        return []
    return [GradualMagnitudePruning(model, equivalent_sparsity(bits), end_step=end_step,
                                    update_every=update_every)]


def compress(model: nn.Module, method: str, bits: int) -> nn.Module:
    """A compressed copy of ``model``, no training, BatchNorm untouched: quantized to ``bits``
    (LSQ quantizers at their MSE scales, i.e. PTQ) or magnitude-pruned to ``1 - bits/16``."""
    bits = check_bits(bits)
    compressed = copy.deepcopy(model)
    _compress(compressed, method, bits, end_step=0, update_every=1)
    return compressed.eval()


def post_training(model: nn.Module, method: str, bits: int, loader: Batches,
                  *, bn_batches: int = 20) -> nn.Module:
    """``compress``, then BatchNorm re-estimated on the first ``bn_batches`` batches of
    ``loader`` (a shuffling DataLoader's generator is re-seeded with 0 first, as ``train`` does).
    """
    compressed = compress(model, method, bits)
    shuffling = getattr(loader, "generator", None)
    if isinstance(shuffling, torch.Generator):
        shuffling.manual_seed(0)
    reestimate_batchnorm(compressed, loader, batches=bn_batches)
    return compressed.eval()


def fine_tune(model: nn.Module, method: str, bits: int, loader: Batches, *, lr: float,
              seed: int = 0, budget: Budget = Budget()) -> nn.Module:
    """A compressed copy of ``model`` fine-tuned with ``pvq.train.train``: LSQ at ``bits``, or
    gradual magnitude pruning from 0 to ``1 - bits/16`` on the cubic schedule.

    For quantization ``model`` may also be ``compress(fp32_model, "quantization", bits)``: LSQ
    then starts from its step sizes (the same MSE scales, without computing them again).
    """
    bits, budget = check_bits(bits), _check_budget(budget)
    tuned = copy.deepcopy(check_module(model))
    end_step = round(budget.pruning_fraction * budget.epochs * loader_length(loader))
    callbacks = _compress(tuned, method, bits, end_step=end_step,
                          update_every=budget.update_every)
    train(tuned, loader, epochs=budget.epochs, lr=lr, seed=seed, callbacks=callbacks,
          step_size_lr=budget.step_size_lr, bn_batches=budget.bn_batches, progress=False)
    return tuned


def _record(model: nn.Module, loaders: DigitsLoaders, **keys: object) -> dict:
    """``keys``, then ``model``'s calibration accuracy, its per-example test correctness
    (``test_correct``), their mean (``test_accuracy``) and ``model`` itself."""
    correct = per_example_correct(model, loaders.test)
    calibration = per_example_correct(model, loaders.calibration)
    return {**keys, "calibration_accuracy": float(calibration.mean()),
            "test_accuracy": float(correct.mean()), "test_correct": correct, "model": model}


def run(model: nn.Module, method: str, bits: int, loaders: DigitsLoaders, *, lr: float | None,
        seed: int = 0, budget: Budget = Budget()) -> dict:
    """One method at one level for one seed: fine-tuned with learning rate ``lr``, or the
    post-training model if ``lr`` is None (BatchNorm re-estimated on ``loaders.train``).

    Returns a record: ``method, stage, bits, sparsity, lr, seed, calibration_accuracy,
    test_accuracy, test_correct`` (``per_example_correct`` on ``loaders.test``, the paired data
    of ``paired_gap_table``) and the compressed ``model`` itself.
    """
    loaders, budget = _check_loaders(loaders), _check_budget(budget)
    if lr is None:
        compressed = post_training(model, method, bits, loaders.train,
                                   bn_batches=budget.bn_batches)
    else:
        compressed = fine_tune(model, method, bits, loaders.train, lr=lr, seed=seed,
                               budget=budget)
    return _record(compressed, loaders, method=method,
                   stage="post-training" if lr is None else "fine-tuned", bits=bits,
                   sparsity=equivalent_sparsity(bits), lr=math.nan if lr is None else lr,
                   seed=seed)


def sweep(model: nn.Module, loaders: DigitsLoaders, *, methods: Iterable[str] = METHODS,
          bits: Iterable[int] = BITS, lrs: Iterable[float | None] = (None,),
          seeds: Iterable[int] = (0,), budget: Budget = Budget()) -> pd.DataFrame:
    """``run`` for every method, learning rate, seed and bit-width (only seed 0 for
    ``lr=None``, which has no randomness): one row per run, the models in column ``model``."""
    methods, bits = [_check_method(m) for m in methods], [check_bits(b) for b in bits]
    loaders, seeds = _check_loaders(loaders), _seeds(seeds)
    lrs = tuple(None if lr is None else check_positive(lr, "lrs") for lr in lrs)
    if not (methods and bits and lrs):
        raise ValueError("methods, bits and lrs must not be empty")
    records = []
    for method in methods:
        # LSQ's MSE scales are computed once per bit-width, not once per run
        starts = {b: compress(model, method, b) if method == "quantization" else model
                  for b in bits}
        for lr in lrs:
            for seed in ((0,) if lr is None else seeds):
                records += [run(starts[b], method, b, loaders, lr=lr, seed=seed, budget=budget)
                            for b in bits]
    return pd.DataFrame(records)


#: the network and task with headroom that notebooks 5 and 6 fine-tune (``pvq.baselines``)
HEADROOM_NETWORK = "digits_cnn_small"


@cache
def headroom_setup() -> tuple[nn.Module, DigitsLoaders]:
    """The shipped ``digits_cnn_small`` and its distorted-digits loaders, loaded once per
    process (each worker process of ``pvq.parallel`` loads its own)."""
    from pvq.baselines import baseline_loaders
    from pvq.zoo import pretrained

    return pretrained(HEADROOM_NETWORK), baseline_loaders(HEADROOM_NETWORK)


def headroom_run(job: tuple) -> dict:
    """``run`` of the shipped ``digits_cnn_small`` on the distorted digits with ``job = (method,
    bits, lr, seed, budget)``, from the start ``sweep`` gives it: its record without the model.
    A function of the job alone, so ``pvq.parallel.parallel_map`` may run it in another
    process (a fine-tuned model holds parametrizations, which do not travel between processes)."""
    if not (isinstance(job, tuple) and len(job) == 5):
        raise TypeError(f"job must be a tuple (method, bits, lr, seed, budget), got {job!r}")
    method, bits, lr, seed, budget = job
    method, bits = _check_method(method), check_bits(bits)
    baseline, loaders = headroom_setup()
    start = compress(baseline, method, bits) if method == "quantization" else baseline
    record = run(start, method, bits, loaders, lr=lr, seed=seed, budget=_check_budget(budget))
    return {key: value for key, value in record.items() if key != "model"}


def grid_sweep(model: nn.Module, loaders: DigitsLoaders,
               grids: Mapping[str, Iterable[float]], *, bits: Iterable[int] = BITS,
               seeds: Iterable[int] = (0,), budget: Budget = Budget()) -> pd.DataFrame:
    """``sweep`` of each method over its own learning-rate grid ``grids[method]`` (fine-tuned
    runs only, every level and seed): the records ``choose_learning_rates`` picks from."""
    if not isinstance(grids, Mapping) or not grids:
        raise ValueError("grids must map at least one method to its learning rates")
    bits, seeds = tuple(bits), _seeds(seeds)
    frames = []
    for method, grid in grids.items():
        grid = tuple(check_positive(lr, "grids' learning rates") for lr in grid)
        if not grid:
            raise ValueError(f"the grid of {_check_method(method)} is empty")
        frames.append(sweep(model, loaders, methods=(method,), bits=bits, lrs=grid, seeds=seeds,
                            budget=budget))
    return pd.concat(frames, ignore_index=True)


def choose_learning_rates(records: pd.DataFrame) -> dict[str, float]:
    """Per method, the learning rate with the highest calibration accuracy averaged over all
    its levels and seeds (fine-tuned records only; a tie goes to the smaller rate)."""
    _check_records(records, "lr", "calibration_accuracy")
    tuned = records[records["stage"] == "fine-tuned"]
    if tuned.empty:
        raise ValueError("records hold no fine-tuned run")
    means = tuned.groupby(["method", "lr"])["calibration_accuracy"].mean()
    chosen = {}
    for method, by_lr in means.groupby(level="method"):
        by_lr = by_lr.droplevel("method").sort_index()
        chosen[method] = float(by_lr.idxmax())  # idxmax keeps the first (smallest) of ties
    return chosen


def at_chosen_rates(model: nn.Module, loaders: DigitsLoaders, records: pd.DataFrame, *,
                    seeds: Iterable[int], budget: Budget = Budget()) -> pd.DataFrame:
    """Each method's fine-tuned runs at its rate chosen on ``records``
    (``choose_learning_rates``), for every seed of ``seeds`` at every level of ``records``: the
    runs ``records`` already holds are kept, the missing seeds are run (``sweep``).

    ``budget`` must be the one ``records`` were trained with; ``model`` the one they started
    from.
    """
    _check_records(records, "lr", "calibration_accuracy")
    loaders = _check_loaders(loaders)
    seeds = tuple(check_int(seed, "seeds", 0) for seed in seeds)
    if not seeds:
        raise ValueError("seeds is empty")
    tuned = records[records["stage"] == "fine-tuned"]
    frames = []
    for method, lr in choose_learning_rates(records).items():
        done = tuned[(tuned["method"] == method) & (tuned["lr"] == lr)
                     & tuned["seed"].isin(seeds)]
        frames.append(done)
        for bits in sorted(tuned.loc[tuned["method"] == method, "bits"].unique(), reverse=True):
            missing = [s for s in seeds if s not in set(done.loc[done["bits"] == bits, "seed"])]
            if missing:
                frames.append(sweep(model, loaders, methods=(method,), bits=(int(bits),),
                                    lrs=(lr,), seeds=missing, budget=budget))
    return (pd.concat(frames, ignore_index=True)
            .sort_values(["method", "bits", "seed"], ascending=[True, False, True],
                         ignore_index=True))


def accuracy_table(records: pd.DataFrame, *, column: str = "test_accuracy") -> pd.DataFrame:
    """One row per bit-width (with its sparsity), for each method and stage the mean of
    ``column`` over seeds, and for fine-tuned runs also the sample standard deviation and the
    number of seeds. Columns are named ``PTQ``, ``one-shot``, ``LSQ``, ``LSQ std``, ...
    Each method and stage must come with one learning rate only.
    """
    _check_records(records, "bits")
    if column not in records:
        raise ValueError(f"column must be one of {list(records.columns)}, got {column!r}")
    table = pd.DataFrame(index=pd.Index(sorted(records["bits"].unique(), reverse=True),
                                        name="bits"))
    table["sparsity"] = [equivalent_sparsity(int(b)) for b in table.index]
    for (method, stage), name in NAMES.items():
        rows = records[(records["method"] == method) & (records["stage"] == stage)]
        if rows.empty:
            continue
        if rows["lr"].nunique() > 1:
            raise ValueError(f"{name} records mix learning rates: keep the chosen one only")
        values = rows.groupby("bits")[column]
        table[name] = values.mean()
        if stage == "fine-tuned":
            table[f"{name} std"] = values.std(ddof=1)
            table[f"{name} seeds"] = values.count()
    return table


def representation_table(original: nn.Module, records: pd.DataFrame,
                         inputs: torch.Tensor) -> pd.DataFrame:
    """``pvq.representations.compare_layers`` of each record's ``model`` against ``original``
    on ``inputs``: one row per model and layer, with the record's method, stage, bits, lr and
    seed, the layer, ``snr_db`` and ``cka``."""
    _check_records(records, "bits", "lr", "seed", "model")
    keys = ["method", "stage", "bits", "lr", "seed"]
    rows = [compare_layers(original, record["model"], inputs).reset_index().assign(
        **{key: record[key] for key in keys}) for _, record in records.iterrows()]
    if not rows:
        raise ValueError("records is empty")
    return pd.concat(rows, ignore_index=True)[[*keys, "layer", "snr_db", "cka"]]


def fine_tune_uncompressed(model: nn.Module, loader: Batches, *, lr: float, seed: int = 0,
                           budget: Budget = Budget()) -> nn.Module:
    """A copy of ``model`` fine-tuned in FP32 with the same loop and ``budget`` as
    ``fine_tune``: how far the representations drift from training alone, without compression."""
    budget = _check_budget(budget)
    tuned = copy.deepcopy(check_module(model))
    train(tuned, loader, epochs=budget.epochs, lr=lr, seed=seed,
          bn_batches=budget.bn_batches, progress=False)
    return tuned


def uncompressed_runs(model: nn.Module, loaders: DigitsLoaders, *, lrs: Iterable[float],
                      seeds: Iterable[int] = (0,), budget: Budget = Budget()) -> pd.DataFrame:
    """``fine_tune_uncompressed`` at every rate and seed, as records like ``run``'s: method
    ``"fp32"``, stage ``"fine-tuned"``, bits 32, sparsity 0 (the control for representations:
    the drift that training alone causes)."""
    lrs, seeds = tuple(check_positive(lr, "lrs") for lr in lrs), _seeds(seeds)
    loaders = _check_loaders(loaders)
    if not lrs:
        raise ValueError("lrs must not be empty")
    return pd.DataFrame([_record(fine_tune_uncompressed(model, loaders.train, lr=lr, seed=seed,
                                                        budget=budget),
                                 loaders, method="fp32", stage="fine-tuned", bits=32,
                                 sparsity=0.0, lr=lr, seed=seed)
                         for lr in lrs for seed in seeds])


def _in_order(loader: Batches) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """``loader``'s batches; for a sequential DataLoader over a TensorDataset the same batches
    sliced from its tensors (equal values, without indexing and collating row by row)."""
    dataset = getattr(loader, "dataset", None)
    if (isinstance(loader, DataLoader) and isinstance(dataset, TensorDataset)
            and isinstance(loader.sampler, SequentialSampler) and loader.batch_size
            and not loader.drop_last and loader.collate_fn is default_collate
            and len(dataset.tensors) == 2):
        inputs, labels = dataset.tensors
        for start in range(0, len(labels), loader.batch_size):
            yield inputs[start:start + loader.batch_size], labels[start:start + loader.batch_size]
    else:
        yield from checked_batches(loader)


def per_example_correct(model: nn.Module, loader: Batches) -> np.ndarray:
    """Whether ``model`` (in eval mode, no gradients) classifies each example of ``loader``
    correctly, in the loader's order: the paired data of ``pvq.stats``."""
    was_training = check_module(model).training
    model.eval()
    try:
        with torch.no_grad():
            outcome = [(call_model(model, inputs, "loader's inputs").argmax(dim=1) == labels).numpy()
                       for inputs, labels in _in_order(loader)]
    finally:
        model.train(was_training)
    if not outcome:
        raise ValueError("loader is empty")
    return np.concatenate(outcome)


def learning_rate_choice(records: pd.DataFrame) -> pd.DataFrame:
    """``choose_learning_rates`` with its evidence: per method the chosen rate, the grid
    searched, whether the choice is strictly inside it (not on an edge, which would call for a
    wider grid) and the fewest seeds any rate of the grid was tried with."""
    chosen = choose_learning_rates(records)
    tuned = records[records["stage"] == "fine-tuned"]
    rows = []
    for method, lr in chosen.items():
        grid = sorted(tuned.loc[tuned["method"] == method, "lr"].unique())
        rows.append({"method": method, "lr": lr, "grid": tuple(float(g) for g in grid),
                     "inside": grid[0] < lr < grid[-1],
                     "seeds": int(tuned[tuned["method"] == method].groupby(["lr", "bits"])
                                  ["seed"].nunique().min())})
    return pd.DataFrame(rows).set_index("method")


def paired_gap_table(records: pd.DataFrame, *, groups: np.ndarray | None = None,
                     first: str = "quantization", second: str = "pruning",
                     confidence: float = 0.95, resamples: int = 10_000) -> pd.DataFrame:
    """Per bit-width, the fine-tuned accuracies of ``first`` and ``second`` (means over seeds)
    and ``pvq.stats.paired_bootstrap`` of their gap on the same test examples, seeds paired by
    number: columns ``first, second, gap, low, high, seeds``.

    ``records`` need a ``test_correct`` column (``per_example_correct`` on the test loader) and
    one learning rate per method; ``groups`` labels the test examples made from one original.
    """
    _check_records(records, "bits", "seed")
    if "test_correct" not in records:
        raise ValueError("records need a test_correct column (per_example_correct)")
    tuned = records[records["stage"] == "fine-tuned"]
    rows = []
    for bits in sorted(tuned["bits"].unique(), reverse=True):
        by_method = {}
        for method in (first, second):
            rows_m = tuned[(tuned["method"] == method) & (tuned["bits"] == bits)]
            if rows_m["lr"].nunique() != 1:
                raise ValueError(f"{method} at {bits} bits needs exactly one learning rate")
            by_method[method] = rows_m.set_index("seed")["test_correct"]
        seeds = sorted(set(by_method[first].index) & set(by_method[second].index))
        if not seeds:
            raise ValueError(f"no seed has both {first} and {second} at {bits} bits")
        a, b = (np.stack([by_method[m][s] for s in seeds]) for m in (first, second))
        gap = paired_bootstrap(a, b, groups=groups, confidence=confidence, resamples=resamples)
        rows.append({"bits": int(bits), "sparsity": equivalent_sparsity(int(bits)),
                     first: a.mean(), second: b.mean(), "gap": gap.gap, "low": gap.low,
                     "high": gap.high, "seeds": len(seeds)})
    return pd.DataFrame(rows).set_index("bits")


def accuracy_interval(correct: object, *, groups: np.ndarray | None = None,
                      confidence: float = 0.95, resamples: int = 10_000) -> PairedGap:
    """Mean accuracy of per-example ``correct`` (``(n,)`` or ``(seeds, n)``) with the percentile
    bootstrap interval of ``pvq.stats.paired_bootstrap`` (seeds and ``groups`` resampled):
    the gap to a classifier that is always wrong."""
    correct = np.asarray(correct)
    return paired_bootstrap(correct, np.zeros(correct.shape, dtype=np.int8), groups=groups,
                            confidence=confidence, resamples=resamples)


def accuracy_intervals(records: pd.DataFrame, *, groups: np.ndarray | None = None,
                       confidence: float = 0.95, resamples: int = 10_000) -> pd.DataFrame:
    """Per method, stage, level and learning rate of ``records`` (which need ``test_correct``):
    ``name`` (``NAMES``, else the method), the mean test accuracy over seeds with its
    ``accuracy_interval`` (``low``, ``high``) and the number of ``seeds``."""
    _check_records(records, "bits", "lr")
    if "test_correct" not in records:
        raise ValueError("records need a test_correct column (per_example_correct)")
    if records.empty:
        raise ValueError("records is empty")
    rows = []
    keys = ["method", "stage", "bits", "lr"]
    for (method, stage, bits, lr), group in records.groupby(keys, dropna=False, sort=False):
        interval = accuracy_interval(np.stack(list(group["test_correct"])), groups=groups,
                                     confidence=confidence, resamples=resamples)
        rows.append({"method": method, "stage": stage, "bits": bits, "lr": lr,
                     "name": NAMES.get((method, stage), method), "accuracy": interval.gap,
                     "low": interval.low, "high": interval.high, "seeds": len(group)})
    return pd.DataFrame(rows)
