"""Edge effects across a study: what each candidate skip edge, as each kind, does to each objective.

The trials of a study form a table with one categorical column per candidate edge (its choice:
``off``, ``add/identity``, ``concat``, ...) and one column per objective. The effect of
"edge ``i->j`` as kind ``k``" is the coefficient of the indicator ``[edge == k]`` (against ``off``)
in an ordinary least-squares regression of the objective on every such indicator, with
heteroscedasticity-robust HC3 standard errors and a Student-t interval. When the study has too
few trials for the full regression (fewer than :data:`MIN_RESIDUAL_DF` degrees of freedom left),
each indicator is instead compared alone: the difference of means between trials with the edge as
that kind and trials with the edge off, with a Welch interval. The ``method`` column says which.

The regression adjusts each effect for the other edges; with a sampler such as TPE the edges are
correlated, so the unadjusted difference of means can mix effects up. Neither is causal proof.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from skipsearch.errors import UserError

MIN_RESIDUAL_DF = 5
"""The full regression is used when it leaves at least this many residual degrees of freedom."""

MIN_TRIALS_PER_ARM = 3
"""An effect is shown only when at least this many trials had the edge as that kind and as many had
it off, and its interval is known; otherwise it "needs at least N trials"."""

EFFECT_COLUMNS = ["edge", "kind", "objective", "effect", "ci_low", "ci_high", "se", "n_on", "n_off", "method"]


def edge_table(study: Any, objectives: Sequence[str] | None = None) -> tuple[pd.DataFrame, list[str], list[str]]:
    """One row per COMPLETE trial of an Optuna ``study``: its edge choices and metrics.

    Returns the frame, the edge (parameter) columns and the objective columns. Metrics come from
    the trial's user attributes (``accuracy``, ``macs``, ...), or its values for ``objective<i>``.
    """
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    names = list(study.metric_names or [f"objective{i}" for i in range(len(study.directions))])
    wanted = list(objectives) if objectives else names
    rows = []
    for trial in trials:
        row: dict[str, Any] = {"trial": trial.number, **trial.params}
        for i, name in enumerate(names):
            row[name] = trial.values[i]
        for name in wanted:
            if name not in row:
                row[name] = trial.user_attrs.get(name)
        rows.append(row)
    frame = pd.DataFrame(rows)
    edges = sorted({p for t in trials for p in t.params if "->" in p}, key=_edge_order(trials))
    for name in wanted:
        if name not in frame.columns:
            raise UserError(f"objective {name!r}: the study's trials have no such metric (have: {', '.join(names)})")
        frame[name] = pd.to_numeric(frame[name], errors="coerce")
    return frame, edges, wanted


def _edge_order(trials: Sequence[Any]) -> Any:
    order: dict[str, int] = {}
    for trial in trials:
        for p in trial.params:
            order.setdefault(p, len(order))
    return order.__getitem__


def edge_effects(
    frame: pd.DataFrame,
    edges: Sequence[str],
    objectives: Sequence[str],
    *,
    method: str = "auto",
    confidence: float = 0.95,
    baseline: str = "off",
) -> pd.DataFrame:
    """The effect of every (edge, kind) on every objective, with a ``confidence`` interval.

    ``frame`` has one column per edge (choice strings) and one per objective. ``method`` is
    ``ols`` (regression with HC3 errors), ``means`` (difference of means, Welch) or ``auto``
    (ols when it leaves :data:`MIN_RESIDUAL_DF` residual degrees of freedom, else means).
    Kinds that no trial used are left out. Columns: :data:`EFFECT_COLUMNS`.
    """
    if method not in ("auto", "ols", "means"):
        raise UserError(f"method must be auto, ols or means, got {method!r}")
    indicators = _indicators(frame, edges, baseline)
    out = []
    for objective in objectives:
        y = frame[objective].to_numpy(dtype=float)
        ok = np.isfinite(y)
        design = indicators[ok]
        design = design.loc[:, design.to_numpy().any(axis=0)]
        chosen = method
        if chosen == "auto":
            rank = np.linalg.matrix_rank(np.column_stack([np.ones(len(design)), design.to_numpy(dtype=float)]))
            full = rank == design.shape[1] + 1
            chosen = "ols" if full and len(design) - rank >= MIN_RESIDUAL_DF else "means"
        if chosen == "ols":
            rows = _ols(design, y[ok], confidence)
        else:
            rows = _means(design, frame.loc[ok, list(edges)], y[ok], confidence, baseline)
        for (edge, kind), (effect, se, low, high, n_on, n_off) in rows.items():
            out.append([edge, kind, objective, effect, low, high, se, n_on, n_off, chosen])
    return pd.DataFrame(out, columns=EFFECT_COLUMNS)


def _indicators(frame: pd.DataFrame, edges: Sequence[str], baseline: str) -> pd.DataFrame:
    columns: dict[tuple[str, str], np.ndarray] = {}
    for edge in edges:
        values = frame[edge].astype(str).to_numpy()
        for kind in sorted(set(values) - {baseline}):
            columns[(edge, kind)] = (values == kind).astype(float)
    return pd.DataFrame(columns, index=frame.index)


def _ols(design: pd.DataFrame, y: np.ndarray, confidence: float) -> dict[tuple[str, str], tuple]:
    x = np.column_stack([np.ones(len(y)), design.to_numpy(dtype=float)])
    n, p = x.shape
    xtx_inv = np.linalg.pinv(x.T @ x)
    beta = xtx_inv @ x.T @ y
    tiny = 1e-9 * max(float(np.abs(y).max()), 1e-300)
    beta = np.where(np.abs(beta) < tiny, 0.0, beta)  # rounding noise of an exact fit reads as 0
    resid = y - x @ beta
    resid = np.where(np.abs(resid) < tiny, 0.0, resid)
    leverage = np.einsum("ij,jk,ik->i", x, xtx_inv, x)
    # HC3 (MacKinnon & White 1985): residuals inflated by their leverage; a point that alone
    # determines a coefficient (leverage 1) makes that coefficient's error unknown (infinite).
    with np.errstate(divide="ignore", invalid="ignore"):
        weights = resid**2 / (1.0 - np.minimum(leverage, 1.0)) ** 2
    weights = np.where(leverage > 1 - 1e-10, np.inf, weights)
    meat = (x * weights[:, None]).T @ x if np.isfinite(weights).all() else None
    cov = xtx_inv @ meat @ xtx_inv if meat is not None else np.full((p, p), np.inf)
    df = n - np.linalg.matrix_rank(x)
    t = stats.t.ppf(0.5 + confidence / 2, df) if df > 0 else math.inf
    out = {}
    for i, key in enumerate(design.columns, start=1):
        se = float(math.sqrt(cov[i, i])) if np.isfinite(cov[i, i]) and cov[i, i] >= 0 else math.inf
        on = int(design[key].sum())
        out[key] = (float(beta[i]), se, float(beta[i] - t * se), float(beta[i] + t * se), on, n - on)
    return out


def _means(
    design: pd.DataFrame, choices: pd.DataFrame, y: np.ndarray, confidence: float, baseline: str
) -> dict[tuple[str, str], tuple]:
    out = {}
    for edge, kind in design.columns:
        values = choices[edge].astype(str).to_numpy()
        a, b = y[values == kind], y[values == baseline]
        if len(a) == 0 or len(b) == 0:
            out[(edge, kind)] = (math.nan, math.inf, -math.inf, math.inf, len(a), len(b))
            continue
        effect = float(a.mean() - b.mean())
        va, vb = (
            (a.var(ddof=1) / len(a) if len(a) > 1 else math.inf),
            (b.var(ddof=1) / len(b) if len(b) > 1 else math.inf),
        )
        se = math.sqrt(va + vb)
        if math.isfinite(se) and se > 0:
            df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))  # Welch-Satterthwaite
            t = float(stats.t.ppf(0.5 + confidence / 2, df))
        else:
            t = math.inf if not math.isfinite(se) else 0.0
        half = t * se if math.isfinite(se) else math.inf
        out[(edge, kind)] = (effect, se, effect - half, effect + half, len(a), len(b))
    return out


def describe_effects(effects: pd.DataFrame, confidence: float = 0.95) -> list[str]:
    """One sentence per (edge, kind): ``edge h1->h3 as concat: +5.1 accuracy points (95% CI ...)``.

    Accuracy-like objectives (values in [0, 1]) are written in percentage points.
    """
    lines = []
    for (edge, kind), group in effects.groupby(["edge", "kind"], sort=False):
        parts = [_phrase(r, confidence) for r in group.itertuples()]
        lines.append(f"edge {edge} as {kind}: " + "; ".join(parts))
    return lines


def estimable(row: Any) -> bool:
    """Whether an effect row rests on enough trials to be shown (see :data:`MIN_TRIALS_PER_ARM`)."""
    return (
        row.n_on >= MIN_TRIALS_PER_ARM
        and row.n_off >= MIN_TRIALS_PER_ARM
        and math.isfinite(row.effect)
        and math.isfinite(row.se)
    )


def needs_trials_text(row: Any) -> str:
    """Why an effect is not shown: ``needs at least 3 trials with the edge as concat (has 1)``."""
    if row.n_on < MIN_TRIALS_PER_ARM:
        return f"needs at least {MIN_TRIALS_PER_ARM} trials with it on (has {row.n_on})"
    if row.n_off < MIN_TRIALS_PER_ARM:
        return f"needs at least {MIN_TRIALS_PER_ARM} trials with it off (has {row.n_off})"
    return "needs more trials (no interval yet)"


def effect_scale(objective: str) -> tuple[float, str]:
    """Quality metrics (values in [0, 1]) are written in percentage points."""
    return (100.0, " points") if "accuracy" in objective or objective == "miou" else (1.0, "")


def _phrase(row: Any, confidence: float) -> str:
    from skipsearch.results import objective_label

    label = objective_label(row.objective)
    if not estimable(row):
        return f"{label}: {needs_trials_text(row)}"
    scale, unit = effect_scale(row.objective)
    ci = f"{confidence:.0%} CI {_num(row.ci_low * scale, sign=True)} to {_num(row.ci_high * scale, sign=True)}"
    if row.ci_low > 0 or row.ci_high < 0:
        verb = "raises" if row.effect > 0 else "lowers"
        return f"{verb} {label} by {_num(abs(row.effect) * scale)}{unit} ({ci})"
    return f"no clear effect on {label} ({_num(row.effect * scale, sign=True)}{unit}, {ci})"


def _num(value: float, sign: bool = False) -> str:
    from skipsearch.results import format_number

    text = format_number(value, digits=3) if abs(value) < 1000 else format_number(round(value))
    return f"+{text}" if sign and value >= 0 else text


def param_importances(study: Any, objective_index: int = 0, seed: int = 0) -> dict[str, float]:
    """Optuna's fANOVA importance of every edge parameter for one objective (empty when the study
    has too few COMPLETE trials or too little variation for fANOVA)."""
    import optuna
    from optuna.importance import FanovaImportanceEvaluator, get_param_importances

    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(done) < 2:
        return {}
    try:
        return get_param_importances(
            study,
            evaluator=FanovaImportanceEvaluator(seed=seed),
            target=lambda t: t.values[objective_index],
        )
    except (RuntimeError, ValueError, ZeroDivisionError):
        return {}
