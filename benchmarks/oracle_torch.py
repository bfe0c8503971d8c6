"""An independent oracle: convolab's forward outputs and weight gradients against PyTorch in float64.

    pip install torch==2.13.0        # the CPU build; PyTorch is not a convolab dependency
    python benchmarks/oracle_torch.py
    python benchmarks/oracle_torch.py --json oracle.json     # also write every number
    python benchmarks/oracle_torch.py --cases same,pool      # only cases whose name contains one of these

What it checks. For each case in ``CASES`` (a stack of Conv2D with kernel sizes 1, 2, 3, 5 and
non-square ones, strides 1, 2 and (1, 2), 'valid' and 'same' padding; MaxPooling2D and
AveragePooling2D with several pool sizes, strides and paddings; Flatten; Dense; relu, sigmoid,
tanh and softmax, as layer activations and as stand-alone layers; a few batch sizes and channel
counts), the same model is built twice:

- in convolab, through its Keras-style API only (``keras.Sequential``, ``keras.layers``): the
  forward is ``model.predict``; the weight gradients come from one ``model.train_on_batch(x, y)``
  with ``keras.optimizers.SGD(learning_rate=1.0)`` and an MSE loss against a fixed random
  target, as ``weights before - weights after``;
- in PyTorch float64, written independently: ``nn.Conv2d``/``nn.Linear`` on NCHW tensors,
  TensorFlow's 'same' padding spelled out with ``F.pad`` (the odd pixel goes to the bottom/right),
  'same' average pooling divided by the count of real pixels in each window (TensorFlow leaves
  the padding out of the mean), and a channels-last permute before Flatten. The loss is
  ``mean((out - y) ** 2)`` over every element, as Keras's MSE.

Both start from the same weights and data, all exactly representable in float32. convolab runs
each case twice: float64 (``keras.backend.set_floatx('float64')`` and ``dtype='float64'`` on
every layer: the NumPy path) and float32 (the default, where the compiled C kernels run: the path
users run). For the forward output and every kernel and bias gradient it reports the norm-wise
relative error ``max|a - b| / max|b|`` against torch float64; a case passes when the largest of
them is below 1e-10 (float64) and 1e-4 (float32). Exit status 1 if any case fails.

The float64 model needs ``set_floatx('float64')`` while it is built: a convolab Sequential casts
its input to the floatx of the moment it was created, ignoring ``keras.Input(dtype=...)`` and the
layers' dtype, so float64 layers alone would see their data rounded to float32 (relative error
about 1e-8; the data here is float32-exact, so that rounding would go unseen).
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import sys
import time

import numpy as np

TOL = {"float64": 1e-10, "float32": 1e-4}


# -- the case table ---------------------------------------------------------------------------
# Each layer is a tuple: ("conv", filters, kernel, strides, padding, activation, use_bias),
# ("maxpool" | "avgpool", pool_size, strides, padding), ("dense", units, activation),
# ("flatten",), ("act", name) (keras.layers.Activation), ("relu",) (keras.layers.ReLU),
# ("softmax",) (keras.layers.Softmax).


def C(filters, kernel, strides=1, padding="valid", act=None, bias=True):
    return ("conv", filters, _pair(kernel), _pair(strides), padding, act, bias)


def MP(pool=2, strides=None, padding="valid"):
    return ("maxpool", _pair(pool), _pair(pool if strides is None else strides), padding)


def AP(pool=2, strides=None, padding="valid"):
    return ("avgpool", _pair(pool), _pair(pool if strides is None else strides), padding)


def D(units, act=None):
    return ("dense", units, act)


FL = ("flatten",)
RELU = ("relu",)
SOFTMAX = ("softmax",)


def A(name):
    return ("act", name)


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


# (name, input (H, W, C), batch, layers)
CASES = [
    # Conv2D: kernel sizes, 'valid'
    ("conv1x1 valid", (6, 6, 3), 2, [C(4, 1)]),
    ("conv2x2 valid", (7, 7, 2), 3, [C(5, 2)]),
    ("conv3x3 valid relu +dense", (8, 8, 3), 4, [C(8, 3, act="relu"), FL, D(5)]),
    ("conv5x5 valid relu (pixels kernel)", (12, 12, 1), 2, [C(6, 5, act="relu")]),
    ("conv(2,3) valid", (8, 9, 2), 2, [C(4, (2, 3))]),
    ("conv(1,5) valid", (7, 9, 3), 2, [C(3, (1, 5))]),
    ("conv(5,1) valid no-bias", (9, 6, 2), 2, [C(4, (5, 1), bias=False)]),
    ("conv3x3 valid 16 filters", (8, 8, 4), 2, [C(16, 3)]),
    ("conv3x3 valid 40 filters (>32)", (7, 7, 3), 2, [C(40, 3)]),
    ("conv5x5 valid 250 taps (>200)", (9, 9, 10), 2, [C(8, 5)]),
    # Conv2D: 'same' (odd pixel at the bottom/right for even kernels)
    ("conv3x3 same", (8, 8, 3), 2, [C(4, 3, padding="same")]),
    ("conv2x2 same", (7, 7, 2), 2, [C(3, 2, padding="same")]),
    ("conv5x5 same", (9, 9, 2), 3, [C(4, 5, padding="same")]),
    ("conv(3,5) same", (9, 10, 3), 2, [C(5, (3, 5), padding="same")]),
    ("conv(2,3) same", (6, 7, 2), 2, [C(4, (2, 3), padding="same")]),
    # Conv2D: strides
    ("conv3x3 s2 valid", (9, 9, 3), 2, [C(4, 3, strides=2)]),
    ("conv3x3 s2 valid (ragged)", (10, 10, 2), 2, [C(4, 3, strides=2)]),
    ("conv1x1 s2 valid", (7, 7, 3), 2, [C(4, 1, strides=2)]),
    ("conv3x3 s2 same even", (8, 8, 2), 2, [C(4, 3, strides=2, padding="same")]),
    ("conv3x3 s2 same odd", (9, 9, 2), 2, [C(4, 3, strides=2, padding="same")]),
    ("conv2x2 s2 same odd", (7, 7, 3), 2, [C(4, 2, strides=2, padding="same")]),
    ("conv5x5 s2 same", (11, 11, 2), 2, [C(3, 5, strides=2, padding="same")]),
    ("conv3x3 s(1,2) valid", (8, 9, 3), 2, [C(4, 3, strides=(1, 2))]),
    ("conv(2,3) s(1,2) same", (7, 8, 2), 2, [C(4, (2, 3), strides=(1, 2), padding="same")]),
    # Conv2D stacks: the input gradient of the second conv (col2im) is exercised
    ("conv relu -> conv same tanh", (8, 8, 3), 2, [C(6, 3, act="relu"), C(5, 3, padding="same", act="tanh")]),
    (
        "conv s2 same -> conv2x2 s(1,2) valid",
        (9, 9, 2),
        3,
        [C(5, 3, strides=2, padding="same", act="relu"), C(4, 2, strides=(1, 2))],
    ),
    (
        "conv same -> conv(5,3) same s2 -> dense",
        (10, 10, 2),
        2,
        [C(6, 3, padding="same", act="sigmoid"), C(4, (5, 3), strides=2, padding="same"), FL, D(3)],
    ),
    ("conv -> conv 250 taps -> conv 40 filters", (14, 14, 3), 2, [C(10, 3, act="relu"), C(8, 5, act="relu"), C(40, 3)]),
    # MaxPooling2D
    ("maxpool 2 valid", (8, 8, 2), 2, [C(4, 3, act="relu"), MP(), FL, D(3)]),
    ("maxpool 2 valid (ragged)", (9, 9, 2), 2, [C(4, 2, act="relu"), MP(), FL, D(3)]),
    ("maxpool 3 s2 valid", (9, 9, 2), 2, [C(4, 3), MP(3, 2)]),
    ("maxpool 2 s1 valid", (7, 7, 2), 2, [C(3, 2), MP(2, 1)]),
    ("maxpool 2 same odd", (8, 8, 2), 2, [C(4, 2), MP(2, padding="same")]),
    ("maxpool 3 s1 same", (7, 7, 2), 2, [C(3, 3, act="tanh"), MP(3, 1, padding="same")]),
    ("maxpool 3 s2 same even", (9, 9, 2), 2, [C(3, 2), MP(3, 2, padding="same")]),
    ("maxpool (2,3) s(1,2) same", (8, 9, 2), 2, [C(3, 2), MP((2, 3), (1, 2), padding="same")]),
    ("maxpool first, then conv", (9, 9, 3), 2, [MP(2, padding="same"), C(4, 3)]),
    # AveragePooling2D
    ("avgpool 2 valid", (8, 8, 2), 2, [C(4, 3, act="relu"), AP(), FL, D(3)]),
    ("avgpool 3 s2 valid", (9, 9, 2), 2, [C(4, 3), AP(3, 2)]),
    ("avgpool 2 s1 valid", (7, 7, 2), 2, [C(3, 2), AP(2, 1)]),
    ("avgpool 2 same odd", (8, 8, 2), 2, [C(4, 2), AP(2, padding="same")]),
    ("avgpool 3 s1 same", (7, 7, 2), 2, [C(3, 3, act="sigmoid"), AP(3, 1, padding="same")]),
    ("avgpool 3 s2 same even", (9, 9, 2), 2, [C(3, 2), AP(3, 2, padding="same")]),
    ("avgpool (3,2) s(2,1) same", (9, 8, 2), 2, [C(3, 2), AP((3, 2), (2, 1), padding="same")]),
    ("avgpool first, then conv", (8, 8, 3), 2, [AP(3, 2, padding="same"), C(4, 2)]),
    # activations, Dense, Flatten
    ("dense sigmoid -> tanh", (4, 5, 2), 4, [FL, D(8, "sigmoid"), D(4, "tanh")]),
    ("dense relu -> softmax", (4, 4, 3), 3, [FL, D(16, "relu"), D(5, "softmax")]),
    ("conv softmax over channels", (6, 6, 2), 2, [C(5, 3, act="softmax")]),
    (
        "activation layers",
        (8, 8, 2),
        2,
        [C(4, 3), RELU, C(3, 3, padding="same"), A("sigmoid"), A("tanh"), FL, D(5), SOFTMAX],
    ),
    ("softmax layer on 4-D", (6, 6, 3), 2, [C(4, 3, act="tanh"), SOFTMAX]),
    # batch sizes and the lesson's models
    ("batch 1", (8, 8, 3), 1, [C(4, 3, act="relu"), MP(), FL, D(4, "tanh")]),
    ("batch 8", (8, 8, 3), 8, [C(4, 3, strides=2, padding="same", act="relu"), AP(2, padding="same"), FL, D(4)]),
    (
        "lenet-like",
        (20, 20, 3),
        4,
        [C(6, 5, act="relu"), MP(2, 2), C(16, 5, act="relu"), MP(2, 2), FL, D(20, "relu"), D(12, "relu"), D(10)],
    ),
    ("multi-like (10 ch, 5x5)", (20, 20, 1), 3, [C(10, 5, act="relu"), MP(), C(20, 5, act="relu"), MP(), FL, D(10)]),
    (
        "mixed deep",
        (12, 12, 2),
        3,
        [
            C(6, 3, padding="same", act="relu"),
            AP(2, padding="same"),
            C(8, (3, 2), strides=(1, 2), act="sigmoid"),
            MP(3, 2, padding="same"),
            FL,
            D(7, "tanh"),
            D(4, "softmax"),
        ],
    ),
]


# -- shared data --------------------------------------------------------------------------------


def f32exact(a):
    """float64 values that float32 represents exactly, so both convolab runs start from the same numbers."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def out_hw(size, k, s, padding):
    return (size - k) // s + 1 if padding == "valid" else math.ceil(size / s)


