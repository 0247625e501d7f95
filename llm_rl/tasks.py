"""Verifiable tasks: prompts generated on the fly from a seeded RNG, answers checked in pure Python.

- ``sumpair``: ``s12:`` -> any ``a+b`` with ``a, b >= 0`` and ``a + b = 12`` (many correct answers,
  so entropy lost beyond the uniform over valid answers is pure diversity loss).
- ``sumpair-heldout``: the same task over ``N = 4..40`` with 9 sums (``N % 4 == 3``) held out
  of every draw (SFT and GRPO), so its pass@k measures generalization to unseen ``N``.
- ``countdown-lite``: ``c3,5,2>13:`` -> an expression using each number once with ``+ - *``
  (usual precedence), e.g. ``3*5-2``; 5-character answers by default (numbers up to 5; up to
  8 with ``max_number`` >= 10).
- ``add-n``: ``a21+43:`` (12 + 34, digits reversed) -> ``640`` (46 reversed, padded to n+1 digits);
  exactly one answer.

Each task has a fixed held-out set (:meth:`Task.heldout`) and a noisy teacher for the SFT warm
start (:meth:`Task.teacher`: a correct answer with probability ``1 - noise``, else a near miss).
The held-out prompts are excluded from training except for ``sumpair``, whose whole prompt space
is 13 prompts (N = 4..16): its "held-out" pass@k is measured on prompts also trained on
(``sumpair-heldout`` is the variant with a real held-out split).
"""

from __future__ import annotations

import functools
import itertools
import random
from abc import ABC, abstractmethod
from dataclasses import dataclass

from llm_rl.tokenizer import CharTokenizer

__all__ = [
    "TASKS",
    "AddN",
    "CountdownLite",
    "Problem",
    "SumPair",
    "SumPairHeldout",
    "Task",
    "check_tokenizer",
    "make_task",
]

_HELDOUT_SALT = 0x5EED


@dataclass(frozen=True)
class Problem:
    """One prompt and the numbers that define it."""

    prompt: str
    numbers: tuple[int, ...]
    target: int


class Task(ABC):
    """A verifiable task; subclasses are frozen dataclasses of their parameters."""

    name: str = ""
    chars: str = ""
    #: Whether held-out prompts are excluded from training (False where the prompt space is tiny).
    exclude_heldout: bool = True

    @abstractmethod
    def sample(self, rng: random.Random) -> Problem:
        """Draw one problem."""

    @abstractmethod
    def verify(self, problem: Problem, answer: str) -> bool:
        """True when ``answer`` solves ``problem``."""

    @abstractmethod
    def solutions(self, problem: Problem) -> list[str]:
        """All correct answers (the teacher draws from these)."""

    @abstractmethod
    def near_miss(self, problem: Problem, rng: random.Random) -> str:
        """A well-formed wrong answer."""

    @property
    @abstractmethod
    def max_answer_len(self) -> int:
        """Longest answer in characters (without ``<eos>``)."""

    @property
    @abstractmethod
    def max_prompt_len(self) -> int:
        """Longest prompt in characters (without ``<bos>``)."""

    @property
    @abstractmethod
    def prompt_count(self) -> int:
        """Number of distinct prompts the task can draw."""

    @property
    def max_heldout(self) -> int | None:
        """Largest held-out set :meth:`heldout` can draw (``None``: any size, prompts repeat)."""
        return self.prompt_count - 1 if self.exclude_heldout else None

    @property
    def max_positions(self) -> int:
        """Positions a policy needs: ``<bos>``, the longest prompt and the sampling budget
        (the longest answer, ``<eos>`` and one spare token)."""
        return 1 + self.max_prompt_len + self.max_answer_len + 2

    def teacher(self, problem: Problem, rng: random.Random, noise: float) -> str:
        """Noisy teacher: a uniformly drawn correct answer w.p. ``1 - noise``, else a near miss."""
        if rng.random() < noise:
            return self.near_miss(problem, rng)
        return rng.choice(self.solutions(problem))

    def heldout(self, n: int, seed: int = 0) -> list[Problem]:
        """The fixed held-out set: ``n`` problems, a function of ``(n, seed)`` only.

        Raises ``ValueError`` when the task excludes held-out prompts from training and ``n``
        would leave no prompt to train on.
        """
        if self.exclude_heldout and n >= self.prompt_count:
            raise ValueError(
                f"a held-out set of {n} problems leaves no training prompt: task {self.name!r} "
                f"has {self.prompt_count} distinct prompts; valid: eval_size <= "
                f"{self.prompt_count - 1}"
            )
        rng = random.Random(seed * 7919 + _HELDOUT_SALT)
        if not self.exclude_heldout:
            return [self.sample(rng) for _ in range(n)]
        seen: dict[str, Problem] = {}
        while len(seen) < n:
            p = self.sample(rng)
            seen.setdefault(p.prompt, p)
        return list(seen.values())


