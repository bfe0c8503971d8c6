"""A strict, explicit schema for the JSON inside a convolab file.

Known keys only, every type and range checked, layer/optimizer/loss classes from an
allow-list. Nothing from a file reaches a constructor before it has passed here; the
checks run on save too, so convolab never writes a file it would refuse to read.

Each checker is ``check(value, where) -> value`` and raises :class:`ModelFileError`
naming ``where`` (a path such as ``model.layers[2].config.units``).
"""

from __future__ import annotations

import math

from .. import initializers
from .. import metrics as metrics_mod
from ..nn.activations import ACTIVATIONS
from .container import short_repr
from .errors import ModelFileError

FORMAT_VERSION = 1
MAX_INT = 2**31 - 1
MAX_LAYERS = 10_000
MAX_NAME = 256


def _fail(where, expected, value):
    raise ModelFileError(f"{where}: expected {expected}; got {short_repr(value)}")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def integer(lo=0, hi=MAX_INT):
    def check(v, where):
        if not _is_int(v) or not lo <= v <= hi:
            _fail(where, f"an int in [{lo}, {hi}]", v)
        return v

    return check


def number(lo=-math.inf, hi=math.inf, lo_open=False, hi_open=False):
    """A finite int or float in the range (bools are not numbers here)."""

    def check(v, where):
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        # math.isfinite(10**400) raises OverflowError: compare huge ints instead.
        ok = ok and (math.isfinite(v) if isinstance(v, float) else abs(v) <= 1e308)
        ok = ok and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
        if not ok:
            _fail(where, f"a finite number in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}", v)
        return v

    return check


def boolean(v, where):
    if not isinstance(v, bool):
        _fail(where, "true or false", v)
    return v


def string(max_len=MAX_NAME, choices=None, nonempty=True):
    def check(v, where):
        if not isinstance(v, str) or len(v) > max_len or (nonempty and not v):
            _fail(where, f"a string of 1 to {max_len} characters", v)
        if choices is not None and v not in choices:
            _fail(where, f"one of {', '.join(sorted(choices))}", v)
        return v

    return check


def nullable(inner):
    def check(v, where):
        return None if v is None else inner(v, where)

    return check


def list_of(inner, min_len=0, max_len=MAX_INT):
    def check(v, where):
        if not isinstance(v, list) or not min_len <= len(v) <= max_len:
            _fail(where, f"a list of {min_len} to {max_len} items", v)
        return [inner(item, f"{where}[{i}]") for i, item in enumerate(v)]

    return check


def obj(required: dict, optional: dict | None = None):
    """A JSON object with exactly the ``required`` keys and any of the ``optional`` ones."""
    optional = optional or {}

    def check(v, where):
        if not isinstance(v, dict):
            _fail(where, "an object", v)
        unknown = set(v) - set(required) - set(optional)
        if unknown:
            raise ModelFileError(f"{where}: unknown key(s) {short_repr(sorted(unknown))}")
        missing = set(required) - set(v)
        if missing:
            raise ModelFileError(f"{where}: missing key(s) {', '.join(sorted(map(repr, missing)))}")
        spec = {**required, **optional}
        return {k: spec[k](val, f"{where}.{k}") for k, val in v.items()}

    return check


def tagged(classes: dict):
    """``{"class_name": <one of classes>, "config": <that class's schema>}``."""
    names = set(classes)

    def check(v, where):
        outer = obj({"class_name": string(64, names), "config": lambda c, w: c})(v, where)
        return {
            "class_name": outer["class_name"],
            "config": classes[outer["class_name"]](outer["config"], f"{where}.config"),
        }

    return check


# -- layers --------------------------------------------------------------------
_dim = integer(1, MAX_INT)
pair = list_of(integer(1, MAX_INT), 2, 2)
shape = list_of(_dim, 1, 6)
_activation = string(32, set(ACTIVATIONS))
_padding = string(8, {"valid", "same"})


def _initializer(v, where):
    string(64)(v, where)
    try:
        initializers.get(v)
    except ValueError:
        _fail(where, "a built-in initializer name", v)
    return v


_COMMON = {"name": string(), "trainable": boolean, "dtype": string(16, {"float32", "float64"})}
_COMMON_OPT = {"input_shape": shape}


def _layer(required=None, optional=None):
    return obj({**_COMMON, **(required or {})}, {**_COMMON_OPT, **(optional or {})})


