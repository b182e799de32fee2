"""The Lightning training module of the U-Boost strategy (NNI one-shot machinery)."""

from __future__ import annotations

import contextlib
import logging
import math

import torch
from nni.nas.oneshot.pytorch.differentiable import DartsLightningModule
from nni.nas.oneshot.pytorch.supermodule.differentiable import GumbelSoftmax
from torch import optim

from uboost.exceptions import SearchError
from uboost.strategy import bits_noise
from uboost.strategy.data_parallel import DataParallelSearch
from uboost.strategy.flat_adam import FlatAdam
from uboost.strategy.host_mirror import HostMirror
from uboost.strategy.loss import HardwareLoss
from uboost.strategy.score_function import ScoreFunction
from uboost.strategy.single_path import find_sampler, log_sampled_cost

logger = logging.getLogger(__name__)
SCORE_KEY = "uboost_score_function"  # the score function's baseline in a checkpoint
PROBS_KEY = "uboost_logged_probs"  # the choice probabilities last logged, which the epoch's later rows repeat


def _inputs(batch):
    return batch[0] if isinstance(batch, (list, tuple)) else batch


class UBoostLightningModule(DataParallelSearch, DartsLightningModule):
    """DARTS-style alternating steps with the hardware term in the architecture step.

    Unlike NNI's ``penalty=``, the hardware term is computed from the *tensor* probabilities
    of the alphas the supernet trains, so it changes their gradient. The Gumbel temperature
    (when Gumbel softmax is used) anneals every step, not every epoch.
    """

    def __init__(
        self,
        training_module,
        *,
        hardware_loss: HardwareLoss,
        gumbel_temperature: tuple[float, float] | None = (1.0, 0.1),
        sharpen: bool = True,
        arc_learning_rate: float = 3e-3,
        gradient_clip_val: float | None = None,
        log_prob_every_n_step: int = 10,
        warmup_epochs: int = 0,
        bits_noise_weight: float = 0.0,
        score_weight: float = 0.0,
        score_on: str = "all",
        generators: dict | None = None,
        loaders: dict | None = None,
    ):
        super().__init__(
            training_module,
            arc_learning_rate=arc_learning_rate,
            gradient_clip_val=gradient_clip_val,
            log_prob_every_n_step=log_prob_every_n_step,
            warmup_epochs=warmup_epochs,
        )
        self.hardware_loss = hardware_loss
        self._generators = generators or {}
        self._loaders = loaders if loaders is not None else {}  # filled by the strategy's train_dataloader
        self.gumbel_temperature = gumbel_temperature
        self.sharpen = sharpen
        self._gumbel_modules: list | None = None
        self._next_mirror: HostMirror | None = None  # the alphas the next step starts with (host copy)
        self._bad_loss: tuple | None = None  # the first non-finite training loss, kept on the device
        self._alpha_list: list | None = None
        self.bits_noise_weight = bits_noise_weight  # weight of the bits' quantization-noise loss (strategy/bits_noise.py)
        self._noise_choices: list | None = None
        # single-path: the score-function estimate of the task's gradient (strategy/score_function.py); 0: none
        self.score_function = ScoreFunction(score_weight, scope=score_on) if score_weight > 0 else None
        self._logged_probs: dict | None = None  # the last prob/* values logged (repeated by the rows after them)
        self._carried_probs: dict | None = None  # those of a checkpoint, logged again at a resume's first step

    def setup(self, stage=None):
        result = super().setup(stage)
        log = self.training_module.log  # the evaluator's train_loss / train_acc: not on the progress bar

        def off_the_bar(name, value, *args, **kwargs):  # Lightning reads progress-bar values every step (a GPU sync)
            kwargs["prog_bar"] = False
            return log(name, value, *args, **kwargs)

        self.training_module.log = off_the_bar
        return result

    def _schedule_step(self, batch_idx: int) -> int:
        """The global step of the schedules (Gumbel temperature, budget commit) as epoch x steps per
        epoch + batch: a search resumed on another number of devices continues at the same fraction."""
        per_epoch = self.trainer.num_training_batches
        if isinstance(per_epoch, int) and per_epoch > 0:
            return self.trainer.current_epoch * per_epoch + batch_idx
        return self.trainer.fit_loop.total_batch_idx

    def on_fit_end(self):
        """A resume of a run whose last epoch was checkpointed trains no step, so nothing attached the hardware loss:
        attach it now, from one training sample, so that the export is the search's (budget projection, operating
        point, bits) and the run gets its alphas and probabilities, as the uninterrupted run did."""
        if not self.hardware_loss.attached:
            loaders = self.trainer.train_dataloader
            loader = loaders["train"] if isinstance(loaders, dict) else loaders
            with torch.random.fork_rng(devices=[]):  # a transform may draw: nothing the run goes on with
                example = _inputs(loader.dataset[0]).unsqueeze(0)
            self.hardware_loss.attach(self.model, example.to(self.device))
            self._price_at(self.current_gumbel_tau(self._total_steps() - 1))  # the last step's distribution
        return super().on_fit_end()

    def _price_at(self, tau: float | None) -> None:
        """The hardware term prices ``softmax(alpha / tau)`` (loss.py) where the distribution sharpens."""
        if tau is not None and self.sharpen:
            self.hardware_loss.distribution_tau = tau

    # -- RNG state in the checkpoint: a resumed search repeats the uninterrupted one ----------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        from uboost.strategy import rng

        checkpoint[rng.KEY] = rng.collect(self._generators)
        checkpoint[PROBS_KEY] = self._logged_probs
        if self.score_function is not None:
            checkpoint[SCORE_KEY] = self.score_function.state_dict()
        super().on_save_checkpoint(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        from uboost.strategy import rng

        super().on_load_checkpoint(checkpoint)
        self._carried_probs = checkpoint.get(PROBS_KEY)
        if rng.KEY in checkpoint:  # older checkpoints resume as before (not bit-exact)
            rng.restore(checkpoint[rng.KEY], self._generators)
        if self.score_function is not None and SCORE_KEY in checkpoint:
            self.score_function.load_state_dict(checkpoint[SCORE_KEY], self.device)

    # -- Gumbel temperature, per step ---------------------------------------------------------
    def _total_steps(self) -> int:
        trainer = self.trainer
        if trainer.max_steps and trainer.max_steps > 0:
            return trainer.max_steps
        per_epoch = trainer.num_training_batches
        epochs = trainer.max_epochs or 1
        if not isinstance(per_epoch, int) or per_epoch <= 0 or math.isinf(per_epoch):
            return 1
        return max(1, per_epoch * epochs)

    def _warmup_steps(self) -> int:
        """Steps of the weights-only warm-up (``warmup_epochs``): the schedule starts after them."""
        per_epoch = self.trainer.num_training_batches
        if not self.warmup_epochs or not isinstance(per_epoch, int) or per_epoch <= 0:
            return 0
        return min(self.warmup_epochs * per_epoch, self._total_steps() - 1)

    def current_gumbel_tau(self, step: int) -> float | None:
        """The temperature at global ``step``: ``start`` through the warm-up, then linear to ``end``
        over the steps that train the architecture."""
        if self.gumbel_temperature is None:
            return None
        start, end = self.gumbel_temperature
        warmup = self._warmup_steps()
        progress = min(1.0, max(0, step - warmup) / max(1, self._total_steps() - warmup - 1))
        return start + (end - start) * progress

    def commits_to_budget(self, step: int) -> bool:
        """True in the last ``budget_commit`` of the steps that train the architecture, with a target."""
        loss = self.hardware_loss
        if not loss.has_budget or not loss.budget_commit:
            return False
        total, warmup = self._total_steps(), self._warmup_steps()
        return step >= total - math.ceil(loss.budget_commit * (total - warmup))

    def architecture_trains(self) -> bool:
        """False during the weights-only warm-up epochs (NNI's ``warmup_epochs``)."""
        return self.warmup_epochs == 0 or self.trainer.current_epoch >= self.warmup_epochs

    def on_train_batch_start(self, batch, batch_idx, *args, **kwargs):
        tau = self.current_gumbel_tau(self._schedule_step(batch_idx))
        self._price_at(tau)
        if tau is not None:
            if self._gumbel_modules is None:  # walking ~3k modules every step cost ~1% of a step
                self._gumbel_modules = [m for m in self.modules() if isinstance(m, GumbelSoftmax)]
            for module in self._gumbel_modules:
                module.__dict__["tau"] = tau  # a plain attribute; skips nn.Module.__setattr__
        return super().on_train_batch_start(batch, batch_idx, *args, **kwargs)

    def on_train_epoch_start(self):
        # DARTS' epoch hook only (NNI's Gumbel module would reset tau per epoch)
        return DartsLightningModule.on_train_epoch_start(self)

    # -- the search step ----------------------------------------------------------------------
    def training_step(self, batch, batch_idx):
        arc_optim = self.architecture_optimizers()
        if not isinstance(arc_optim, optim.Optimizer):
            raise TypeError(f"expected one architecture optimizer, got {arc_optim}")
        trn_batch, val_batch = batch["train"], batch["val"]
        if not self.hardware_loss.attached:
            self.hardware_loss.attach(self.model, _inputs(trn_batch))
            if self.current_epoch == 0:  # the uninterrupted run's epoch-0 rows hold them (a resume attaches again)
                self.log("hw/latency_ref_ms", self.hardware_loss.latency_ref_ms)
                if self.hardware_loss.energy_ref_uj is not None:
                    self.log("hw/energy_ref_uj", self.hardware_loss.energy_ref_uj)
            logger.info("hardware loss attached: latency_ref = %.6f ms", self.hardware_loss.latency_ref_ms)

        step = self._schedule_step(batch_idx)
        sampler = find_sampler(self)
        if sampler is not None:  # both draws of this step read the alphas it starts with (host_mirror.py)
            sampler.use(self._next_mirror or HostMirror(self._alphas()))
        arch_trains = self.architecture_trains()
        if arch_trains:
            if self.commits_to_budget(step):  # re-solved every step (from the alphas the step starts with)
                committed = self.hardware_loss.commit_to_budget(step)
                self.log("hw/committed_latency_ms", self._on_device(committed.latency_ms))
                if committed.energy_uj is not None:
                    self.log("hw/committed_energy_uj", self._on_device(committed.energy_uj))
            else:
                self.hardware_loss.commit_indices = None
            self.resample()
            arc_optim.zero_grad()
            task = self.training_module.training_step(val_batch, 2 * batch_idx)
            task = task["loss"] if isinstance(task, dict) else task
            terms = self.hardware_loss()
            arc_loss = task + terms.loss.to(task.dtype)
            if self.score_function is not None and sampler is not None:
                score = self.score_function.surrogate(task, sampler.sampled(), sampler.alphas)
                if score is not None:
                    arc_loss = arc_loss + score
            noise = bits_noise.expected_loss(self._bits_choices())
            if noise is not None:
                arc_loss = arc_loss + self.bits_noise_weight * noise.to(task.dtype)
                self.log("hw/bits_noise", noise.detach().float())
            self._average_next_backward = self._averaged("arch")
            self.manual_backward(arc_loss)
            arc_optim.step()
            cost = terms.cost
        else:
            with torch.no_grad():
                terms = self.hardware_loss()
            cost = terms.cost
        self._prepare_next_step(step, sampler)
        derived = self.hardware_loss.derived_cost()  # the network the export would return now, priced exactly
        # where the budgets judge it: the spec's own point, or the one chosen with the network (operating point auto)
        derived_ms, derived_uj = self.hardware_loss.derived_values(derived)
        # the multipliers move only while the alphas do (no wind-up through a weights-only warm-up); tensors
        multipliers = self.hardware_loss.step_multipliers(derived_ms, derived_uj) if arch_trains else \
            {"latency": self.hardware_loss.multiplier.clone(), "energy": self.hardware_loss.energy_multiplier.clone()}
        self.log_dict(  # not prog_bar: Lightning reads progress-bar values on the host every step (search.py shows them)
            {
                "hw/latency_ms": cost.latency_ms.detach().float(),
                "hw/derived_latency_ms": torch.as_tensor(derived_ms).float(),
                "hw/utilization": cost.utilization.detach().float(),
            },
        )
        hw_logs = {
            "hw/cycles": cost.cycles.detach().float(), "hw/loss": terms.loss.detach().float(),
            "hw/derived_cycles": derived.cycles.float(), "hw/derived_utilization": derived.utilization.float(),
        }
        if cost.energy_uj is not None:
            hw_logs["hw/energy_uj"] = cost.energy_uj.detach().float()
            hw_logs["hw/derived_energy_uj"] = torch.as_tensor(derived_uj).float()
        if self.hardware_loss.target_latency_ms is not None:
            hw_logs["hw/budget_multiplier"] = multipliers["latency"]
        if self.hardware_loss.target_energy_uj is not None:
            hw_logs["hw/energy_multiplier"] = multipliers["energy"]
        if self.hardware_loss.auto_point and self.hardware_loss.has_budget:  # chosen at attach, moved by commits
            hw_logs["hw/operating_point"] = self.hardware_loss.point_index.float()
        self.log_dict(hw_logs)

        log_sampled_cost(self)  # single-path sampling: the exact cost of the sampled path
        self.resample()
        probed = self._bits_choices() if batch_idx % bits_noise.EVERY == 0 else []
        for choice in probed:
            choice.probing = True
        try:
            with sampler.constant_alphas() if sampler is not None else contextlib.nullcontext():  # alpha gradients unused
                result = self.training_module.training_step(trn_batch, 2 * batch_idx + 1)
            w_loss = result["loss"] if isinstance(result, dict) else result
            self._watch_loss(w_loss, batch_idx)
            self._average_next_backward = self._averaged("weights")
            self.advance_optimization(w_loss, batch_idx, self.gradient_clip_val)
        finally:
            bits_noise.release(probed)
        bits_noise.settle(probed)
        self.advance_lr_schedulers(batch_idx)
        tau = self.current_gumbel_tau(self._schedule_step(batch_idx))
        if tau is not None:
            self.log("gumbel_tau", self._on_device(tau))
        if batch_idx % self.log_prob_every_n_step == 0:
            self.log_probs(self.export_probs())
        elif self._carried_probs is not None:  # resumed inside an epoch: its rows repeat the values logged before the
            self.log_probs(self._carried_probs)  # stop (Lightning carries them; a restarted process had none)
        self._carried_probs = None
        return result

    def log_probs(self, probs) -> None:
        # kept with plain keys (NNI's labels are a str subclass a checkpoint may not load); the values as logged
        self._logged_probs = {str(label): {str(value): p for value, p in dist.items()} for label, dist in probs.items()}
        super().log_probs(probs)

    def _bits_choices(self) -> list:
        """The precision choices whose quantization noise the architecture loss prices (none at weight 0)."""
        if self._noise_choices is None:
            from uboost.strategy.precision import BitsChoice

            self._noise_choices = [m for m in self.model.modules() if isinstance(m, BitsChoice)] \
                if self.bits_noise_weight > 0 else []
        return self._noise_choices

    # -- host work kept off the step's critical path --------------------------------------------
    def _prepare_next_step(self, step: int, sampler) -> None:
        """Right after the architecture update: copy the alphas the next step starts with to the
        host without waiting (:mod:`uboost.strategy.host_mirror`), for its path draws, and start
        its commit-phase projection on the worker thread (:mod:`uboost.strategy.background`)."""
        commits = self.commits_to_budget(step + 1)
        if sampler is None and not commits:
            self._next_mirror = None
            return
        mirror = HostMirror(self._alphas())
        self._next_mirror = mirror if sampler is not None else None
        if commits and self.hardware_loss.attached:
            self.hardware_loss.prepare_commit(mirror, step + 1)

    def _on_device(self, value: float) -> torch.Tensor:
        """A float to log, made on the device by a fill (Lightning's own conversion copies it there, a sync)."""
        return torch.full((), float(value), device=self.device)

    def _alphas(self) -> list:
        if self._alpha_list is None:  # found once (walking the supernet every step costs)
            self._alpha_list = self.arch_parameters()
        return self._alpha_list

    def _watch_loss(self, loss: torch.Tensor, batch_idx: int) -> None:
        """Remember the first non-finite training loss without reading it on the host; the search
        stops with one line at the next check: every ``log_every_n_steps`` steps (when Lightning
        reads its metrics anyway), at the end of each epoch and of the training."""
        loss = loss.detach()
        if self._bad_loss is None:
            self._bad_loss = (torch.full((2,), -1, dtype=torch.long, device=loss.device), torch.zeros((), dtype=loss.dtype, device=loss.device))
        where, value = self._bad_loss
        first = ~torch.isfinite(loss) & (where[0] < 0)
        where[0].copy_(torch.where(first, self.trainer.current_epoch, where[0]))  # Python scalars: no copy to the device
        where[1].copy_(torch.where(first, batch_idx, where[1]))
        value.copy_(torch.where(first, loss, value))
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 50) or 50))
        per_epoch = self.trainer.num_training_batches
        if (self._schedule_step(batch_idx) + 1) % every == 0 or (isinstance(per_epoch, int) and batch_idx + 1 >= per_epoch):
            self._check_loss()

    def _check_loss(self) -> None:
        if self._bad_loss is None:
            return
        where, value = self._bad_loss
        epoch, step = (int(v) for v in where.tolist())
        if epoch >= 0:
            raise SearchError(f"the training loss became {float(value)} at epoch {epoch}, step {step}: "
                              "lower the learning rate or the latency weight")

    def on_train_end(self):
        try:
            self._check_loss()
        finally:  # the projection prepared for a step that will not come: no solve outlives the fit
            self.hardware_loss.settle_commits()
        return super().on_train_end()

    def resample(self):
        """NNI's resample over the supernet modules, listed once: walking the ~5k modules of a
        supernet with bits twice per step cost ~10% of a darts-cifar step."""
        modules = self.__dict__.get("_resample_modules")
        if modules is None or modules[0] is not self.model:
            plain, shared = [], {}
            for module in self.supernet_modules():  # a module with resample_action (bits choices) only runs it
                action = getattr(module, "resample_action", None)
                if action is None:
                    plain.append(module)
                elif (fn := action()) is not None:
                    shared.setdefault(id(getattr(fn, "__self__", fn)), fn)  # once per sampler, not per layer
            modules = self.__dict__["_resample_modules"] = (self.model, plain, list(shared.values()))
        for fn in modules[2]:
            fn()
        result = {}
        for module in modules[1]:
            result.update(module.resample(memo=result))
        return result

    def arch_parameters(self):
        # NNI returns list(set(...)): its order changes between processes, so a resumed
        # architecture optimizer would get another parameter's state. Keep module order.
        params = []
        for module in self.supernet_modules():
            if hasattr(module, "arch_parameters"):
                params += list(module.arch_parameters())
        return list({id(p): p for p in params}.values())

    def validation_step(self, batch, batch_idx):
        return self.training_module.validation_step(batch, batch_idx)

    def configure_architecture_optimizers(self):
        params = self.arch_parameters()
        if not params:
            raise SearchError("the model space has no choices: nothing to search")
        # torch's foreach Adam, updated as one flat vector when every alpha has a gradient (the same
        # numbers; ~500 alphas with bits: ~1 ms instead of ~5-10 ms per step on a CPU)
        return FlatAdam(params, self.arc_learning_rate, betas=(0.5, 0.999), weight_decay=1.0e-3)
