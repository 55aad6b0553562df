"""Configs: YAML read with bounds, validated into dataclasses; every message names the file and the key.

    yaml_loader.py  the bounded YAML reader (values, depth, size; merge keys)
    schema.py       Config and its sections as dataclasses; load_config, config_from_dict,
                    apply_overrides (-s key=value)
    data.py         the data section: one dataclass per dataset, and their cross-key checks
    optim.py        the optimizer and schedule sections' cross-key checks
    diff.py         a run directory's edited config.yaml against its checkpoint (for --resume)
"""
