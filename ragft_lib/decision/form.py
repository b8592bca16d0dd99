"""An ipywidgets form for a :class:`~ragft_lib.decision.Scenario` that shows its recommendation
(ipywidgets imported when the form is built)."""

from __future__ import annotations

import html
from typing import Any

from ..errors import RagftError
from .rules import recommend
from .scenario import Recommendation, Scenario

__all__ = ["ScenarioForm", "form", "fmt_plain"]


class ScenarioForm:
    """An ipywidgets form with one input per :class:`Scenario` field, generated from its metadata.

    Built by :func:`form`. ``scenario()`` reads the inputs into a validated :class:`Scenario`;
    ``submit()`` (the button) shows the report of :func:`recommend`, or the library's error
    message naming the field. Displaying the object displays its widget.
    """

    # Dropdown values are strings: ipywidgets reads a value of None as "nothing selected".
    _NULL_BOOL = (("not measured", "none"), ("yes", "yes"), ("no", "no"))
    _NULL_BOOL_VALUE = {"none": None, "yes": True, "no": False}

    def __init__(self, scenario: Scenario | None = None, **recommend_kwargs: Any) -> None:
        import ipywidgets as w

        s = scenario or Scenario()
        self.recommend_kwargs = recommend_kwargs
        style, layout = {"description_width": "300px"}, w.Layout(width="620px")
        self.inputs: dict[str, Any] = {}
        rows = []
        for spec_ in Scenario.field_specs():
            name, kind, value = spec_["name"], spec_["kind"], getattr(s, spec_["name"])
            label = spec_["label"] + (f" ({spec_['unit']})" if spec_["unit"] else "")
            common = {"description": label, "style": style, "layout": layout, "tooltip": spec_["help"]}
            if kind == "choice":
                widget = w.Dropdown(options=spec_["choices"], value=value, **common)
            elif kind == "bool" and spec_["nullable"]:
                widget = w.Dropdown(options=list(self._NULL_BOOL),
                                    value={None: "none", True: "yes", False: "no"}[value], **common)
            elif kind == "bool":
                widget = w.Checkbox(value=value, indent=True, **common)
            else:  # numbers as text: empty means None for nullable fields; errors come from Scenario
                widget = w.Text(value="" if value is None else fmt_plain(value),
                                placeholder=spec_["null_means"] or "", **common)
            self.inputs[name] = widget
            rows.append(widget)
        self.button = w.Button(description="Recommend", button_style="primary")
        self.button.on_click(lambda _b: self.submit())
        self.error = w.HTML()
        self.output = w.Output()
        self.widget = w.VBox([w.HTML("<b>Your scenario</b> (hover a label for its meaning)"), *rows,
                              self.button, self.error, self.output])
        self.submit()

    def scenario(self) -> Scenario:
        """The inputs as a validated :class:`Scenario` (raises :class:`~ragft_lib.errors.ConfigError` naming the field)."""
        data: dict[str, Any] = {}
        for spec_ in Scenario.field_specs():
            value = self.inputs[spec_["name"]].value
            if spec_["kind"] == "bool" and spec_["nullable"]:
                value = self._NULL_BOOL_VALUE[value]
            elif spec_["kind"] in ("float", "int"):
                text = str(value).strip().replace(",", "").replace("_", "")
                value = None if text == "" and spec_["nullable"] else _number(spec_["name"], text, spec_["kind"])
            data[spec_["name"]] = value
        return Scenario.from_dict(data)

    def submit(self) -> Recommendation | None:
        """Run :func:`recommend` on the form and show its report; returns it (``None`` on an error)."""
        try:
            rec = recommend(self.scenario(), **self.recommend_kwargs)
        except RagftError as err:
            self.error.value = f'<span style="color:#b00">{html.escape(str(err))}</span>'
            return None
        self.error.value = ""
        # Set the output widget's content directly: works in a kernel, in tests, and is saved in
        # the notebook's widget state for the static page.
        self.output.outputs = ({"output_type": "display_data", "metadata": {},
                                "data": {"text/html": rec.to_html(), "text/plain": rec.to_markdown()}},)
        return rec

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from ..display import kernel_only, static_page

        if static_page():  # the HTML book: a frozen form would look live and do nothing
            return kernel_only("A form with one input per scenario field and a Recommend button",
                               "In the HTML book, the live decision form runs the same code in your browser.")
        return self.widget._repr_mimebundle_(**kwargs)


def fmt_plain(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _number(name: str, text: str, kind: str) -> float | int:
    from ..errors import ConfigError

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"must be a number, got {text!r}", field=name) from None
    return int(value) if kind == "int" and value.is_integer() else value


def form(scenario: Scenario | None = None, **recommend_kwargs: Any) -> ScenarioForm:
    """An interactive form (ipywidgets) that fills a :class:`Scenario` and shows its report.

    One input per field, generated from :meth:`Scenario.field_specs` (labels, units, help as
    tooltips); a button runs :func:`recommend` (``recommend_kwargs`` are passed on) and shows
    :meth:`Recommendation.to_html`. Live in Jupyter/Colab; a static HTML page shows the report of
    the scenario it was built with.

    >>> f = form(Scenario(stage="prototype"))                   # doctest: +SKIP
    >>> f.inputs["stage"].value = "production"; f.submit().approach   # doctest: +SKIP
    'rag'
    """
    return ScenarioForm(scenario, **recommend_kwargs)
