"""The encoder adapter: everything textedit needs to know about one encoder family.

An adapter wraps a Hugging Face encoder and its (fast) tokenizer and answers, for its
family only:

* where the MLP down-projection of layer ``i`` is (its input is the *key* ``k``, its output
  the *value* ``v``), and where the residual stream that ``v`` is added to enters;
* how the downstream consumer tokenizes (CLIP in Stable Diffusion pads to 77 and passes no
  attention mask; a sentence model passes one) and where a substring's tokens are;
* what the encoder's *output* is: the per-token hidden states a pipeline reads, and a
  sentence vector for similarity (pooled EOS for CLIP, mean pooling otherwise).

Adding a family means writing one subclass with ``@register_adapter`` in a new file of this
folder, which ``textedit.encoders`` imports; nothing else branches on the model's name.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass
from typing import ClassVar, Sequence

import torch
from torch import nn

from ..errors import LayerError, SubjectError, quote


@dataclass(frozen=True)
class ConsumerTokenization:
    """How the model that reads this encoder tokenizes and calls it.

    ``template`` is the text the consumer puts around each prompt before tokenizing (``{}``
    marks the prompt; Qwen-Image wraps it in a chat template with a system instruction), and
    ``read_from`` the number of leading tokens it then drops from what it reads (Qwen-Image:
    the 34 tokens of the template before the prompt). The encoder still computes those
    tokens, and the prompt's tokens attend to them, so keys, statistics and edits are read in
    the template; only the consumer's reading skips them. It may still read the first
    ``read_first`` of them (Sana reads its BOS, then only the positions from ``read_from`` on).
    """

    max_length: int  # tokens, template included
    pad_to_max_length: bool
    passes_attention_mask: bool
    template: str = "{}"
    read_from: int = 0
    read_first: int = 0  # of the read_from unread leading tokens, these first ones are read all the same
    lowercase: bool = False  # the consumer lower-cases every prompt first (Sana, PixArt)
    #: padded to ``max_length``, whether the reader receives every padded position; if not, it
    #: reads the real tokens and the first ``padding_read`` padding tokens after them (Chroma: 1)
    reads_padding: bool = True
    padding_read: int = 0
    #: the tokenizer adds its special tokens (a BOS) to the text; off where the template writes
    #: them itself and the consumer tokenizes it as ``apply_chat_template`` does (FLUX.2's Mistral)
    add_special_tokens: bool = True

    def __post_init__(self):
        if self.template.count("{}") != 1:
            raise ValueError(f"a prompt template needs exactly one '{{}}', got {self.template!r}")
        if self.padding_read < 0 or (self.padding_read and self.reads_padding):
            raise ValueError("padding_read counts padding tokens read by a consumer that does not read padding")
        if not 0 <= self.read_first <= self.read_from:
            raise ValueError("read_first counts leading tokens read before read_from")

    def read_positions(self, attention_mask: torch.Tensor, padded: bool, skip_prefix: bool = False) -> torch.Tensor:
        """``[b, T]`` 1 on the positions whose states the reader receives, for a batch with
        this ``attention_mask`` (right padding), ``padded`` as the consumer pads: every
        position if it pads to ``max_length`` and reads the padding, else the real tokens and
        the first ``padding_read`` padding tokens after each prompt's. ``skip_prefix`` leaves
        out the template's unread tokens (``read_first`` … ``read_from − 1``): what the reader
        receives. Statistics keep them, as keys and edits do: the prompt's tokens attend to them."""
        if padded and self.pad_to_max_length and self.reads_padding:
            positions = torch.ones_like(attention_mask)
        elif padded and self.padding_read:
            index = torch.arange(attention_mask.shape[1], device=attention_mask.device)
            positions = (index < attention_mask.sum(1, keepdim=True) + self.padding_read).to(attention_mask.dtype)
        else:
            positions = attention_mask
        if skip_prefix and self.read_from > self.read_first:
            positions = positions.clone()
            positions[:, self.read_first:self.read_from] = 0
        return positions

    def wrap(self, prompt: str) -> tuple[str, int]:
        """(the prompt, lower-cased if the consumer does, in the template; the character where
        the prompt starts). Lower-casing keeps every character's place, so spans still match
        (except for the few characters whose lower case is longer, such as 'İ')."""
        start = self.template.index("{}")
        if self.lowercase:
            prompt = prompt.lower()
        return self.template[:start] + prompt + self.template[start + 2:], start