_INITS = {"kernel_initializer": _initializer, "bias_initializer": _initializer}
_POOL = {"pool_size": pair, "strides": pair, "padding": _padding}
_GLOBAL_POOL = {"data_format": string(16, {"channels_last"}), "keepdims": boolean}


def _target_shape(v, where):
    """Reshape's ``target_shape``: 1 to 6 sizes, each positive or ``-1``, at most one ``-1``."""
    dims = list_of(integer(-1, MAX_INT), 1, 6)(v, where)
    if 0 in dims or dims.count(-1) > 1:
        _fail(where, "positive sizes and at most one -1", v)
    return dims


_WINDOW = {"kernel_size": pair, "strides": pair, "padding": _padding, "use_bias": boolean, "activation": _activation}
# dilation_rate and groups are optional: files written before they existed hold neither
_CONV_OPT = {"dilation_rate": pair, "groups": _dim}
_DEPTHWISE_INITS = {"depthwise_initializer": _initializer, "bias_initializer": _initializer}
_BATCH_NORM = {
    "axis": integer(-1, 6),
    "momentum": number(0, 1),
    "epsilon": number(0, lo_open=True),
    "center": boolean,
    "scale": boolean,
    "synchronized": boolean,
}
_BATCH_NORM_INITS = {
    key: _initializer
    for key in ("beta_initializer", "gamma_initializer", "moving_mean_initializer", "moving_variance_initializer")
}
_border = list_of(list_of(integer(0, MAX_INT), 2, 2), 2, 2)
_channels_last = string(16, {"channels_last"})
_seed = nullable(integer(0, 2**63 - 1))
_value_range = list_of(number(), 2, 2)
_FILL = {
    "fill_mode": string(16, {"reflect", "wrap", "constant", "nearest"}),
    "interpolation": string(16, {"bilinear", "nearest"}),
    "fill_value": number(),
    "seed": _seed,
}


def _factor(v, where):
    """An augmentation factor: a number, or ``[lower, upper]`` (the layer checks the ranges)."""
    if isinstance(v, list):
        return list_of(number(), 2, 2)(v, where)
    return number()(v, where)


# regularizers and constraints: written only when set, so every key is optional
_factor_ = number(0)
_regularizer = tagged(
    {"L1": obj({"l1": _factor_}), "L2": obj({"l2": _factor_}), "L1L2": obj({"l1": _factor_, "l2": _factor_})}
)


def _axis(v, where):
    if isinstance(v, list):
        return list_of(integer(-6, 5), 1, 6)(v, where)
    return integer(-6, 5)(v, where)


_constraint = tagged(
    {
        "MaxNorm": obj({"max_value": number(0), "axis": _axis}),
        "NonNeg": obj({}),
        "UnitNorm": obj({"axis": _axis}),
        "MinMaxNorm": obj({"min_value": number(0), "max_value": number(0), "rate": number(0), "axis": _axis}),
    }
)


def _rules(kernel):
    return {
        f"{kernel}_regularizer": _regularizer,
        "bias_regularizer": _regularizer,
        "activity_regularizer": _regularizer,
        f"{kernel}_constraint": _constraint,
        "bias_constraint": _constraint,
    }


