"""The bounds on the plain data a run keeps (its config, and a checkpoint's metadata, which holds that
config one level down): one table and one check, used where a config is validated
(config/yaml_loader.py check_tree) and where a checkpoint's metadata is read back (util/npz.py), so a
value a config is accepted with is a value its checkpoints are read back with.

The one rule that depends on the whole run, the size of the metadata after its last epoch, is checked
before training starts by run/checkpoint.py check_storable, with the reader's own parse.
"""

CONFIG_DEPTH = 32  # levels of nesting in a config; the shipped configs need 4 (model.layers[0].out_features)
META_DEPTH = CONFIG_DEPTH + 1  # a checkpoint's metadata holds the config under "config"
MAX_INT_DIGITS = 100  # decimal digits of an integer; a PCG64 state is a 128-bit integer (39 digits)
MAX_META_CHARS = 1 << 22  # characters of a checkpoint's metadata as JSON (16 MiB as UTF-32): ~9,000 epochs of history


def int_problem(value):
    """Why the integer `value` is out of bounds, or None."""
    if value >= 10**MAX_INT_DIGITS or value <= -(10**MAX_INT_DIGITS):
        digits = len(str(abs(value))) if abs(value).bit_length() < 20_000 else "thousands of"
        return f"an integer of {digits} digits; integers have at most {MAX_INT_DIGITS}"
    return None

