from skipsearch.search import FinishedTrial, ParetoEarlyStopper


def test_stops_a_trial_that_trails_a_cheaper_one() -> None:
    rival = FinishedTrial(0, (100.0,), (0.5, 0.7, 0.8, 0.85, 0.9))
    stopper = ParetoEarlyStopper([rival], [200.0], epochs=5, min_epoch_fraction=0.4, margin=0.02)
    assert not stopper(1, 0.1)  # before the minimum epoch nothing is decided
    assert stopper(2, 0.5)
    assert "trial 0" in (stopper.reason or "")


def test_keeps_a_trial_that_is_cheaper_or_close() -> None:
    rival = FinishedTrial(0, (100.0,), (0.5, 0.7, 0.8, 0.85, 0.9))
    cheaper = ParetoEarlyStopper([rival], [50.0], epochs=5, min_epoch_fraction=0.4)
    assert not cheaper(2, 0.1)  # nobody cheaper has finished: it may found a new front point
    close = ParetoEarlyStopper([rival], [200.0], epochs=5, min_epoch_fraction=0.4, margin=0.05)
    assert not close(2, 0.66)
    assert not close(5, 0.1)  # the last epoch is never cut


def test_curves_of_other_budgets_compare_by_fraction() -> None:
    rival = FinishedTrial(0, (1.0, 1.0), tuple(i / 10 for i in range(1, 11)))  # 10 epochs
    stopper = ParetoEarlyStopper([rival], [1.0, 2.0], epochs=5, min_epoch_fraction=0.2, margin=0.0)
    assert stopper(1, 0.15)  # 20% through: rival had 0.2
    assert not stopper(1, 0.25)
