"""Starting a run: fit(cfg) trains a config into a new run directory, resume(run_dir) continues one
exactly where it stopped. Both check everything before they write anything, then hand the run to a
Trainer."""

from pathlib import Path


from ..config.diff import config_yaml_edits
from ..config.schema import Config, apply_overrides, config_from_dict
from ..data.fingerprint import valid_fingerprint
from ..errors import CheckpointError, ConfigError
from ..optim.optimizers import build_optimizer
from ..util.fileio import atomic_write_text, remove_stale_temps
from ..util.openfile import kind_of
from .build import SHUFFLE_STREAM, build, check_fingerprint, describe_data
from .checkpoint import check_storable, load_run_arrays, load_run_meta, save_run_checkpoint
from .choose import choose_weight_decay
from .evaluate import loss_notes
from .rundir import check_run_dir, create_run_dir, lock_run_dir
from .state import RunState
from .trainer import Trainer

# What `--resume -s ...` may change: anything else would change the run halfway through.
RESUME_OVERRIDES = ("train.epochs", "train.eval_batch_size", "data.root")


def fit(cfg: Config, *, overwrite=False, echo=print, callbacks=()):
    """Train `cfg` into its run directory: config.yaml, metrics.csv, last.npz and best.npz.

    Everything that can fail on bad input (data, model shapes, loss, the run directory) is checked
    before anything is written, so a failed start writes nothing. Returns the history and test metrics.
    """
    data, model, loss_fn, optimizer = build(cfg, echo)
    state = RunState.fresh([cfg.seed, SHUFFLE_STREAM])
    check_storable(cfg, model, state.to_meta(), data)  # its checkpoints will read back, to the last epoch
    check_run_dir(cfg.output, overwrite)
    if cfg.optimizer.weight_decay_choices is not None:  # trials in memory: the run directory comes after
        state.chosen = choose_weight_decay(cfg, data, loss_fn, echo)
        optimizer = build_optimizer(cfg.optimizer, model)

    def populate(directory):
        save_run_checkpoint(directory / "last.npz", cfg, model, optimizer, state.to_meta(), data)  # resumable at once
        atomic_write_text(directory / "config.yaml", cfg.to_yaml())

    with create_run_dir(cfg.output, populate, overwrite) as lock:  # held until the run ends: no other process trains into it meanwhile
        run_dir = lock.directory
        trainer = Trainer(cfg, run_dir, data, model, loss_fn, optimizer, state, echo, callbacks)
        echo(
            f"training {describe_data(cfg)} into {run_dir}: {model.num_parameters():,} parameters; "
            f"{len(data.train):,} train / {len(data.val):,} val / {len(data.test):,} test examples; {_threads()}"
        )
        for note in loss_notes(loss_fn, data):
            echo(note)
        return trainer.fit()


def resume(run_dir, overrides=(), echo=print, callbacks=()):
    """Continue the run in `run_dir` from its last.npz, exactly where it stopped."""
    for item in overrides:
        if item.partition("=")[0] not in RESUME_OVERRIDES:
            raise ConfigError(
                f"override {item!r}: a resumed run can only change {', '.join(RESUME_OVERRIDES)}; "
                f"anything else would change it halfway (start a new run instead)"
            )
    run_dir = Path(run_dir)
    path = run_dir / "last.npz"
    kind = kind_of(path)
    if kind == "missing":
        raise CheckpointError(f"{run_dir} holds no last.npz: is it a layerwise run directory?")
    if kind is not None:
        raise CheckpointError(f"{path}: not a regular file ({kind}); a checkpoint is a regular file")
    with lock_run_dir(run_dir) as lock:  # refused if a process trains into it; held until the run ends
        meta, trainer = load_for_resume(run_dir, overrides, echo, callbacks)
        cfg, state = trainer.cfg, trainer.state
        # Everything was read and checked; only now is anything written.
        lock.write_pid()
        remove_stale_temps(run_dir)  # left by a save that was killed
        atomic_write_text(run_dir / "config.yaml", cfg.to_yaml())  # the overrides are part of the run now
        if state.stopped or state.epoch >= cfg.train.epochs:
            echo(f"completing {cfg.name} in {run_dir}: its {state.epoch} epochs are trained but it has no test.json; "
                 f"scoring best.npz on the test split; {_threads()}")
        else:
            echo(f"resuming {cfg.name} in {run_dir} at epoch {state.epoch + 1}, step {state.step + 1}; {_threads()}")
        for note in loss_notes(trainer.loss_fn, trainer.data):
            echo(note)
        old_epochs = meta["config"].get("train", {}).get("epochs")
        if cfg.optimizer.schedule == "cosine" and old_epochs != cfg.train.epochs:
            echo(f"note: train.epochs changed from {old_epochs} to {cfg.train.epochs}: the cosine learning-rate "
                 f"schedule now spans {cfg.train.epochs} epochs")
        return trainer.fit()


def load_for_resume(run_dir, overrides=(), echo=print, callbacks=()):
    """Read and check everything a resume needs, writing nothing: (meta, trainer), the Trainer holding
    the checkpoint's weights, optimizer state and run state."""
    run_dir = Path(run_dir)
    path = run_dir / "last.npz"
    meta = load_run_meta(path)
    overrides = config_yaml_edits(run_dir, meta["config"], overrides, path, RESUME_OVERRIDES, echo) + list(overrides)
    raw = apply_overrides(meta["config"], overrides, str(path))
    raw["output"] = str(run_dir)  # keep writing where the checkpoint is, even if the run was moved
    cfg = config_from_dict(raw, str(path))
    state = RunState.from_meta(meta["state"], path)
    untested = not (run_dir / "test.json").is_file()  # every epoch done, but stopped before test.json
    if state.stopped and not untested:
        raise ConfigError(
            f"{run_dir} already stopped early after epoch {state.stopped['epoch']} (best epoch "
            f"{state.stopped['best_epoch']}, in best.npz); start a new run to train further"
        )
    if state.epoch >= cfg.train.epochs and not state.stopped and not untested:
        raise ConfigError(
            f"{run_dir} already finished {state.epoch} epochs; raise train.epochs with -s train.epochs=N to go on"
        )
    known = meta.get("fingerprint") if valid_fingerprint(meta.get("fingerprint")) else None
    data, model, loss_fn, optimizer = build(cfg, echo, known=known)
    load_run_arrays(path, model, optimizer, against="the model and optimizer its config describes")
    try:
        model.load_rng_state(meta.get("layer_rng", {}))  # Dropout's mask streams
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    check_fingerprint(data, meta, path, "resume it with the data it was trained on (-s data.root=DIR where "
                      "those files are now), or start a new run for this data")
    from .metrics import monitor_for

    state.check_against(data, cfg.train.batch_size, path, monitor_for(cfg.train, data.task, cfg.source)[0])
    check_storable(cfg, model, state.to_meta(), data)  # -s train.epochs=N: the longer history must fit too
    trainer = Trainer(cfg, run_dir, data, model, loss_fn, optimizer, state, echo, callbacks)  # checks the schedule's and early stopping's state
    return meta, trainer


def _threads():
    from ..util.threads import blas_threads

    n = blas_threads()
    return "BLAS threads: unknown" if n is None else f"{n} BLAS thread{'s' if n != 1 else ''}"
