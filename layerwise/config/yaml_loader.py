"""YAML text -> plain data (dicts, lists, scalars), bounded, for configs and `-s` values.

A YAML file of a few hundred bytes can describe a structure of billions of values through aliases
(`a1: &a1 [*a0, *a0, ...]`, the "billion laughs"), or nest deep enough to exhaust Python's recursion.
So the loader counts while it composes, before anything is constructed or copied: every value adds
one, every alias adds the size of what it stands for, and every level of nesting (an alias adds the
depth of its target) is checked. Past MAX_VALUES values or MAX_DEPTH levels it stops with
`ConfigRefused`. `check_tree` applies the same bounds to plain data from elsewhere (a checkpoint's
stored config, the result of `-s` overrides) and refuses strings that cannot be a config value.
"""

import re

import yaml

from ..errors import ConfigError
from ..util.bounds import CONFIG_DEPTH, int_problem

MAX_VALUES = 100_000  # scalars, lists and mappings, aliases expanded; the shipped configs have ~60
MAX_DEPTH = CONFIG_DEPTH  # levels of nesting (util/bounds.py: the table checkpoints are read back with too)
MAX_INT_CHARS = 1000  # an integer's length as written
MAX_CHARS = 1 << 22  # a config file's length (4 Mi characters; the shipped configs have ~1,500)
MERGE_TAG = "tag:yaml.org,2002:merge"


class ConfigRefused(yaml.MarkedYAMLError):
    """YAML that parses but is not accepted as a config: too big, too deep, recursive, odd keys."""

    def __init__(self, problem, mark):
        super().__init__(problem=problem, problem_mark=mark)


