"""``bench_search_step.py --paired-paths``: every single-path process runs the same op path at every step.

Without it, the single-path processes of a lockstep each draw their own path from their own alphas:
a process with bits registers ~120 more alphas (its op alphas' noise is drawn from the same stream),
and its losses differ, so from the first step its paths differ from the no-bits process's. A step's
time depends on its path (a pooling or a skip costs little, a separable convolution much more), so
the per-round ratio "bits / no bits" then mixes the bits' cost with the difference of two random
paths, and the median over 24 rounds moves by a few percent between runs of the same code.

Here the sampler's path is drawn uniformly at random from two streams of fixed seed -- one for the op
alphas (in the order the sampler registered them, the same with and without bits), one for the bits
alphas -- instead of from the alphas plus Gumbel noise: the drawn candidate's logit is raised by
``FORCE``, so the sampler's own Gumbel argmax returns it. Everything else runs as in a search (the
straight-through weights, the backward, the alphas' updates: only the choice of path ignores them).
Each draw's op path is recorded (a hash per draw) so the report can check the processes stayed paired.
For timing only: a search with this is not a search.
"""

from __future__ import annotations

OPS_SEED, BITS_SEED = 20261204, 4
FORCE = 1e6  # above any Gumbel noise the sampler adds (at most ~28 for its clamped uniforms)


def install(record: list, seed: int = 0) -> set[int]:
    """Patch this process's sampler (``PathSampler._logits``) to draw paired paths; each draw's op-path
    hash goes to ``record``; ``seed`` shifts both streams (every process of a run gets the same). Returns
    the set of ``id``s of bits alphas (filled as ``BitsChoice``s are made)."""
    import torch

    from uboost.strategy import precision
    from uboost.strategy.single_path import PathSampler

    bits_alphas: set[int] = set()
    real_init = precision.BitsChoice.__init__

    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        bits_alphas.update(id(p) for p in self.alphas.values())

    precision.BitsChoice.__init__ = init

    def logits(self) -> torch.Tensor:
        streams = self.__dict__.get("_paired_streams")  # per sampler, from the same seeds in every process
        if streams is None:
            streams = self.__dict__["_paired_streams"] = {False: torch.Generator().manual_seed(OPS_SEED + seed),
                                                          True: torch.Generator().manual_seed(BITS_SEED + seed)}
        layout = self.__dict__.get("_paired_layout")
        if layout is None or layout[0] is not self._layout:  # the sampler's own layout, remade when alphas register
            sizes = torch.tensor([a.numel() for a in self._alphas], dtype=torch.float64)
            starts = (sizes.cumsum(0) - sizes).long()
            is_bits = torch.tensor([id(a) in bits_alphas for a in self._alphas])
            layout = (self._layout, sizes, starts, is_bits, int(sizes.sum()))
            self.__dict__["_paired_layout"] = layout
        _, sizes, starts, is_bits, total = layout
        uniform = torch.empty(len(sizes), dtype=torch.float64)
        for bits in (False, True):
            where = is_bits if bits else ~is_bits
            uniform[where] = torch.rand(int(where.sum()), generator=streams[bits], dtype=torch.float64)
        index = (uniform * sizes).long()
        out = torch.zeros(total, dtype=torch.float64)
        out[starts + index] = FORCE
        record.append(hash(tuple(index[~is_bits].tolist())))
        return out

    PathSampler._logits = logits
    return bits_alphas


def paired_steps(a: list[int], b: list[int]) -> tuple[int, int]:
    """``(draws with the same op path, draws compared)`` of two processes' records."""
    n = min(len(a), len(b))
    return sum(x == y for x, y in zip(a[:n], b[:n])), n
