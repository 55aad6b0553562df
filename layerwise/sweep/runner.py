"""A sweep directory and running its trials.

    DIR/sweep.yaml     the manifest, written before any trial starts: the config (path and sha256), the
                       fixed overrides, the axes, and every trial's id and overrides
    DIR/trials/<id>/   one ordinary run directory per trial (eval, predict, plot, compare accept it)
    DIR/results.csv    one row per trial, written at the end (and after an interruption)
The directory is locked like a run directory while a sweep runs in it.
"""

import csv
import hashlib
import io
import os
import queue as queues
import signal
import time
from pathlib import Path

import yaml

from ..errors import ConfigError, LayerwiseError, MissingExtra, StorageError, TrainingInterrupted
from ..run.lock import acquire
from ..config.yaml_loader import parse_yaml
from ..run.build import task_of  # the loss's task (sweep/ does not import nn/ itself)
from ..run.runfiles import read_text
from ..util.fileio import atomic_write_text, describe_os_error
from ..util.outputs import check_name
from .axes import make_trials, parse_axes
from .report import best_trial, loss_axes_note, report, trial_items, val_text
from .trial import finished_row, run_trial

MANIFEST = "sweep.yaml"
STATUS_EVERY = 30.0  # seconds between "running: ..." lines


def run_sweep(config, overrides=(), seeds=None, samples=None, jobs=None, output=None, echo=print, sample_seed=0,
              threads=None, backend="local", address=None):
    """Sweep `config` over the axes in `overrides` into a new directory; returns the results."""
    config = Path(config).resolve()
    fixed, grid, sampled = parse_axes(overrides)
    if not grid and not sampled and not seeds:
        raise ConfigError("nothing to sweep: give a key with several values (-s optimizer.lr=0.01,0.05), "
                          "a sampler (-s optimizer.lr=loguniform(1e-4,1e-1) with --samples N) or --seeds K")
    trials = make_trials(grid, sampled, seeds, samples, sample_seed)
    from ..config.schema import load_config

    base = load_config(config, fixed)  # the base config and fixed overrides are sound before anything is written
    if base.train.monitor == "val_loss" and (note := loss_axes_note({**grid, **sampled}, task_of(base.loss))):
        echo(note)
    directory = check_name(output, "--output") if output is not None else Path("sweeps") / config.stem
    try:
        if directory.exists() and any(directory.iterdir()):
            raise ConfigError(f"sweep directory {directory} already holds files; continue it with: layerwise sweep "
                              f"--resume {directory} (or choose another with --output DIR)")
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise StorageError(f"cannot create the sweep directory {directory}: {describe_os_error(e)}",
                           describe_os_error(e)) from None
    manifest = {"config": str(config), "config_sha256": _sha256(config), "fixed": list(fixed),
                "axes": {**grid, **{k: f"{kind}({','.join(map(str, args))})" for k, (kind, args) in sampled.items()}},
                "seeds": seeds, "samples": samples, "sample_seed": sample_seed, "trials": trials}
    with acquire(directory, "wait for that sweep to finish") as lock:
        lock.write_pid()
        atomic_write_text(directory / MANIFEST, yaml.safe_dump(manifest, sort_keys=False))
        echo(f"sweep of {config.name}: {len(trials)} trials into {directory} ({_jobs(jobs, len(trials))} at a time, "
             f"{_threads(threads)} BLAS thread(s) each)")
        return _execute(directory, manifest, jobs, echo, _threads(threads), backend, address)


def resume_sweep(directory, jobs=None, echo=print, threads=None, backend="local", address=None):
    """Continue a sweep: finished trials are kept, interrupted ones resume from their last.npz, the
    others (never started, or whose worker was killed) run again."""
    directory = Path(directory)
    path = directory / MANIFEST
    try:
        manifest = parse_yaml(read_text(path, "sweep manifest"))
    except (OSError, yaml.YAMLError, LayerwiseError) as e:
        raise ConfigError(f"{path}: cannot read the sweep manifest ({type(e).__name__}); is {directory} a sweep directory?") from None
    if not _is_manifest(manifest):
        raise ConfigError(f"{path}: not a layerwise sweep manifest")
    config = Path(manifest["config"])
    if not config.is_file() or _sha256(config) != manifest.get("config_sha256"):
        raise ConfigError(f"{config} changed (or is gone) since the sweep started; its trials would not be the same "
                          "runs: start a new sweep")
    with acquire(directory, "wait for that sweep to finish") as lock:
        lock.write_pid()
        done = sum((directory / "trials" / t["id"] / "test.json").is_file() for t in manifest["trials"])
        echo(f"resuming sweep {directory}: {done} of {len(manifest['trials'])} trials finished")
        return _execute(directory, manifest, jobs, echo, _threads(threads), backend, address)


