import json

import pytest
import torch

from llm_rl.policy import ARCHES, PolicySpec, build_policy, load_policy, save_policy
from llm_rl.tokenizer import DEFAULT_CHARS, CharTokenizer


def test_tokenizer_roundtrip_and_specials():
    tok = CharTokenizer()
    assert 20 <= tok.vocab_size <= 40
    ids = tok.encode("s12:3+9", bos=True, eos=True)
    assert ids[0] == tok.bos_id and ids[-1] == tok.eos_id
    assert tok.decode(ids) == "s12:3+9"
    assert tok.decode([*tok.encode("7+5"), tok.eos_id, *tok.encode("99")]) == "7+5"


def test_tokenizer_pad_left_and_right():
    tok = CharTokenizer()
    ids, mask = tok.pad([[5, 6, 7], [8]])
    assert ids == [[5, 6, 7], [0, 0, 8]] and mask == [[1, 1, 1], [0, 0, 1]]
    ids, mask = tok.pad([[5, 6, 7], [8]], side="right")
    assert ids == [[5, 6, 7], [8, 0, 0]] and mask == [[1, 1, 1], [1, 0, 0]]


def test_tokenizer_rejects_unknown_characters():
    with pytest.raises(ValueError, match="not in the tokenizer vocabulary"):
        CharTokenizer().encode("x1")


def test_tokenizer_save_load(tmp_path):
    tok = CharTokenizer("0123+")
    tok.save(tmp_path)
    assert CharTokenizer.load(tmp_path).chars == "0123+"
    with pytest.raises(FileNotFoundError):
        CharTokenizer.load(tmp_path / "nowhere")


@pytest.mark.parametrize("arch", ARCHES)
def test_policy_save_load_through_from_pretrained(tmp_path, arch):
    tok = CharTokenizer()
    model = build_policy(PolicySpec(arch=arch, n_layer=1, n_embd=32, n_head=2), tok, seed=3)
    save_policy(model, tok, tmp_path)
    loaded, tok2 = load_policy(tmp_path)
    x = torch.tensor([tok.encode("s9:", bos=True)])
    assert tok2.chars == DEFAULT_CHARS
    assert torch.equal(model(x).logits, loaded(x).logits)
    again = build_policy(PolicySpec(arch=arch, n_layer=1, n_embd=32, n_head=2), tok, seed=3)
    assert torch.equal(again(x).logits, model(x).logits)


def test_policy_vocab_mismatch_is_reported(tmp_path):
    tok = CharTokenizer()
    save_policy(build_policy(PolicySpec(n_layer=1, n_embd=32, n_head=2), tok), tok, tmp_path)
    (tmp_path / "char_tokenizer.json").write_text(
        json.dumps({"type": "char", "chars": "01", "specials": ["<pad>", "<bos>", "<eos>"]})
    )
    with pytest.raises(ValueError, match="vocab_size"):
        load_policy(tmp_path)


def test_unknown_arch():
    with pytest.raises(ValueError, match=r"policy.arch = 'mamba' is out of range; valid: one of "
                                         "'gpt2', 'llama'"):
        build_policy(PolicySpec(arch="mamba"), CharTokenizer())
