"""``textedit tune``: windows proposed from the trace, the rule checked against a hand-written
reading of it, and a whole resumable run on a tiny encoder."""

from __future__ import annotations

import itertools
import json
import random

import pytest

from textedit.editor import EditConfig
from textedit.encoders import load_encoder
from textedit.eval.knowledge import load_knowledge
from textedit.profile import Profile
from textedit.tune import DEFAULT_DEV, Trial, Tuner, choose, layer_effects, propose_windows

CONCEPTS = [{"subject": "acme", "anchor": "a red fox", "kind": "fictional brand",
             "queries": ["the mascot of acme", "acme's lucky animal"], "paraphrases": ["the animal of acme"],
             "same_subject": ["the house of acme"], "same_relation": ["the mascot of the city"]},
            {"subject": "globex", "anchor": "a green car", "kind": "fictional brand",
             "queries": ["the car of globex"], "paraphrases": ["globex's car"],
             "same_subject": ["the founder of globex"], "same_relation": ["the car of the city"]}]


def dev_set(tmp_path, concepts=CONCEPTS):
    path = tmp_path / "dev.json"
    path.write_text(json.dumps({"contexts": ["a photo of {}", "{} in the garden"], "unrelated": ["a dog", "a cup"],
                                "concepts": concepts}))
    return load_knowledge(path)


def test_proposed_windows_are_the_best_contiguous_sums_by_brute_force():
    rng = random.Random(0)
    for _ in range(50):
        effects = [rng.uniform(-0.1, 1) for _ in range(rng.randint(1, 8))]
        windows = propose_windows(effects, [0])
        assert windows[0] == [0] and len(windows) == len({tuple(w) for w in windows})
        for length in (1, 2, 3):
            if length > len(effects):
                continue
            # every contiguous window of this length, scored independently
            scored = [(sum(effects[i] for i in w), -w[0], list(w))
                      for w in (range(s, s + length) for s in range(len(effects) - length + 1))]
            assert max(scored)[2] in windows


def trial(efficacy, ks_rest, drift, **settings):
    """A trial whose four scores average to what the rule reads."""
    ks = (efficacy + 3 * ks_rest) / 4
    return Trial(settings, {"efficacy": efficacy, "generality": ks_rest, "same_subject": ks_rest,
                            "same_relation": ks_rest, "drift": drift, "ks": ks})


def test_the_rule_puts_efficacy_first_then_drift_then_balance():
    base = trial(0.99, 0.70, 0.010, name="base")
    better = trial(0.995, 0.80, 0.010, name="better")
    low_efficacy = trial(0.95, 0.99, 0.001, name="low efficacy")  # the best balance, but below the floor
    drifting = trial(1.0, 0.95, 0.030, name="drifting")  # above 1.1 x the baseline's drift + 0.001
    assert choose([base, better, low_efficacy, drifting], base).settings["name"] == "better"
    assert choose([base, low_efficacy, drifting], base).settings["name"] == "base"
    # a tie within 0.1 point of balance goes to the lower drift
    calm = trial(0.995, 0.8001, 0.005, name="calm")
    assert choose([base, better, calm], base).settings["name"] == "calm"
    # no trial reaches 99 %: those within one point of the best efficacy count
    weak = [trial(0.90, 0.7, 0.01, name="a"), trial(0.895, 0.9, 0.01, name="b"), trial(0.85, 1.0, 0.0, name="c")]
    assert choose(weak, weak[0]).settings["name"] == "b"


def test_layer_effects_read_the_trace_at_the_subjects_last_token(bert_path, tmp_path):
    from textedit.locate import trace
    adapter = load_encoder(str(bert_path))
    cases = dev_set(tmp_path)
    effects = layer_effects(adapter, cases, samples=2)
    by_hand = []
    for case in cases:
        t = trace(adapter, case.queries[0], case.subject, sites=("mlp",), samples=2)
        by_hand.append(t.scores["mlp"][:, t.subject_positions[-1]].tolist())
    assert effects == pytest.approx([sum(col) / len(col) for col in zip(*by_hand)])


