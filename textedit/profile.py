"""Edit settings measured per model: the profile that ``textedit tune`` writes.

A profile is a small JSON file naming one model (by the fingerprint of its editable
weights, ``EncoderAdapter.fingerprint``) and the settings chosen for it by measurement::

    {"format": "textedit-profile/1", "model": "sentence-transformers/all-MiniLM-L6-v2",
     "family": "bert", "fingerprint": "d6503cc5…", "method": "memit",
     "settings": {"layers": [0, 1, 2], "lam": 50.0, "preserve_weight": 1.0},
     "rule": "…", "benchmark": {…}, "trials": [{"settings": …, "scores": …}, …], "chosen": 0}

``apply``, ``erase`` and ``eval`` look a profile up for the model they load
(:func:`find`): first in the user's profiles (``$TEXTEDIT_CACHE/profiles``, where ``tune``
writes), then in those shipped with textedit (``textedit/data/profiles``). A profile fills
only what the user left unset (:meth:`Profile.configure`): a spec's or a flag's value always
wins, and a profile made for another method is not used.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from .errors import TexteditError
from .fetch import default_cache_dir
from .hyperparameters import declarations
from .settings import PreserveConfig

PROFILE_FORMAT = "textedit-profile/1"
SHIPPED_PROFILES = Path(__file__).parent / "data" / "profiles"
#: the settings a profile may hold: ``layers`` and hyperparameters (``settings.py``)
PROFILE_FIELDS = ("layers", "lam", "preserve_weight", "preserve_contexts", "efficacy_floor")


class ProfileError(TexteditError):
    """A profile file that cannot be used (one line, names the file)."""


@dataclass
class Profile:
    """Settings chosen for one model (module docstring)."""

    model: str
    family: str
    fingerprint: str
    method: str
    settings: dict
    rule: str = ""
    benchmark: dict = field(default_factory=dict)
    trials: list = field(default_factory=list)
    chosen: int | None = None
    path: Path | None = None  # where it was read from (not stored)

    def to_dict(self) -> dict:
        return {"format": PROFILE_FORMAT, "model": self.model, "family": self.family, "fingerprint": self.fingerprint,
                "method": self.method, "settings": self.settings, "rule": self.rule, "benchmark": self.benchmark,
                "trials": self.trials, "chosen": self.chosen}

    def save(self, path: str | Path) -> Path:
        """Write the profile atomically (a temporary name, then a rename)."""
        from .io import atomic_write_text  # deferred: io imports torch; reading a profile does not need it
        path = Path(path)
        atomic_write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False, sort_keys=False) + "\n", path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "Profile":
        """Read and check a profile; any problem is one :class:`ProfileError` line naming the file."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ProfileError(f"profile '{path}': cannot read it ({exc.strerror or exc})") from None
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ProfileError(f"profile '{path}' is not JSON ({type(exc).__name__})") from None
        if not isinstance(data, dict) or data.get("format") != PROFILE_FORMAT:
            raise ProfileError(f"profile '{path}' is not a textedit profile (format '{PROFILE_FORMAT}')")
        for name in ("model", "family", "fingerprint", "method"):
            if not isinstance(data.get(name), str):
                raise ProfileError(f"profile '{path}': field '{name}' must be a string")
        settings = data.get("settings")
        if not isinstance(settings, dict):
            raise ProfileError(f"profile '{path}': field 'settings' must be an object")
        for name, value in settings.items():
            if name not in PROFILE_FIELDS:
                raise ProfileError(f"profile '{path}': unknown setting '{name}' (known: {', '.join(PROFILE_FIELDS)})")
            if name == "layers":
                if not (isinstance(value, list) and value and all(type(v) is int for v in value)):
                    raise ProfileError(f"profile '{path}': 'layers' must be a non-empty list of integers")
            elif not (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)):
                raise ProfileError(f"profile '{path}': setting '{name}' must be a finite number")
        return cls(data["model"], data["family"], data["fingerprint"], data["method"], settings,
                   str(data.get("rule", "")), data.get("benchmark") or {}, list(data.get("trials") or []),
                   data.get("chosen"), path)

    def applies_to(self, config) -> bool:
        """Whether this profile was measured for ``config``'s kind of edit: the same method, with
        keys at the family's default position (``tune`` measures there; λ at query keys, say,
        is another quantity)."""
        return config.method == self.method and config.key is None

    def configure(self, config):
        """``config`` (an ``EditConfig``) with this profile's settings where the user set none.

        ``layers`` when ``config.layers`` is ``None``; each hyperparameter the config's method,
        value strategy and preservation read, when not given. Unchanged where it does not
        apply (:meth:`applies_to`)."""
        from .editor import EditConfig  # deferred: the editor imports torch
        if not self.applies_to(config):
            return config
        declared = config._declared()
        # the kept prompts' knobs only where the edit may keep prompts: with --no-preserve they
        # would do nothing, and a knob that does nothing is refused
        skipped = set(declarations(PreserveConfig)) if config.auto_preserve is False else set()
        hyperparameters = dict(config.hyperparameters)
        for name, value in self.settings.items():
            if name != "layers" and name in declared and name not in hyperparameters and name not in skipped:
                hyperparameters[name] = value
        layers = config.layers if config.layers is not None else self.settings.get("layers")
        filled = EditConfig(config.method, layers, config.value, config.templates, config.scope, config.key,
                            config.auto_preserve, config.floor, hyperparameters)
        filled.from_profile = tuple(name for name in hyperparameters if name not in config.hyperparameters)
        return filled

    def summary(self, given=None, filled=None) -> str:
        """One line: the profile and its settings; with the config as ``given`` and as
        ``filled`` (:meth:`configure`), only those it filled, and which ones the user set."""
        where = f" ({self.path})" if self.path else ""
        if given is None or filled is None:
            used, overridden = list(self.settings), []
        else:
            used = [name for name in self.settings if (name == "layers" and given.layers is None)
                    or name in filled.from_profile]
            overridden = [name for name in self.settings if name not in used]
        settings = ", ".join(f"{name} {self.settings[name]}" for name in used) or "none of its settings"
        return f"profile for {self.model}{where}: {settings}" + \
            (f" ({', '.join(overridden)} as given)" if overridden else "")


