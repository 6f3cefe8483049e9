"""Study files (``studies/*.yaml``): the pydantic model and the loader with one-line errors."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from skipsearch import metrics as schema
from skipsearch._names import MAX_STUDY_NAME, STUDY_NAME_PATTERN
from skipsearch._objects import call_user, load_object
from skipsearch.errors import UserError
from skipsearch.tasks import (
    MAX_THREADS,
    METRIC_DIRECTIONS,
    METRICS,
    TASKS,
    USER_DATA_TASKS,
    TaskData,
    TaskSpec,
    TrainConfig,
    discover_tasks,
    load_task,
)
from skipsearch.topology import (
    EDGE_KINDS,
    PRESETS,
    Limits,
    Topology,
    TopologyError,
    families,
    get_preset,
    load_topology,
)

CHOICE_ALIGNS = ("auto", "identity", "zero_pad", "project")


class _Strict(BaseModel):
    # No NaN or infinity in a study file: a NaN margin or reference value passes every bound.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class TaskConfig(_Strict):
    """A named task and its options. The user's data has shorthands: ``{file: data.csv, target: y,
    ...}`` is task ``file`` and ``{module: "pkg.data:load", args: {...}, ...}`` task ``module``,
    with the other keys as their options (see :func:`skipsearch.tasks._files.file_task`)."""

    name: str
    options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _user_data(cls, value: Any) -> Any:
        if isinstance(value, dict) and "name" not in value:
            for key in USER_DATA_TASKS:
                if key in value:
                    return {"name": key, "options": dict(value)}
        return value

    @property
    def spec(self) -> TaskSpec:
        """The task's :class:`skipsearch.tasks.TaskSpec` (tasks of installed packages included)."""
        return TASKS.get(self.name) or discover_tasks()[self.name]

    @property
    def metric(self) -> str:
        """The task's metric with these options (``accuracy``, ``miou``, ``rmse`` or ``r2``)."""
        return self.spec.metric_for(self.options)

    def load(self, seed: int = 0) -> TaskData:
        """The task's data (cached in the process); its ``input_shape`` and ``num_outputs`` size a
        backbone to it."""
        return load_task(self.name, seed=seed, **self.options)


AUTO = "auto"
"""A backbone argument left to the task: see :meth:`BackboneConfig.resolved_for`."""

AUTO_ARGS = ("input_shape", "input_features", "in_features", "classes", "num_classes", "outputs")
"""Backbone arguments that may be ``auto``: the task's input shape, its size, its class (output) count."""


