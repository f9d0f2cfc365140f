"""The SNR gap over kurtosis, its crossover, and the tables of measured tensors."""

import numpy as np
import pandas as pd
import pytest
import torch

from pvq.data import model_zoo_sqnr
from pvq.distributions import limit_for_kurtosis, truncated_student_t
from pvq.heavy_tails import (authors_snr_db, clean_zoo, crossover_kurtosis, quirk_counts, snr_gap_db,
                             snr_gap_map, tensor_snr_table, win_rates, win_rates_by_bits, zoo_rms)
from pvq.metrics import kurtosis, snr_db
from pvq.prune import magnitude_prune
from pvq.quantize import mse_scale, quantize
from pvq.theory import pruning_snr_db, quantization_snr_db


def test_gap_is_the_difference_of_the_two_snrs():
    dist = truncated_student_t(2, limit_for_kurtosis(8.0))
    expected = quantization_snr_db(dist, 3) - pruning_snr_db(dist, 1 - 3 / 16)
    assert snr_gap_db(8.0, 3) == pytest.approx(expected)


def test_map_falls_with_kurtosis_and_rises_with_bits():
    table = snr_gap_map(np.array([2.0, 5.0, 30.0, 200.0]), range(2, 5))
    assert list(table.columns) == [2, 3, 4]
    assert (table.diff(axis=0).iloc[1:] < 0).all().all()
    assert (table.diff(axis=1).iloc[:, 1:] > 0).all().all()


@pytest.mark.parametrize("bits", [2, 3])
def test_crossover_is_where_the_gap_vanishes(bits):
    crossing = crossover_kurtosis(bits)
    assert 3.0 < crossing < 100.0
    assert abs(snr_gap_db(crossing, bits)) < 1e-3
    assert snr_gap_db(crossing * 0.8, bits) > 0 > snr_gap_db(crossing * 1.25, bits)


def test_no_crossover_below_the_search_limit_is_infinite():
    assert crossover_kurtosis(8, highest=50.0) == float("inf")


def test_tensor_table_measures_like_the_library():
    w = np.random.default_rng(0).laplace(size=4000)
    table = tensor_snr_table({"layer": w}, bit_widths=(2, 4), model="toy")
    row = table[table.bits == 4].iloc[0]
    assert row["model"] == "toy" and row["kurtosis"] == pytest.approx(kurtosis(w))
    assert row["quant_sqnr_db"] == pytest.approx(snr_db(w, quantize(w, 4, mse_scale(w, 4))))
    assert row["pruning_sqnr_db"] == pytest.approx(snr_db(w, magnitude_prune(w, 0.75)))


def test_win_rates_count_pruning_wins():
    table = pd.DataFrame({"bits": [2, 2, 2, 4], "quant_sqnr_db": [5.0, 9.0, 1.0, 20.0],
                          "pruning_sqnr_db": [6.0, 3.0, 2.0, 4.0]})
    rates = win_rates(table, "bits")
    assert rates.loc[2, "pruning wins"] == pytest.approx(2 / 3) and rates.loc[2, "tensors"] == 3
    assert rates.loc[4, "pruning wins"] == 0.0


def _zoo_like(rows: list[tuple[int, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["bits", "sample_kurtosis", "quant_sqnr_db",
                                       "pruning_sqnr_db"])


def test_each_quirk_is_flagged_counted_and_removed_once():
    table = _zoo_like([(2, 1.0, 8.0, 3.0), (2, -3.0, 8.0, 9.0), (2, np.inf, 8.0, np.inf),
                       (4, 0.5, 19.0, np.inf), (4, 2.0, 19.0, 5.0)])
    counts = quirk_counts(table)
    assert counts.loc[2].to_dict() == {"infinite pruning SNR": 1, "excess kurtosis exactly -3": 1,
                                       "infinite excess kurtosis": 1, "any quirk": 2, "clean": 1}
    assert counts.loc[4, "any quirk"] == 1 and counts.loc[4, "clean"] == 1
    clean = clean_zoo(table)
    assert list(clean.index) == [0, 4] and list(clean["kurtosis"]) == [4.0, 5.0]
    rates = win_rates_by_bits(table)
    assert rates.loc[2, ("all rows", "tensors")] == 3 and rates.loc[2, ("clean rows", "tensors")] == 1
    assert rates.loc[2, ("all rows", "pruning wins")] == pytest.approx(2 / 3)


def test_zoo_rms_inverts_the_snr():
    table = pd.DataFrame({"quant_mse": [1e-4], "quant_sqnr_db": [20.0]})
    assert zoo_rms(table).iloc[0] == pytest.approx(0.1)


def test_authors_procedure_in_fp32_matches_the_course_on_large_weights():
    w = np.random.default_rng(1).normal(0.0, 1.0, 4096)
    quant, pruning = authors_snr_db(w, 4, torch.float32)
    assert pruning == pytest.approx(snr_db(w, magnitude_prune(w, 0.75)), abs=1e-4)
    # their 100-point search is close to the MSE-optimal scale for weights of size 1
    assert quant == pytest.approx(snr_db(w, quantize(w, 4, mse_scale(w, 4))), abs=0.1)


def test_authors_procedure_in_fp16_loses_snr_on_small_weights():
    w = np.random.default_rng(0).normal(0.0, 0.005, (256, 256))
    half, single = authors_snr_db(w, 8), authors_snr_db(w, 8, torch.float32)
    assert half[0] < single[0] - 1.0
    with pytest.raises(ValueError, match="weights"):
        authors_snr_db(np.array([np.nan]), 8)


def test_the_shipped_table_has_the_quirks_notebook_3_reports():
    counts = quirk_counts(model_zoo_sqnr())
    assert (counts["excess kurtosis exactly -3"] == 139).all()
    assert (counts["infinite excess kurtosis"] == 12).all()
    assert counts["infinite pruning SNR"].is_monotonic_increasing
    assert counts["any quirk"].sum() == 1326 and counts.loc[2, "clean"] == 2546
