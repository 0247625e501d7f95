"""The one GRPO loop: rollout, score, advantages, minibatched clipped updates, control, logging.

Each step: sample ``prompts_per_step`` problems x ``group_size`` answers at the actuated
temperature, verify them, compute group advantages, optionally splice AEPO's extra samples and
drop zero-variance groups (DAPO dynamic sampling), recompute old and reference log-probs, run
``epochs x minibatches`` optimizer steps of the registered loss, then let the entropy controller
read the entropy (through the sensor filter of ``config.sensor``, :mod:`llm_rl.filters`) and
set the actuator for the next step. Metrics go to
``metrics.jsonl`` (one line per step) and TensorBoard; checkpoints are atomic and include every
RNG state, so a resumed run reproduces the uninterrupted one exactly on CPU.

The output folder holds one run (:mod:`llm_rl.rundir`): a new run refuses a folder that holds
one unless ``overwrite`` moves it aside, ``resume`` needs its checkpoint, a lock keeps a second
writer out, and a damaged checkpoint or log is quarantined, never used. SIGINT / SIGTERM stop
the loop at the next step boundary with a checkpoint of that step (:mod:`llm_rl.stopping`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ctrlbench.io import atomic_write_bytes
from ctrlbench.runfolder import RunFolderError, lock_folder
from llm_rl.batch import concat_rollouts, generate, select_rows, token_log_softmax, token_scores
from llm_rl.checkpoint import capture_rng, restore_rng, save_checkpoint
from llm_rl.config import TrainConfig, check_policy_fits, config_from_dict
from llm_rl.entropy_control import EntropyController, make_entropy_controller
from llm_rl.filters import make_filter
from llm_rl.losses import (
    ClipCovOptions,
    LossInputs,
    get_loss,
    group_advantages,
    k3_kl,
    loss_needs,
)
from llm_rl.metrics import covariance_stats, distinct_correct, fit_rh_law, pass_at_k
from llm_rl.policy import PolicyLoadError, load_policy, save_policy
from llm_rl.rollout import Rollout
from llm_rl.rundir import claim_run, note, quarantine_damaged, read_checkpoint, read_metrics
from llm_rl.sft import warm_start
from llm_rl.stopping import GracefulStop
from llm_rl.tasks import Problem, Task, check_tokenizer, make_task
from llm_rl.validation import NonFiniteLossError, check_device

__all__ = ["GRPOTrainer", "NonFiniteLossError", "preflight"]

#: Config fields allowed to differ between a checkpoint and the run resuming it (``out_dir`` is
#: where the checkpoint was found, however it is spelled).
_RESUMABLE_CHANGES = {"steps", "tensorboard", "device", "out_dir"}
#: Path fields compared by the folder they name, not by their spelling.
_PATH_FIELDS = {"sft_dir", "init"}


def _same_path(a: str, b: str) -> bool:
    """Whether two path settings name one place (relative vs absolute, trailing slash, ``.``)."""
    if not a or not b:
        return a == b
    return os.path.normpath(os.path.abspath(a)) == os.path.normpath(os.path.abspath(b))


def _config_diff(saved: TrainConfig, cfg: TrainConfig) -> list[str]:
    """Fields of ``cfg`` a resume may not change from ``saved``."""
    diff = []
    for f in dataclasses.fields(saved):
        a, b = getattr(saved, f.name), getattr(cfg, f.name)
        if f.name in _RESUMABLE_CHANGES:
            continue
        if f.name in _PATH_FIELDS and _same_path(a, b):
            continue
        if a != b:
            diff.append(f"{f.name} ({a!r} in the checkpoint, {b!r} now)")
    return diff


def _check_actuator(cfg: TrainConfig, ctrl: EntropyController) -> None:
    """Reject actuator/loss/config combinations where the actuator or a setting has no effect."""
    if ctrl.actuator == "clip_cov_ratio":
        if cfg.loss.name != "clip-cov":
            raise ValueError(
                f"actuator 'clip_cov_ratio' has no effect with loss {cfg.loss.name!r} (only the "
                f"clip-cov loss reads it): use --loss.name clip-cov or another actuator"
            )
        ratio = cfg.loss.options.clip_cov_ratio
        if ratio != ClipCovOptions().clip_cov_ratio:
            raise ValueError(
                f"loss.clip_cov_ratio = {ratio} is ignored: the controller "
                f"drives the Clip-Cov ratio (its initial value is control.value)"
            )
    drives_main_t = ctrl.actuator == "temperature" and ctrl.extra_rollout() is None
    if drives_main_t and cfg.temperature != TrainConfig().temperature:
        raise ValueError(
            f"temperature = {cfg.temperature} is ignored: the controller drives the sampling "
            f"temperature (its initial value is control.value)"
        )


def preflight(cfg: TrainConfig) -> tuple[Task, Any, EntropyController]:
    """The checks of a run that need no run folder and no training, in the order a user meets
    them: device availability, registered names, actuator/loss combinations, the ``init``
    path. Returns the task, the loss function and the entropy controller."""
    check_device(cfg.device)
    task = make_task(cfg.task)
    loss_fn = get_loss(cfg.loss.name)
    controller = make_entropy_controller(cfg.control)
    _check_actuator(cfg, controller)
    if cfg.init and not (Path(cfg.init) / "config.json").is_file():
        raise FileNotFoundError(f"init = {cfg.init!r} is not a saved policy (no config.json)")
    return task, loss_fn, controller


class GRPOTrainer:
    """GRPO/DAPO training of a causal LM on a verifiable task with an entropy controller.

    Parameters
    ----------
    config:
        The run's :class:`~llm_rl.config.TrainConfig`.
    resume:
        Continue from ``<out_dir>/checkpoint.pt`` (metrics after it are dropped from the log).
    overwrite:
        Start a new run in ``out_dir`` even if it holds one: the old run is moved aside to
        ``<out_dir>.old-<time>`` (a :class:`~llm_rl.rundir.RunNote` warning says where).
    progress:
        Show a transient progress bar on stderr while the SFT warm start trains (the CLI does).
    controller:
        An entropy controller object to use instead of building ``config.control``'s (same
        actuator and set-point), e.g. the action-driven one of the ctrlbench plant view
        (:mod:`llm_rl.plant`).
    policy:
        The policy ``config.init`` names, already loaded (model, tokenizer), to train instead of
        loading it again (the plant view starts each episode from one copy in memory).

    Raises
    ------
    ctrlbench.runfolder.RunFolderError
        ``out_dir`` holds a run and neither ``resume`` nor ``overwrite`` was given; ``resume``
        without a checkpoint; another process is writing to ``out_dir`` (its pid is named); a
        damaged checkpoint or log (quarantined; the message says where and what to do).

    The folder is locked while the trainer sets up and while :meth:`train` runs. Messages for
    the user (an old run moved aside, a log that restarts) are
    :class:`~llm_rl.rundir.RunNote` warnings.
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False, overwrite: bool = False,
                 progress: bool = False, controller: EntropyController | None = None,
                 policy: tuple[Any, Any] | None = None) -> None:
        cfg = config
        self.cfg = cfg
        # Validate before any expensive work (the configs checked their own options).
        self.task, self.loss_fn, self.controller = preflight(cfg)
        if controller is not None:
            c = cfg.control
            if (controller.actuator, controller.setpoint) != (c.actuator, c.setpoint):
                raise ValueError(
                    f"the controller given drives {controller.actuator!r} to "
                    f"{controller.setpoint!r}, the config {c.actuator!r} to {c.setpoint!r}")
            _check_actuator(cfg, controller)
            self.controller = controller
        if policy is not None and not cfg.init:
            raise ValueError("a policy given to the trainer needs config.init (where it is from)")
        self._given_policy = policy
        self.out = Path(cfg.out_dir)
        self.metrics_path = self.out / "metrics.jsonl"
        self.ckpt_path = self.out / "checkpoint.pt"
        if resume and overwrite:
            raise RunFolderError("choose one of --resume and --overwrite, not both")
        if resume and not self.out.is_dir():
            claim_run(self.out, resume=True, overwrite=overwrite)  # refuses: nothing to resume
        with lock_folder(self.out, what="llm run"):
            aside = claim_run(self.out.absolute(), resume=resume, overwrite=overwrite)
            if aside is not None:
                note(f"moved the previous run in {cfg.out_dir} to {aside}")
            self._setup(resume, progress)

    def _setup(self, resume: bool, progress: bool) -> None:
        """Load the policy, then the checkpoint (``resume``) or start the log (a new run)."""
        cfg = self.cfg
        given, self._given_policy = self._given_policy, None
        self.model, self.tok = given if given is not None else self._load_policy(progress)
        check_tokenizer(self.task, self.tok)
        if cfg.init:  # a loaded policy: check what the config could not
            check_policy_fits(self.task, _max_positions(self.model), self.tok.vocab_size,
                              cfg.control.setpoint, where="init")
        self.ref = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        torch.manual_seed(cfg.seed)
        self.rng = random.Random(cfg.seed)
        self.sample_gen = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
        self.update_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.heldout = self.task.heldout(cfg.eval_size, cfg.seed)
        self._heldout_prompts = {p.prompt for p in self.heldout}
        self.needs = loss_needs(cfg.loss)
        self.loss_state: dict[str, float] = {}
        self.sensor = make_filter(cfg.sensor)
        self.step = 0
        self.eval_points: list[tuple[float, float]] = []
        self.last_eval: dict[str, float | None] = {"pass@1": None, f"pass@{cfg.pass_k}": None}
        self.history: list[dict[str, Any]] = []
        self._saved_step = -1
        if resume:
            self._load()
        else:
            self.metrics_path.write_text("")
        atomic_write_bytes(self.out / "config.json",
                           json.dumps(dataclasses.asdict(cfg), indent=1).encode())

    def _load_policy(self, progress: bool) -> tuple[Any, Any]:
        """The initial policy: ``init``, or the cached warm start (rebuilt once if damaged)."""
        cfg = self.cfg
        if cfg.init:
            return load_policy(cfg.init, device=cfg.device)
        path = warm_start(cfg.task, cfg.policy, cfg.sft, cfg.sft_dir, seed=cfg.seed,
                          device=cfg.device, progress=progress)
        try:
            return load_policy(path, device=cfg.device)
        except PolicyLoadError as exc:
            err = quarantine_damaged(path, path.parent, f"cannot be loaded ({exc})",
                                     "It was rebuilt.")
            note(str(err))
        path = warm_start(cfg.task, cfg.policy, cfg.sft, cfg.sft_dir, seed=cfg.seed,
                          device=cfg.device, progress=progress)
        return load_policy(path, device=cfg.device)

    @property
    def checkpoint_step(self) -> int | None:
        """The step of the run's latest checkpoint on disk (``None`` before the first)."""
        return self._saved_step if self._saved_step >= 0 else None

    # ---------------------------------------------------------------- the loop
    def train(
        self, steps: int | None = None, on_step: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Run until ``steps`` (default ``config.steps``) steps are done; returns new metrics."""
        end = self.cfg.steps if steps is None else min(steps, self.cfg.steps)
        new: list[dict[str, Any]] = []
        with lock_folder(self.out, what="llm run"), GracefulStop() as stop:
            writer = self._tensorboard()
            try:
                while self.step < end:
                    stop.raise_if_requested(self._save_once)
                    try:
                        metrics = self.train_step()
                    except NonFiniteLossError as exc:
                        raise self._located(exc) from None
                    with stop.critical():  # the log line and checkpoint are written whole
                        self._commit(metrics, writer, end)
                    new.append(metrics)
                    if on_step is not None:
                        on_step(metrics)
            finally:
                if writer is not None:
                    writer.close()
            if self.step == self.cfg.steps:
                with stop.critical():
                    save_policy(self.model, self.tok, self.out / "policy")
        return new

    def _commit(self, metrics: dict[str, Any], writer: Any, end: int) -> None:
        """Record a finished step: the log line, TensorBoard, and the checkpoint when due."""
        self.step += 1
        self.history.append(metrics)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(metrics) + "\n")
        if writer is not None:
            for k, v in metrics.items():
                if isinstance(v, int | float) and k != "step":
                    writer.add_scalar(k, v, metrics["step"])
        if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
            self.save()

    def _save_once(self) -> None:
        """Checkpoint the current step unless that is done already (on an interrupt)."""
        if self._saved_step != self.step:
            self.save()

    def advance(self) -> dict[str, Any]:
        """One step driven from outside :meth:`train` (the ctrlbench plant view):
        :meth:`train_step`, then its history entry, log line and (when due) checkpoint, as
        :meth:`train` records them.

        Raises
        ------
        ValueError
            The run has done its ``config.steps`` steps.
        NonFiniteLossError
            The loss, a gradient or the weights went NaN/inf (nothing of the step is recorded).
        """
        if self.step >= self.cfg.steps:
            raise ValueError(f"the run has done its steps = {self.cfg.steps} steps")
        try:
            metrics = self.train_step()
        except NonFiniteLossError as exc:
            raise self._located(exc) from None
        self._commit(metrics, None, self.cfg.steps)
        return metrics

    def train_step(self) -> dict[str, Any]:
        """One rollout and its updates; returns the step's metrics."""
        cfg, ctrl, step = self.cfg, self.controller, self.step
        t0 = time.perf_counter()
        actuator = ctrl.value
        coef = actuator if ctrl.actuator == "entropy_coef" else 0.0
        rho = actuator if ctrl.actuator == "clip_cov_ratio" else None
        # A temperature actuator drives the main rollout unless it is for extra samples (AEPO).
        drives_main_t = ctrl.actuator == "temperature" and ctrl.extra_rollout() is None
        main_t = actuator if drives_main_t else cfg.temperature
        # ROLLOUT + REWARD
        problems = [self._sample_problem() for _ in range(cfg.prompts_per_step)]
        ro, answers, correct = generate(self.model, self.tok, self.task, problems,
                                        group_size=cfg.group_size, temperature=main_t,
                                        generator=self.sample_gen, fast=cfg.fast_rollout,
                                        token_temperature=self._token_temperature())
        rewards = torch.tensor(correct, dtype=torch.float32, device=ro.tokens.device)
        adv = group_advantages(rewards, cfg.group_size, scale_by_std=cfg.loss.scale_adv_by_std)
        groups = rewards.view(-1, cfg.group_size)
        zero_var = (groups.max(1).values == groups.min(1).values)
        mask = ro.mask.bool()
        entropy = float(ro.entropy[mask].mean())
        tok_adv = adv[:, None].expand_as(mask)[mask]
        m: dict[str, Any] = {"step": step, "reward": float(rewards.mean()), "entropy": entropy,
                             **covariance_stats(ro.logprobs[mask], tok_adv),
                             "zero_var_groups": float(zero_var.float().mean()),
                             "distinct_correct": distinct_correct(answers, correct, cfg.group_size),
                             "response_len": float(ro.mask.sum(1).mean()),
                             "actuator": float(actuator), "actuator_name": ctrl.actuator,
                             "setpoint": ctrl.setpoint, "temperature": float(main_t)}
        keep = torch.ones(len(rewards), dtype=torch.bool, device=rewards.device)
        if cfg.dynamic_sampling:
            keep = ~zero_var.repeat_interleave(cfg.group_size)
        ro, adv, keep, m["spliced"] = self._splice_extra(problems, ro, adv, keep)
        # OLD / REFERENCE LOG-PROBS
        with torch.no_grad():
            old_ent, old_logp = token_scores(self.model, ro)
            _, ref_logp = token_scores(self.ref, ro)
            old_all = token_log_softmax(self.model, ro) if "old_logp_all" in self.needs else None
        vmask = ro.mask.bool()
        m["kl_init"] = float(k3_kl(old_logp[vmask], ref_logp[vmask]).mean())
        # UPDATES
        m.update(self._update(ro, adv, keep, (old_logp, old_ent, old_all), ref_logp, coef, rho))
        self._check_weights()
        # SENSOR FILTER + CONTROL + EVALUATION
        m["entropy_filtered"] = self.sensor.update(entropy, float(actuator))
        ctrl.update(m["entropy_filtered"])
        m["evaluated"] = step % cfg.eval_every == 0 or step == cfg.steps - 1
        if m["evaluated"]:
            self.last_eval = self.evaluate()
            self.eval_points.append((entropy, float(self.last_eval["pass@1"] or 0.0)))
        m.update(self.last_eval)
        hs, rs = zip(*self.eval_points) if self.eval_points else ((), ())
        m.update(fit_rh_law(hs, rs))
        m["time_s"] = time.perf_counter() - t0
        return m

    def _token_temperature(self) -> Any:
        """The loss's per-token sampling temperature (HAPO), or ``None``."""
        if "token_temperature" not in self.needs:
            return None
        return self.cfg.loss.options.token_temperature

    def _update(self, ro: Rollout, adv: torch.Tensor, keep: torch.Tensor,
                old: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None],
                ref_logp: torch.Tensor, coef: float, rho: float | None) -> dict[str, float]:
        cfg = self.cfg
        old_logp, old_ent, old_all = old
        full = "logp_all" in self.needs
        rows = torch.nonzero(keep).view(-1).cpu()
        sums: dict[str, float] = {}
        count = 0
        self.model.train()
        for _ in range(cfg.epochs):
            order = rows[torch.randperm(len(rows), generator=self.update_gen)]
            for mb in order.tensor_split(cfg.minibatches):
                if len(mb) == 0:
                    continue
                mb = mb.to(adv.device)
                sub = select_rows(ro, mb)
                logp_all = None
                if full:  # one forward gives the distribution and the per-token values
                    logp_all = token_log_softmax(self.model, sub)
                    ent = -(logp_all.exp() * logp_all).sum(-1)
                    logp = logp_all.gather(-1, sub.tokens[..., None].long()).squeeze(-1)
                else:
                    ent, logp = token_scores(self.model, sub)
                vm = sub.mask.bool()
                seq_id = torch.arange(len(mb), device=vm.device)[:, None].expand_as(vm)[vm]
                inp = LossInputs(logp=logp[vm], old_logp=old_logp[mb][vm],
                                 adv=adv[mb][:, None].expand_as(vm)[vm], seq_id=seq_id,
                                 entropy=ent[vm], ref_logp=ref_logp[mb][vm], entropy_coef=coef,
                                 clip_cov_ratio=rho, generator=self.update_gen,
                                 old_entropy=old_ent[mb][vm], tokens=sub.tokens[vm],
                                 logp_all=None if logp_all is None else logp_all[vm],
                                 old_logp_all=None if old_all is None else old_all[mb][vm],
                                 state=self.loss_state, progress=self.step / cfg.steps)
                loss, lm = self.loss_fn(inp, cfg.loss)
                self._guard(loss, "loss")
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self._guard(gnorm, "gradient norm")
                self.opt.step()
                lm["grad_norm"] = float(gnorm)
                for k, v in lm.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
        self.model.eval()
        out = {k: v / count for k, v in sums.items()} if count else {}
        out["updates"] = float(count)
        return out

    def _last_good(self) -> str:
        return f"{self.ckpt_path} (step {self._saved_step})" if self._saved_step >= 0 \
            else "none written yet"

    def _located(self, exc: NonFiniteLossError) -> NonFiniteLossError:
        """``exc`` with the step and the last good checkpoint (sampling errors lack them)."""
        if "last good checkpoint" in str(exc):
            return exc
        return NonFiniteLossError(f"{exc} at step {self.step} (lr = {self.cfg.lr} may be too "
                                  f"large); last good checkpoint: {self._last_good()}")

    def _guard(self, value: torch.Tensor, what: str) -> None:
        if not bool(torch.isfinite(value).all()):
            raise NonFiniteLossError(
                f"non-finite {what} ({float(value.detach())}) at step {self.step}: stopped "
                f"before the optimizer step; last good checkpoint: {self._last_good()}"
            )

    def _check_weights(self) -> None:
        """Stop before a step whose updates left NaN/inf weights is logged or checkpointed."""
        peak = torch.stack([p.detach().abs().amax() for p in self.model.parameters()])
        if not bool(torch.isfinite(peak).all()):
            raise NonFiniteLossError(
                f"non-finite weights after the updates of step {self.step} (lr = "
                f"{self.cfg.lr} may be too large): stopped before logging it; last good "
                f"checkpoint: {self._last_good()}"
            )

    def _splice_extra(
        self, problems: list[Problem], ro: Rollout, adv: torch.Tensor, keep: torch.Tensor
    ) -> tuple[Rollout, torch.Tensor, torch.Tensor, int]:
        """AEPO: extra samples at the controller's temperature; positive-advantage ones get A=1."""
        extra = self.controller.extra_rollout()
        if extra is None:
            return ro, adv, keep, 0
        g = self.cfg.group_size
        n = max(1, round(extra.fraction * len(problems)))
        chosen = self.rng.sample(problems, n)
        ero, _, ecorrect = generate(self.model, self.tok, self.task, chosen, group_size=g,
                                    temperature=extra.temperature, generator=self.sample_gen,
                                    fast=self.cfg.fast_rollout)
        eadv = group_advantages(torch.tensor(ecorrect, dtype=torch.float32), g)
        pos = torch.nonzero(eadv > 0).view(-1)[: extra.max_splice]
        if len(pos) == 0:
            return ro, adv, keep, 0
        ero = select_rows(ero, pos.to(ero.tokens.device))
        ro = concat_rollouts(ro, ero, self.tok.pad_id)
        adv = torch.cat([adv, torch.ones(len(pos), device=adv.device)])
        keep = torch.cat([keep, torch.ones(len(pos), dtype=torch.bool, device=keep.device)])
        return ro, adv, keep, len(pos)

    # ---------------------------------------------------------------- evaluation
    @torch.no_grad()
    def evaluate(self) -> dict[str, float | None]:
        """pass@1 and pass@k on the fixed held-out set (own RNG: training streams untouched)."""
        k = self.cfg.pass_k
        seed = self.cfg.seed * 100_003 + self.step
        gen = torch.Generator(device=self.cfg.device).manual_seed(seed)
        _, _, correct = generate(self.model, self.tok, self.task, self.heldout, group_size=k,
                                 temperature=1.0, generator=gen)
        per = [sum(correct[i : i + k]) for i in range(0, len(correct), k)]
        return {"pass@1": sum(c / k for c in per) / len(per),
                f"pass@{k}": sum(pass_at_k(k, c, k) for c in per) / len(per)}

    def _sample_problem(self) -> Problem:
        for _ in range(10_000):
            p = self.task.sample(self.rng)
            if not (self.task.exclude_heldout and p.prompt in self._heldout_prompts):
                return p
        raise ValueError(f"task {self.task.name!r}: the held-out set (eval_size = "
                         f"{self.cfg.eval_size}) leaves almost no prompt to train on")

    # ---------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Atomically write ``checkpoint.pt`` (weights, optimizer, controller, sensor filter,
        every RNG)."""
        state = {
            "step": self.step,
            "config": dataclasses.asdict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "controller": self.controller.state_dict(),
            "sensor": self.sensor.state_dict(),
            "rng": {"task": self.rng.getstate(), "sample": self.sample_gen.get_state(),
                    "update": self.update_gen.get_state(), "global": capture_rng()},
            "eval_points": self.eval_points,
            "last_eval": self.last_eval,
            "loss_state": dict(self.loss_state),
        }
        path = save_checkpoint(self.ckpt_path, state)
        self._saved_step = self.step
        return path

    def _load(self) -> None:
        """Restore the checkpoint and the log before it (damaged files are quarantined)."""
        root = self.out.absolute()
        state = read_checkpoint(self.ckpt_path, root)
        todo = ("The run cannot continue from it: put back a good checkpoint.pt and pass "
                "--resume again, or start a new run with --overwrite (the old one is moved "
                "aside).")
        try:
            saved = config_from_dict(state["config"])
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise quarantine_damaged(self.ckpt_path, root, f"holds an invalid config ({exc})",
                                     todo) from None
        diff = _config_diff(saved, self.cfg)
        if diff:
            raise ValueError(f"cannot resume {self.ckpt_path}: the config differs in "
                             f"{'; '.join(diff)} (only steps, device and tensorboard may change)")
        try:
            self._restore(state)
        except Exception as exc:  # the tensors or states do not fit this run's objects
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise quarantine_damaged(self.ckpt_path, root, f"does not fit this run ({reason})",
                                     todo) from None
        self._saved_step = self.step
        if self.step > self.cfg.steps:
            raise ValueError(f"steps = {self.cfg.steps} is below the step of the run in "
                             f"{self.cfg.out_dir} ({self.step}); valid: steps >= {self.step}")
        # The log is appended line by line: a kill can leave a torn last line, and steps after
        # the checkpoint are redone. Keep the rows before it; rewrite atomically.
        self.history, remark = read_metrics(self.metrics_path, root, self.step)
        if remark:
            note(remark)
        text = "".join(json.dumps(row) + "\n" for row in self.history)
        atomic_write_bytes(self.metrics_path, text.encode())

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        if "sensor" in state:  # checkpoints from before the sensor filters had none (= raw)
            self.sensor.load_state_dict(state["sensor"])
        self.rng.setstate(_as_tuple(state["rng"]["task"]))
        self.sample_gen.set_state(state["rng"]["sample"])
        self.update_gen.set_state(state["rng"]["update"])
        restore_rng(state["rng"]["global"])
        self.eval_points = [(float(h), float(r)) for h, r in state["eval_points"]]
        self.last_eval = dict(state["last_eval"])
        self.loss_state = {str(k): float(v) for k, v in state.get("loss_state", {}).items()}
        self.step = int(state["step"])

    def _tensorboard(self) -> Any:
        if not self.cfg.tensorboard:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is an optional extra
            return None
        # purge_step: events at or after the resume step (written before a kill) are dropped.
        purge = self.step if self.step > 0 else None
        return SummaryWriter(str(self.out / "tensorboard"), purge_step=purge)



def _max_positions(model: Any) -> int:
    """Positions a loaded policy supports (GPT-2 ``n_positions``, Llama
    ``max_position_embeddings``)."""
    conf = model.config
    return int(getattr(conf, "n_positions", None) or conf.max_position_embeddings)


def _as_tuple(value: Any) -> Any:
    """Lists back to tuples, recursively (``random.Random.setstate`` wants tuples)."""
    return tuple(_as_tuple(v) for v in value) if isinstance(value, list | tuple) else value
