"""Building PyTorch models from topologies, and measuring their cost."""

from skipsearch.nn._blocks import ACTIVATION_FUNCTIONS, BLOCK_BUILDERS, LinearAct
from skipsearch.nn._compile import build_model, built_topology, model_block, model_topology, skip_name
from skipsearch.nn._cost import Cost, count_flops, count_params, cpu_threads, measure_latency, model_cost
from skipsearch.nn._import import SOURCE_STATE, ModelImportError, import_model, transfer_weights
from skipsearch.nn._skips import (
    SKIP_BUILDERS,
    GatedSkip,
    ProjectionShortcut,
    ScalarSkip,
    SkipBuilder,
    SwitchSkip,
    ZeroPadShortcut,
    switch_modules,
    switch_penalty,
)
from skipsearch.nn._state import model_device, training_mode
from skipsearch.nn._switch import resolve_switches, switch_states

__all__ = [
    "ACTIVATION_FUNCTIONS",
    "BLOCK_BUILDERS",
    "SKIP_BUILDERS",
    "SOURCE_STATE",
    "Cost",
    "GatedSkip",
    "LinearAct",
    "ModelImportError",
    "ProjectionShortcut",
    "ScalarSkip",
    "SkipBuilder",
    "SwitchSkip",
    "ZeroPadShortcut",
    "build_model",
    "built_topology",
    "count_flops",
    "count_params",
    "cpu_threads",
    "import_model",
    "measure_latency",
    "model_block",
    "model_cost",
    "model_device",
    "model_topology",
    "resolve_switches",
    "skip_name",
    "switch_modules",
    "switch_penalty",
    "switch_states",
    "training_mode",
    "transfer_weights",
]
