"""``model.summary()``: Keras's table of layers, output shapes and parameter counts."""

from __future__ import annotations

from ..layers.base import shape_str


def summary_text(model, line_length=None) -> str:
    """``model.summary()``'s text for any model, read from its graph as Keras reads it: a
    sequential-like model (a Sequential, a functional model that is one chain, a subclassed
    model) gets the three-column table, 65 characters wide by default; any other graph gets the
    "Connected to" column, 98 wide."""
    from .plan import graph_chain

    if graph_chain(model)[0] is not None or getattr(model, "graph", lambda: None)() is None:
        return format_summary(model, line_length=line_length or 65)
    return format_functional_summary(model, line_length=line_length or 98)


def format_summary(model, line_length=65, positions=(0.45, 0.85, 1.0)) -> str:
    """The summary table as a string (Keras 2 layout, as printed in the lesson): one row per
    layer in ``model.layers`` (a functional chain's InputLayer too, as Keras lists it)."""
    cols = [int(line_length * p) for p in positions]
    headers = ["Layer (type)", "Output Shape", "Param #"]

    def row(fields):
        return _row(fields, cols)

    out = [f'Model: "{model.name}"', "_" * line_length, row(headers), "=" * line_length]
    layers = model.layers
    for i, layer in enumerate(layers):
        shape = layer.output_shape
        shape_text = f"[{shape_str(shape)}]" if type(layer).__name__ == "InputLayer" else shape_str(shape)
        type_name = "Functional" if getattr(layer, "_functional", False) else type(layer).__name__
        out.append(row([f"{layer.name} ({type_name})", shape_text, layer.count_params()]))
        out.append("" if i < len(layers) - 1 else "=" * line_length)
    if not layers:
        out.append("=" * line_length)
    trainable = sum(w.size for w in model.trainable_weights)
    total = model.count_params()
    out += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "_" * line_length,
    ]
    return "\n".join(out)


def _row(fields, cols):
    """One table row: each field cut or padded to its column's end, Keras's layout."""
    line = ""
    for i, field in enumerate(fields):
        if i > 0:
            line = line[:-1] + " "
        line += str(field)
        line = line[: cols[i]]
        line += " " * (cols[i] - len(line))
    return " " + line.rstrip()


def format_functional_summary(model, line_length=98, positions=(0.33, 0.55, 0.67, 1.0)) -> str:
    """Keras's functional table: one row per layer, with the tensors each is connected to
    (``name[node][tensor]``), parameters counted once for a shared layer."""
    cols = [int(line_length * p) for p in positions]
    out = [
        f'Model: "{model.name}"',
        "_" * line_length,
        _row(["Layer (type)", "Output Shape", "Param #", "Connected to"], cols),
        "=" * line_length,
    ]
    in_model = {id(n) for n in getattr(model, "_nodes", [])}
    layers = model.layers
    for i, layer in enumerate(layers):
        nodes = [n for n in layer._inbound_nodes if id(n) in in_model]
        sources = []
        for n in nodes:
            for t in n.inputs:
                src = t.node.layer
                sources.append(f"'{src.name}[{src._inbound_nodes.index(t.node)}][{t.index}]'")
        shape = layer.output_shape
        shape_text = (
            f"[{shape_str(shape)}]"
            if type(layer).__name__ == "InputLayer"
            else ", ".join(shape_str(s) for s in shape)
            if isinstance(shape, list)
            else shape_str(shape)
        )
        type_name = "Functional" if getattr(layer, "_functional", False) else type(layer).__name__
        out.append(
            _row(
                [
                    f"{layer.name} ({type_name})",
                    shape_text,
                    layer.count_params(),
                    "[" + ", ".join(sources[:1]) + ("," if len(sources) > 1 else "]"),
                ],
                cols,
            )
        )
        for k, src in enumerate(sources[1:], start=1):
            out.append(_row(["", "", "", " " + src + ("]" if k == len(sources) - 1 else ",")], cols))
        out.append("" if i < len(layers) - 1 else "=" * line_length)
    total = model.count_params()
    trainable = sum(w.size for w in model.trainable_weights)
    out += [
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        "_" * line_length,
    ]
    return "\n".join(out)
