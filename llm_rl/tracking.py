"""Entropy tracking: the controllers a study compares and how well a run held its set-point.

Shared by ``studies/llm_entropy_sysid.py`` (identification, design, verification at one
set-point) and ``studies/llm_entropy_tracking.py`` (set-points x tasks x controllers).

**Controllers** (:func:`tracking_controls`), all on the entropy-bonus actuator except AEPO:

- ``open-loop``: plain GRPO (no bonus), the reference.
- ``hand-pi``: the collapse study's PI, hand-tuned on seed 1 (kp 1.0, ki 0.1, bonus in [0, 1]).
- ``pole-tau<T>``: PI by pole placement on the identified first-order model, closed-loop time
  constant ``T`` steps (:func:`llm_rl.entropy_design.pole_placement_pi`).
- ``pole-tau<T>-kf``: the same gains reading the entropy through the scalar Kalman filter on the
  identified model (``TrainConfig.sensor``), instead of the raw reading.
- ``optuna``: PI tuned by Optuna on closed-loop simulations of the identified model with its
  noise (:func:`llm_rl.entropy_design.tune_pi_optuna`), per set-point.
- ``dual-fixed``: dual ascent with the runaway protection of :class:`~llm_rl.entropy_control.
  DualOptions` (:data:`DUAL_FIXED`); ``dual-old``: the collapse study's dual ascent.
- ``nmpc``: grid-search MPC on the identified quadratic model with a lagged bonus, momentum
  and a disturbance observer (:mod:`llm_rl.entropy_mpc`), with the task's settings chosen on the
  identification seeds (:data:`llm_rl.entropy_mpc.NMPC_PRESETS`; needs the task).
- ``aepo``: AEPO's bang-bang temperature of extra samples (LLM_RL.md defaults).

**Tracking error** (:func:`tracking_summary`): mean ``|H - H*| / H*`` over the second half of
the run, of the raw per-step reading (what the acceptance of issue 13 counts) and of the Kalman
estimate of the identified model run over the logged readings and bonuses afterwards (the same
filter for every controller, so the filtered column compares like with like).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llm_rl.entropy_control import ControlConfig
from llm_rl.filters import SensorConfig, make_filter

__all__ = [
    "DUAL_FIXED",
    "DUAL_OLD",
    "TRACKING_CONTROLLERS",
    "IdentifiedModel",
    "load_identified",
    "second_half_error",
    "short_hash",
    "tracking_controls",
    "tracking_summary",
]

#: The fixed dual ascent: PI on log alpha (kp_log), 3x faster decrease above H*, bonus cut above
#: 1.5 H*, alpha in [1e-3, 1] (chosen on the identified sumpair model, studies/README.md).
DUAL_FIXED: dict[str, float] = {"value": 0.05, "lr": 0.3, "u_min": 1e-3, "u_max": 1.0,
                                "kp_log": 6.0, "down_ratio": 3.0, "cut_above": 0.5}
#: The collapse study's dual ascent (ran away on countdown-lite, seed 2).
DUAL_OLD: dict[str, float] = {"value": 0.01, "lr": 0.15, "u_min": 1e-3, "u_max": 0.15}
#: Controller kinds :func:`tracking_controls` builds (``pole`` and ``pole-kf``: one per tau).
TRACKING_CONTROLLERS = ("open-loop", "hand-pi", "pole", "pole-kf", "optuna", "nmpc",
                        "dual-fixed", "dual-old", "aepo")


class IdentifiedModel:
    """A first-order ARX model written by ``studies/llm_entropy_sysid.py`` with its Kalman
    settings (``a, b, c, q, r``) and measurement-noise estimate."""

    def __init__(self, arx: Any, kalman: Mapping[str, float], noise_std: float,
                 path: str = "") -> None:
        self.arx = arx
        self.kalman = dict(kalman)
        self.noise_std = float(noise_std)
        self.path = path


def load_identified(path: str | Path) -> IdentifiedModel:
    """Read ``model_<task>_arx.json`` (a clear error when it is missing or not first order)."""
    from llm_rl.sysid import ARXModel, load_model

    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"no identified model at {p}; run studies/llm_entropy_sysid.py "
                                f"first (its --out_dir holds model_<task>_arx.json) or pass "
                                f"--sysid_dir")
    model = load_model(p)
    extra = json.loads(p.read_text()).get("extra", {})
    if not isinstance(model, ARXModel) or "kalman" not in extra:
        raise ValueError(f"{p}: not a first-order ARX model with Kalman settings (written by "
                         f"studies/llm_entropy_sysid.py)")
    return IdentifiedModel(model, extra["kalman"], float(extra.get("noise_std", 0.0)), str(p))


def tracking_controls(kinds: Sequence[str], setpoint: float, model: IdentifiedModel | None = None,
                      *, taus: Sequence[float] = (3.0,), n_trials: int = 60,
                      storage: str | None = None, study_prefix: str = "entropy-pi",
                      task: str | None = None
                      ) -> dict[str, tuple[ControlConfig, SensorConfig]]:
    """The controllers ``kinds`` (:data:`TRACKING_CONTROLLERS`) at ``setpoint``: name ->
    (controller, sensor). Model-based kinds need ``model`` (``nmpc``: the ``task`` of its
    preset); a pole-placement ``tau`` the model cannot meet is left out with a printed reason
    (the others still run)."""
    from llm_rl.entropy_design import pole_placement_pi, tune_pi_optuna

    unknown = [k for k in kinds if k not in TRACKING_CONTROLLERS]
    if unknown:
        raise KeyError(f"unknown controller {unknown[0]!r}; valid: "
                       f"{', '.join(TRACKING_CONTROLLERS)}")
    needs = [k for k in kinds if k in ("pole", "pole-kf", "optuna")]
    if needs and model is None:
        raise ValueError(f"controllers {', '.join(needs)} are designed on an identified model; "
                         f"none was given")
    if "nmpc" in kinds:
        from llm_rl.entropy_mpc import NMPC_PRESETS

        if task not in NMPC_PRESETS:
            raise ValueError(f"nmpc has settings for tasks {', '.join(NMPC_PRESETS)}; got "
                             f"task = {task!r}")
    raw = SensorConfig()
    h = setpoint
    out: dict[str, tuple[ControlConfig, SensorConfig]] = {}
    for kind in kinds:
        if kind == "open-loop":
            out[kind] = (ControlConfig(setpoint=h), raw)
        elif kind == "hand-pi":
            out[kind] = (ControlConfig(name="pid", setpoint=h), raw)  # kp 1.0, ki 0.1
        elif kind in ("pole", "pole-kf"):
            assert model is not None
            kf = SensorConfig(filter="kalman", **model.kalman) if kind == "pole-kf" else raw
            for tau in taus:
                try:
                    design = pole_placement_pi(model.arx, float(tau))
                except ValueError as exc:  # recorded, the study goes on
                    print(f"no pole-placement design for tau = {tau:g}: {exc}", flush=True)
                    continue
                name = f"pole-tau{float(tau):g}" + ("-kf" if kind == "pole-kf" else "")
                out[name] = (ControlConfig(name="pid", setpoint=h,
                                           options=design.pid_options()), kf)
        elif kind == "optuna":
            assert model is not None
            digest = short_hash(model.arx.to_dict(), model.noise_std, h, n_trials)
            opt = tune_pi_optuna(model.arx, setpoint=h, r=model.noise_std ** 2,
                                 n_trials=n_trials, seed=0, storage=storage,
                                 study_name=f"{study_prefix}-{digest}")
            out[kind] = (ControlConfig(name="pid", setpoint=h, options=opt.pid_options()), raw)
        elif kind == "nmpc":
            out[kind] = (ControlConfig(name="nmpc", setpoint=h, options=NMPC_PRESETS[str(task)]),
                         raw)
        elif kind == "dual-fixed":
            out[kind] = (ControlConfig(name="dual", setpoint=h, options=DUAL_FIXED), raw)
        elif kind == "dual-old":
            out[kind] = (ControlConfig(name="dual", setpoint=h, options=DUAL_OLD), raw)
        else:  # aepo
            out[kind] = (ControlConfig(name="aepo", actuator="temperature", setpoint=h), raw)
    return out


def short_hash(*parts: Any) -> str:
    """Eight hex digits naming ``parts`` (JSON-able; e.g. a model, its noise and the settings:
    the name of an Optuna study that a rerun continues)."""
    from llm_rl.config import config_hash

    return config_hash(json.dumps(parts, default=str, sort_keys=True))[:8]


def second_half_error(h: Sequence[float] | np.ndarray, setpoint: float) -> float:
    """Mean ``|H - H*| / H*`` over the second half of ``h`` (``inf`` if any value is not
    finite)."""
    x = np.asarray(h, dtype=float)
    if x.size == 0:
        raise ValueError("no entropy readings: the run has no steps")
    if not math.isfinite(setpoint) or setpoint <= 0:
        raise ValueError(f"setpoint = {setpoint!r} is not valid; valid: finite > 0")
    second = x[len(x) // 2:]
    if not np.all(np.isfinite(second)):
        return math.inf
    return float(np.mean(np.abs(second - setpoint) / setpoint))


def _filtered(hist: Sequence[Mapping[str, Any]], kalman: Mapping[str, float]) -> np.ndarray:
    """The Kalman estimate over a run's logged readings and bonuses (0 for other actuators)."""
    f = make_filter(SensorConfig(filter="kalman", **kalman))
    out = []
    for m in hist:
        u = float(m["actuator"]) if m.get("actuator_name") == "entropy_coef" else 0.0
        out.append(f.update(float(m["entropy"]), u))
    return np.array(out)


