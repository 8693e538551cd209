"""Building blocks shared by the methods."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from transformers.modeling_layers import GradientCheckpointingLayer


def pad_or_truncate(sequence: torch.Tensor, length: int) -> torch.Tensor:
    """Zero-pad (at the end) or cut a batch-first sequence ``(B, T, ...)`` to exactly ``length`` steps.

    Methods with flattened fixed-length layers (DMD, DLF) need the padded length of the source data.
    """
    steps = sequence.size(1)
    if steps == length:
        return sequence
    if steps > length:
        return sequence[:, :length]
    padding = sequence.new_zeros(sequence.size(0), length - steps, *sequence.shape[2:])
    return torch.cat([sequence, padding], dim=1)


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout with ``F.dropout``'s distribution: each element kept with probability ``1 − p`` and
    scaled by ``1/(1 − p)``.

    On CPU the mask is ``uniform_() ≥ p``: PyTorch's CPU Bernoulli sampler is about 3× slower than its uniform
    one (both single-threaded), which made dropout more than half of a MulT layer's training forward (DMD's
    attention-weight dropout). Other devices use ``F.dropout``.
    """
    if not training or p == 0:
        return x
    if p >= 1 or x.device.type != "cpu":
        return F.dropout(x, p=p, training=True)
    # float32 draws whatever x's dtype: a bf16 uniform would quantise the keep probability
    mask = torch.empty(x.shape, device=x.device).uniform_().ge_(p).mul_(1.0 / (1.0 - p))
    return x * mask.to(x.dtype)


