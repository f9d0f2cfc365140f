"""A figure with sliders that still means something when the notebook runs non-interactively."""

from __future__ import annotations

from collections.abc import Callable
from uuid import uuid4

from IPython.display import display, update_display
from IPython.utils.capture import capture_output
from ipywidgets import ValueWidget, VBox


def figure_with_sliders(draw: Callable[..., None], **sliders: ValueWidget) -> VBox:
    """Show the sliders, then the one figure that ``draw(**defaults)`` shows, under them.

    Moving a slider calls ``draw(**values)`` again and replaces that figure in place (an IPython
    display with a display id). The first drawing is an ordinary output, so a stored or
    non-interactive run (nbval, the HTML site) shows the default figure, and the sliders' text
    form is stable for nbval to compare.
    """
    if not callable(draw):
        raise TypeError(f"draw must be a function drawing one figure, got {type(draw).__name__}")
    if not sliders:
        raise ValueError("sliders: give at least one keyword, e.g. bits=IntSlider(...)")
    for name, slider in sliders.items():
        if not isinstance(slider, ValueWidget):
            raise TypeError(f"slider {name!r} must be an ipywidgets value widget, "
                            f"got {type(slider).__name__}")
    panel = VBox(list(sliders.values()))
    display(panel)
    figure_id = uuid4().hex

    def figure() -> tuple[dict, dict]:
        with capture_output(stdout=False, stderr=False) as shown:
            draw(**{name: slider.value for name, slider in sliders.items()})
        if len(shown.outputs) != 1:
            raise ValueError(f"draw must show exactly one figure, it showed {len(shown.outputs)}")
        return shown.outputs[0].data, shown.outputs[0].metadata

    data, metadata = figure()
    display(data, raw=True, metadata=metadata, display_id=figure_id)

    def redraw(change: dict) -> None:
        data, metadata = figure()
        update_display(data, raw=True, metadata=metadata, display_id=figure_id)

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    return panel
