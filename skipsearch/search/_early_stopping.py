"""Early stopping for multi-objective studies, where Optuna's pruners cannot be used.

``Trial.report`` raises for multi-objective studies, so skipsearch stops trials itself, in the
spirit of Ax's scaled Pareto early stopping: a trial's cost (MACs, params, ...) is known before
training, so the only open question is whether its accuracy can still reach the Pareto front at
that cost. The trial is compared, epoch for epoch, with finished trials that cost no more than it:
if one of them was already ``margin`` better at the same point of training (same fraction of the
epoch budget), the new trial would most likely end dominated by it, and training stops.

Trials trained together (``execution.batch_trials``) start before any of them finishes, so they
also compare with each other (:func:`share_peers`): a member stops when a peer that costs no more
was ``margin`` better after the same epoch, the decision it would have met had that peer trained
first. A peer counts while it trains; one that left the group earlier has no value to compare.
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
        number: int | None = None,
    ) -> None:
        """``metric`` names the validation metric in reasons; ``maximize`` false: smaller is better (RMSE);
        ``number`` is the running trial's, named in its peers' reasons."""
        self.number = number
        self.costs = tuple(costs)
        self.curve: list[float] = []
        """The running trial's values so far, as its peers see them."""
        self.peers: list[ParetoEarlyStopper] = []
        self.metric = metric
        self.sign = 1.0 if maximize else -1.0
        self.epochs = epochs
        self.min_epoch = max(1, round(min_epoch_fraction * epochs))
        self.margin = margin
        self.rivals = [f for f in finished if _costs_no_more(f.costs, self.costs) and f.curve]
        self.reason: str | None = None

    def __call__(self, epoch: int, value: float) -> bool:
        """True to stop after ``epoch`` (1-based) with validation metric ``value``."""
        self.observe(epoch, value)
        if epoch < self.min_epoch or epoch >= self.epochs:
            return False
        for rival in self.rivals:
            at = _value_at(rival.curve, epoch / self.epochs)
            if self.sign * (at - value) > self.margin:
                return self._stop(epoch, value, f"trial {rival.number} ({at:.4f} at the same point)")
        for peer in self.peers:
            if len(peer.curve) >= epoch and self.sign * (peer.curve[epoch - 1] - value) > self.margin:
                at = peer.curve[epoch - 1]
                return self._stop(epoch, value, f"trial {peer.number} of its group ({at:.4f} after the same epoch)")
        return False

    def observe(self, epoch: int, value: float) -> None:
        """Hears the running trial's ``value`` after ``epoch``; a fused trainer tells every member of
        its group before any of them decides, so peers compare values of the same epoch."""
        self.curve[epoch - 1 :] = [value]

    def _stop(self, epoch: int, value: float, rival: str) -> bool:
        self.reason = (
            f"at epoch {epoch}/{self.epochs} {self.metric} {value:.4f} trails {rival}, "
            "which costs no more; it cannot plausibly reach the front"
        )
        return True


def share_peers(stoppers: Sequence[object]) -> None:
    """Lets the Pareto early stoppers among ``stoppers`` (one fused group's) compare with each other:
    each gets as peers the others that cost no more in every cost objective."""
    group = [s for s in stoppers if isinstance(s, ParetoEarlyStopper)]
    for stopper in group:
        stopper.peers = [p for p in group if p is not stopper and _costs_no_more(p.costs, stopper.costs)]


def _costs_no_more(rival: Sequence[float], costs: Sequence[float]) -> bool:
    """Whether ``rival`` costs at most ``costs`` in every cost objective: only then can it dominate."""
    return all(a <= b for a, b in zip(rival, costs, strict=True))


def _value_at(curve: Sequence[float], fraction: float) -> float:
    """A curve's value at a fraction of its training (curves of other budgets are rescaled)."""
    index = min(len(curve) - 1, max(0, round(fraction * len(curve)) - 1))
    return curve[index]
