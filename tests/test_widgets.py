"""The slider helper: sliders first, one figure under them, replaced in place on every change."""

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell
from IPython.display import display
from ipywidgets import FloatSlider, IntSlider, VBox

from pvq.widgets import figure_with_sliders


@pytest.fixture
def published():
    """Everything the IPython shell publishes (displays and display updates), in order."""
    shell = InteractiveShell.instance()
    kept, shell.display_pub = shell.display_pub, CapturingDisplayPublisher()
    yield shell.display_pub.outputs
    shell.display_pub = kept


def show_values(**values) -> None:
    display({"text/plain": repr(values)}, raw=True)


def test_sliders_then_the_default_figure_then_updates_in_place(published):
    bits, sparsity = IntSlider(value=4, min=2, max=8), FloatSlider(value=0.75, min=0, max=0.9)
    panel = figure_with_sliders(show_values, bits=bits, sparsity=sparsity)
    assert isinstance(panel, VBox) and list(panel.children) == [bits, sparsity]
    figure = published[1]
    assert figure["data"] == {"text/plain": "{'bits': 4, 'sparsity': 0.75}"}
    assert not figure["update"]
    bits.value = 2
    sparsity.value = 0.5
    updates = published[2:]
    assert [update["data"]["text/plain"] for update in updates] == [
        "{'bits': 2, 'sparsity': 0.75}", "{'bits': 2, 'sparsity': 0.5}"]
    figure_id = figure["transient"]["display_id"]
    assert all(update["update"] and update["transient"]["display_id"] == figure_id
               for update in updates)


def test_draw_must_show_exactly_one_figure(published):
    with pytest.raises(ValueError, match="exactly one figure, it showed 0"):
        figure_with_sliders(lambda bits: None, bits=IntSlider(value=3))


def test_bad_sliders_are_refused():
    with pytest.raises(ValueError, match="sliders"):
        figure_with_sliders(lambda: None)
    with pytest.raises(TypeError, match="bits"):
        figure_with_sliders(lambda bits: None, bits=4)
