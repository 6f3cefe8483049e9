"""Bundles are verified before anything in them is used: every file against the manifest's SHA-256,
the folder against the manifest's file list, and the manifest against its expected shape."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from cli_runner import Invoke
from export_helpers import assert_one_line_error

from skipsearch.errors import UserError
from skipsearch.export import Recipe, export_topology, load_bundle, read_manifest, reproduce_bundle
from skipsearch.export._bundle import MAX_MANIFEST_BYTES
from skipsearch.topology import families

pytestmark = pytest.mark.slow  # one bundle trains a tiny MLP for an epoch (a few seconds with the exports)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    topology = families.mlp(40, [16, 16], 10, residual=True, name="bundle-check")
    recipe = Recipe.for_task("mnist1d", seed=3, epochs=1)
    result = export_topology(topology, "bundle", tmp_path_factory.mktemp("bundle"), name="net", recipe=recipe)
    return result.files[0].parent


@pytest.fixture
def bundle(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the module's bundle, for a test to tamper with."""
    return Path(shutil.copytree(pristine, tmp_path / "net"))


def _manifest(bundle: Path) -> dict[str, Any]:
    return json.loads((bundle / "manifest.json").read_text())


def _write_manifest(bundle: Path, manifest: Any) -> None:
    (bundle / "manifest.json").write_text(json.dumps(manifest))


