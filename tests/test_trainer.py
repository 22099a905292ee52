"""Tests of rmlib.lab.trainer: TRL's RewardTrainer on the packaged backbone, offline, on CPU, in fp32.

The reward hook must see exactly the rewards TRL computes; lesson 02-04's predictions must hold on the
tensor it records; and everything must run with every socket connection refused.
"""

from __future__ import annotations

import gc
import json
import math
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch

import rmlib
from rmlib.lab import real, reviews
from rmlib.theory import crossed_mean_with_stderr, expected_initial_bt_loss

trl = pytest.importorskip("trl", reason="lesson 08 needs trl (requirements.txt installs it)")
if real.missing_real_dependencies():
    pytest.skip("the [real] extra is not installed", allow_module_level=True)

from rmlib.lab import trainer as rt  # noqa: E402  (after the skips: it needs the extra at call time)
from tests.fake_child import fake_children, fake_clock  # noqa: E402

D = 384


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    rt.quiet()
    return AutoTokenizer.from_pretrained(real.packaged_checkpoint_path())


@pytest.fixture(scope="module")
def data(tokenizer):
    return (rt.tokenise_pairs(tokenizer, reviews.load_reviews("train")[:16]),
            rt.tokenise_pairs(tokenizer, reviews.load_reviews("test")))


@pytest.fixture(scope="module")
def evaluated(tokenizer, data):
    """An untrained 1/sqrt(d+1) head evaluated by TRL on the 80 held-out pairs, with the head recorded."""
    model = rt.reward_model(rmlib.score_head_std(D), rmlib.make_generator(1), train_from_layer=5)
    built = rt.make_trainer(model, *data, tokenizer, max_steps=1, per_device_eval_batch_size=32)
    metrics, record = rt.evaluate(built)
    return built, metrics, record


def test_hook_reproduces_trl_rewards(evaluated, data):
    built, metrics, record = evaluated
    p_c, p_r, r_c, r_r = record.pairs()
    assert len(p_c) == len(data[1]) == 80 and len(record.inputs) == 3  # 3 eval batches of <= 32 pairs
    # TRL's logged metrics follow from the recorded rewards (float32 means: rounding only).
    assert metrics["eval_loss"] == pytest.approx(rmlib.bradley_terry_loss(r_c, r_r).item(), abs=1e-5)
    # TRL averages its accuracy per batch, unweighted (batches of 32, 32 and 16 pairs here).
    per_batch = [rt.trl_accuracy(*torch.chunk(r, 2)).item() for r in record.rewards]
    assert metrics["eval_accuracy"] == pytest.approx(sum(per_batch) / len(per_batch), abs=1e-6)
    # Independently of the hook: real.head_input_states + the head give the same rewards.
    ids = [torch.tensor(x) for x in data[1]["chosen_ids"][:8]]
    batch = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=0)
    mask = (torch.arange(batch.shape[1]) < torch.tensor([len(x) for x in ids])[:, None]).long()
    model = built.model.eval()
    with torch.no_grad():
        states = real.head_input_states(model, batch, mask)
        rewards = real.head_module(model)(states).squeeze(-1)
    assert torch.allclose(states, p_c[:8], atol=1e-5)
    assert torch.allclose(rewards, r_c[:8], atol=1e-5)


def test_initial_predictions_hold_on_the_recorded_tensor(evaluated):
    built, metrics, record = evaluated
    p_c, p_r, _, _ = record.pairs()
    p = torch.cat([p_c, p_r])
    sq = p.pow(2).sum(1).mean().item()
    gen = rmlib.make_generator(5)
    for name in ("hf_default", "score_head", "large"):
        init = rmlib.INITIALISERS[name]
        heads = init.sample(1000, D, generator=gen)
        ms, se = crossed_mean_with_stderr((heads @ p.T).pow(2))
        # 4 standard errors of a crossed (heads x texts) mean: a false alarm has probability < 1e-4.
        assert abs(ms - init.std(D) ** 2 * sq) < 4 * se, (name, ms, se)
    # Initial loss: the mean over 1000 heads matches the per-pair prediction within 4 of its standard errors.
    std = rmlib.score_head_std(D)
    heads = torch.randn(1000, D, generator=gen, dtype=torch.float64) * std
    losses = torch.nn.functional.softplus(-(heads @ (p_c - p_r).double().T)).mean(1)
    predicted = float(expected_initial_bt_loss(std * (p_c - p_r).double().norm(dim=1).numpy()).mean())
    assert abs(losses.mean().item() - predicted) < 4 * losses.std().item() / math.sqrt(len(losses))
    # TRL's one head is one draw from that distribution.
    assert abs(metrics["eval_loss"] - predicted) < 4 * losses.std().item()
    # E||p||^2 on the pooler output (1.73 on these texts). The checkpoint's pooler is untrained (zero bias,
    # random weights of std 0.0091), so this is a random projection of [CLS] through tanh: d·σ_P²·E‖h‖² ≈ 1.8.
    assert 1.4 < sq < 2.0, sq
    pooler = built.model.base_model.pooler.dense
    assert (pooler.bias == 0).all()


