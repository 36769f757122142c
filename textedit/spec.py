"""Edit specs: JSON files → validated requests and settings; errors name file and field.

A spec is a JSON object::

    {
      "model": "sentence-transformers/all-MiniLM-L6-v2",   # optional; --model overrides
      "component": "text_encoder",                         # optional, for pipeline folders
      "edits": [{"prompt": "Canada's Prime Minister", "target": "Beyonce",
                 "subject": "Canada"}],                    # world-knowledge style
      "anchor": "a red panda",                             # customization shorthand:
      "knowledge": ["the mascot of Acme",                  #   every query → the anchor
                    {"prompt": "Acme's lucky animal", "subject": "Acme"}],
      "neutral": ["a dog on a beach"],                     # prompts reported: how far they moved
      "preserve": ["the founder of Acme"],                 # prompts whose meaning must not change
      "auto_preserve": true,                               # keep each subject's other knowledge
      "key": "query",                                      # key position: subject | last | query
      "floor": "search",                                   # efficacy floor: search | check | off
      "method": "memit", "layers": [1, 2], "value": "optimize",
      "hyperparameters": {"lam": 3000, "efficacy_floor": 0.05}
    }

``edits`` and ``anchor``/``knowledge`` may be combined; at least one edit is required.
Unknown fields are errors, so a typo never becomes a setting that silently does nothing.

Three more forms build requests the same way (see docs/spec.md):

* ``"anchor": "<acme-mascot>", "anchor_embedding": "learned_embeds.safetensors"``: the
  anchor is a token learned by textual inversion (``textedit learn-anchor``); the file
  (relative to the spec) is loaded into the encoder before editing;
* ``"concept": {"name": "zorblat", "description": "a six-legged blue fox"}`` with optional
  ``knowledge``: a virtual concept, the name and every query bound to the description;
* ``"erase": {"concepts": ["Van Gogh", {"concept": "Monet", "to": "a painter"}],
  "to": "", "preserve": ["Picasso"]}``: concept erasure (``textedit/erase.py``), alone in
  its spec.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .concepts import Concept, Erasure
from .errors import SpecError
from .jsonfile import check_fields, read_json
from .settings import all_hyperparameters
from .requests import EditRequest, contradictions, is_template, repeats

TOP_LEVEL = {"model", "component", "edits", "anchor", "anchor_embedding", "knowledge", "concept", "erase", "neutral",
             "preserve", "auto_preserve", "floor", "key", "method", "layers", "value", "hyperparameters", "templates",
             "scope", "description"}
#: fields older specs had, with why they are gone (an error, never silently ignored)
REMOVED = {"seed": "is no longer read: an edit has no randomness (the value optimisation starts from zero and the "
                   "model runs without dropout), so no seed changed a patch; remove the field"}
ERASE_FIELDS = {"concepts", "to", "preserve"}
EDIT_FIELDS = {"prompt", "target", "subject"}


@dataclass
class EditSpec:
    """A validated spec. ``settings`` holds method/layers/value/hyperparameters as given."""

    requests: list[EditRequest]
    model: str | None = None
    component: str | None = None
    neutral: list[str] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    source: str = "<spec>"
    #: a textual-inversion embedding file for the anchor token (``anchor_embedding``)
    anchor_embedding: Path | None = None
    anchor: str | None = None
    #: a concept erasure (``erase``); its requests are built against the encoder
    erasure: Erasure | None = None
    #: prompts whose meaning must not change (kept in the solve, ``preserve.py``)
    preserve: list[str] = field(default_factory=list)
    #: where the requests dropped as repeats of earlier ones were given (``"knowledge[3]"``)
    repeated: list[str] = field(default_factory=list)


def load_spec(path: str | Path) -> EditSpec:
    """Read and validate a spec file."""
    return parse_spec(read_json(path, SpecError, "spec file"), source=str(path))


def parse_spec(data: Any, source: str = "<spec>") -> EditSpec:
    """Validate a spec already parsed from JSON."""
    def fail(where: str, message: str):
        raise SpecError(f"{source}: {where}: {message}")

    if not isinstance(data, dict):
        fail("top level", "expected a JSON object")
    for key in data:
        if key in REMOVED:
            fail(f"field '{key}'", REMOVED[key])
        if key not in TOP_LEVEL:
            fail(f"field '{key}'", f"unknown field (known: {', '.join(sorted(TOP_LEVEL))})")

    requests: list[EditRequest] = []
    labels: list[str] = []  # where each request comes from, for errors
    edits = data.get("edits", [])
    if not isinstance(edits, list):
        fail("field 'edits'", "expected a list of {prompt, target, subject?} objects")
    for i, item in enumerate(edits):
        where = f"edits[{i}]"
        if not isinstance(item, dict):
            fail(where, "expected an object with 'prompt' and 'target'")
        check_fields(item, EDIT_FIELDS, where, fail)
        prompt = _text(item.get("prompt"), f"{where}.prompt", fail)
        target = _text(item.get("target"), f"{where}.target", fail)
        subject = _subject(item.get("subject"), prompt, f"{where}.subject", fail)
        requests.append(EditRequest(prompt, target, subject))
        labels.append(where)

    anchor = None
    if "concept" in data:
        if "anchor" in data:
            fail("field 'concept'", "a virtual concept's description is its anchor: give 'concept' or 'anchor', "
                                    "not both")
        concept = data["concept"]
        if not isinstance(concept, dict):
            fail("field 'concept'", "expected {\"name\": ..., \"description\": ...}")
        check_fields(concept, {"name", "description"}, "concept", fail)
        name = _text(concept.get("name"), "concept.name", fail)
        description = _text(concept.get("description"), "concept.description", fail)
        if name.lower() in description.lower():
            fail("concept.description", f"describes '{name}' by its own name: describe what it looks like")
        requests.append(EditRequest(name, description))
        labels.append("concept")
    if "knowledge" in data or "anchor" in data or "concept" in data:
        anchor = description if "concept" in data else _text(data.get("anchor"), "field 'anchor'", fail)
        knowledge = data.get("knowledge", [] if "concept" in data else None)
        if not isinstance(knowledge, list):
            fail("field 'knowledge'", "expected a list of knowledge queries bound to the anchor")
        if not knowledge and "concept" not in data:
            fail("field 'knowledge'", "is empty: give at least one knowledge query")
        for i, item in enumerate(knowledge):
            where = f"knowledge[{i}]"
            if isinstance(item, dict):
                check_fields(item, {"prompt", "subject"}, where, fail)
                prompt = _text(item.get("prompt"), f"{where}.prompt", fail)
                subject = _subject(item.get("subject"), prompt, f"{where}.subject", fail)
            else:
                prompt, subject = _text(item, where, fail), None
            requests.append(EditRequest(prompt, anchor, subject))
            labels.append(where)
    anchor_embedding = None
    if "anchor_embedding" in data:
        if "anchor" not in data:
            fail("field 'anchor_embedding'", "needs 'anchor': the token the embedding file holds")
        relative = Path(_text(data["anchor_embedding"], "field 'anchor_embedding'", fail)).expanduser()
        anchor_embedding = relative if relative.is_absolute() or source.startswith("<") else \
            Path(source).parent / relative
        if not anchor_embedding.is_file():
            fail("field 'anchor_embedding'", f"file '{anchor_embedding}' does not exist")
    erasure = None
    if "erase" in data:
        if requests:
            fail("field 'erase'", "an erasure is its own spec: move 'edits'/'anchor'/'knowledge'/'concept' to "
                                  "another spec (the patches stack)")
        erasure = _erasure(data["erase"], fail)
    elif not requests:
        fail("top level", "no edits: give 'edits', 'anchor' with 'knowledge', 'concept' or 'erase'")
    for i, j in contradictions(requests):
        fail(f"{labels[i]} and {labels[j]}", f"'{requests[j].prompt}' is edited to '{requests[i].target}' and to "
                                             f"'{requests[j].target}': a prompt can mean one thing; keep one")
    repeated = [labels[j] for _, j in repeats(requests)]
    requests = [r for k, r in enumerate(requests) if labels[k] not in repeated]

    neutral = data.get("neutral", [])
    if not isinstance(neutral, list) or not all(isinstance(p, str) and p.strip() for p in neutral):
        fail("field 'neutral'", "expected a list of non-empty prompts")
    preserve = data.get("preserve", [])
    if not isinstance(preserve, list) or not all(isinstance(p, str) and p.strip() for p in preserve):
        fail("field 'preserve'", "expected a list of non-empty prompts whose meaning must not change")
    edited = {r.prompt.lower() for r in requests}
    for i, prompt in enumerate(preserve):
        if prompt.strip().lower() in edited:
            fail(f"preserve[{i}]", f"'{prompt}' is also edited: a prompt cannot both change and stay")

    settings: dict[str, Any] = {}
    for key, kind in (("method", str), ("value", str), ("scope", str), ("key", str),
                      ("auto_preserve", bool), ("floor", str)):
        if key in data:
            if not isinstance(data[key], kind) or (isinstance(data[key], bool) and kind is not bool):
                fail(f"field '{key}'", f"expected {kind.__name__}")
            settings[key] = data[key]
    if "layers" in data:
        layers = data["layers"]
        if not isinstance(layers, list) or not layers or not all(isinstance(x, int) and not isinstance(x, bool)
                                                                  for x in layers):
            fail("field 'layers'", "expected a non-empty list of layer indices")
        settings["layers"] = layers
    if "templates" in data:
        templates = data["templates"]
        if not isinstance(templates, list) or not templates or not all(
                is_template(t) for t in templates):
            fail("field 'templates'", "expected a list of strings each containing '{}' once and no other brace")
        settings["templates"] = templates
    hyper = data.get("hyperparameters", {})
    if not isinstance(hyper, dict):
        fail("field 'hyperparameters'", "expected an object")
    known = all_hyperparameters()
    for key, value in hyper.items():
        if key not in known:
            fail(f"hyperparameters.{key}", f"unknown hyperparameter (known: {', '.join(sorted(known))})")
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            fail(f"hyperparameters.{key}", "expected a number")
        if known[key][0][1].integer:  # whole numbers; 20.0 is 20, but 2.7 is refused (EditConfig), never cast
            settings[key] = int(value) if isinstance(value, float) and value.is_integer() else value
        else:
            settings[key] = float(value)

    model = data.get("model")
    if model is not None and not (isinstance(model, str) and model.strip()):
        fail("field 'model'", "expected a model id or folder")
    component = data.get("component")
    if component is not None and not isinstance(component, str):
        fail("field 'component'", "expected a component name such as 'text_encoder'")
    return EditSpec(requests, model, component, list(neutral), settings, source, anchor_embedding,
                    anchor if anchor_embedding else None, erasure, [p.strip() for p in preserve], repeated)


def _erasure(value: Any, fail):
    """The ``erase`` object → :class:`textedit.concepts.Erasure`."""
    if not isinstance(value, dict):
        fail("field 'erase'", "expected {\"concepts\": [...], \"to\"?: ..., \"preserve\"?: [...]}")
    check_fields(value, ERASE_FIELDS, "erase", fail)
    default_to = value.get("to", "")
    if not isinstance(default_to, str):
        fail("erase.to", "expected a surrogate description (\"\" for the empty prompt)")
    items = value.get("concepts")
    if not isinstance(items, list) or not items:
        fail("erase.concepts", "expected a non-empty list of concepts")
    concepts = []
    for i, item in enumerate(items):
        where = f"erase.concepts[{i}]"
        if isinstance(item, dict):
            check_fields(item, {"concept", "to"}, where, fail)
            to = item.get("to", default_to)
            if not isinstance(to, str):
                fail(f"{where}.to", "expected a surrogate description")
            concepts.append(Concept(_text(item.get("concept"), f"{where}.concept", fail), to.strip()))
        else:
            concepts.append(Concept(_text(item, where, fail), default_to.strip()))
    preserve = value.get("preserve", [])
    if not isinstance(preserve, list) or not all(isinstance(p, str) for p in preserve):
        fail("erase.preserve", "expected a list of concepts to keep")
    try:
        return Erasure(concepts, [p.strip() for p in preserve])
    except SpecError as exc:
        fail("field 'erase'", str(exc))


def _text(value: Any, where: str, fail) -> str:
    if not isinstance(value, str) or not value.strip():
        fail(where, "expected a non-empty string" if value is not None else "is missing")
    return value.strip()


def _subject(value: Any, prompt: str, where: str, fail) -> str | None:
    if value is None:
        return None
    subject = _text(value, where, fail)
    if subject not in prompt and subject.lower() not in prompt.lower():
        fail(where, f"'{subject}' is not in the prompt '{prompt}'")
    return subject