def profile_line(profile: Profile, given, filled) -> str:
    """What ``apply`` and ``eval`` say when a profile filled ``given`` into ``filled``: one line."""
    return f"settings from the {profile.summary(given, filled)}"


def user_profiles_dir(cache_dir: str | Path | None = None) -> Path:
    """Where ``tune`` writes and ``find`` looks first: ``<cache>/profiles``."""
    return Path(cache_dir).expanduser() / "profiles" if cache_dir else default_cache_dir() / "profiles"


def profile_path(fingerprint: str, cache_dir: str | Path | None = None) -> Path:
    """The user profile file of a model with ``fingerprint``."""
    return user_profiles_dir(cache_dir) / f"{fingerprint}.json"


def find(fingerprint: str, cache_dir: str | Path | None = None) -> Profile | None:
    """The profile of the model with ``fingerprint``: the user's, else a shipped one, else ``None``.

    A user profile that cannot be read is an error (the user made it and expects it used);
    shipped profiles are checked by the test suite."""
    user = profile_path(fingerprint, cache_dir)
    if user.exists():
        return _load_for(user, fingerprint)
    for path in sorted(SHIPPED_PROFILES.glob("*.json")) if SHIPPED_PROFILES.is_dir() else []:
        profile = Profile.load(path)
        if profile.fingerprint == fingerprint:
            return profile
    return None


def _load_for(path: str | Path, fingerprint: str) -> Profile:
    """The profile at ``path``, which must have been made for the model with ``fingerprint``."""
    profile = Profile.load(path)
    if profile.fingerprint != fingerprint:
        raise ProfileError(f"profile '{path}' was made for the model with fingerprint {profile.fingerprint}, "
                           f"not this one ({fingerprint})")
    return profile


def configured(config, fingerprint: str, choice: str | Path | None = None, cache_dir: str | Path | None = None):
    """``(config, profile)``: ``config`` with the model's profile filled in where the user set
    nothing, and the profile used (``None``: none).

    ``choice``: ``None`` finds the profile of the model with ``fingerprint`` (:func:`find`);
    ``"none"`` uses none (the built-in defaults); anything else is a profile file, which must
    have been made for this model."""
    if choice is not None and str(choice) == "none":
        return config, None
    if choice is None:
        profile = find(fingerprint, cache_dir)
    else:
        profile = _load_for(choice, fingerprint)
    if profile is None or not profile.applies_to(config):
        return config, None
    return profile.configure(config), profile
