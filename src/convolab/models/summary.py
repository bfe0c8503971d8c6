"""``model.summary()``: Keras's table of layers, output shapes and parameter counts."""
from __future__ import annotations

from ..layers.base import shape_str


def format_summary(model, line_length=65, positions=(0.45, 0.85, 1.0)) -> str:
    """The summary table as a string (Keras 2 layout, as printed in the lesson)."""
    cols = [int(line_length * p) for p in positions]
    headers = ["Layer (type)", "Output Shape", "Param #"]

    def row(fields):
        line = ""
        for i, field in enumerate(fields):
            if i > 0:
                line = line[:-1] + " "
            line += str(field)
            line = line[: cols[i]]
            line += " " * (cols[i] - len(line))
        return " " + line.rstrip()

    out = [f'Model: "{model.name}"', "_" * line_length, row(headers), "=" * line_length]
    for i, layer in enumerate(model.layers):
        out.append(row([f"{layer.name} ({type(layer).__name__})", shape_str(layer.output_shape), layer.count_params()]))
        out.append("" if i < len(model.layers) - 1 else "=" * line_length)
    if not model.layers:
        out.append("=" * line_length)
    trainable = sum(layer.count_params() for layer in model.layers if layer.trainable)
    total = sum(layer.count_params() for layer in model.layers)
    out += [f"Total params: {total:,}", f"Trainable params: {trainable:,}",
            f"Non-trainable params: {total - trainable:,}", "_" * line_length]
    return "\n".join(out)
