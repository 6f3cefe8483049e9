"""The built model's fast child lookups (``skipsearch/nn/_compile.py``) behave like plain submodules.

``model.blocks`` and ``model.skips`` expose their children as class-level properties so that the
generated forward does not pay ``Module.__getattr__`` per block. These tests pin down that this is
invisible: children are read live whichever way they are replaced, missing ones raise
AttributeError, and copying, pickling and scripting still work.
"""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
from torch import fx, nn

from skipsearch.nn import build_model
from skipsearch.topology import Topology, get_preset


@pytest.fixture
def mlp() -> fx.GraphModule:
    torch.manual_seed(0)
    topology = Topology.create(
        [
            {"id": "x", "op": "input", "shape": [6]},
            {"id": "h1", "op": "linear", "features": 6, "act": "tanh"},
            {"id": "h2", "op": "linear", "features": 6, "act": "tanh"},
            {"id": "head", "op": "head", "classes": 3, "pool": "none"},
        ],
        [{"src": "x", "dst": "h2", "kind": "scalar", "init": 0.5}],
        name="tiny",
    )
    return build_model(topology).eval()


def test_state_dict_keys_are_unchanged(mlp: fx.GraphModule) -> None:
    assert list(mlp.state_dict()) == [
        "blocks.h1.weight",
        "blocks.h1.bias",
        "blocks.h2.weight",
        "blocks.h2.bias",
        "blocks.head.0.weight",
        "blocks.head.0.bias",
        "skips.x__h2.scale",
    ]


@pytest.mark.parametrize("how", ["setattr", "add_module", "_modules"])
def test_replaced_block_is_used(mlp: fx.GraphModule, how: str) -> None:
    x = torch.randn(4, 6)
    before = mlp(x)
    zero = nn.Sequential(nn.Linear(6, 3))
    nn.init.zeros_(zero[0].weight)
    nn.init.zeros_(zero[0].bias)
    if how == "setattr":
        mlp.blocks.head = zero
    elif how == "add_module":
        mlp.blocks.add_module("head", zero)
    else:  # the way torch.ao.quantization swaps modules
        mlp.blocks._modules["head"] = zero
    assert mlp.blocks.head is zero
    assert not torch.equal(mlp(x), before)
    assert torch.equal(mlp(x), torch.zeros(4, 3))


def test_missing_children_raise_attribute_error(mlp: fx.GraphModule) -> None:
    other = build_model(get_preset("resnet20"))  # installs properties for resnet's block names
    assert hasattr(other.blocks, "s1b1")
    assert not hasattr(mlp.blocks, "s1b1")
    with pytest.raises(AttributeError, match="s1b1"):
        _ = mlp.blocks.s1b1
    del mlp.blocks.h1
    assert not hasattr(mlp.blocks, "h1")


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_copy_pickle_and_script_compute_the_same(mlp: fx.GraphModule) -> None:
    x = torch.randn(4, 6)
    expected = mlp(x)
    copied = copy.deepcopy(mlp)
    assert type(copied.blocks) is type(mlp.blocks)  # the copy keeps the fast holders
    for other in (copied, pickle.loads(pickle.dumps(mlp)), torch.jit.script(mlp)):
        torch.testing.assert_close(other(x), expected)
