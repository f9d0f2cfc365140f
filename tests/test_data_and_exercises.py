"""Shipped data (the paper's model-zoo table) and the exercise checker."""

import numpy as np
import pytest

from pvq.data import model_zoo_sqnr
from pvq.exercises import (ExerciseNotAnswered, check_choice, check_function, check_functions,
                           check_value)
from pvq.quantize import quantization_grid, quantize


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


def test_check_function_names_the_exercise_the_input_and_the_first_difference(capsys):
    check_function("Exercise 1", lambda bits: np.arange(-(2 ** (bits - 1)), 2 ** (bits - 1)),
                   quantization_grid, [(2,), (3,)])
    assert "Exercise 1: correct on 2 test inputs" in capsys.readouterr().out

    def off_by_one(bits):
        return np.arange(-(2 ** (bits - 1)) + 1, 2 ** (bits - 1))

    with pytest.raises(AssertionError, match=r"Exercise 1: off_by_one\(2\) has shape \(3,\), "
                                             r"expected \(4,\)"):
        check_function("Exercise 1", off_by_one, quantization_grid, [(2,)])

    def round_half_up(w, bits, scale):
        return scale * np.clip(np.floor(w / scale + 0.5), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)

    w = np.array([0.1, 0.25, 0.75])
    with pytest.raises(AssertionError, match=r"differs in 1 of 3 entries; first at index 1: "
                                             r"0\.5 instead of 0\.0"):
        check_function("Exercise 2", round_half_up, quantize, [(w, 4, 0.5)])


def test_check_function_reports_a_missing_answer_or_a_crash_without_raising_it():
    def stub(bits):
        ...

    with pytest.raises(ExerciseNotAnswered, match="Exercise 1: no answer yet: stub\\(2\\) returned None"):
        check_function("Exercise 1", stub, quantization_grid, [(2,)])
    with pytest.raises(ExerciseNotAnswered, match="not defined yet"):
        check_function("Exercise 1", None, quantization_grid, [(2,)])
    with pytest.raises(AssertionError, match="ZeroDivisionError"):
        check_function("Exercise 1", lambda bits: 1 / 0, quantization_grid, [(2,)])


def test_a_failure_message_is_one_short_line_whatever_the_inputs():
    """Large inputs are summarised by shape and range, small results shown in full: the learner
    sees what was expected and what came back, not pages of input arrays."""
    batches = [np.stack([np.full((3, 8, 8), 0.25), np.full((3, 8, 8), 0.75)], axis=1)] * 3

    def pooled_means(batches):
        return np.concatenate(batches).mean(axis=(0, 2, 3)) + [0.0, 0.5]

    with pytest.raises(AssertionError) as failure:
        check_function("Exercise 1", pooled_means,
                       lambda batches: np.concatenate(batches).mean(axis=(0, 2, 3)), [(batches,)])
    message = str(failure.value)
    assert "\n" not in message and len(message) < 400, message
    assert message.startswith("Exercise 1: pooled_means([<array of shape (3, 2, 8, 8), float64, "
                              "from 0.25 to 0.75>, <array of shape (3, 2, 8, 8)"), message
    assert message.count("<array") == 3 and "first at index 1: 1.25 instead of 0.75" in message
    assert "Yours: [0.25, 1.25]; expected: [0.25, 0.75]" in message
    with pytest.raises(AssertionError, match=r"expected: <array of shape \(100,\), float64, "
                                             r"from 0\.0 to 99\.0>$"):
        check_value("Exercise 2", "the codes", np.zeros(100), np.arange(100.0))

    def long_error():
        raise ValueError("x" * 1000)

    with pytest.raises(AssertionError, match=r"raised ValueError: x{200} \.\.\.$"):
        check_function("Exercise 3", long_error, lambda: 0.0, [()])

    def my_verdict(*ends):
        ...

    with pytest.raises(ExerciseNotAnswered, match=r"my_verdict\(8\.0, 12\.5, 3\) returned None"):
        check_function("Exercise 5", my_verdict, max, [(8.0, 12.5, 3)])  # a float stays a float


def test_check_functions_checks_every_function_and_reports_once(capsys):
    pairs = [(np.square, lambda x: x * x), (np.abs, lambda x: -x if x < 0 else x)]
    check_functions("Exercise 2", pairs, [(-2.0,), (3.0,)])
    assert capsys.readouterr().out == "Exercise 2: all 2 functions correct on 2 test inputs\n"
    with pytest.raises(AssertionError, match=r"Exercise 2: negative\(3\) is -3\.0, expected 3\.0"):
        check_functions("Exercise 2", [(np.square, np.square), (np.negative, np.abs)], [(3,)])
    assert capsys.readouterr().out == ""


def test_check_value_compares_numbers_within_tolerance():
    check_value("Exercise 3", "the MSE", 1.005, 1.0, rel_tol=0.01)
    with pytest.raises(AssertionError, match=r"Exercise 3: the MSE is 1\.02, expected 1\.0 "
                                             r"\(difference 0\.02\)"):
        check_value("Exercise 3", "the MSE", 1.02, 1.0, rel_tol=0.01)
    with pytest.raises(AssertionError, match="should be a number"):
        check_value("Exercise 3", "the MSE", "1.0", 1.0)


def test_check_choice_wants_one_of_the_options_and_the_computed_one(capsys):
    options = ["quantization", "pruning"]
    check_choice("Exercise 5", "quantization", "quantization", options)
    assert "so it is" in capsys.readouterr().out
    with pytest.raises(ExerciseNotAnswered, match="no prediction yet"):
        check_choice("Exercise 5", ..., "quantization", options)
    with pytest.raises(AssertionError, match="is not one of"):
        check_choice("Exercise 5", "both", "quantization", options)
    with pytest.raises(AssertionError, match="you predicted 'pruning'; the computation above "
                                             "says 'quantization'"):
        check_choice("Exercise 5", "pruning", "quantization", options)