def _is_manifest(manifest):
    """sweep.yaml as run_sweep writes it: the config's path, the fixed -s items, and the trials, each an
    id (a directory name in trials/) and its overrides."""
    return (
        isinstance(manifest, dict) and isinstance(manifest.get("config"), str)
        and isinstance(manifest.get("fixed"), list) and all(isinstance(i, str) for i in manifest["fixed"])
        and isinstance(manifest.get("trials"), list)
        and all(isinstance(t, dict) and isinstance(t.get("id"), str) and t["id"] and "/" not in t["id"]
                and t["id"] not in (".", "..") and isinstance(t.get("overrides"), dict) for t in manifest["trials"])
    )


def _execute(directory, manifest, jobs, echo, threads=1, backend="local", address=None):
    config, fixed = manifest["config"], manifest["fixed"]
    rows, pending = {}, []
    for t in manifest["trials"]:
        run_dir = directory / "trials" / t["id"]
        if (run_dir / "test.json").is_file():
            rows[t["id"]] = _finished(t["id"], run_dir)
        else:
            pending.append(t)
    jobs = _jobs(jobs, len(pending))
    progress = Progress(len(pending), echo)
    started = time.perf_counter()
    signum = None
    if backend == "ray":
        signum = _ray(directory, config, fixed, pending, rows, progress, threads, address)
    elif jobs <= 1 or len(pending) <= 1:
        reports = EchoQueue(progress)
        for t in pending:
            row = run_trial(config, trial_items(fixed, t), directory / "trials" / t["id"], t["id"], reports, threads)
            rows[t["id"]] = row
            progress.finished(t, row)
            if row["status"] == "interrupted":
                signum = signal.SIGTERM if "SIGTERM" in row.get("error", "") else signal.SIGINT
                break
    else:
        signum = _pool(directory, config, fixed, pending, jobs, rows, progress, threads)
    results = _results(directory, manifest, rows)
    if signum is not None:
        raise TrainingInterrupted(
            f"sweep interrupted after {time.perf_counter() - started:.0f}s; every running trial saved its last.npz. "
            f"Continue with: layerwise sweep --resume {directory}", 128 + int(signum))
    report(directory, manifest, results["trials"], echo)
    return results


