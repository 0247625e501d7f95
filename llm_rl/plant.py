"""``ctrlbench/LLMEntropy-v0``: a GRPO training run seen as a ctrlbench plant.

One plant step is one GRPO update of :meth:`llm_rl.trainer.GRPOTrainer.train_step` (rollout,
verification, advantages, minibatched updates; no second training loop): the action sets the
actuator of that update, the observation is what the update's rollout measured. So
``ctrlbench run LLMEntropy-v0 pid``, ``ctrlbench check`` and studies drive the training run like
any other plant. :class:`LLMEntropy` documents the signals; :class:`LLMEntropyOptions` the options.

The plant's PID design is :func:`design_entropy_pi` (model name :data:`MODEL_NAME`). Both are
registered by :func:`llm_rl.plant_hook.register`, the ``ctrlbench.plugins`` hook (strings only).
This module imports no torch: the trainer and the warm start are imported when a plant resets.
"""

from __future__ import annotations

import copy
import getpass
import math
import shutil
import tempfile
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, SupportsFloat

import numpy as np
from numpy.typing import NDArray

from ctrlbench.controller import FeedbackController
from ctrlbench.model import PlantModel
from ctrlbench.options import OptionError, Options, option
from ctrlbench.plant import Plant, plant_dt, signals_of
from ctrlbench.signals import SignalSpec, index_of, reference_index
from llm_rl.entropy_control import ACTUATORS, EntropyController, PIDOptions
from llm_rl.filters import SensorConfig
from llm_rl.plant_hook import MODEL_NAME, SMOKE
from llm_rl.tasks import TASKS
from llm_rl.tokenizer import DEFAULT_CHARS, CharTokenizer
from llm_rl.validation import MAX_TEMPERATURE, MIN_TEMPERATURE, device_problem

__all__ = [
    "MODEL_NAME",
    "NEUTRAL",
    "SMOKE",
    "ActionActuator",
    "EntropyPI",
    "EntropyPIOptions",
    "LLMEntropy",
    "LLMEntropyOptions",
    "actuator_bounds",
    "design_entropy_pi",
    "entropy_model",
]

Obs = NDArray[np.float64]
#: Neutral value of each actuator (no bonus, plain sampling, no Clip-Cov): the reset update's.
NEUTRAL = {"entropy_coef": 0.0, "temperature": 1.0, "clip_cov_ratio": 0.0}
_UNITS = {"entropy_coef": "1", "temperature": "1", "clip_cov_ratio": "1"}
_MEANING = {"entropy_coef": "entropy-bonus coefficient of the loss",
            "temperature": "sampling temperature of the rollout",
            "clip_cov_ratio": "fraction of high-covariance tokens Clip-Cov detaches"}
_OBSERVATION = ("entropy", "entropy_filtered", "reward_mean", "cov_mean", "entropy_ref")


def actuator_bounds(actuator: str) -> tuple[float, float]:
    """The action bounds of ``actuator``, from the trainer's configs: the entropy bonus in
    ``[0, PIDOptions.u_max]`` (the bonus range of the entropy PID), the temperature in
    ``[MIN_TEMPERATURE, MAX_TEMPERATURE]`` (:mod:`llm_rl.validation`), the Clip-Cov ratio in
    ``[0, 1]`` (``ClipCovOptions.clip_cov_ratio``)."""
    if actuator == "entropy_coef":
        return 0.0, float(PIDOptions().u_max)
    if actuator == "temperature":
        return MIN_TEMPERATURE, MAX_TEMPERATURE
    if actuator == "clip_cov_ratio":
        return 0.0, 1.0
    raise OptionError(f"actuator = {actuator!r} is not an actuator; valid: "
                      f"{', '.join(ACTUATORS)}")


def _vocab_entropy() -> float:
    """``ln V`` of the built policies' char vocabulary: the largest token-mean entropy."""
    return math.log(CharTokenizer(DEFAULT_CHARS).vocab_size)


