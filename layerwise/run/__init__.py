"""A run: training a config into a run directory, and reading one back.

    fit.py          fit(cfg) starts a run, resume(run_dir) continues one (checks first, writes after)
    trainer.py      Trainer: the training loop over one run; train_step
    callbacks.py    what happens at an epoch's end: schedule, early stopping, checkpoints,
                    metrics.csv, the printed line
    refit.py        train.refit: train again on train + val for the best epoch count (best.npz)
    build.py        data, model, loss and optimizer from a config; the seed's random streams
    state.py        RunState: where a run is, and the checks of a checkpoint's copy of it
    checkpoint.py   last.npz / best.npz: save, load, and which file a run or path names
    evaluate.py     metrics on a split; `layerwise eval` of a saved run
    loaded.py       LoadedModel: `layerwise.load(run)`, a model with its preprocessing
    resolve.py      a config or run as the views need it (summary, trace, config)
    rundir.py       creating and replacing run directories safely
    lock.py         the run-directory lock
    signals.py      Ctrl-C / SIGTERM: finish the step, save, say how to resume
    metrics.py      accuracy, confusion matrix, regression metrics; what picks the best epoch
    report.py       text: the epoch line, metrics in one line, the confusion matrix
    runfiles.py     reading metrics.csv, test.json and a sweep's files back, as untrusted input
"""
