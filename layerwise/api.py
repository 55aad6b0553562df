"""`layerwise.train(...)`: run training from Python exactly as `layerwise train` does."""

import os
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
    from .errors import ConfigError
    from .run.fit import fit

    if echo is not None and not callable(echo):
        raise ConfigError(f"echo: expected a function that prints (or None: silent), received a {type(echo).__name__}")
    if not isinstance(config, (dict, str, bytes, os.PathLike)):
        raise ConfigError(f"config: expected a YAML path or a dict, received a {type(config).__name__}")
    if isinstance(config, bytes):
        config = os.fsdecode(config)
    items = []
    for key, value in overrides.items():
        if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
            value = value.tolist()  # np.int64(3) -> 3, arrays -> lists: what YAML can write
        try:
            text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...")
        except yaml.YAMLError:
            raise ConfigError(f"override {key}: a {type(value).__name__} cannot be a config value; give a number, "
                              "string, bool, list or dict") from None
        items.append(f"{key.replace('__', '.')}={text}")
    if isinstance(config, dict):
        raw = dict(config)
        raw.setdefault("name", "run")
        cfg = config_from_dict(apply_overrides(raw, items, "<dict>"), "<dict>")
    else:
        cfg = load_config(Path(config), items)
    from .run.signals import answer_signals

    with answer_signals():  # SIGTERM in any phase (the test evaluation too) stops it as Ctrl-C does
        return fit(cfg, overwrite=overwrite, echo=_silent if echo is None else echo)


def _silent(*args, **kwargs):
    """echo=None: print nothing."""