def test_runs_offline_with_sockets_forbidden(monkeypatch, tokenizer, data):
    """Load the backbone and train two steps with every outgoing connection refused."""

    def refuse(*args, **kwargs):
        raise OSError("network access is forbidden in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert real.load_backbone().source == "packaged checkpoint"
    model = rt.reward_model(0.0, train_from_layer=5)
    built = rt.make_trainer(model, data[0], None, tokenizer, max_steps=2, per_device_train_batch_size=4)
    built.train()
    log = [e for e in built.state.log_history if "loss" in e and "train_runtime" not in e]
    assert len(log) == 2 and log[0]["loss"] == pytest.approx(math.log(2), abs=1e-6)
    assert log[0]["accuracy"] == 0.0  # TRL counts the zero head's ties as wrong
    assert model.classifier.bias.item() == 0.0  # exactly zero gradient on the bias
    assert model.classifier.weight.abs().max() > 0  # the head did train


def test_config_is_cpu_fp32():
    config = rt.reward_config(max_steps=1)
    assert config.bf16 is False and config.use_cpu and not config.gradient_checkpointing
    assert config.logging_steps == 1 and config.report_to == []


def test_output_folder_lives_as_long_as_the_config(tokenizer, data, tmp_path):
    """The temporary output folder goes with its config (and so with the trainer that holds it)."""
    config = rt.reward_config(max_steps=1)
    folder = Path(config.output_dir)
    assert folder.is_dir() and folder.name.startswith("rmlib-trl-")
    del config
    gc.collect()
    assert not folder.exists()
    from transformers import BertConfig, BertForSequenceClassification

    tiny = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16,
                                                    num_hidden_layers=1, num_attention_heads=2,
                                                    intermediate_size=32, num_labels=1))
    built = rt.make_trainer(tiny, data[0], None, tokenizer, max_steps=1, per_device_train_batch_size=2)
    folder = Path(built.args.output_dir)
    built.train()
    assert folder.is_dir()  # alive while the trainer is
    del built
    gc.collect()
    assert not folder.exists()
    # A folder the caller names is the caller's: never created or removed by us.
    mine = tmp_path / "keep"
    config = rt.reward_config(output_dir=str(mine))
    del config
    gc.collect()
    assert not mine.exists()


def test_no_rmlib_trl_folder_is_left_once_the_configs_are_gone(tokenizer, data, tmp_path, monkeypatch):
    """A trained trainer, a trainer whose construction fails (lesson 08's eos demo) and a bare config leave nothing."""
    from datasets import Dataset
    from transformers import BertConfig, BertForSequenceClassification

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # mkdtemp's folder: only this test's configs land here
    tiny = BertForSequenceClassification(BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=16,
                                                    num_hidden_layers=1, num_attention_heads=2,
                                                    intermediate_size=32, num_labels=1))
    built = rt.make_trainer(tiny, data[0], None, tokenizer, max_steps=1, per_device_train_batch_size=2)
    built.train()
    config = rt.reward_config()
    text = Dataset.from_list([{k: row[k] for k in ("prompt", "chosen", "rejected")} for row in reviews.load_reviews("train")[:4]])
    with pytest.raises(TypeError):  # TRL's text path needs an eos token, which BERT's tokenizer lacks
        trl.RewardTrainer(model=tiny, args=rt.reward_config(), train_dataset=text, processing_class=tokenizer)
    assert len(list(tmp_path.glob("rmlib-trl-*"))) >= 2  # the live configs' folders exist
    del built, config
    gc.collect()
    assert list(tmp_path.glob("rmlib-trl-*")) == []


