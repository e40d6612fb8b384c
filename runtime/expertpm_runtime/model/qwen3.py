"""Qwen3 (and Llama) decoder over a paged KV cache, on packed tokens.

Same math as transformers' `Qwen3ForCausalLM` / `LlamaForCausalLM` (RMSNorm in fp32, rotate-half
rotary, per-head q/k RMSNorm for Qwen3, SiLU-gated MLP), so greedy outputs match. Linear layers
run on the packed [T, hidden] tokens of all rows; attention pads queries per row and reads keys
and values of the whole context from the cache.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .layers import AdaptedLinear, FusedLinear, RMSNorm, Rotary, StepContext
from .matmul import base_linear, prepack
from .spec import ModelSpec

Weights = Callable[[str], torch.Tensor | None]  # name in the HF checkpoint -> tensor (None: absent)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int, get: Weights, rotary: Rotary) -> None:
        super().__init__()
        p = f"model.layers.{layer}.self_attn."
        self.layer, self.rotary = layer, rotary
        self.num_heads, self.num_kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        kinds = ("q_proj", "k_proj", "v_proj")
        self.qkv = FusedLinear(kinds, layer, [get(p + k + ".weight") for k in kinds],
                               [get(p + k + ".bias") if spec.attention_bias else None for k in kinds])
        self.q_proj, self.k_proj, self.v_proj = self.qkv.parts
        self.o_proj = AdaptedLinear("o_proj", layer, get(p + "o_proj.weight"),
                                    get(p + "o_proj.bias") if spec.attention_bias else None)
        self.q_norm = RMSNorm(get(p + "q_norm.weight"), spec.rms_norm_eps) if spec.qk_norm else None
        self.k_norm = RMSNorm(get(p + "k_norm.weight"), spec.rms_norm_eps) if spec.qk_norm else None

    def forward(self, x: torch.Tensor, ctx: StepContext, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        T = x.shape[0]
        kvh, D = self.num_kv_heads, self.head_dim
        q, k, v = self.qkv(x, ctx)
        q, k, v = q.view(T, self.num_heads, D), k.view(T, kvh, D), v.view(T, kvh, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.rotary.apply(q, k, ctx.rope)
        # k_cache/v_cache: [kv_heads, num_slots, head_dim]; write the new tokens, then read contexts
        k_cache.index_copy_(1, ctx.slot_mapping, k.transpose(0, 1))
        v_cache.index_copy_(1, ctx.slot_mapping, v.transpose(0, 1))
        B, Lk = ctx.kv_shape
        # one gather of whole rows over the flattened cache: 2-3x faster on CPU than index_select
        # along the slot dimension, and far faster than advanced indexing
        keys = k_cache.view(-1, D).index_select(0, ctx.kv_index).view(kvh, B * Lk, D)  # heads outermost
        values = v_cache.view(-1, D).index_select(0, ctx.kv_index).view(kvh, B * Lk, D)
        if ctx.q_index is None:  # one new token per row: a plain batched matmul beats SDPA here
            out = self._decode_attention(q, keys.view(kvh * B, Lk, D), values.view(kvh * B, Lk, D), ctx)
            return self.o_proj(out, ctx)
        keys = keys.view(kvh, B, Lk, D).transpose(0, 1)
        values = values.view(kvh, B, Lk, D).transpose(0, 1)
        queries = q.new_zeros(B * ctx.q_len, self.num_heads, self.head_dim)
        queries.index_copy_(0, ctx.q_index, q)
        queries = queries.view(B, ctx.q_len, self.num_heads, self.head_dim)
        out = F.scaled_dot_product_attention(queries.transpose(1, 2), keys, values, attn_mask=ctx.attn_mask,
                                             enable_gqa=self.num_heads != self.num_kv_heads)
        out = out.transpose(1, 2).reshape(B * ctx.q_len, self.num_heads * self.head_dim)
        out = out.index_select(0, ctx.q_index)
        return self.o_proj(out, ctx)

    def _decode_attention(self, q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                          ctx: StepContext) -> torch.Tensor:
        """q [B, heads, D]; keys, values [kv_heads·B, Lk, D] -> [B, heads·D]; softmax in float32.

        Batched over (kv head, row): the query heads sharing a kv head form each batch entry."""
        B, H, D = q.shape
        kvh = self.num_kv_heads
        q = q.view(B, kvh, H // kvh, D).transpose(0, 1).reshape(kvh * B, H // kvh, D)
        scores = torch.bmm(q, keys.transpose(1, 2)).float() * D ** -0.5  # [kvh·B, group, Lk]
        scores = scores.view(kvh, B, H // kvh, -1) + ctx.attn_mask.view(B, 1, -1)
        out = torch.bmm(torch.softmax(scores, dim=-1).to(values.dtype).view(kvh * B, H // kvh, -1), values)
        return out.view(kvh, B, H // kvh, D).transpose(0, 1).reshape(B, H * D)


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int, get: Weights) -> None:
        super().__init__()
        p = f"model.layers.{layer}.mlp."
        kinds = ("gate_proj", "up_proj")
        self.gate_up = FusedLinear(kinds, layer, [get(p + k + ".weight") for k in kinds],
                                   [get(p + k + ".bias") if spec.mlp_bias else None for k in kinds])
        self.gate_proj, self.up_proj = self.gate_up.parts
        self.down_proj = AdaptedLinear("down_proj", layer, get(p + "down_proj.weight"),
                                       get(p + "down_proj.bias") if spec.mlp_bias else None)

    def forward(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        gate, up = self.gate_up(x, ctx)
        return self.down_proj(F.silu(gate) * up, ctx)


class DecoderLayer(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int, get: Weights, rotary: Rotary) -> None:
        super().__init__()
        p = f"model.layers.{layer}."
        self.input_layernorm = RMSNorm(get(p + "input_layernorm.weight"), spec.rms_norm_eps)
        self.self_attn = Attention(spec, layer, get, rotary)
        self.post_attention_layernorm = RMSNorm(get(p + "post_attention_layernorm.weight"), spec.rms_norm_eps)
        self.mlp = MLP(spec, layer, get)

    def forward(self, x: torch.Tensor, ctx: StepContext, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), ctx, k_cache, v_cache)
        return x + self.mlp(self.post_attention_layernorm(x), ctx)


class CausalLM(nn.Module):
    def __init__(self, spec: ModelSpec, get: Weights, device: torch.device) -> None:
        super().__init__()
        self.spec = spec
        self.rotary = Rotary(spec.head_dim, spec.rope_theta, spec.max_position_embeddings, device)
        self.embed_tokens = nn.Parameter(get("model.embed_tokens.weight"), requires_grad=False)
        self.layers = nn.ModuleList(DecoderLayer(spec, i, get, self.rotary) for i in range(spec.num_layers))
        self.norm = RMSNorm(get("model.norm.weight"), spec.rms_norm_eps)
        head = None if spec.tie_word_embeddings else get("lm_head.weight")
        self.lm_head = self.embed_tokens if head is None else nn.Parameter(head, requires_grad=False)
        self.lm_head_packed = prepack(self.lm_head)

    def linear(self, kind: str, layer: int) -> AdaptedLinear:
        block = self.layers[layer]
        return getattr(block.self_attn if kind.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else block.mlp, kind)

    def embed(self, ctx: StepContext) -> torch.Tensor:
        ids = ctx.input_ids
        if ctx.virtual_embeds is None:
            return F.embedding(ids, self.embed_tokens)
        virtual = ids < 0
        x = F.embedding(ids.clamp(min=0), self.embed_tokens)
        x[virtual] = ctx.virtual_embeds.to(x.dtype)
        return x

    def forward(self, ctx: StepContext, kv_cache: torch.Tensor) -> torch.Tensor:
        """Logits [B, vocab] of each row's last new token. kv_cache: [layers, 2, kv_heads, slots, D]."""
        x = self.embed(ctx)
        ctx.rope = self.rotary.tables(ctx.positions, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, ctx, kv_cache[i, 0], kv_cache[i, 1])
        x = self.norm(x[ctx.last_index])
        return base_linear(x, self.lm_head, None, self.lm_head_packed)