def tf_pads(size, k, s, padding):
    """TensorFlow's padding of one axis: ``(before, after)``, the odd pixel after."""
    if padding == "valid":
        return 0, 0
    total = max((math.ceil(size / s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def shapes_and_weights(case, rng):
    """Walk the case's shapes; return the output shape and initial weights per layer (None if none)."""
    _, (h, w, c), _, layers = case
    shape = (h, w, c)
    weights = []
    for spec in layers:
        kind = spec[0]
        if kind == "conv":
            _, f, (kh, kw), (sh, sw), pad, _, bias = spec
            fan_in, fan_out = kh * kw * shape[2], kh * kw * f
            lim = math.sqrt(6 / (fan_in + fan_out))
            kern = f32exact(rng.uniform(-lim, lim, (kh, kw, shape[2], f)))
            weights.append([kern] + ([f32exact(rng.normal(0, 0.1, f))] if bias else []))
            shape = (out_hw(shape[0], kh, sh, pad), out_hw(shape[1], kw, sw, pad), f)
        elif kind in ("maxpool", "avgpool"):
            _, (ph, pw), (sh, sw), pad = spec
            weights.append(None)
            shape = (out_hw(shape[0], ph, sh, pad), out_hw(shape[1], pw, sw, pad), shape[2])
        elif kind == "dense":
            units = spec[1]
            lim = math.sqrt(6 / (shape[-1] + units))
            weights.append([f32exact(rng.uniform(-lim, lim, (shape[-1], units))), f32exact(rng.normal(0, 0.1, units))])
            shape = shape[:-1] + (units,)
        elif kind == "flatten":
            weights.append(None)
            shape = (math.prod(shape),)
        else:
            weights.append(None)
    return shape, weights


# -- convolab (Keras-style API only) ------------------------------------------------------------


def convolab_layer(keras, spec, dtype):
    L = keras.layers
    kind = spec[0]
    if kind == "conv":
        _, f, k, s, pad, act, bias = spec
        return L.Conv2D(f, k, strides=s, padding=pad, activation=act, use_bias=bias, dtype=dtype)
    if kind == "maxpool":
        return L.MaxPooling2D(spec[1], strides=spec[2], padding=spec[3], dtype=dtype)
    if kind == "avgpool":
        return L.AveragePooling2D(spec[1], strides=spec[2], padding=spec[3], dtype=dtype)
    if kind == "dense":
        return L.Dense(spec[1], activation=spec[2], dtype=dtype)
    if kind == "flatten":
        return L.Flatten(dtype=dtype)
    if kind == "act":
        return L.Activation(spec[1], dtype=dtype)
    if kind == "relu":
        return L.ReLU(dtype=dtype)
    if kind == "softmax":
        return L.Softmax(dtype=dtype)
    raise ValueError(kind)


def run_convolab(case, x, y, weights, dtype):
    """``(forward output, [gradients in get_weights order])`` as float64 arrays, and the C kernels called."""
    from convolab import kernels, keras

    _, in_shape, _, layers = case
    saved = keras.backend.floatx()
    keras.backend.set_floatx(dtype)
    try:
        body = [convolab_layer(keras, spec, dtype) for spec in layers]
        model = keras.Sequential([keras.Input(shape=in_shape, dtype=dtype)] + body)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), loss=keras.losses.MeanSquaredError())
    finally:
        keras.backend.set_floatx(saved)
    flat = [w for ws in weights if ws for w in ws]
    model.set_weights([w.astype(dtype) for w in flat])
    before = [w.astype(np.float64) for w in model.get_weights()]
    calls0 = collections.Counter(kernels.calls)
    out = model.predict(x.astype(dtype), batch_size=len(x), verbose=0)
    model.train_on_batch(x.astype(dtype), y.astype(dtype))
    used = sorted(k for k, v in (kernels.calls - calls0).items() if v)
    after = [w.astype(np.float64) for w in model.get_weights()]
    assert out.dtype == np.dtype(dtype) and all(w.dtype == np.dtype(dtype) for w in model.get_weights())
    return out.astype(np.float64), [b - a for b, a in zip(before, after)], used


# -- PyTorch float64, written independently -------------------------------------------------------


def torch_modules():
    import torch
    import torch.nn.functional as F
    from torch import nn

    class TFPad(nn.Module):
        """TensorFlow's 'same' padding: F.pad with the odd pixel at the bottom/right."""

        def __init__(self, kernel, strides, value=0.0):
            super().__init__()
            self.kernel, self.strides, self.value = kernel, strides, value

        def forward(self, x):
            top, bottom = tf_pads(x.shape[2], self.kernel[0], self.strides[0], "same")
            left, right = tf_pads(x.shape[3], self.kernel[1], self.strides[1], "same")
            return F.pad(x, (left, right, top, bottom), value=self.value)

    class SameAvgPool(nn.Module):
        """Average over the real pixels only: window sums over zero padding / window pixel counts."""

        def __init__(self, pool, strides):
            super().__init__()
            self.pad = TFPad(pool, strides)
            self.pool, self.strides = pool, strides

        def forward(self, x):
            ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
            sums = F.avg_pool2d(self.pad(x), self.pool, self.strides, divisor_override=1)
            counts = F.avg_pool2d(self.pad(ones), self.pool, self.strides, divisor_override=1)
            return sums / counts

    class ChannelsLastFlatten(nn.Module):
        """Flatten as convolab/Keras do: NHWC order."""

        def forward(self, x):
            return (x.permute(0, 2, 3, 1) if x.dim() == 4 else x).reshape(x.shape[0], -1)

    class ChannelSoftmax(nn.Module):
        """Softmax over the channel axis (Keras's axis=-1 in NHWC)."""

        def forward(self, x):
            return torch.softmax(x, dim=1)

    return TFPad, SameAvgPool, ChannelsLastFlatten, ChannelSoftmax


def torch_activation(name):
    from torch import nn

    _, _, _, ChannelSoftmax = torch_modules()
    return {
        None: None,
        "linear": None,
        "relu": nn.ReLU(),
        "sigmoid": nn.Sigmoid(),
        "tanh": nn.Tanh(),
        "softmax": ChannelSoftmax(),
    }[name]


def build_torch(case, weights):
    """An nn.Sequential in float64 (NCHW) with the case's weights; returns it and its weighted modules."""
    import torch
    from torch import nn

    TFPad, SameAvgPool, ChannelsLastFlatten, ChannelSoftmax = torch_modules()
    _, (h, w, c), _, layers = case
    body, weighted = [], []
    for spec, ws in zip(layers, weights):
        kind = spec[0]
        if kind == "conv":
            _, f, k, s, pad, act, bias = spec
            if pad == "same":
                body.append(TFPad(k, s))
            conv = nn.Conv2d(ws[0].shape[2], f, k, stride=s, padding=0, bias=bias, dtype=torch.float64)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(ws[0].transpose(3, 2, 0, 1)))  # (kh,kw,in,out) -> (out,in,kh,kw)
                if bias:
                    conv.bias.copy_(torch.from_numpy(ws[1]))
            body.append(conv)
            weighted.append(conv)
            if torch_activation(act) is not None:
                body.append(torch_activation(act))
        elif kind == "maxpool":
            _, pool, s, pad = spec
            if pad == "same":
                body.append(TFPad(pool, s, value=-math.inf))
            body.append(nn.MaxPool2d(pool, s))
        elif kind == "avgpool":
            _, pool, s, pad = spec
            body.append(nn.AvgPool2d(pool, s) if pad == "valid" else SameAvgPool(pool, s))
        elif kind == "dense":
            lin = nn.Linear(ws[0].shape[0], spec[1], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(ws[0].T))  # (in, out) -> (out, in)
                lin.bias.copy_(torch.from_numpy(ws[1]))
            body.append(lin)
            weighted.append(lin)
            if torch_activation(spec[2]) is not None:
                body.append(torch_activation(spec[2]))
        elif kind == "flatten":
            body.append(ChannelsLastFlatten())
        elif kind == "act":
            body.append(torch_activation(spec[1]))
        elif kind == "relu":
            body.append(nn.ReLU())
        elif kind == "softmax":
            body.append(ChannelSoftmax())
    return nn.Sequential(*body), weighted


