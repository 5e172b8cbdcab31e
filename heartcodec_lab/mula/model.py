"""HeartMuLa: a hierarchical music language model on two torchtune LLaMA-3.2 stacks.

Every sequence position holds 9 parallel channels: 8 audio codebooks and 1 text
channel. A position's input embedding is the masked sum of its 9 channel
embeddings. The *backbone* reads the sequence and predicts codebook 0 of the
next frame (``codebook0_head``); the small *decoder* then runs over
``[backbone state, code 0, ..., code 6]`` of that frame and predicts codebooks
1..7 one by one (``audio_head[i - 1]``).

Module and parameter names match the released checkpoint keys.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn
from torchtune.modules import RMSNorm
from torchtune.modules.common_utils import delete_kv_caches

from heartcodec_lab.mula.flavors import build_stack

# Audio ids after the codes: codebook_size + 0..4 (the audio end id is codebook_size + 1).
NUM_SPECIAL_AUDIO_IDS = 5
# Keys transformers writes into config.json that do not describe the model.
_BOOKKEEPING_KEYS = {"architectures", "model_type", "dtype", "torch_dtype", "transformers_version", "_name_or_path"}

Sampler = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class MulaConfig:
    """What ``config.json`` of a HeartMuLa checkpoint says (flavors: a name or inline ``llama3_2`` sizes)."""

    backbone_flavor: str | dict = "llama-3B"
    decoder_flavor: str | dict = "llama-300M"
    text_vocab_size: int = 128_256
    audio_vocab_size: int = 8197
    audio_num_codebooks: int = 8
    muq_dim: int = 512
    extra: dict = field(default_factory=dict, repr=False)

    @property
    def codebook_size(self) -> int:
        """Number of real codec codes (8192 released); the last 5 audio ids are special."""
        return self.audio_vocab_size - NUM_SPECIAL_AUDIO_IDS

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> MulaConfig:
        known = {k for k in cls.__dataclass_fields__ if k != "extra"}
        unknown = set(data) - known - _BOOKKEEPING_KEYS
        if unknown:
            warnings.warn(f"{source}: ignoring unknown HeartMuLa config keys {sorted(unknown)}", stacklevel=2)
        kwargs = {k: data[k] for k in known if k in data}
        return cls(**kwargs, extra={k: data[k] for k in set(data) - known})

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("extra")
        return out


@dataclass
class FrameOutput:
    """One generated frame.

    codes: int64 ``[B, 8]`` (identical rows under guidance); c0_logits ``[B, V]``
    and ci_logits ``[7, B, V]``: raw float32 logits of every row, before guidance.
    """

    codes: torch.Tensor
    c0_logits: torch.Tensor
    ci_logits: torch.Tensor


def _causal_mask(n: int, device: torch.device) -> torch.Tensor:
    return torch.tril(torch.ones(n, n, dtype=torch.bool, device=device))


def guide(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """``[2B, V]`` (conditional rows first) -> guided ``[B, V]`` = uncond + scale * (cond - uncond)."""
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + (cond - uncond) * cfg_scale


class HeartMuLa(nn.Module):
    """The model. Inputs are ``tokens [B, S, 9]`` int64 with a bool mask ``[B, S, 9]``."""

    def __init__(self, config: MulaConfig):
        super().__init__()
        self.config = config
        self.backbone, backbone_dim = build_stack(config.backbone_flavor)
        self.decoder, decoder_dim = build_stack(config.decoder_flavor)
        n_cb, vocab = config.audio_num_codebooks, config.audio_vocab_size
        self.text_embeddings = nn.Embedding(config.text_vocab_size, backbone_dim)
        self.audio_embeddings = nn.Embedding(vocab * n_cb, backbone_dim)
        self.unconditional_text_embedding = nn.Embedding(1, backbone_dim)
        self.projection = nn.Linear(backbone_dim, decoder_dim, bias=False)
        self.codebook0_head = nn.Linear(backbone_dim, vocab, bias=False)
        self.audio_head = nn.Parameter(torch.empty(n_cb - 1, decoder_dim, vocab))
        self.muq_linear = nn.Linear(config.muq_dim, backbone_dim)
        self._cache_batch: int | None = None

    # -- small helpers ------------------------------------------------------------------
    @property
    def dtype(self) -> torch.dtype:
        return self.codebook0_head.weight.dtype

    @property
    def device(self) -> torch.device:
        return self.codebook0_head.weight.device

    @property
    def num_codebooks(self) -> int:
        return self.config.audio_num_codebooks

    @property
    def max_seq_len(self) -> int:
        """Longest sequence (prompt + frames) the backbone's RoPE table and KV cache hold."""
        return self.backbone.max_seq_len

    def rope_init(self) -> None:
        """(Re)build the RoPE tables, which are not in checkpoints (needed after meta-device construction)."""
        for module in self.modules():
            if module is not self and hasattr(module, "rope_init"):
                module.rope_init()

    def norms_to_float32(self) -> HeartMuLa:
        """Keep the RMSNorm gains in float32 (in a bf16 model too); returns ``self``.

        torchtune's RMSNorm normalizes in float32 and hands its gain to ``torch.rms_norm``, which wants the
        gain in the input's dtype: a bf16 gain leaves the fused kernel with a warning on every load.
        """
        for module in self.modules():
            if isinstance(module, RMSNorm) and module.scale.dtype != torch.float32:
                module.scale.data = module.scale.data.float()
        return self

    # -- KV caches ----------------------------------------------------------------------
    def setup_caches(self, batch_size: int) -> None:
        """Allocate (or reset) KV caches for ``batch_size`` rows: backbone up to :attr:`max_seq_len`, decoder 8."""
        if self._cache_batch == batch_size and self.backbone.caches_are_setup():
            self.reset_caches()
            return
        self.delete_caches()
        with self.device:
            self.backbone.setup_caches(batch_size, self.dtype, decoder_max_seq_len=self.max_seq_len)
            self.decoder.setup_caches(batch_size, self.dtype, decoder_max_seq_len=self.num_codebooks)
        # not persistent: they must never appear in (or be expected from) a checkpoint
        self.register_buffer("backbone_causal_mask", _causal_mask(self.max_seq_len, self.device), persistent=False)
        self.register_buffer("decoder_causal_mask", _causal_mask(self.num_codebooks, self.device), persistent=False)
        self._cache_batch = batch_size

    def reset_caches(self) -> None:
        self.backbone.reset_caches()
        self.decoder.reset_caches()

    def delete_caches(self) -> None:
        """Free the KV caches (scoring and memory-tight jobs run without them)."""
        if self.backbone.caches_are_setup():
            delete_kv_caches(self.backbone)
        if self.decoder.caches_are_setup():
            delete_kv_caches(self.decoder)
        self._cache_batch = None

    # -- embeddings ---------------------------------------------------------------------
    def embed_audio(self, codebook: int, codes: torch.Tensor) -> torch.Tensor:
        """codes ``[...]`` of one codebook -> ``[..., D_backbone]``."""
        return self.audio_embeddings(codes + codebook * self.config.audio_vocab_size)

    def embed_tokens(
        self, tokens: torch.Tensor, mask: torch.Tensor, uncond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens/mask ``[B, S, 9]`` -> summed embeddings ``[B, S, D]``.

        ``uncond`` ``[B]`` bool marks rows whose text channel is replaced by the
        learned unconditional embedding (the guidance branch).
        """
        n_cb, vocab = self.num_codebooks, self.config.audio_vocab_size
        text = self.text_embeddings(tokens[:, :, -1])
        if uncond is not None:
            blank = self.unconditional_text_embedding.weight[0]
            text = torch.where(uncond.view(-1, 1, 1), blank, text)
        offsets = vocab * torch.arange(n_cb, device=tokens.device)
        audio = self.audio_embeddings(tokens[:, :, :-1] + offsets)  # [B, S, 8, D]
        embeds = torch.cat([audio, text.unsqueeze(-2)], dim=-2)
        return (embeds * mask.unsqueeze(-1)).sum(dim=2, dtype=embeds.dtype)

    def reference_slot(
        self, batch: int, uncond: torch.Tensor | None, muq_embed: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Embedding ``[B, D]`` for the reference-audio (MuQ) slot; a zero MuQ vector when none is given."""
        if muq_embed is None:
            muq_embed = torch.zeros(batch, self.config.muq_dim, device=self.device, dtype=self.dtype)
        slot = self.muq_linear(muq_embed.to(self.dtype))
        if uncond is not None:
            slot = torch.where(uncond.view(-1, 1), self.unconditional_text_embedding.weight[0], slot)
        return slot

    # -- KV-cached inference -------------------------------------------------------------
    @torch.no_grad()
    def prefill(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        input_pos: torch.Tensor,
        cfg_scale: float = 1.0,
        reference_index: int | None = None,
        muq_embed: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Run rows ``[B, S, 9]`` at ``input_pos [B, S]`` through the cached backbone -> hidden ``[B, S, D]``.

        Long prompts/histories can be fed in consecutive pieces; ``reference_index``
        is relative to this piece.
        """
        b = tokens.shape[0]
        uncond = None
        if cfg_scale > 1.0:
            if b % 2:
                raise ValueError(f"guidance needs an even batch (conditional + unconditional rows), got {b}")
            uncond = torch.arange(b, device=tokens.device) >= b // 2
        h = self.embed_tokens(tokens, mask, uncond)
        if reference_index is not None:
            h[:, reference_index] = self.reference_slot(b, uncond, muq_embed)
        return self.backbone(h, input_pos=input_pos, mask=self.backbone_causal_mask[input_pos])

    @torch.no_grad()
    def generate_frame(
        self,
        tokens: torch.Tensor,
        mask: torch.Tensor,
        input_pos: torch.Tensor,
        sampler: Sampler,
        cfg_scale: float = 1.0,
        reference_index: int | None = None,
        muq_embed: torch.Tensor | None = None,
    ) -> FrameOutput:
        """Feed ``tokens [B, S, 9]`` at positions ``input_pos [B, S]`` and sample the next frame.

        With ``cfg_scale > 1`` the batch is ``[conditional rows; unconditional rows]``
        and each codebook is sampled once from the guided logits, then shared by both
        halves. ``reference_index`` (the prompt's MuQ slot) is set only on the prompt call.
        ``sampler`` maps logits ``[b, V]`` float32 to codes ``[b, 1]`` int64.
        """
        b = tokens.shape[0]
        guided = cfg_scale > 1.0
        h = self.prefill(tokens, mask, input_pos, cfg_scale, reference_index, muq_embed)
        last_h = h[:, -1, :].to(self.dtype)
        c0_logits = self.codebook0_head(last_h).float()

        def pick(logits: torch.Tensor) -> torch.Tensor:
            if guided:
                return sampler(guide(logits, cfg_scale)).repeat(2, 1)
            return sampler(logits)

        sample = pick(c0_logits)
        codes = [sample]
        ci_logits = []
        self.decoder.reset_caches()
        step = torch.cat([last_h.unsqueeze(1), self.embed_audio(0, sample)], dim=1)
        pos = torch.arange(step.shape[1], device=step.device).unsqueeze(0).repeat(b, 1)
        for i in range(1, self.num_codebooks):
            out = self.decoder(self.projection(step), input_pos=pos, mask=self.decoder_causal_mask[pos])
            logits = torch.mm(out[:, -1, :].to(self.dtype), self.audio_head[i - 1]).float()
            ci_logits.append(logits)
            sample = pick(logits)
            codes.append(sample)
            step = self.embed_audio(i, sample)
            pos = pos[:, -1:] + 1
        return FrameOutput(torch.cat(codes, dim=1), c0_logits, torch.stack(ci_logits))

    # -- whole sequences without caches (teacher forcing) ----------------------------------
    def backbone_hidden(self, h: torch.Tensor) -> torch.Tensor:
        """Causal backbone over embeddings ``[B, S, D]`` (no KV cache) -> hidden ``[B, S, D]``."""
        if self.backbone.caches_are_setup():
            self.delete_caches()
        return self.backbone(h).to(self.dtype)

    def codebook_logits(self, hidden: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits of all codebooks of N frames.

        hidden ``[N, D]``: backbone state *before* each frame; codes ``[N, 8]`` the
        frame itself. Returns float32 ``[N, 8, V]``: codebook 0 from the backbone
        head, codebook i from the decoder given codes ``0..i-1``.
        """
        if self.decoder.caches_are_setup():
            self.delete_caches()
        c0 = self.codebook0_head(hidden).float()
        steps = [hidden.unsqueeze(1)]
        steps += [self.embed_audio(i, codes[:, i : i + 1]) for i in range(self.num_codebooks - 1)]
        out = self.decoder(self.projection(torch.cat(steps, dim=1))).to(self.dtype)  # [N, 8, Dd]
        ci = torch.einsum("nkd,kdv->nkv", out[:, 1:], self.audio_head).float()
        return torch.cat([c0.unsqueeze(1), ci], dim=1)