@dataclass
class TokenBatch:
    """Tokenized prompts. ``attention_mask`` marks real tokens (BOS..EOS), always."""

    input_ids: torch.Tensor  # [batch, tokens]
    attention_mask: torch.Tensor  # [batch, tokens], 1 on real tokens
    offsets: list[list[tuple[int, int]]]  # per prompt, per token: character span

    def __len__(self) -> int:
        return self.input_ids.shape[0]

    def prompt_mask(self) -> torch.Tensor:
        """``[batch, tokens]`` 1 on the tokens of the prompt itself: real tokens with characters
        of it, so neither padding, special tokens nor the consumer's template."""
        spans = torch.tensor([[b > a for a, b in row] for row in self.offsets], dtype=self.attention_mask.dtype)
        return self.attention_mask * spans


ADAPTERS: list[type["EncoderAdapter"]] = []


def register_adapter(cls: type["EncoderAdapter"]) -> type["EncoderAdapter"]:
    """Class decorator: make an adapter known to :func:`adapter_for` and the loader."""
    ADAPTERS.append(cls)
    return cls


def adapter_for(model: nn.Module, tokenizer, name: str = "", **kwargs) -> "EncoderAdapter":
    """Wrap ``model`` in the adapter registered for its class."""
    for cls in ADAPTERS:
        if isinstance(model, cls.model_classes()):
            return cls(model, tokenizer, name=name, **kwargs)
    known = ", ".join(c.__name__ for a in ADAPTERS for c in a.model_classes())
    raise LayerError(f"no adapter for {type(model).__name__}; supported classes: {known}")


