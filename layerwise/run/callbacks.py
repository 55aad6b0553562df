"""What happens around the training loop, as callbacks (like Keras's `callbacks.Callback` and Lightning's
`Callback`): the Trainer calls each hook of every callback in order, and a new concern (a sweep reporting
to its engine, a log line) is one more callback, not one more argument through the loop.

The default ones, in the order they run at an epoch's end:
    LearningRateSchedule  the schedule's end-of-epoch step (plateau watches the validation metric)
    EarlyStopping         stops the run when the validation metric stops improving
    Checkpoints           best.npz (when an epoch improved) and last.npz, with metrics.csv
                          (MetricsCSV), at most every SAVE_SECONDS and at the run's end or stop
    EpochLine             the printed line per epoch
and, during an epoch, ProgressLog (only when stderr is not a terminal, where no progress bar shows): a
progress line with ETAs at most every 30 seconds.
They keep their state in the run state (trainer.state), so a checkpoint carries it and a resumed run
goes on bit for bit.
"""

import csv
import io
import sys
import time

from ..optim.schedules import EarlyStopping as EarlyStoppingRule
from ..util.fileio import atomic_write_text
from .report import epoch_line


class Callback:
    """The hooks; each does nothing unless a subclass overrides it.

    on_train_start(trainer)        the run is about to take its first (or, resumed, its next) step
    on_step_end(trainer)           a training step finished (trainer.state.step counts the epoch's steps);
                                   called only for callbacks that override it, so keep it cheap
    on_epoch_end(trainer, row)     an epoch finished and was validated: `row` is its metrics.csv row,
                                   trainer.state has moved on to the next epoch, trainer.improved says
                                   whether it is the best epoch so far
    on_train_end(trainer, result)  training and the test evaluation are done: result is fit()'s dict
    A callback stops the run by setting trainer.stop_message (printed after the epoch's line).
    """

    def on_train_start(self, trainer):
        pass

    def on_step_end(self, trainer):
        pass

    def on_epoch_end(self, trainer, row):
        pass

    def on_train_end(self, trainer, result):
        pass


class LearningRateSchedule(Callback):
    """The schedule's end-of-epoch step; plateau starts watching only after train.min_steps steps."""

    def on_epoch_end(self, trainer, row):
        if trainer.cfg.optimizer.schedule != "plateau" or trainer.state.epoch * trainer.steps_per_epoch >= trainer.cfg.train.min_steps:
            trainer.schedule.end_epoch(trainer.monitor_value(row))
        trainer.state.schedule = trainer.schedule.state_dict()


class EarlyStopping(Callback):
    """train.early_stopping: stop after `patience` epochs without an improvement of more than `min_delta`."""

    def __init__(self, cfg, higher_is_better, state, min_steps=0):
        self.patience, self.min_delta, self.min_steps = cfg.patience, cfg.min_delta, min_steps
        self.rule = EarlyStoppingRule(cfg.patience, cfg.min_delta, higher_is_better)
        if state.early_stopping is not None:
            self.rule.load_state_dict(state.early_stopping)  # a CheckpointError when malformed

    def on_epoch_end(self, trainer, row):
        state = trainer.state
        stop = self.rule.update(trainer.monitor_value(row))
        state.early_stopping = self.rule.state_dict()
        # train.min_steps: a small table gets that many updates before patience may end it
        if stop and state.epoch * trainer.steps_per_epoch >= self.min_steps:
            state.stopped = {"epoch": state.epoch, "best_epoch": state.best["epoch"]}
            trainer.stop_message = (
                f"early stopping: val {trainer.monitor} has not improved by more than {self.min_delta:g} for "
                f"{self.patience} epoch{'s' if self.patience != 1 else ''}; stopped after epoch {state.epoch} of "
                f"{trainer.cfg.train.epochs}, best epoch {state.best['epoch']}"
            )


SAVE_SECONDS = 10.0  # last.npz, best.npz and metrics.csv are written at most this often during a run


def seconds():
    return time.monotonic()


