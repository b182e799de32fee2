"""UBoost variants for ``bench_search_step.py --ablations``, each without one candidate source of extra
step time (subclasses defined here; the library is not touched), and the UBoost options every strategy
of that benchmark shares."""

from __future__ import annotations

from collections.abc import Callable

# (a "-tau walk" variant caching the Gumbel modules was adopted by UBoostLightningModule itself)
ABLATIONS = ("-hw loss", "-logging", "-clip", "-log -clip")


def uboost_kwargs(args, **extra) -> dict:
    budget = {} if args.target_latency_ms is None else dict(target_latency_ms=args.target_latency_ms, budget_commit=args.budget_commit)
    return dict(cost_model="systolic", hardware=dict(rows=args.rows, cols=args.cols), data_split=None, seed=args.seed,
                **budget, **extra)


def ablations() -> dict[str, Callable]:
    """UBoost variants, each without one candidate source of extra time (``--ablations``)."""
    import torch

    from uboost.strategy import UBoost
    from uboost.strategy.lightning import UBoostLightningModule
    from uboost.strategy.loss import HardwareTerms

    class NoLog(UBoostLightningModule):
        """No per-step ``log_dict`` of the hardware terms nor ``log("gumbel_tau")``."""

        def log_dict(self, dictionary, *a, **k):
            if any(key.startswith("hw/") for key in dictionary):
                return None
            return super().log_dict(dictionary, *a, **k)

        def log(self, name, value, *a, **k):
            if name == "gumbel_tau":
                return None
            return super().log(name, value, *a, **k)

    class ZeroHardware(torch.nn.Module):
        """The hardware loss replaced by a constant (still traced on step 1, still logged); every other
        attribute (attached, the references, the commit phase) is the real loss's."""

        def __init__(self, real):
            super().__init__()
            self.real = real
            self._terms = None

        def __getattr__(self, name):
            try:
                return super().__getattr__(name)
            except AttributeError:
                return getattr(super().__getattr__("real"), name)

        def attach(self, supernet, example):
            self.real.attach(supernet, example)
            with torch.no_grad():
                terms = self.real()
            self._terms = HardwareTerms(loss=torch.zeros((), dtype=terms.loss.dtype), cost=terms.cost)

        def forward(self):
            return self._terms

    def variant(module_cls=UBoostLightningModule, wrap_hw=None, **kwargs):
        class Variant(UBoost):
            def configure_oneshot_module(self, training_module):
                module = super().configure_oneshot_module(training_module)  # the library's, every option included
                module.__class__ = module_cls  # the subclasses above only override methods
                if wrap_hw is not None:
                    module.hardware_loss = wrap_hw(module.hardware_loss)
                return module

        return lambda args: Variant(**uboost_kwargs(args, **kwargs))

    variants = {
        "-hw loss": variant(wrap_hw=ZeroHardware),
        "-logging": variant(NoLog),
        "-clip": variant(gradient_clip_val=None),
        "-log -clip": variant(NoLog, gradient_clip_val=None),
    }
    assert tuple(variants) == ABLATIONS
    return variants
