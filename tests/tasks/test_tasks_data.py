"""Task datasets: shapes, splits, determinism, options, and no network or global-RNG side effects."""

from __future__ import annotations

import random
import socket
import time

import numpy as np
import pytest
import torch

from skipsearch.errors import UserError
from skipsearch.tasks import TASKS, USER_DATA_TASKS, TaskData, _datasets, _shapes, load_task, reshape_for

SIZES = {
    "mnist1d": (3500, 500, 1000),
    "digits": (1077, 360, 360),
    "shapes-seg": (2000, 500, 500),
    "teacher": (4000, 500, 1000),
}


@pytest.mark.parametrize("name", [t for t in TASKS if t not in USER_DATA_TASKS])
def test_task_matches_its_spec(name: str) -> None:
    spec, data = TASKS[name], load_task(name)
    assert isinstance(data, TaskData) and data.name == name
    assert (data.input_shape, data.num_classes, data.metric) == (spec.input_shape, spec.num_classes, spec.metric)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == SIZES[name]
    for x, y in [(data.x_train, data.y_train), (data.x_val, data.y_val), (data.x_test, data.y_test)]:
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert tuple(x.shape[1:]) == data.input_shape and len(x) == len(y)
        assert int(y.min()) >= 0 and int(y.max()) < data.num_classes
        assert torch.isfinite(x).all()
    assert len(torch.unique(data.y_train)) == data.num_classes
    assert abs(float(data.x_train.mean())) < 0.1 and 0.8 < float(data.x_train.std()) < 1.2


@pytest.mark.parametrize("name", [t for t in TASKS if t not in USER_DATA_TASKS])
def test_generation_is_deterministic(name: str) -> None:
    a, b = TASKS[name].build(seed=3), TASKS[name].build(seed=3)
    for field in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_seed_changes_the_validation_split_but_not_the_test_split() -> None:
    a, b = load_task("digits", seed=0), load_task("digits", seed=1)
    assert torch.equal(a.x_test, b.x_test) and torch.equal(a.y_test, b.y_test)
    assert not torch.equal(a.x_val, b.x_val)
    rows = lambda x: {tuple(r) for r in x.tolist()}  # noqa: E731
    assert not rows(a.x_train) & rows(a.x_val)
    assert not rows(a.x_train) & rows(a.x_test)
    assert rows(a.x_train) | rows(a.x_val) == rows(b.x_train) | rows(b.x_val)


def test_load_task_caches_per_arguments() -> None:
    assert load_task("teacher") is load_task("teacher", seed=0)
    assert load_task("teacher", seed=1) is not load_task("teacher")
    assert load_task("teacher", hidden=32) is load_task("teacher", hidden=32)


def test_shape_options() -> None:
    assert load_task("mnist1d", shape="1d").input_shape == (1, 40)
    assert tuple(load_task("mnist1d", shape="1d").x_val.shape) == (500, 1, 40)
    assert load_task("digits", shape="image").input_shape == (1, 8, 8)
    assert torch.equal(load_task("mnist1d", shape="1d").x_test.flatten(1), load_task("mnist1d").x_test)


@pytest.mark.parametrize(
    ("name", "options", "message"),
    [
        ("cifar10", {}, "unknown task 'cifar10'"),
        ("mnist1d", {"colour": True}, "unknown option 'colour'"),
        ("mnist1d", {"shape": "2d"}, "option 'shape' must be one of flat, 1d"),
        ("digits", {"val_size": 5000}, "val_size must be between"),
        ("shapes-seg", {"size": "big"}, "option 'size' must be an integer"),
    ],
)
def test_bad_task_or_option_is_a_user_error(name: str, options: dict, message: str) -> None:
    with pytest.raises(UserError, match=message):
        load_task(name, **options)


def test_reshape_for_views_inputs_as_the_topology_wants() -> None:
    data = load_task("mnist1d")
    as_signal = reshape_for(data, [1, 40])
    assert as_signal.input_shape == (1, 40) and tuple(as_signal.x_train.shape) == (3500, 1, 40)
    assert as_signal.x_train.data_ptr() == data.x_train.data_ptr()  # a view, not a copy
    assert as_signal.y_train is data.y_train
    assert reshape_for(data, (40,)) is data
    with pytest.raises(UserError, match=r"shape \(40,\).*\(3, 32, 32\)"):
        reshape_for(data, (3, 32, 32))


def test_mnist1d_generates_offline_and_keeps_global_generators(monkeypatch) -> None:
    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("mnist1d tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    random.seed(5)
    np.random.seed(5)
    expected = (random.random(), np.random.random())
    random.seed(5)
    np.random.seed(5)
    data = _datasets.mnist1d(num_samples=200, val_size=20)  # a size no other test caches: generated now
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (140, 20, 40)
    assert (random.random(), np.random.random()) == expected


def test_shapes_seg_is_quick_and_labels_match_the_images() -> None:
    start = time.perf_counter()
    x, y = _shapes._generate(3000, 32, 3, 0.3, 12345)  # uncached seed
    assert time.perf_counter() - start < 2.0
    assert x.shape == (3000, 1, 32, 32) and y.shape == (3000, 32, 32)
    fractions = np.bincount(y.ravel(), minlength=3) / y.size
    assert fractions[0] > 0.6 and fractions[1] > 0.03 and fractions[2] > 0.03
    # Shapes are brighter than the background on average, and equally bright by kind.
    shape_mean = [x[:, 0][y == k].mean() for k in range(3)]
    assert shape_mean[1] > shape_mean[0] + 1 and shape_mean[2] > shape_mean[0] + 1
    assert abs(shape_mean[1] - shape_mean[2]) < 0.1