LAYER_SCHEMAS = {
    "Conv2D": _layer({"filters": _dim, **_WINDOW}, {**_INITS, **_CONV_OPT, **_rules("kernel")}),
    "DepthwiseConv2D": _layer(
        {**_WINDOW, "dilation_rate": pair, "depth_multiplier": _dim}, {**_DEPTHWISE_INITS, **_rules("depthwise")}
    ),
    "SeparableConv2D": _layer(
        {"filters": _dim, **_WINDOW, "dilation_rate": pair, "depth_multiplier": _dim},
        {
            **_DEPTHWISE_INITS,
            "pointwise_initializer": _initializer,
            **_rules("depthwise"),
            "pointwise_regularizer": _regularizer,
            "pointwise_constraint": _constraint,
        },
    ),
    "Dense": _layer({"units": _dim, "use_bias": boolean, "activation": _activation}, {**_INITS, **_rules("kernel")}),
    "MaxPooling2D": _layer(_POOL),
    "AveragePooling2D": _layer(_POOL),
    "Flatten": _layer(),
    "Dropout": _layer({"rate": number(0, 1, hi_open=True), "seed": nullable(integer(0, 2**63 - 1))}),
    "Activation": _layer({"activation": _activation}),
    "ReLU": _layer({"max_value": nullable(number(0)), "negative_slope": number(0), "threshold": number()}),
    "Softmax": _layer(),
    "GlobalAveragePooling2D": _layer(_GLOBAL_POOL),
    "GlobalMaxPooling2D": _layer(_GLOBAL_POOL),
    "Reshape": _layer({"target_shape": _target_shape}),
    "Rescaling": _layer({"scale": number(), "offset": number()}),
    "BatchNormalization": _layer(
        _BATCH_NORM,
        {
            **_BATCH_NORM_INITS,
            "beta_regularizer": _regularizer,
            "gamma_regularizer": _regularizer,
            "beta_constraint": _constraint,
            "gamma_constraint": _constraint,
        },
    ),
    "ZeroPadding2D": _layer({"padding": _border, "data_format": _channels_last}),
    "Cropping2D": _layer({"cropping": _border, "data_format": _channels_last}),
    "UpSampling2D": _layer(
        {"size": pair, "data_format": _channels_last, "interpolation": string(16, {"nearest", "bilinear"})}
    ),
    "RandomFlip": _layer({"mode": string(32, {"horizontal", "vertical", "horizontal_and_vertical"}), "seed": _seed}),
    "RandomTranslation": _layer({"height_factor": _factor, "width_factor": _factor, **_FILL}),
    "RandomRotation": _layer({"factor": _factor, **_FILL}),
    "RandomZoom": _layer({"height_factor": _factor, "width_factor": nullable(_factor), **_FILL}),
    "RandomCrop": _layer({"height": _dim, "width": _dim, "seed": _seed}),
    "RandomContrast": _layer({"factor": _factor, "value_range": _value_range, "seed": _seed}),
    "RandomBrightness": _layer({"factor": _factor, "value_range": _value_range, "seed": _seed}),
}

# issue 19's layers (Lambda is left out: it holds Python code, which no file may carry)
_one = list_of(integer(1, MAX_INT), 1, 1)
_channels_last_opt = {"data_format": _channels_last}
_NO_PADDING = {
    "pad_to_aspect_ratio": lambda v, w: _fail(w, "false", v) if v is not False else v,
    "antialias": lambda v, w: _fail(w, "false", v) if v is not False else v,
    "fill_mode": string(16, {"reflect", "wrap", "constant", "nearest"}),
    "fill_value": number(),
}
LAYER_SCHEMAS.update(
    {
        "LeakyReLU": _layer({"negative_slope": number(0)}),
        "ELU": _layer({"alpha": number(0)}),
        "PReLU": _layer(
            {"shared_axes": nullable(list_of(integer(1, 6), 1, 6))},
            {"alpha_initializer": _initializer, "alpha_regularizer": _regularizer, "alpha_constraint": _constraint},
        ),
        "Resizing": _layer(
            {
                "height": _dim,
                "width": _dim,
                "interpolation": string(16, {"bilinear", "nearest"}),
                "crop_to_aspect_ratio": boolean,
            },
            {**_NO_PADDING, "pad_to_aspect_ratio": boolean, **_channels_last_opt},
        ),
        "Conv1D": _layer(
            {
                "filters": _dim,
                "kernel_size": _one,
                "strides": _one,
                "padding": string(8, {"valid", "same", "causal"}),
                "use_bias": boolean,
                "activation": _activation,
            },
            {**_INITS, "dilation_rate": _one, "groups": _dim, **_rules("kernel"), **_channels_last_opt},
        ),
        "MaxPooling1D": _layer({"pool_size": _one, "strides": _one, "padding": _padding}, _channels_last_opt),
        "AveragePooling1D": _layer({"pool_size": _one, "strides": _one, "padding": _padding}, _channels_last_opt),
        "GlobalAveragePooling1D": _layer({"keepdims": boolean}, _channels_last_opt),
        "GlobalMaxPooling1D": _layer({"keepdims": boolean}, _channels_last_opt),
        "Conv2DTranspose": _layer(
            {
                "filters": _dim,
                **_WINDOW,
                "dilation_rate": pair,
                "output_padding": nullable(list_of(integer(0, MAX_INT), 2, 2)),
            },
            {**_INITS, **_rules("kernel"), **_channels_last_opt},
        ),
    }
)