def masked_mean(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``hidden`` ``(B, T, d)`` over the positions where ``mask`` ``(B, T)`` is 1 ([CLS]/[SEP] included)."""
    mask = mask.to(hidden.dtype).unsqueeze(-1)
    return (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)


class StackedBiLSTMEncoder(nn.Module):
    """MISA's acoustic/visual encoder: biLSTM → LayerNorm → biLSTM over the true lengths.

    The utterance vector concatenates the final hidden states of both layers and both directions,
    so it is ``4 · hidden_size`` wide (the official code uses ``hidden_size = input_size``).
    """

    def __init__(self, input_size: int, hidden_size: int | None = None):
        super().__init__()
        hidden_size = hidden_size or input_size
        self.rnn1 = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.layer_norm = nn.LayerNorm(2 * hidden_size)
        self.rnn2 = nn.LSTM(2 * hidden_size, hidden_size, bidirectional=True, batch_first=True)
        self.output_size = 4 * hidden_size

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        batch, steps, _ = features.shape
        lengths = lengths.clamp(1, steps).cpu()
        packed = pack_padded_sequence(features, lengths, batch_first=True, enforce_sorted=False)
        packed_h1, (final_h1, _) = self.rnn1(packed)
        padded_h1, _ = pad_packed_sequence(packed_h1, batch_first=True, total_length=steps)
        normed = pack_padded_sequence(self.layer_norm(padded_h1), lengths, batch_first=True, enforce_sorted=False)
        _, (final_h2, _) = self.rnn2(normed)
        return torch.cat((final_h1, final_h2), dim=2).permute(1, 0, 2).reshape(batch, -1)


def sinusoidal_table(num_embeddings: int, embedding_dim: int, padding_idx: int | None = 0, device=None) -> torch.Tensor:
    """fairseq/tensor2tensor sinusoidal table ``(num_embeddings, embedding_dim)`` as MulT builds it.

    Row ``p`` is ``[sin(p·f_i), cos(p·f_i)]`` with ``f_i = exp(−i·ln(10000)/(d/2 − 1))`` (sines first, not
    interleaved); an odd ``embedding_dim`` gets a zero last column and the ``padding_idx`` row is zero.
    """
    half_dim = embedding_dim // 2
    step = math.log(10000) / max(half_dim - 1, 1)
    frequencies = torch.exp(torch.arange(half_dim, dtype=torch.float, device=device) * -step)
    angles = torch.arange(num_embeddings, dtype=torch.float, device=device).unsqueeze(1) * frequencies.unsqueeze(0)
    table = torch.cat([torch.sin(angles), torch.cos(angles)], dim=1)
    if embedding_dim % 2 == 1:
        table = torch.cat([table, table.new_zeros(num_embeddings, 1)], dim=1)
    if padding_idx is not None:
        table[padding_idx] = 0
    return table


class SinusoidalPositionalEmbedding(nn.Module):
    """MulT's sinusoidal positions for a ``(B, T)`` tensor of "tokens" (MulT passes the first feature channel).

    A step whose value equals ``padding_idx`` (0) is padding and gets the zero embedding. As in MulT's
    ``make_positions`` (right padding), every other step ``t`` gets position ``padding_idx + 1 + t``: its
    absolute index, so an exactly-zero step inside a sequence does not shift the later positions.
    The table is computed on the fly on the input's device (no parameters, no buffers).
    """

    def __init__(self, embedding_dim: int, padding_idx: int = 0):
        super().__init__()
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        steps = tokens.size(1)
        table = sinusoidal_table(self.padding_idx + 1 + steps, self.embedding_dim, self.padding_idx, tokens.device)
        index = torch.arange(self.padding_idx + 1, self.padding_idx + 1 + steps, device=tokens.device)
        positions = torch.where(tokens.ne(self.padding_idx), index, self.padding_idx)
        return F.embedding(positions, table)


def future_mask(query_length: int, key_length: int, device=None, dtype=torch.float) -> torch.Tensor:
    """MulT's additive causal mask ``(T_q, T_k)``: ``−inf`` above the diagonal offset ``1 + |T_k − T_q|``."""
    full = torch.full((query_length, key_length), float("-inf"), device=device, dtype=dtype)
    return torch.triu(full, 1 + abs(key_length - query_length))


class MulTEncoderLayer(GradientCheckpointingLayer):
    """One pre-LN MulT layer: attention (the same LayerNorm normalises q, k and v) and a ReLU FFN of ``4·d``.

    Parameter names and shapes are MulT's (``self_attn.in_proj_weight`` ``(3d, d)``, ``fc1``, ``fc2``,
    ``layer_norms``), so official checkpoints map one to one. ``self_attn`` only holds the attention weights;
    :meth:`attention` computes it.
    """

    #: attention kernel: ``None`` picks by device (MulT's bmm formulation on CPU, fused SDPA elsewhere);
    #: ``True``/``False`` force SDPA/bmm (the two give the same values)
    use_sdpa: bool | None = None

    def __init__(self, embed_dim: int, num_heads: int, attn_dropout: float = 0.0, relu_dropout: float = 0.0,
                 res_dropout: float = 0.0):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(embed_dim, num_heads, dropout=attn_dropout)
        self.fc1 = nn.Linear(embed_dim, 4 * embed_dim)
        self.fc2 = nn.Linear(4 * embed_dim, embed_dim)
        self.layer_norms = nn.ModuleList([nn.LayerNorm(embed_dim) for _ in range(2)])
        for module in (self.self_attn, self.fc1, self.fc2):
            module.xavier_init = True  # MulT's initialisation; applied by MSAPreTrainedModel._init_weights
        self.relu_dropout = relu_dropout
        self.res_dropout = res_dropout

    def attention(self, query: torch.Tensor, key: torch.Tensor | None = None, value: torch.Tensor | None = None,
                  attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Multi-head attention of sequence-first ``query`` ``(T_q, B, d)`` over ``key``/``value``
        ``(T_k, B, d)`` (``None``: self-attention over ``query``), with an additive ``(T_q, T_k)`` mask.

        On CPU this is MulT's own formulation (scaled q, ``bmm``, mask added, softmax, dropout, ``bmm``): with
        MulT's 5- or 10-wide heads it is about twice as fast as PyTorch's fused attention there, forward and
        backward. Elsewhere the fused kernel avoids materialising the ``(B·h, T_q, T_k)`` weights.
        """
        module = self.self_attn
        d, heads = module.embed_dim, module.num_heads
        head_dim = d // heads
        weight, bias = module.in_proj_weight, module.in_proj_bias
        if key is None:
            q, k, v = F.linear(query, weight, bias).chunk(3, dim=-1)
        else:
            q = F.linear(query, weight[:d], bias[:d])
            k = F.linear(key, weight[d:2 * d], bias[d:2 * d])
            v = F.linear(value, weight[2 * d:], bias[2 * d:])
        t_q, batch, t_k = q.size(0), q.size(1), k.size(0)
        use_sdpa = self.use_sdpa if self.use_sdpa is not None else query.device.type != "cpu"
        if use_sdpa:
            q, k, v = (t.reshape(t.size(0), batch, heads, head_dim).permute(1, 2, 0, 3) for t in (q, k, v))
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, dropout_p=module.dropout if self.training else 0.0
            )
            out = out.permute(2, 0, 1, 3).reshape(t_q, batch, d)
        else:
            q = (q * head_dim**-0.5).reshape(t_q, batch * heads, head_dim).transpose(0, 1)
            k = k.reshape(t_k, batch * heads, head_dim).transpose(0, 1)
            v = v.reshape(t_k, batch * heads, head_dim).transpose(0, 1)
            scores = torch.bmm(q, k.transpose(1, 2))
            if attn_mask is not None:
                scores.add_(attn_mask)  # in place: bmm's backward does not need its output
            weights = dropout(scores.softmax(-1), module.dropout, self.training)
            out = torch.bmm(weights, v).transpose(0, 1).reshape(t_q, batch, d)
        return module.out_proj(out)

    def forward(self, x: torch.Tensor, x_k: torch.Tensor | None = None, x_v: torch.Tensor | None = None,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        residual = x
        x = self.layer_norms[0](x)
        if x_k is None:
            x = self.attention(x, attn_mask=attn_mask)
        else:
            x = self.attention(x, self.layer_norms[0](x_k), self.layer_norms[0](x_v), attn_mask=attn_mask)
        x = residual + dropout(x, self.res_dropout, self.training)
        residual = x
        x = F.relu(self.fc1(self.layer_norms[1](x)))
        x = dropout(x, self.relu_dropout, self.training)
        x = dropout(self.fc2(x), self.res_dropout, self.training)
        return residual + x


class MulTEncoder(nn.Module):
    """The MulT transformer encoder used by DMD and DLF, sequence-first like the official code.

    ``forward(x_q (T, B, d), x_k (T_k, B, d) = None, x_v = None) -> (T, B, d)``: inputs scaled by ``√d`` plus
    sinusoidal positions taken from the first channel of the unscaled input (separately for q, k and v, each
    with its own embedding dropout), pre-LN layers, optional causal mask, final LayerNorm. With ``x_k`` the
    layers attend from ``x_q`` to the same embedded ``x_k``/``x_v`` at every depth (cross-modal); without it,
    self-attention. ``x_v`` defaults to ``x_k``.
    """

    def __init__(self, embed_dim: int, num_heads: int, layers: int, attn_dropout: float = 0.0,
                 relu_dropout: float = 0.0, res_dropout: float = 0.0, embed_dropout: float = 0.0,
                 attn_mask: bool = False):
        super().__init__()
        self.embed_dim = embed_dim
        self.embed_scale = math.sqrt(embed_dim)
        self.embed_dropout = embed_dropout
        self.attn_mask = attn_mask
        self.embed_positions = SinusoidalPositionalEmbedding(embed_dim)
        self.layers = nn.ModuleList(
            [MulTEncoderLayer(embed_dim, num_heads, attn_dropout, relu_dropout, res_dropout) for _ in range(layers)]
        )
        self.layer_norm = nn.LayerNorm(embed_dim)

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        positions = self.embed_positions(x[:, :, 0].transpose(0, 1)).transpose(0, 1)
        x = self.embed_scale * x + positions.to(x.dtype)
        return dropout(x, self.embed_dropout, self.training)

    def forward(self, x_q: torch.Tensor, x_k: torch.Tensor | None = None,
                x_v: torch.Tensor | None = None, last_only: bool = False) -> torch.Tensor:
        """``last_only=True`` returns only the last step ``(B, d)``: the last layer then computes its query,
        residual and FFN at that one position (attending to the full sequence), which gives the same value as
        ``forward(...)[-1]`` for less work."""
        x = self._embed(x_q)
        if x_k is not None:
            x_v = x_k if x_v is None else x_v
            x_k, x_v = self._embed(x_k), self._embed(x_v)
        mask = None
        if self.attn_mask:
            key_length = x.size(0) if x_k is None else x_k.size(0)
            mask = future_mask(x.size(0), key_length, device=x.device, dtype=x.dtype)
        last = len(self.layers) - 1 if last_only else len(self.layers)
        for layer in self.layers[:last]:
            x = layer(x, x_k, x_v, attn_mask=mask)
        if last_only:
            keys = x if x_k is None else x_k
            values = x if x_k is None else x_v
            x = self.layers[-1](x[-1:], keys, values, attn_mask=None if mask is None else mask[-1:])[0]
        return self.layer_norm(x)


    def last_step(self, x: torch.Tensor, skip_unused: bool = True) -> torch.Tensor:
        """The last time step ``(B, d)`` of self-attention over ``x``; ``skip_unused`` computes it with
        ``last_only`` (same value), otherwise the full output is computed and indexed, as MulT code does."""
        return self(x, last_only=True) if skip_unused else self(x)[-1]


class ResidualHead(nn.Module):
    """DMD/DLF residual MLP head: ``h' = proj2(dropout(relu(proj1(h)))) + h``; returns ``(out(h'), h')``."""

    def __init__(self, dim: int, out_features: int, dropout: float = 0.0):
        super().__init__()
        self.proj1 = nn.Linear(dim, dim)
        self.proj2 = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, out_features)
        self.dropout = dropout

    def forward(self, hidden: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.proj2(dropout(F.relu(self.proj1(hidden)), self.dropout, self.training)) + hidden
        return self.out(hidden), hidden


class DistillationKernel(nn.Module):
    """DMD's graph-distillation unit: per-sample weights of the directed edges between modalities.

    ``z_m = [W_logit(logit_m); W_repr(repr_m)]``; edge ``student j ← teacher i`` gets ``W_edge([z_j; z_i])``;
    the edges of a sample are normalised jointly by ``softmax(α · e)`` over all of them. Edge order is
    student-major, teachers ascending: for ``[l, v, a]`` that is (l←v), (l←a), (v←l), (v←a), (a←l), (a←v).
    """

    def __init__(self, num_modalities: int = 3, logit_dim: int = 1, *, repr_dim: int, gd_size: int,
                 prior_weights, prior_temperature: float = 0.25, alpha: float = 0.125):
        super().__init__()
        self.W_logit = nn.Linear(logit_dim, gd_size)
        self.W_repr = nn.Linear(repr_dim, gd_size)
        self.W_edge = nn.Linear(4 * gd_size, 1)
        self.pairs = [(j, i) for j in range(num_modalities) for i in range(num_modalities) if i != j]
        if len(prior_weights) != len(self.pairs):
            raise ValueError(f"prior_weights needs {len(self.pairs)} values (one per directed edge)")
        self.prior_weights = [float(w) for w in prior_weights]
        self.prior_temperature = prior_temperature
        self.alpha = alpha

    @property
    def prior(self) -> torch.Tensor:
        """Edge prior ``softmax(prior_weights / T)`` ``(num_edges,)`` on the module's device (float64 softmax,
        as the official numpy code, stored as float32)."""
        weights = torch.tensor(self.prior_weights, dtype=torch.float64, device=self.W_edge.weight.device)
        return torch.softmax(weights / self.prior_temperature, dim=0).float()

    def edge_index(self, device=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(student, teacher) modality indices of the edges, in edge order."""
        index = torch.tensor(self.pairs, device=device)
        return index[:, 0], index[:, 1]

    def forward(self, logits, reprs) -> torch.Tensor:
        """``logits``/``reprs``: per-modality ``(B, logit_dim)``/``(B, repr_dim)`` (a list or a stacked tensor);
        returns the normalised edges ``(num_edges, B)``."""
        logits, reprs = torch.stack(list(logits)), torch.stack(list(reprs))
        z = torch.cat([self.W_logit(logits), self.W_repr(reprs)], dim=-1)
        student, teacher = self.edge_index(z.device)
        edges = self.W_edge(torch.cat([z[student], z[teacher]], dim=-1)).squeeze(-1)
        return torch.softmax(edges * self.alpha, dim=0)
