"""The fast path against the reference, through the public API, on architectures hypothesis draws.

The same networks also run as functional graphs trained on the tape, against the Sequential
stack engine: two engines, one answer.

For a random network built from every layer the engine has (Conv2D over strides, padding,
kernel sizes, filter counts, dilation and groups; DepthwiseConv2D and SeparableConv2D with depth
multipliers and dilation; BatchNormalization, trainable or frozen, with or without gamma and
beta; ZeroPadding2D; both poolings with all their options; Flatten or GlobalAveragePooling2D;
Dense; Dropout in training; activations and ReLU/Softmax layers; frozen layers), a random loss
and optimizer, the same training is run three times:

- float32 with the compiled kernels (what users run),
- float32 on the NumPy path (``kernels.lib = None``),
- float64 on the NumPy path (the reference: the kernels serve float32 only),

first one ``train_on_batch`` (the loss, every layer's gradient, every updated weight are
compared), then one ``fit`` step over the same batch (the fit loop, with its thread shards
when they pay, and the optimizer's second step from the state of the first).

Inputs and initial weights are small dyadic numbers, so the forward pass is exact in float32
and float64 alike: a ReLU kink or a max-pool near-tie cannot fall differently in the two,
and what differs is the rounding of the softmax, the loss and the backward sums.
``test_every_kernel_is_reached`` runs a fixed table through the same comparison and requires
that every compiled entry point and variant was called.
"""

from __future__ import annotations

import collections

import pytest

from convolab import kernels
from convolab.models import parallel
from convolab.nn import threads
from support.differential import check_spec
from support.kernel_paths import ISAS, expected_calls, fused_isa

pytest.importorskip("hypothesis")  # the networks are drawn with it: skipped, not a collection error, without it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

ACTIVATIONS = [None, "relu", "linear", "tanh", "sigmoid"]


# -- architectures ----------------------------------------------------------------------------

# Adam and RMSprop divide by the root of the squared-gradient average: with Keras's epsilon
# (1e-7) a gradient that is zero in exact arithmetic, and +-1e-9 after float32 rounding, moves
# its weight by +-lr, so float32 and float64 may rightly disagree there by 2 * lr. epsilon=1e-3
# keeps the step well-conditioned (it is an argument of the same kernels, not another path).
OPTIMIZERS = [
    ("SGD", dict(learning_rate=0.1)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9)),
    ("SGD", dict(learning_rate=0.05, momentum=0.9, nesterov=True)),
    ("SGD", dict(learning_rate=0.1, clipvalue=0.05)),
    ("RMSprop", dict(learning_rate=0.01, epsilon=1e-3)),
    ("RMSprop", dict(learning_rate=0.01, momentum=0.5, epsilon=1e-3)),
    ("RMSprop", dict(learning_rate=0.01, centered=True, epsilon=1e-3)),
    ("Adam", dict(learning_rate=0.01, epsilon=1e-3)),
    ("Adam", dict(learning_rate=0.01, amsgrad=True, epsilon=1e-3)),
    ("Adam", dict(learning_rate=0.01, clipnorm=0.5, epsilon=1e-3)),
]


@st.composite
def specs(draw):
    """A network: input shape, layer plan (class name, kwargs), loss, optimizer and seed."""
    n = draw(st.integers(1, 5))
    h = draw(st.integers(5, 12))
    w = draw(st.one_of(st.integers(5, 12), st.integers(18, 24)))  # wide: the pixel-vectorised conv
    c = draw(st.integers(1, 4))
    spec = _draw_plan(draw, h, w, c)
    spec["shape"] = (n, h, w, c)
    return spec


# -- the tests --------------------------------------------------------------------------------


