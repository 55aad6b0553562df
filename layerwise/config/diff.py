"""A run's config.yaml against the config its checkpoint was trained with (what --resume checks)."""

import json

from ..errors import ConfigError
from .schema import config_from_dict, load_config


def config_yaml_edits(run_dir, saved, overrides, path, allowed, echo=print):
    """The run's config.yaml against the config in its last.npz (`saved`): returns an override
    `key=value` for each edit of a key in `allowed` (an explicit -s in `overrides` still wins), and
    refuses any other edit, naming the keys, since the run would silently go on with the checkpoint's
    values."""
    config_file = run_dir / "config.yaml"
    if not config_file.is_file():
        return []
    given = {item.partition("=")[0] for item in overrides}
    try:
        current = _flatten(load_config(config_file).to_dict())
    except ConfigError as e:
        raise ConfigError(f"{e} (--resume compares {config_file} with {path.name}: fix it, or delete it: "
                          f"the resume writes it again)") from None
    stored = _flatten(config_from_dict(saved, str(path)).to_dict())
    edited = sorted(k for k in set(current) | set(stored) if k != "output" and current.get(k, _GONE) != stored.get(k, _GONE))
    refused = [k for k in edited if k not in allowed]
    if refused:
        shown = "; ".join(f"{k}: {_brief(current.get(k, _GONE))} there, {_brief(stored.get(k, _GONE))} in last.npz"
                          for k in refused[:4])
        more = f" and {len(refused) - 4} more" if len(refused) > 4 else ""
        raise ConfigError(
            f"{config_file} was edited after {path} was saved ({shown}{more}); --resume goes on with the config "
            f"the run was trained with: undo the edit (or delete config.yaml: resume writes it again), or start a "
            f"new run; on resume, -s may change {', '.join(allowed)}"
        )
    used = [k for k in edited if k not in given]
    for key in used:
        echo(f"note: {config_file} sets {key} to {_brief(current.get(key))} (last.npz: {_brief(stored.get(key))}): using it")
    return [f"{key}={json.dumps(current.get(key))}" for key in used]


_GONE = object()


def _flatten(value, prefix=""):
    """{"a": {"b": [1]}} -> {"a.b.0": 1}: every leaf under its dotted key."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}{key}.").items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in _flatten(item, f"{prefix}{i}.").items()}
    return {prefix[:-1]: value}


def _brief(value):
    text = "(absent)" if value is _GONE else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."
