"""`model=gpt`: a decoder-only transformer (GPT-2's architecture), the whole of it in this one file.

Tokens [B, T] in, next-token logits [B, T, vocab_size] out. The shape of the model follows GPT-2 and nanoGPT:
learned token and position embeddings, `n_layer` pre-norm blocks of causal self-attention and a 4x-wide GELU
feed-forward, a final LayerNorm, and an output layer that shares its weight matrix with the token embedding
(weight tying: one matrix both reads and writes tokens, which saves `vocab_size * n_embd` parameters and trains
better on small data). Attention is `F.scaled_dot_product_attention(is_causal=True)`: the fused kernels on CUDA
(flash / memory-efficient) and the same math on CPU.

`vocab_size` and `block_size` are null in `conf/model/gpt.yaml`: the run fills them in from the tokenizer's
vocabulary and `data.block_size`, as image models take `num_classes` from the data.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from trainscope.core.errors import ConfigError

log = logging.getLogger(__name__)

INIT_STD = 0.02
"""GPT-2's initialisation: every linear and embedding weight ~ N(0, 0.02), biases zero."""


class CausalSelfAttention(nn.Module):
    """`n_head` heads attending to the current and earlier positions only."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.n_head = n_head
        self.dropout = dropout
        self.qkv = nn.Linear(n_embd, 3 * n_embd, bias=bias)  # queries, keys and values of every head in one matmul
        self.out = nn.Linear(n_embd, n_embd, bias=bias)  # a residual projection: see GPT._scale_residual_init
        self.out_dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        batch, time, width = x.shape
        q, k, v = self.qkv(x).split(width, dim=2)
        # [B, T, C] -> [B, heads, T, C / heads]: each head attends on its own slice of the width
        q, k, v = (t.view(batch, time, self.n_head, width // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(batch, time, width)  # the heads side by side again
        return self.out_dropout(self.out(y))


class FeedForward(nn.Module):
    """Position-wise: widen 4x, GELU, project back."""

    def __init__(self, n_embd: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.up = nn.Linear(n_embd, 4 * n_embd, bias=bias)
        self.down = nn.Linear(4 * n_embd, n_embd, bias=bias)  # a residual projection: see GPT._scale_residual_init
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-norm residual block: x + attention(norm(x)), then x + feed_forward(norm(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float, bias: bool) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(n_embd, bias=bias)
        self.attention = CausalSelfAttention(n_embd, n_head, dropout, bias)
        self.feed_forward_norm = nn.LayerNorm(n_embd, bias=bias)
        self.feed_forward = FeedForward(n_embd, dropout, bias)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.feed_forward_norm(x))


def _check_sizes(
    vocab_size: object, block_size: object, n_layer: int, n_head: int, n_embd: int, dropout: object
) -> None:
    """One line naming the bad `model.*` key, before any weight is allocated."""
    for key, value in (
        ("vocab_size", vocab_size),
        ("block_size", block_size),
        ("n_layer", n_layer),
        ("n_head", n_head),
        ("n_embd", n_embd),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"model.{key} must be a positive integer, got {value!r}")
    if n_embd % n_head:
        raise ConfigError(
            f"model.n_embd={n_embd} must be a multiple of model.n_head={n_head} (each head gets n_embd / n_head)"
        )
    if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ConfigError(f"model.dropout must be a number in [0, 1), got {dropout!r}")


class GPT(nn.Module):
    """A GPT-2 style language model: `forward(tokens [B, T]) -> logits [B, T, vocab_size]`, with T <= block_size."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        dropout: float = 0.0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        _check_sizes(vocab_size, block_size, n_layer, n_head, n_embd, dropout)
        self.vocab_size = vocab_size
        self.block_size = block_size  # the longest context the position embedding covers
        self.n_layer, self.n_head, self.n_embd = n_layer, n_head, n_embd
        self.token_embedding = nn.Embedding(vocab_size, n_embd)
        self.position_embedding = nn.Embedding(block_size, n_embd)
        self.embedding_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(Block(n_embd, n_head, dropout, bias) for _ in range(n_layer))
        self.final_norm = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # weight tying: one [vocab_size, n_embd] matrix
        self.apply(self._init_weights)
        self._scale_residual_init()
        log.info("GPT: %.2fM parameters", self.num_parameters() / 1e6)

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=INIT_STD)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def _scale_residual_init(self) -> None:
        """GPT-2's scaled init: each block adds two projections to the residual stream, so their weights start
        at std 0.02 / sqrt(2 * n_layer), keeping the stream's variance from growing with depth."""
        std = INIT_STD / math.sqrt(2 * self.n_layer)
        for block in self.blocks:
            assert isinstance(block, Block)
            nn.init.normal_(block.attention.out.weight, mean=0.0, std=std)
            nn.init.normal_(block.feed_forward.down.weight, mean=0.0, std=std)

    def num_parameters(self, include_position_embedding: bool = True) -> int:
        """Parameters counted once (the tied matrix is one tensor); without the position embedding as nanoGPT
        reports it, and as the 6N FLOPs-per-token estimate of MFU counts them."""
        total = sum(parameter.numel() for parameter in self.parameters())
        return total if include_position_embedding else total - self.position_embedding.weight.numel()

    def forward(self, tokens: Tensor) -> Tensor:
        time = tokens.shape[1]
        if time > self.block_size:
            raise ValueError(f"a sequence of {time} tokens is longer than the model's block_size={self.block_size}")
        positions = torch.arange(time, device=tokens.device)
        x = self.embedding_dropout(self.token_embedding(tokens) + self.position_embedding(positions))
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.final_norm(x))
