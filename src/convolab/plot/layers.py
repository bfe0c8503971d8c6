"""What a trained network learned: its first-layer filters and a layer's activations."""

from __future__ import annotations

import numpy as np

from ._base import finish, grid, new_figure, show_image, to_rgb01


def _first_conv_kernel(layer_or_model):
    """``(kernel (kh, kw, C, F), name)`` from a Conv2D layer, a model (its first Conv2D) or an array."""
    layers = getattr(layer_or_model, "layers", None)
    if layers is not None:
        conv = next(
            (
                l
                for l in layers
                if getattr(l, "params", {}).get("kernel") is not None and np.ndim(l.params["kernel"]) == 4
            ),
            None,
        )
        if conv is None:
            if not all(getattr(l, "built", True) for l in layers):
                raise ValueError(
                    "plot_filters: the model is not built yet; give the first layer input_shape=... or fit it first"
                )
            raise ValueError("plot_filters: the model has no Conv2D layer with weights")
        return conv.params["kernel"], conv.name
    params = getattr(layer_or_model, "params", None)
    if params is not None:
        k = params.get("kernel")
        if k is None:
            raise ValueError(
                f"plot_filters: layer {getattr(layer_or_model, 'name', '?')!r} has no kernel yet (not built?)"
            )
        if np.ndim(k) != 4:
            raise ValueError(
                f"plot_filters: expected a Conv2D kernel (kh, kw, in, out); layer "
                f"{getattr(layer_or_model, 'name', '?')!r} has one of shape {np.shape(k)}"
            )
        return k, layer_or_model.name
    k = np.asarray(layer_or_model)
    if k.ndim != 4 or k.dtype.kind not in "iuf":
        raise ValueError(
            f"plot_filters expects a model, a Conv2D layer or a kernel (kh, kw, in, out); got shape {k.shape}"
        )
    return k, "kernel"


def plot_filters(layer_or_model, save=None, title=None, ncols=10):
    """Show each learned filter of a Conv2D layer (a model's first Conv2D by default).

    Grey input: ``kernel[:, :, 0, i]`` per filter, as the lesson draws them, on one shared
    signed scale (blue negative, red positive). RGB input (3 channels): each filter as a colour
    image, stretched to [0, 1] on its own.

    Args:
        layer_or_model: a ``Sequential``, a ``Conv2D`` layer, or a kernel array ``(kh, kw, C, F)``.
        save: path to write the figure to.
        ncols: filters per row.

    Returns:
        The matplotlib ``Figure``.
    """
    k, name = _first_conv_kernel(layer_or_model)
    k = np.asarray(k, dtype=np.float32)
    kh, kw, c, f = k.shape
    cols = min(f, ncols)
    rows = -(-f // cols)
    colour = c == 3
    what = "colour filters" if colour else ("filters" if c == 1 else "filters, input channel 0")
    fig = new_figure(
        (1.3 * cols + (0 if colour else 0.9), 1.4 * rows + 0.5), title=title or f"{name}: {f} {what} {kh}x{kw}"
    )
    axes = grid(fig, f, cols)
    m = float(np.abs(k[:, :, 0, :]).max()) or 1.0
    image = None
    for i, ax in enumerate(axes):
        if colour:
            ax.imshow(to_rgb01(k[:, :, :, i]), interpolation="nearest")
        else:
            image = ax.imshow(k[:, :, 0, i], cmap="RdBu_r", vmin=-m, vmax=m, interpolation="nearest")
        ax.set_title(str(i), fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes, shrink=0.8, pad=0.02)
    return finish(fig, save)


def _find_layer(model, layer):
    layers = list(getattr(model, "layers", []))
    if not layers:
        raise ValueError("plot_feature_maps expects a Sequential model with layers")
    if isinstance(layer, str):
        for i, l in enumerate(layers):
            if l.name == layer:
                return i
        raise ValueError(f"plot_feature_maps: no layer named {layer!r}; layers: {[l.name for l in layers]}")
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        if not -len(layers) <= layer < len(layers):
            raise ValueError(f"plot_feature_maps: layer index {layer} out of range for {len(layers)} layers")
        return int(layer) % len(layers)
    for i, l in enumerate(layers):
        if l is layer:
            return i
    raise ValueError(
        f"plot_feature_maps: `layer` must be an index, a layer name or a layer of the model; got {layer!r}"
    )


def plot_feature_maps(model, image, layer=0, save=None, title=None, ncols=8):
    """Show the activations of one layer for one image.

    The model's layers run in order up to ``layer`` (inference mode, ``layer.call``). A 4-D
    output shows one map per channel; a vector output (Dense) shows as bars.

    Args:
        model: a built ``Sequential``.
        image: one image ``(H, W)``, ``(H, W, C)`` or ``(1, H, W, C)``, shaped like the model's input.
        layer: index or name of the layer (default 0, the first convolution).
        save: path to write the figure to.

    Returns:
        The matplotlib ``Figure``: the input first, then every channel.
    """
    idx = _find_layer(model, layer)
    want = getattr(model, "input_shape", None)
    if want is None:
        raise ValueError("plot_feature_maps: the model has no input shape yet; build or fit it first")
    inner = tuple(want[1:])
    x = np.asarray(image)
    if x.dtype == object or x.dtype.kind not in "biuf":
        raise TypeError(f"plot_feature_maps: `image` must be a numeric array; got dtype {x.dtype}")
    x = x.astype(np.float32)
    if inner[-1] == 1 and x.shape == inner[:-1]:
        x = x[..., None]
    if x.shape == inner:
        x = x[None]
    if x.shape != (1,) + inner:
        raise ValueError(
            f"plot_feature_maps: the model expects one image of shape {inner}; got an array of shape {np.shape(image)}"
        )
    if not model.built:
        model.build(want)
    out = x
    for l in model.layers[: idx + 1]:
        out = l.call(out, training=False)
    target = model.layers[idx]
    maps = np.asarray(out)[0]
    label = f"{target.name} ({type(target).__name__}) output {'x'.join(str(d) for d in maps.shape)}"
    if maps.ndim == 3:
        c = maps.shape[-1]
        cols = min(c + 1, ncols)
        rows = -(-(c + 1) // cols)
        fig = new_figure((1.5 * cols, 1.6 * rows + 0.5), title=title or label)
        axes = grid(fig, c + 1, cols)
        show_image(axes[0], x[0], "input")
        for i in range(c):
            axes[i + 1].imshow(maps[:, :, i], cmap="viridis", interpolation="nearest")
            axes[i + 1].set_title(str(i), fontsize=8)
        return finish(fig, save)
    flat = maps.ravel()
    fig = new_figure((8, 3.2), title=title or label)
    ax_img, ax_bar = fig.subplots(1, 2, width_ratios=[1, 4])
    show_image(ax_img, x[0], "input")
    ax_bar.bar(np.arange(flat.size), flat, color="tab:blue")
    ax_bar.set_xlabel("unit")
    ax_bar.grid(True, axis="y", alpha=0.3)
    return finish(fig, save)
