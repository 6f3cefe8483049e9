"""How to train a model: the settings shared by ``skipsearch train`` and study files."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_THREADS = 1024
"""The most CPU threads a setting may ask for: more than any machine has; libgomp aborts the process
when it cannot allocate the pool asked for (``threads: 2147483647`` in a bundle's manifest did)."""


class TrainConfig(BaseModel):
    """Training settings. Study files embed this as their ``training:`` mapping; each task has
    defaults (``TASKS[name].default_config``) tuned to train its reference model well and fast."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)

    epochs: int = Field(default=10, ge=1)
    batch_size: int = Field(default=128, ge=1)
    optimizer: Literal["sgd", "adam", "adamw"] = "adam"
    lr: float = Field(default=1e-3, gt=0)
    momentum: float = Field(default=0.9, ge=0)
    """SGD momentum; ignored by Adam and AdamW."""
    weight_decay: float = Field(default=0.0, ge=0)
    """Applied to the weights of the blocks, not to the scalar gates of skip edges (those are
    architecture parameters: decay would pull every switch towards half open)."""
    schedule: Literal["none", "cosine", "step"] = "cosine"
    """``cosine`` anneals the rate to zero over all batches; ``step`` divides it by 10 after 50%
    and 75% of the epochs (He et al. 2016)."""
    switch_penalty: float = Field(default=1e-3, ge=0)
    """Weight of the sum of switch-edge gates added to the loss (see ``skipsearch.nn.switch_penalty``)."""
    grad_clip: float | None = Field(default=None, gt=0)
    """Clip the gradients' global norm to this value."""
    device: Literal["auto", "cpu", "cuda"] = "auto"
    """``auto``: CUDA when available, else the CPU."""
    threads: int | None = Field(default=None, ge=1, le=MAX_THREADS)
    """CPU threads for torch (``torch.set_num_threads``); ``None`` keeps torch's setting."""

    def updated(self, **changes: Any) -> TrainConfig:
        """A validated copy with ``changes`` applied (``None`` values are ignored, which suits
        optional command-line flags)."""
        values = self.model_dump()
        values.update({k: v for k, v in changes.items() if v is not None})
        return TrainConfig.model_validate(values)