def _refused(bundle: Path, *fragments: str) -> None:
    with pytest.raises(UserError) as caught:
        read_manifest(bundle)
    message = str(caught.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_an_untouched_bundle_reproduces_and_loads_in_every_format(pristine: Path) -> None:
    report = reproduce_bundle(pristine)
    assert report.reproduced and report.problems == [] and report.weights_max_difference == 0.0
    digest = hashlib.sha256((pristine / "manifest.json").read_bytes()).hexdigest()
    assert report.to_dict()["manifest_sha256"] == digest
    x = torch.randn(3, 40, generator=torch.Generator().manual_seed(1))
    eager = load_bundle(pristine, "pytorch")
    with torch.no_grad():
        expected = eager(x)
        assert torch.allclose(load_bundle(pristine, "torchscript")(x), expected, atol=1e-5)
    session = load_bundle(pristine, "onnx")
    onnx_out = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
    assert torch.allclose(torch.from_numpy(onnx_out), expected, atol=1e-4)


def _replace_model_py(bundle: Path) -> None:
    marker = bundle.parent / "executed"
    (bundle / "model.py").write_text(f"open({str(marker)!r}, 'w').write('pwned')\n")


def _replace_onnx(bundle: Path) -> None:
    (bundle / "model.onnx").write_bytes((bundle / "model.onnx").read_bytes()[:-16] + b"\0" * 16)


def _replace_torchscript(bundle: Path) -> None:
    shutil.copy(bundle / "model.onnx", bundle / "model.torchscript.pt")


def _replace_weights(bundle: Path) -> None:
    torch.save({k: v + 1 for k, v in torch.load(bundle / "model.pt", weights_only=True).items()}, bundle / "model.pt")


@pytest.mark.parametrize(
    ("tamper", "named"),
    [
        (_replace_model_py, "model.py"),
        (_replace_onnx, "model.onnx"),
        (_replace_torchscript, "model.torchscript.pt"),
        (_replace_weights, "model.pt"),
        (lambda b: (b / "topology.graphml").write_text("<graphml/>"), "topology.graphml"),
    ],
)
def test_a_replaced_file_is_refused_naming_it_before_anything_runs(
    bundle: Path, tamper: Callable[[Path], None], named: str
) -> None:
    tamper(bundle)
    _refused(bundle, named, "SHA-256", "differs from the manifest's")
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        reproduce_bundle(bundle)
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        load_bundle(bundle, "pytorch")
    assert not (bundle.parent / "executed").exists()  # the replaced model.py never ran


@pytest.mark.parametrize("change", ["zeroed", "missing", "not hex"])
def test_a_recorded_checksum_that_is_zeroed_missing_or_malformed_is_refused(bundle: Path, change: str) -> None:
    manifest = _manifest(bundle)
    if change == "zeroed":
        manifest["files"]["model.py"] = "0" * 64
        fragments = ("model.py", "differs from the manifest's 000")
    elif change == "missing":
        del manifest["files"]["model.py"]
        fragments = ("lists no checksum of model.py",)
    else:
        manifest["files"]["model.py"] = "sha256:abc"
        fragments = ("files.model.py", "pattern")
    _write_manifest(bundle, manifest)
    _refused(bundle, *fragments)


def test_extra_missing_and_non_plain_files_are_refused(bundle: Path) -> None:
    (bundle / "helper.py").write_text("print('hi')\n")
    _refused(bundle, "helper.py", "not listed in the bundle's manifest.json")
    (bundle / "helper.py").unlink()
    (bundle / "model.onnx").unlink()
    _refused(bundle, "model.onnx", "listed in the bundle's manifest.json but missing")


def test_a_file_replaced_by_a_link_is_refused(bundle: Path) -> None:
    target = bundle.parent / "elsewhere.py"
    shutil.move(bundle / "model.py", target)
    (bundle / "model.py").symlink_to(target)
    _refused(bundle, "model.py", "not a plain file")
    shutil.move(bundle / "manifest.json", bundle.parent / "manifest.json")
    (bundle / "manifest.json").symlink_to(bundle.parent / "manifest.json")
    _refused(bundle, "manifest.json", "not a plain file")


def test_a_consistently_rewritten_model_file_shows_in_reproduction(bundle: Path) -> None:
    """Checksums cannot tell who wrote the manifest; reproduction still compares what the files compute."""
    (bundle / "model.py").write_text((bundle / "model.py").read_text() + "\n# edited\n")
    manifest = _manifest(bundle)
    manifest["files"]["model.py"] = hashlib.sha256((bundle / "model.py").read_bytes()).hexdigest()
    _write_manifest(bundle, manifest)
    report = reproduce_bundle(bundle)
    assert not report.reproduced
    assert report.problems == ["model.py is not the source skipsearch writes for this topology"]


@pytest.mark.parametrize(
    ("manifest", "fragments"),
    [
        ([1, 2, 3], ["not a skipsearch-bundle/1 manifest"]),
        ("text", ["not a skipsearch-bundle/1 manifest"]),
        ({"format": "skipsearch-bundle/1"}, ["name: Field required"]),
        ({"files": "model.py"}, ["files: Input should be a valid dictionary"]),
        ({"seed": "1"}, ["seed: Input should be a valid integer"]),
        ({"seed": 10**30}, ["seed"]),
        ({"metrics": {"accuracy": "high"}}, ["metrics.accuracy"]),
        ({"metrics": {"accuracy": []}}, ["metrics", "'accuracy' must be a number or null"]),  # found by the fuzz suite
        ({"hash": ["x"]}, ["hash: Input should be a valid string"]),
        ({"versions": True}, ["versions: Input should be a valid dictionary"]),  # found by the fuzz suite
        ({"train_config": {"epochs": "many"}}, ["train_config.epochs"]),
        # found by the fuzz suite: libgomp aborted the process allocating a pool of 2**31 - 1 threads
        ({"train_config": {"threads": 2**31 - 1}}, ["train_config.threads", "less than or equal to 1024"]),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_one_clear_line(bundle: Path, manifest: Any, fragments: list[str]) -> None:
    if isinstance(manifest, dict) and "format" not in manifest:
        manifest = {**_manifest(bundle), **manifest}
    _write_manifest(bundle, manifest)
    _refused(bundle, "manifest.json", *fragments)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"format": "skipsearch-bundle/1", "seed": ' + "9" * 5000 + "}", "cannot read the manifest"),
        ("{not json", "cannot read the manifest"),
        (" " * (MAX_MANIFEST_BYTES + 1), "too big for a bundle manifest"),
        (b"\xff\xfe{}", "cannot read the manifest"),
    ],
)
def test_deep_huge_or_broken_manifest_json_is_one_clear_line(bundle: Path, text: str | bytes, fragment: str) -> None:
    (bundle / "manifest.json").write_bytes(text if isinstance(text, bytes) else text.encode())
    _refused(bundle, "manifest.json", fragment)


def test_reproduce_refuses_a_tampered_bundle_with_exit_2_and_no_training(bundle: Path, cli: Invoke) -> None:
    _replace_model_py(bundle)
    code, out, err = cli(["reproduce", str(bundle), "--json"])
    assert_one_line_error(code, err, "model.py", "differs from the manifest's")
    assert out == ""
    _write_manifest(bundle, {**_manifest(bundle), "files": []})
    code, _, err = cli(["reproduce", str(bundle)])
    assert_one_line_error(code, err, "manifest.json", "files")
