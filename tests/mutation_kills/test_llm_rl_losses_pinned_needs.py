"""llm_rl.losses.loss_needs pinned: the extra inputs each configured loss declares."""

import llm_rl.losses_explore  # noqa: F401  (registers lp-reg, steer, siren, epo, hapo)
from llm_rl.losses import LossConfig, loss_needs


def test_each_loss_declares_exactly_its_extra_inputs():
    expected = {
        "grpo": set(), "clip-cov": set(), "kl-cov": set(),
        "lp-reg": {"old_logp_all", "tokens"},
        "steer": {"old_entropy"},
        "siren": {"logp_all"},
        "epo": set(),
        "hapo": {"old_entropy", "token_temperature"},
    }
    for name, needs in expected.items():
        got = loss_needs(LossConfig(name=name))
        assert isinstance(got, frozenset) and got == needs, name