def _pool(directory, config, fixed, pending, jobs, rows, progress, threads):
    """Run `pending` on a spawn process pool; returns the signal that interrupted it, or None."""
    import multiprocessing
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited BLAS threads or locks
    manager = context.Manager()
    reports = manager.Queue()
    stop = {"signum": None}
    executor = ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_worker_start)

    def handle(signum, frame):
        stop["signum"] = signum
        # The workers are in their own process group (_worker_start): a Ctrl-C at the terminal and a
        # `kill -INT` of this process alike reach them once, from here.
        for process in list(getattr(executor, "_processes", {}).values()):
            try:
                os.kill(process.pid, signum)
            except OSError:
                pass

    previous = {s: signal.signal(s, handle) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        futures = {executor.submit(run_trial, config, trial_items(fixed, t), str(directory / "trials" / t["id"]),
                                   t["id"], reports, threads): t for t in pending}
        running = set(futures)
        while running:
            done, running = wait(running, timeout=1.0, return_when=FIRST_COMPLETED)
            _drain(reports, progress)
            for future in done:
                t = futures[future]
                try:
                    row = future.result()
                except Exception as e:  # a worker killed (out of memory, kill -9): resume re-runs it
                    row = {"id": t["id"], "status": "failed", "error": f"its worker died ({type(e).__name__})"}
                rows[t["id"]] = row
                progress.finished(t, row)
            if stop["signum"] is not None:
                for future in running:
                    if future.cancel():
                        rows[futures[future]["id"]] = {"id": futures[future]["id"], "status": "not started"}
                running = {f for f in running if not f.cancelled()}
        _drain(reports, progress)
    finally:
        executor.shutdown(wait=True, cancel_futures=True)
        manager.shutdown()
        for s, handler in previous.items():
            signal.signal(s, handler)
    return stop["signum"]


def _ray(directory, config, fixed, pending, rows, progress, threads, address):
    """Run `pending` as Ray tasks of one CPU each: on a local Ray started here, or on the cluster at
    `address` ("auto": the one `ray start` runs on this machine). Returns the interrupting signal or None."""
    try:
        import ray
        from ray.util.queue import Empty, Queue
    except ImportError:
        raise MissingExtra("--backend ray needs Ray: pip install 'layerwise[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, configure_logging=False)
    stop = {"signum": None}
    previous = {s: signal.signal(s, lambda signum, frame: stop.update(signum=signum)) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        reports = Queue()
        task = ray.remote(num_cpus=1)(run_trial)
        refs = {task.remote(config, trial_items(fixed, t), str(Path(directory).resolve() / "trials" / t["id"]), t["id"],
                            reports, threads): t for t in pending}
        running, cancelled = list(refs), False
        while running:
            done, running = ray.wait(running, num_returns=1, timeout=1.0)
            while True:
                try:
                    progress.epoch(*reports.get_nowait())
                except Empty:
                    break
            for ref in done:
                t = refs[ref]
                try:
                    row = ray.get(ref)
                except (ray.exceptions.TaskCancelledError, ray.exceptions.RayTaskError, ray.exceptions.WorkerCrashedError) as e:
                    row = {"id": t["id"], "status": "interrupted" if cancelled else "failed", "error": type(e).__name__}
                rows[t["id"]] = row
                progress.finished(t, row)
            if stop["signum"] is not None and not cancelled:
                cancelled = True
                for ref in running:  # a running trial gets KeyboardInterrupt: it saves its last.npz (run.signals)
                    ray.cancel(ref)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if started_here:
            ray.shutdown()
    return stop["signum"]


def _worker_start():
    # An idle worker ignores Ctrl-C and SIGTERM; a training trial answers them (run.signals): it saves
    # its last.npz and returns "interrupted". Its own process group: a signal reaches it only through
    # the sweep process, once (never twice, from the terminal and from the sweep).
    try:
        os.setpgid(0, 0)
    except OSError:
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


class Progress:
    """Lines while the sweep runs: one per finished trial, and every STATUS_EVERY s the running ones."""

    def __init__(self, total, echo):
        self.total, self.echo = total, echo
        self.done = self.failed = 0
        self.epochs = {}  # trial id -> (epoch, epochs) of the running trials
        self.started = self.last_status = time.perf_counter()

    def epoch(self, trial_id, epoch, epochs, value):
        self.epochs[trial_id] = (epoch, epochs)
        now = time.perf_counter()
        if now - self.last_status >= STATUS_EVERY:
            self.last_status = now
            running = ", ".join(f"{i} epoch {e}/{n}" for i, (e, n) in sorted(self.epochs.items()))
            self.echo(f"[{self._counts()}] running: {running}")

    def finished(self, trial, row):
        self.epochs.pop(trial["id"], None)
        self.done += 1
        self.failed += row["status"] == "failed"
        what = ", ".join(f"{k}={v}" for k, v in trial["overrides"].items())
        if row["status"] == "finished":
            outcome = f"val {val_text(row)} (epoch {row['best_epoch']})"
        elif row["status"] == "interrupted":
            outcome = "interrupted; its last.npz is saved (sweep --resume goes on from there)"
        else:
            outcome = f"{row['status']}: {row.get('error', '')}"
        self.echo(f"[{self._counts()}] {trial['id']} {what}: {outcome}")

    def _counts(self):
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        return (f"{self.done}/{self.total} done, {len(self.epochs)} running, {self.failed} failed, "
                f"{_clock(elapsed)} elapsed" + (f", ETA {_clock(eta)}" if eta is not None and self.done < self.total else ""))


class EchoQueue:
    """The in-process stand-in for the workers' report queue."""

    def __init__(self, progress):
        self.progress = progress

    def put(self, report):
        self.progress.epoch(*report)


def _drain(reports, progress):
    while True:
        try:
            progress.epoch(*reports.get_nowait())
        except queues.Empty:
            return


def _results(directory, manifest, rows):
    """Every trial's row (in manifest order) with its overrides and run dir; results.csv written."""
    results = []
    for t in manifest["trials"]:
        row = rows.get(t["id"]) or {"id": t["id"], "status": "not started"}
        results.append({**row, "overrides": t["overrides"], "run_dir": str(directory / "trials" / t["id"])})
    keys = list(dict.fromkeys(k for t in manifest["trials"] for k in t["overrides"]))
    tests = list(dict.fromkeys(k for r in results for k in r.get("test", {})))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["id", "status", *keys, "metric", "best_val", "best_epoch", *[f"test_{k}" for k in tests], "run_dir", "error"])
    for r in results:
        writer.writerow([r["id"], r["status"], *[r["overrides"].get(k, "") for k in keys], r.get("metric", ""),
                         r.get("best_val", ""), r.get("best_epoch", ""), *[r.get("test", {}).get(k, "") for k in tests],
                         r["run_dir"], r.get("error", "")])
    atomic_write_text(directory / "results.csv", out.getvalue())
    return {"sweep": str(directory), "trials": results, "best": best_trial(results)}












def _finished(trial_id, run_dir):
    try:
        return finished_row(trial_id, run_dir)
    except (OSError, ValueError, KeyError, TypeError, StopIteration, LayerwiseError):
        return {"id": trial_id, "status": "failed", "error": f"{run_dir / 'test.json'} is unreadable"}




def _threads(threads):
    """BLAS threads per trial: --threads, else $LAYERWISE_THREADS, else 1 (trials side by side)."""
    from ..util.threads import requested

    return requested(threads) or 1


def _jobs(jobs, n):
    return max(1, min(jobs or os.cpu_count() or 1, max(n, 1)))


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"