def tracking_summary(hist: Sequence[Mapping[str, Any]], setpoint: float,
                     kalman: Mapping[str, float] | None = None) -> dict[str, Any]:
    """Per-run numbers: tracking error (raw; Kalman-filtered when ``kalman`` is given), entropy
    start / end / max, the actuator's mean over the second half, training reward at the end,
    held-out pass@1 / pass@8 at the end and averaged over the evaluations of the second half."""
    if not hist:
        raise ValueError("no metrics rows: the run has no steps")
    h = np.array([float(m["entropy"]) for m in hist])
    k = 5 if len(h) >= 10 else 1
    half = len(hist) // 2
    late = [m for m in hist[half:] if m.get("evaluated")] or list(hist[-1:])

    def mean(key: str, rows: Sequence[Mapping[str, Any]]) -> float | None:
        vals = [float(m[key]) for m in rows if m.get(key) is not None]
        return float(np.mean(vals)) if vals else None

    out: dict[str, Any] = {
        "rel_err_second_half": second_half_error(h, setpoint),
        "rel_err_filtered": (second_half_error(_filtered(hist, kalman), setpoint)
                             if kalman is not None else None),
        "entropy_start": float(h[:k].mean()), "entropy_end": float(h[-k:].mean()),
        "entropy_max": float(h.max()), "actuator_mean": mean("actuator", hist[half:]),
        "reward_end": mean("reward", hist[-k:]), "pass@1": hist[-1].get("pass@1"),
        "pass@8": hist[-1].get("pass@8"), "pass@1_late": mean("pass@1", late),
        "pass@8_late": mean("pass@8", late), "steps": len(hist),
    }
    return out
