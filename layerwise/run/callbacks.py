"""What happens around the training loop, as callbacks (like Keras's `callbacks.Callback` and Lightning's
`Callback`): the Trainer calls each hook of every callback in order, and a new concern (a sweep reporting
to its engine, a log line) is one more callback, not one more argument through the loop.

The default ones, in the order they run at an epoch's end:
    LearningRateSchedule  the schedule's end-of-epoch step (plateau watches the validation metric)
    EarlyStopping         stops the run when the validation metric stops improving
    Checkpoints           best.npz when the epoch improved, last.npz always
    MetricsCSV            metrics.csv, one row per epoch
    EpochLine             the printed line per epoch
They keep their state in the run state (trainer.state), so a checkpoint carries it and a resumed run
goes on bit for bit.
"""

import csv
import io

from ..optim.schedules import EarlyStopping as EarlyStoppingRule
from ..util.fileio import atomic_write_text
from .report import epoch_line


class Callback:
    """The hooks; each does nothing unless a subclass overrides it.

    on_train_start(trainer)        the run is about to take its first (or, resumed, its next) step
    on_epoch_end(trainer, row)     an epoch finished and was validated: `row` is its metrics.csv row,
                                   trainer.state has moved on to the next epoch, trainer.improved says
                                   whether it is the best epoch so far
    on_train_end(trainer, result)  training and the test evaluation are done: result is fit()'s dict
    A callback stops the run by setting trainer.stop_message (printed after the epoch's line).
    """

    def on_train_start(self, trainer):
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


class Checkpoints(Callback):
    def on_epoch_end(self, trainer, row):
        if trainer.improved:
            trainer.save("best.npz")
        trainer.save("last.npz")


class MetricsCSV(Callback):
    def on_epoch_end(self, trainer, row):
        history = trainer.state.history
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(history[0]))
        writer.writeheader()
        writer.writerows(history)
        atomic_write_text(trainer.run_dir / "metrics.csv", out.getvalue())


class EpochLine(Callback):
    def on_epoch_end(self, trainer, row):
        trainer.echo(epoch_line(row, trainer.cfg.train.epochs) + ("  (best)" if trainer.improved else ""))


def default_callbacks(cfg, higher_is_better, state):
    """The callbacks every run has, in order (EarlyStopping only when the config asks for it)."""
    early = ([EarlyStopping(cfg.train.early_stopping, higher_is_better, state, cfg.train.min_steps)]
             if cfg.train.early_stopping else [])
    return [LearningRateSchedule(), *early, Checkpoints(), MetricsCSV(), EpochLine()]
