"""Exported PyTorch source, TorchScript and ONNX files compute what the built model computes."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import onnxruntime
import pytest
import torch
from export_helpers import mixed_mlp

from skipsearch.export import example_input, export_model, export_topology, load_source, pytorch_source
from skipsearch.topology import get_preset

ATOL = 1e-4
TOPOLOGIES = {
    "resnet20": lambda: get_preset("resnet20"),
    "densenet-bc-100": lambda: get_preset("densenet-bc-100"),
    "unet-small": lambda: get_preset("unet-small"),
    "mlp-mixed": mixed_mlp,
}

# The fresh interpreter imports the .py file by path with nothing but torch, then checks that no
# skipsearch module was loaded on the way.
FRESH_CHECK = """
import importlib.util, json, sys, torch
for case in json.loads(sys.argv[1]):
    spec = importlib.util.spec_from_file_location(case["module"], case["py"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = getattr(module, case["class"])()
    model.load_state_dict(torch.load(case["state"], weights_only=True))
    data = torch.load(case["io"], weights_only=True)
    with torch.no_grad():
        out = model.eval()(data["input"])
    gap = (out - data["output"]).abs().max().item()
    assert gap <= 1e-4, (case["module"], gap)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("skipsearch", "onnx", "optuna"))
assert not loaded, loaded
print("ok", len(json.loads(sys.argv[1])))
"""


@pytest.fixture(scope="module")
def one_thread() -> Iterator[None]:
    """One torch thread: on a shared 2-core machine a second one costs more than it gives."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def exported(one_thread: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """Every topology exported as pytorch, torchscript and onnx, with a batch and its expected output."""
    cases = {}
    for name, make in TOPOLOGIES.items():
        topology = make()
        folder = tmp_path_factory.mktemp(name)
        results = {fmt: export_topology(topology, fmt, folder, seed=3) for fmt in ("pytorch", "torchscript", "onnx")}
        model = export_model(topology, seed=3)
        batch = 1 if name == "densenet-bc-100" else 3  # a small batch: DenseNet-BC-100 costs 0.3 GMACs a sample
        x = torch.randn(batch, *topology.input_shape, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            expected = model(x)
        io = folder / "io.pt"
        torch.save({"input": x, "output": expected}, io)
        cases[name] = {"topology": topology, "results": results, "x": x, "expected": expected, "io": io}
    return cases


@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_torchscript_and_onnx_match_the_model(exported: dict[str, dict], name: str) -> None:
    case = exported[name]
    x, expected = case["x"], case["expected"]
    (script_file,) = case["results"]["torchscript"].files
    scripted = torch.jit.load(str(script_file))
    with torch.no_grad():
        assert torch.allclose(scripted(x), expected, atol=ATOL, rtol=0)
    (onnx_file,) = case["results"]["onnx"].files
    session = onnxruntime.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
    assert torch.allclose(torch.from_numpy(got), expected, atol=ATOL, rtol=0)


@pytest.mark.slow
def test_pytorch_files_run_in_a_fresh_interpreter_with_only_torch(exported: dict[str, dict], tmp_path: Path) -> None:
    cases = []
    for case in exported.values():
        result = case["results"]["pytorch"]
        py, state = result.files
        assert py.suffix == ".py" and state.suffix == ".pt" and state.stem == py.stem
        paths = {"py": str(py), "state": str(state), "io": str(case["io"])}
        cases.append({"module": py.stem, "class": result.class_name, **paths})
    result = subprocess.run(
        [sys.executable, "-c", FRESH_CHECK, json.dumps(cases)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ok {len(TOPOLOGIES)}"


def test_pytorch_source_names_every_edge_module_and_keeps_state_dict_keys() -> None:
    topology = mixed_mlp()
    model = export_model(topology, seed=0)
    source, class_name = pytorch_source(model, topology)
    for cls in ("ZeroPadShortcut", "ScalarSkip", "GatedSkip", "SwitchSkip", "ProjectionShortcut"):
        assert f"class {cls}(" in source
    assert "import skipsearch" not in source and "from skipsearch" not in source
    rebuilt = load_source(source, class_name)
    assert list(rebuilt.state_dict()) == list(model.state_dict())
    compile(source, "model.py", "exec")  # valid Python on its own


def test_pytorch_source_omits_unused_edge_classes() -> None:
    topology = get_preset("mlp-deep-plain")
    source, _ = pytorch_source(export_model(topology, seed=0), topology)
    assert "class ZeroPadShortcut" not in source and "class GatedSkip" not in source


def test_hostile_topology_name_stays_out_of_the_code(tmp_path: Path) -> None:
    topology = get_preset("mlp-deep-plain").with_name('x"""\nimport os\nos.system("echo pwned")\n"""')
    source = export_topology(topology, "pytorch", tmp_path).files[0].read_text()
    tree = ast.parse(source)
    imports = [ast.unparse(node) for node in tree.body if isinstance(node, ast.Import | ast.ImportFrom)]
    assert imports == ["import torch", "from torch import nn"]
    assert '"' not in ast.get_docstring(tree).splitlines()[0]


def test_loaded_weights_are_the_ones_exported(tmp_path: Path) -> None:
    topology = mixed_mlp()
    state = export_model(topology, seed=7).state_dict()
    result = export_topology(topology, "pytorch", tmp_path, state_dict=state, seed=0)
    saved = torch.load(result.files[1], weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in state.items())
    x = example_input(topology)
    assert x.shape == (2, *topology.input_shape)