def run_torch(case, x, y, weights):
    """Forward output (NHWC when 4-D) and gradients in convolab's layouts and get_weights order."""
    import torch

    model, weighted = build_torch(case, weights)
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    out = model(xt)
    if out.dim() == 4:
        out = out.permute(0, 2, 3, 1)
    loss = ((out - torch.from_numpy(y)) ** 2).mean()
    loss.backward()
    grads = []
    for m in weighted:
        g = m.weight.grad.numpy()
        grads.append(g.transpose(2, 3, 1, 0) if g.ndim == 4 else g.T)
        if m.bias is not None:
            grads.append(m.bias.grad.numpy())
    return out.detach().numpy(), grads


# -- comparison -----------------------------------------------------------------------------------


def rel_err(a, b):
    """Norm-wise relative error ``max|a - b| / max|b|`` (absolute where ``b`` is all zeros)."""
    if a.shape != b.shape:
        return math.inf
    diff = float(np.max(np.abs(a - b))) if a.size else 0.0
    scale = float(np.max(np.abs(b))) if b.size else 0.0
    return diff / scale if scale > 0 else diff


def grad_names(case, weights):
    names = []
    for i, (spec, ws) in enumerate(zip(case[3], weights)):
        if ws:
            names += [f"{spec[0]}{i}.kernel", f"{spec[0]}{i}.bias"][: len(ws)]
    return names


