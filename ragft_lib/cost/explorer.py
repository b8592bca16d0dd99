"""Sliders for the main cost inputs that redraw the cost curves (ipywidgets, imported when called)."""

from __future__ import annotations

import dataclasses
import math
from types import MappingProxyType
from typing import Any, Mapping

from ..errors import ConfigError
from .model import PRICES_AS_OF, CostInputs, crossover
from .views import plot_costs

__all__ = ["EXPLORER_FIELDS", "CostExplorer", "explorer"]

# ------------------------------------------------------------------------------------------
# Interactive explorer (ipywidgets imported when called)
# ------------------------------------------------------------------------------------------

#: The inputs the explorer gives a slider, each with its (low, high) range on a log scale.
EXPLORER_FIELDS: Mapping[str, tuple[float, float]] = MappingProxyType({
    "price_per_1k_input_tokens_usd": (0.00005, 0.01),
    "finetuned_token_price_multiplier": (1.0, 6.0),
    "rag_context_tokens_per_request": (100.0, 20_000.0),
    "instruction_tokens_saved_by_finetuning": (1.0, 800.0),
    "knowledge_update_days": (1.0, 365.0),
    "training_gpu_hours": (0.5, 200.0),
})


class CostExplorer:
    """Sliders for the main cost inputs that redraw :func:`plot_costs` and restate the crossover.

    Built by :func:`explorer`. ``inputs()`` reads the widgets into a :class:`CostInputs`;
    ``update()`` redraws (called on every change). Displaying the object displays its widget.
    """

    def __init__(self, inputs: CostInputs | None = None, fields: Mapping[str, tuple[float, float]] | None = None,
                 requests_per_day: tuple[float, float] = (1e2, 1e7)) -> None:
        import ipywidgets as w

        self.base = inputs or CostInputs()
        self.range = requests_per_day
        meta = {f.name: f.metadata for f in dataclasses.fields(CostInputs)}
        style, layout = {"description_width": "320px"}, w.Layout(width="640px")
        self.sliders: dict[str, Any] = {}
        for name, (lo, hi) in (EXPLORER_FIELDS if fields is None else fields).items():
            if name not in meta or meta[name]["kind"] != "float":
                raise ConfigError("not a numeric field of CostInputs", field=name)
            value = getattr(self.base, name)
            value = hi if value is None else min(max(value, lo), hi)
            unit = meta[name]["unit"]
            self.sliders[name] = w.FloatLogSlider(
                value=value, min=math.log10(lo), max=math.log10(hi), step=0.01,
                description=f"{meta[name]['label']} ({unit})" if unit else meta[name]["label"],
                readout_format=".3g", continuous_update=False, style=style, layout=layout)
        self.static = w.Checkbox(value=self.base.knowledge_update_days is None,
                                 description="Static knowledge (no retraining)", style=style, layout=layout)
        self.hosting = w.ToggleButtons(options=["api", "self-hosted"], value=self.base.hosting,
                                       description="Hosting", style=style)
        self.message = w.HTML()
        self.output = w.Output()
        for widget in [*self.sliders.values(), self.static, self.hosting]:
            widget.observe(lambda _change: self.update(), names="value")
        self.widget = w.VBox([w.HTML("<b>Cost model inputs</b> (prices as of " + PRICES_AS_OF + ")"),
                              *self.sliders.values(), self.static, self.hosting, self.message, self.output])
        self.update()

    def inputs(self) -> CostInputs:
        """The widgets' values as validated :class:`CostInputs` (raises :class:`~ragft_lib.errors.ConfigError`)."""
        values = {k: s.value for k, s in self.sliders.items()}
        if self.static.value:
            values["knowledge_update_days"] = None
        values["hosting"] = self.hosting.value
        prompt = values.get("prompt_tokens_per_request", self.base.prompt_tokens_per_request)
        if values.get("instruction_tokens_saved_by_finetuning", 0) > prompt:
            values["instruction_tokens_saved_by_finetuning"] = prompt
        return self.base.replace(**values)

    def update(self) -> str:
        """Redraw the curves for the current values; returns the crossover sentence shown."""
        import base64
        import io

        import matplotlib.pyplot as plt

        try:
            x = self.inputs()
        except ConfigError as err:
            self.message.value = f'<span style="color:#b00">{err}</span>'
            return str(err)
        text = str(crossover(x)) + "."
        self.message.value = f"<b>{text}</b>"
        fig, ax = plt.subplots(figsize=(7, 4))
        plot_costs(x, requests_per_day=self.range, ax=ax)
        fig.tight_layout()
        png = io.BytesIO()
        fig.savefig(png, format="png", dpi=90)
        plt.close(fig)
        # Set the output widget's content directly: works in a kernel, in tests, and is saved
        # in the notebook's widget state for the static page.
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"image/png": base64.b64encode(png.getvalue()).decode("ascii"),
                                         "text/plain": f"<cost curves: {text}>"}},)
        return text

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from ..display import kernel_only, static_page

        if static_page():  # the HTML book: frozen sliders would look live and do nothing
            return kernel_only("Sliders that redraw these curves",
                               "In the HTML book, the live cost explorer runs the same code in your browser.")
        return self.widget._repr_mimebundle_(**kwargs)


def explorer(inputs: CostInputs | None = None, fields: Mapping[str, tuple[float, float]] | None = None,
             requests_per_day: tuple[float, float] = (1e2, 1e7)) -> CostExplorer:
    """An ipywidgets explorer of the cost curves: sliders for ``fields`` (default
    ``EXPLORER_FIELDS``), a static-knowledge switch and the hosting choice; every change
    redraws :func:`plot_costs` and the crossover sentence. Needs ``ipywidgets`` (live in
    Jupyter/Colab; a static HTML page shows the state it was built with).

    >>> ex = explorer()                                          # doctest: +SKIP
    >>> ex.sliders["finetuned_token_price_multiplier"].value = 1  # doctest: +SKIP
    """
    return CostExplorer(inputs, fields, requests_per_day)
