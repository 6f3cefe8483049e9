"""Presets and families: the classic architectures laid out as published."""

from __future__ import annotations

import pytest

from skipsearch.topology import PRESETS, Topology, families, get_preset


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_builds_and_validates(name: str) -> None:
    topo = get_preset(name)
    assert isinstance(topo, Topology)
    assert topo.name == name
    assert PRESETS[name].description
    assert topo.output_shape  # shapes infer end to end
    assert len(topo.hash) == 16 and int(topo.hash, 16) >= 0


def test_presets_have_distinct_hashes() -> None:
    hashes = {get_preset(name).hash for name in PRESETS}
    assert len(hashes) == len(PRESETS)


def test_resnet20_layout() -> None:
    topo = get_preset("resnet20")
    assert [n.op for n in topo.nodes] == ["input", "conv", *["basic"] * 9, "head"]
    assert topo.input_shape == (3, 32, 32)
    assert topo.shapes["stem"] == (16, 32, 32)
    assert topo.shapes["s1b3"] == (16, 32, 32)
    assert topo.shapes["s2b1"] == (32, 16, 16)
    assert topo.shapes["s3b3"] == (64, 8, 8)
    assert topo.output_shape == (10,)
    aligns = {e.dst: e.align for e in topo.skips}
    assert len(aligns) == 9 and {e.kind for e in topo.skips} == {"add"}
    # Option A where the shape changes, identity elsewhere.
    assert {d for d, a in aligns.items() if a != "identity"} == {"s2b1", "s3b1"}
    assert aligns["s2b1"] == aligns["s3b1"] == "zero_pad"
    # Every skip is the classic residual: from the block before.
    assert all(topo.index[e.src] == topo.index[e.dst] - 1 for e in topo.skips)


def test_resnet20_variants_share_its_backbone() -> None:
    base, proj, plain = get_preset("resnet20"), get_preset("resnet20-proj"), get_preset("plain20")
    assert proj.nodes == base.nodes == plain.nodes
    assert plain.skips == ()
    assert {e.dst for e in proj.skips if e.align == "project"} == {"s2b1", "s3b1"}
    assert "zero_pad" not in {e.align for e in proj.skips}


@pytest.mark.parametrize(("depth", "blocks"), [(20, 9), (32, 15), (44, 21), (56, 27), (110, 54)])
def test_cifar_resnet_depths(depth: int, blocks: int) -> None:
    topo = get_preset(f"resnet{depth}")
    assert sum(n.op == "basic" for n in topo.nodes) == blocks
    # depth counts the stem, two convolutions per block and the classifier
    assert 1 + 2 * blocks + 1 == depth


def test_cifar_resnet_rejects_other_depths() -> None:
    with pytest.raises(ValueError, match="6n\\+2"):
        families.cifar_resnet(21)


def test_densenet_bc_100_widths() -> None:
    """k = 12, 16 layers per block, compression 0.5: 24 -> 216 -> 108 -> 300 -> 150 -> 342."""
    topo = get_preset("densenet-bc-100")
    assert sum(n.op == "dense" for n in topo.nodes) == 48
    assert topo.shapes["stem"] == (24, 32, 32)

    def width_into(node_id: str) -> int:
        return sum(topo.shapes[s][0] for s in topo.input_sources(node_id))

    assert width_into("d1l1") == 24 and width_into("d1l16") == 24 + 15 * 12
    assert width_into("t1") == 216 and topo.shapes["t1"] == (108, 16, 16)
    assert width_into("t2") == 300 and topo.shapes["t2"] == (150, 8, 8)
    assert width_into("head") == 342
    # depth 100 = stem + 2 convs per dense layer + 2 transitions + classifier
    assert 1 + 2 * 48 + 2 + 1 == 100


def test_unet_small_has_two_concat_skips() -> None:
    topo = get_preset("unet-small")
    assert [(e.src, e.dst, e.kind) for e in topo.skips] == [("e2b", "d2a", "concat"), ("e1b", "d1a", "concat")]
    assert topo.output_shape == (3, 32, 32)
    assert (
        families.unet((1, 32, 32), 3, skip_kind="off").hash
        == families.unet((1, 32, 32), 3, name="x").with_skips([]).hash
    )


def test_mlp_deep_and_cnn1d() -> None:
    mlp = get_preset("mlp-deep")
    assert sum(n.op == "linear" for n in mlp.nodes) == 20
    assert len(mlp.skips) == 19 and all(n.params["act"] == "tanh" for n in mlp.nodes if n.op == "linear")
    assert mlp.input_shape == (40,) and mlp.output_shape == (10,)
    assert get_preset("mlp-deep-plain").nodes == mlp.nodes
    cnn = get_preset("cnn1d-mnist1d")
    assert cnn.input_shape == (1, 40) and cnn.output_shape == (10,)
    assert {e.align for e in cnn.skips} == {"identity", "project"}


def test_repr_fits_on_a_line() -> None:
    topo = get_preset("densenet-bc-100")
    text = repr(topo)
    assert "\n" not in text and len(text) < 120
    assert topo.name in text and topo.hash in text and f"{len(topo.nodes)} nodes" in text
