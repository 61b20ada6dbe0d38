"""The training loop: one blocking call that trains, obeys commands at step boundaries and emits events.

It runs on whatever thread calls it (a worker thread under the TUI, the main thread headless).
Per-step values stay on the device; the loop reads them once every `log_interval` steps, or once a second
when those steps take longer, so the logs on disk are never more than about a second behind.
With a run directory, the loop also logs there (runlog.py), serves its control socket (remote.py)
and writes checkpoints: last.pt, best.pt, epoch-NNNN.pt every N epochs (keeping K), and last.pt every
N steps or minutes. Once the loss diverged no checkpoint is written, so the last good one is kept; a write
that fails (a full disk) keeps the last good one too, and pauses the run or stops it cleanly.
Started by torchrun with several ranks, the same loop trains one DDP replica per process (distributed/):
rank 0 owns the run folder, and the ranks meet every few steps so commands apply everywhere at one step.
"""

from __future__ import annotations

import math
import time
import traceback
import uuid
from collections.abc import Callable
from contextlib import ExitStack, nullcontext
from pathlib import Path
from typing import Any, Literal

import torch

from . import cpu_threads
from . import resume as resuming
from .storage import checkpoint as ckpt
from .commands import (
    Command,
    Control,
    EvaluateNow,
    FindLr,
    Pause,
    Resume,
    Rollback,
    SaveCheckpoint,
    ScaleLearningRate,
    SetLearningRate,
    SetTrainable,
    Stop,
)
from .config import RunConfig
from .device import device_name
from .distributed.env import from_environ
from .errors import CheckpointError, ModelError, UserError
from .evaluate import EvalResult
from .events import (
    CheckpointSaved,
    CommandApplied,
    Diverged,
    EpochEnded,
    Evaluated,
    LrChanged,
    Notice,
    Paused,
    Resumed,
    RunFailed,
    RunFinished,
    RunStarted,
    StepMetrics,
    TrainableChanged,
)
from .health.monitor import HealthMonitor
from .health.rollback import Rewound, roll_back
from .lr_find import sweep_in_run
from .models.registry import freeze_edit, random_backbone_warning, set_trainable
from .optim import current_lr, set_lr
from .remote import CONTROL_SOCKETS, ControlServer
from .storage.lineage import Lineage, write_lineage
from .storage.rundir import RunLock, create_run_dir, write_config
from .storage.runlog import RunLog
from .setup import build
from .sinks import EventSink, FanOut, NullSink
from .task import Task
from .train_options.accumulate import Accumulation
from .train_options.clipping import GradClipper
from .train_options.early_stop import EarlyStopping, check_metric, epoch_results
from .train_options.ema import WeightAverage
from .train_options.warmup import Warmup
from .workload import Workload

EMIT_SECONDS = 0.1  # hand step points to the sink at most ten times a second
READ_SECONDS = 1.0  # and read the device's losses at least once a second, however long log_interval is
PAUSE_POLL_SECONDS = 0.1  # how often a paused loop looks at the stop flag
MAX_NAMED_UNREADABLE = 100  # unreadable files named one by one; beyond that only counted


OnDivergence = Literal["stop", "pause"]


def train(config: RunConfig, sink: EventSink | None = None, control: Control | None = None, *,
          resume: dict[str, Any] | None = None, run_dir: Path | None = None,
          on_divergence: OnDivergence = "stop", listen: bool = True, task: Task | None = None,
          parent: Lineage | None = None) -> RunFinished:
    """Train `config` to the end (or until stopped) on the calling thread; RunFailed is emitted on error.

    `resume` is a loaded checkpoint to continue from, `run_dir` an existing run directory to continue in
    (its logs are cut back to the checkpoint). A NaN or infinite loss, or a checkpoint or log that cannot be
    written (a full disk), stops the run, or pauses it with on_divergence="pause".
    With `listen`, other processes can drive the run through its control socket.
    `task` trains a Task object (ptviz.fit) instead of what config.data names.
    `parent` makes the run a fork of another: `resume` is then that run's checkpoint, and the new run
    directory records where it branched (see fork.py).
    """
    sink = sink or NullSink()
    control = control or Control()
    trainer = None
    ranks = None
    with ExitStack() as outputs:
        try:
            ranks = _join_ranks()  # None in a single process: everything below is then the plain path
            notices: list[str] = []
            if ranks is not None:
                outputs.callback(ranks.close)
                config, resume, run_dir, notices = _agree(ranks, config, resume, run_dir)
            elif (env := from_environ()) is not None and env.restart and resume is None and run_dir is None:
                from .distributed.start import restarted_run  # one process under torchrun, restarted by its agent

                run_dir, resume, notices = restarted_run(config, env.job_id, env.restart)
            probe = cpu_threads.LoadProbe()  # other processes' load, measured while the run is set up
            setup = build(config, task=task, ranks=ranks)  # a task that breaks its contract fails here
            trainer = Trainer(setup, sink, control, on_divergence=on_divergence)
            # Set here, on the training thread, for this run only (the count is process-wide).
            trainer.threads = outputs.enter_context(
                cpu_threads.using(cpu_threads.choose(config.train.threads, trainer.s.device, probe)))
            trainer.restored += [Notice("info", text) for text in notices]
            if ranks is not None:
                trainer.join(ranks)
            if resume is not None:
                trainer.restore(resume)  # a checkpoint that does not fit fails here, before anything is written
            if ranks is not None and not ranks.leader:
                trainer.run_dir = run_dir  # only marks that rank 0 saves: every rank takes part, rank 0 writes
                return trainer.run()
            if run_dir is None and config.output.runs_dir:
                run_dir = create_run_dir(setup.config, name=setup.describe().name)
                if parent is not None:
                    write_lineage(run_dir, parent)
            if run_dir is not None:
                log, server = _open_run_dir(outputs, run_dir, setup.config, control, resume, listen,
                                            setup.describe().metrics)
                sink = trainer.sink = FanOut(log, server, sink)
                trainer.run_dir, trainer.before_save = run_dir, log.sync
                log.on_error = trainer.log_failed
                _note_job(setup.config, run_dir)
                trainer.rewind_log = log.rewind
                if trainer.health.sampler is not None:
                    trainer.health.sampler.histograms = log.tb is not None  # TensorBoard shows them
            return trainer.run()
        except BaseException as exc:
            # User errors are one clear line; their traceback only matters when it points into user code.
            details = getattr(exc, "details", None) or ("" if isinstance(exc, UserError) else traceback.format_exc())
            message, failed_rank = _one_line(exc), None
            if ranks is not None:
                message, details, failed_rank = ranks.failure(message, details, exc)
            sink.emit(RunFailed(message=message, traceback=details, step=trainer.step if trainer else 0,
                                user_error=isinstance(exc, UserError), rank=failed_rank))
            raise


def _join_ranks() -> Any:
    """The process group of a multi-rank run (torchrun, or any launcher that sets RANK and WORLD_SIZE), else None."""
    env = from_environ()
    if env is None or not env.multi:
        return None
    from .distributed.group import join

    return join()