class BackboneConfig(_Strict):
    """The network the search edits: a preset, a family builder with its arguments, a topology file
    (``.json`` / ``.graphml``, relative to the study file) or a Python function returning a topology."""

    preset: str | None = None
    family: str | None = None
    file: str | None = None
    module: str | None = None
    """``"package.module:function"``, called with ``args``; it must return a :class:`Topology`."""
    args: dict[str, Any] = Field(default_factory=dict)
    keep_skips: bool = False
    """Keep the backbone's own skip edges fixed (outside the search) instead of starting from none."""
    resolved: dict[str, Any] | None = None
    """Filled by the loader for ``file`` and ``module``: the topology they gave, stored with the
    study so that workers on other machines need neither the file nor the module."""

    @model_validator(mode="after")
    def _one_source(self) -> BackboneConfig:
        given = [key for key in ("preset", "family", "file", "module") if getattr(self, key) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of 'preset', 'family', 'file' or 'module'")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r} (known: {', '.join(PRESETS)})")
        if self.family is not None and self.family not in families.FAMILIES:
            raise ValueError(f"unknown family {self.family!r} (known: {', '.join(families.FAMILIES)})")
        if self.args and self.file is not None:
            raise ValueError("'args' is for 'family' and 'module' backbones, not 'file'")
        return self

    def resolved_for(self, input_shape: tuple[int, ...] | None, classes: int | None, base_dir: Path) -> BackboneConfig:
        """This backbone with ``auto`` arguments replaced by the task's ``input_shape`` and ``classes``
        (``None`` where the task does not say) and a file or module backbone loaded into ``resolved``.

        ``input_shape: auto`` gives a family of convolutions ``(1, F)`` for a task of feature vectors
        ``(F,)``; ``input_features`` / ``in_features`` get the number of input values.
        """
        args = {
            key: self._auto(key, input_shape, classes) if value == AUTO else value for key, value in self.args.items()
        }
        done = self.model_copy(update={"args": args})
        if self.file is not None or self.module is not None:
            topology = done._load(base_dir)
            done = done.model_copy(update={"resolved": topology.to_dict()})
        return done

    def _auto(self, key: str, input_shape: tuple[int, ...] | None, classes: int | None) -> Any:
        if key not in AUTO_ARGS:
            raise UserError(f"backbone.args.{key}: 'auto' is only for {', '.join(AUTO_ARGS)}")
        if key in ("classes", "num_classes", "outputs"):
            value: Any = classes
        elif key == "input_shape" and input_shape is not None:
            value = [1, *input_shape] if self.family is not None and len(input_shape) == 1 else list(input_shape)
        else:
            value = math.prod(input_shape) if input_shape is not None else None
        if value is None:
            raise UserError(f"backbone.args.{key}: 'auto', but the task does not state it")
        return value

    def _load(self, base_dir: Path) -> Topology:
        """The topology of a ``file`` (relative to ``base_dir``) or ``module`` backbone."""
        if self.file is not None:
            path = Path(self.file) if Path(self.file).is_absolute() else base_dir / self.file
            if not path.is_file():
                raise UserError(f"backbone.file: {self.file}: no such topology file")
            try:
                return load_topology(path)
            except TopologyError as exc:
                raise UserError(f"backbone.file: {exc}") from None
        where = f"backbone.module: {self.module}"
        function = load_object(str(self.module), where="backbone.module", search_dirs=[base_dir])
        topology = call_user(function, where=where, **self.args)
        if not isinstance(topology, Topology):
            raise UserError(f"{where}: returned a {type(topology).__name__}, not a skipsearch Topology")
        return topology

    def build(self) -> Topology:
        unresolved = next((key for key, value in self.args.items() if value == AUTO), None)
        if unresolved is not None:
            raise UserError(
                f"backbone.args.{unresolved}: 'auto' needs the task: load the study with parse_study_config"
            )
        if self.resolved is not None:
            topo = Topology.from_dict(self.resolved, "backbone")
        elif self.file is not None or self.module is not None:
            topo = self._load(Path.cwd())
        elif self.preset is not None:
            topo = get_preset(self.preset)
        else:
            builder = families.FAMILIES[str(self.family)]
            try:
                topo = builder(**self.args)
            except TopologyError:
                raise
            except (TypeError, ValueError) as exc:
                raise UserError(f"backbone.args: {exc}") from None
        return topo if self.keep_skips else topo.with_skips([])


class EdgeRef(_Strict):
    src: str
    dst: str


class SpaceConfig(_Strict):
    """Which skip edges are candidates and what each may become.

    ``choices`` are ``kind`` or ``kind/align`` strings (``add``, ``add/project``, ``concat``, ...); an
    additive kind without an alignment uses ``identity`` where shapes match and ``align`` otherwise.
    Per candidate, choices that are impossible for its shapes are dropped; ``off`` is always offered.
    """

    max_span: int | None = Field(default=None, ge=1)
    min_span: int = Field(default=1, ge=1)
    edges: list[EdgeRef] | None = None
    choices: list[str] = Field(default_factory=lambda: ["off", "add"])
    align: Literal["zero_pad", "project"] = "project"
    max_active: int | None = Field(default=None, ge=0)
    sources: list[str] | None = None
    targets: list[str] | None = None

    @field_validator("choices", mode="before")
    @classmethod
    def _yaml_off(cls, value: Any) -> Any:
        """YAML 1.1 reads a bare ``off`` as false; in a list of choices it can only mean the kind."""
        return [("off" if v is False else v) for v in value] if isinstance(value, list) else value

    @field_validator("choices")
    @classmethod
    def _known_choices(cls, value: list[str]) -> list[str]:
        for choice in value:
            kind, _, align = choice.partition("/")
            if kind not in EDGE_KINDS:
                raise ValueError(f"unknown edge kind {kind!r} in {choice!r} (known: {', '.join(EDGE_KINDS)})")
            if align and align not in CHOICE_ALIGNS:
                raise ValueError(f"unknown alignment {align!r} in {choice!r} (known: {', '.join(CHOICE_ALIGNS)})")
        if not value:
            raise ValueError("needs at least one choice")
        return value

    @model_validator(mode="after")
    def _candidates_given(self) -> SpaceConfig:
        if self.edges is None and self.max_span is None:
            raise ValueError("give 'max_span' (every pair up to that span) or an explicit 'edges' list")
        return self


