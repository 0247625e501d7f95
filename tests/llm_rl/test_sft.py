"""SFT warm-start cache: private temporary folder, safe when another process finishes first."""

import json

from llm_rl import sft
from llm_rl.config import SFTConfig, config_hash
from llm_rl.policy import PolicySpec

SPEC = PolicySpec(n_layer=1, n_embd=16, n_head=2)
CFG = SFTConfig(steps=1, batch=2)


def test_warm_start_builds_once_and_leaves_no_temp(tmp_path):
    path = sft.warm_start("sumpair", SPEC, CFG, str(tmp_path))
    assert (path / "sft.json").is_file() and (path / "config.json").is_file()
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert sft.warm_start("sumpair", SPEC, CFG, str(tmp_path)) == path  # cached


def test_concurrent_finisher_wins_and_our_copy_is_discarded(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    final = cache / f"sumpair-{config_hash(SPEC, CFG, 0, 'sumpair')}"

    def other_process_finishes(*args, **kwargs):
        # Another process renames its finished checkpoint into place while we evaluate ours.
        final.mkdir(parents=True)
        (final / "sft.json").write_text(json.dumps({"who": "other"}))
        return 0.5

    monkeypatch.setattr(sft, "heldout_pass_rate", other_process_finishes)
    path = sft.warm_start("sumpair", SPEC, CFG, str(cache))
    assert path == final
    assert json.loads((path / "sft.json").read_text()) == {"who": "other"}
    assert [p.name for p in cache.iterdir()] == [path.name]  # no temporary folder left behind