@dataclass(frozen=True)
class LLMEntropyOptions(Options):
    """Options of ``ctrlbench/LLMEntropy-v0`` (defaults: the collapse study's 2 x 64 GPT-2 on
    sumpair with its collapse-prone GRPO settings, bonus actuator, H* = 0.6 nats)."""

    label: ClassVar[str] = "plant 'LLMEntropy-v0'"
    actuator: str = option("entropy_coef", "What the action sets: entropy_coef, temperature or "
                           "clip_cov_ratio (this one trains with the clip-cov loss).",
                           choices=ACTUATORS)
    setpoint: float = option(0.6, "Target token-mean entropy H* (nats), the observed "
                             "reference.", gt=0)
    initial_value: float | None = option(None, "Actuator value of the reset update (None: the "
                                         "neutral value, 0 bonus / T = 1 / ratio 0).")
    task: str = option("sumpair", "Registered task: sumpair, sumpair-heldout, countdown-lite, "
                       "add-n.")
    updates: int = option(150, "Updates per episode after the reset update (then truncated).",
                          ge=1)
    n_layer: int = option(2, "Transformer blocks of the GPT-2 policy.", ge=1)
    n_embd: int = option(64, "Width of the policy.", ge=1)
    n_head: int = option(4, "Attention heads (divides n_embd).", ge=1)
    sft_steps: int = option(300, "Warm-start SFT steps (the trainer's default).", ge=0)
    sft_seed: int = option(0, "Seed of the warm start: every episode starts from this one "
                           "cached policy.", ge=0)
    sft_dir: str = option("runs/llm/sft", "Warm-start cache (shared with ctrlbench llm); empty: "
                          "a cache in the system temp folder.")
    prompts_per_step: int = option(16, "Prompts per rollout.", ge=1)
    group_size: int = option(8, "Samples per prompt (G).", ge=1)
    lr: float = option(1e-3, "AdamW learning rate (the collapse-prone setting).", gt=0)
    minibatches: int = option(2, "Optimizer steps per update (>= 2 lets ratios move off 1).",
                              ge=1)
    filter: str = option("none", "Entropy filter of entropy_filtered: none, ema, kalman "
                         "(llm_rl.filters).")
    alpha: float = option(0.3, "ema: weight of the newest reading.", gt=0, le=1)
    model_a: float = option(1.0, "Entropy model H+ = a H + b u + c per update: a (model() and "
                            "the kalman filter).", gt=0)
    model_b: float = option(0.0, "Entropy model: b, nats per actuator unit per update.")
    model_c: float = option(0.0, "Entropy model: c, drift in nats per update.")
    q: float = option(1e-3, "kalman: process-noise variance (nats^2 per update).", ge=0)
    r: float = option(1e-2, "kalman: variance of one entropy reading (nats^2).", gt=0)
    eval_every: int = option(10, "Held-out pass@k evaluation period in updates (info).", ge=1)
    eval_size: int = option(32, "Held-out problems.", ge=1)
    pass_k: int = option(8, "Samples per held-out problem.", ge=1)
    device: str = option("cpu", "Torch device: cpu, cuda, cuda:<index> or mps.")
    out_dir: str = option("", "Keep each episode's run (metrics.jsonl, config.json) in "
                          "<out_dir>/episode-<n>; empty: a temporary folder, removed.")

    def __post_init__(self) -> None:
        super().__post_init__()
        problem = device_problem(self.device)
        if problem is not None:
            raise OptionError(f"{self.label}.device = {self.device!r} is not a device; valid: "
                              f"{problem}")
        if self.task not in TASKS:
            raise OptionError(f"{self.label}.task = {self.task!r} is not a registered task; "
                              f"valid: {', '.join(sorted(TASKS))}")
        top = _vocab_entropy()
        if self.setpoint > top:
            raise OptionError(f"{self.label}.setpoint = {self.setpoint!r} is unreachable; valid: "
                              f"> 0 and <= ln(vocab size) = {top:.6f} nats")
        low, high = actuator_bounds(self.actuator)
        if self.initial_value is not None and not low <= self.initial_value <= high:
            raise OptionError(f"{self.label}.initial_value = {self.initial_value!r} is out of "
                              f"range; valid: None or {low:g} .. {high:g} (actuator "
                              f"{self.actuator!r})")
        self.sensor_config()  # the filter's own checks (choices, settings without effect)

    def sensor_config(self) -> SensorConfig:
        """The :class:`~llm_rl.filters.SensorConfig` of these options (the model for kalman)."""
        values: dict[str, Any] = {"filter": self.filter, "alpha": self.alpha, "q": self.q,
                                  "r": self.r}  # a setting the filter does not read is an error
        if self.filter == "kalman":  # model() reads the model either way
            values.update(a=self.model_a, b=self.model_b, c=self.model_c)
        try:
            return SensorConfig(**values)
        except OptionError as exc:
            raise OptionError(f"{self.label}: {exc}") from None