class Objective(_Strict):
    """A metric to optimise. The task's validation metric goes by its own name (``accuracy``,
    ``miou``, ``rmse``, ``r2``); ``accuracy`` also names mIoU in studies made before that name."""

    name: str
    """A metric of the schema that may be an objective (:func:`skipsearch.metrics.objective_names`):
    the task's metric, a cost, or a probe scored before training."""
    direction: Literal["maximize", "minimize"]

    @field_validator("name")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return _objective_metric(value)

    @property
    def column(self) -> str:
        """Where the value is stored (trial attribute, results column): the task's metric is
        stored as ``accuracy`` whatever its name."""
        return "accuracy" if self.name in METRICS else self.name


def _objective_metric(name: str) -> str:
    allowed = schema.objective_names()
    if name not in allowed:
        raise ValueError(f"unknown metric {name!r} (allowed: {', '.join(allowed)})")
    return name


class PrescreenConfig(_Strict):
    """Score ``candidates`` sampled topologies with a probe, without training, and train the best
    (see :mod:`skipsearch.search._prescreen`)."""

    probe: str
    candidates: int = Field(default=10, ge=2, le=1000)

    @field_validator("probe")
    @classmethod
    def _known_probe(cls, value: str) -> str:
        if value not in schema.probe_names():
            raise ValueError(f"unknown probe {value!r} (known: {', '.join(schema.probe_names())})")
        return value


_CONSTRAINT = re.compile(
    r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|<|>)\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)


