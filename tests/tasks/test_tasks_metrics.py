"""Accuracy and mean IoU, on hand-made predictions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from skipsearch.tasks import evaluate, mean_iou


class _PredictsInput(nn.Module):
    """Logits that make the prediction whatever class index the input holds, per element."""

    def __init__(self, classes: int) -> None:
        super().__init__()
        self.classes = classes
        self.unused = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        onehot = nn.functional.one_hot(x.long().squeeze(1), self.classes).float()
        return (onehot * 10).movedim(-1, 1)


def test_mean_iou_of_hand_made_masks() -> None:
    target = torch.tensor([[[0, 0], [1, 2]]])
    pred = torch.tensor([[[0, 1], [1, 2]]])
    # class 0: 1 / 2, class 1: 1 / 2, class 2: 1 / 1
    assert mean_iou(pred, target, 3) == pytest.approx(2 / 3)
    assert mean_iou(pred, target, 5) == pytest.approx(2 / 3)  # absent classes are left out
    assert mean_iou(target, target, 3) == 1.0
    assert mean_iou(torch.ones(1, 2, 2, dtype=torch.long), torch.zeros(1, 2, 2, dtype=torch.long), 2) == 0.0


def test_mean_iou_counts_over_the_whole_split() -> None:
    # Image 1: class 1 all right (4 px); image 2: class 1 predicted on 4 background pixels.
    target = torch.tensor([[[1, 1], [1, 1]], [[0, 0], [0, 0]]])
    pred = torch.ones_like(target)
    assert mean_iou(pred, target, 2) == pytest.approx((0 / 4 + 4 / 8) / 2)


def test_evaluate_segmentation_and_classification() -> None:
    target = torch.tensor([[[0, 0], [1, 2]], [[2, 2], [2, 2]]])
    pred = torch.tensor([[[0, 1], [1, 2]], [[2, 2], [2, 0]]])
    model = _PredictsInput(3).train()
    miou, loss = evaluate(model, pred[:, None].float(), target, "miou", batch_size=1)
    # class 0: 1 / 3, class 1: 1 / 2, class 2: 4 / 5
    assert miou == pytest.approx((1 / 3 + 1 / 2 + 4 / 5) / 3)
    assert loss > 0 and model.training  # mode restored

    labels = torch.tensor([0, 1, 2, 1])
    acc, loss = evaluate(_PredictsInput(3), torch.tensor([[0.0], [1.0], [1.0], [1.0]]), labels, "accuracy", 3)
    assert acc == 0.75
    expected = nn.functional.cross_entropy(_PredictsInput(3)(torch.tensor([[0.0], [1.0], [1.0], [1.0]])), labels)
    assert loss == pytest.approx(float(expected))
