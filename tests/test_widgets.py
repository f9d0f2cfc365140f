"""The slider helper: a static first drawing, redraws on change, clear errors."""

import pytest
from ipywidgets import FloatSlider, IntSlider

from pvq.widgets import figure_with_sliders


def test_draws_once_with_defaults_then_on_every_change():
    calls = []
    bits, sparsity = IntSlider(value=4, min=2, max=8), FloatSlider(value=0.75, min=0, max=0.9)
    figure_with_sliders(lambda **values: calls.append(values), bits=bits, sparsity=sparsity)
    assert calls == [{"bits": 4, "sparsity": 0.75}]
    bits.value = 2
    assert calls[-1] == {"bits": 2, "sparsity": 0.75}
    sparsity.value = 0.5
    assert calls[-1] == {"bits": 2, "sparsity": 0.5} and len(calls) == 3


def test_bad_sliders_are_refused():
    with pytest.raises(ValueError, match="sliders"):
        figure_with_sliders(lambda: None)
    with pytest.raises(TypeError, match="bits"):
        figure_with_sliders(lambda bits: None, bits=4)
