"""The training loop: a Trainer owns one run (config, directory, data, model, loss, optimizer, state) and
trains it epoch by epoch; what happens at an epoch's end is its callbacks (callbacks.py).

It prints through `echo` and raises LayerwiseError subclasses for user mistakes.
"""

import math
import time

import numpy as np
from tqdm import tqdm

from ..data.batches import Batches
from ..errors import (
    CheckpointError,
    StorageError,
    TrainingDiverged,
    TrainingInterrupted,
)
from ..optim.schedules import build_schedule
from ..util.fileio import write_json
from . import metrics
from ..util.npz import save_checkpoint
from .callbacks import Callback, Checkpoints, default_callbacks
from .checkpoint import expected_arrays, load_run_arrays, run_meta, save_run_checkpoint
from .evaluate import evaluate
from .refit import refit, scale_decay
from .report import NOT_SCALARS, format_metrics
from .signals import StopOnSignals, cause_and_code


class Trainer:
    """One run, ready to train from where its `state` says (a fresh RunState, or a checkpoint's).

    `callbacks` are called after the default ones (callbacks.default_callbacks). Building a Trainer
    restores the schedule's and early stopping's state from `state`, so a malformed checkpoint is a
    CheckpointError here, before anything is written.
    """

    def __init__(self, cfg, run_dir, data, model, loss_fn, optimizer, state, echo=print, callbacks=()):
        self.cfg, self.run_dir, self.data = cfg, run_dir, data
        self.model, self.loss_fn, self.optimizer, self.state = model, loss_fn, optimizer, state
        self.echo = echo
        self.monitor, self.higher_is_better = metrics.monitor_for(cfg.train, data.task, cfg.source)
        self.steps_per_epoch = -(-len(data.train) // cfg.train.batch_size)  # len(Batches)
        scale_decay(optimizer, cfg.optimizer.decay_rows, len(data.train))
        self.schedule = build_schedule(cfg.optimizer, cfg.train.epochs, self.steps_per_epoch, self.higher_is_better)
        try:
            if state.schedule is not None:
                self.schedule.load_state_dict(state.schedule)
            self.callbacks = default_callbacks(cfg, self.higher_is_better, state) + list(callbacks)
        except CheckpointError as e:
            raise CheckpointError(f"{run_dir / 'last.npz'}: {e}") from None
        from ..data.augment import build_augment

        self.augment = build_augment(cfg.data, data, cfg.seed)  # None without data.augment_shift/_flip
        # on_step_end runs at every step: only for the callbacks that use it
        self.step_callbacks = [c for c in self.callbacks if type(c).on_step_end is not Callback.on_step_end]
        self.improved = False  # whether the epoch that just ended is the best so far
        self.stop_message = None  # set by a callback that ends the run

    def fit(self):
        """Train to cfg.train.epochs (or until a callback stops the run), then score best.npz on the test
        split into test.json. Returns {"run_dir", "history", "test", "best"}."""
        started = time.perf_counter()
        for callback in self.callbacks:
            callback.on_train_start(self)
        self.refitted = None
        try:
            self._train()
            if self.cfg.train.refit and len(self.data.val):
                self.refitted = refit(self, train_step)
        except StorageError as e:  # disk full, or the directory became read-only, mid-run
            raise StorageError(
                f"{e}; {self.run_dir / 'last.npz'} still holds the last saved state: free some space (or make the "
                f"directory writable), then resume with: layerwise train --resume {self.run_dir}", e.reason
            ) from None
        except KeyboardInterrupt as e:  # a second signal in the loop: stopped at once, not after the step
            cause, code = cause_and_code(e)
            raise TrainingInterrupted(
                f"{cause} (a second time: at once); {self.run_dir / 'last.npz'} holds the state after epoch "
                f"{self.saved_epoch()}. Resume with: layerwise train --resume {self.run_dir}", code
            ) from None
        try:
            result = self._test()
        except KeyboardInterrupt as e:  # the signal handler of the whole command (signals.answer_signals)
            cause, code = cause_and_code(e)
            raise TrainingInterrupted(
                f"{cause} during the test evaluation; all {self.state.epoch} epochs are saved in {self.run_dir}. "
                f"Score best.npz and write test.json with: layerwise train --resume {self.run_dir}", code
            ) from None
        refitted = "" if self.refitted is None else (
            f", refit on {self.refitted['rows']:,} training + validation rows in {self.refitted['seconds']:.1f}s")
        self.echo(
            f"done in {time.perf_counter() - started:.1f}s. best epoch {result['best']['epoch']} "
            f"(val {format_metrics({self.monitor: result['best']['value']})}){refitted}: test {format_metrics(result['test'])}"
        )
        self.echo(f"saved best.npz, last.npz, metrics.csv, test.json and config.yaml in {self.run_dir}")
        for callback in self.callbacks:
            callback.on_train_end(self, result)
        return result

    def save(self, name):
        """Checkpoint the model, optimizer and run state as `name` in the run directory."""
        save_run_checkpoint(self.run_dir / name, self.cfg, self.model, self.optimizer, self.state.to_meta(), self.data)

    def snapshot(self):
        """(arrays, meta) of the checkpoint save() would write now, copied: write_snapshot writes it later."""
        state = {**self.state.to_meta(), "history": list(self.state.history)}  # rows are never changed
        arrays = {k: v.copy() for k, v in expected_arrays(self.model, self.optimizer).items()}
        return arrays, run_meta(self.cfg, self.model, state, self.data)

    def write_snapshot(self, name, snapshot):
        save_checkpoint(self.run_dir / name, *snapshot)

    def flush(self):
        """Write what the callbacks hold back (best.npz, last.npz, metrics.csv: Checkpoints, MetricsCSV)."""
        for callback in self.callbacks:
            if hasattr(callback, "flush"):
                callback.flush(self)

    def saved_epoch(self):
        """The epoch whose end last.npz holds (what a second Ctrl-C leaves)."""
        for callback in self.callbacks:
            if isinstance(callback, Checkpoints) and callback.saved is not None:
                return callback.saved[0]
        return self.state.epoch

    def monitor_value(self, row):
        """The validation metric that picks the best epoch and drives plateau and early stopping."""
        return row[f"val_{self.monitor}"]

    def _train(self):
        state, epochs = self.state, self.cfg.train.epochs
        rng = np.random.default_rng()  # its state is set from `state` at every epoch start
        batches = Batches(self.data.train, self.cfg.train.batch_size, rng)
        with StopOnSignals() as stop:
            while state.epoch < epochs and not state.stopped:
                epoch_start = time.perf_counter()
                rng.bit_generator.state = state.epoch_rng
                self.model.train()
                finished = self._train_epoch(batches, stop)
                # A non-finite gradient with a finite loss shows up in the weights: never save those.
                if not all(np.isfinite(p).all() for _, p, _ in self.model.named_parameters()):
                    self._write_held()
                    raise TrainingDiverged(
                        f"the weights became NaN or infinite during epoch {state.epoch + 1}; {self._retry()}"
                    )
                if not finished:
                    self.flush()  # last.npz mid-epoch, after the best epoch's best.npz
                    raise TrainingInterrupted(
                        f"{stop.cause} at epoch {state.epoch + 1}, step {state.step}; saved {self.run_dir / 'last.npz'}. "
                        f"Resume with: layerwise train --resume {self.run_dir}", 128 + stop.signum
                    )
                state.epoch_rng = rng.bit_generator.state
                self._end_epoch(epoch_start)
                if stop.requested:  # during the epoch's validation or saves: the epoch is complete and saved
                    self.flush()
                    raise TrainingInterrupted(
                        f"{stop.cause} after epoch {state.epoch}; saved {self.run_dir / 'last.npz'}. "
                        f"Resume with: layerwise train --resume {self.run_dir}", 128 + stop.signum
                    )
            self.flush()  # the run ended (by its epochs, early stopping, or a callback's state.stopped)

    def _write_held(self):
        """After a divergence: the checkpoints held in memory, never the weights now."""
        for callback in self.callbacks:
            if isinstance(callback, Checkpoints):
                callback.write_held(self)

    def _train_epoch(self, batches, stop):
        """Steps through the rest of `state.epoch`, updating `state`; False if Ctrl-C or SIGTERM stopped it."""
        state, model, loss_fn, optimizer = self.state, self.model, self.loss_fn, self.optimizer
        first = state.epoch * len(batches)  # global index of the epoch's first step (for warmup)
        clipping = optimizer.clip_norm is not None
        bar = tqdm(
            batches.epoch(skip=state.step), desc=f"epoch {state.epoch + 1}/{self.cfg.train.epochs}",
            total=len(batches), initial=state.step, leave=False, disable=None, unit="step",
        )
        # Overflow shows up as a non-finite loss, reported below with advice; no RuntimeWarnings too.
        with bar, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            for x, y in bar:
                optimizer.lr = self.schedule.lr(state.epoch, first + state.step)
                if self.augment is not None:  # drawn from (seed, epoch, step): a resumed run redraws the same
                    x = self.augment(x, state.epoch, state.step)
                loss = train_step(model, loss_fn, optimizer, x, y)
                if not math.isfinite(loss):
                    self._write_held()
                    raise TrainingDiverged(
                        f"loss became {loss} at epoch {state.epoch + 1}, step {state.step + 1}; {self._retry()}"
                    )
                state.step += 1
                state.loss_sum += loss * len(x)
                state.seen += len(x)
                if clipping:
                    state.grad_norm_sum += optimizer.grad_norm
                    state.grad_norm_max = max(state.grad_norm_max, optimizer.grad_norm)
                if state.step % 20 == 0:
                    bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4f}", refresh=False)
                for callback in self.step_callbacks:
                    callback.on_step_end(self)
                if stop.requested:
                    return False
        return True

    def _end_epoch(self, epoch_start):
        """Validate, record the epoch's row and whether it is the best so far, move the state to the next
        epoch, then hand the row to the callbacks (schedule, early stopping, checkpoints, metrics.csv, line)."""
        state, cfg = self.state, self.cfg
        val = evaluate(self.model, self.loss_fn, self.data.val, self.data.task, cfg.train.eval_batch_size,
                       self.data.preprocessing)
        clipped = {}
        if cfg.optimizer.clip_norm is not None:  # the gradients' global norm before clipping
            clipped = {"grad_norm_mean": state.grad_norm_sum / max(state.step, 1), "grad_norm_max": state.grad_norm_max}
        row = {
            "epoch": state.epoch + 1,
            "lr": self.schedule.lr(state.epoch, (state.epoch + 1) * self.steps_per_epoch - 1),  # its last step's
            "train_loss": state.loss_sum / state.seen,
            **clipped,
            **{f"val_{k}": v for k, v in val.items() if k not in NOT_SCALARS},
            "seconds": time.perf_counter() - epoch_start,
        }
        state.history.append(row)
        value, best = self.monitor_value(row), state.best
        # A tie goes to the later epoch: as good on validation, and trained longer.
        self.improved = best is None or (value >= best["value"] if self.higher_is_better else value <= best["value"])
        if self.improved:
            state.best = {"epoch": state.epoch + 1, "metric": self.monitor, "value": value}
        state.epoch, state.step, state.loss_sum, state.seen = state.epoch + 1, 0, 0.0, 0
        state.grad_norm_sum = state.grad_norm_max = 0.0
        for callback in self.callbacks:
            callback.on_epoch_end(self, row)
        if self.stop_message:
            self.echo(self.stop_message)

    def _test(self):
        """Score best.npz on the test split and write test.json."""
        load_run_arrays(self.run_dir / "best.npz", self.model)
        test = evaluate(self.model, self.loss_fn, self.data.test, self.data.task, self.cfg.train.eval_batch_size,
                        self.data.preprocessing)
        best = self.state.best
        summary = {"checkpoint": "best.npz", "epoch": best["epoch"], f"val_{best['metric']}": best["value"],
                   **{f"test_{k}": v.tolist() if k == "confusion" else v for k, v in test.items()}}
        if self.state.chosen is not None:  # optimizer.weight_decay_choices
            summary["weight_decay"] = self.state.chosen["value"]
            summary["weight_decay_tried"] = [{"weight_decay": w, f"val_{self.state.chosen['metric']}": v, "epoch": e}
                                             for w, v, e in self.state.chosen["tried"]]
        if self.refitted is not None:  # best.npz is the refit model: trained on the validation rows too
            summary["refit_epochs"], summary["refit_rows"] = self.refitted["epochs"], self.refitted["rows"]
        try:
            write_json(self.run_dir / "test.json", summary)
        except StorageError as e:
            raise StorageError(f"{e}; training finished: `layerwise eval {self.run_dir}` prints the test metrics",
                               e.reason) from None
        result = {"run_dir": self.run_dir, "history": self.state.history, "test": test, "best": best}
        if self.refitted is not None:
            result["refit"] = {"epochs": self.refitted["epochs"], "rows": self.refitted["rows"]}
        return result

    def _retry(self):
        """What to do after a divergence: the command that retrains with a tenth of the rate."""
        if (self.run_dir / "best.npz").is_file():
            kept = "last.npz and best.npz keep the last good weights"
        else:
            kept = "last.npz keeps the weights from before the run went wrong"
        source = self.cfg.source if self.cfg.source.endswith((".yaml", ".yml")) else "CONFIG"
        lr = f"{self.cfg.optimizer.lr / 10:.3g}"
        return (f"retry with a smaller learning rate: layerwise train {source} --overwrite -s optimizer.lr={lr} "
                f"({kept})")


def train_step(model, loss_fn, optimizer, x, y):
    """One step: forward, loss, backward, update. Returns the batch loss; a non-finite loss
    leaves the weights untouched."""
    loss = loss_fn.forward(model.forward(x), y)
    if math.isfinite(loss):
        model.backward(loss_fn.backward(), input_grad=False)
        optimizer.step()
    return loss
