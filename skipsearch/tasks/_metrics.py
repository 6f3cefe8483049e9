"""Task metrics (accuracy, mean IoU, RMSE, R²) and evaluating a model on a split."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skipsearch.nn import model_device, training_mode
from skipsearch.tasks._data import METRICS, REGRESSION_METRICS


def confusion_matrix(pred: Tensor, target: Tensor, num_classes: int) -> Tensor:
    """``counts[t, p]``: how many elements of class ``t`` were predicted as ``p``."""
    index = target.reshape(-1) * num_classes + pred.reshape(-1)
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


def iou_from_confusion(confusion: Tensor) -> Tensor:
    """Mean over classes of ``|pred ∩ target| / |pred ∪ target|``, counted over the whole split
    (not averaged per image). Classes absent from both prediction and target are left out."""
    confusion = confusion.double()
    intersection = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - intersection
    present = union > 0
    if not bool(present.any()):
        return torch.ones((), dtype=torch.float64)
    return (intersection[present] / union[present]).mean()


def mean_iou(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Mean intersection over union of ``num_classes`` classes, for label maps of equal shape."""
    return float(iou_from_confusion(confusion_matrix(pred, target, num_classes)))


def regression_loss(output: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared error of a model's outputs; outputs of another shape than the targets are an
    error (``mse_loss`` would broadcast them into a meaningless number)."""
    if output.shape != target.shape:
        raise ValueError(
            f"the model gives outputs of shape {tuple(output.shape[1:])} per sample; "
            f"the task's targets have shape {tuple(target.shape[1:])}"
        )
    return F.mse_loss(output, target, reduction=reduction)


def task_loss(output: Tensor, target: Tensor) -> Tensor:
    """The training loss for a task's labels: mean squared error for regression targets (floating
    point), cross-entropy for class labels (integers)."""
    if target.is_floating_point():
        return regression_loss(output, target)
    return F.cross_entropy(output, target)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    metric: str,
    batch_size: int = 1024,
    target_scale: tuple[float, ...] | None = None,
) -> tuple[float, float]:
    """``(metric, loss)`` of ``model`` on inputs ``x`` and labels ``y``, in eval mode.

    The loss is the mean cross-entropy per sample (per pixel for segmentation), or for regression
    the mean squared error per target value. ``rmse`` is the root of the mean squared error over
    all target values, each output's error first multiplied by its ``target_scale`` (the
    standardised targets' deviation: RMSE in the target's units); ``r2`` is the coefficient of
    determination of each output, averaged over the outputs (scikit-learn's ``uniform_average``).
    Batches move to the model's device; sums stay on it, so there is one synchronisation per
    call, not per batch. The model's train/eval mode is restored afterwards.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
    if metric in REGRESSION_METRICS:
        return _evaluate_regression(model, x, y, metric, batch_size, target_scale)
    device = model_device(model, default=x.device)
    with training_mode(model, False):
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        hits = torch.zeros((), dtype=torch.int64, device=device)
        confusion: Tensor | None = None
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            yb = y[start : start + batch_size].to(device, non_blocking=True)
            logits = model(xb)
            loss_sum += F.cross_entropy(logits, yb, reduction="sum").double()
            pred = logits.argmax(1)
            if metric == "accuracy":
                hits += (pred == yb).sum()
            else:
                counts = confusion_matrix(pred, yb, logits.shape[1])
                confusion = counts if confusion is None else confusion + counts
    elements = max(y.numel(), 1)
    loss = float(loss_sum) / elements
    if metric == "accuracy":
        return float(hits) / max(len(y), 1), loss
    return (float(iou_from_confusion(confusion)) if confusion is not None else 0.0), loss


def _evaluate_regression(
    model: nn.Module, x: Tensor, y: Tensor, metric: str, batch_size: int, target_scale: tuple[float, ...] | None
) -> tuple[float, float]:
    device = model_device(model, default=x.device)
    outputs = y.shape[1] if y.dim() > 1 else 1
    squared = torch.zeros(outputs, dtype=torch.float64, device=device)
    with training_mode(model, False):
        for start in range(0, len(x), batch_size):
            xb = x[start : start + batch_size].to(device, non_blocking=True)
            yb = y[start : start + batch_size].to(device, non_blocking=True)
            output = model(xb)
            regression_loss(output, yb)  # checks the shapes before they broadcast
            error = (output - yb).double()
            squared += error.reshape(len(yb), -1).pow(2).sum(0)
    count = max(len(y), 1)
    loss = float(squared.sum()) / (count * outputs)
    if metric == "rmse":
        scale = torch.tensor(target_scale or [1.0] * outputs, dtype=torch.float64, device=device)
        return math.sqrt(float((squared * scale.pow(2)).sum()) / (count * outputs)), loss
    targets = y.reshape(len(y), -1).double()
    total = (targets - targets.mean(0)).pow(2).sum(0).to(device)
    r2 = 1 - squared / torch.where(total > 0, total, torch.ones_like(total))
    return float(r2.mean()), loss


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` where it is missing, NaN or infinite (JSON and SQL keep no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)