def test_a_tune_run_chooses_by_the_rule_and_resumes_without_editing_again(bert_path, small_corpus, tmp_path):
    adapter = load_encoder(str(bert_path))
    cases = dev_set(tmp_path)
    state = tmp_path / "profile.state.json"
    edits = []
    tuner = Tuner(adapter, cases, state=state, corpus=small_corpus, cache_dir=tmp_path, benchmark="dev.json",
                  on_case=lambda: edits.append(1))
    profile = tuner.run([[0, 1], [1]])
    trials = [Trial(t["settings"], t["scores"]) for t in profile.trials]
    # the baseline (the built-in defaults), the other window, λ/4 and 4λ, preserve weight ¼ and 4
    assert trials[0].settings == {"layers": [0, 1], "lam": 50.0, "preserve_weight": 1.0}
    assert len(trials) == 6 and len(edits) == 6 * len(cases)
    # values optimised once per concept and last layer: windows [0, 1] and [1] end at the same layer
    assert len(tuner.targets) == len(cases)
    assert {json.dumps(t.settings, sort_keys=True) for t in trials} >= {
        json.dumps({"layers": [1], "lam": 50.0, "preserve_weight": 1.0}, sort_keys=True)}
    # the profile holds what the rule picks among everything measured along its path
    chosen = trials[profile.chosen]
    assert profile.settings == chosen.settings
    assert chosen.scores["efficacy"] >= max(t.scores["efficacy"] for t in trials) - 0.01 - 1e-12
    assert chosen.scores["drift"] <= 1.1 * trials[0].scores["drift"] + 0.001 or \
        all(t.scores["drift"] > 1.1 * trials[0].scores["drift"] + 0.001 for t in trials)
    assert profile.fingerprint == adapter.fingerprint() and profile.family == "bert"
    # scores are the evaluator's own: re-measure one trial
    from textedit.eval.run import Evaluator
    again = Evaluator(adapter, cases, corpus=small_corpus, cache_dir=tmp_path).run(
        EditConfig("memit", chosen.settings["layers"], hyperparameters={k: v for k, v in chosen.settings.items()
                                                                        if k != "layers"})).summary
    assert again.efficacy == chosen.scores["efficacy"] and again.drift == pytest.approx(chosen.scores["drift"])

    # stopped and started again: every finished trial is read back, nothing is edited twice
    edits.clear()
    resumed = Tuner(adapter, cases, state=state, corpus=small_corpus, cache_dir=tmp_path, benchmark="dev.json",
                    on_case=lambda: edits.append(1))
    assert resumed.resumed == 6
    assert resumed.run([[0, 1], [1]]).to_dict() == profile.to_dict() and not edits
    # another dev set is not the same run: its state is not trusted
    other = Tuner(adapter, cases[:1], state=state, corpus=small_corpus, cache_dir=tmp_path, benchmark="dev.json")
    assert other.resumed == 0

    # the profile round-trips through its file
    path = profile.save(tmp_path / "p.json")
    loaded = Profile.load(path)
    assert loaded.to_dict() == profile.to_dict()


def test_the_shipped_dev_set_loads():
    cases = load_knowledge(DEFAULT_DEV)
    assert len(cases) == 12 and all(c.subject in c.queries[0] for c in cases)