@dataclass(frozen=True)
class SumPair(Task):
    """Write two non-negative integers summing to N, ``n_min <= N <= n_max``.

    The prompt space is only ``n_max - n_min + 1`` prompts (13 by default), so the held-out set is
    *not* excluded from training (``exclude_heldout = False``): sumpair's held-out pass@k is
    measured on training prompts and shows sampling diversity and accuracy, not generalization.
    """

    n_min: int = 4
    n_max: int = 16
    name = "sumpair"
    chars = "0123456789+s:"
    exclude_heldout = False

    def sample(self, rng: random.Random) -> Problem:
        n = rng.randint(self.n_min, self.n_max)
        return Problem(f"s{n}:", (n,), n)

    def verify(self, problem: Problem, answer: str) -> bool:
        parts = answer.split("+")
        if len(parts) != 2 or not all(p.isdigit() and len(p) <= 3 for p in parts):
            return False
        return int(parts[0]) + int(parts[1]) == problem.target

    def solutions(self, problem: Problem) -> list[str]:
        return [f"{a}+{problem.target - a}" for a in range(problem.target + 1)]

    def near_miss(self, problem: Problem, rng: random.Random) -> str:
        a = rng.randint(0, problem.target)
        off = rng.choice([-3, -2, -1, 1, 2, 3])
        b = problem.target - a + (off if problem.target - a + off >= 0 else -off)
        return f"{a}+{b}"

    @property
    def max_answer_len(self) -> int:
        return 2 * len(str(self.n_max)) + 1

    @property
    def max_prompt_len(self) -> int:
        return len(f"s{self.n_max}:")

    @property
    def prompt_count(self) -> int:
        return self.n_max - self.n_min + 1


@dataclass(frozen=True)
class SumPairHeldout(SumPair):
    """``sumpair`` over ``N = 4..40`` with a fixed held-out split that is never trained on.

    The sums with ``N % 4 == 3`` (7, 11, ..., 39: 9 prompts) are held out: :meth:`sample` (which
    the SFT warm start and GRPO draw from) never returns them, and :meth:`heldout` returns only
    them, so pass@k measures generalization to sums never seen. The other 28 prompts train.
    ``sumpair`` itself is unchanged.
    """

    n_max: int = 40
    name = "sumpair-heldout"
    exclude_heldout = True

    def _is_heldout(self, n: int) -> bool:
        return n % 4 == 3

    def sample(self, rng: random.Random) -> Problem:
        while True:
            n = rng.randint(self.n_min, self.n_max)
            if not self._is_heldout(n):
                return Problem(f"s{n}:", (n,), n)

    def heldout(self, n: int, seed: int = 0) -> list[Problem]:
        """``n`` of the held-out sums (a seeded choice; all of them when ``n`` is their count)."""
        pool = [m for m in range(self.n_min, self.n_max + 1) if self._is_heldout(m)]
        if not 1 <= n <= len(pool):
            raise ValueError(f"task {self.name!r} holds out {len(pool)} prompts; valid: "
                             f"eval_size 1 .. {len(pool)}, got {n}")
        chosen = sorted(random.Random(seed * 7919 + _HELDOUT_SALT).sample(pool, n))
        return [Problem(f"s{m}:", (m,), m) for m in chosen]

    @property
    def max_heldout(self) -> int:
        return sum(1 for m in range(self.n_min, self.n_max + 1) if self._is_heldout(m))


def _evaluate(nums: list[int], ops: list[str]) -> int:
    """Evaluate ``n0 op0 n1 op1 n2`` with ``*`` binding tighter than ``+``/``-``."""
    terms, signs = [nums[0]], []
    for op, x in zip(ops, nums[1:]):
        if op == "*":
            terms[-1] *= x
        else:
            signs.append(op)
            terms.append(x)
    total = terms[0]
    for op, t in zip(signs, terms[1:]):
        total = total + t if op == "+" else total - t
    return total


def _parse(answer: str) -> tuple[list[int], list[str]] | None:
    """Split ``'3*5-2'`` into numbers and operators; ``None`` when malformed."""
    nums, ops, cur = [], [], ""
    for ch in answer:
        if ch.isdigit():
            cur += ch
        elif ch in "+-*" and cur:
            nums.append(int(cur))
            ops.append(ch)
            cur = ""
        else:
            return None
    if not cur or len(cur) > 3:
        return None
    nums.append(int(cur))
    return nums, ops


