"""Shipped data (the paper's model-zoo table) and the exercise checker."""

import numpy as np
import pytest

from pvq.data import model_zoo_sqnr
from pvq.exercises import ExerciseNotAnswered, check_answer


def test_model_zoo_table_has_the_papers_shape():
    table = model_zoo_sqnr()
    assert table.model.nunique() == 45
    assert table.groupby("bits").size().to_dict() == {b: 2704 for b in range(2, 9)}
    np.testing.assert_allclose(table.sparsity, 1 - table.bits / 16)
    assert np.isfinite(table.quant_sqnr_db).all()
    # FP16 artefacts (pvq.heavy_tails.ZOO_QUIRKS): pruning errors that round to 0 (infinite SNR)
    assert 0 < np.isinf(table.pruning_sqnr_db).sum() < 0.02 * len(table)


def test_model_zoo_sqnr_is_consistent_with_its_mse():
    # SQNR = 10 log10(E[w^2] / MSE): the implied signal power must agree between the two methods.
    table = model_zoo_sqnr()
    power_q = table.quant_mse * 10 ** (table.quant_sqnr_db / 10)
    power_p = table.pruning_mse * 10 ** (table.pruning_sqnr_db / 10)
    finite = np.isfinite(power_p) & (table.pruning_mse > 0)
    assert finite.mean() > 0.98
    assert np.max(np.abs(power_q / power_p - 1)[finite]) < 1e-4


def test_check_answer_accepts_right_and_explains_wrong(capsys):
    check_answer("ex", 0.875, 0.875)
    assert "correct" in capsys.readouterr().out
    with pytest.raises(ExerciseNotAnswered, match="no answer yet"):
        check_answer("ex", None, 0.875)
    with pytest.raises(ExerciseNotAnswered):
        check_answer("ex", ..., 0.875)
    with pytest.raises(AssertionError, match="not right"):
        check_answer("ex", 0.5, 0.875)
    with pytest.raises(AssertionError, match="expected a number"):
        check_answer("ex", "0.875", 0.875)
    check_answer("arr", [1.0, 2.0], np.array([1.0, 2.0]))