def entropy_model(actuator: str, a: float, b: float, c: float, top: float) -> PlantModel:
    """The first-order entropy model ``H_{k+1} = a H_k + b u_k + c`` (per update) as the
    continuous-time :class:`~ctrlbench.model.PlantModel` whose zero-order-hold discretisation
    over ``dt = 1`` is exactly it: ``dH/dt = lam H + beta u + gamma`` with ``lam = ln a``,
    ``beta = b lam / (a - 1)``, ``gamma = c lam / (a - 1)`` (``beta = b``, ``gamma = c`` at
    ``a = 1``). State and output ``entropy`` (nats, in ``[0, top]``), input the actuator.
    """
    low, high = actuator_bounds(actuator)
    return PlantModel(
        MODEL_NAME, (SignalSpec("entropy", "nat", 0.0, top),),
        (SignalSpec(actuator, _UNITS[actuator], low, high),),
        (SignalSpec("entropy", "nat", 0.0, top),), {"a": a, "b": b, "c": c}, _entropy_dynamics,
        meta={"form": "H_{k+1} = a H_k + b u_k + c per GRPO update (dt = 1)",
              "source": "nominal (a = 1, b = c = 0: a random walk) until identified "
                        "(llm_rl.sysid)"})


def _entropy_dynamics(x: Any, u: Any, p: Any, ops: Any) -> list[Any]:
    a = float(p["a"])
    scale = 1.0 if abs(a - 1.0) < 1e-12 else math.log(a) / (a - 1.0)
    return [math.log(a) * x[0] + scale * (p["b"] * u[0] + p["c"])]