def _agree(ranks: Any, config: RunConfig, resume: dict[str, Any] | None,
           run_dir: Path | None) -> tuple[RunConfig, dict[str, Any] | None, Path | None, list[str]]:
    """Rank 0's configuration, checkpoint and folder on every rank, and this rank's device."""
    from .distributed.start import agree

    agreed = agree(ranks, config, resume, run_dir)
    ranks.use_device(agreed.config.train.device)
    return agreed.config, agreed.resume, agreed.run_dir, agreed.notices


def _note_job(config: RunConfig, run_dir: Path) -> None:
    """Under torchrun, remember this job's run folder, so a restart by its agent continues there."""
    env = from_environ()
    if env is not None and env.job_id and env.restart == 0:
        from .distributed.start import note_job

        note_job(config, env.job_id, run_dir)


def _open_run_dir(stack: ExitStack, run_dir: Path, config: RunConfig, control: Control,
                  resume: dict[str, Any] | None, listen: bool,
                  metrics: tuple[str, ...] = ()) -> tuple[RunLog, ControlServer | None]:
    """Lock the run directory, tidy it, and open its logs and control socket (closed by `stack`)."""
    stack.enter_context(RunLock(run_dir))
    if resume is not None:
        write_config(run_dir, config)  # flags given to resume (more epochs) apply from here on
    for folder in (run_dir, run_dir / "checkpoints"):
        ckpt.remove_stale_temp_files(folder)  # left by a write that a kill cut short
    log = stack.enter_context(RunLog(run_dir, resume, tensorboard=config.output.tensorboard, metrics=metrics,
                                     train=config.train))
    server = stack.enter_context(ControlServer(run_dir, control)) if listen and CONTROL_SOCKETS else None
    return log, server


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}".strip()


class _LogNotWritten(OSError):
    """The run log failed to become durable before a checkpoint: `cause` is the write's error."""

    def __init__(self, cause: OSError, folder: Path):
        super().__init__(cause.errno, cause.strerror)
        self.cause, self.folder = cause, folder