class Constraint(_Strict):
    """``metric op bound``: the trial is feasible when ``value op bound`` holds."""

    metric: str
    op: Literal["<", "<=", ">", ">="]
    bound: float

    @model_validator(mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        match = _CONSTRAINT.match(value)
        if match is None:
            raise ValueError(f"{value!r}: write METRIC OP NUMBER with OP one of < <= > >= (e.g. synflow>1e3)")
        return {"metric": match[1], "op": match[2], "bound": float(match[3])}

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        return _objective_metric(value)

    @property
    def column(self) -> str:
        return schema.column_of(self.metric)

    def violation(self, value: float | None) -> float:
        """Optuna's constraint value: <= 0 when satisfied, else by how much it is broken (a missing
        value breaks it by 1)."""
        if value is None or math.isnan(value):
            return 1.0
        excess = value - self.bound if self.op in ("<", "<=") else self.bound - value
        if excess == 0 and self.op in ("<", ">"):
            return 1e-12  # on a strict bound: broken, by as little as can be
        return excess


class SamplerConfig(_Strict):
    name: Literal["tpe", "nsga2", "random", "gp", "predictor"] = "tpe"
    options: dict[str, Any] = Field(default_factory=dict)
    prescreen: PrescreenConfig | None = None

    @model_validator(mode="after")
    def _prescreen_base(self) -> SamplerConfig:
        if self.prescreen is not None and self.name == "predictor":
            raise ValueError(
                "the predictor sampler scores its own candidates: give prescreen to tpe, nsga2, random or gp"
            )
        return self


class EarlyStoppingConfig(_Strict):
    """Stops a trial whose learning curve cannot plausibly reach the Pareto front (multi-objective),
    or applies an Optuna pruner (single-objective)."""

    enabled: bool = True
    pruner: Literal["median", "hyperband", "successive_halving", "none"] = "median"
    min_epoch_fraction: float = Field(default=0.3, gt=0, le=1)
    margin: float = Field(default=0.02, ge=0)


class AnalysisConfig(_Strict):
    """Extra measurements of every trained trial, stored with its metrics."""

    gradient_flow: bool = False
    """Record the first/last hidden block weight-gradient ratio at initialisation and after
    training (``grad_ratio_init``, ``grad_ratio``; see :mod:`skipsearch.tasks._gradients`)."""
    probes: bool | list[str] = False
    """Score every trial with the zero-cost probes (``true``: all of them, or a list of names) at
    initialisation, on one seeded batch (:mod:`skipsearch.tasks._probes`). Probes named by an
    objective, a constraint or the pre-screen are always scored."""

    @field_validator("probes")
    @classmethod
    def _known_probes(cls, value: bool | list[str]) -> bool | list[str]:
        for name in value if isinstance(value, list) else []:
            if name not in schema.probe_names():
                raise ValueError(f"unknown probe {name!r} (known: {', '.join(schema.probe_names())})")
        return value


class HypervolumeConfig(_Strict):
    """How the study's hypervolume is measured (see :mod:`skipsearch.search._hypervolume`)."""

    reference_point: dict[str, float] | None = None
    """One value per objective, by name (e.g. ``{accuracy: 0.5, macs: 200000}``); default: chosen
    when the study is created (quality 0, each cost 1.1 x the costliest topology of the space)."""


class ExecutionConfig(_Strict):
    heartbeat_interval: int = Field(default=10, ge=1)
    grace_period: int = Field(default=60, ge=2)
    """Seconds without a heartbeat after which a RUNNING trial counts as its worker's loss (failed and
    re-queued). Beats run from the moment the trial starts (sampling included) until it ends."""
    max_retry: int = Field(default=3, ge=0)
    threads_per_worker: int | None = Field(default=None, ge=1, le=MAX_THREADS)
    dedupe: bool = True
    """Reuse the metrics of a topology already evaluated in the study with the same seed."""
    batch_trials: Annotated[int, Field(ge=1)] | Literal["auto"] = 1
    """Trials a worker asks for at once and trains together (``skipsearch.tasks.train_batched``);
    ``auto`` sizes the group from the device's memory."""


MAX_SEED = 2**32 - 1
"""numpy's seeds (the study's seed seeds numpy, torch and the sampler): 0 to 2**32 - 1."""


class StudyConfig(_Strict):
    name: str = Field(pattern=STUDY_NAME_PATTERN, max_length=MAX_STUDY_NAME)
    description: str = ""
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    task: TaskConfig
    backbone: BackboneConfig
    space: SpaceConfig
    objectives: list[Objective] = Field(min_length=1, max_length=3)
    constraints: list[Constraint] = Field(default_factory=list)
    """Feasibility bounds, ``METRIC OP NUMBER`` (``synflow>1e3``, ``macs<=200000``): a trial that
    breaks one is infeasible (Optuna's constraints; TPE, NSGA-II and GP prefer feasible trials)."""
    sampler: SamplerConfig = Field(default_factory=SamplerConfig)
    early_stopping: EarlyStoppingConfig = Field(default_factory=EarlyStoppingConfig)
    training: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the task's default training settings (see :class:`TrainConfig`)."""
    trials: int = Field(default=20, ge=1)
    timeout: float | None = Field(default=None, gt=0)
    execution: ExecutionConfig = Field(default_factory=ExecutionConfig)
    analysis: AnalysisConfig = Field(default_factory=AnalysisConfig)
    hypervolume: HypervolumeConfig = Field(default_factory=HypervolumeConfig)
    limits: Limits = Field(default_factory=Limits)
    """Resource limits (see :mod:`skipsearch.search._limits`); not part of the study's identity."""

    @field_validator("task", mode="before")
    @classmethod
    def _task_shorthand(cls, value: Any) -> Any:
        return {"name": value} if isinstance(value, str) else value

    @field_validator("objectives", mode="before")
    @classmethod
    def _objective_shorthand(cls, value: Any) -> Any:
        """Accepts ``accuracy:max`` / ``macs:min`` strings as well as full objects."""
        if not isinstance(value, list):
            return value
        out = []
        for item in value:
            if isinstance(item, str) and ":" in item:
                name, _, way = item.partition(":")
                out.append({"name": name, "direction": {"max": "maximize", "min": "minimize"}.get(way, way)})
            else:
                out.append(item)
        return out

    @model_validator(mode="after")
    def _distinct_objectives(self) -> StudyConfig:
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ValueError("objectives must be distinct")
        given = self.hypervolume.reference_point
        if given is not None and set(given) != set(names):
            raise ValueError(f"hypervolume.reference_point needs exactly one value per objective ({', '.join(names)})")
        return self

    @property
    def objective_pairs(self) -> list[tuple[str, str]]:
        """The objectives as ``(metric, "max" | "min")``, the form of the results package's Pareto queries."""
        return [(o.column, "max" if o.direction == "maximize" else "min") for o in self.objectives]

    @property
    def probe_names(self) -> list[str]:
        """The probes every trial of the study scores: asked for in ``analysis.probes`` or named by
        an objective, a constraint or the pre-screen; in schema order."""
        wanted = set(schema.probe_names()) if self.analysis.probes is True else set(self.analysis.probes or [])
        wanted |= {o.name for o in self.objectives} | {c.metric for c in self.constraints}
        if self.sampler.prescreen is not None:
            wanted.add(self.sampler.prescreen.probe)
        return [name for name in schema.probe_names() if name in wanted]

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def train_config(self) -> TrainConfig:
        """The task's default training settings with this file's overrides."""
        return self.task.spec.default_config.updated(**self.training)


def parse_study_config(data: Any, source: str, base_dir: str | Path | None = None) -> StudyConfig:
    """Validates a study's mapping; raises :class:`UserError` naming the file and the key.

    ``base_dir`` (default: the working directory) is the study file's folder: where a
    ``backbone.file`` is looked for, a ``backbone.module`` imported from first, and the user's data
    files are resolved. Those files are stored as absolute paths with their content's fingerprint
    and loaded once here, so bad data is refused before anything is stored.
    """
    if not isinstance(data, dict):
        raise UserError(f"{source}: a study file must be a mapping of keys, got {type(data).__name__}")
    try:
        config = StudyConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown key"
        raise UserError(f"{source}: {where}: {message}") from None
    if config.task.name not in discover_tasks():
        raise UserError(f"{source}: task.name: unknown task {config.task.name!r} (known: {', '.join(TASKS)})")
    if config.task.name in USER_DATA_TASKS:
        config = config.model_copy(update={"task": _resolved_task(config.task, source, base_dir, config.seed)})
    _check_metric_objectives(config, source)
    try:
        config.train_config  # noqa: B018 - validates the overrides
    except ValidationError as exc:
        err = exc.errors()[0]
        message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
        raise UserError(f"{source}: training.{'.'.join(str(p) for p in err['loc'])}: {message}") from None
    try:
        backbone_config = config.backbone.resolved_for(
            *_task_shape(config), Path.cwd() if base_dir is None else Path(base_dir)
        )
        config = config.model_copy(update={"backbone": backbone_config})
        backbone = backbone_config.build()
    except TopologyError as exc:
        raise UserError(f"{source}: backbone: {exc}") from None
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    from skipsearch.search._limits import check_study_limits  # imports this module
    from skipsearch.search._samplers import make_sampler

    data = check_study_limits(config, backbone, source)
    if config.task.name in USER_DATA_TASKS:
        _check_backbone_fits(backbone, data, source)

    try:
        make_sampler(config)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    return config


_FILE_OPTIONS = ("file", "test_file", "test_target")
_FILE_ORDER = ("file", "target", "test_file", "test_target")
"""The order of a task's files in its fingerprint (the loader's order)."""


def _resolved_task(task: TaskConfig, source: str, base_dir: str | Path | None, seed: int) -> TaskConfig:
    """The user's data task with absolute paths, its kind and fingerprint, checked by loading it."""
    from skipsearch.tasks import combined_fingerprint, infer_kind

    options = dict(task.options)
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    if task.name == "file":
        if not isinstance(options.get("file"), str):
            raise UserError(f"{source}: task.file: give the path of a data file or folder")
        npy_labels = str(options["file"]).lower().endswith(".npy") and isinstance(options.get("target"), str)
        keys = [*_FILE_OPTIONS, *(["target"] if npy_labels else [])]
        for key in keys:
            if isinstance(options.get(key), str):
                options[key] = str((base / options[key]).resolve())
        paths = [Path(options[k]) for k in _FILE_ORDER if k in keys and options.get(k)]
        for path in paths:
            if not path.exists():
                raise UserError(f"{source}: task: {path}: no such file or folder")
        options.setdefault("kind", infer_kind(paths[0]))
        options.setdefault("fingerprint", combined_fingerprint(paths))
    resolved = TaskConfig(name=task.name, options=options)
    try:
        resolved.load(seed)  # the study's own split: the objective finds it cached
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    return resolved


def _check_backbone_fits(backbone: Topology, data: TaskData, source: str) -> None:
    """The user's data must fit the backbone: as many input values per sample, one output per class
    (or regression target), else every trial would fail the same way."""
    inputs, values = math.prod(backbone.input_shape), math.prod(data.input_shape)
    if inputs != values:
        raise UserError(
            f"{source}: backbone: its input shape {list(backbone.input_shape)} holds {inputs} values, but the "
            f"data's samples have shape {list(data.input_shape)} ({values} values)"
        )
    outputs = backbone.output_shape[0] if backbone.output_shape else 1
    if outputs != data.num_outputs:
        what = "target column(s)" if data.regression else "classes"
        raise UserError(f"{source}: backbone: it gives {outputs} outputs, but the data has {data.num_outputs} {what}")


def _check_metric_objectives(config: StudyConfig, source: str) -> None:
    """An objective naming a task metric must name this task's, in its direction."""
    metric = config.task.metric
    for objective in config.objectives:
        if objective.name not in METRICS:
            continue
        if objective.name != metric:
            raise UserError(
                f"{source}: objectives: {objective.name!r} is not this task's metric; task "
                f"{config.task.name!r} is scored by {metric}: use {metric}:{METRIC_DIRECTIONS[metric]}"
            )
        way, right = ("max" if objective.direction == "maximize" else "min"), METRIC_DIRECTIONS[metric]
        if way != right:
            raise UserError(f"{source}: objectives: {metric} is {right}imised: use {metric}:{right}")


def load_study_config(path: str | Path) -> StudyConfig:
    """Reads and validates a study YAML file."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such study file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read ({exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = " ".join(str(getattr(exc, "problem", None) or exc).split())  # one line, whatever the error kind
        raise UserError(f"{path}: invalid YAML{where}: {problem}") from None
    except RecursionError:  # PyYAML's composer recurses once per nesting level
        raise UserError(f"{path}: invalid YAML: nested too deeply") from None
    except ValueError as exc:  # an integer of thousands of digits (Python's int conversion limit)
        raise UserError(f"{path}: invalid YAML: {exc}".split("; use sys.")[0]) from None
    return parse_study_config(data, str(path), path.parent)


def _task_shape(config: StudyConfig) -> tuple[tuple[int, ...] | None, int | None]:
    """The task's input shape and class (output) count, for ``auto`` backbone arguments; the user's
    data (already resolved and checked) is loaded for it (cached, the objective reuses it)."""
    if config.task.name in USER_DATA_TASKS:
        data = config.task.load(config.seed)
        return tuple(data.input_shape), data.num_outputs
    spec = TASKS.get(config.task.name)
    return (spec.input_shape, spec.num_classes) if spec is not None else (None, None)