@functools.lru_cache(maxsize=8)
def _countdown_prompts(max_number: int) -> int:
    """Distinct countdown-lite prompts (numbers and a non-negative target) for ``max_number``."""
    seen = set()
    for nums in itertools.product(range(1, max_number + 1), repeat=3):
        for ops in itertools.product("+-*", repeat=2):
            target = _evaluate(list(nums), list(ops))
            if target >= 0:
                seen.add((nums, target))
    return len(seen)


@dataclass(frozen=True)
class CountdownLite(Task):
    """Reach a target from 3 numbers in ``[1, max_number]`` with ``+ - *``, each number once."""

    max_number: int = 5
    name = "countdown-lite"
    chars = "0123456789+-*,>c:"

    def sample(self, rng: random.Random) -> Problem:
        while True:
            nums = [rng.randint(1, self.max_number) for _ in range(3)]
            ops = [rng.choice("+-*") for _ in range(2)]
            target = _evaluate(nums, ops)
            if target >= 0:
                prompt = f"c{nums[0]},{nums[1]},{nums[2]}>{target}:"
                return Problem(prompt, tuple(nums), target)

    def verify(self, problem: Problem, answer: str) -> bool:
        parsed = _parse(answer)
        if parsed is None or len(parsed[0]) != 3:
            return False
        nums, ops = parsed
        return sorted(nums) == sorted(problem.numbers) and _evaluate(nums, ops) == problem.target

    def solutions(self, problem: Problem) -> list[str]:
        out = set()
        for perm in itertools.permutations(problem.numbers):
            for ops in itertools.product("+-*", repeat=2):
                if _evaluate(list(perm), list(ops)) == problem.target:
                    out.add(f"{perm[0]}{ops[0]}{perm[1]}{ops[1]}{perm[2]}")
        return sorted(out)

    def near_miss(self, problem: Problem, rng: random.Random) -> str:
        for _ in range(100):
            nums = list(problem.numbers)
            rng.shuffle(nums)
            ops = [rng.choice("+-*") for _ in range(2)]
            if _evaluate(nums, ops) != problem.target:
                return f"{nums[0]}{ops[0]}{nums[1]}{ops[1]}{nums[2]}"
        return f"{problem.numbers[0]}+{problem.numbers[1]}"  # every ordering hits the target

    @property
    def max_answer_len(self) -> int:
        return 3 * len(str(self.max_number)) + 2

    @property
    def max_prompt_len(self) -> int:
        m = str(self.max_number)
        return len(f"c{m},{m},{m}>{self.max_number**3}:")

    @property
    def prompt_count(self) -> int:
        return _countdown_prompts(self.max_number)


@dataclass(frozen=True)
class AddN(Task):
    """Add two ``n``-digit numbers, all digits written least significant first."""

    n: int = 2
    name = "add-n"
    chars = "0123456789+a:"

    def _rev(self, x: int, width: int) -> str:
        return str(x).zfill(width)[::-1]

    def sample(self, rng: random.Random) -> Problem:
        a, b = (rng.randint(0, 10**self.n - 1) for _ in range(2))
        return Problem(f"a{self._rev(a, self.n)}+{self._rev(b, self.n)}:", (a, b), a + b)

    def verify(self, problem: Problem, answer: str) -> bool:
        return answer == self._rev(problem.target, self.n + 1)

    def solutions(self, problem: Problem) -> list[str]:
        return [self._rev(problem.target, self.n + 1)]

    def near_miss(self, problem: Problem, rng: random.Random) -> str:
        digits = list(self._rev(problem.target, self.n + 1))
        i = rng.randrange(len(digits))
        digits[i] = str((int(digits[i]) + rng.randint(1, 9)) % 10)
        return "".join(digits)

    @property
    def max_answer_len(self) -> int:
        return self.n + 1

    @property
    def max_prompt_len(self) -> int:
        return 2 * self.n + 3

    @property
    def prompt_count(self) -> int:
        return 10 ** (2 * self.n)


TASKS: dict[str, type[Task]] = {
    "sumpair": SumPair,
    "sumpair-heldout": SumPairHeldout,
    "countdown-lite": CountdownLite,
    "add-n": AddN,
}


def make_task(name: str, **kwargs: int) -> Task:
    """Build a registered task; unknown names raise listing the valid ones."""
    if name not in TASKS:
        raise KeyError(f"unknown task {name!r}; valid tasks: {', '.join(sorted(TASKS))}")
    return TASKS[name](**kwargs)


def check_tokenizer(task: Task, tokenizer: CharTokenizer) -> None:
    """Raise ``ValueError`` when the tokenizer cannot spell the task's prompts and answers."""
    missing = tokenizer.missing(task.chars)
    if missing:
        raise ValueError(
            f"task {task.name!r} needs characters {missing!r} that the tokenizer "
            f"(chars {tokenizer.chars!r}) lacks: task/tokenizer mismatch"
        )