def test_output_folder_is_removed_at_exit_while_the_config_is_alive():
    """A notebook kernel ends with its trainers alive: the folder must still go when the process exits."""
    code = ("from rmlib.lab import trainer as rt\n"
            "config = rt.reward_config()\n"
            "print(config.output_dir)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300)
    folder = Path(done.stdout.strip().splitlines()[-1])
    assert folder.name.startswith("rmlib-trl-")
    assert not folder.exists()


def _tiny_bert(vocab_size: int, seed: int = 0):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)  # transformers draws the random weights from the global generator
    return BertForSequenceClassification(BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                                                    num_attention_heads=2, intermediate_size=32, num_labels=1))


def test_head_bias_gradient_is_trl_s_bit_for_bit(tokenizer, data):
    """The replayed bias gradient equals TRL's compute_loss's, bits included; B = 8 cancels exactly."""
    model = _tiny_bert(tokenizer.vocab_size)
    with torch.no_grad():
        model.classifier.weight.normal_(0.0, 1.0, generator=rmlib.make_generator(4))
    built = rt.make_trainer(model, data[0], None, tokenizer, max_steps=1)
    seen = {}
    for size in (3, 4, 5, 8):
        for start in (0, 8):
            batch = built.data_collator([data[0][i] for i in range(start, start + size)])
            model.zero_grad()
            with rt.record_head(model) as rec:
                built.compute_loss(model, dict(batch)).backward()
            replayed = rt.head_bias_gradient(model.classifier, rec.inputs[0])
            assert torch.equal(model.classifier.bias.grad, replayed), (size, start)
            seen.setdefault(size, []).append(replayed.item())
    assert seen[8] == [0.0, 0.0]  # the pairs' terms cancel in the sum TRL's batch size 8 makes
    assert max(abs(g) for gs in seen.values() for g in gs) < 1e-6  # otherwise only rounding residues
    with pytest.raises(ValueError, match="chosen rows then rejected"):
        rt.head_bias_gradient(model.classifier, torch.zeros(3, 16))
    with pytest.raises(ValueError, match="2-D"):
        rt.head_bias_gradient(model.classifier, torch.zeros(16))
    with pytest.raises(TypeError, match="nn.Linear"):
        rt.head_bias_gradient(model, torch.zeros(2, 16))
    with pytest.raises(ValueError, match="no bias"):
        rt.head_bias_gradient(torch.nn.Linear(16, 1, bias=False), torch.zeros(2, 16))


def test_train_heads_replays_a_head_only_trl_run(tokenizer, data):
    model = _tiny_bert(tokenizer.vocab_size, seed=1)
    model.base_model.requires_grad_(False)
    built = rt.make_trainer(model, data[0], None, tokenizer, max_steps=6, per_device_train_batch_size=2)
    w0, b0 = model.classifier.weight.detach().clone(), model.classifier.bias.detach().clone()
    with rt.record_head(model) as seen:
        built.train()
    fed = torch.cat(seen.inputs)
    w, b = rt.train_heads(fed, torch.arange(len(fed)).view(1, 6, 4), w0, b0, lr=built.args.learning_rate)
    travel = (model.classifier.weight - w0).abs().max().item()
    assert travel > 1e-4  # the head moved
    # Float32 rounding between the batched replay and TRL's step: far below the movement.
    assert (w - model.classifier.weight).abs().max().item() < 1e-3 * travel
    # Several runs at once are independent runs: the stacked result equals one run at a time.
    feats = torch.randn(12, 5, generator=rmlib.make_generator(0))
    batches = torch.stack([rt.epoch_batches(6, 2, 2, rmlib.make_generator(s)) for s in range(3)])
    starts = torch.randn(3, 5, generator=rmlib.make_generator(1))
    w_all, b_all = rt.train_heads(feats, batches, starts, torch.zeros(3), lr=1e-2)
    for k in range(3):
        w_k, b_k = rt.train_heads(feats, batches[k : k + 1], starts[k : k + 1], torch.zeros(1), lr=1e-2)
        assert torch.allclose(w_all[k], w_k[0], atol=1e-6) and torch.allclose(b_all[k], b_k[0], atol=1e-6)
    for bad, match in (
        (dict(features=feats, batches=batches, w0=starts[:2], b0=torch.zeros(2), lr=1e-2), "batches"),
        (dict(features=feats, batches=batches, w0=starts, b0=torch.zeros(2), lr=1e-2), "w0"),
        (dict(features=feats[:, :4], batches=batches, w0=starts, b0=torch.zeros(3), lr=1e-2), "features"),
        (dict(features=feats, batches=batches, w0=starts, b0=torch.zeros(3), lr=0.0), "positive"),
        (dict(features=feats, batches=batches, w0=starts, b0=torch.zeros(3), lr=1e-2, max_grad_norm=-1.0),
         "max_grad_norm"),
    ):
        with pytest.raises(ValueError, match=match):
            rt.train_heads(**bad)
    with pytest.raises(TypeError, match="lr"):
        rt.train_heads(feats, batches, starts, torch.zeros(3), lr="0.01")
    with pytest.raises(TypeError, match="batches"):
        rt.train_heads(feats, batches.float(), starts, torch.zeros(3), lr=1e-2)