model_schema = obj(
    {
        "class_name": string(32, {"Sequential"}),
        "config": obj(
            {
                "name": string(),
                "dtype": string(16, {"float32", "float64"}),
                "input_shape": shape,
                "layers": list_of(tagged(LAYER_SCHEMAS), 1, MAX_LAYERS),
            }
        ),
    }
)

# -- compile -------------------------------------------------------------------
_rate = number(0)
_steps = number(0, lo_open=True)
_MAX_PIECES = 10_000
SCHEDULE_SCHEMAS = {
    "ExponentialDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "decay_rate": number(0, lo_open=True),
            "staircase": boolean,
            "name": string(),
        }
    ),
    "PiecewiseConstantDecay": obj(
        {
            "boundaries": list_of(integer(-(2**62), 2**62), 1, _MAX_PIECES),
            "values": list_of(_rate, 2, _MAX_PIECES + 1),
            "name": string(),
        }
    ),
    "CosineDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "alpha": number(0, 1),
            "name": string(),
            "warmup_target": nullable(_rate),
            "warmup_steps": number(0),
        }
    ),
    "InverseTimeDecay": obj(
        {
            "initial_learning_rate": _rate,
            "decay_steps": _steps,
            "decay_rate": number(0),
            "staircase": boolean,
            "name": string(),
        }
    ),
}
_schedule = tagged(SCHEDULE_SCHEMAS)
_positive = number(0, lo_open=True)


def _learning_rate(v, where):
    """A positive number, or a built-in schedule ``{"class_name": ..., "config": ...}``."""
    if isinstance(v, dict):
        return _schedule(v, where)
    if not isinstance(v, (int, float)) or isinstance(v, bool):
        _fail(where, "a positive number or a learning-rate schedule object", v)
    return _positive(v, where)


_OPT_COMMON = {"name": string(), "learning_rate": _learning_rate}
_OPT_OPTIONAL = {"clipnorm": number(0, lo_open=True), "clipvalue": number(0, lo_open=True), "weight_decay": number(0)}
_unit = number(0, 1)
_eps = number(0)
_beta = number(0, 1, hi_open=True)
_ADAM = {**_OPT_COMMON, "beta_1": _beta, "beta_2": _beta, "epsilon": _eps, "amsgrad": boolean}
OPTIMIZER_SCHEMAS = {
    "SGD": obj({**_OPT_COMMON, "momentum": _unit, "nesterov": boolean}, _OPT_OPTIONAL),
    "RMSprop": obj(
        {**_OPT_COMMON, "rho": _unit, "momentum": _unit, "epsilon": _eps, "centered": boolean}, _OPT_OPTIONAL
    ),
    "Adam": obj(_ADAM, _OPT_OPTIONAL),
    "AdamW": obj({**_ADAM, "weight_decay": number(0)}, _OPT_OPTIONAL),
    "Nadam": obj({**_OPT_COMMON, "beta_1": _beta, "beta_2": _beta, "epsilon": _eps}, _OPT_OPTIONAL),
    "Adagrad": obj({**_OPT_COMMON, "initial_accumulator_value": number(0), "epsilon": _eps}, _OPT_OPTIONAL),
    "Adadelta": obj({**_OPT_COMMON, "rho": _unit, "epsilon": _eps}, _OPT_OPTIONAL),
}
# reduction: written only when not Keras's default 'sum_over_batch_size' (issue 19)
_REDUCTION = {"reduction": string(32, {"sum", "mean", "mean_with_sample_weight", "none"})}
LOSS_SCHEMAS = {
    "SparseCategoricalCrossentropy": obj({"name": string(), "from_logits": boolean}, _REDUCTION),
    "CategoricalCrossentropy": obj({"name": string(), "from_logits": boolean}, _REDUCTION),
    "MeanSquaredError": obj({"name": string()}, _REDUCTION),
    "BinaryCrossentropy": obj({"name": string(), "from_logits": boolean, "label_smoothing": _unit}, _REDUCTION),
    "MeanAbsoluteError": obj({"name": string()}, _REDUCTION),
    "KLDivergence": obj({"name": string()}, _REDUCTION),
}