class Loader(yaml.SafeLoader):
    """yaml.SafeLoader (plain data only, never objects) that

    - bounds what the document expands to (MAX_VALUES values, MAX_DEPTH levels), counting aliases
      as they are composed, and refuses an alias inside the node it names (a recursive structure);
    - reads 1e-3 and 5E4 as floats (YAML 1.1 wants a dot: 1.0e-3), as every user expects;
    - refuses a key given twice in one mapping (PyYAML would silently keep the last), keys that are
      lists or mappings (`? [a, b]`), and integers written with over MAX_INT_CHARS characters;
    - reads merge keys (`<<: *defaults`) as yaml.safe_load does, keys written next to them
      overriding the merged ones;
    - reports odd tagged scalars (`!!int ''`) as YAML errors, not as Python exceptions.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0  # level of the node being composed (the top-level mapping is 1)
        self._deepest = 0  # deepest level reached inside the node being composed
        self._values = 0  # values so far, each alias counted as what it expands to
        self._sizes = {}  # id(anchored node) -> (values, height), once it is composed

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # else PyYAML reports the undefined alias
                if id(target) not in self._sizes:
                    raise ConfigRefused(
                        f"alias *{event.anchor} is inside the node it names (a recursive structure); "
                        "a config must be a tree", event.start_mark)
                values, height = self._sizes[id(target)]
                self._count(values, self._depth + height, event.start_mark)
            return super().compose_node(parent, index)
        self._depth += 1
        self._count(1, self._depth, event.start_mark)
        start, outer = self._values, self._deepest
        self._deepest = self._depth
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if event.anchor is not None:
            self._sizes[id(node)] = (self._values - start + 1, self._deepest - self._depth)
        self._deepest = max(outer, self._deepest)
        return node

    def fetch_flow_collection_start(self, TokenClass):
        # The scanner looks ahead through every open '[' or '{' (each may start a key), so deep flow
        # nesting costs it quadratic time before the composer sees a level: bound it here too.
        if self.flow_level >= MAX_DEPTH:
            raise ConfigRefused(f"nests deeper than {MAX_DEPTH} levels; a config this deep is refused", self.get_mark())
        super().fetch_flow_collection_start(TokenClass)

    def construct_object(self, node, deep=False):
        # SafeLoader's constructors raise bare ValueError, IndexError... on odd tagged scalars
        # (`!!int ''`, `!!float x`, `!!timestamp 2001-99-99`): report them like any YAML error.
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, IndexError, KeyError, TypeError, OverflowError) as e:
            tag = node.tag.rsplit(":", 1)[-1]
            what = f" {shorten(repr(node.value))}" if isinstance(node, yaml.ScalarNode) else ""
            raise ConfigRefused(f"cannot read{what} as {tag} ({shorten(str(e))})", node.start_mark) from None

    def _count(self, values, level, mark):
        self._values += values
        self._deepest = max(self._deepest, level)
        if self._values > MAX_VALUES:
            raise ConfigRefused(
                f"expands to more than {MAX_VALUES:,} values (each alias counted as what it repeats); "
                "a config this large is refused", mark)
        if level > MAX_DEPTH:
            raise ConfigRefused(
                f"nests deeper than {MAX_DEPTH} levels (aliases included); a config this deep is refused", mark)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
                    raise ConfigRefused(
                        f"a key must be a name, received a {kind} (`? ...` complex key)", key_node.start_mark)
                key = "<<" if key_node.tag == MERGE_TAG else self.construct_object(key_node)
                try:
                    hash(key)
                except TypeError:  # a scalar tagged as a collection: `!!map name: 1`
                    raise ConfigRefused(f"a key must be a name, received {key_node.tag.rsplit(':', 1)[-1]} "
                                        f"{shorten(repr(key_node.value))}", key_node.start_mark) from None
                if key in seen:
                    raise ConfigRefused(f"key {key!r} appears twice in one mapping", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep=deep)  # SafeLoader's: merges `<<`, then builds

    def construct_yaml_int(self, node):
        # Python refuses to convert decimal strings past 4,300 digits (ValueError); no config needs 100.
        if len(node.value) > MAX_INT_CHARS:
            raise ConfigRefused(f"an integer of {len(node.value):,} characters; integers are limited "
                                f"to {MAX_INT_CHARS:,}", node.start_mark)
        return super().construct_yaml_int(node)


Loader.add_constructor("tag:yaml.org,2002:int", Loader.construct_yaml_int)


Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text):
    """Parse like yaml.safe_load, within the bounds above. Raises yaml.YAMLError (ConfigRefused
    for YAML that is well formed but refused)."""
    loader = Loader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


def check_tree(raw, source):
    """Refuse plain data beyond MAX_VALUES values or MAX_DEPTH levels (shared objects counted once per
    use, without recursion), and strings that cannot be config values: a NUL character (never part of a
    name or path) or an unpaired surrogate such as "\\ud800" (not Unicode text: it cannot be printed,
    written to config.yaml or used as a file name). Raises ConfigError naming the dotted key."""
    stack = [(raw, "", 1)]
    values = 0
    while stack:
        value, key, level = stack.pop()
        values += 1
        if values > MAX_VALUES:
            raise ConfigError(f"{source}: the config has more than {MAX_VALUES:,} values; a config this large is refused")
        if level > MAX_DEPTH:
            raise ConfigError(f"{source}: {shorten(key)}: nests deeper than {MAX_DEPTH} levels; a config this deep is refused")
        if isinstance(value, str):
            _check_string(value, key or "config", source)
        elif isinstance(value, int) and not isinstance(value, bool) and int_problem(value):
            # The bound a checkpoint's metadata is read back with: a run's own checkpoints stay readable.
            raise ConfigError(f"{source}: {shorten(key)}: {int_problem(value)}")
        elif isinstance(value, dict):
            for k, v in value.items():
                if isinstance(k, str):
                    _check_string(k, f"{key}.{k!a}" if key else f"{k!a}", source, what="key")
                stack.append((v, f"{key}.{k}" if key else str(k), level + 1))
        elif isinstance(value, list):
            stack.extend((v, f"{key}[{i}]", level + 1) for i, v in enumerate(value))


def _check_string(text, key, source, what="value"):
    if "\0" in text:
        raise ConfigError(f"{source}: {shorten(key)}: the {what} {shorten(ascii(text))} holds a NUL character "
                          "(\\0), which no name or path may contain; remove it")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ConfigError(f"{source}: {shorten(key)}: the {what} {shorten(ascii(text))} holds an unpaired surrogate, "
                          "which is not Unicode text (a config is UTF-8); remove it") from None


def shorten(text, limit=80):
    """`text`, cut to `limit` characters with "..." (a message stays one readable line)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."
