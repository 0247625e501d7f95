"""The one GRPO loop: rollout, score, advantages, minibatched clipped updates, control, logging.

Each step: sample ``prompts_per_step`` problems x ``group_size`` answers at the actuated
temperature, verify them, compute group advantages, optionally splice AEPO's extra samples and
drop zero-variance groups (DAPO dynamic sampling), recompute old and reference log-probs, run
``epochs x minibatches`` optimizer steps of the registered loss, then let the entropy controller
read the measured entropy and set the actuator for the next step. Metrics go to
``metrics.jsonl`` (one line per step) and TensorBoard; checkpoints are atomic and include every
RNG state, so a resumed run reproduces the uninterrupted one exactly on CPU.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ctrlbench.io import atomic_write_bytes
from llm_rl.batch import concat_rollouts, generate, select_rows, token_scores
from llm_rl.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from llm_rl.config import TrainConfig, config_from_dict
from llm_rl.entropy_control import EntropyController, make_entropy_controller
from llm_rl.losses import ClipCovOptions, LossInputs, get_loss, group_advantages, k3_kl
from llm_rl.metrics import covariance_stats, distinct_correct, fit_rh_law, pass_at_k
from llm_rl.policy import load_policy, save_policy
from llm_rl.rollout import Rollout
from llm_rl.sft import warm_start
from llm_rl.tasks import Problem, check_tokenizer, make_task

__all__ = ["GRPOTrainer", "NonFiniteLossError"]

#: Config fields allowed to differ between a checkpoint and the run resuming it.
_RESUMABLE_CHANGES = {"steps", "tensorboard", "device"}


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


class NonFiniteLossError(RuntimeError):
    """The loss or gradient went NaN/inf; raised before the optimizer step touches the weights."""


class GRPOTrainer:
    """GRPO/DAPO training of a causal LM on a verifiable task with an entropy controller.

    Parameters
    ----------
    config:
        The run's :class:`~llm_rl.config.TrainConfig`.
    resume:
        Continue from ``<out_dir>/checkpoint.pt`` (metrics after it are dropped from the log).
    progress:
        Show a transient progress bar on stderr while the SFT warm start trains (the CLI does).
    """

    def __init__(self, config: TrainConfig, *, resume: bool = False,
                 progress: bool = False) -> None:
        cfg = config
        self.cfg = cfg
        # Validate names before any expensive work (the configs checked their own options).
        self.task = make_task(cfg.task)
        self.loss_fn = get_loss(cfg.loss.name)
        self.controller = make_entropy_controller(cfg.control)
        _check_actuator(cfg, self.controller)
        self.out = Path(cfg.out_dir)
        self.metrics_path = self.out / "metrics.jsonl"
        self.ckpt_path = self.out / "checkpoint.pt"
        init = cfg.init or str(
            warm_start(cfg.task, cfg.policy, cfg.sft, cfg.sft_dir, seed=cfg.seed, device=cfg.device,
                       progress=progress)
        )
        self.model, self.tok = load_policy(init, device=cfg.device)
        check_tokenizer(self.task, self.tok)
        self.ref = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr)
        torch.manual_seed(cfg.seed)
        self.rng = random.Random(cfg.seed)
        self.sample_gen = torch.Generator(device=cfg.device).manual_seed(cfg.seed)
        self.update_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.heldout = self.task.heldout(cfg.eval_size, cfg.seed)
        self._heldout_prompts = {p.prompt for p in self.heldout}
        self.step = 0
        self.eval_points: list[tuple[float, float]] = []
        self.last_eval: dict[str, float | None] = {"pass@1": None, f"pass@{cfg.pass_k}": None}
        self.history: list[dict[str, Any]] = []
        if resume:
            self._load()
        else:
            self.out.mkdir(parents=True, exist_ok=True)
            self.metrics_path.write_text("")
            (self.out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))

    # ---------------------------------------------------------------- the loop
    def train(
        self, steps: int | None = None, on_step: Callable[[dict[str, Any]], None] | None = None
    ) -> list[dict[str, Any]]:
        """Run until ``steps`` (default ``config.steps``) steps are done; returns new metrics."""
        end = self.cfg.steps if steps is None else min(steps, self.cfg.steps)
        writer = self._tensorboard()
        new: list[dict[str, Any]] = []
        try:
            while self.step < end:
                metrics = self.train_step()
                self.step += 1
                new.append(metrics)
                self.history.append(metrics)
                with open(self.metrics_path, "a") as f:
                    f.write(json.dumps(metrics) + "\n")
                if writer is not None:
                    for k, v in metrics.items():
                        if isinstance(v, int | float) and k != "step":
                            writer.add_scalar(k, v, metrics["step"])
                if self.step % self.cfg.checkpoint_every == 0 or self.step == end:
                    self.save()
                if on_step is not None:
                    on_step(metrics)
        finally:
            if writer is not None:
                writer.close()
        if self.step == self.cfg.steps:
            save_policy(self.model, self.tok, self.out / "policy")
        return new

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
                                        generator=self.sample_gen, fast=cfg.fast_rollout)
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
            _, old_logp = token_scores(self.model, ro)
            _, ref_logp = token_scores(self.ref, ro)
        vmask = ro.mask.bool()
        m["kl_init"] = float(k3_kl(old_logp[vmask], ref_logp[vmask]).mean())
        # UPDATES
        m.update(self._update(ro, adv, keep, old_logp, ref_logp, coef, rho))
        # CONTROL + EVALUATION
        ctrl.update(entropy)
        m["evaluated"] = step % cfg.eval_every == 0 or step == cfg.steps - 1
        if m["evaluated"]:
            self.last_eval = self.evaluate()
            self.eval_points.append((entropy, float(self.last_eval["pass@1"] or 0.0)))
        m.update(self.last_eval)
        hs, rs = zip(*self.eval_points) if self.eval_points else ((), ())
        m.update(fit_rh_law(hs, rs))
        m["time_s"] = time.perf_counter() - t0
        return m

    def _update(self, ro: Rollout, adv: torch.Tensor, keep: torch.Tensor, old_logp: torch.Tensor,
                ref_logp: torch.Tensor, coef: float, rho: float | None) -> dict[str, float]:
        cfg = self.cfg
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
                ent, logp = token_scores(self.model, sub)
                vm = sub.mask.bool()
                seq_id = torch.arange(len(mb), device=vm.device)[:, None].expand_as(vm)[vm]
                inp = LossInputs(logp=logp[vm], old_logp=old_logp[mb][vm],
                                 adv=adv[mb][:, None].expand_as(vm)[vm], seq_id=seq_id,
                                 entropy=ent[vm], ref_logp=ref_logp[mb][vm], entropy_coef=coef,
                                 clip_cov_ratio=rho, generator=self.update_gen)
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

    def _guard(self, value: torch.Tensor, what: str) -> None:
        if not bool(torch.isfinite(value).all()):
            last = f"{self.ckpt_path} (step {self._ckpt_step()})" if self.ckpt_path.exists() \
                else "none written yet"
            raise NonFiniteLossError(
                f"non-finite {what} ({float(value.detach())}) at step {self.step}: stopped "
                f"before the optimizer step; last good checkpoint: {last}"
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
        raise RuntimeError(f"task {self.task.name!r}: held-out set covers the prompt space")

    # ---------------------------------------------------------------- checkpoints
    def save(self) -> Path:
        """Atomically write ``checkpoint.pt`` (weights, optimizer, controller, every RNG)."""
        state = {
            "step": self.step,
            "config": dataclasses.asdict(self.cfg),
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "controller": self.controller.state_dict(),
            "rng": {"task": self.rng.getstate(), "sample": self.sample_gen.get_state(),
                    "update": self.update_gen.get_state(), "global": capture_rng()},
            "eval_points": self.eval_points,
            "last_eval": self.last_eval,
        }
        return save_checkpoint(self.ckpt_path, state)

    def _ckpt_step(self) -> int:
        return int(load_checkpoint(self.ckpt_path)["step"])

    def _load(self) -> None:
        state = load_checkpoint(self.ckpt_path)
        saved = config_from_dict(state["config"])
        diff = [f.name for f in dataclasses.fields(saved)
                if f.name not in _RESUMABLE_CHANGES
                and getattr(saved, f.name) != getattr(self.cfg, f.name)]
        if diff:
            raise ValueError(f"cannot resume {self.ckpt_path}: config differs in {diff}")
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.controller.load_state_dict(state["controller"])
        self.rng.setstate(state["rng"]["task"])
        self.sample_gen.set_state(state["rng"]["sample"])
        self.update_gen.set_state(state["rng"]["update"])
        restore_rng(state["rng"]["global"])
        self.eval_points = [tuple(p) for p in state["eval_points"]]  # type: ignore[misc]
        self.last_eval = state["last_eval"]
        self.step = int(state["step"])
        # The log is appended line by line: a kill can leave a torn last line, and steps after
        # the checkpoint are redone. Keep the parsable lines before it; rewrite atomically.
        lines = self.metrics_path.read_text().splitlines() if self.metrics_path.exists() else []
        self.history = []
        for ln in lines:
            try:
                row = json.loads(ln)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and isinstance(row.get("step"), int) \
                    and row["step"] < self.step:
                self.history.append(row)
        text = "".join(json.dumps(row) + "\n" for row in self.history)
        atomic_write_bytes(self.metrics_path, text.encode())

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