_METRIC_COMMON = {"name": string(), "dtype": string(16, {"float32", "float64"})}
METRIC_SCHEMAS = {
    "Accuracy": obj(_METRIC_COMMON),
    "BinaryAccuracy": obj({**_METRIC_COMMON, "threshold": number(0, 1, lo_open=True, hi_open=True)}),
    "CategoricalAccuracy": obj(_METRIC_COMMON),
    "SparseCategoricalAccuracy": obj(_METRIC_COMMON),
    "TopKCategoricalAccuracy": obj({**_METRIC_COMMON, "k": integer(1, MAX_INT)}),
    "SparseTopKCategoricalAccuracy": obj({**_METRIC_COMMON, "k": integer(1, MAX_INT)}),
    "MeanSquaredError": obj(_METRIC_COMMON),
    "MeanAbsoluteError": obj(_METRIC_COMMON),
    "MeanAbsolutePercentageError": obj(_METRIC_COMMON),
    "BinaryCrossentropy": obj({**_METRIC_COMMON, "from_logits": boolean, "label_smoothing": _unit}),
}
_metric_object = tagged(METRIC_SCHEMAS)


def _metric(v, where):
    """A metric name, or a built-in metric class (from the allow-list) and its config."""
    if isinstance(v, dict):
        return _metric_object(v, where)
    if not isinstance(v, str) or v.lower() not in metrics_mod.VALID:
        _fail(where, f"a metric name ({', '.join(metrics_mod.VALID)}) or a built-in metric object", v)
    return v


_metrics = list_of(_metric, 0, 64)
_one_output_compile = obj(
    {"optimizer": tagged(OPTIMIZER_SCHEMAS), "loss": tagged(LOSS_SCHEMAS), "metrics": _metrics},
    {"weighted_metrics": _metrics},
)
MAX_OUTPUTS = 64
_output_compile = obj(
    {
        "name": string(),
        "loss": nullable(tagged(LOSS_SCHEMAS)),
        "loss_weight": number(0),
        "metrics": _metrics,
        "weighted_metrics": _metrics,
    }
)


def _distinct_outputs(v, where):
    outputs = list_of(_output_compile, 2, MAX_OUTPUTS)(v, where)
    names = [o["name"] for o in outputs]
    if len(set(names)) != len(names):
        _fail(where, "distinct output names", names)
    if all(o["loss"] is None for o in outputs):
        _fail(where, "a loss for at least one output", names)
    return outputs


_several_outputs_compile = obj({"optimizer": tagged(OPTIMIZER_SCHEMAS), "outputs": _distinct_outputs})


def compile_schema(v, where):
    """One output: ``{optimizer, loss, metrics[, weighted_metrics]}``; several: ``{optimizer, outputs}``,
    each output ``{name, loss (null: not trained), loss_weight, metrics, weighted_metrics}``."""
    if isinstance(v, dict) and "outputs" in v:
        return _several_outputs_compile(v, where)
    return _one_output_compile(v, where)


# -- training state ------------------------------------------------------------
_u128 = integer(0, 2**128 - 1)
rng_state_schema = obj(
    {
        "bit_generator": string(16, {"PCG64"}),
        "state": obj({"state": _u128, "inc": _u128}),
        "has_uint32": integer(0, 1),
        "uinteger": integer(0, 2**32 - 1),
    }
)


def _layer_rngs(v, where):
    if not isinstance(v, dict):
        _fail(where, "an object of layer index -> generator state", v)
    out = {}
    for key, state in v.items():
        if not (key.isdigit() and len(key) <= 6 and str(int(key)) == key):
            _fail(where, "layer indices as keys", key)
        out[int(key)] = rng_state_schema(state, f"{where}.{key}")
    return out


training_state_schema = obj(
    {
        "iterations": integer(0, 2**62),
        "optimizer_slots": integer(0, MAX_INT),
        "rng": obj({"global": nullable(rng_state_schema), "layers": _layer_rngs}),
    },
    {
        # state of the optimizer as a whole (Optimizer.get_global_state), e.g. Nadam's momentum cache
        "optimizer_globals": obj({}, {"u_product": number(0, 1)}),
    },
)

# -- documents -----------------------------------------------------------------
_header = {"format_version": lambda v, w: v, "kind": string(16, {"model", "weights"}), "convolab_version": string(64)}
model_document = obj(
    {
        **_header,
        "model": model_schema,
        "compile": nullable(compile_schema),
        "training_state": nullable(training_state_schema),
    }
)
weights_document = obj({**_header, "layers": list_of(obj({"class_name": string(64), "name": string()}), 0, MAX_LAYERS)})
