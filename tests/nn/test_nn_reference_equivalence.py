"""Built presets compute exactly what the classic hand-written networks compute, given the same weights.

The references (``reference_models.py``) are written the usual way, independently of the topology
code. Weights are paired by the order of state-dict entries, each pair's shape asserted, then both
models run one batch in eval mode and in train mode (batch statistics, running-stat updates and
gradients included).
"""

from __future__ import annotations

from collections import OrderedDict

import pytest
import torch
from reference_models import REFERENCES, CifarResNet, load_by_order, randomize_norms
from torch import fx, nn

from skipsearch.nn import build_model
from skipsearch.topology import get_preset

ATOL = 1e-5

BATCHES = {
    "resnet20": (4, 3, 32, 32),
    "resnet20-proj": (4, 3, 32, 32),
    "densenet-bc-100": (2, 3, 32, 32),
    "mlp-deep": (16, 40),
    "mlp-deep-plain": (16, 40),
}


def _block_order_state(model: fx.GraphModule) -> OrderedDict[str, torch.Tensor]:
    """The built model's state in network order: each block, then the skip modules into it.

    (``state_dict()`` lists every block before any skip module; a hand-written ResNet keeps a
    block's projection shortcut inside the block.)
    """
    state = model.state_dict()
    topology = model.meta["topology"]
    ordered: OrderedDict[str, torch.Tensor] = OrderedDict()
    for node in topology.nodes[1:]:
        prefixes = [f"blocks.{node.id}."] + [f"skips.{e.src}__{e.dst}." for e in topology.incoming(node.id)]
        for prefix in prefixes:
            ordered.update((k, v) for k, v in state.items() if k.startswith(prefix))
    assert len(ordered) == len(state)
    return ordered


def _twins(name: str) -> tuple[fx.GraphModule, nn.Module]:
    torch.manual_seed(0)
    built = build_model(get_preset(name))
    randomize_norms(built, torch.Generator().manual_seed(1))
    reference = REFERENCES[name]()
    load_by_order(_block_order_state(built), reference)
    return built, reference


@pytest.mark.parametrize("name", list(BATCHES))
def test_eval_mode_outputs_are_identical(name: str) -> None:
    built, reference = _twins(name)
    x = torch.randn(BATCHES[name], generator=torch.Generator().manual_seed(2))
    built.eval()
    reference.eval()
    with torch.no_grad():
        expected = reference(x)
        actual = built(x)
    assert actual.shape == expected.shape == (x.shape[0], 10)
    assert expected.abs().max() > 0.1  # not a degenerate comparison of near-zero outputs
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("name", list(BATCHES))
def test_train_mode_outputs_statistics_and_gradients_are_identical(name: str) -> None:
    built, reference = _twins(name)
    x = torch.randn(BATCHES[name], generator=torch.Generator().manual_seed(3))
    built.train()
    reference.train()
    expected = reference(x)
    actual = built(x)
    torch.testing.assert_close(actual, expected, atol=ATOL, rtol=0)

    # Batch statistics went into the same running buffers.
    built_state = list(_block_order_state(built).values())
    for (key, ref_value), value in zip(reference.state_dict().items(), built_state, strict=True):
        torch.testing.assert_close(value, ref_value, atol=ATOL, rtol=0, msg=key)

    weights = torch.randn(expected.shape, generator=torch.Generator().manual_seed(4))
    (expected * weights).sum().backward()
    (actual * weights).sum().backward()
    built_params = dict(built.named_parameters())
    built_grads = [built_params[k].grad for k in _block_order_state(built) if k in built_params]
    ref_params = list(reference.named_parameters())
    assert len(built_grads) == len(ref_params)
    for (key, param), grad in zip(ref_params, built_grads, strict=True):
        assert grad is not None and param.grad is not None, key
        torch.testing.assert_close(grad, param.grad, atol=1e-4, rtol=1e-4, msg=key)


def test_pairing_by_order_rejects_a_shape_mismatch() -> None:
    """The pairing is checked, so the equivalence above is not vacuous."""
    built = build_model(get_preset("resnet20"))
    with pytest.raises(AssertionError, match="!="):
        load_by_order(built, CifarResNet(20, num_classes=100))
