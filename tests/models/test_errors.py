"""Errors people can act on: each bad input raises ValueError/TypeError naming who complains and what came.

Every check asserts on the message (the layer, model or loss, and the shape or value received),
not just the exception type.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

from convolab import initializers, keras, losses, metrics, optimizers
from convolab.layers import AveragePooling2D, Conv2D, Dense, Dropout, Flatten, MaxPooling2D, Softmax

L = keras.layers


def _lesson_model(compile=True):
    model = keras.Sequential(
        [
            L.Conv2D(filters=9, kernel_size=(5, 5), input_shape=(28, 28, 1), activation="relu", name="c1"),
            L.Flatten(),
            L.Dense(10),
        ],
        name="lesson",
    )
    if compile:
        model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["acc"])
    return model


def _x(n=4, shape=(28, 28, 1)):
    return np.random.default_rng(0).random((n,) + shape).astype("float32")


# ---------------------------------------------------------------------------
# Shapes
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_missing_channel_axis_is_added_as_keras_adds_it(call):
    # Keras 3 (Functional._adjust_input_rank): (N, 28, 28) into an input (None, 28, 28, 1) gains the axis
    model = _lesson_model()
    x = _x(6)[..., 0]  # (6, 28, 28): MNIST as loaded
    args = (x,) if call == "predict" else (x, np.zeros(6, int))
    getattr(model, call)(*args, verbose=0)
    np.testing.assert_array_equal(model.predict(x, verbose=0), model.predict(x[..., None], verbose=0))


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate"])
def test_wrong_channels_names_layer_shape(call):
    model = _lesson_model()
    x = _x(6, (28, 28, 3))  # where Keras raises too: no axis of 1 to add or drop
    args = (x,) if call == "predict" else (x, np.zeros(6, int))
    with pytest.raises(ValueError) as err:
        getattr(model, call)(*args, verbose=0)
    msg = str(err.value)
    assert "Conv2D 'c1'" in msg
    assert "(None, 28, 28, 1)" in msg and "(6, 28, 28, 3)" in msg


def test_missing_channel_axis_when_built_from_data():
    with pytest.raises(ValueError, match=r"Conv2D 'c9'.*got shape \(6, 28, 28\)"):
        Conv2D(4, 5, name="c9")(_x(6)[..., 0])
    model = keras.Sequential([L.Conv2D(4, 5, name="c0"), L.Flatten(), L.Dense(10)])
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    with pytest.raises(ValueError, match=r"Conv2D 'c0'.*\(6, 28, 28\).*expand_dims"):
        model.fit(_x(6)[..., 0], np.zeros(6, int), verbose=0)


def test_single_image_without_batch_axis_hints_batch_axis():
    model = _lesson_model()
    with pytest.raises(ValueError, match=r"(?i)batch axis"):
        model.predict(np.zeros((28, 28, 1), "float32"))


def test_wrong_rank_into_layer_directly():
    layer = Conv2D(2, 3, name="cv")
    with pytest.raises(
        ValueError, match=re.escape("Conv2D 'cv' expects 4-D input (batch, height, width, channels)") + r".*28, 28\)"
    ):
        layer(np.zeros((5, 28, 28)))
    built = Conv2D(2, 3, name="cv2")
    built.build((None, 8, 8, 1))
    with pytest.raises(ValueError, match=re.escape("Conv2D 'cv2' expects 4-D input") + r".*got shape \(8, 8, 1\)"):
        built(np.zeros((8, 8, 1)))
    pool = MaxPooling2D(name="mp")
    pool.build((None, 4, 4, 1))
    with pytest.raises(ValueError, match=r"MaxPooling2D 'mp' expects 4-D input.*got shape \(2, 8\)"):
        pool(np.zeros((2, 8)))


def test_built_conv_called_with_other_channel_count():
    layer = Conv2D(2, 3, name="rgb")
    layer.build((None, 8, 8, 3))
    with pytest.raises(
        ValueError, match=re.escape("Conv2D 'rgb' was built for input shape (None, 8, 8, 3); got shape (1, 8, 8, 2)")
    ):
        layer(np.zeros((1, 8, 8, 2), np.float32))


def test_model_given_other_channel_count_or_size():
    model = _lesson_model()
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'c1' expects input shape \(None, 28, 28, 1\); got data of shape "
        r"\(4, 28, 28, 3\)",
    ):
        model.fit(_x(4, (28, 28, 3)), np.zeros(4, int), verbose=0)
    with pytest.raises(ValueError, match=r"Conv2D 'c1'.*\(None, 28, 28, 1\).*\(2, 32, 32, 1\)"):
        model.predict(_x(2, (32, 32, 1)))


def test_built_layer_put_into_a_model_of_another_shape():
    conv = Conv2D(2, 3, name="shared")
    keras.Sequential([conv], name="first").build((None, 8, 8, 1))
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'shared' was built for input shape \(None, 8, 8, 1\); "
        r"in this model it gets \(None, 8, 8, 3\)",
    ):
        keras.Sequential([keras.Input(shape=(8, 8, 3)), conv])


def test_kernel_larger_than_input_valid():
    with pytest.raises(ValueError) as err:
        keras.Sequential([L.Conv2D(2, 5, input_shape=(3, 4, 1), name="big")])
    msg = str(err.value)
    for part in (
        "Conv2D 'big'",
        "kernel_size (5, 5)",
        "larger than its input (3, 4)",
        "(None, 3, 4, 1)",
        "strides=(1, 1)",
        "padding='valid'",
        "padding='same'",
    ):
        assert part in msg, (part, msg)
    # A later layer too: 28 -> conv 5 -> 24 -> pool 2 -> 12 -> conv 13 does not fit.
    with pytest.raises(
        ValueError,
        match=r"Conv2D 'late': kernel_size \(13, 13\) is larger than its input "
        r"\(12, 12\)",
    ):
        keras.Sequential([L.Conv2D(2, 5, input_shape=(28, 28, 1)), L.MaxPooling2D(), L.Conv2D(2, 13, name="late")])
    # With padding='same' the same kernel is fine and keeps the size.
    assert Conv2D(2, 5, padding="same").compute_output_shape((None, 3, 4, 1)) == (None, 3, 4, 2)


@pytest.mark.parametrize("cls", [MaxPooling2D, AveragePooling2D])
def test_pool_larger_than_input(cls):
    with pytest.raises(ValueError) as err:
        keras.Sequential([keras.Input(shape=(3, 3, 2)), cls(pool_size=(4, 2), name="p")])
    msg = str(err.value)
    assert f"{cls.__name__} 'p'" in msg and "pool_size (4, 2)" in msg and "(3, 3)" in msg and "(None, 3, 3, 2)" in msg
    with pytest.raises(ValueError, match=rf"{cls.__name__} 'q': pool_size \(4, 4\) is larger"):
        cls(4, name="q")(np.zeros((1, 3, 3, 1)))


def test_crossentropy_on_image_output_says_add_flatten_dense():
    model = keras.Sequential([L.Conv2D(2, 3, input_shape=(6, 6, 1))])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with pytest.raises(
        ValueError, match=r"sparse_categorical_crossentropy.*\(None, 4, 4, 2\).*Add Flatten\(\) and Dense"
    ):
        model.fit(_x(2, (6, 6, 1)), np.zeros(2, int), verbose=0)


# ---------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------


def test_x_and_y_of_different_lengths():
    model = _lesson_model()
    with pytest.raises(
        ValueError,
        match=r"Sequential model 'lesson': `x` and `y` must have the same number of "
        r"samples; got 4 and 3 \(shapes \(4, 28, 28, 1\) and \(3,\)\)",
    ):
        model.fit(_x(4), np.zeros(3, int), verbose=0)
    with pytest.raises(ValueError, match=r"got 4 and 5"):
        model.evaluate(_x(4), np.zeros(5, int), verbose=0)
    with pytest.raises(ValueError, match=r"got 2 and 1"):
        model.fit(_x(4), np.zeros(4, int), validation_data=(_x(2), np.zeros(1, int)), verbose=0)


@pytest.mark.parametrize(
    "labels,pattern",
    [
        ([0, 1, 10, 2], r"labels must be in \[0, 9\] for a model with 10 outputs; got labels from 0 to 10"),
        ([0, -1, 3, 2], r"labels must be in \[0, 9\] for a model with 10 outputs; got labels from -1 to 3"),
        ([0, 2.5, 3, 2], r"expects integer class labels; got non-integer values such as \[2\.5\]"),
        ([0, np.nan, 3, 2], r"expects integer class labels; got non-integer values such as \[nan\]"),
    ],
)
def test_bad_sparse_labels(labels, pattern):
    model = _lesson_model()
    w0 = model.get_weights()
    with pytest.raises(ValueError, match="sparse_categorical_crossentropy.*" + pattern):
        model.fit(_x(4), np.array(labels), verbose=0)
    with pytest.raises(ValueError, match=pattern):
        model.evaluate(_x(4), np.array(labels), verbose=0)
    for a, b in zip(w0, model.get_weights()):  # nothing was trained
        np.testing.assert_array_equal(a, b)


def test_string_labels_are_a_type_error():
    with pytest.raises(TypeError, match=r"sparse_categorical_crossentropy expects integer class labels; got dtype <U1"):
        _lesson_model().evaluate(_x(2), np.array(["a", "b"]), verbose=0)


def test_one_hot_labels_for_sparse_loss_hint_categorical():
    with pytest.raises(ValueError, match=r"shape \(N,\) or \(N, 1\); got shape \(4, 10\).*categorical_crossentropy"):
        _lesson_model().fit(_x(4), np.eye(10)[:4], verbose=0)


def test_one_hot_of_wrong_width_for_categorical():
    model = keras.Sequential([L.Flatten(input_shape=(28, 28, 1)), L.Dense(10, activation="softmax")])
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    with pytest.raises(
        ValueError,
        match=r"categorical_crossentropy expects one-hot targets of shape \(N, 10\) for a "
        r"model with 10 outputs; got shape \(4, 9\)",
    ):
        model.fit(_x(4), keras.utils.to_categorical([0, 1, 2, 8]), verbose=0)
    with pytest.raises(ValueError, match=r"got shape \(4,\).*to_categorical"):
        model.fit(_x(4), np.array([0, 1, 2, 8]), verbose=0)


def test_empty_arrays():
    model = _lesson_model()
    with pytest.raises(ValueError, match=r"Sequential model 'lesson': `x` is empty \(shape \(0, 28, 28, 1\)\)"):
        model.fit(_x(0), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match=r"`x` is empty"):
        model.predict(_x(0))
    with pytest.raises(ValueError, match=r"`y` is empty \(shape \(0,\)\)"):
        model.evaluate(_x(3), np.zeros(0, int), verbose=0)
    with pytest.raises(ValueError, match=r"`y` is required"):
        model.fit(_x(3), None, verbose=0)


def test_non_numeric_x():
    with pytest.raises(TypeError, match=r"Sequential model 'lesson': `x` must be a numeric array; got dtype <U1"):
        _lesson_model().predict(np.array([["a"]]))
    with pytest.raises(TypeError, match=r"got dtype object"):
        _lesson_model().predict(np.array([None, 1], dtype=object))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "32"])
@pytest.mark.parametrize("call", ["fit", "evaluate", "predict"])
def test_bad_batch_size(call, bad):
    model = _lesson_model()
    args = (_x(4),) if call == "predict" else (_x(4), np.zeros(4, int))
    pattern = r"Sequential model 'lesson': `batch_size` must be an int >= 1; got " + re.escape(repr(bad))
    with pytest.raises(ValueError, match=pattern):
        getattr(model, call)(*args, batch_size=bad, verbose=0)


def test_numpy_integer_batch_size_is_fine():
    model = _lesson_model()
    assert model.predict(_x(5), batch_size=np.int64(2)).shape == (5, 10)


@pytest.mark.parametrize("split", [1.0, -0.1, 1.5, True])
def test_bad_validation_split(split):
    with pytest.raises(ValueError, match=rf"`validation_split` must be a float in \[0, 1\); got {split!r}"):
        _lesson_model().fit(_x(4), np.zeros(4, int), validation_split=split, verbose=0)


def test_validation_split_leaving_nothing():
    # Keras trains on floor(N * (1 - split)) samples: one sample with split 0.5 leaves none.
    with pytest.raises(ValueError, match=r"validation_split=0.5 of 1 samples leaves an empty set"):
        _lesson_model().fit(_x(1), np.zeros(1, int), validation_split=0.5, verbose=0)


def test_bad_validation_data_and_epochs():
    model = _lesson_model()
    with pytest.raises(ValueError, match=r"`validation_data` must be a tuple \(x_val, y_val\)"):
        model.fit(_x(4), np.zeros(4, int), validation_data=_x(2), verbose=0)
    with pytest.raises(ValueError, match=r"`epochs` must be an int >= 0; got -1"):
        model.fit(_x(4), np.zeros(4, int), epochs=-1, verbose=0)
    with pytest.raises(ValueError, match=r"`epochs` must be an int >= 0; got 2.0"):
        model.fit(_x(4), np.zeros(4, int), epochs=2.0, verbose=0)


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def test_unknown_optimizer_name_lists_valid():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'lion'; valid: sgd, rmsprop, adam, adamw, nadam"):
        _lesson_model(compile=False).compile(optimizer="lion", loss="mse")


def test_unknown_loss_name_lists_valid():
    with pytest.raises(
        ValueError,
        match=r"Unknown loss 'hinge'; valid: sparse_categorical_crossentropy, "
        r"categorical_crossentropy, mean_squared_error",
    ):
        _lesson_model(compile=False).compile(optimizer="adam", loss="hinge")
    with pytest.raises(ValueError, match=r"Unknown loss"):
        losses.get(None)


def test_unknown_activation_name_lists_valid():
    with pytest.raises(
        ValueError,
        match=r"Dense 'd': unknown activation 'gelux'; valid: linear, relu, sigmoid, tanh, "
        r"softmax",
    ):
        Dense(3, activation="gelux", name="d")
    with pytest.raises(ValueError, match=r"Conv2D 'c': unknown activation 'Relu6'"):
        Conv2D(3, 3, activation="Relu6", name="c")
    with pytest.raises(ValueError, match=r"Activation 'a': unknown activation 'swishy'"):
        L.Activation("swishy", name="a")


def test_activation_names_are_case_insensitive():
    assert Dense(2, activation="ReLU").activation == "relu"


def test_unknown_metric_name_lists_valid():
    with pytest.raises(ValueError, match=r"Unknown metric 'f1'; valid: acc, accuracy, .*categorical_accuracy"):
        _lesson_model(compile=False).compile(optimizer="adam", loss="mse", metrics=["f1"])
    with pytest.raises(ValueError, match="Unknown metric"):
        metrics.get(3, "mse", 1)


def test_unknown_initializer_name_lists_valid():
    with pytest.raises(
        ValueError,
        match=r"Dense 'd': unknown initializer 'orthogonal'; valid: .*glorot_uniform.*"
        r"he_normal.*zeros or a callable",
    ):
        Dense(3, kernel_initializer="orthogonal", name="d")
    with pytest.raises(ValueError, match=r"Conv2D 'c': unknown initializer 'nope'"):
        Conv2D(2, 3, bias_initializer="nope", name="c")
    assert initializers.get("GlorotUniform") is initializers.get("glorot_uniform")


def test_unknown_optimizer_object():
    with pytest.raises(ValueError, match=r"Unknown optimizer 42"):
        optimizers.get(42)


# ---------------------------------------------------------------------------
# Order of calls
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("call", ["fit", "evaluate", "train_on_batch"])
def test_training_before_compile(call):
    model = _lesson_model(compile=False)
    with pytest.raises(
        RuntimeError,
        match=rf"Sequential model 'lesson': call compile\(optimizer=\.\.\., loss=\.\.\., "
        rf"metrics=\.\.\.\) before {call}\(\)",
    ):
        getattr(model, call)(_x(2), np.zeros(2, int))


def test_predict_before_compile_is_allowed_like_keras():
    model = _lesson_model(compile=False)
    out = model.predict(_x(3))
    assert out.shape == (3, 10) and np.isfinite(out).all()


def test_compile_without_loss_then_fit_names_what_is_missing():
    model = _lesson_model(compile=False)
    model.compile(optimizer="adam")  # Keras 3 allows it: the model may add its own loss
    with pytest.raises(ValueError, match=r"Sequential model 'lesson': no loss to compute.*Pass loss=\.\.\. to compile"):
        model.fit(_x(4), np.zeros(4, int), verbose=0)


def test_input_must_come_first_and_layers_only_once():
    with pytest.raises(ValueError, match="an Input can only come first"):
        keras.Sequential([L.Dense(2, input_shape=(3,)), keras.Input(shape=(3,))])
    with pytest.raises(TypeError, match=r"add\(\) expects a convolab layer; got int"):
        keras.Sequential([3])
    d = Dense(2, input_shape=(2,), name="twice")
    with pytest.raises(ValueError, match=r"layer 'twice' is already in the model"):
        keras.Sequential([d, d])


# ---------------------------------------------------------------------------
# Layer arguments
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,exc,pattern",
    [
        (dict(filters=0, kernel_size=3), ValueError, r"`filters` must be a positive int; got 0"),
        (dict(filters=-2, kernel_size=3), ValueError, r"`filters` must be a positive int; got -2"),
        (dict(filters=2.0, kernel_size=3), ValueError, r"`filters` must be a positive int; got 2.0"),
        (dict(filters=2, kernel_size=0), ValueError, r"every value of `kernel_size` must be >= 1; got 0"),
        (dict(filters=2, kernel_size=(3, 3, 3)), ValueError, r"`kernel_size` must be an int or a tuple of 2 ints"),
        (dict(filters=2, kernel_size=2.5), TypeError, r"`kernel_size` must be an int or a tuple of 2 ints; got 2.5"),
        (dict(filters=2, kernel_size=3, strides=0), ValueError, r"every value of `strides` must be >= 1; got 0"),
        (dict(filters=2, kernel_size=3, strides=(1, 0)), ValueError, r"`strides` must be >= 1; got \(1, 0\)"),
        (
            dict(filters=2, kernel_size=3, padding="full"),
            ValueError,
            r"`padding` must be 'valid' or 'same'; got 'full'",
        ),
        (dict(filters=2, kernel_size=3, padding=None), ValueError, r"`padding` must be 'valid' or 'same'; got None"),
        (
            dict(filters=2, kernel_size=3, dilation_rate=2, strides=2),
            ValueError,
            r"`strides` > 1 is not supported together with `dilation_rate` > 1.*got strides=\(2, 2\) and "
            r"dilation_rate=\(2, 2\)",
        ),
        (dict(filters=2, kernel_size=3, dilation_rate=0), ValueError, r"every value of `dilation_rate` must be >= 1"),
        (
            dict(filters=6, kernel_size=3, groups=4),
            ValueError,
            r"`filters` must be divisible by `groups`; got filters=6 and groups=4",
        ),
        (dict(filters=2, kernel_size=3, groups=0), ValueError, r"`groups` must be a positive int; got 0"),
        (dict(filters=2, kernel_size=3, data_format="channels_first"), ValueError, r"data_format"),
    ],
)
def test_conv2d_bad_arguments(kwargs, exc, pattern):
    with pytest.raises(exc, match=r"Conv2D 'bad'.*" + pattern):
        Conv2D(name="bad", **kwargs)


def test_unexpected_keyword_is_a_type_error():
    with pytest.raises(TypeError, match=r"Conv2D: unexpected keyword argument\(s\) kernel"):
        Conv2D(2, 3, kernel=3)


def test_padding_is_case_insensitive():
    assert Conv2D(2, 3, padding="SAME").padding == "same"


@pytest.mark.parametrize(
    "make,pattern",
    [
        (lambda: MaxPooling2D(padding="full", name="p"), r"MaxPooling2D 'p': `padding` must be 'valid' or 'same'"),
        (lambda: AveragePooling2D(strides=0, name="p"), r"AveragePooling2D 'p': every value of `strides` must be >= 1"),
        (lambda: MaxPooling2D(pool_size=0, name="p"), r"MaxPooling2D 'p': every value of `pool_size` must be >= 1"),
        (lambda: Dense(0, name="p"), r"Dense 'p': `units` must be a positive int; got 0"),
        (lambda: Dropout(1.0, name="p"), r"Dropout 'p': `rate` must be a float in \[0, 1\); got 1.0"),
        (lambda: Dropout(-0.1, name="p"), r"Dropout 'p': `rate` must be a float in \[0, 1\); got -0.1"),
        (lambda: Softmax(axis=1), r"Softmax: convolab supports axis=-1 only; got axis=1"),
        (lambda: L.ReLU(negative_slope=-1.0, name="p"), r"ReLU 'p': `negative_slope` must be >= 0"),
        (lambda: L.ReLU(max_value=-1.0, name="p"), r"ReLU 'p': `max_value` must be None or >= 0"),
        (lambda: Flatten(data_format="channels_first", name="p"), r"Flatten 'p'.*data_format"),
    ],
)
def test_other_layer_bad_arguments(make, pattern):
    with pytest.raises(ValueError, match=pattern):
        make()


def test_bad_input_shape_names_the_layer():
    with pytest.raises((TypeError, ValueError), match=r"Dense 'd'.*input_shape"):
        Dense(2, input_shape=("a",), name="d")


def test_set_random_seed_needs_an_int():
    with pytest.raises(TypeError, match=r"set_random_seed expects an int seed; got str 'a'"):
        keras.utils.set_random_seed("a")


def test_to_categorical_bad_labels():
    with pytest.raises(ValueError, match=r"to_categorical: label 3 does not fit num_classes=3"):
        keras.utils.to_categorical([0, 3], num_classes=3)
    with pytest.raises(ValueError, match=r"labels >= 0; got -1"):
        keras.utils.to_categorical([0, -1])
    with pytest.raises(ValueError, match=r"integer labels"):
        keras.utils.to_categorical([0.5])


# ---------------------------------------------------------------------------
# NaN / inf during training, uint8 input
# ---------------------------------------------------------------------------


def _small(lr=0.01, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [L.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1)), L.Flatten(), L.Dense(2)], name="small"
    )
    model.compile(
        optimizer=keras.optimizers.SGD(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["acc"],
    )
    return model


def _bars(n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 8, 8, 1)).astype("float32"), rng.integers(0, 2, n)


@pytest.mark.parametrize("batch_size", [8, 64])
def test_nan_input_warns_skips_that_update_and_fit_goes_on(batch_size):
    # Keras 3's fit goes on through a NaN loss (TerminateOnNaN stops it); the warning is convolab's
    model = _small()
    x, y = _bars()
    x[3, 2, 2, 0] = np.nan  # in the first batch (shuffle=False)
    w0 = model.get_weights()
    with pytest.warns(
        RuntimeWarning,
        match=r"Sequential model 'small': the loss became nan at epoch 1, batch 1; "
        r"that batch's update was not applied and training goes on",
    ):
        hist = model.fit(x, y, batch_size=batch_size, epochs=3, shuffle=False, verbose=0)
    assert len(hist.history["loss"]) == 3 and all(np.isnan(v) for v in hist.history["loss"])
    w = model.get_weights()
    assert all(np.isfinite(a).all() for a in w)
    if batch_size == 64:  # one batch, always the NaN one: nothing was ever applied
        for a, b in zip(w0, w):
            np.testing.assert_array_equal(a, b)


def test_nan_in_a_later_batch_keeps_the_other_updates():
    model = _small()
    x, y = _bars()
    x[20] = np.nan  # batch 3 of 8
    with pytest.warns(RuntimeWarning, match=r"epoch 1, batch 3"):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    w = model.get_weights()
    assert all(np.isfinite(a).all() for a in w)
    # Every batch but the third was applied: redo them on a fresh copy and compare.
    ref = _small()
    for i in (0, 1, 3, 4, 5, 6, 7):
        ref.train_on_batch(x[8 * i : 8 * i + 8], y[8 * i : 8 * i + 8])
    for a, b in zip(ref.get_weights(), w):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)


def test_huge_learning_rate_stops_with_warning_and_finite_weights():
    model = _small(lr=1e20)
    x, y = _bars()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own overflow warnings, re-emitted by pytest.warns
        with pytest.warns(RuntimeWarning, match=r"the loss became (nan|inf) .*Lower the learning rate"):
            hist = model.fit(x * 100, y, batch_size=8, epochs=3, verbose=0)
    assert not np.isfinite(hist.history["loss"][-1])
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_overflowing_update_leaves_finite_weights():
    model = _small(lr=1e38)
    x, y = _bars()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        model.fit(x * 100, y, batch_size=8, epochs=1, verbose=0)
    assert all(np.isfinite(w).all() for w in model.get_weights())


def test_uint8_images_accepted_and_cast_without_scaling():
    model = _small()
    rng = np.random.default_rng(1)
    x8 = rng.integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    out8 = model.predict(x8)
    assert out8.dtype == np.float32
    np.testing.assert_array_equal(out8, model.predict(x8.astype(np.float32)))
    assert not np.allclose(out8, model.predict(x8.astype(np.float32) / 255.0))
    hist = model.fit(x8, rng.integers(0, 2, 10), epochs=1, verbose=0)
    assert np.isfinite(hist.history["loss"][0])
    assert all(w.dtype == np.float32 for w in model.get_weights())
