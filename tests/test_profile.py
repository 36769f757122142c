"""Profiles: read and checked in one line, found by fingerprint (the user's before the shipped
ones), and filling only what the user left unset."""

from __future__ import annotations

import json

import pytest

from textedit.editor import EditConfig
from textedit.profile import PROFILE_FORMAT, SHIPPED_PROFILES, Profile, ProfileError, find, profile_path


def make(fingerprint="abc", **settings) -> Profile:
    return Profile("some/model", "bert", fingerprint, "memit", settings or {"layers": [1, 2], "lam": 200.0,
                                                                            "preserve_weight": 0.25})


def test_a_profile_fills_only_what_the_user_left_unset():
    profile = make()
    filled = profile.configure(EditConfig())
    assert list(filled.layers) == [1, 2] and filled.get("lam") == 200.0 and filled.get("preserve_weight") == 0.25
    given = profile.configure(EditConfig(layers=[0], lam=7.0))
    assert list(given.layers) == [0] and given.get("lam") == 7.0 and given.get("preserve_weight") == 0.25
    assert filled.from_profile == ("lam", "preserve_weight") and given.from_profile == ("preserve_weight",)
    # measured at the default key position: an edit with keys chosen by the user keeps its own defaults
    assert profile.configure(EditConfig(key="query")).layers is None
    # with the automatic kept prompts off, the kept prompts' knobs are not filled in (they would do nothing)
    off = profile.configure(EditConfig(auto_preserve=False))
    assert off.get("lam") == 200.0 and "preserve_weight" not in off.hyperparameters
    # a profile for another method is not used; a setting the method does not read is not forced on it
    assert profile.configure(EditConfig("rome")).layers is None
    other = Profile("m", "bert", "abc", "rome", {"layers": [1], "lam": 3.0})
    rome = other.configure(EditConfig("rome"))
    assert list(rome.layers) == [1] and "lam" not in rome.hyperparameters


@pytest.mark.parametrize("content, message", [
    ("{", "is not JSON"),
    ("[]", "is not a textedit profile"),
    (json.dumps({"format": "x"}), "is not a textedit profile"),
    (json.dumps({"format": PROFILE_FORMAT, "model": 3}), "field 'model' must be a string"),
    (json.dumps({"format": PROFILE_FORMAT, "model": "m", "family": "bert", "fingerprint": "f", "method": "memit",
                 "settings": {"layers": []}}), "'layers' must be a non-empty list of integers"),
    (json.dumps({"format": PROFILE_FORMAT, "model": "m", "family": "bert", "fingerprint": "f", "method": "memit",
                 "settings": {"lam": "big"}}), "setting 'lam' must be a finite number"),
    (json.dumps({"format": PROFILE_FORMAT, "model": "m", "family": "bert", "fingerprint": "f", "method": "memit",
                 "settings": {"steps": 3}}), "unknown setting 'steps'"),
    ("[" * 100000 + "]" * 100000, "is not JSON"),
])
def test_bad_profiles_are_one_line(tmp_path, content, message):
    path = tmp_path / "p.json"
    path.write_text(content)
    with pytest.raises(ProfileError, match=message) as info:
        Profile.load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_the_users_profile_comes_before_the_shipped_one(tmp_path):
    assert find("no-such-fingerprint", tmp_path) is None
    mine = make("abc")
    mine.save(profile_path("abc", tmp_path))
    assert find("abc", tmp_path).settings == mine.settings
    # a user profile filed under another model's fingerprint is refused, not used
    make("xyz").save(profile_path("abc", tmp_path))
    with pytest.raises(ProfileError, match="made for the model with fingerprint xyz"):
        find("abc", tmp_path)


def test_shipped_profiles_load_and_name_distinct_models(tmp_path):
    shipped = [Profile.load(p) for p in sorted(SHIPPED_PROFILES.glob("*.json"))]
    assert len({p.fingerprint for p in shipped}) == len(shipped)
    for profile in shipped:
        assert find(profile.fingerprint, tmp_path).fingerprint == profile.fingerprint
        assert profile.trials and profile.settings == profile.trials[profile.chosen]["settings"]
        EditConfig(profile.method, profile.settings["layers"],
                   hyperparameters={k: v for k, v in profile.settings.items() if k != "layers"})


def test_configured_finds_takes_a_file_or_none(tmp_path):
    from textedit.profile import configured
    make("abc").save(profile_path("abc", tmp_path))
    config, used = configured(EditConfig(), "abc", cache_dir=tmp_path)
    assert used is not None and list(config.layers) == [1, 2]
    config, used = configured(EditConfig(), "abc", "none", cache_dir=tmp_path)
    assert used is None and config.layers is None
    other = make("xyz").save(tmp_path / "other.json")
    with pytest.raises(ProfileError, match="made for the model with fingerprint xyz, not this one"):
        configured(EditConfig(), "abc", other, cache_dir=tmp_path)
    assert configured(EditConfig("rome"), "abc", cache_dir=tmp_path)[1] is None  # made for memit
    assert configured(EditConfig(), "unknown", cache_dir=tmp_path)[1] is None


def test_a_profiles_kept_prompt_knob_is_no_error_for_an_edit_that_keeps_none(bert_path, small_corpus, tmp_path):
    """A request without a subject keeps no prompts: the user's preserve_weight is refused as a
    knob doing nothing, the profile's is not (the user did not ask for it)."""
    from textedit.editor import edit
    from textedit.encoders import load_encoder
    from textedit.errors import SpecError
    from textedit.requests import EditRequest
    adapter = load_encoder(str(bert_path))
    request = [EditRequest("the traditional food of diwali", "sweets")]
    common = dict(corpus=small_corpus, cache_dir=tmp_path)
    with pytest.raises(SpecError, match="'preserve_weight' does nothing here"):
        edit(adapter, request, EditConfig(layers=[0], steps=2, floor="off", preserve_weight=0.5), **common)
    profiled = make("abc", layers=[0], preserve_weight=0.5).configure(EditConfig(steps=2, floor="off"))
    patch = edit(adapter, request, profiled, **common)
    assert patch.hyperparameters["layers"] == [0] and "preserve_weight" not in patch.hyperparameters


def test_inspect_shows_the_models_profile(textedit_cli, bert_path, tmp_path, monkeypatch):
    from textedit.encoders import load_encoder
    monkeypatch.setenv("TEXTEDIT_CACHE", str(tmp_path))
    code, out, _ = textedit_cli("inspect", bert_path)
    assert code == 0 and "edit settings: the built-in defaults (no profile for this model" in out
    make(load_encoder(str(bert_path)).fingerprint(), layers=[1], lam=7.0).save(
        profile_path(load_encoder(str(bert_path)).fingerprint(), tmp_path))
    code, out, _ = textedit_cli("inspect", bert_path)
    assert code == 0 and "edit settings: the profile for some/model" in out and "layers [1], lam 7.0" in out
