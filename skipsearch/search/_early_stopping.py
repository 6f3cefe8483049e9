"""Early stopping for multi-objective studies, where Optuna's pruners cannot be used.

``Trial.report`` raises for multi-objective studies, so skipsearch stops trials itself, in the
spirit of Ax's scaled Pareto early stopping: a trial's cost (MACs, params, ...) is known before
training, so the only open question is whether its accuracy can still reach the Pareto front at
that cost. The trial is compared, epoch for epoch, with finished trials that cost no more than it:
if one of them was already ``margin`` better at the same point of training (same fraction of the
epoch budget), the new trial would most likely end dominated by it, and training stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FinishedTrial:
    """What early stopping needs of a finished trial: its cost objectives and learning curve."""

    number: int
    costs: tuple[float, ...]
    curve: tuple[float, ...]


class ParetoEarlyStopper:
    """Decides after each epoch whether a running trial can still reach the Pareto front.

    ``costs`` are the running trial's values of the minimised objectives (known before training);
    the trial's own accuracy curve comes in through :meth:`__call__`.
    """

    def __init__(
        self,
        finished: Sequence[FinishedTrial],
        costs: Sequence[float],
        epochs: int,
        *,
        min_epoch_fraction: float = 0.3,
        margin: float = 0.02,
        metric: str = "accuracy",
        maximize: bool = True,
    ) -> None:
        """``metric`` names the validation metric in reasons; ``maximize`` false: smaller is better (RMSE)."""
        self.metric = metric
        self.sign = 1.0 if maximize else -1.0
        self.epochs = epochs
        self.min_epoch = max(1, round(min_epoch_fraction * epochs))
        self.margin = margin
        # Only trials at most as costly in every cost objective can dominate this one.
        self.rivals = [f for f in finished if all(a <= b for a, b in zip(f.costs, costs, strict=True)) and f.curve]
        self.reason: str | None = None

    def __call__(self, epoch: int, value: float) -> bool:
        """True to stop after ``epoch`` (1-based) with validation metric ``value``."""
        if epoch < self.min_epoch or epoch >= self.epochs:
            return False
        for rival in self.rivals:
            at = _value_at(rival.curve, epoch / self.epochs)
            if self.sign * (at - value) > self.margin:
                self.reason = (
                    f"at epoch {epoch}/{self.epochs} {self.metric} {value:.4f} trails trial {rival.number} "
                    f"({at:.4f} at the same point), which costs no more; it cannot plausibly reach the front"
                )
                return True
        return False


def _value_at(curve: Sequence[float], fraction: float) -> float:
    """A curve's value at a fraction of its training (curves of other budgets are rescaled)."""
    index = min(len(curve) - 1, max(0, round(fraction * len(curve)) - 1))
    return curve[index]
