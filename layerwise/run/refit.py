"""train.refit: once early stopping (or the epoch budget) has picked the best epoch E on the validation
rows, train again from the same initial weights on the training + validation rows for E epochs, with
the learning rate of each of the first pass's epochs played back, and keep that model as best.npz.

The validation rows then teach the model too (scikit-learn's MLP trains on every row it is given), at
the price of no validation score for the refit model: test.json says which model it scored.

The refit writes no checkpoint of its own while it trains: it is a pure function of the config, the
data and the first pass's history (initial weights from the seed, shuffling from the seed), so a run
stopped during it resumes by refitting again from the start, and ends bit for bit as an uninterrupted run.
"""

import math
import time

import numpy as np

from ..data.batches import Batches
from ..data.dataset import Split
from ..errors import TrainingDiverged, TrainingInterrupted
from ..optim.optimizers import build_optimizer
from ..optim.schedules import Replay
from .build import SHUFFLE_STREAM, new_model
from .checkpoint import save_run_checkpoint
from .signals import StopOnSignals

REFIT_STREAM = 4  # the refit's shuffling: [seed, SHUFFLE_STREAM, REFIT_STREAM]


def scale_decay(optimizer, decay_rows, rows):
    """optimizer.decay_rows: weight decay as a prior, weaker the more rows speak against it."""
    if decay_rows is not None and rows > decay_rows and getattr(optimizer, "weight_decay", 0):
        optimizer.weight_decay *= decay_rows / rows


def replayed_rates(history, epochs, warmup_epochs):
    """The rule's rate of each of the first `epochs` epochs: a history row's lr is its epoch's last step's,
    which a warmup of W epochs scaled by min(1, (epoch + 1) / W)."""
    rates = []
    for e, row in enumerate(history[:epochs]):
        warm = min(1.0, (e + 1) / warmup_epochs) if warmup_epochs else 1.0
        rates.append(row["lr"] / warm)
    return rates


def refit(trainer, train_step):
    """Retrain trainer's run on train + val for its best epoch count with `train_step` (the Trainer's);
    save the model as best.npz. Returns {"epochs", "rows", "seconds"} (for test.json and the last line)."""
    cfg, data, state = trainer.cfg, trainer.data, trainer.state
    started = time.perf_counter()
    epochs = state.best["epoch"]
    both = Split(np.concatenate([data.train.x, data.val.x]), np.concatenate([data.train.y, data.val.y]))
    trainer.echo(
        f"refit (train.refit): training again from the initial weights on the {len(data.train):,} training + "
        f"{len(data.val):,} validation rows for {epochs} epoch{'s' if epochs != 1 else ''} (the best epoch), with the "
        f"first pass's learning rates; best.npz will hold this model"
    )
    dtype = next(p.dtype for _, p, _ in trainer.model.named_parameters())
    model = new_model(cfg, data, dtype)
    optimizer = build_optimizer(cfg.optimizer, model)
    scale_decay(optimizer, cfg.optimizer.decay_rows, len(both))
    batches = Batches(both, cfg.train.batch_size, np.random.default_rng([cfg.seed, SHUFFLE_STREAM, REFIT_STREAM]))
    schedule = Replay(replayed_rates(state.history, epochs, cfg.optimizer.warmup_epochs),
                      cfg.optimizer.warmup_epochs * len(batches))
    model.train()
    with StopOnSignals() as stop, np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        for epoch in range(epochs):
            for step, (x, y) in enumerate(batches.epoch()):
                optimizer.lr = schedule.lr(epoch, epoch * len(batches) + step)
                if trainer.augment is not None:
                    x = trainer.augment(x, epoch, step)
                loss = train_step(model, trainer.loss_fn, optimizer, x, y)
                if not math.isfinite(loss):
                    raise TrainingDiverged(
                        f"the refit's loss became {loss} at epoch {epoch + 1}, step {step + 1}; best.npz still holds "
                        f"the first pass's best epoch; train without the refit (-s train.refit=false)"
                    )
                if stop.requested:
                    raise TrainingInterrupted(
                        f"{stop.cause} during the refit (epoch {epoch + 1} of {epochs}); the first pass is saved in "
                        f"{trainer.run_dir}. Refit and score it with: layerwise train --resume {trainer.run_dir}",
                        128 + stop.signum,
                    )
    result = {"epochs": epochs, "rows": len(both)}
    refit_state = type(state)(**{**state.to_meta(), "refit": result})
    save_run_checkpoint(trainer.run_dir / "best.npz", cfg, model, optimizer, refit_state.to_meta(), data)
    return {**result, "seconds": time.perf_counter() - started}
