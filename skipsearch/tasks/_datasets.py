"""The classification datasets: mnist1d, digits and a random-teacher problem.

Every builder keeps the test split fixed (it depends only on the data itself) and draws the
train/validation split from ``seed``, so test metrics stay comparable across seeds. All data is
generated or read locally; nothing is downloaded.
"""

from __future__ import annotations

import functools
import random

import numpy as np

from skipsearch.tasks._data import (
    TaskData,
    check_choice,
    check_int,
    check_split_sizes,
    make_task_data,
    split_fixed_test,
    split_train_val,
)


def mnist1d(
    *, seed: int = 0, shape: str = "flat", val_size: int = 500, num_samples: int = 5000, data_seed: int = 42
) -> TaskData:
    """MNIST-1D (Greydanus 2020): 40-sample 1-D signals of 10 digit templates, procedurally generated.

    ``num_samples`` are split 80/20 into train and test, as in the paper (4000/1000 by default);
    ``val_size`` of the training samples form the validation split. ``data_seed`` 42 is the
    package's default, the paper's dataset. ``shape`` ``"flat"`` gives ``(40,)`` inputs, ``"1d"``
    ``(1, 40)`` signals (either is viewed as the other by :func:`reshape_for` when training).
    """
    check_choice("shape", shape, ("flat", "1d"))
    check_int("num_samples", num_samples, 20)
    x, y, x_test, y_test = _mnist1d_pool(int(data_seed), int(num_samples))
    x_train, y_train, x_val, y_val = split_train_val(x, y, int(val_size), seed)
    if shape == "1d":
        x_train, x_val, x_test = (a[:, None, :] for a in (x_train, x_val, x_test))
    return make_task_data("mnist1d", "accuracy", 10, (x_train, y_train), (x_val, y_val), (x_test, y_test))


@functools.lru_cache(maxsize=2)
def _mnist1d_pool(data_seed: int, num_samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    # Imported here: the package pulls in matplotlib and takes a second to import.
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.seed, args.num_samples = data_seed, num_samples
    # make_dataset seeds and draws from the global `random` and numpy generators: keep ours intact.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        data = make_dataset(args)  # procedural; only get_dataset() would download
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    return data["x"], data["y"], data["x_test"], data["y_test"]


def digits(
    *, seed: int = 0, shape: str = "flat", val_size: int = 360, test_size: int = 360, data_seed: int = 0
) -> TaskData:
    """scikit-learn's 8x8 handwritten digits (1797 images, bundled with scikit-learn).

    ``test_size`` images (chosen by ``data_seed``) form the test split, ``val_size`` of the rest
    (chosen by ``seed``) the validation split. Pixels are standardised with the mean and standard
    deviation of the non-test images. ``shape`` ``"flat"`` gives ``(64,)``, ``"image"`` ``(1, 8, 8)``.
    """
    from sklearn.datasets import load_digits

    check_choice("shape", shape, ("flat", "image"))
    bunch = load_digits()
    x, y = bunch.data.astype(np.float32), bunch.target.astype(np.int64)
    x_pool, y_pool, x_test, y_test = split_train_val(x, y, check_int("test_size", test_size, 1), data_seed)
    mean, std = x_pool.mean(), x_pool.std()
    x_pool, x_test = (x_pool - mean) / std, (x_test - mean) / std
    x_train, y_train, x_val, y_val = split_train_val(x_pool, y_pool, int(val_size), seed)
    if shape == "image":
        x_train, x_val, x_test = (a.reshape(-1, 1, 8, 8) for a in (x_train, x_val, x_test))
    return make_task_data("digits", "accuracy", 10, (x_train, y_train), (x_val, y_val), (x_test, y_test))


def teacher(
    *,
    seed: int = 0,
    features: int = 20,
    classes: int = 10,
    hidden: int = 64,
    train_size: int = 4000,
    val_size: int = 500,
    test_size: int = 1000,
    data_seed: int = 0,
) -> TaskData:
    """Gaussian inputs labelled by a random teacher network ``argmax(W2 tanh(W1 x))``.

    A learnable problem of adjustable difficulty whose labels are an exact function of the
    inputs, for checks that need no real data. The teacher and the samples come from
    ``data_seed``; ``seed`` picks which of the non-test samples are for validation.
    """
    features, classes, hidden = (
        check_int(n, v, 1) for n, v in [("features", features), ("classes", classes), ("hidden", hidden)]
    )
    sizes = check_split_sizes(train_size, val_size, test_size)
    rng = np.random.default_rng(data_seed)
    w1 = rng.normal(0, 1 / np.sqrt(features), (features, hidden))
    w2 = rng.normal(0, 1 / np.sqrt(hidden), (hidden, classes))
    x = rng.normal(0, 1, (sum(sizes), features)).astype(np.float32)
    y = np.argmax(np.tanh(x @ w1) @ w2, axis=1)
    return make_task_data("teacher", "accuracy", classes, *split_fixed_test(x, y, sizes, seed))
