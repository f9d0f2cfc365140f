"""A figure with sliders that still means something when the notebook runs non-interactively."""

from __future__ import annotations

from collections.abc import Callable

from IPython.display import clear_output, display
from ipywidgets import Output, ValueWidget, VBox


def figure_with_sliders(draw: Callable[..., None], **sliders: ValueWidget) -> VBox:
    """Draw ``draw(**defaults)`` once as a plain output, then show the sliders under it.

    Moving a slider redraws ``draw(**values)`` in an output area below the sliders. The first,
    static drawing is what a stored or non-interactive run (nbval, the HTML site) shows; the
    sliders' text form is stable, so nbval can compare it.
    """
    if not sliders:
        raise ValueError("sliders: give at least one keyword, e.g. bits=IntSlider(...)")
    for name, slider in sliders.items():
        if not isinstance(slider, ValueWidget):
            raise TypeError(f"slider {name!r} must be an ipywidgets value widget, "
                            f"got {type(slider).__name__}")
    draw(**{name: slider.value for name, slider in sliders.items()})
    picture = Output()

    def redraw(change: dict) -> None:
        with picture:
            clear_output(wait=True)
            draw(**{name: slider.value for name, slider in sliders.items()})

    for slider in sliders.values():
        slider.observe(redraw, names="value")
    panel = VBox([*sliders.values(), picture])
    display(panel)
    return panel
