"""The optimizer section's rules: which keys each optimizer type and schedule uses, their defaults
(PyTorch's), and the checks config.py runs on a parsed OptimizerConfig."""

from ..errors import ConfigError

# The keys each optimizer type uses and their defaults (PyTorch's), beyond lr, clip_norm and schedule.
OPTIMIZER_KEYS = {
    "sgd": {"lr": 0.01, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0},
    "adam": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.0},
    "adamw": {"lr": 0.001, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "weight_decay": 0.01},
    "rmsprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "momentum": 0.0, "centered": False, "weight_decay": 0.0},
}
# The keys each schedule uses and their defaults; a REQUIRED one must be given.
REQUIRED = object()
SCHEDULE_KEYS = {
    "constant": {},
    "cosine": {},
    "step": {"step_size": REQUIRED, "gamma": 0.1},
    "exponential": {"gamma": REQUIRED},
    "plateau": {"factor": 0.1, "patience": 10, "threshold": 1e-4, "min_lr": 0.0},
}


def check_optimizer(opt, source):
    """Refuse keys the optimizer type does not use, fill the ones left out with its defaults."""
    uses = OPTIMIZER_KEYS[opt.type]
    if opt.weight_decay_choices is not None:
        _check_choices(opt, source)
    unused = [key for key in ("momentum", "nesterov", "weight_decay", "beta1", "beta2", "eps", "alpha", "centered")
              if getattr(opt, key) is not None and key not in uses]
    if unused:
        # Every key the type does not use in one message, so switching type takes one more run, not one per key.
        used_by = "; ".join(f"{key} only by {', '.join(t for t, keys in OPTIMIZER_KEYS.items() if key in keys)}"
                            for key in unused)
        drops = " ".join(f"-s optimizer.{key}=null" for key in unused)
        raise ConfigError(
            f"{source}: optimizer.{', optimizer.'.join(unused)}: not used by optimizer.type {opt.type} ({used_by}); "
            f"remove {'them' if len(unused) > 1 else 'it'} (on the command line: {drops}) or change the type"
        )
    for key, default in uses.items():
        if getattr(opt, key) is None and not (key == "weight_decay" and opt.weight_decay_choices is not None):
            setattr(opt, key, default)
    for key in ("momentum", "beta1", "beta2", "alpha"):
        value = getattr(opt, key)
        if value is not None and not value < 1:
            raise ConfigError(f"{source}: optimizer.{key}: expected a value below 1, received {value}")
    if opt.nesterov and opt.momentum == 0:
        raise ConfigError(f"{source}: optimizer.nesterov: Nesterov momentum needs optimizer.momentum > 0")


def _check_choices(opt, source):
    """optimizer.weight_decay_choices: a non-empty list of decays >= 0, instead of one weight_decay (left
    null until the run has chosen: run/choose.py; an optimizer built before that uses the first)."""
    choices = opt.weight_decay_choices
    if opt.weight_decay is not None:
        raise ConfigError(f"{source}: optimizer.weight_decay and optimizer.weight_decay_choices: give one of them "
                          f"(on the command line, -s optimizer.weight_decay=V replaces the choices)")
    if not choices:
        raise ConfigError(f"{source}: optimizer.weight_decay_choices: expected a list of values, received []")
    for i, value in enumerate(choices):
        if value < 0:
            raise ConfigError(f"{source}: optimizer.weight_decay_choices[{i}]: expected a value >= 0, received {value:g}")


def check_schedule(opt, train, source):
    uses = SCHEDULE_KEYS[opt.schedule]
    for key in ("step_size", "gamma", "factor", "patience", "threshold", "min_lr"):
        if getattr(opt, key) is not None and key not in uses:
            users = [s for s, keys in SCHEDULE_KEYS.items() if key in keys]
            raise ConfigError(
                f"{source}: optimizer.{key}: not used by optimizer.schedule {opt.schedule} "
                f"(only by {', '.join(users)}); remove it (on the command line: -s optimizer.{key}=null) or change the schedule"
            )
    for key, default in uses.items():
        if getattr(opt, key) is None:
            if default is REQUIRED:
                raise ConfigError(f"{source}: optimizer.{key}: required by optimizer.schedule {opt.schedule}")
            setattr(opt, key, default)
    if opt.factor is not None and not opt.factor < 1:
        raise ConfigError(f"{source}: optimizer.factor: expected a value below 1 (the rate is multiplied by it), received {opt.factor}")
    if opt.warmup_epochs > train.epochs:
        raise ConfigError(
            f"{source}: optimizer.warmup_epochs: expected at most train.epochs ({train.epochs}), received {opt.warmup_epochs}"
        )
