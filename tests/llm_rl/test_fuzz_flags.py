"""Property-based fuzzing of the ``llm`` flags: any mix of real and bogus flag names with any
values (negative, NaN, inf, huge, strings, empty) gives exit 0 or a clean exit 2 with one
``error:`` line, never a traceback.

The loop runs the real parsing and every check of a run that needs no training (the configs,
device availability, registered names, actuator/loss combinations: ``llm_rl.trainer.preflight``);
the training itself is replaced by a stub. ``CTRLBENCH_FUZZ=slow`` runs many more examples.
"""

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llm_rl.cli as cli
from llm_rl.trainer import preflight


def _flags(command: str) -> list[str]:
    parser = cli.build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sorted(f for f in subs.choices[command]._option_string_actions if f not in
                  ("-h", "--help"))


TRAIN, SFT = _flags("train"), _flags("sft")
BOGUS = ["--bogus", "--steps.x", "--control.", "--loss.nope", "--control.nope", "-x", "--",
         "---steps", "--policy", "--Steps", "--resume=1", "--steps=", "-", "--sft.", "--loss"]
#: Values that met bugs elsewhere or sit on a boundary.
SPECIAL = ["", " ", "nan", "-nan", "NaN", "inf", "-inf", "+inf", "1e400", "-1e-3", "-0", "0",
           "1", "-1", "2", "3.2", "1e-9", "1e30", "None", "none", "true", "False", "[1, 2]",
           "{}", "()", "{'a': 1}", "0x10", "1_000", "9" * 5000, "'x'", "--steps", "cuda",
           "cuda:0", "cuda:99", "cpu", "mps", "nope", "pid", "dual", "sign", "aepo", "clip-cov",
           "kl-cov", "temperature", "clip_cov_ratio", "sumpair", "add-n", "countdown-lite",
           "llama", "/", ".", "/dev/null", "\0", "é", "[" * 200 + "]" * 200, str(2**64)]

values = st.one_of(
    st.sampled_from(SPECIAL),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=12),
)


@st.composite
def command_lines(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(["train", "train", "train", "sft", "list"]))
    names = st.sampled_from(TRAIN if command == "train" else SFT if command == "sft" else BOGUS)
    flag = st.one_of(names, names, names, st.sampled_from(BOGUS))
    argv = [command]
    for name, value in draw(st.lists(st.tuples(flag, st.none() | values), max_size=6)):
        argv += [name] if value is None else [name, value]
    return argv


def _validate_only(cfg, **kwargs) -> int:
    preflight(cfg)
    return 0


@pytest.fixture
def no_training(monkeypatch):
    monkeypatch.setattr(cli, "_run_train", _validate_only)
    monkeypatch.setattr(cli, "_run_sft", _validate_only)


def _names_the_culprit(argv: list[str], err: str) -> bool:
    """The message names a flag given, its field, or is argparse's own about the flags."""
    given_flags = [a.split("=")[0] for a in argv[1:] if a.startswith("-")]
    names = {f for a in given_flags for f in (a, a.lstrip("-").split(".")[-1]) if f}
    return any(n in err for n in names) or any(
        w in err for w in ("argument", "unrecognized", "ambiguous", "required", "invalid choice"))


@given(argv=command_lines())
def test_any_flags_give_a_result_or_one_clean_error(no_training, capsys, argv):
    capsys.readouterr()
    status = cli.main(argv)  # an exception escaping here is the failure this test looks for
    out, err = capsys.readouterr()
    assert "Traceback" not in err + out, argv
    assert status in (0, 2), (argv, status, err)
    lines = err.strip().splitlines()
    if status == 2:
        assert len(lines) == 1 and ": error: " in lines[0], (argv, err)
        assert _names_the_culprit(argv, err), (argv, err)
    else:
        assert "error" not in err, (argv, err)