def check_case(case, seed):
    name, (h, w, c), batch, _ = case
    rng = np.random.default_rng(seed)
    out_shape, weights = shapes_and_weights(case, rng)
    x = f32exact(rng.standard_normal((batch, h, w, c)))
    y = f32exact(rng.standard_normal((batch,) + out_shape))
    ref_out, ref_grads = run_torch(case, x, y, weights)
    names = ["forward"] + grad_names(case, weights)
    row = {"case": name, "input": [batch, h, w, c], "output": list(ref_out.shape)}
    for dtype in ("float64", "float32"):
        out, grads, used = run_convolab(case, x, y, weights, dtype)
        errs = dict(zip(names, [rel_err(out, ref_out)] + [rel_err(g, r) for g, r in zip(grads, ref_grads)]))
        if len(grads) != len(ref_grads):
            errs["gradient count"] = math.inf
        worst = max(errs, key=errs.get)
        row[dtype] = {
            "max_rel_err": errs[worst],
            "worst": worst,
            "errors": errs,
            "pass": errs[worst] < TOL[dtype],
            "ckernels": used,
        }
    row["pass"] = row["float64"]["pass"] and row["float32"]["pass"]
    return row


def markdown(rows):
    lines = ["| case | float64 max rel err | float32 max rel err | pass |", "|---|---|---|---|"]
    for r in rows:
        cells = []
        for dtype in ("float64", "float32"):
            d = r[dtype]
            cell = f"{d['max_rel_err']:.1e}"
            if not d["pass"]:
                cell += f" ({d['worst']})"
            cells.append(cell)
        lines.append(f"| {r['case']} | {cells[0]} | {cells[1]} | {'yes' if r['pass'] else '**FAIL**'} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", help="write every error (per case, dtype and weight) to this file")
    ap.add_argument("--cases", help="comma-separated substrings: run only the cases whose name contains one")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: pip install torch==2.13.0", file=sys.stderr)
        return 2
    torch.set_num_threads(1)  # small problems; leave the other cores alone
    from convolab import kernels

    cases = list(enumerate(CASES))  # a case's seed is its place in CASES: --cases reproduces its numbers
    if args.cases:
        keys = [k.strip() for k in args.cases.split(",") if k.strip()]
        cases = [(i, c) for i, c in cases if any(k in c[0] for k in keys)]
    t0 = time.perf_counter()
    rows = [check_case(case, args.seed + i) for i, case in cases]
    elapsed = time.perf_counter() - t0
    print(markdown(rows))
    failed = [r["case"] for r in rows if not r["pass"]]
    worst64 = max((r["float64"]["max_rel_err"] for r in rows), default=0.0)
    worst32 = max((r["float32"]["max_rel_err"] for r in rows), default=0.0)
    reached = sorted({k for r in rows for k in r["float32"]["ckernels"]})
    print()
    print(
        f"{len(rows) - len(failed)}/{len(rows)} cases pass against torch {torch.__version__} float64 "
        f"(thresholds {TOL['float64']:g} float64, {TOL['float32']:g} float32); worst {worst64:.1e} float64, "
        f"{worst32:.1e} float32; {elapsed:.1f} s"
    )
    print(
        f"compiled kernels reached by the float32 runs: {', '.join(reached) if reached else 'none'}"
        + ("" if kernels.available() else " (not built: the float32 runs took the NumPy path)")
    )
    if failed:
        print("FAILED: " + "; ".join(failed))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"torch": torch.__version__, "tolerances": TOL, "seconds": elapsed, "cases": rows}, fh, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