class EncoderAdapter(abc.ABC):
    """Base class. Subclasses fill in the class variables, :meth:`model_classes` and
    :meth:`sentence_vector`."""

    family: ClassVar[str]
    #: ``config.model_type`` values this adapter loads
    model_types: ClassVar[tuple[str, ...]]
    #: suffix of the name of the ``nn.ModuleList`` holding the transformer blocks
    layer_list: ClassVar[str]
    #: path, inside one block, of the MLP down-projection ``nn.Linear``
    down_proj: ClassVar[str]
    #: path, inside one block, of the attention sublayer's output projection (its output is
    #: what attention adds to the stream; ``textedit locate`` restores it)
    attention_out: ClassVar[str]
    #: (path inside one block, positional argument) of the residual stream the MLP output
    #: is added to, so that ``z = residual + v`` is the stream right after the MLP.
    residual: ClassVar[tuple[str, int]]
    #: path, inside one block, of an RMS norm applied to the MLP output before the residual
    #: sum (Gemma-2: ``z = residual + norm(v)``); ``None`` when ``z = residual + v``
    mlp_output_norm: ClassVar[str | None] = None
    #: default consumer tokenization for this family
    default_consumer: ClassVar[ConsumerTokenization]
    #: causal attention: real-token states do not depend on trailing padding
    causal: ClassVar[bool] = False

    @property
    def default_key(self) -> str:
        """Where a request's key is read by default (``sites.KEY_POSITIONS``). Bidirectional
        encoders: the subject's last token, measured best on MiniLM with the preserved prompts
        (docs/eval.md; every query token, ``"query"``, generalises better but moves unrelated
        prompts more). Causal ones: the query's last token, the only one that has seen the whole
        query; the subject's token has not seen what follows it ("Acme's lucky animal"), so it
        cannot tell this knowledge from the subject's other facts."""
        return "last" if self.causal else "subject"

    @classmethod
    @abc.abstractmethod
    def model_classes(cls) -> tuple[type, ...]:
        """The transformers classes this adapter wraps."""

    @classmethod
    def model_class_for_config(cls, config) -> type:
        """The transformers class to instantiate for a checkpoint with this config."""
        return cls.model_classes()[0]

    def __init__(self, model: nn.Module, tokenizer, *, name: str = "", consumer: ConsumerTokenization | None = None,
                 hidden_state_index: int = -1):
        self.model = model
        self.tokenizer = tokenizer
        self.name = name or getattr(model.config, "_name_or_path", "") or type(model).__name__
        self.consumer = consumer or self.default_consumer
        #: which hidden state the consumer reads: -1 the last, -2 the penultimate (SDXL, SD3); a
        #: tuple: those layers concatenated along the features (FLUX.2 Klein)
        self.hidden_state_index = hidden_state_index
        self._blocks = self._find_blocks()

    # -- structure ---------------------------------------------------------------------

    def _find_blocks(self) -> nn.ModuleList:
        matches = [(n, m) for n, m in self.model.named_modules()
                   if isinstance(m, nn.ModuleList) and (n == self.layer_list or n.endswith("." + self.layer_list))]
        if len(matches) != 1:
            raise LayerError(f"{type(self.model).__name__}: expected one '{self.layer_list}' block list, found {len(matches)}")
        self._blocks_name = matches[0][0]
        return matches[0][1]

    @property
    def num_layers(self) -> int:
        return len(self._blocks)

    def check_layers(self, layers: Sequence[int]) -> list[int]:
        """Validate layer indices (negative ones count from the end); return them sorted."""
        if not layers:
            raise LayerError("no layers given")
        out = []
        for layer in layers:
            if not -self.num_layers <= int(layer) < self.num_layers:
                raise LayerError(f"layer {layer} is out of range: {self.name} has layers 0..{self.num_layers - 1}")
            out.append(int(layer) % self.num_layers)
        return sorted(set(out))

    def down_proj_name(self, layer: int) -> str:
        return f"{self._blocks_name}.{layer}.{self.down_proj}"

    def down_proj_module(self, layer: int) -> nn.Linear:
        return self._blocks[layer].get_submodule(self.down_proj)

    def linear_module(self, name: str) -> nn.Module | None:
        """The module called ``name`` in the model if it is linear (a 2-D ``weight``), else ``None``."""
        try:
            module = self.model.get_submodule(name)
        except AttributeError:
            return None
        weight = getattr(module, "weight", None)
        return module if isinstance(weight, torch.Tensor) and weight.ndim == 2 else None

    def in_block(self, name: str, layer: int) -> bool:
        """Whether the module called ``name`` lies inside block ``layer``."""
        return name.startswith(f"{self._blocks_name}.{layer}.")

    def residual_module(self, layer: int) -> nn.Module:
        return self._blocks[layer].get_submodule(self.residual[0])

    def mlp_output_module(self, layer: int) -> nn.Module:
        """The module whose output the block adds to the stream: the post-MLP norm, else ``down_proj``."""
        path = self.mlp_output_norm or self.down_proj
        return self._blocks[layer].get_submodule(path)

    def value_in_stream(self, layer: int, v: torch.Tensor) -> torch.Tensor:
        """What the value ``v [n, d]`` adds to the stream: ``v``, or ``norm(v)`` with a post-MLP norm."""
        if self.mlp_output_norm is None:
            return v
        norm = self.mlp_output_module(layer)
        with torch.no_grad():
            return norm(v.to(self.device, self.dtype)).to(v.dtype).to(v.device)

    def value_for_stream(self, layer: int, v: torch.Tensor, share: torch.Tensor) -> torch.Tensor:
        """The value whose stream contribution is that of ``v`` plus ``share`` (both ``[n, d]``).

        Without a post-MLP norm this is ``v + share``. With an RMS norm ``g ⊙ x / rms(x)`` the
        contribution can only turn, not grow, so the answer is the direction ``u / g`` (with
        ``u = norm(v) + share`` and ``g = norm(1)``, the norm's gain) at the rms of ``v``: the
        smallest change of ``v`` whose normalised image points along ``u``.
        """
        if self.mlp_output_norm is None:
            return v + share
        u = self.value_in_stream(layer, v) + share
        gain = self.value_in_stream(layer, torch.ones(1, v.shape[1], dtype=v.dtype))  # g: rms(1) = 1
        direction = u / gain
        rms = lambda x: x.pow(2).mean(-1, keepdim=True).sqrt()  # noqa: E731
        return direction * rms(v) / rms(direction).clamp(min=1e-12)

    def attention_out_module(self, layer: int) -> nn.Module:
        return self._blocks[layer].get_submodule(self.attention_out)

    def block(self, layer: int) -> nn.Module:
        return self._blocks[layer]

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype the model was loaded in (T5 keeps ``wo`` in float32 even then)."""
        return self.model.dtype

    # -- tokenization ------------------------------------------------------------------

    def tokenize(self, prompts: Sequence[str], *, pad_to_consumer: bool = False) -> TokenBatch:
        """Tokenize as the consumer does.

        ``pad_to_consumer=True`` pads exactly as the consumer does (CLIP in Stable Diffusion:
        to 77). ``False`` pads to the longest prompt wherever that gives the same states on
        real tokens: the consumer passes an attention mask, or the model is causal.
        """
        consumer = self.consumer
        pad_full = consumer.pad_to_max_length and (
            pad_to_consumer or (not consumer.passes_attention_mask and not self.causal))
        wrapped = [consumer.wrap(p) for p in prompts]
        # right padding always: real tokens keep positions 0..n-1 (decoder tokenizers often pad left)
        enc = self.tokenizer([text for text, _ in wrapped], padding="max_length" if pad_full else "longest",
                             truncation=True, max_length=self.consumer.max_length, return_offsets_mapping=True,
                             return_tensors="pt", padding_side="right", add_special_tokens=consumer.add_special_tokens)
        # offsets count characters of the prompt itself; a template token has none, (0, 0)
        offsets = [[_in_prompt(int(a), int(b), start, len(prompt)) for a, b in row]
                   for row, (_, start), prompt in zip(enc["offset_mapping"], wrapped, prompts)]
        return TokenBatch(enc["input_ids"], enc["attention_mask"], offsets)

    @staticmethod
    def tokens_in_span(offsets: list[tuple[int, int]], attention_mask: torch.Tensor, start: int, end: int,
                       text: str = "") -> list[int]:
        """Indices of the real tokens overlapping characters ``[start, end)``, ascending."""
        tokens = [i for i, (a, b) in enumerate(offsets) if attention_mask[i] and b > a and a < end and b > start]
        if not tokens:
            raise SubjectError(f"'{quote(text)}' has no tokens left after tokenization (truncated?)")
        return tokens

    @classmethod
    def last_token_in_span(cls, offsets: list[tuple[int, int]], attention_mask: torch.Tensor, start: int, end: int,
                           text: str = "") -> int:
        """Index of the last real token overlapping characters ``[start, end)``."""
        return cls.tokens_in_span(offsets, attention_mask, start, end, text)[-1]


    # -- running the model -------------------------------------------------------------

    @property
    def text_model(self) -> nn.Module:
        """The module prompts run through: the model itself, unless it wraps more than the
        text encoder (Qwen2.5-VL's vision tower and LM head)."""
        return self.model

    def forward(self, batch: TokenBatch, **kwargs):
        """Call the model as the consumer does (with or without the attention mask)."""
        device = self.device
        mask = batch.attention_mask.to(device) if self.consumer.passes_attention_mask else None
        return self.text_model(input_ids=batch.input_ids.to(device), attention_mask=mask, **kwargs)

    def hidden_states(self, batch: TokenBatch) -> torch.Tensor:
        """Per-token hidden states the consumer reads, ``[batch, tokens, d_model]``."""
        if self.hidden_state_index == -1:
            return self.forward(batch).last_hidden_state
        hidden = self.forward(batch, output_hidden_states=True).hidden_states
        if isinstance(self.hidden_state_index, tuple):
            return torch.cat([hidden[h] for h in self.hidden_state_index], dim=-1)
        return hidden[self.hidden_state_index]

    @abc.abstractmethod
    def sentence_vector(self, batch: TokenBatch, outputs) -> torch.Tensor:
        """``[batch, d]`` vector that stands for each prompt in similarity measurements."""

    def embed(self, prompts: Sequence[str], batch_size: int = 64) -> torch.Tensor:
        """Sentence vectors ``[len(prompts), d]`` in float32 (no gradient)."""
        out = []
        with torch.no_grad():
            for i in range(0, len(prompts), batch_size):
                batch = self.tokenize(prompts[i:i + batch_size])
                out.append(self.sentence_vector(batch, self.forward(batch)).float().cpu())
        return torch.cat(out) if out else torch.empty(0)

    # -- identity ----------------------------------------------------------------------

    def fingerprint(self) -> str:
        """A content hash of the encoder's weights (dtype-independent).

        The down-projections, the modules a patch edits, are hashed whole; every other
        parameter contributes its name, shape and up to 2**16 evenly strided values. Values
        are cast to float16 first, so fp32 and fp16 copies of one checkpoint share a
        fingerprint, while any change to an editable weight larger than float16's resolution,
        and any edit or fine-tune of the rest, changes it. Patches and statistics are keyed by it.
        """
        editable = {id(self.down_proj_module(layer).weight) for layer in range(self.num_layers)}
        h = hashlib.sha256()
        for name, param in sorted(self.model.named_parameters(), key=lambda item: item[0]):
            flat = param.detach().reshape(-1)
            step = 1 if id(param) in editable else max(1, flat.numel() // 65536)
            sample = flat[::step].to("cpu", torch.float16)
            h.update(name.encode())
            h.update(str(tuple(param.shape)).encode())
            h.update(sample.numpy().tobytes())
        return h.hexdigest()[:32]

    def describe_layers(self) -> list[dict]:
        """One row per editable layer: module name, weight shape, dtype."""
        rows = []
        for i in range(self.num_layers):
            w = self.down_proj_module(i).weight
            rows.append({"layer": i, "module": self.down_proj_name(i), "d_out": w.shape[0], "d_in": w.shape[1],
                         "dtype": str(w.dtype).replace("torch.", "")})
        return rows


def _in_prompt(a: int, b: int, start: int, length: int) -> tuple[int, int]:
    """A token's character span ``[a, b)`` in the templated text, as a span of the prompt
    that starts at character ``start`` (``(0, 0)`` for a token outside it)."""
    a, b = max(a - start, 0), min(b - start, length)
    return (a, b) if b > a else (0, 0)


def find_span(prompt: str, subject: str | None) -> tuple[int, int]:
    """Character span of ``subject`` in ``prompt`` (case-insensitive fallback); whole prompt if ``None``."""
    if subject is None:
        return 0, len(prompt)
    start = prompt.find(subject)
    if start < 0:
        start = prompt.lower().find(subject.lower())
    if start < 0 or not subject.strip():
        raise SubjectError(f"subject '{quote(subject)}' is not in prompt '{quote(prompt)}'")
    return start, start + len(subject)