class LLMEntropy(Plant):
    """Token-mean policy entropy of GRPO fine-tuning of a tiny LM; one step = one update.

    Each episode starts a new run (:class:`~llm_rl.trainer.GRPOTrainer`) from the cached SFT
    warm start (``sft_seed``: the same policy every episode) with a run seed drawn from
    ``np_random``, so ``reset(seed=s)`` twice gives identical trajectories on CPU. The reset
    itself does one update at the actuator's ``initial_value``: each observation is the reading
    of one update, one update apart.

    ## Observation (``Box`` of 5)

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``entropy`` | nat | [0, ln V] | token-mean entropy of the update's rollout (raw) |
    | 1 | ``entropy_filtered`` | nat | [0, ln V] | the sensor filter's estimate (clipped) |
    | 2 | ``reward_mean`` | 1 | [0, 1] | mean verified reward of the rollout |
    | 3 | ``cov_mean`` | nat | (-inf, inf) | token-mean Cov(log pi, A) of the rollout |
    | 4 | ``entropy_ref`` | nat | [0, ln V] | the set-point H* (``tracks="entropy"``) |

    ``V`` is the char vocabulary (23 tokens, ln V = 3.135). The rollout of update ``k`` is
    sampled from the policy before the update, at the step's temperature: with the
    ``temperature`` actuator the reading depends on the action at once, with the others from
    the next step on. ``entropy_filtered`` is what an entropy controller of the trainer reads
    (``filter``: none, ema or kalman on the model ``model_a, model_b, model_c``).

    ## Action (``Box`` of 1)

    | # | signal | unit | bounds | meaning |
    |---|---|---|---|---|
    | 0 | ``entropy_coef`` / ``temperature`` / ``clip_cov_ratio`` | 1 | see below | the actuator |

    Bounds: bonus [0, 1], temperature [1e-3, 1e3], Clip-Cov ratio [0, 1]
    (:func:`actuator_bounds`). NaN or an out-of-range value raises
    :class:`~ctrlbench.plant.ActionError` naming it, before any update.

    ## Reward
    ``-|H - H*| / H*`` of the raw entropy: the relative tracking error the issue's goal is set
    on (ctrlbench's IAE and friends use ``entropy_ref - entropy``).

    ## Episode end
    Never terminates; truncated after ``updates`` updates (plus the reset update). A non-finite
    loss or weights raise :class:`~llm_rl.validation.NonFiniteLossError`.

    ## Info
    The trainer's metrics row of the update (``pass@1``/``pass@k`` every ``eval_every`` updates,
    clip fractions, KL to the initial policy, actuator, ...).

    ## Arguments
    :class:`LLMEntropyOptions` (``make_plant("LLMEntropy-v0", actuator="temperature")``).

    ## Version history
    v0: first version (issue 13).
    """

    #: The temperature spans [1e-3, 1e3]: the default relative tolerance (1e-6 of 1e3) would
    #: let T = 0 through (clipped); 1e-9 keeps it to 1e-6 of the bound.
    action_tolerance = 1e-9

    def __init__(self, **options: Any) -> None:
        self.options = LLMEntropyOptions.build(options, what="plant 'LLMEntropy-v0'")
        o = self.options
        self.dt = 1.0
        self._top = _vocab_entropy()
        low, high = actuator_bounds(o.actuator)
        self._initial = NEUTRAL[o.actuator] if o.initial_value is None else o.initial_value
        h = ("nat", 0.0, self._top)
        self.set_signals(
            (SignalSpec("entropy", *h, "token-mean entropy of the update's rollout"),
             SignalSpec("entropy_filtered", *h, "filtered entropy (the controller's reading)"),
             SignalSpec("reward_mean", "1", 0.0, 1.0, "mean verified reward of the rollout"),
             SignalSpec("cov_mean", "nat", -np.inf, np.inf, "token-mean Cov(log pi, A)"),
             SignalSpec("entropy_ref", *h, "entropy set-point H*", tracks="entropy")),
            (SignalSpec(o.actuator, _UNITS[o.actuator], low, high, _MEANING[o.actuator]),))
        self._model = entropy_model(o.actuator, o.model_a, o.model_b, o.model_c, self._top)
        self._trainer: Any = None
        self._actuator: ActionActuator | None = None
        self._init_path: str | None = None
        self._policy: tuple[Any, Any] | None = None  # the warm start, loaded once
        self._episode = 0
        if o.out_dir:
            self._root = Path(o.out_dir)
            self._cleanup: Any = None
        else:
            self._root = Path(tempfile.mkdtemp(prefix="ctrlbench-llm-plant-"))
            self._cleanup = weakref.finalize(self, shutil.rmtree, str(self._root), True)

    def model(self) -> PlantModel:
        """The first-order entropy model (:func:`entropy_model`) with ``model_a/b/c``."""
        return self._model

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Obs, dict[str, Any]]:
        """Start a new run from the warm start and do its first update at ``initial_value``."""
        super().reset(seed=seed, options=options)
        run_seed = int(self.np_random.integers(2**31))
        previous = self._trainer
        self._trainer = None
        if previous is not None and self._cleanup is not None:  # a temporary run: drop it
            shutil.rmtree(previous.out, ignore_errors=True)
        self._episode += 1
        self._trainer, self._actuator = self._start(run_seed)
        metrics = self._trainer.advance()
        return self._observe(metrics), _info(metrics)

    def _start(self, seed: int) -> tuple[Any, ActionActuator]:
        from llm_rl.config import SFTConfig, TrainConfig
        from llm_rl.entropy_control import ControlConfig
        from llm_rl.losses import LossConfig
        from llm_rl.policy import PolicySpec, load_policy
        from llm_rl.sft import warm_start
        from llm_rl.trainer import GRPOTrainer

        o = self.options
        sft_dir = o.sft_dir or str(Path(tempfile.gettempdir())
                                   / f"ctrlbench-llm-sft-{getpass.getuser()}")
        if self._init_path is None:
            spec = PolicySpec(n_layer=o.n_layer, n_embd=o.n_embd, n_head=o.n_head)
            self._init_path = str(warm_start(o.task, spec, SFTConfig(steps=o.sft_steps), sft_dir,
                                             seed=o.sft_seed, device=o.device))
        if self._policy is None:
            self._policy = load_policy(self._init_path, device=o.device)
        control = ControlConfig(name="constant", actuator=o.actuator, setpoint=o.setpoint,
                                options={"value": self._initial})
        loss = LossConfig(name="clip-cov" if o.actuator == "clip_cov_ratio" else "grpo")
        cfg = TrainConfig(
            task=o.task, init=self._init_path, sft_dir=sft_dir, steps=o.updates + 1,
            prompts_per_step=o.prompts_per_step, group_size=o.group_size, lr=o.lr,
            minibatches=o.minibatches, loss=loss, control=control,
            sensor=o.sensor_config(), eval_every=o.eval_every, eval_size=o.eval_size,
            pass_k=o.pass_k, checkpoint_every=o.updates + 1, seed=seed, device=o.device,
            out_dir=str(self._root / f"episode-{self._episode}"), tensorboard=False)
        actuator = ActionActuator(control)
        model, tok = self._policy
        trainer = GRPOTrainer(cfg, overwrite=True, controller=actuator,
                              policy=(copy.deepcopy(model), tok))
        return trainer, actuator

    def _step(self, action: NDArray[np.float64]
              ) -> tuple[Obs, SupportsFloat, bool, bool, dict[str, Any]]:
        if self._trainer is None or self._actuator is None:
            raise RuntimeError("LLMEntropy: call reset() before step()")
        self._actuator.value = float(action[0])
        metrics = self._trainer.advance()
        obs = self._observe(metrics)
        truncated = self._trainer.step >= self._trainer.cfg.steps
        return obs, self._reward(obs), False, truncated, _info(metrics)

    def _observe(self, m: dict[str, Any]) -> Obs:
        h_f = min(max(float(m["entropy_filtered"]), 0.0), self._top)
        h = min(max(float(m["entropy"]), 0.0), self._top)
        return np.array([h, h_f, float(m["reward"]), float(m["cov_mean"]),
                         self.options.setpoint], dtype=np.float64)

    def _reward(self, obs: Obs) -> float:
        h_star = self.options.setpoint
        return -abs(float(obs[0]) - h_star) / h_star

    def close(self) -> None:
        """Remove the temporary run folder (a given ``out_dir`` is kept)."""
        self._trainer = None
        if self._cleanup is not None:
            self._cleanup()
        super().close()