class Checkpoints(Callback):
    """best.npz (the best epoch's weights, copied in memory when it ends) and last.npz, written together
    with metrics.csv by trainer.flush(): after an epoch once `interval` seconds have passed since the
    last write, and always when the run ends, is stopped (Ctrl-C, SIGTERM) or diverges. On a small table
    an epoch takes milliseconds, and two atomic writes per epoch took most of the run. A crash (kill -9)
    loses at most the last `interval` seconds: --resume trains them again, to the same bits."""

    def __init__(self, interval=None, clock=None):
        self.interval = SAVE_SECONDS if interval is None else interval
        self.clock = clock or seconds
        self.best = None  # (arrays, meta) of an improved epoch not yet in best.npz
        self.end = None  # (arrays, meta) of the latest epoch's end, when last.npz holds an earlier state
        self.saved = None  # (epoch, step) of the state last.npz holds, once this process wrote it
        self.last_write = self.clock()

    def on_train_start(self, trainer):
        self.last_write = self.clock()

    def on_epoch_end(self, trainer, row):
        state = trainer.state
        if state.stopped or state.epoch >= trainer.cfg.train.epochs or self.clock() - self.last_write >= self.interval:
            if trainer.improved:
                self.best = None
                trainer.save("best.npz")
            trainer.flush()
            return
        self.end = trainer.snapshot()  # a copy in memory: what a divergence in the next epoch leaves
        if trainer.improved:
            self.best = self.end

    def write_held(self, trainer):
        """Write what is held in memory as it was: best.npz, and last.npz of the latest epoch's end (after
        a divergence, whose weights are not to be saved)."""
        if self.best is not None:
            trainer.write_snapshot("best.npz", self.best)
            self.best = None
        if self.end is not None:
            trainer.write_snapshot("last.npz", self.end)
            self.end = None

    def flush(self, trainer):
        """best.npz if an epoch improved since the last write (first: last.npz never names a best epoch that
        best.npz does not hold), then last.npz of the state now."""
        state = trainer.state
        if self.best is None and self.saved == (state.epoch, state.step):
            return
        if self.best is not None:
            trainer.write_snapshot("best.npz", self.best)
        trainer.save("last.npz")
        self.best = self.end = None
        self.saved, self.last_write = (state.epoch, state.step), self.clock()


class MetricsCSV(Callback):
    """metrics.csv, one row per epoch: written when the checkpoints are (Checkpoints, trainer.flush)."""

    def flush(self, trainer):
        history = trainer.state.history
        if not history:
            return
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(trainer.run_dir / "metrics.csv", out.getvalue())


class EpochLine(Callback):
    def on_epoch_end(self, trainer, row):
        trainer.echo(epoch_line(row, trainer.cfg.train.epochs) + ("  (best)" if trainer.improved else ""))


class ProgressLog(Callback):
    """A line at most every `interval` seconds while an epoch trains, for logs (a 10-minute epoch is not
    silent): "epoch 3/12  step 311/469 (66%)  loss 0.1234  ETA epoch 0:42, run 9:10". The ETAs come from
    the steps per second since this process started training (validation time included, for the run)."""

    def __init__(self, interval=30.0, clock=time.monotonic):
        self.interval, self.clock = interval, clock

    def on_train_start(self, trainer):
        self.started = self.last = self.clock()
        state = trainer.state
        self.first = state.epoch * trainer.steps_per_epoch + state.step  # global steps already done

    def on_step_end(self, trainer):
        now = self.clock()
        if now - self.last < self.interval:
            return
        self.last = now
        state, per_epoch, epochs = trainer.state, trainer.steps_per_epoch, trainer.cfg.train.epochs
        done = state.epoch * per_epoch + state.step - self.first
        rate = (now - self.started) / max(done, 1)  # seconds per step
        left_epoch = per_epoch - state.step
        left_run = left_epoch + (epochs - state.epoch - 1) * per_epoch
        trainer.echo(f"epoch {state.epoch + 1}/{epochs}  step {state.step}/{per_epoch} "
                     f"({100 * state.step / per_epoch:.0f}%)  loss {state.loss_sum / max(state.seen, 1):.4f}  "
                     f"ETA epoch {clock_text(left_epoch * rate)}, run {clock_text(left_run * rate)}")


def clock_text(seconds):
    """1:05, 12:00, 2:03:04."""
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def default_callbacks(cfg, higher_is_better, state):
    """The callbacks every run has, in order (EarlyStopping only when the config asks for it; ProgressLog
    when stderr is not a terminal, so tqdm's bar is off)."""
    early = ([EarlyStopping(cfg.train.early_stopping, higher_is_better, state, cfg.train.min_steps)]
             if cfg.train.early_stopping else [])
    progress = [] if _terminal(sys.stderr) else [ProgressLog()]
    return [LearningRateSchedule(), *early, Checkpoints(), MetricsCSV(), EpochLine(), *progress]