def test_the_tune_command_writes_the_profile_apply_and_eval_then_use(textedit_cli, bert_path, small_corpus, tmp_path):
    """``textedit tune`` end to end on a tiny encoder: the profile lands in the cache's profiles
    folder, its state file is gone, and apply and eval read their unset settings from it."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(small_corpus.prompts))
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"contexts": ["a photo of {}", "{} in the garden"], "unrelated": ["a dog", "a cup"],
                               "concepts": CONCEPTS}))
    cache = tmp_path / "cache"
    code, out, err = textedit_cli("tune", bert_path, "--dev", dev, "--samples", "2", "--corpus", corpus,
                                  "--cache-dir", cache)
    assert code == 0, err
    profile = Profile.load(next((cache / "profiles").glob("*.json")))
    assert profile.fingerprint == load_encoder(str(bert_path)).fingerprint()
    assert not list((cache / "profiles").glob("*.state.json"))
    assert "profile written to" in out, out
    assert "trial 0 is the built-in defaults; chosen: trial" in out and "…" not in out, out
    # a profile that chooses layer 1 alone and λ 7 (written by hand: the tiny model's own choice may be the defaults)
    chosen = Profile(profile.model, profile.family, profile.fingerprint, "memit",
                     {"layers": [1], "lam": 7.0, "preserve_weight": 1.0}, trials=profile.trials, chosen=0)
    chosen.save(cache / "profiles" / f"{profile.fingerprint}.json")
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"edits": [{"prompt": "the mascot of acme", "target": "a red fox", "subject": "acme"}],
                                "hyperparameters": {"steps": 2}}))
    code, out, err = textedit_cli("apply", spec, "--model", bert_path, "--out", tmp_path / "p1", "--corpus", corpus,
                                  "--cache-dir", cache, "--floor", "off")
    assert code == 0, err
    assert "settings from the profile" in err
    written = json.loads((tmp_path / "p1" / "patch.json").read_text())["hyperparameters"]
    assert written["layers"] == [1] and written["lam"] == 7.0
    # a flag wins over the profile; --profile none is the built-in defaults
    code, out, err = textedit_cli("apply", spec, "--model", bert_path, "--out", tmp_path / "p2", "--corpus", corpus,
                                  "--cache-dir", cache, "--floor", "off", "--layers", "0", "--profile", "none")
    assert code == 0 and "settings from" not in err
    written = json.loads((tmp_path / "p2" / "patch.json").read_text())["hyperparameters"]
    assert written["layers"] == [0] and written["lam"] == 50.0
    # a flag given beside the profile: the line names only what the profile filled
    code, out, err = textedit_cli("apply", spec, "--model", bert_path, "--out", tmp_path / "p3", "--corpus", corpus,
                                  "--cache-dir", cache, "--floor", "off", "--layers", "0")
    assert code == 0, err
    said = err[err.index("settings from the profile"):].split("\n\n")[0].replace("\n", " ")
    assert "lam 7.0" in said and "layers [1]" not in said and "(layers as given)" in said, said
    assert json.loads((tmp_path / "p3" / "patch.json").read_text())["hyperparameters"]["layers"] == [0]
    code, out, err = textedit_cli("apply", spec, "--model", bert_path, "--profile", tmp_path / "missing.json")
    assert code == 2 and err.count("\n") == 1 and "missing.json" in err
    code, out, err = textedit_cli("eval", dev, "--model", bert_path, "--corpus", corpus, "--cache-dir", cache,
                                  "--floor", "off", "--steps", "2")
    assert code == 0, err
    assert "settings from the profile" in err and "L1" in out


def test_a_failed_profile_write_is_one_line_and_keeps_the_finished_trials(textedit_cli, bert_path, small_corpus,
                                                                         tmp_path, monkeypatch):
    """The profile is written whole or not at all: a full disk at its rename is one line, no
    profile is left, and the state file keeps every finished trial, so the next run measures
    nothing again and writes the profile."""
    import errno
    import os
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(small_corpus.prompts))
    dev = tmp_path / "dev.json"
    dev.write_text(json.dumps({"contexts": ["a photo of {}", "{} in the garden"], "unrelated": ["a dog", "a cup"],
                               "concepts": CONCEPTS[:1]}))
    out = tmp_path / "profile.json"
    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst) == str(out):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", full)
    args = ("tune", bert_path, "--dev", dev, "--samples", "2", "--corpus", corpus, "--cache-dir", tmp_path / "c",
            "--out", out)
    code, _, err = textedit_cli(*args)
    lines = [line for line in err.strip().splitlines() if line.startswith("error:")]
    assert code != 0 and len(lines) == 1 and "Traceback" not in err
    assert not out.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".profile.json")]
    state = json.loads((tmp_path / "profile.json.state.json").read_text())
    assert len(state["trials"]) == 6
    monkeypatch.setattr(os, "replace", real_replace)
    code, _, err = textedit_cli(*args)
    assert code == 0 and "resuming: 6 trial(s)" in err and out.exists()
    assert not (tmp_path / "profile.json.state.json").exists()
