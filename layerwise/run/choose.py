"""optimizer.weight_decay_choices: pick the weight decay on the validation rows before the run starts.

How much weight decay a table wants depends on the table (a near-linear target on 300 rows wants a
lot, a wiggly curve of one input wants little), and no single default holds from one to the other. So
the first pass (training until early stopping, on the training rows) is run once per candidate, each
from the same initial weights and shuffles, and the candidate whose best epoch has the best validation
`train.monitor` becomes `optimizer.weight_decay`: the validation rows decide, as scikit-learn's
GridSearchCV would, and the test rows are never looked at.

The trials run in memory (their checkpoints in a temporary directory, deleted after) before the run
directory is made; the run then trains with the chosen value as if it had been written in the config,
and its config.yaml says so (weight_decay: the chosen value, weight_decay_choices: null), so resuming
it or training its config.yaml again repeats the run without choosing again. The trials and their
scores are kept in the run state and test.json.
"""

import math
import signal
import tempfile
import time
from dataclasses import replace
from pathlib import Path


from ..errors import TrainingDiverged, TrainingInterrupted
from ..optim.optimizers import build_optimizer
from .build import SHUFFLE_STREAM, new_model
from .metrics import monitor_for
from .report import format_metrics
from .signals import CAUSES
from .state import RunState
from .trainer import Trainer


def choose_weight_decay(cfg, data, loss_fn, echo=print):
    """Train the first pass once per value of cfg.optimizer.weight_decay_choices; set
    cfg.optimizer.weight_decay to the best one (and the choices to None). Returns the record kept in
    the run state: {"key", "value", "metric", "tried": [[weight decay, best val value, best epoch], ...]}."""
    choices = cfg.optimizer.weight_decay_choices
    monitor, higher_is_better = monitor_for(cfg.train, data.task, cfg.source)
    rows, per = len(data.train), cfg.optimizer.decay_rows
    scaled = f", each scaled by {per:,} / {rows:,} training rows (optimizer.decay_rows)" if per and rows > per else ""
    echo(f"choosing optimizer.weight_decay among {', '.join(f'{w:g}' for w in choices)}{scaled} on the "
         f"{len(data.val):,} validation rows (val {monitor} of each one's best epoch; optimizer.weight_decay_choices)")
    tried = []
    with tempfile.TemporaryDirectory(prefix="layerwise-choose-") as tmp:
        for i, decay in enumerate(choices):
            started = time.perf_counter()
            trial = replace(cfg, optimizer=replace(cfg.optimizer, weight_decay=decay, weight_decay_choices=None),
                            train=replace(cfg.train, refit=False), output=str(Path(tmp) / str(i)))
            Path(trial.output).mkdir()
            model = new_model(trial, data)
            state = RunState.fresh([cfg.seed, SHUFFLE_STREAM])
            trainer = Trainer(trial, Path(trial.output), data, model, loss_fn, build_optimizer(trial.optimizer, model),
                              state, echo=lambda *_: None)
            try:
                for callback in trainer.callbacks:
                    callback.on_train_start(trainer)
                trainer._train()  # the first pass only: no refit, and never the test rows
            except (TrainingInterrupted, KeyboardInterrupt) as e:
                code = getattr(e, "exit_code", 128 + signal.SIGINT)
                raise TrainingInterrupted(
                    f"{CAUSES.get(code - 128, 'interrupted')} while choosing the weight decay ({i + 1} of "
                    f"{len(choices)}); nothing was written: start the run again", code
                ) from None
            except TrainingDiverged:
                echo(f"  weight decay {decay:g}: diverged; not a choice")
                continue
            best = state.best
            if not math.isfinite(best["value"]):  # NaN compares as neither better nor worse
                echo(f"  weight decay {decay:g}: val {monitor} {best['value']}; not a choice")
                continue
            tried.append([decay, best["value"], best["epoch"]])
            echo(f"  weight decay {decay:g}: val {format_metrics({monitor: best['value']})} at epoch {best['epoch']} "
                 f"({time.perf_counter() - started:.1f}s)")
    if not tried:
        raise TrainingDiverged(f"{cfg.source}: optimizer.weight_decay_choices: training diverged (or scored NaN) with every "
                               "value; "
                               "lower optimizer.lr")
    # The best validation value; on a tie, the larger decay (the simpler model).
    pick = (max if higher_is_better else min)(tried, key=lambda t: (t[1], t[0] if higher_is_better else -t[0]))
    cfg.optimizer = replace(cfg.optimizer, weight_decay=pick[0], weight_decay_choices=None)
    echo(f"optimizer.weight_decay {pick[0]:g}: the best val {monitor} of the {len(choices)}; the run trains with it")
    return {"key": "optimizer.weight_decay", "value": pick[0], "metric": monitor, "tried": tried}
