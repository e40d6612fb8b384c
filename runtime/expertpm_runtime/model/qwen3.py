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

from .layers import AdaptedLinear, RMSNorm, Rotary, StepContext
from .spec import ModelSpec

Weights = Callable[[str], torch.Tensor | None]  # name in the HF checkpoint -> tensor (None: absent)


class Attention(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int, get: Weights, rotary: Rotary) -> None:
        super().__init__()
        p = f"model.layers.{layer}.self_attn."
        self.layer, self.rotary = layer, rotary
        self.num_heads, self.num_kv_heads, self.head_dim = spec.num_heads, spec.num_kv_heads, spec.head_dim
        for kind in ("q_proj", "k_proj", "v_proj", "o_proj"):
            bias = get(p + kind + ".bias") if spec.attention_bias else None
            setattr(self, kind, AdaptedLinear(kind, layer, get(p + kind + ".weight"), bias))
        self.q_norm = RMSNorm(get(p + "q_norm.weight"), spec.rms_norm_eps) if spec.qk_norm else None
        self.k_norm = RMSNorm(get(p + "k_norm.weight"), spec.rms_norm_eps) if spec.qk_norm else None

    def forward(self, x: torch.Tensor, ctx: StepContext, k_cache: torch.Tensor, v_cache: torch.Tensor) -> torch.Tensor:
        T = x.shape[0]
        q = self.q_proj(x, ctx).view(T, self.num_heads, self.head_dim)
        k = self.k_proj(x, ctx).view(T, self.num_kv_heads, self.head_dim)
        v = self.v_proj(x, ctx).view(T, self.num_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = self.rotary.apply(q, k, ctx.rope)
        # k_cache/v_cache: [num_slots, kv_heads, head_dim]; write the new tokens, then read contexts
        k_cache.index_copy_(0, ctx.slot_mapping, k)
        v_cache.index_copy_(0, ctx.slot_mapping, v)
        B, Lk = ctx.kv_slots.shape
        flat = ctx.kv_slots.view(-1)  # index_select: far cheaper than advanced indexing on CPU
        keys = k_cache.index_select(0, flat).view(B, Lk, self.num_kv_heads, self.head_dim).transpose(1, 2)
        values = v_cache.index_select(0, flat).view(B, Lk, self.num_kv_heads, self.head_dim).transpose(1, 2)
        if ctx.q_index is None:  # one new token per row: a plain batched matmul beats SDPA here
            out = self._decode_attention(q.view(B, self.num_kv_heads, -1, self.head_dim), keys, values, ctx)
            return self.o_proj(out.reshape(B, self.num_heads * self.head_dim), ctx)
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
        """q [B, kv_heads, group, D] (the query heads sharing each kv head); softmax in float32."""
        scores = torch.matmul(q, keys.transpose(2, 3)).float() * self.head_dim ** -0.5  # [B, kvh, group, Lk]
        return torch.matmul(torch.softmax(scores + ctx.attn_mask, dim=-1).to(values.dtype), values)


class MLP(nn.Module):
    def __init__(self, spec: ModelSpec, layer: int, get: Weights) -> None:
        super().__init__()
        p = f"model.layers.{layer}.mlp."
        for kind in ("gate_proj", "up_proj", "down_proj"):
            bias = get(p + kind + ".bias") if spec.mlp_bias else None
            setattr(self, kind, AdaptedLinear(kind, layer, get(p + kind + ".weight"), bias))

    def forward(self, x: torch.Tensor, ctx: StepContext) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x, ctx)) * self.up_proj(x, ctx), ctx)


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
        """Logits [B, vocab] of each row's last new token. kv_cache: [layers, 2, slots, kv_heads, D]."""
        x = self.embed(ctx)
        ctx.rope = self.rotary.tables(ctx.positions, x.dtype)
        for i, layer in enumerate(self.layers):
            x = layer(x, ctx, kv_cache[i, 0], kv_cache[i, 1])
        x = self.norm(x[ctx.last_index])
        return F.linear(x, self.lm_head)
