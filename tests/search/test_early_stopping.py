from skipsearch.search import FinishedTrial, ParetoEarlyStopper, share_peers


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


def test_members_of_a_group_compare_with_peers_that_cost_no_more() -> None:
    cheap, dear, dearer = (
        ParetoEarlyStopper([], [cost], epochs=5, min_epoch_fraction=0.4, number=n)
        for n, cost in enumerate((1.0, 2.0, 3.0))
    )
    share_peers([cheap, None, dear, dearer])
    assert cheap.peers == [] and dear.peers == [cheap] and dearer.peers == [cheap, dear]
    for stopper, value in ((cheap, 0.5), (dear, 0.45), (dearer, 0.49)):  # a fused trainer: all heard first
        stopper.observe(2, value)
    assert not cheap(2, 0.5)
    assert dear(2, 0.45)
    assert "trial 0 of its group (0.5000 after the same epoch)" in (dear.reason or "")
    assert not dearer(2, 0.49)  # within the margin of the cheap one; the dear one trails it


def test_a_peer_that_left_the_group_is_not_compared() -> None:
    first, second = (ParetoEarlyStopper([], [1.0], epochs=6, min_epoch_fraction=0.2, number=n) for n in (0, 1))
    share_peers([first, second])
    first.observe(1, 0.9)  # then it left the group
    second.observe(1, 0.9)
    second.observe(2, 0.1)
    assert not second(2, 0.1)
