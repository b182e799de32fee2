"""UBoost variants for ``bench_search_step.py --ablations``, each without one candidate source of extra
step time (subclasses defined here; the library is not touched), and the UBoost options every strategy
of that benchmark shares."""

from __future__ import annotations

from collections.abc import Callable

ABLATIONS = ("-hw loss", "-logging", "-tau walk", "-clip", "-log -walk -clip")


def uboost_kwargs(args, **extra) -> dict:
    budget = {} if args.target_latency_ms is None else dict(target_latency_ms=args.target_latency_ms, budget_commit=args.budget_commit)
    return dict(cost_model="systolic", hardware=dict(rows=args.rows, cols=args.cols), data_split=None, seed=args.seed,
                **budget, **extra)


def ablations() -> dict[str, Callable]:
    """UBoost variants, each without one candidate source of extra time (``--ablations``)."""
    import torch
    from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax

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

    class CachedTau(UBoostLightningModule):
        """The Gumbel modules found once, not by walking ``self.modules()`` every step."""

        def on_train_batch_start(self, batch, batch_idx, *args, **kwargs):
            tau = self.current_gumbel_tau(self.trainer.fit_loop.total_batch_idx)
            if tau is not None:
                if not hasattr(self, "_gumbel_modules"):
                    self._gumbel_modules = [m for m in self.modules() if isinstance(m, GumbelSoftmax)]
                for module in self._gumbel_modules:
                    module.tau = tau
            # skip UBoostLightningModule's hook, keep the rest of the chain
            return super(UBoostLightningModule, self).on_train_batch_start(batch, batch_idx, *args, **kwargs)

    class ZeroHardware(torch.nn.Module):
        """The hardware loss replaced by a constant (still traced on step 1, still logged)."""

        def __init__(self, real):
            super().__init__()
            self.real = real
            self._terms = None

        @property
        def attached(self):
            return self.real.attached

        @property
        def latency_ref_ms(self):
            return self.real.latency_ref_ms

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
                hw = self.hardware_loss if wrap_hw is None else wrap_hw(self.hardware_loss)
                return module_cls(
                    training_module,
                    hardware_loss=hw,
                    gumbel_temperature=self.gumbel_temperature,
                    arc_learning_rate=self.arc_learning_rate,
                    gradient_clip_val=self.gradient_clip_val,
                    log_prob_every_n_step=self.log_prob_every_n_step,
                    warmup_epochs=self.warmup_epochs,
                )

        return lambda args: Variant(**uboost_kwargs(args, **kwargs))

    class Lean(NoLog, CachedTau):
        pass

    variants = {
        "-hw loss": variant(wrap_hw=ZeroHardware),
        "-logging": variant(NoLog),
        "-tau walk": variant(CachedTau),
        "-clip": variant(gradient_clip_val=None),
        "-log -walk -clip": variant(Lean, gradient_clip_val=None),
    }
    assert tuple(variants) == ABLATIONS
    return variants
