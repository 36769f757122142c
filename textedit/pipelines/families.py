"""Diffusion pipeline families as data: which text encoders each reads, and how.

A family is a diffusers pipeline class plus, per text-encoder component, a :class:`Reading`:
which per-token hidden state the denoiser conditions on (``-1`` the last, after CLIP's final
layer norm; ``-2`` the penultimate layer's output; ``None`` none), whether it reads the
pooled vector, and how the pipeline tokenizes for it (padded to a fixed length, no
attention mask). Everything family-specific lives in :data:`FAMILIES`; no code branches on
a family's name. What an edit of a given layer reaches of these outputs is
:mod:`textedit.pipelines.reach`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ModelLoadError, SpecError

if TYPE_CHECKING:  # the annotations' types: the families are declarations, read without torch (textedit --help)
    import torch

    from ..encoders import ConsumerTokenization


@dataclass(frozen=True)
class Conditioning:
    """What a pipeline hands its denoiser from one encoder for a batch of prompts."""

    #: [b, T, d] per-token states of the tokens it reads, zero after each prompt's end ([b, T, L, d]
    #: for L read layers stacked: HiDream's Llama, which the pipeline hands on as [L, b, T, d])
    states: torch.Tensor | None
    mask: torch.Tensor | None  # [b, T] 1 on read tokens (None with the states)
    pooled: torch.Tensor | None  # [b, d']


@dataclass(frozen=True)
class Reading:
    """How a pipeline encodes a prompt with one text encoder, and what its denoiser reads.

    The prompt is lower-cased if ``lowercase`` (Sana, PixArt), put in ``template`` (``{}``
    marks it; with ``chat_template``, the tokenizer's chat template with these arguments is
    applied around that, as Z-Image and FLUX.2 Klein do, after a ``system_message`` where
    there is one, as FLUX.2 does), tokenized (with the tokenizer's special tokens unless
    ``add_special_tokens`` is off: FLUX.2 tokenizes in ``apply_chat_template``, whose template
    writes the BOS) to at most ``max_length`` tokens (template included) with ``padding``
    ``"max_length"`` or ``"longest"``, and the
    encoder called with its attention mask if ``attention_mask``. The denoiser reads the
    per-token states ``hidden_states[hidden_state]`` (``-1`` the last, after a final norm; a
    tuple: those layers, ``layers`` ``"concatenated"`` along the features, FLUX.2 Klein's 9,
    18, 27, or ``"stacked"`` on a layer axis, HiDream's every layer of Llama; ``None``
    none) from token ``read_from`` on (Qwen-Image drops its template's 34 leading tokens) and
    the first ``read_first`` tokens all the same (Sana's BOS), at the padding positions too
    unless ``reads_padding`` is off (it passes the mask on, or keeps the real tokens only)
    except the first ``padding_read`` padding tokens after each prompt (Chroma's mask leaves
    one on), and the pooled vector if ``pooled``. A tokenizer without a padding token pads
    with its EOS if ``pads_with_eos`` (HiDream sets Llama 3.1's so).

    Two lengths depend on the tokenizer and are resolved by :meth:`for_tokenizer`, as the chat
    template is: with ``length_after_prefix`` the pipeline pads to ``max_length`` tokens after
    its template's text before the prompt, as the tokenizer encodes that text alone (Sana:
    ``len(tokenizer.encode(instruction)) + 298``); ``read_last`` says the denoiser reads the
    last ``read_last`` positions of the sequence padded to that length (Sana: 299), so
    ``read_from`` is ``max_length − read_last``. ``padding_side`` is the side the pipeline
    sets its tokenizer to pad on (Sana and Lumina 2: ``"right"``; ``None``: the tokenizer's
    own). textedit reads prompts padded on the right; a reading of fixed positions of the
    padded sequence (``read_last``) is only right for a pipeline that pads there too.
    """

    hidden_state: int | tuple[int, ...] | None
    pooled: bool  # the pooled (EOS) vector is read
    max_length: int  # tokens the pipeline keeps, template included
    template: str = "{}"
    chat_template: tuple[tuple[str, object], ...] | None = None  # apply_chat_template arguments
    lowercase: bool = False
    read_from: int = 0  # leading tokens (of the template) the denoiser does not read
    attention_mask: bool = False  # the encoder is called with the mask
    padding: str = "max_length"  # or "longest"
    reads_padding: bool = True  # the denoiser receives the padded positions' states
    padding_read: int = 0  # without reads_padding: padding tokens after each prompt read all the same
    read_first: int = 0  # leading tokens read although they come before read_from (Sana: its BOS)
    read_last: int | None = None  # the denoiser reads the padded sequence's last positions (resolved to read_from)
    length_after_prefix: bool = False  # max_length counts the tokens after the template's prefix
    padding_side: str | None = None  # the side the pipeline pads on if it sets one; None: the tokenizer's
    system_message: str | None = None  # with chat_template: a system turn before the prompt's
    add_special_tokens: bool = True  # the tokenizer adds its BOS/EOS to the templated text
    layers: str = "concatenated"  # several read layers: "concatenated" per token, or "stacked" on a layer axis
    pads_with_eos: bool = False  # the pipeline sets the tokenizer's padding token to its EOS

    def __post_init__(self):
        if self.padding not in ("max_length", "longest"):
            raise ValueError(f"padding must be 'max_length' or 'longest', got {self.padding!r}")
        if self.padding_read and (self.reads_padding or self.padding != "max_length"):
            raise ValueError("padding_read counts padding tokens read after a prompt padded to max_length "
                             "by a pipeline that does not read padding otherwise")
        if self.padding_side not in (None, "right"):
            raise ValueError(f"textedit reads prompts padded on the right; padding_side {self.padding_side!r} "
                             "is not supported")
        if self.read_last is not None and (self.read_from or self.padding != "max_length"
                                           or self.padding_side != "right" or self.read_last < 1):
            raise ValueError("read_last counts the last positions of a sequence padded to max_length on the right "
                             "(read_from is then resolved from it)")
        if self.read_first < 0 or (self.read_last is None and self.read_first > self.read_from):
            raise ValueError("read_first counts leading tokens read before read_from")
        if self.layers not in ("concatenated", "stacked"):
            raise ValueError(f"layers must be 'concatenated' or 'stacked', got {self.layers!r}")

    @property
    def read_layers(self) -> tuple[int, ...]:
        """The ``hidden_states`` indices read per token (empty: none)."""
        if self.hidden_state is None:
            return ()
        return self.hidden_state if isinstance(self.hidden_state, tuple) else (self.hidden_state,)

    def for_tokenizer(self, tokenizer) -> "Reading":
        """This reading with what depends on ``tokenizer`` written out: its chat template as a
        plain ``template`` (one-line :class:`ModelLoadError` if the tokenizer has none), then
        ``max_length`` counting the template's prefix, and ``read_from`` from ``read_last``."""
        reading = self._with_chat_template(tokenizer)
        if reading.length_after_prefix:  # as Sana: len(tokenizer.encode(instruction)), BOS included
            prefix = len(tokenizer.encode(reading.template.split("{}")[0]))
            reading = replace(reading, max_length=reading.max_length + prefix, length_after_prefix=False)
        if reading.read_last is not None:
            if reading.read_last > reading.max_length - reading.read_first:
                raise ModelLoadError(f"the pipeline reads the last {reading.read_last} of {reading.max_length} "
                                     f"tokens, which overlap its first {reading.read_first}")
            reading = replace(reading, read_from=reading.max_length - reading.read_last, read_last=None)
        return reading

    def _with_chat_template(self, tokenizer) -> "Reading":
        """This reading with its chat template rendered by ``tokenizer`` into ``template``."""
        if self.chat_template is None:
            return self
        from transformers import ProcessorMixin  # deferred: the families are declarations, read without torch (textedit --help)

        marker = "\ue000"  # a private-use character: no tokenizer's template contains it
        system = [{"role": "system", "content": self.system_message}] if self.system_message is not None else []
        arguments = {"add_generation_prompt": True, **dict(self.chat_template)}
        try:
            text = text_tokenizer(tokenizer).apply_chat_template(
                [*system, {"role": "user", "content": self.template.replace("{}", marker)}], tokenize=False,
                # a processor keeps the chat template (its tokenizer may not have it)
                chat_template=tokenizer.chat_template if isinstance(tokenizer, ProcessorMixin) else None,
                **arguments)
        except Exception as exc:  # no chat template, or one that fails on these arguments
            raise ModelLoadError(f"the pipeline's tokenizer cannot apply its chat template: "
                                 f"{(str(exc).strip() or type(exc).__name__).splitlines()[0][:200]}") from None
        if text.count(marker) != 1 or "{}" in text.replace(marker, ""):
            raise ModelLoadError("the pipeline's chat template does not hold the prompt exactly once")
        return replace(self, template=text.replace(marker, "{}"), chat_template=None)

    @property
    def consumer(self) -> ConsumerTokenization:
        from ..encoders import ConsumerTokenization  # deferred: the families are declarations, read without torch (textedit --help)

        if self.chat_template is not None or self.length_after_prefix or self.read_last is not None:
            raise ValueError("a reading with a chat template, or lengths counted in tokens of its template, needs "
                             "its tokenizer: use reading.for_tokenizer(tokenizer)")
        return ConsumerTokenization(max_length=self.max_length, pad_to_max_length=self.padding == "max_length",
                                    passes_attention_mask=self.attention_mask, template=self.template,
                                    read_from=self.read_from, read_first=self.read_first, lowercase=self.lowercase,
                                    reads_padding=self.reads_padding, padding_read=self.padding_read,
                                    add_special_tokens=self.add_special_tokens)

    def consumer_for(self, tokenizer) -> ConsumerTokenization:
        """:attr:`consumer` with what depends on ``tokenizer`` written out (:meth:`for_tokenizer`)."""
        return self.for_tokenizer(tokenizer).consumer

    def outputs(self) -> tuple[str, ...]:
        """Names of the outputs the denoiser reads, as used in messages."""
        names = []
        if self.read_layers == (-1,):
            names.append("per-token states")
        elif self.layers == "stacked":
            names.append(f"per-token states ({_layer_names(self.read_layers, ', ')}, stacked)")
        elif self.read_layers:
            names.append(f"per-token states ({_layer_names(self.read_layers, ' + ')})")
        if self.pooled:
            names.append("pooled vector")
        return tuple(names)

    def tokenize(self, tokenizer, prompts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input_ids, attention_mask)`` ``[b, T]`` as the pipeline tokenizes ``prompts`` (in its
        template, padded on the right; a mask-passing pipeline's left padding gives the same
        states, its position ids counting real tokens)."""
        consumer = self.consumer_for(tokenizer)
        enc = text_tokenizer(tokenizer)([consumer.wrap(p)[0] for p in prompts], truncation=True,
                                        max_length=consumer.max_length, padding=self.padding, return_tensors="pt",
                                        padding_side="right", add_special_tokens=self.add_special_tokens)
        return enc.input_ids, enc.attention_mask

    def encode(self, encoder: torch.nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
               ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """What the pipeline reads from ``encoder`` for ``input_ids`` ``[b, T]``: (per-token
        states ``[b, T, d]`` (for L read layers ``[b, T, L·d]`` concatenated, ``[b, T, L, d]``
        stacked) at every position or ``None``, pooled vector ``[b, d']`` or ``None``), from one forward pass that keeps the
        gradient. The mask is passed only if the pipeline passes it.

        The pooled vector is ``text_embeds`` for a CLIP with projection, else ``pooler_output``
        (the EOS state after the final layer norm)."""
        import torch  # deferred: the families are declarations, read without torch (textedit --help)

        mask = attention_mask if self.attention_mask else None
        lm = _is_language_model_head(encoder)
        outputs = encoder(input_ids=input_ids, attention_mask=mask,
                          output_hidden_states=lm or self.read_layers not in ((), (-1,)))
        states = None
        if self.read_layers == (-1,) and not lm:
            states = outputs.last_hidden_state
        elif self.read_layers:
            # a model with an LM head (Qwen2.5-VL) returns logits: hidden_states[-1] is after the final norm
            read = [outputs.hidden_states[h] for h in self.read_layers]
            states = torch.stack(read, dim=2) if self.layers == "stacked" else torch.cat(read, dim=-1)
        pooled = None
        if self.pooled:
            pooled = outputs.text_embeds if hasattr(outputs, "text_embeds") else outputs.pooler_output
        return states, pooled

    def read(self, encoder: torch.nn.Module, tokenizer, prompts: Sequence[str]) -> Conditioning:
        """What the denoiser receives from this encoder for ``prompts``, as the pipeline's own
        ``encode_prompt`` computes it: the states of the read tokens (the first ``read_first``
        and those from ``read_from`` on; real tokens and ``padding_read`` padding tokens only
        unless it ``reads_padding``), each prompt's packed to the front and zero-padded to the
        longest, with their mask; and the pooled vector."""
        import torch  # deferred: the families are declarations, read without torch (textedit --help)

        input_ids, attention_mask = self.tokenize(tokenizer, prompts)
        device = next(encoder.parameters()).device
        states, pooled = self.encode(encoder, input_ids.to(device), attention_mask.to(device))
        if states is None:
            return Conditioning(None, None, pooled)
        # a pipeline that reads the padding receives every position as it does a real token
        received = torch.ones_like(attention_mask) if self.reads_padding else attention_mask
        keep = self.consumer_for(tokenizer).read_positions(received, padded=True, skip_prefix=True).bool()
        rows = [states[i][keep[i].to(states.device)] for i in range(len(prompts))]
        length = max(len(r) for r in rows)
        packed = torch.stack([torch.cat([r, r.new_zeros(length - len(r), *r.shape[1:])]) for r in rows])
        mask = torch.stack([torch.arange(length) < len(r) for r in rows]).long()
        return Conditioning(packed, mask, pooled)


def _layer_names(layers: tuple[int, ...], joint: str) -> str:
    """``hidden_states[9] + hidden_states[18]``; a run of more than three, ``hidden_states[1..32]``."""
    if len(layers) > 3 and list(layers) == list(range(layers[0], layers[0] + len(layers))):
        return f"hidden_states[{layers[0]}..{layers[-1]}]"
    return joint.join(f"hidden_states[{h}]" for h in layers)


def text_tokenizer(tokenizer):
    """The tokenizer of a processor (the real FLUX.2 holds Mistral's ``PixtralProcessor``, whose
    text path is its tokenizer's), else ``tokenizer`` itself."""
    from transformers import ProcessorMixin  # deferred: the families are declarations, read without torch (textedit --help)

    return tokenizer.tokenizer if isinstance(tokenizer, ProcessorMixin) else tokenizer


def _is_language_model_head(encoder: torch.nn.Module) -> bool:
    """Whether ``encoder`` is a language model with its output head (Qwen-Image's Qwen2.5-VL,
    FLUX.2 Klein's ``Qwen3ForCausalLM``): it returns logits and, when asked, ``hidden_states``,
    but no ``last_hidden_state``."""
    return encoder.get_output_embeddings() is not None


@dataclass(frozen=True)
class Family:
    """A diffusers pipeline family: its class, what it reads from each encoder, its defaults."""

    name: str
    pipeline_class: str
    readings: Mapping[str, Reading]
    title: str
    steps: int  # num_inference_steps its model cards use
    guidance_scale: float
    #: what diffusers' docs load it in on cuda / mps: a torch dtype or its name ("bfloat16"; the
    #: shipped families name it, so that they are declared without torch)
    accelerator_dtype: str | torch.dtype
    #: the pipeline's argument for the guidance scale (Qwen-Image: true_cfg_scale, which
    #: guides only when a negative prompt is given, hence ``call_arguments``)
    guidance_argument: str = "guidance_scale"
    call_arguments: Mapping[str, object] = field(default_factory=dict)  # further arguments its model cards pass
    #: per component, the denoiser's modules its per-token states pass through first, in order,
    #: each acting on every token alone (``transformer.context_embedder``); none for a UNet,
    #: whose cross-attention projects them per head
    text_projection: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def components(self) -> list[str]:
        return list(self.readings)

    def reading(self, component: str) -> Reading:
        if component not in self.readings:
            raise SpecError(f"{self.title} pipelines have no text encoder '{component}' "
                            f"(they have {', '.join(self.readings)})")
        return self.readings[component]

    def default_dtype(self, device: str) -> torch.dtype:
        """float32 on the CPU; on an accelerator, what the family's model cards use."""
        import torch  # deferred: the families are declarations, read without torch (textedit --help)

        if str(device).startswith("cpu"):
            return torch.float32
        dtype = self.accelerator_dtype
        return getattr(torch, dtype) if isinstance(dtype, str) else dtype


_CLIP_LAST = Reading(hidden_state=-1, pooled=False, max_length=77)
_CLIP_PENULTIMATE = Reading(hidden_state=-2, pooled=False, max_length=77)
_CLIP_PENULTIMATE_POOLED = Reading(hidden_state=-2, pooled=True, max_length=77)

#: the "complex human instruction" SanaPipeline.__call__ puts before every prompt (its default,
#: joined by newlines); the prompt follows "User Prompt: " directly
_SANA_INSTRUCTION = "\n".join((
    "Given a user prompt, generate an 'Enhanced prompt' that provides detailed visual descriptions suitable for "
    "image generation. Evaluate the level of detail in the user prompt:",
    "- If the prompt is simple, focus on adding specifics about colors, shapes, sizes, textures, and spatial "
    "relationships to create vivid and concrete scenes.",
    "- If the prompt is already detailed, refine and enhance the existing details slightly without "
    "overcomplicating.",
    "Here are examples of how to transform or refine prompts:",
    "- User Prompt: A cat sleeping -> Enhanced: A small, fluffy white cat curled up in a round shape, sleeping "
    "peacefully on a warm sunny windowsill, surrounded by pots of blooming red flowers.",
    "- User Prompt: A busy city street -> Enhanced: A bustling city street scene at dusk, featuring glowing street "
    "lamps, a diverse crowd of people in colorful clothing, and a double-decker bus passing by towering glass "
    "skyscrapers.",
    "Please generate only the enhanced description for the prompt below and avoid including any additional "
    "commentary or evaluations:",
    "User Prompt: ",
))

FAMILIES: dict[str, Family] = {f.name: f for f in (
    Family("sd", "StableDiffusionPipeline", {"text_encoder": _CLIP_LAST}, "Stable Diffusion 1.x",
           steps=50, guidance_scale=7.5, accelerator_dtype="float16"),
    Family("sd2", "StableDiffusionPipeline", {"text_encoder": _CLIP_LAST}, "Stable Diffusion 2.x",
           steps=50, guidance_scale=7.5, accelerator_dtype="float16"),
    Family("sdxl", "StableDiffusionXLPipeline",
           {"text_encoder": _CLIP_PENULTIMATE, "text_encoder_2": _CLIP_PENULTIMATE_POOLED}, "SDXL",
           steps=50, guidance_scale=5.0, accelerator_dtype="float16"),
    Family("sd3", "StableDiffusion3Pipeline",
           {"text_encoder": _CLIP_PENULTIMATE_POOLED, "text_encoder_2": _CLIP_PENULTIMATE_POOLED,
            "text_encoder_3": Reading(hidden_state=-1, pooled=False, max_length=256)}, "Stable Diffusion 3",
           steps=28, guidance_scale=7.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder_3": ("transformer.context_embedder",)}),
    Family("flux", "FluxPipeline",
           {"text_encoder": Reading(hidden_state=None, pooled=True, max_length=77),
            "text_encoder_2": Reading(hidden_state=-1, pooled=False, max_length=512)}, "FLUX.1",
           steps=28, guidance_scale=3.5, accelerator_dtype="bfloat16",
           text_projection={"text_encoder_2": ("transformer.context_embedder",)}),
    Family("qwenimage", "QwenImagePipeline", {"text_encoder": Reading(
        hidden_state=-1, pooled=False, max_length=1024 + 34, attention_mask=True, padding="longest",
        reads_padding=False, read_from=34,
        template="<|im_start|>system\nDescribe the image by detailing the color, shape, size, texture, quantity, "
                 "text, spatial relationships of the objects and background:<|im_end|>\n<|im_start|>user\n{}"
                 "<|im_end|>\n<|im_start|>assistant\n")}, "Qwen-Image",
           steps=50, guidance_scale=4.0, accelerator_dtype="bfloat16", guidance_argument="true_cfg_scale",
           call_arguments={"negative_prompt": " "},
           text_projection={"text_encoder": ("transformer.txt_norm", "transformer.txt_in")}),
    # T5 called with its mask on prompts padded to 512; the transformer's mask leaves the real
    # tokens and the first padding token on ("all except the first padding token are masked")
    Family("chroma", "ChromaPipeline", {"text_encoder": Reading(
        hidden_state=-1, pooled=False, max_length=512, attention_mask=True, reads_padding=False, padding_read=1)},
           "Chroma", steps=35, guidance_scale=5.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.context_embedder",)}),
    # lower-cased and stripped (clean_caption falls back to that without bs4 and ftfy), padded
    # to 300, T5 and the transformer's cross-attention both masked
    Family("pixart_sigma", "PixArtSigmaPipeline", {"text_encoder": Reading(
        hidden_state=-1, pooled=False, max_length=300, lowercase=True, attention_mask=True, reads_padding=False)},
           "PixArt-Σ", steps=20, guidance_scale=4.5, accelerator_dtype="float16",
           text_projection={"text_encoder": ("transformer.caption_projection",)}),
    # Gemma-2's penultimate states of the system prompt and the prompt (all read), padded to
    # 256 on the right, masked in Gemma and in the transformer (which keeps mask.sum() tokens)
    Family("lumina2", "Lumina2Pipeline", {"text_encoder": Reading(
        hidden_state=-2, pooled=False, max_length=256, attention_mask=True, reads_padding=False, padding_side="right",
        template="You are an assistant designed to generate superior images with the superior degree of image-text "
                 "alignment based on textual prompts or user prompts. <Prompt Start> {}")}, "Lumina 2",
           steps=30, guidance_scale=4.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.time_caption_embed.caption_embedder",)}),
    # Z-Image-Turbo as the pipeline's own example runs it: 8 steps without guidance (the
    # pipeline's call defaults, 50 steps at guidance 5, suit the undistilled Z-Image)
    Family("zimage", "ZImagePipeline", {"text_encoder": Reading(
        hidden_state=-2, pooled=False, max_length=512, chat_template=(("enable_thinking", True),),
        attention_mask=True, padding="max_length", reads_padding=False)}, "Z-Image",
           steps=8, guidance_scale=0.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.cap_embedder",)}),
    # FLUX.2 [klein] 4B as diffusers' integration test runs it: 4 steps at guidance 1 (the
    # step-distilled release; the base models, and the pipeline's defaults, use 50 steps at
    # 4). The transformer gets all 512 positions, padding included, and no mask.
    Family("flux2klein", "Flux2KleinPipeline", {"text_encoder": Reading(
        hidden_state=(9, 18, 27), pooled=False, max_length=512, chat_template=(("enable_thinking", False),),
        attention_mask=True, padding="max_length", reads_padding=True)}, "FLUX.2 Klein",
           steps=4, guidance_scale=1.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.context_embedder",)}),
    # Gemma-2's last states (after its final norm) of the lower-cased prompt behind the complex
    # human instruction, padded on the right to the instruction's own token count + 298
    # (max_sequence_length 300 − 2), masked; the transformer reads BOS and the last 299 positions,
    # masked: the prompt's tokens from the instruction's end on
    Family("sana", "SanaPipeline", {"text_encoder": Reading(
        hidden_state=-1, pooled=False, max_length=300 - 2, length_after_prefix=True, template=_SANA_INSTRUCTION + "{}",
        lowercase=True, attention_mask=True, reads_padding=False, padding_side="right", read_first=1,
        read_last=300 - 1)}, "Sana",
           steps=20, guidance_scale=4.5, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.caption_projection", "transformer.caption_norm")}),
    # FLUX.2 [dev] as its model card runs it (the pipeline's defaults: 50 steps at guidance 4).
    # Mistral Small 3.1 reads the prompt after its system message, in the chat template with
    # no generation prompt, tokenized as apply_chat_template does (the template writes the
    # BOS); layers 10, 20 and 30 of 40, concatenated per token as Klein's; all 512 positions,
    # padding included (the transformer gets no mask)
    Family("flux2", "Flux2Pipeline", {"text_encoder": Reading(
        hidden_state=(10, 20, 30), pooled=False, max_length=512, chat_template=(("add_generation_prompt", False),),
        system_message="You are an AI that reasons about image descriptions. You give structured responses focusing "
                       "on object relationships, object\nattribution and actions without speculation.",
        add_special_tokens=False, attention_mask=True, padding="max_length", reads_padding=True)}, "FLUX.2 [dev]",
           steps=50, guidance_scale=4.0, accelerator_dtype="bfloat16",
           text_projection={"text_encoder": ("transformer.context_embedder",)}),
    # HiDream-I1 [Full] at the pipeline's defaults (50 steps at guidance 5), every prompt padded
    # to 128 tokens for all four encoders: the pooled (projected) vectors of CLIP-L and CLIP-G,
    # concatenated; T5's last states, masked in T5; Llama 3.1 8B's hidden_states[1:] (the
    # output of each of its 32 layers, the last after the final norm), masked in Llama and
    # stacked on a leading layer axis, of which each transformer block reads one. The
    # transformer gets no mask: padding included. Its text projections are one per block
    # (caption_projection), so it has no single first text layer to compare through
    Family("hidream", "HiDreamImagePipeline", {
        "text_encoder": Reading(hidden_state=None, pooled=True, max_length=128),
        "text_encoder_2": Reading(hidden_state=None, pooled=True, max_length=128),
        "text_encoder_3": Reading(hidden_state=-1, pooled=False, max_length=128, attention_mask=True),
        "text_encoder_4": Reading(hidden_state=tuple(range(1, 33)), pooled=False, max_length=128, attention_mask=True,
                                  layers="stacked", pads_with_eos=True)}, "HiDream-I1",
           steps=50, guidance_scale=5.0, accelerator_dtype="bfloat16"),
)}



def pipeline_choices() -> tuple[str, ...]:
    """What ``--pipeline`` accepts: every family in :data:`FAMILIES` now (one added at run time
    too), and ``auto``."""
    return (*FAMILIES, "auto")


# -- detection ----------------------------------------------------------------------------


def read_model_index(ref: str | Path) -> dict:
    """``model_index.json`` of a local pipeline folder or hub id (one-line error if none)."""
    path = Path(str(ref)).expanduser()
    if path.is_dir():
        index = path / "model_index.json"
        if not index.is_file():
            raise ModelLoadError(f"'{ref}' is not a diffusers pipeline folder (no model_index.json)")
        try:
            return json.loads(index.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ModelLoadError(f"'{index}' is not valid JSON ({exc})") from None
    if path.exists() or str(ref).startswith((".", "/", "~")) or str(ref).count("/") > 1:
        raise ModelLoadError(f"pipeline '{ref}': no such folder")
    from diffusers import DiffusionPipeline  # deferred: diffusers takes seconds to import, a folder needs none
    try:
        return dict(DiffusionPipeline.load_config(str(ref)))
    except Exception as exc:  # hub errors: offline, no such repo, gated
        raise ModelLoadError(f"cannot read pipeline '{ref}': {str(exc).strip().splitlines()[0][:300]}") from None


def detect_family(ref: str | Path, pipeline: str = "auto") -> Family:
    """The family of the pipeline at ``ref``; with an explicit ``pipeline``, check it matches."""
    if pipeline not in pipeline_choices():
        raise SpecError(f"unknown pipeline family '{pipeline}': use one of {', '.join(pipeline_choices())}")
    class_name = read_model_index(ref).get("_class_name")
    if pipeline != "auto":
        family = FAMILIES[pipeline]
        if class_name != family.pipeline_class:
            raise SpecError(f"'{ref}' holds a {class_name}, not a {family.title} pipeline "
                            f"({family.pipeline_class}); use --pipeline auto")
        return family
    for family in FAMILIES.values():  # the first family of a class is its auto choice (sd for sd2)
        if family.pipeline_class == class_name:
            return family
    known = ", ".join(sorted({f.pipeline_class for f in FAMILIES.values()}))
    raise SpecError(f"'{ref}' holds a {class_name}, which is no pipeline family textedit knows (known: {known})")


def family_of(pipe) -> Family:
    """The family of a pipeline object, by its class (the first match, as in :func:`detect_family`)."""
    for family in FAMILIES.values():
        if type(pipe).__name__ == family.pipeline_class:
            return family
    raise SpecError(f"a {type(pipe).__name__} is no pipeline family textedit knows")


def present_components(ref: str | Path, family: Family) -> list[str]:
    """The family's text encoders that the pipeline at ``ref`` actually holds (SD3 may drop T5)."""
    index = read_model_index(ref)
    return [c for c in family.components if isinstance(index.get(c), list) and index[c][0] is not None]