def _info(metrics: dict[str, Any]) -> dict[str, Any]:
    """The update's metrics row without its wall time (an info must repeat with the seed)."""
    return {k: v for k, v in metrics.items() if k != "time_s"}


class ActionActuator(EntropyController):
    """The plant's actuator as the trainer's entropy controller: ``value`` is set by the plant's
    action before each update; a measurement leaves it unchanged (not in
    :data:`~llm_rl.entropy_control.ENTROPY_CONTROLLERS`: it exists for the plant view only)."""

    def _update(self, entropy: float) -> float:
        return self.value


@dataclass(frozen=True)
class EntropyPIOptions(Options):
    """Options of the LLMEntropy PI design (``ctrlbench run LLMEntropy-v0 pid --set kp=...``)."""

    kp: float | None = option(None, "Proportional gain (actuator units per nat); None: the "
                              "actuator's default (bonus 1.0, temperature 1.0, ratio 0.5).",
                              ge=0)
    ki: float | None = option(None, "Integral gain (per nat per update); None: the actuator's "
                              "default (bonus 0.1, temperature 0.1, ratio 0.1).", ge=0)
    kd: float = option(0.0, "Derivative gain (on the measurement).", ge=0)
    measurement: str = option("entropy_filtered", "Observed signal the PI reads: "
                              "entropy_filtered or entropy (raw).",
                              choices=("entropy_filtered", "entropy"))
    u0: float | None = option(None, "Bumpless start value; None: the actuator's neutral "
                              "value (0 bonus, T = 1, ratio 0).")


