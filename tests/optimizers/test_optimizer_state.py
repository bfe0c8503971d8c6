"""Optimizer state belongs to each variable, not to a position in a list (Keras's rule).

Defect 2: training with Adam, freezing a layer and compiling again with the same optimizer
paired the old state with the wrong weights by position; the C Adam step then wrote past
its buffers (training ended in NaN) and the NumPy step raised a broadcast error.
"""

import numpy as np
import pytest

from convolab import keras


def _model(dtype="float32", seed=0):
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.layers.Conv2D(4, 3, activation="relu", input_shape=(8, 8, 1), dtype=dtype),
            keras.layers.MaxPooling2D(dtype=dtype),
            keras.layers.Flatten(dtype=dtype),
            keras.layers.Dense(16, activation="relu", dtype=dtype),
            keras.layers.Dense(3, dtype=dtype),
        ]
    )


def _data(n=16):
    rng = np.random.default_rng(3)
    return rng.random((n, 8, 8, 1)), rng.integers(0, 3, n)


def _freeze_and_retrain(dtype, make_opt):
    x, y = _data()
    x = x.astype(dtype)
    model = _model(dtype)
    opt = make_opt()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(optimizer=opt, loss=loss)
    for _ in range(3):
        model.train_on_batch(x, y)
    frozen = model.layers[0].get_weights()
    model.layers[0].trainable = False
    model.compile(optimizer=opt, loss=loss)  # the same optimizer object, as tutorials do
    losses = [model.train_on_batch(x, y) for _ in range(3)]
    after_frozen = model.get_weights()
    for a, b in zip(model.layers[0].get_weights(), frozen):
        np.testing.assert_array_equal(a, b)  # a frozen layer does not move
    model.layers[0].trainable = True
    model.compile(optimizer=opt, loss=loss)
    losses += [model.train_on_batch(x, y) for _ in range(2)]
    return losses, after_frozen, model.get_weights()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: keras.optimizers.Adam(learning_rate=0.01),
        lambda: keras.optimizers.RMSprop(learning_rate=0.01),
        lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9),
        lambda: keras.optimizers.Adam(learning_rate=0.01, amsgrad=True),
    ],
    ids=["adam", "rmsprop", "sgd-momentum", "amsgrad"],
)
def test_freeze_after_training_then_unfreeze(make_opt):
    """float32 (C kernels) and float64 (NumPy) must both run and agree."""
    l32, frozen32, end32 = _freeze_and_retrain("float32", make_opt)
    l64, frozen64, end64 = _freeze_and_retrain("float64", make_opt)
    assert all(np.isfinite(l32)) and all(np.isfinite(l64))
    np.testing.assert_allclose(l32, l64, rtol=2e-4, atol=1e-5)
    for a, b in zip(end32, end64):
        np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-4)


def test_unfrozen_layer_resumes_its_own_state():
    """Unfreezing brings back the slots the layer had: the same as never having frozen it,
    when the frozen steps could not have changed it (learning rate of the others aside)."""
    x, y = _data()
    opt = keras.optimizers.Adam(learning_rate=0.01)
    model = _model()
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
    kernel = model.layers[0].params["kernel"]
    m_before = opt.get_state(kernel)["momentum"].copy()
    model.layers[0].trainable = False
    model.compile(optimizer=opt, loss=model.loss)
    model.train_on_batch(x, y)
    np.testing.assert_array_equal(opt.get_state(kernel)["momentum"], m_before)  # untouched while frozen
    assert opt.iterations == 2


def _two_models_steps(shared, make_opt):
    x, y = _data()
    m1, m2 = _model(seed=1), _model(seed=2)
    o1 = make_opt()
    o2 = o1 if shared else make_opt()
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    m1.compile(optimizer=o1, loss=loss)
    m2.compile(optimizer=o2, loss=loss)
    for _ in range(3):
        m1.train_on_batch(x, y)
        m2.train_on_batch(x[::-1].copy(), y[::-1].copy())
    return m1.get_weights() + m2.get_weights()


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: keras.optimizers.RMSprop(learning_rate=0.01),
        lambda: keras.optimizers.SGD(learning_rate=0.05, momentum=0.9, nesterov=True),
    ],
    ids=["rmsprop", "sgd-nesterov"],
)
def test_optimizer_shared_between_two_models(make_opt):
    """With no step-count dependence, one optimizer serving two models gives each the same
    updates as its own optimizer would: every variable keeps its own slots."""
    for a, b in zip(_two_models_steps(True, make_opt), _two_models_steps(False, make_opt)):
        np.testing.assert_array_equal(a, b)


def test_state_is_not_shared_by_position():
    opt = keras.optimizers.Adam()
    a, b = np.zeros(3, np.float32), np.zeros((2, 2), np.float32)
    opt.apply([np.ones(3, np.float32)], [a])
    opt.apply([np.ones((2, 2), np.float32)], [b])  # a different variable in the same position
    assert opt.get_state(a)["momentum"].shape == (3,)
    assert opt.get_state(b)["momentum"].shape == (2, 2)
    assert len(opt.state) == 2


def test_gradient_of_the_wrong_shape_is_refused():
    opt = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="shape"):
        opt.apply([np.zeros(4, np.float32)], [np.zeros(3, np.float32)])


def test_state_of_a_dead_variable_is_dropped():
    import gc

    opt = keras.optimizers.RMSprop()
    w = np.zeros(5, np.float32)
    opt.apply([np.ones(5, np.float32)], [w])
    assert len(opt.state) == 1
    del w
    gc.collect()
    assert opt.state == [] and opt._slots == {}


def test_set_state_checks_slots_and_shapes():
    opt = keras.optimizers.Adam()
    w = np.zeros(4, np.float32)
    with pytest.raises(ValueError, match="slots"):
        opt.set_state(w, {"momentum": np.zeros(4)})
    with pytest.raises(ValueError, match="shape"):
        opt.set_state(w, {"momentum": np.zeros(4), "velocity": np.zeros(5)})
    opt.set_state(w, {"momentum": np.ones(4), "velocity": np.ones(4)})
    assert opt.get_state(w)["momentum"].dtype == np.float32


def test_saved_state_follows_the_variables_after_freezing(tmp_path):
    """Save after fine-tuning with a frozen layer, load, and continue: bitwise the same run."""
    x, y = _data()
    model = _model()
    opt = keras.optimizers.Adam(learning_rate=0.01)
    model.compile(optimizer=opt, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.train_on_batch(x, y)
    model.layers[0].trainable = False
    model.compile(optimizer=opt, loss=model.loss)
    model.train_on_batch(x, y)
    model.save(tmp_path / "m.convolab")
    loaded = keras.models.load_model(tmp_path / "m.convolab")
    for _ in range(2):
        model.train_on_batch(x, y)
        loaded.train_on_batch(x, y)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
