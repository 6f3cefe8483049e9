"""Task metrics (accuracy, mean IoU) and evaluating a model on a split."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from skipsearch.nn import model_device, training_mode
from skipsearch.tasks._data import METRICS


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


@torch.no_grad()
def evaluate(model: nn.Module, x: Tensor, y: Tensor, metric: str, batch_size: int = 1024) -> tuple[float, float]:
    """``(metric, loss)`` of ``model`` on inputs ``x`` and labels ``y``, in eval mode.

    The loss is the mean cross-entropy per sample (per pixel for segmentation). Batches move to
    the model's device; sums stay on it, so there is one synchronisation per call, not per batch.
    The model's train/eval mode is restored afterwards.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r} (known: {', '.join(METRICS)})")
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


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` where it is missing, NaN or infinite (JSON and SQL keep no NaN)."""
    return None if value is None or not math.isfinite(value) else float(value)