#: Default PI gains per actuator: the bonus PI of the collapse study (kp 1.0, ki 0.1, tuned on
#: seed 1, studies/README.md) for the bonus and the temperature, kp 0.5 / ki 0.1 for the Clip-Cov
#: ratio. Spot check (2 x 64 on sumpair, 8 x 8 samples, H* = 0.8, 60 updates, seed 1; mean
#: |H - H*| / H* over the second half): bonus 0.103, temperature 0.200 (open loop 0.284),
#: Clip-Cov ratio 0.093 (ratio 0: 0.146; kp 0.05 / ki 0.005: 0.148). A temperature gain of 2
#: oscillates between the limits: the reading responds to the temperature at once.
_PI_GAINS = {"entropy_coef": (1.0, 0.1), "temperature": (1.0, 0.1),
             "clip_cov_ratio": (0.5, 0.1)}


class EntropyPI(FeedbackController):
    """PI(D) from the entropy error ``H* - H`` to the actuator, bumpless from ``u0``.

    Parameters
    ----------
    dt:
        Control period (one update).
    measured, reference:
        Observation positions of the measured entropy and of its set-point.
    pid:
        The :class:`controllers.pid.PID` core (gains, limits, anti-windup).
    u0:
        Output of the first step at zero error (and after :meth:`reset`).
    """

    def __init__(self, dt: float, measured: int, reference: int, pid: Any, u0: float) -> None:
        super().__init__(dt)
        self.measured, self.reference, self.pid, self.u0 = measured, reference, pid, u0
        self.reset()

    def reset(self) -> None:
        """Integrator at ``u0`` (bumpless), derivative filter cleared."""
        self.pid.reset(u0=self.u0)

    def compute(self, observation: NDArray[np.float64]) -> NDArray[np.float64]:
        """One PI step on ``observation``."""
        y, r = float(observation[self.measured]), float(observation[self.reference])
        return np.array([float(self.pid.update(r - y, measurement=y))])


def design_entropy_pi(plant: Any, model: PlantModel, options: EntropyPIOptions) -> EntropyPI:
    """The PID design of model :data:`MODEL_NAME`: a PI with per-actuator default gains.

    Not a model-based rule (the nominal model is a random walk until identified): the gains are
    the entropy-bonus PI the trainer's ``pid`` controller defaults to, which held the entropy
    closest to H* in the collapse study, adapted per actuator (:data:`_PI_GAINS`). The output is
    limited to the action bounds with back-calculation anti-windup.
    """
    from controllers.pid import PID

    obs, act = signals_of(plant)
    name = act[0].name
    kp0, ki0 = _PI_GAINS.get(name, _PI_GAINS["entropy_coef"])
    kp = kp0 if options.kp is None else options.kp
    ki = ki0 if options.ki is None else options.ki
    dt = plant_dt(plant)
    pid = PID(kp, ki, options.kd, dt=dt, u_min=act[0].low, u_max=act[0].high)
    u0 = NEUTRAL.get(name, 0.0) if options.u0 is None else options.u0
    return EntropyPI(dt, index_of(obs, options.measurement), reference_index(obs, "entropy"),
                     pid, u0)
