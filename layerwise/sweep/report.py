"""What a sweep prints and picks: the trials ranked by their validation metric, the best one and the
command that reproduces it, and a note when the trials' val losses are not comparable."""

import shlex

from ..run.metrics import changes_the_loss, higher_is_better
from ..run.report import format_metrics


def loss_axes_note(axes, task):
    """A note when the trials' val losses are not comparable: an axis changes what the loss measures."""
    changed = [k for k in axes if changes_the_loss(k)]
    if not changed:
        return None
    metrics = "val_accuracy (or val_f1)" if task == "classification" else "val_mse (or val_r2)"
    return (f"note: the axes change what the loss measures ({', '.join(changed)}): the trials' val losses are not "
            f"comparable, so neither is a ranking by them; -s train.monitor={metrics} ranks by a metric on the real targets")


def best_trial(results):
    finished = [r for r in results if r["status"] == "finished"]
    if not finished:
        return None
    higher = higher_is_better(finished[0]["metric"])
    return max(finished, key=lambda r: r["best_val"] if higher else -r["best_val"])["id"]


def report(directory, manifest, results, echo):
    """The trials sorted by their validation metric, the best, and the command that reproduces it."""
    finished = [r for r in results if r["status"] == "finished"]
    others = [r for r in results if r["status"] != "finished"]
    if finished:
        higher = higher_is_better(finished[0]["metric"])
        finished.sort(key=lambda r: -r["best_val"] if higher else r["best_val"])
    width = max(len(r["id"]) for r in results)
    for r in finished + others:
        what = " ".join(f"{k}={v}" for k, v in r["overrides"].items())
        if r["status"] == "finished":
            test = format_metrics({k: v for k, v in r["test"].items() if isinstance(v, (int, float))})
            echo(f"{r['id']:<{width}}  val {val_text(r)}  test {test}  {what}")
        else:
            echo(f"{r['id']:<{width}}  {r['status']}  {what}  {r.get('error', '')}".rstrip())
    best = next((r for r in results if r["id"] == best_trial(results)), None)
    if best and best["metric"] == "val_loss":
        task = "classification" if "accuracy" in best["test"] else "regression"
        if note := loss_axes_note(manifest["axes"], task):
            echo(note)
    if best:
        items = trial_items(manifest["fixed"], best)
        command = " ".join(["layerwise train", shlex.quote(manifest["config"])] + [f"-s {shlex.quote(i)}" for i in items])
        echo(f"best: {best['id']} (val {val_text(best)}); reproduce with: {command}")
    echo(f"results in {directory / 'results.csv'}; each trial is a run directory in {directory / 'trials'}")


def val_text(row):
    """The best validation value as the epoch lines print it: "acc 98.30%", "mse 0.2168"."""
    return format_metrics({row["metric"].removeprefix("val_"): row["best_val"]})


def trial_items(fixed, trial):
    return list(fixed) + [f"{k}={v}" for k, v in trial["overrides"].items()]