class Trainer:
    """State of one run between steps; `run()` is the loop."""

    def __init__(self, setup: Workload, sink: EventSink, control: Control, run_dir: Path | None = None,
                 on_divergence: OnDivergence = "stop", before_save: Callable[[], None] | None = None):
        self.s = setup
        self.cfg = setup.config
        self.sink = sink
        self.control = control
        self.run_dir = run_dir
        self.on_divergence = on_divergence
        self.before_save = before_save  # makes the run log durable before a checkpoint claims its steps
        device = setup.device
        # Position in the run.
        self.step = 0
        self.epoch = 0  # 0-based epoch being trained
        self.batch_in_epoch = 0
        self.order: torch.Tensor | None = None  # this epoch's sample order (saved in checkpoints)
        self.metric_names = setup.metric_names  # a task's named per-step values, charted beside the loss
        # Epoch accumulators, kept on the device: no sync until the epoch ends.
        self.ep_loss = torch.zeros((), device=device)
        self.ep_correct = torch.zeros((), dtype=torch.long, device=device)
        self.ep_metrics = torch.zeros(len(self.metric_names), device=device)
        self.ep_seen = 0
        self.ep_batches = 0
        # Per-step losses (and named metrics) waiting to be read, and points read but not yet emitted.
        self.loss_buf = torch.zeros(self.cfg.train.log_interval, device=device)
        self.metric_buf = torch.zeros((len(self.metric_names), self.cfg.train.log_interval), device=device)
        self.buf_n = 0
        self.buf_lrs: list[float] = []
        self.out_steps: list[int] = []
        self.out_losses: list[float] = []
        self.out_lrs: list[float] = []
        self.out_metrics: list[list[float]] = [[] for _ in self.metric_names]
        # Time and throughput; paused time does not count.
        self.active_seconds = 0.0
        self.clock = time.perf_counter()
        self.emit_clock = self.clock
        self.read_clock = self.clock  # when the buffered losses were last read
        self.samples_since_emit = 0
        self.samples_per_s = 0.0
        # Control state.
        self.paused = False
        self.stopping = False
        self.stop_reason = "completed"
        self.outcome = "finished"  # "finished" | "stopped" | "diverged"
        self.diverged_at: int | None = None  # first step whose loss was not finite
        self.refusal = ""  # why the command being applied did not happen ("" when it did)
        self.saved_clock = self.clock  # when the last checkpoint was written, for checkpoint_minutes
        self._epoch_started = 0.0  # active_seconds when the current epoch began
        self.best_test_accuracy: float | None = None
        self.best_test_loss: float | None = None  # what "best" means when the work is not classification
        self.last_epoch: EpochEnded | None = None
        self.changes = 0  # commands applied that change what a checkpoint holds (lr, trainable parameters)
        # (position, last.pt, save_id, the reason its CheckpointSaved gave) of the last save of last.pt
        self.saved: tuple[tuple[int, ...], Path, str, str] | None = None
        self.rng_to_restore: dict[str, Any] | None = None  # a checkpoint's RNG state, set just before training
        self.threads: cpu_threads.ThreadChoice | None = None  # set by train(); None leaves torch's count as it is
        self.restored: list[Any] = []  # what a resume changed (notices, lr), told right after RunStarted
        self.save_seq = 0  # saves so far: orders checkpoints of one step (see checkpoint.stored_checkpoints)
        self.last_saved: tuple[str, int] | None = None  # (file name, step) of the newest durable checkpoint
        self.write_error: tuple[OSError, Path] | None = None  # a log write that failed, handled at the boundary
        self.holding_for_space = False  # a failed save waits (paused) for space; nested saves wait with it
        self.stopped_for_space = False  # a failed write stopped the run: no final save is attempted
        self.unreadable: set[str] = set()  # image files named in a warning as skipped
        self._looked: dict[int, int] = {}  # id(batches) -> how many of its unreadable files were looked at
        # Several ranks (join()): their process group, and the meetings that keep them at one step.
        self.ranks: Any = None
        self.exchange: Any = None
        self.world = 1
        self.read_seconds = READ_SECONDS
        self._build_options()
        # Layer health, the spike guard and what a rollback leaves out (engine/health/).
        self.health = HealthMonitor(self.cfg, self._model(), setup.scaler)
        self.out_health: list[Any] = []  # LayerStats and their notices read but not yet emitted
        self.spiked = False  # diverged_at is a loss spike, which resuming as it is accepts
        self.rewound = False  # a rollback happened at this boundary: the epoch loop starts again from it
        self.rewind_log: Callable[[dict[str, Any]], None] | None = None  # cuts the run's logs back to a checkpoint

    def join(self, ranks: Any) -> None:
        """Train as one rank of several: DDP for the steps, a meeting every few steps for commands."""
        from .distributed.ddp import wrap
        from .distributed.exchange import Exchange

        self.ranks, self.world = ranks, ranks.world
        self.s.ddp = wrap(self.s.model, ranks, self.cfg.train.compile)  # starts every replica from rank 0's weights
        ranks.reseed(self.cfg.train.seed)  # dropout and the like draw differently on each rank
        self.exchange = Exchange(ranks, self.control, self.s.device)
        ranks.announce(device_name(self.s.device))

    def _build_options(self) -> None:
        """The training options of train.* and optim.warmup_steps (engine/train_options/)."""
        t, s = self.cfg.train, self.s
        self.accum = Accumulation(t.accumulate)
        # The open group's loss and named metrics so far, on the device.
        self.group_loss: torch.Tensor | None = None
        self.group_metrics: torch.Tensor | None = None
        self.warmup = Warmup(self.cfg.optim.warmup_steps)
        params = [p for group in s.optimizer.param_groups for p in group["params"]]
        self.clipper = GradClipper(params, t.clip_norm) if t.clip_norm > 0 else None
        self.norm_buf = torch.zeros(t.log_interval, device=s.device) if self.clipper else None
        self.out_norms: list[float] = []
        self.ema = WeightAverage(self._model(), t.ema_decay) if t.ema_decay > 0 else None
        self.early_stop = None
        if t.early_stop_metric != "none":  # a result this run never reports fails here, before anything is written
            check_metric(t.early_stop_metric, s.splits, s.describe().metrics, s.is_classification, self.ema is not None)
            self.early_stop = EarlyStopping(t.early_stop_metric, t.early_stop_patience, t.early_stop_min_delta,
                                            t.early_stop_mode)

    def _model(self) -> torch.nn.Module:
        """The model itself (the module torch.compile wraps)."""
        return getattr(self.s.model, "_orig_mod", self.s.model)

    # ------------------------------------------------------------------------- the loop

    def run(self) -> RunFinished:
        """Train every remaining epoch; returns (and emits) RunFinished."""
        cfg = self.cfg
        total, trainable = self.s.parameter_counts
        auto_threads = self.threads is not None and self.threads.why.startswith("auto")
        data = self.s.describe()
        self.emit(RunStarted(
            config=cfg.to_dict(), run_dir=str(self.run_dir) if self.run_dir else None,
            device=str(self.s.device), device_name=device_name(self.s.device, auto_threads),
            params_total=total, params_trainable=trainable,
            train_size=data.train_size, val_size=data.val_size, test_size=data.test_size,
            steps_per_epoch=self.accum.steps_per_epoch(self.s.batches_per_epoch) or 0,
            total_steps=self._total_steps(), epochs=cfg.train.epochs,
            class_names=data.class_names, input_shape=data.input_shape, resident=data.resident,
            start_step=self.step, start_epoch=self.epoch, epoch=self._epoch_number(),
            task_kind=data.kind, metrics=data.metrics, task=data.name,
            threads=torch.get_num_threads(), threads_why=self.threads.why if self.threads else "",
            world_size=self.world, global_batch=self.cfg.data.batch_size * self.cfg.train.accumulate * self.world,
            restart=env.restart if (env := from_environ()) is not None else 0,
        ))
        for event in self.restored:
            self.emit(event)
        if not data.name and (warning := random_backbone_warning(cfg.model, self.s.model)):
            self.emit(Notice("warning", warning))
        self._note_unreadable(self.s.unreadable_up_front(), up_front=True)
        for notice in self.health.notes:
            self.emit(notice)
        self._tick()
        if self.rng_to_restore is not None:
            ckpt.set_rng_state(self.rng_to_restore)  # last, so nothing set up since the restore consumed it
            self.rng_to_restore = None
        while self.epoch < cfg.train.epochs and not self.stopping:
            try:
                if self._train_epoch():
                    self._end_epoch()
            except Rewound:
                continue  # rolled back at a boundary: train on from the checkpoint's position
        self._read_losses()
        self._emit_points()
        self._tick()
        # The one last.pt of the run's end: a finished run's last epoch wrote it (this save then writes nothing);
        # a stop writes its own (its reason tells resume and `send stop` how the run ended).
        if self.run_dir is not None and self.diverged_at is None and not self.stopped_for_space:
            self.save("final" if self.outcome == "finished" else "stopped")
        replicas: tuple[str, ...] = ()
        if self.exchange is not None:
            self.exchange.finish()  # the last meeting's trade, which every rank started
            replicas = self._compare_replicas()
        last = self.last_epoch
        finished = RunFinished(
            step=self.step, epoch=self._epoch_number(), seconds=self.active_seconds, stopped=self.stopping,
            train_loss=last.train_loss if last else None,
            test_loss=last.test_loss if last else None,
            test_accuracy=last.test_accuracy if last else None,
            best_test_accuracy=self.best_test_accuracy,
            test_metrics=last.test_metrics if last else {},
            reason=self.stop_reason, state="diverged" if self.diverged_at is not None else self.outcome,
            replicas=replicas,
        )
        self.emit(finished)
        return finished

    def _compare_replicas(self) -> tuple[str, ...]:
        """Every rank's final weights as a sha256, on rank 0; an error notice when they are not all equal."""
        from .distributed.states import fingerprint

        prints = self.ranks.gather_bytes(fingerprint(self._model()).encode())
        if prints is None:
            return ()
        hashes = tuple(p.decode() for p in prints)
        if len(set(hashes)) > 1:
            odd = [rank for rank, h in enumerate(hashes) if h != hashes[0]]
            self.emit(Notice("error", f"the ranks' weights differ at the end (rank(s) {odd} differ from rank 0): "
                                      "something trained outside DDP's gradient sync"))
        return hashes

    def _epoch_number(self) -> int:
        """The 1-based epoch the last step belongs to (1 before the first), as the status, `runs` and logs say."""
        return self.epoch + 1 if self.batch_in_epoch > 0 or self.step == 0 else self.epoch

    def _total_steps(self) -> int:
        """Steps of the whole run; 0 when unknown (an iterable dataset without a length and no max_steps)."""
        per_epoch, max_steps = self.accum.steps_per_epoch(self.s.batches_per_epoch), self.cfg.train.max_steps
        steps = self.cfg.train.epochs * per_epoch if per_epoch is not None else 0
        return min(steps, max_steps) if max_steps and steps else max_steps or steps

    def _epoch_full(self) -> bool:
        """Whether every batch of the current epoch has been trained (never known early for an unsized dataset)."""
        per_epoch = self.s.batches_per_epoch
        return per_epoch is not None and self.batch_in_epoch >= per_epoch

    def _train_epoch(self) -> bool:
        """Train on from the current position; True when the epoch's batches ran out (it then ends)."""
        self.s.train_mode()
        if self.order is None:
            self.order = self.s.order(self.epoch)
        while True:
            route = self.s.route_changes
            for batch in self.s.epoch_batches(self.epoch, self.batch_in_epoch, self.order):
                if not self.accum.open:  # commands, pauses and checkpoints fall between optimizer steps only
                    self._boundary()
                    if self.stopping:
                        return False
                    if self.s.route_changes != route:
                        break  # a freeze switched between images and cached features: fetch this batch as the other
                if self.health.skips.skips(self.step + 1, self.epoch, self.batch_in_epoch, self.accum.open):
                    self.batch_in_epoch += 1  # left out by a rollback
                    continue
                self._step(batch)
                if self.accum.open:  # the group waits for more batches
                    continue
                if self._reached_max_steps():
                    return self._epoch_full()
                self._periodic_checkpoint()
            else:
                break  # the epoch's batches ran out
        if self.accum.open:  # the epoch's last group had fewer than train.accumulate batches
            self._optimizer_step()
            self._reached_max_steps()
        self._boundary()  # commands sent during the last step still count before the epoch ends
        return True

    def _reached_max_steps(self) -> bool:
        max_steps = self.cfg.train.max_steps
        if max_steps and self.step >= max_steps:
            self.stopping, self.stop_reason = True, f"reached max_steps={max_steps}"
            return True
        return False

    def _step(self, batch: Any) -> None:
        """Forward and backward for one batch, then the optimizer step once its group is complete."""
        s = self.s
        first = not self.accum.open
        if self.exchange is not None:
            self.exchange.beat.batch_ready()
        if first:
            s.optimizer.zero_grad(set_to_none=True)
        # Each batch of a group gets its own index (= the step without accumulation), so random augmentation
        # differs between them; with several ranks, between the ranks too.
        index = self.step * self.accum.every + self.accum.done
        if self.ranks is not None:
            index = index * self.world + self.ranks.rank
        watch = self.health.watching(self.step + 1) if first else nullcontext()  # hooks on sampled steps only
        with self._gradient_sync(), s.autocast(), watch:
            out = s.loss_and_metrics(batch, index)
        loss = out.loss
        n = out.samples  # a shape: host metadata, reading it does not sync
        weight = self.accum.weight(n or 1)
        weighted = loss if weight is None else loss * weight
        with self._gradient_sync():
            if s.scaler is not None:
                s.scaler.scale(weighted).backward()
            else:
                weighted.backward()
        # Everything below stays on the device: no .item(), no sync.
        detached = loss.detach()
        part = weighted.detach()
        self.group_loss = part if first else self.group_loss + part
        self.ep_loss += detached
        if out.correct is not None:
            self.ep_correct += out.correct
        if out.metrics:
            values = torch.stack(out.metrics)
            part = values if weight is None else values * weight
            self.group_metrics = part if first else self.group_metrics + part
            self.ep_metrics += values
        self.ep_seen += n
        self.ep_batches += 1
        self.samples_since_emit += n * self.world  # the ranks' batches are the same size: the run's throughput
        self.batch_in_epoch += 1
        self.accum.added(n or 1)
        if self.accum.full:
            self._optimizer_step()
        if self.exchange is not None:
            self.exchange.beat.step_done()

    def _gradient_sync(self) -> Any:
        """DDP's no_sync for every batch of an accumulated step but its last (the last all-reduces the sum)."""
        if self.exchange is None or self.accum.done + 1 >= self.accum.every or self._last_batch_of_epoch():
            return nullcontext()
        from .distributed.ddp import without_sync

        return without_sync(self.s.ddp)

    def _last_batch_of_epoch(self) -> bool:
        per_epoch = self.s.batches_per_epoch
        return per_epoch is not None and self.batch_in_epoch + 1 >= per_epoch

    def _optimizer_step(self) -> None:
        """One optimizer step on the group's gradients: average, clip, warm up, step, schedule, average weights."""
        s = self.s
        factor = self.accum.grad_factor()
        if factor is not None:  # the group's summed gradients become those of one batch of all its samples
            torch._foreach_mul_([p.grad for p in self._params_with_grad()], factor)
            self.group_loss = self.group_loss * factor
            if self.group_metrics is not None:
                self.group_metrics = self.group_metrics * factor
        sampled = self.health.before_step(self.step + 1)  # per-layer health, on the device
        if self.clipper is not None:
            if s.scaler is not None:
                s.scaler.unscale_(s.optimizer)  # clip the true gradients; scaler.step() then does not unscale again
            self.norm_buf[self.buf_n] = self.clipper.clip()  # type: ignore[index]
        with self.warmup.applied(s.optimizer, self.step + 1) as lr:  # lr: the rate this step uses (no sync)
            if s.scaler is not None:
                s.scaler.step(s.optimizer)
                s.scaler.update()
            else:
                s.optimizer.step()
        if sampled:
            self.health.after_step()
        if s.scheduler is not None and s.scheduler_per_step:
            s.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        self.loss_buf[self.buf_n] = self.group_loss
        if self.group_metrics is not None:
            self.metric_buf[:, self.buf_n] = self.group_metrics
        self.buf_lrs.append(lr)
        self.buf_n += 1
        self.step += 1
        self.accum.stepped()
        now = time.perf_counter()  # host time only: no sync
        if self.buf_n == len(self.loss_buf) or self._read_due(now):
            self._read_losses()
            if now - self.emit_clock >= EMIT_SECONDS:
                self._emit_points()

    def _read_due(self, now: float) -> bool:
        """Whether a second passed since the losses were last read (several ranks: rank 0's clock, agreed)."""
        if self.exchange is not None:
            return self.exchange.read_due
        return now - self.read_clock >= READ_SECONDS

    def _params_with_grad(self) -> list[torch.Tensor]:
        return [p for group in self.s.optimizer.param_groups for p in group["params"] if p.grad is not None]

    # ------------------------------------------------------------------------- metrics

    def _read_losses(self) -> None:
        """Copy the buffered per-step losses to the host: the loop's one sync point."""
        if self.buf_n == 0:
            return
        parts = [self.loss_buf[None, : self.buf_n]]
        if self.norm_buf is not None:
            parts.append(self.norm_buf[None, : self.buf_n])
        if self.metric_names:
            parts.append(self.metric_buf[:, : self.buf_n])
        values = torch.cat(parts) if len(parts) > 1 else parts[0]
        if self.ranks is not None:  # the mean over the ranks, reduced on the device before the one read
            values = self.ranks.sum_(values.clone()) / self.world
            self.exchange.read_due = False
        # The losses, gradient norms and named metrics in one copy: this is the CPU-GPU sync point.
        rows = values.tolist()
        losses = rows.pop(0)
        if self.norm_buf is not None:
            self.out_norms.extend(rows.pop(0))
        for out, values in zip(self.out_metrics, rows):
            out.extend(values)
        self.read_clock = time.perf_counter()
        first = self.step - self.buf_n + 1
        self.out_steps.extend(range(first, self.step + 1))
        self.out_losses.extend(losses)
        self.out_lrs.extend(self.buf_lrs)
        self.buf_n = 0
        self.buf_lrs = []
        self.out_health.extend(self.health.read())  # layer samples since the last read: their copy waits for nothing
        bad = next((i for i, v in enumerate(losses) if not math.isfinite(v)), None)
        if bad is not None:
            self._diverged(first + bad, losses[bad])
        elif (spike := self.health.check(first, losses)) is not None:
            self._diverged(*spike)

    def _diverged(self, step: int, value: float, median: float | None = None) -> None:
        """Alert, then stop or pause; from now on save() refuses, so the last good checkpoint stays.

        `median` marks a loss spike (train.spike_factor): resuming as it is accepts it, and saves go on.
        """
        if self.diverged_at is None:
            self.diverged_at, self.spiked = step, median is not None
        self._emit_points()  # the diverged step's point comes before the alert
        action = self.on_divergence
        kept = self._last_checkpoint()
        self.emit(Diverged(step, value, action, median, checkpoint=kept))
        verb = "pausing" if action == "pause" else "stopping"
        what = (f"loss became {value}" if median is None else
                f"loss spiked to {value:.4g}, {value / median:.0f}× its running median {median:.4g}")
        saved = f"the last good checkpoint is kept: {kept}" if kept else "no checkpoint was saved before it"
        undo = "; R rolls back to it" if action == "pause" and kept else ""
        self.emit(Notice("error", f"{what} at step {step}; {verb} ({saved}{undo})"))
        if action == "pause":
            self.control.send(Pause())  # held at the next step boundary, like a pause from the user
        else:
            reason = f"loss diverged ({value})" if median is None else f"loss spiked ({value:.4g}, median {median:.4g})"
            self._request_stop(f"{reason} at step {step}", outcome="diverged")

    def _emit_points(self) -> None:
        if not self.out_steps:
            return
        now = time.perf_counter()
        span = now - self.emit_clock
        if span > 0:
            self.samples_per_s = self.samples_since_emit / span
        self.emit_clock = now
        self.samples_since_emit = 0
        self._tick()
        self.emit(StepMetrics(
            steps=tuple(self.out_steps), losses=tuple(self.out_losses), lrs=tuple(self.out_lrs),
            epoch=self.epoch + 1, epoch_step=self.accum.steps_done(self.batch_in_epoch),
            samples_per_s=self.samples_per_s, elapsed=self.active_seconds,
            metrics={name: tuple(values) for name, values in zip(self.metric_names, self.out_metrics)},
            grad_norms=tuple(self.out_norms),
        ))
        self.out_steps, self.out_losses, self.out_lrs, self.out_norms = [], [], [], []
        self.out_metrics = [[] for _ in self.metric_names]
        health, self.out_health = self.out_health, []
        for event in health:  # after the points of their steps
            self.emit(event)
        if self.exchange is not None and (report := self.exchange.report(self.step)) is not None:
            self.emit(report)

    def forget_unread(self) -> None:
        """Drop every value read or waiting on the device and not yet emitted (a rollback returns before them)."""
        self.buf_n, self.buf_lrs, self.group_loss, self.group_metrics = 0, [], None, None
        self.out_steps, self.out_losses, self.out_lrs, self.out_norms = [], [], [], []
        self.out_metrics = [[] for _ in self.metric_names]
        self.out_health = []
        self.health.discard()
        self.diverged_at, self.spiked = None, False
        self._restart_throughput()

    def _tick(self) -> None:
        """Add the time since the last tick to the active (unpaused) time."""
        now = time.perf_counter()
        if not self.paused:
            self.active_seconds += now - self.clock
        self.clock = now

    def _restart_throughput(self) -> None:
        self.emit_clock = time.perf_counter()
        self.samples_since_emit = 0

    # ------------------------------------------------------------------------- commands

    def _note_unreadable(self, found: dict[str, str], up_front: bool = False) -> None:
        """Name each unreadable image file once (data.bad_samples = skip replaced it)."""
        new = [(path, why) for path, why in found.items() if path not in self.unreadable]
        if not new:
            return
        if up_front:
            self.emit(Notice("warning", f"{len(new)} unreadable image file(s) found up front; each is replaced by "
                                        f"the next readable image of its split (data.bad_samples = skip)"))
        for path, why in new:
            self.unreadable.add(path)
            count = len(self.unreadable)
            if count <= MAX_NAMED_UNREADABLE:
                self.emit(Notice("warning", f"unreadable image {count} skipped: {why}"))
            elif count % MAX_NAMED_UNREADABLE == 0:
                self.emit(Notice("warning", f"{count} unreadable image files skipped so far "
                                            f"(the first {MAX_NAMED_UNREADABLE} are named above)"))

    def _check_batches(self) -> None:
        """Report files the batches replaced since the last look (a length check per split, no I/O)."""
        for found in self.s.unreadable_sources():
            seen = self._looked.get(id(found), 0)
            if len(found) > seen:
                fresh = list(found.items())[seen:]  # a dict keeps insertion order
                self._looked[id(found)] = len(found)
                self._note_unreadable(dict(fresh))

    def _boundary(self) -> None:
        """Apply queued commands; while paused, wait here for Resume or Stop."""
        if self.write_error is not None and not self.stopping:
            exc, folder = self.write_error
            self.write_error = None
            self._storage_failed(exc, folder, "the run log could not be written")
        if self.exchange is not None:
            self.exchange.boundary(self)  # several ranks: each command at the same step on every rank
            return
        self._check_batches()
        if self.control.stop_requested.is_set():
            self._request_stop(self.control.stop_reason)
        for command in self.control.pending():
            self._obey(command)
        while self.paused and not self.stopping:
            command = self.control.wait(PAUSE_POLL_SECONDS)
            if self.control.stop_requested.is_set():
                self._request_stop(self.control.stop_reason)
            if command is not None:
                self._obey(command)
        if self.stopping and self.paused:
            self._tick()
            self.paused = False
        if self.rewound:
            self.rewound = False
            raise Rewound  # the batch in hand belongs to the abandoned stretch: start again from the checkpoint

    def _request_stop(self, reason: str, outcome: str = "stopped") -> None:
        if not self.stopping:
            self.stopping, self.stop_reason, self.outcome = True, reason, outcome

    def _pause(self) -> None:
        if not self.paused:
            self._read_losses()
            self._emit_points()
            self._tick()
            self.paused = True
            self.emit(Paused(self.step))

    def _obey(self, command: Command) -> None:
        """Apply one command; one sent with a ticket is answered by CommandApplied, with the refusal if any."""
        self.refusal = ""
        self._apply(command)
        if command.ticket:
            self.emit(CommandApplied(command.ticket, self.step, self.refusal))

    def _refuse(self, text: str, level: str = "error") -> None:
        """Tell the user a command (or a save) did not happen; the text is also the command's outcome."""
        self.refusal = text
        self.emit(Notice(level, text))

    def _apply(self, command: Command) -> None:
        if isinstance(command, Pause):
            self._pause()
        elif isinstance(command, Resume):
            if self.paused:
                self.write_error = None  # failures while paused are retried now; a new one pauses again
                if self.spiked:  # going on after a spike accepts it: checkpoints are written again
                    self.diverged_at, self.spiked = None, False
                self._tick()
                self.paused = False
                self._restart_throughput()
                self.emit(Resumed(self.step))
        elif isinstance(command, Stop):
            self._request_stop(self.control.stop_reason)
        elif isinstance(command, SaveCheckpoint):
            self.save(command.reason, hold=False)  # on a full disk the command is answered at once, refused
        elif isinstance(command, EvaluateNow):
            split = next((name for name in ("test", "val") if name in self.s.splits), None)
            if split is None:
                self._refuse("nothing to evaluate: the task has no test or validation set", "warning")
                return
            self._read_losses()
            self._emit_points()
            self._evaluate_split(split, mid_epoch=True)
            self._restart_throughput()
        elif isinstance(command, (SetLearningRate, ScaleLearningRate)):
            before = current_lr(self.s.optimizer)
            scaled = isinstance(command, ScaleLearningRate)
            target = before * command.factor if scaled else command.lr
            try:
                lr = set_lr(self.s.optimizer, self.s.scheduler, target)
            except ValueError as exc:
                how = f" ({before:g} scaled by {command.factor:g})" if scaled else ""
                self._refuse(f"learning rate not changed{how}: {exc}")
                return
            self.changes += 1
            self.emit(LrChanged(self.step, lr))
            if self.warmup.active(self.step + 1):
                self.emit(Notice("info", f"warm-up: the learning rate ramps up to {lr:.4g} by step "
                                         f"{self.warmup.steps:,}"))
        elif isinstance(command, Rollback):
            roll_back(self, command)
        elif isinstance(command, FindLr):
            sweep_in_run(self, command)
        elif isinstance(command, SetTrainable):
            # The optimizer holds every parameter; zero_grad(set_to_none=True) leaves frozen ones without a
            # gradient, so step() skips them.
            try:
                total, trainable = set_trainable(self.s.model, command.module, command.trainable)
            except ModelError as exc:
                self._refuse(f"trainable parameters not changed: {exc}")
                return
            # Modes and speed paths follow: a thawed backbone trains through autograd, a frozen one may not.
            self.s.trainable_changed()
            if self.ranks is not None:  # DDP tracks the parameters that train: a new wrapper, on every rank here
                from .distributed.ddp import wrap

                self.s.ddp = wrap(self.s.model, self.ranks, self.cfg.train.compile)
            # Recorded in the run's configuration, so checkpoints and resumed runs keep the change.
            self.cfg.model.freeze.append(freeze_edit(command.module, command.trainable))
            self.changes += 1
            self.emit(TrainableChanged(self.step, command.module, command.trainable, trainable, total))
            if trainable == 0:  # a backward pass with nothing to train would fail: hold until something thaws
                self.emit(Notice("warning", "no parameter is trainable; paused until a module is unfrozen"))
                self._apply(Pause())

    # ------------------------------------------------------------------------- evaluation and epochs

    def _evaluate_split(self, name: str, mid_epoch: bool = False, label: str = "") -> EvalResult:
        """Evaluate split `name` and report it as `label` (ema_test for the averaged weights), or as itself."""
        result = self.s.evaluate_split(name)
        self._check_batches()
        # The epoch of the last step: at the boundary right after an epoch ended, that epoch, not the next.
        self.emit(Evaluated(split=label or name, step=self.step, epoch=self._epoch_number(), loss=result.loss,
                            accuracy=result.accuracy, samples=result.samples, confusion=result.confusion,
                            wrong=result.wrong, mid_epoch=mid_epoch, metrics=result.metrics))
        return result

    def _evaluate_average(self) -> dict[str, EvalResult]:
        """Evaluate the weight average on every split, reported as ema_val and ema_test."""
        # A frozen backbone's cached features come from the raw weights. They hold for the average where it
        # equals them (a backbone frozen from the start); one that trained for a while runs whole instead.
        cached = getattr(self.s, "cache_eval", False)
        whole = cached and not self.ema.equal_where_fixed()  # type: ignore[union-attr]
        with self.ema.swapped_in():  # type: ignore[union-attr]
            if whole:
                self.s.cache_eval = False  # type: ignore[attr-defined]
            try:
                return {split: self._evaluate_split(split, label=f"ema_{split}") for split in self.s.splits}
            finally:
                if whole:
                    self.s.cache_eval = True  # type: ignore[attr-defined]

    def _improved(self, result: EvalResult) -> bool:
        """Whether `result` is the best so far: higher accuracy for classification, else lower loss."""
        if result.accuracy is not None:
            if self.best_test_accuracy is None or result.accuracy > self.best_test_accuracy:
                self.best_test_accuracy = result.accuracy
                return True
            return False
        if self.best_test_loss is None or result.loss < self.best_test_loss:
            self.best_test_loss = result.loss
            return True
        return False

    def _end_epoch(self) -> None:
        self._read_losses()
        self._emit_points()
        if self.outcome == "diverged":
            return  # nothing to evaluate or save: the run stops here
        loss, correct, seen, batches, metrics = self._epoch_sums()
        train_loss = loss / max(1, batches)
        train_acc = correct / max(1, seen) if self.s.is_classification else None
        train_metrics = [m / max(1, batches) for m in metrics]
        results = {split: self._evaluate_split(split) for split in self.s.splits}
        val, test = results.get("val"), results.get("test")
        averaged = self._evaluate_average() if self.ema is not None else {}
        ema_val, ema_test = averaged.get("val"), averaged.get("test")
        self._tick()
        # best.pt follows the test set, or the validation set when there is no test set; with train.ema_decay
        # the averaged weights are the ones the run delivers, so their results decide.
        monitored = (ema_test or ema_val) if self.ema is not None else (test or val)
        improved = monitored is not None and self._improved(monitored)
        self.last_epoch = EpochEnded(
            epoch=self.epoch + 1, step=self.step, train_loss=train_loss, train_accuracy=train_acc,
            test_loss=test.loss if test else None, test_accuracy=test.accuracy if test else None,
            val_loss=val.loss if val else None, val_accuracy=val.accuracy if val else None,
            seconds=self.active_seconds - self._epoch_started, lr=current_lr(self.s.optimizer),
            train_metrics=dict(zip(self.metric_names, train_metrics)),
            test_metrics=test.metrics if test else {}, val_metrics=val.metrics if val else {},
            ema_test_loss=ema_test.loss if ema_test else None,
            ema_test_accuracy=ema_test.accuracy if ema_test else None,
            ema_val_loss=ema_val.loss if ema_val else None, ema_val_accuracy=ema_val.accuracy if ema_val else None,
        )
        self.emit(self.last_epoch)
        self._check_early_stop(self.last_epoch, averaged)
        if self.s.scheduler is not None and not self.s.scheduler_per_step:
            self.s.scheduler.step()
        self.epoch += 1
        self.batch_in_epoch = 0
        self.order = None
        self._reset_epoch_totals()
        if self.run_dir is not None:
            self.save("epoch", best=improved)

    def _epoch_sums(self) -> tuple[float, int, int, int, list[float]]:
        """The epoch's summed batch losses, right predictions, samples, batches and named metrics, over every rank."""
        loss, correct = self.ep_loss.detach().double(), self.ep_correct.double()
        counts = torch.tensor([self.ep_seen, self.ep_batches], dtype=torch.float64, device=loss.device)
        sums = torch.cat([loss[None], correct[None], counts, self.ep_metrics.detach().double()])
        if self.ranks is not None:
            self.ranks.sum_(sums)
        values = sums.tolist()  # one read at the epoch's end
        return float(values[0]), int(values[1]), int(values[2]), int(values[3]), values[4:]

    def epoch_totals(self) -> dict[str, Any]:
        """This rank's epoch accumulators as a checkpoint holds them."""
        return {"loss": self.ep_loss.detach().cpu(), "correct": self.ep_correct.detach().cpu(),
                "metrics": self.ep_metrics.detach().cpu(), "seen": self.ep_seen, "batches": self.ep_batches,
                "seconds": self.active_seconds - self._epoch_started}

    def _check_early_stop(self, ended: EpochEnded, averaged: dict[str, EvalResult]) -> None:
        """Stop after this epoch when train.early_stop_metric has not improved for its patience."""
        if self.early_stop is None:
            return
        results = epoch_results(ended, averaged)
        reason = self.early_stop.update(ended.epoch, results)
        if reason is not None and ended.epoch < self.cfg.train.epochs:  # the last epoch ends the run anyway
            self.emit(Notice("info", f"{reason}; stopping after epoch {ended.epoch}"))
            self._request_stop(reason, outcome="finished")

    def _reset_epoch_totals(self) -> None:
        self.ep_loss.zero_()
        self.ep_correct.zero_()
        self.ep_metrics.zero_()
        self.ep_seen = 0
        self.ep_batches = 0
        self._epoch_started = self.active_seconds

    # ------------------------------------------------------------------------- checkpoints

    def state(self, reason: str) -> dict[str, Any]:
        """Everything needed to continue this run exactly from the current step boundary."""
        s = self.s
        model = getattr(s.model, "_orig_mod", s.model)
        return {
            "format": ckpt.FORMAT,
            "reason": reason,
            "save_id": uuid.uuid4().hex,  # marks this save's row in the run log (see logrows.rows_up_to_checkpoint)
            "config": self.cfg.to_dict(),
            "model": model.state_dict(),
            "optimizer": s.optimizer.state_dict(),
            "scheduler": s.scheduler.state_dict() if s.scheduler is not None else None,
            "scaler": s.scaler.state_dict() if s.scaler is not None else None,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "order": self.order if self.order is not None else s.order(self.epoch),
            "data": s.data_state(),  # an iterable dataset's position
            "epoch_totals": self.epoch_totals(),
            "best_test_accuracy": self.best_test_accuracy,
            "best_test_loss": self.best_test_loss,
            "active_seconds": self.active_seconds,
            "rng": ckpt.rng_state(),
            "save_seq": self.save_seq,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "early_stop": self.early_stop.state_dict() if self.early_stop is not None else None,
            "world_size": self.world,  # with several ranks, "ranks" holds each one's RNG state and epoch totals
            "health": self.health.state_dict(),
        }

    def _periodic_checkpoint(self) -> None:
        """Save last.pt every output.checkpoint_steps steps or checkpoint_minutes minutes, mid-epoch."""
        out = self.cfg.output
        if self.run_dir is None or self.stopping or self._epoch_full():
            return  # the end of the run or of the epoch saves anyway
        due_steps = out.checkpoint_steps and self.step % out.checkpoint_steps == 0
        if self.exchange is not None:
            due_time, self.exchange.save_due = self.exchange.save_due, False  # rank 0's clock, agreed at a meeting
        else:
            due_time = self.checkpoint_time_due(time.perf_counter())
        if due_steps or due_time:
            self.save("periodic")

    def checkpoint_time_due(self, now: float) -> bool:
        """Whether output.checkpoint_minutes passed since the last checkpoint."""
        minutes = self.cfg.output.checkpoint_minutes
        return bool(minutes) and now - self.saved_clock >= minutes * 60

    def save(self, reason: str, best: bool = False, hold: bool = True) -> Path | None:
        """Write the checkpoint(s) `reason` calls for; emit CheckpointSaved for each file once it is durable.

        "epoch" writes epoch-NNNN.pt (every output.checkpoint_every epochs, keeping output.keep), last.pt and,
        with `best`, best.pt; "best" writes best.pt, anything else last.pt. The state is serialized once and
        the other names link to that file. The epoch that ends a finished run tells its last.pt as "final", and
        the "final" save after it writes and tells nothing; the epoch that ends a stopped run leaves last.pt to
        the "stopped" save. Nothing is written after divergence.
        A write that fails stops the run, or pauses it; with `hold`, the save waits there and is tried
        again when the user resumes.
        """
        if self.run_dir is None:
            self._refuse("checkpoint not saved: output.runs_dir is empty, so this run has no folder", "warning")
            return None
        self._read_losses()  # may find a diverged loss: check before writing anything
        self._emit_points()  # every step up to here is logged before the checkpoint's own row
        if self.diverged_at is None and not self._weights_finite():
            self.diverged_at = self.step
        if self.diverged_at is not None:
            how = "spiked" if self.spiked else "diverged"
            kept = "the last good checkpoint is kept" if self._last_checkpoint() else "no checkpoint was saved before it"
            self._refuse(f"checkpoint not saved: the loss {how} at step {self.diverged_at}; {kept}", "warning")
            return None
        # Several ranks: each one's part, on rank 0. A collective, so every rank reaches it whatever rank 0
        # then decides to write (only rank 0 knows about its disk).
        entries = self._rank_entries()
        if self.ranks is not None and not self.ranks.leader:
            self.saved_clock = time.perf_counter()
            return None  # rank 0 writes
        if self.stopped_for_space:
            return None  # the run is stopping because the disk is full: nothing more is written
        position = (self.step, self.epoch, self.batch_in_epoch, self.changes)
        if reason == "final" and self.saved is not None and self.saved[0] == position:
            _, last, save_id, told = self.saved
            if told != "final":  # last.pt holds this state already; the log names it once as the run's end
                self.emit(CheckpointSaved(str(last), self.step, self._epoch_number(), reason, save_id=save_id))
            return last
        out, folder = self.cfg.output, self.run_dir / "checkpoints"
        names = {"best": ["best.pt"]}.get(reason, ["last.pt"])
        last_reason = reason  # what last.pt's CheckpointSaved says
        if reason == "epoch" and (self.stopping or self.epoch >= self.cfg.train.epochs):
            if self.outcome == "finished":
                last_reason = "final"  # the run ends here: this last.pt is its final one, told once
            else:
                names = []  # a stop writes its own last.pt, whose reason says how the run ended
        numbered = reason == "epoch" and out.checkpoint_every and self.epoch % out.checkpoint_every == 0
        if numbered:
            names.insert(0, f"epoch-{self.epoch:04d}.pt")
        if best and reason == "epoch":
            names.append("best.pt")
        if not names:
            return None
        while True:
            try:
                self._make_log_durable()
                self.save_seq += 1
                state = self.state(last_reason if "last.pt" in names else reason)
                if entries is not None:
                    state["ranks"] = entries
                folder.mkdir(exist_ok=True)
                paths = ckpt.save_once(state, [folder / name for name in names])
                break
            except OSError as exc:  # a full disk: the files that were there are untouched
                if isinstance(exc, _LogNotWritten):  # the log's own trouble, named as such
                    paused = self._storage_failed(exc.cause, exc.folder, "the run log could not be written")
                else:
                    paused = self._storage_failed(exc, folder, "checkpoint not saved")
                if not (paused and hold) or self.holding_for_space:
                    return None
                self._hold_for_space()
                if self.stopping:
                    return None  # run() tries once more on the way out
        if numbered:
            ckpt.prune_numbered(folder, out.keep)  # only now that the new one is on disk
        self.saved_clock = time.perf_counter()
        self.last_saved = (paths[-1].name, self.step)
        if "last.pt" in names:
            self.saved = (position, folder / "last.pt", state["save_id"], last_reason)
        for path in paths:
            kind = {"best.pt": "best", "last.pt": last_reason}.get(path.name, reason)
            self.emit(CheckpointSaved(str(path), self.step, self._epoch_number(), kind, save_id=state["save_id"]))
        return paths[-1]

    def _rank_entries(self) -> list[dict[str, Any]] | None:
        """Every rank's RNG state, epoch totals and data position, gathered on rank 0 (None elsewhere, or alone)."""
        if self.ranks is None:
            return None
        from .distributed.states import gather_entries, own_entry

        return gather_entries(self.ranks, own_entry(self))

    def _last_checkpoint(self) -> str:
        """The newest checkpoint in the run's folder ('' when there is none): every one there predates a
        divergence, since save() refuses from then on."""
        folder = self.run_dir / "checkpoints" if self.run_dir is not None else None
        found = sorted(folder.glob("*.pt"), key=lambda p: p.stat().st_mtime) if folder and folder.is_dir() else []
        return str(found[-1]) if found else ""

    def _make_log_durable(self) -> None:
        """Sync the run log before a checkpoint claims its steps; _LogNotWritten if it failed or fails now."""
        if self.write_error is not None:  # a row of the steps just emitted did not land
            exc, folder = self.write_error
            self.write_error = None
            raise _LogNotWritten(exc, folder)
        try:
            if self.before_save is not None:
                self.before_save()
        except OSError as exc:
            raise _LogNotWritten(exc, self.run_dir) from exc

    def log_failed(self, exc: OSError, folder: Path) -> None:
        """The run log could not be written (called by RunLog on this thread); handled at the next boundary."""
        if self.write_error is None:
            self.write_error = (exc, folder)

    def _storage_failed(self, exc: OSError, folder: Path, what: str) -> bool:
        """Say why a write failed and what is kept; pause (True: worth waiting for space) or stop (False)."""
        why = ckpt.describe_os_error(exc, folder)
        kept = (f"the last good checkpoint ({self.last_saved[0]}, step {self.last_saved[1]:,}) is kept"
                if self.last_saved else "no checkpoint of this session was saved yet")
        if self.ranks is not None:
            # Several ranks stop together: the stop travels to the others at the next meeting.
            self._refuse(f"{what}: {why}; {kept}. Stopping every rank")
            self.stopped_for_space = True
            self.control.request_checkpoint_and_stop(why)
            return False
        if self.on_divergence == "pause" and not self.stopping:
            self._refuse(f"{what}: {why}; {kept}. Paused: free some space, then resume")
            self._pause()
            return True
        self._refuse(f"{what}: {why}; {kept}. Stopping")
        if not self.stopping:
            self.stopped_for_space = True
            self._request_stop(why)
        return False

    def _hold_for_space(self) -> None:
        """Wait, paused, for Resume (then the save is tried again) or Stop; saves asked for meanwhile wait too."""
        self.holding_for_space = True
        try:
            self._boundary()
        finally:
            self.holding_for_space = False

    def _weights_finite(self) -> bool:
        """Whether every parameter is finite (one sync per checkpoint, never per step)."""
        params = [p.detach() for p in self.s.model.parameters()]
        return bool(torch.stack([torch.isfinite(p).all() for p in params]).all()) if params else True

    def restore(self, state: dict[str, Any]) -> None:
        """Continue from a checkpoint written by `state()`; refuses one this run cannot continue exactly."""
        s = self.s
        problem = ckpt.position_problem(state) or ckpt.check_rng_state(state["rng"])
        if problem:
            raise CheckpointError(f"the checkpoint's position is invalid: {problem}")
        train_size = s.describe().train_size
        notices = resuming.check_position(state, train_size, self.cfg.data.batch_size)
        resuming.check_optimizer(state, self.cfg)
        model = getattr(s.model, "_orig_mod", s.model)
        try:
            model.load_state_dict(state["model"])
            s.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
            raise CheckpointError(f"the checkpoint does not fit this model or optimizer "
                                  f"(were model or optim settings changed?): {first}") from None
        if s.scheduler is not None and state.get("scheduler") is not None:
            s.scheduler.load_state_dict(state["scheduler"])
        if s.scaler is not None and state.get("scaler") is not None:
            s.scaler.load_state_dict(state["scaler"])
        lr_before = current_lr(s.optimizer)
        steps_per_epoch = self.accum.steps_per_epoch(s.batches_per_epoch) or 0  # optimizer steps, as schedules count
        changes = resuming.apply_optimizer_flags(state, self.cfg, s.optimizer, s.scheduler, steps_per_epoch)
        self.step = int(state["step"])
        self.epoch = int(state["epoch"])
        self.batch_in_epoch = int(state["batch_in_epoch"])
        # At an epoch boundary over a resized split, the next epoch's order is drawn for the new size.
        order = state["order"]
        self.order = order if order.numel() == train_size else None
        self.s.load_data_state(state.get("data"))
        totals = state["epoch_totals"]
        self._load_totals(totals)
        self.best_test_accuracy = state.get("best_test_accuracy")
        self.best_test_loss = state.get("best_test_loss")
        self.active_seconds = float(state.get("active_seconds", 0.0))
        self._epoch_started = self.active_seconds - float(totals.get("seconds", 0.0))
        self.rng_to_restore = state["rng"]
        saved_seq = state.get("save_seq")
        self.save_seq = saved_seq if isinstance(saved_seq, int) and saved_seq > 0 else 0
        self.restored += [Notice("info", text) for text in notices]
        self.restored += [Notice("info", f"resume: {change}") for change in changes]
        if current_lr(s.optimizer) != lr_before:
            self.restored.append(LrChanged(self.step, current_lr(s.optimizer)))
        self._restore_rank(state)
        self._restore_options(state)
        self.health.load_state_dict(state.get("health"))

    def _load_totals(self, totals: dict[str, Any]) -> None:
        self.ep_loss.copy_(totals["loss"])
        self.ep_correct.copy_(totals["correct"])
        metrics = totals.get("metrics")
        if metrics is not None and metrics.shape == self.ep_metrics.shape:
            self.ep_metrics.copy_(metrics)
        self.ep_seen, self.ep_batches = int(totals["seen"]), int(totals["batches"])

    def _restore_rank(self, state: dict[str, Any]) -> None:
        """This rank's own RNG state and epoch totals; another world size continues at the same share of the epoch."""
        saved = int(state.get("world_size", 1) or 1)
        if saved == 1 and self.world == 1:
            return
        from .distributed.states import entry_for, rescaled_position

        rank = self.ranks.rank if self.ranks is not None else 0
        entry, notice = entry_for(state, rank, self.world)
        if notice:
            self.restored.append(Notice("warning", notice))
            self.batch_in_epoch = rescaled_position(self.batch_in_epoch, saved, self.world, self.s.batches_per_epoch)
        if entry is not None:
            self.rng_to_restore = entry["rng"]
            self._load_totals(entry["epoch_totals"])
        elif rank:  # a one-process checkpoint: its epoch totals are rank 0's, the others start theirs at zero
            self._reset_epoch_totals()

    def _restore_options(self, state: dict[str, Any]) -> None:
        """The weight average and the early-stopping counter of a checkpoint (when this run uses them)."""
        if self.ema is not None:
            if state.get("ema") is not None:
                try:
                    self.ema.load_state_dict(state["ema"])
                except (KeyError, RuntimeError) as exc:
                    raise CheckpointError(f"the checkpoint's averaged weights do not fit this model: {exc}") from None
            else:  # the average was switched on for the resumed run
                self.ema = WeightAverage(self._model(), self.ema.decay)
                self.restored.append(Notice("info", "the checkpoint holds no weight average: it starts from the "
                                                   "resumed weights"))
        if self.early_stop is not None and state.get("early_stop") is not None:
            self.early_stop.load_state_dict(state["early_stop"])

    # ------------------------------------------------------------------------- output

    def emit(self, event: Any) -> None:
        """Hand an event to the sink."""
        self.sink.emit(event)
