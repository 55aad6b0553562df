"""`layerwise.train(...)`: run training from Python exactly as `layerwise train` does."""

from pathlib import Path


def train(config, *, overwrite=False, echo=print, **overrides):
    """Train a config (a YAML path, or a dict shaped like one) into its run directory.

    Overrides are keyword arguments, dotted keys spelled with double underscores
    (`optimizer__lr=0.05`, `train__epochs=3`, `output="runs/x"`) or passed as a dict
    (`**{"optimizer.lr": 0.05}`); they are applied and checked like `-s`. Returns
    {"run_dir", "history", "test", "best"}; `echo=None` prints nothing. Failures raise layerwise.errors.LayerwiseError subclasses.
    """
    import yaml

    from .config.schema import apply_overrides, config_from_dict, load_config
    from .run.fit import fit

    items = [f"{key.replace('__', '.')}={yaml.safe_dump(value, default_flow_style=True).strip()}"
             .removesuffix("\n...") for key, value in overrides.items()]
    if isinstance(config, dict):
        raw = dict(config)
        raw.setdefault("name", "run")
        cfg = config_from_dict(apply_overrides(raw, items, "<dict>"), "<dict>")
    else:
        cfg = load_config(Path(config), items)
    return fit(cfg, overwrite=overwrite, echo=_silent if echo is None else echo)


def _silent(*args, **kwargs):
    """echo=None: print nothing."""
