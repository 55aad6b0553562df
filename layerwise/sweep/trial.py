"""One trial of a sweep: a plain function of (config, overrides, run dir) that pickles, so any backend
can run it. It goes through exactly the code path of `layerwise train` (load_config, then fit; or
resume when the trial has a last.npz from an interrupted or killed attempt), with one BLAS thread."""

from pathlib import Path

from ..run.callbacks import Callback


class EpochReport(Callback):
    """Puts (trial id, epoch, epochs, validation metric) on `queue` at each epoch's end."""

    def __init__(self, queue, trial_id):
        self.queue, self.trial_id = queue, trial_id

    def on_epoch_end(self, trainer, row):
        self.queue.put((self.trial_id, row["epoch"], trainer.cfg.train.epochs, trainer.monitor_value(row)))


def run_trial(config, overrides, run_dir, trial_id, queue=None, threads=1):
    """Train (or finish) one trial (`overrides`: its -s items) in `run_dir`; returns its result row (status "finished", "failed"
    or "interrupted"), never raises for a LayerwiseError."""
    from threadpoolctl import threadpool_limits

    from ..config.schema import load_config
    from ..errors import LayerwiseError, TrainingInterrupted
    from ..run.fit import fit, resume

    run_dir = Path(run_dir)
    callbacks = [EpochReport(queue, trial_id)] if queue is not None else []
    quiet = lambda *args, **kwargs: None  # noqa: E731
    with threadpool_limits(threads):
        try:
            if not (run_dir / "test.json").is_file():
                if (run_dir / "last.npz").is_file():
                    resume(run_dir, echo=quiet, callbacks=callbacks)
                else:
                    cfg = load_config(config, list(overrides) + [f"output={run_dir}"])
                    fit(cfg, echo=quiet, callbacks=callbacks)
        except TrainingInterrupted as e:
            return {"id": trial_id, "status": "interrupted", "error": str(e)}
        except LayerwiseError as e:
            return {"id": trial_id, "status": "failed", "error": str(e)}
    return finished_row(trial_id, run_dir)


def finished_row(trial_id, run_dir):
    """A finished trial's row from its test.json: the best validation value and the test metrics."""
    from ..run.runfiles import read_test_json

    summary = read_test_json(Path(run_dir) / "test.json")  # untrusted: bounded and schema-checked
    val = {k: v for k, v in summary.items() if k.startswith("val_")}
    test = {k[5:]: v for k, v in summary.items() if k.startswith("test_") and k != "test_confusion"}
    metric, value = next(iter(val.items()))
    value = float("nan") if value is None else value  # null: NaN or infinite when it was written
    return {"id": trial_id, "status": "finished", "metric": metric, "best_val": value, "best_epoch": summary["epoch"],
            "test": test}
