import random

import pytest

from llm_rl.tasks import TASKS, Problem, check_tokenizer, make_task
from llm_rl.tokenizer import CharTokenizer


@pytest.mark.parametrize("name", sorted(TASKS))
def test_solutions_verify_and_near_misses_fail(name):
    task, rng = make_task(name), random.Random(1)
    tok = CharTokenizer()
    for _ in range(300):
        p = task.sample(rng)
        sols = task.solutions(p)
        assert sols and all(task.verify(p, s) for s in sols)
        assert all(len(s) <= task.max_answer_len for s in sols)
        assert not task.verify(p, task.near_miss(p, rng))
        tok.encode(p.prompt + sols[0])  # spellable


def test_hand_checked_answers():
    sp, cd, ad = make_task("sumpair"), make_task("countdown-lite"), make_task("add-n")
    p = Problem("s12:", (12,), 12)
    assert sp.verify(p, "5+7") and sp.verify(p, "12+0") and not sp.verify(p, "5+8")
    assert not sp.verify(p, "5+7+0") and not sp.verify(p, "+12")
    q = Problem("c3,5,2>13:", (3, 5, 2), 13)
    assert cd.verify(q, "3*5-2") and cd.verify(q, "5*3-2") and not cd.verify(q, "3+5+2")
    assert not cd.verify(q, "3*5-2-0") and not cd.verify(q, "15-2")
    r = Problem("a21+43:", (12, 34), 46)
    assert ad.solutions(r) == ["640"] and ad.verify(r, "640") and not ad.verify(r, "46")


def test_heldout_is_fixed_and_distinct():
    task = make_task("countdown-lite")
    a, b = task.heldout(20, seed=0), task.heldout(20, seed=0)
    assert a == b and len({p.prompt for p in a}) == 20
    assert task.heldout(20, seed=1) != a


def test_registry_errors_list_valid_names():
    with pytest.raises(KeyError, match="add-n, countdown-lite, sumpair"):
        make_task("sudoku")
    with pytest.raises(TypeError):
        make_task("sumpair", n_maximum=3)


def test_task_tokenizer_mismatch():
    with pytest.raises(ValueError, match="mismatch"):
        check_tokenizer(make_task("countdown-lite"), CharTokenizer("0123456789+s:"))
    check_tokenizer(make_task("sumpair"), CharTokenizer("0123456789+s:"))


@pytest.mark.parametrize("name", sorted(TASKS))
def test_tasks_that_train_on_heldout_prompts_say_so(name):
    task = make_task(name)
    if not task.exclude_heldout:  # sumpair: 13 prompts in all
        assert "measured on training prompts" in " ".join(type(task).__doc__.split())


def test_sumpair_heldout_split_is_never_drawn_for_training():
    task, rng = make_task("sumpair-heldout"), random.Random(0)
    held = task.heldout(9)
    assert [p.target for p in held] == [7, 11, 15, 19, 23, 27, 31, 35, 39]
    drawn = {task.sample(rng).target for _ in range(2000)}  # SFT and GRPO draw from sample()
    assert drawn == set(range(4, 41)) - {p.target for p in held}
    assert task.heldout(4, seed=0) == task.heldout(4, seed=0) != task.heldout(4, seed=1)
    assert task.max_heldout == 9 and make_task("sumpair").max_heldout is None
    with pytest.raises(ValueError, match=r"holds out 9 prompts; valid: eval_size 1 \.\. 9"):
        task.heldout(10)
    # the old sumpair is unchanged: 13 prompts, its held-out set drawn from them
    assert make_task("sumpair").prompt_count == 13


def test_sumpair_heldout_eval_size_is_checked_by_the_config():
    from ctrlbench.options import OptionError
    from llm_rl.config import TrainConfig

    with pytest.raises(OptionError, match=r"TrainConfig.eval_size = 10 is out of range; valid: "
                                          r"<= 9"):
        TrainConfig(task="sumpair-heldout", eval_size=10)
