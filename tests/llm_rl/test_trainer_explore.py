"""The exploration losses inside the GRPO loop: inputs they declare, touched tokens, resume."""

import json

import pytest
import torch

from llm_rl.batch import generate, token_scores
from llm_rl.config import TrainConfig
from llm_rl.losses import LossConfig
from llm_rl.losses_explore import HAPOOptions
from llm_rl.policy import load_policy
from llm_rl.tasks import make_task
from llm_rl.trainer import GRPOTrainer


def _cfg(sft_dir, out, **kw):
    base = dict(sft_dir=sft_dir, out_dir=str(out), tensorboard=False, eval_every=2, steps=3,
                prompts_per_step=4, group_size=4, eval_size=4)
    base.update(kw)
    return TrainConfig(**base)


@pytest.mark.parametrize("name", ["lp-reg", "steer", "siren", "epo", "hapo"])
def test_exploration_losses_train_and_report_touched_tokens(sft_dir, tmp_path, name):
    # lp-reg with rho 1: every negative-advantage token is a candidate, so some are touched
    opts = {"lp_reg_rho": 1.0} if name == "lp-reg" else {}
    trainer = GRPOTrainer(_cfg(sft_dir, tmp_path, loss=LossConfig(name=name, options=opts)))
    hist = trainer.train()
    assert len(hist) == 3 and all(0.0 <= m["touched_frac"] <= 1.0 for m in hist)
    if name != "epo":  # EPO touches a batch only when its entropy leaves the band
        assert max(m["touched_frac"] for m in hist) > 0
    if name == "siren":
        assert trainer.loss_state["siren_anchor"] == pytest.approx(hist[0]["siren_anchor"])
    if name == "epo":
        assert trainer.loss_state["epo_count"] >= 1


def test_hapo_rollout_records_per_token_temperatures_that_rescoring_uses(sft_dir, tmp_path):
    GRPOTrainer(_cfg(sft_dir, tmp_path / "run", steps=1)).train()
    model, tok = load_policy(tmp_path / "run" / "policy")
    task = make_task("sumpair")
    problems = [task.sample(__import__("random").Random(i)) for i in range(4)]
    gen = torch.Generator().manual_seed(0)
    ro, _, _ = generate(model, tok, task, problems, group_size=4, temperature=1.0,
                        generator=gen, token_temperature=HAPOOptions().token_temperature)
    assert ro.temperature.shape == ro.tokens.shape
    t = ro.temperature[ro.mask.bool()]
    assert t.min() >= 0.95 - 1e-6 and t.max() <= 1.05 + 1e-6 and t.std() > 0
    with torch.no_grad():
        ent, logp = token_scores(model, ro)
    m = ro.mask.bool()
    torch.testing.assert_close(logp[m], ro.logprobs[m], atol=1e-4, rtol=0)
    torch.testing.assert_close(ent[m], ro.entropy[m], atol=1e-4, rtol=0)


def test_resume_restores_the_loss_state(sft_dir, tmp_path):
    kw = dict(steps=4, checkpoint_every=2, loss=LossConfig(name="siren",
                                                           options={"siren_lambda": 1.0}))
    full = GRPOTrainer(_cfg(sft_dir, tmp_path / "a", **kw)).train()
    part = GRPOTrainer(_cfg(sft_dir, tmp_path / "b", **kw))
    part.train(steps=2)
    resumed = GRPOTrainer(_cfg(sft_dir, tmp_path / "b", **kw), resume=True)
    assert resumed.loss_state == part.loss_state and "siren_anchor" in resumed.loss_state
    resumed.train()
    rows = [json.loads(x) for x in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]

    def strip(rs):
        return [{k: v for k, v in r.items() if k != "time_s"} for r in rs]

    assert strip(rows) == strip(full)
