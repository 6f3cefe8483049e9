"""The training recipe: how a topology is trained, in one type for studies, exports, bundles and the CLI."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from skipsearch.errors import UserError
from skipsearch.tasks._config import TrainConfig
from skipsearch.tasks._registry import TASKS, discover_tasks


@dataclass(frozen=True)
class Recipe:
    """How a topology is trained: the task (and its options), the training settings and the seed."""

    task: str
    train_config: TrainConfig
    seed: int = 0
    task_options: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def for_task(cls, task: str, seed: int = 0, **changes: Any) -> Recipe:
        """The task's default settings (``changes`` override them, ``None`` values ignored)."""
        if task not in TASKS:
            raise UserError(f"unknown task {task!r} (known: {', '.join(TASKS)})")
        return cls(task, TASKS[task].default_config.updated(**changes), seed)

    @classmethod
    def from_study_config(cls, config: dict[str, Any], *, seed: int | None = None, task: str | None = None) -> Recipe:
        """The recipe of a study's validated configuration (its JSON form, as stored): the task's
        default settings with the study's ``training`` overrides; ``seed`` and ``task`` (a trial's
        own) replace the study's."""
        study_task = str(config["task"]["name"])
        name = task or study_task
        spec = TASKS.get(study_task) or discover_tasks()[study_task]
        training = spec.default_config.updated(**config.get("training", {}))
        options = dict(config["task"].get("options", {}))
        return cls(name, training, int(config.get("seed", 0) if seed is None else seed), options)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "task_options": self.task_options,
            "seed": self.seed,
            "train_config": self.train_config.model_dump(mode="json"),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Recipe:
        return cls(
            data["task"], TrainConfig.model_validate(data["train_config"]), int(data["seed"]), data["task_options"]
        )