@settings(
    max_examples=200, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(specs())
def test_fast_path_equals_reference_on_random_networks(spec):
    check_spec(spec)


def _conv(filters, k, strides=(1, 1), padding="valid", **kw):
    return ("Conv2D", dict(filters=filters, kernel_size=k, strides=strides, padding=padding, **kw))


#: a fixed table that reaches every compiled entry point and variant (asserted below)
TABLE = [
    # pixel-vectorised fused conv (F <= 6, stride 1 along W, C <= 4, >= 16 output columns), 2x2 max pool
    dict(
        shape=(3, 12, 24, 3),
        plan=[
            _conv(6, 5, activation="relu"),
            ("MaxPooling2D", {}),
            ("Flatten", {}),
            ("Dense", dict(units=4, activation="softmax")),
        ],
        loss="sparse",
        classes=4,
        optimizer=("Adam", dict(learning_rate=0.01, epsilon=1e-3)),
        seed=1,
    ),
    # the filters-in-lanes fused conv (two vectors of 8), padded im2col (same), general pooling
    dict(
        shape=(2, 9, 9, 2),
        plan=[
            _conv(12, 3, activation="relu"),
            ("MaxPooling2D", dict(pool_size=3, strides=2, padding="same")),
            _conv(9, 2, padding="same", activation="tanh"),
            ("AveragePooling2D", dict(pool_size=2, padding="same")),
            ("Flatten", {}),
            ("Dense", dict(units=3)),
        ],
        loss="categorical_logits",
        classes=3,
        optimizer=("RMSprop", dict(learning_rate=0.01, epsilon=1e-3)),
        seed=2,
    ),
    # more than 32 filters and more than 200 taps: im2col + BLAS with the valid im2col/col2im kernels
    # (a padded one is in the batch-normalization row below)
    dict(
        shape=(2, 8, 8, 9),
        plan=[
            _conv(4, 1),
            _conv(34, 5, activation="relu"),
            ("Flatten", {}),
            ("Dropout", dict(rate=0.5, seed=3)),
            ("Dense", dict(units=2)),
        ],
        loss="mse",
        classes=2,
        optimizer=("SGD", dict(learning_rate=0.05, momentum=0.9)),
        seed=3,
    ),
    # a 2x2 max pool whose odd edge is left out (fast forward, general backward)
    dict(
        shape=(2, 9, 9, 1),
        plan=[
            _conv(3, 2, activation="relu"),
            ("MaxPooling2D", {}),
            ("Flatten", {}),
            ("Dense", dict(units=3, activation="softmax")),
        ],
        loss="sparse",
        classes=3,
        optimizer=("Adam", dict(learning_rate=0.01, amsgrad=True, epsilon=1e-3)),
        seed=4,
    ),
    # batch normalization in training (statistics, affine, backward kernels) on images and after a Dense,
    # each followed by a ReLU; a 'same' conv of more than 32 filters (padded im2col and col2im)
    dict(
        shape=(4, 6, 6, 3),
        plan=[
            _conv(4, 1),
            _conv(34, 3, padding="same"),
            ("BatchNormalization", {}),
            ("ReLU", {}),
            ("Flatten", {}),
            ("Dense", dict(units=6)),
            ("BatchNormalization", dict(momentum=0.9)),
            ("Activation", dict(activation="relu")),
            ("Dense", dict(units=3)),
        ],
        loss="sparse_logits",
        classes=3,
        optimizer=("Adam", dict(learning_rate=0.01, epsilon=1e-3)),
        seed=5,
    ),
    # the depthwise kernels, depth multiplier 1 and above (a dilated separable conv), 'same' at
    # strides 1 and 2; the 1x1 Conv2D first so that the depthwise layer after it needs dx
    dict(
        shape=(2, 9, 10, 5),
        plan=[
            _conv(4, 1),
            ("DepthwiseConv2D", dict(kernel_size=3, padding="same", activation="relu")),
            ("DepthwiseConv2D", dict(kernel_size=3, strides=2, padding="same", depth_multiplier=2)),
            ("SeparableConv2D", dict(filters=6, kernel_size=2, dilation_rate=2, depth_multiplier=3, activation="tanh")),
            ("Flatten", {}),
            ("Dense", dict(units=3)),
        ],
        loss="categorical_logits",
        classes=3,
        optimizer=("Adam", dict(learning_rate=0.01, epsilon=1e-3)),
        seed=5,
    ),
]


@pytest.mark.skipif(not kernels.available(), reason="compiled kernels not built")
def test_every_kernel_is_reached():
    """The table above goes through the same comparison, and must call every compiled kernel."""
    before = collections.Counter(kernels.calls)
    old = threads.MIN_SLICE_FLOPS, threads.CHUNK_BYTES
    threads.MIN_SLICE_FLOPS = 0  # fit splits every op of a BatchNormalization model over two threads,
    threads.CHUNK_BYTES = 1  # in chunks of one image (im2col convolutions build their matrices again)
    parallel.set_num_threads(2)
    try:
        for isa in ISAS:  # AVX-512 and AVX2 where the CPU has both: each has its own loops
            with fused_isa(isa):
                for spec in TABLE:
                    check_spec(spec)
    finally:
        threads.MIN_SLICE_FLOPS, threads.CHUNK_BYTES = old
        parallel.set_num_threads(None)
    reached = kernels.calls - before
    missing = sorted(name for name in expected_calls() if not reached[name])
    print("kernel calls in the differential table:", dict(sorted(reached.items())))
    assert not missing, f"compiled kernels no differential test reached: {missing}"


def _out(size, k, stride, padding, dilation=1):
    span = (k - 1) * dilation + 1
    return -(-size // stride) if padding == "same" else (size - span) // stride + 1


def _draw_conv(draw, h, w, c, first):
    """A convolution layer of any kind (Conv2D with groups or dilation, DepthwiseConv2D,
    SeparableConv2D) that fits an ``h x w x c`` input; returns (entry, h, w, c)."""
    kind = draw(st.sampled_from(["Conv2D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D"]))
    padding = draw(st.sampled_from(["valid", "same"]))
    if draw(st.integers(0, 3)) == 0:  # dilated (Keras refuses strides > 1 with it)
        strides = (1, 1)
        dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 3)))
    else:
        strides = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
        dilation = (1, 1)
    kh = draw(st.integers(1, max(1, min(5, (h - 1) // dilation[0] + 1))))
    kw = draw(st.integers(1, max(1, min(5, (w - 1) // dilation[1] + 1))))
    kwargs = dict(
        kernel_size=(kh, kw),
        strides=strides,
        padding=padding,
        dilation_rate=dilation,
        activation=draw(st.sampled_from(ACTIVATIONS)),
        use_bias=draw(st.booleans()),
        trainable=draw(st.booleans()) or first,
    )
    if kind == "DepthwiseConv2D":
        kwargs["depth_multiplier"] = draw(st.integers(1, 3))
        out_c = c * kwargs["depth_multiplier"]
    else:
        filters = draw(st.one_of(st.integers(1, 8), st.integers(9, 40)))
        if kind == "SeparableConv2D":
            kwargs["depth_multiplier"] = draw(st.integers(1, 2))
        else:
            groups = draw(st.sampled_from([g for g in (1, 1, 2, 3, 4) if c % g == 0]))
            filters = groups * max(1, filters // groups)
            kwargs["groups"] = groups
        kwargs["filters"] = out_c = filters
    h = _out(h, kh, strides[0], padding, dilation[0])
    w = _out(w, kw, strides[1], padding, dilation[1])
    return (kind, kwargs), h, w, out_c


def _draw_plan(draw, h, w, c):
    plan = []
    for _ in range(draw(st.integers(0, 2))):
        entry, h, w, c = _draw_conv(draw, h, w, c, first=not plan)
        plan.append(entry)
        if draw(st.integers(0, 2)) == 0:
            plan.append(
                (
                    "BatchNormalization",
                    dict(
                        center=draw(st.booleans()),
                        scale=draw(st.booleans()),
                        momentum=draw(st.sampled_from([0.5, 0.99])),
                        trainable=draw(st.integers(0, 3)) > 0,
                    ),
                )
            )
        if draw(st.integers(0, 3)) == 0:
            pad = (
                (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
                (draw(st.integers(0, 2)), draw(st.integers(0, 2))),
            )
            plan.append(("ZeroPadding2D", dict(padding=pad)))
            h, w = h + sum(pad[0]), w + sum(pad[1])
        if draw(st.booleans()):
            kind = draw(st.sampled_from(["MaxPooling2D", "AveragePooling2D"]))
            if kind == "MaxPooling2D":
                ph, pw = draw(st.integers(1, min(h, 3))), draw(st.integers(1, min(w, 3)))
                ppad = draw(st.sampled_from(["valid", "same"]))
            else:
                # Averages over 1, 2 or 4 pixels stay exact, so a ReLU or max pool after them cannot
                # see float32 and float64 disagree on a tie at zero (dyadic data makes exact ties
                # common). Averages over 3 or 9 pixels and 'same' edges are in TABLE and in
                # tests/kernels/test_kernel_boundary.py, with nothing kinked after them.
                ph = draw(st.sampled_from([s for s in (1, 2, 4) if s <= h]))
                pw = draw(st.sampled_from([s for s in (1, 2, 4) if s <= w]))
                ppad = "valid"
            pstrides = draw(st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))))
            plan.append((kind, dict(pool_size=(ph, pw), strides=pstrides, padding=ppad)))
            sh, sw = pstrides or (ph, pw)
            h = -(-h // sh) if ppad == "same" else (h - ph) // sh + 1
            w = -(-w // sw) if ppad == "same" else (w - pw) // sw + 1
        if draw(st.integers(0, 3)) == 0:
            plan.append(
                (
                    "ReLU",
                    dict(
                        negative_slope=draw(st.sampled_from([0.0, 0.25])), max_value=draw(st.sampled_from([None, 2.0]))
                    ),
                )
            )
    plan.append(("GlobalAveragePooling2D", {}) if draw(st.integers(0, 2)) == 0 else ("Flatten", {}))
    if draw(st.booleans()):
        plan.append(("Dense", dict(units=draw(st.integers(1, 12)), activation=draw(st.sampled_from(ACTIVATIONS)))))
        if draw(st.booleans()):
            plan.append(("Dropout", dict(rate=draw(st.sampled_from([0.25, 0.5])), seed=draw(st.integers(0, 9)))))
    classes = draw(st.integers(2, 6))
    loss = draw(st.sampled_from(["sparse", "sparse_logits", "categorical", "categorical_logits", "mse"]))
    if loss.endswith("logits") or loss == "mse":
        plan.append(("Dense", dict(units=classes, activation=draw(st.sampled_from([None, "linear", "tanh"])))))
    else:
        head = draw(st.sampled_from(["dense_softmax", "softmax_layer", "softmax_activation"]))
        if head == "dense_softmax":
            plan.append(("Dense", dict(units=classes, activation="softmax")))
        elif head == "softmax_layer":
            plan += [("Dense", dict(units=classes)), ("Softmax", {})]
        else:
            plan += [("Dense", dict(units=classes)), ("Activation", dict(activation="softmax"))]
    optimizer = draw(st.sampled_from(OPTIMIZERS))
    return dict(plan=plan, loss=loss, classes=classes, optimizer=optimizer, seed=draw(st.integers(0, 2**16)))