def test_epoch_batches():
    batches = rt.epoch_batches(10, 4, 3, rmlib.make_generator(0))
    assert batches.shape == (6, 8)  # 2 full batches of 4 per epoch (the last 2 pairs are dropped)
    chosen, rejected = batches[:, :4], batches[:, 4:]
    assert torch.equal(rejected, chosen + 10)  # each chosen row's rejected partner
    for epoch in range(3):
        rows = chosen[2 * epoch : 2 * epoch + 2].flatten()
        assert len(set(rows.tolist())) == 8 and rows.max() < 10  # no pair twice within an epoch
    assert torch.equal(batches, rt.epoch_batches(10, 4, 3, rmlib.make_generator(0)))  # seeded
    for bad, error in ((dict(n_pairs=0), ValueError), (dict(batch_size=11), ValueError),
                       (dict(epochs=1.5), TypeError), (dict(batch_size=True), TypeError)):
        kwargs = {**dict(n_pairs=10, batch_size=4, epochs=1, generator=rmlib.make_generator(0)), **bad}
        with pytest.raises(error, match=next(iter(bad))):
            rt.epoch_batches(**kwargs)


def test_trl_accuracy_counts_ties_as_wrong():
    zeros = torch.zeros(4)
    assert rt.trl_accuracy(zeros, zeros) == 0.0
    assert rmlib.preference_accuracy(zeros, zeros) == 0.5
    assert rt.trl_accuracy(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])) == 0.5


def test_trl_missing_names_what_to_install(monkeypatch):
    import importlib.util

    assert rt.trl_missing() is None
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "trl" else real_find_spec(name, *a))
    message = rt.trl_missing()
    assert message == 'Lesson 08: trl not installed (the [real,trainer] extra); to install: pip install -e ".[real,trainer]"'


def test_bad_inputs(tokenizer):
    with pytest.raises(ValueError, match="no pairs"):
        rt.tokenise_pairs(tokenizer, [])
    from transformers import BertConfig, BertForSequenceClassification, LlamaConfig, LlamaForSequenceClassification

    bert = BertForSequenceClassification(BertConfig(vocab_size=32, hidden_size=16, num_hidden_layers=2,
                                                    num_attention_heads=2, intermediate_size=32, num_labels=1))
    for bad, error in ((-1, ValueError), (3, ValueError), (True, TypeError), (1.5, TypeError)):
        with pytest.raises(error, match="layer"):
            rt.freeze_below(bert, bad)
    rt.freeze_below(bert, 1)
    assert not any(p.requires_grad for p in bert.bert.encoder.layer[0].parameters())
    assert all(p.requires_grad for p in bert.bert.encoder.layer[1].parameters())
    llama = LlamaForSequenceClassification(LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                                                       num_hidden_layers=1, num_attention_heads=2,
                                                       num_key_value_heads=2, num_labels=1, pad_token_id=0))
    with pytest.raises(ValueError, match="decoders"):
        with rt.record_head(llama):
            pass
    with pytest.raises(ValueError, match="not been called"):
        rt.HeadRecord().pairs()


# --- lesson 08's full-training control in a child process (start_full_training) -------------------------

def _result_line(**fields) -> str:
    return rt.FULL_TRAINING_TAG + json.dumps({"runs": {"std 1": {"std": 2.0, "moved": 1e-3}}, "threads": 1,
                                              "finished": 1e9 + 4.0, **fields}) + "\n"


STDS = {"std 1": 1.0}


def test_full_training_child_failure_and_timeout_are_reported(monkeypatch):
    log = "".join(f"log line {k}\n" for k in range(100))
    fake_children(monkeypatch, returncode=1, output=log + "Traceback: boom\n")
    with pytest.raises(RuntimeError, match=r"exit code 1(.|\n)*log line 99\nTraceback: boom") as failed:
        rt.start_full_training(STDS, 1).result()
    assert "log line 70\n" not in str(failed.value)  # the tail of the child's output, not all of it

    fake_children(monkeypatch, output="no result line\n")  # exit code 0 but nothing measured: still a failure
    with pytest.raises(RuntimeError, match="failed(.|\n)*no result line"):
        rt.start_full_training(STDS, 1).result()

    fake_children(monkeypatch, output=_result_line() * 2)  # two result lines: which one? a failure
    with pytest.raises(RuntimeError, match="failed"):
        rt.start_full_training(STDS, 1).result()

    children = fake_children(monkeypatch, hangs=True, output="still training\n")
    with pytest.raises(TimeoutError, match="did not finish in 5 s(.|\n)*still training"):
        rt.start_full_training(STDS, 1, timeout=5).result()
    assert children[0].killed


def test_a_started_full_training_reports_the_childs_own_time_once(monkeypatch):
    children = fake_children(monkeypatch, output="a library's warning\n" + _result_line() + "more log\n")
    fake_clock(monkeypatch, 1e9)
    monkeypatch.setattr(rt.torch, "get_num_threads", lambda: 3)
    run = rt.start_full_training(STDS, 1, max_steps=20, seed=0)
    spec = json.loads(children[0].command[-1])  # what the child is told to run: the caller's arguments
    assert children[0].command[:3] == [sys.executable, "-m", "rmlib.lab.trainer"]
    assert spec == {"stds": STDS, "head_seed": 1, "config": {"max_steps": 20, "seed": 0}, "threads": 3}
    assert (run.stds, run.head_seed, run.config) == (STDS, 1, {"max_steps": 20, "seed": 0})
    first = run.result()
    assert first == rt.FullTraining(runs={"std 1": {"std": 2.0, "moved": 1e-3}}, threads=1, seconds=4.0)
    assert run.result() is first and len(children) == 1  # waited for once; 4 s: the child's end, not now


def test_a_dropped_full_training_run_stops_its_child(monkeypatch):
    # A notebook's first cell run again drops the old run: its child must not train on in the background.
    children = fake_children(monkeypatch, hangs=True)
    run = rt.start_full_training(STDS, 1)
    del run
    gc.collect()
    assert children[0].killed


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (([("std 1", 1.0)], 1), {}, TypeError, "stds must be a dict"),
        (({}, 1), {}, ValueError, "at least one"),
        (({1: 1.0}, 1), {}, TypeError, "label of stds must be a string"),
        (({"a": -1.0}, 1), {}, ValueError, r"stds\['a'\]"),
        (({"a": "1"}, 1), {}, TypeError, r"stds\['a'\]"),
        ((STDS, -1), {}, ValueError, "head_seed"),
        ((STDS, 1.0), {}, TypeError, "head_seed must be an int"),
        ((STDS, 1), {"timeout": 0}, ValueError, "timeout"),
        ((STDS, 1), {"optim": object()}, TypeError, "config must hold JSON values"),
    ],
)
def test_full_training_bad_arguments_named(monkeypatch, args, kwargs, error, match):
    children = fake_children(monkeypatch)
    with pytest.raises(error, match=match):
        rt.start_full_training(*args, **kwargs)
    assert not children  # refused before any child starts


def test_full_training_without_trl_says_what_to_install(monkeypatch):
    children = fake_children(monkeypatch)
    monkeypatch.setattr(rt, "trl_missing", lambda: "Lesson 08: trl not installed")
    with pytest.raises(ImportError, match="trl not installed"):
        rt.start_full_training(STDS, 1)
    assert not children


def test_the_child_gives_the_numbers_of_this_process():
    """One short run in a real child process and here: the same numbers, bit for bit, with this process's threads."""
    stds, config = {"1/sqrt(d+1)": rmlib.score_head_std(D)}, dict(max_steps=2, per_device_eval_batch_size=80, seed=0)
    run = rt.start_full_training(stds, 1, **config)
    here = rt.full_training(stds, 1, **config)  # meanwhile, the same run in this process
    done = run.result()
    assert done.runs == here and done.threads == torch.get_num_threads() and done.seconds > 0
    assert 0 < here["1/sqrt(d+1)"]["moved"] < 1e-3 and here["1/sqrt(d+1)"]["std"] > 0  # it trained, a little
