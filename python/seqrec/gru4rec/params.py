"""``--params FILE``: a command's options kept in a TOML or JSON file.

The file is a table (a JSON object) whose names are the command's options, written as on the
command line without the dashes, with ``-`` or ``_`` (``batch-size`` or ``batch_size``; the
option's ``dest`` and GRU4RecConfig's field names work too, e.g. ``dropout_embed``; the
published ``n_epochs`` is ``epochs``). Each value goes through the option's own argparse type
and choices, as the flag's would, and becomes the option's default; the flags on the command
line go on top. Values: numbers, strings, ``true`` for a flag (``quiet = true``), a list for an
option that takes several (``test = ["a.tsv", "b.tsv"]``, ``cutoffs = [5, 20]``); a list for
``layers`` is its sizes. An unknown name is an error that names it.

``ParamsParser`` is the ArgumentParser that reads ``--params`` (and applies ``--preset``)
before it parses the command line: defaults < preset < file < command line.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

from ..cli_options import ExactParser

ALIASES = {"n-epochs": "epochs"}  # the published command line's names for seqrec's options
NOT_IN_FILES = ("help", "params")  # options a params file cannot set


def _key(name: str) -> str:
    key = name.strip().lstrip("-").replace("_", "-")
    return ALIASES.get(key, key)


def option_index(parser: argparse.ArgumentParser) -> Dict[str, argparse.Action]:
    """Every name an option answers to in a params or space file: its long option strings
    without the dashes and its dest, all with ``-`` for ``_``."""
    index: Dict[str, argparse.Action] = {}
    for action in parser._actions:
        if not action.option_strings or action.dest in NOT_IN_FILES:
            continue
        for name in [o for o in action.option_strings if o.startswith("--")] + [action.dest]:
            index.setdefault(_key(name), action)
    return index


def find_option(parser: argparse.ArgumentParser, name: str) -> Optional[argparse.Action]:
    return option_index(parser).get(_key(name))


def option_name(action: argparse.Action) -> str:
    """The name a file uses for ``action``: its first long option without the dashes."""
    return next(o for o in action.option_strings if o.startswith("--"))[2:]


def _text(value) -> str:
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise ValueError(f"expected a number or a string, got {json.dumps(value)}")
    return repr(value) if isinstance(value, float) else str(value)  # 32.0 stays a float: int options refuse it


def _typed(action: argparse.Action, value):
    text = _text(value)
    if action.type is None:
        result = text
    else:
        try:
            result = action.type(text)
        except argparse.ArgumentTypeError as err:
            raise ValueError(str(err)) from None
        except (TypeError, ValueError):
            name = getattr(action.type, "__name__", repr(action.type))
            raise ValueError(f"invalid {name} value: {text!r}") from None
    if action.choices is not None and result not in action.choices:
        choices = ", ".join(map(repr, action.choices))
        raise ValueError(f"invalid choice: {result!r} (choose from {choices})")
    return result


class Unset:
    """A flag given as ``false`` in a file: the option keeps its default."""


def convert(action: argparse.Action, value):
    """``value`` (from a TOML/JSON file or a space file) as the option would parse it from the
    command line: through its type and choices. Raises ValueError with what is wrong; returns
    ``Unset`` for a flag set to false."""
    if action.nargs == 0:  # store_true, store_const, ...
        if not isinstance(value, bool):
            raise ValueError(f"is a flag: expected true or false, got {json.dumps(value)}")
        if not value:
            if isinstance(action, argparse._StoreTrueAction):
                return False
            return Unset
        return action.const
    if action.nargs in ("+", "*") or isinstance(action.nargs, int):
        values = value if isinstance(value, list) else [value]
        if not values and action.nargs != "*":
            raise ValueError("expected at least one value")
        return [_typed(action, v) for v in values]
    if isinstance(value, list):  # several sizes for layers; any other option's type refuses the commas
        value = ",".join(_text(v) for v in value)
    return _typed(action, value)


def read_params_file(path: str) -> Dict[str, object]:
    """The names and values of a ``.toml`` or ``.json`` params file (``.json``: JSON, anything
    else: TOML). Errors raise ValueError naming the file (and the line where the reader says)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as err:
        raise ValueError(f"--params {path}: {err.strerror or err}") from None
    if p.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{err.lineno}: JSON syntax error: {err.msg} (column {err.colno})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object of option names and values, got {type(data).__name__}")
        return data
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError(
                f"{path}: reading TOML on Python 3.10 needs tomli (pip install tomli); or write JSON"
            ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"{path}: TOML syntax error: {err}") from None


def params_defaults(
    parser: argparse.ArgumentParser, path: str, ignore: Iterable[str] = ()
) -> Dict[argparse.Action, object]:
    """{option: value} of a params file, each value through the option's type and choices.
    Names in ``ignore`` (another command's options) are skipped; any other name the parser
    does not know is an error. Raises ValueError naming the file and the name."""
    index = option_index(parser)
    skip = {_key(n) for n in ignore}
    out: Dict[argparse.Action, object] = {}
    for name, value in read_params_file(path).items():
        key = _key(name)
        if key == "params":
            raise ValueError(f"{path}: {name}: a params file cannot name another params file")
        action = index.get(key)
        if action is None:
            if key in skip:
                continue
            raise ValueError(f"{path}: unknown option {name!r} (not an option of this command)")
        if isinstance(value, dict):
            raise ValueError(f"{path}: {name}: expected a value, got a table")
        try:
            converted = convert(action, value)
        except ValueError as err:
            raise ValueError(f"{path}: {name}: {err}") from None
        if converted is not Unset:
            out[action] = converted
    return out


class ParamsParser(ExactParser):
    """An ArgumentParser whose ``--params FILE`` supplies defaults, and whose ``--preset NAME``
    (where ``presets`` is set) supplies defaults below the file's: defaults < preset < file <
    command line. ``params_ignore``: names a params file may hold for other commands (skipped
    here: a file written for train serves evaluate too)."""

    presets: Optional[Callable[[str], dict]] = None
    params_ignore: Callable[[], Iterable[str]] = staticmethod(lambda: ())

    def add_params_option(self) -> None:
        self.add_argument(
            "--params",
            metavar="FILE",
            help="options from a TOML or JSON file (names as the options', without the dashes); "
            "options on the command line override them",
        )

    def _params_path(self, args: List[str]) -> Optional[str]:
        """The last ``--params`` value on the command line (also as ``--params=FILE`` or an
        abbreviation argparse accepts)."""
        longs = [o for a in self._actions for o in a.option_strings if o.startswith("--")]
        path, i = None, 0
        while i < len(args):
            token = args[i]
            if token == "--":
                break
            option, eq, value = token.partition("=")
            if option == "--params" or (
                self.allow_abbrev
                and len(option) > 2
                and option.startswith("--")
                and [o for o in longs if o.startswith(option)] == ["--params"]
            ):
                if eq:
                    path = value
                elif i + 1 < len(args):
                    path, i = args[i + 1], i + 1
            i += 1
        return path

    def parse_known_args(self, args=None, namespace=None):
        args = list(sys.argv[1:] if args is None else args)
        path = self._params_path(args)
        from_file: Dict[str, object] = {}
        if path is not None:
            try:
                found = params_defaults(self, path, self.params_ignore())
            except ValueError as err:
                self.error(str(err))
            for action, value in found.items():
                action.required = False  # given by the file
                from_file[action.dest] = value
            self.set_defaults(**from_file)
        first = copy.copy(namespace)
        parsed, rest = super().parse_known_args(args, first)
        preset = getattr(parsed, "preset", None)
        if preset and self.presets is not None:
            self.set_defaults(**self.presets(preset))
            self.set_defaults(**from_file)
            parsed, rest = super().parse_known_args(args, namespace)
        elif namespace is not None:
            parsed, rest = super().parse_known_args(args, namespace)
        return parsed, rest


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML's for the characters they share
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {value!r} to a params file")


def write_params(path: str, values: Dict[str, object], comment: str = "") -> None:
    """A params file of ``values`` ({option name: value}): JSON for a ``.json`` path, TOML
    otherwise (with ``comment`` lines on top)."""
    p = Path(path)
    if p.suffix.lower() == ".json":
        text = json.dumps(values, indent=2) + "\n"
    else:
        head = "".join(f"# {line}\n" for line in comment.splitlines())
        text = head + "".join(f"{name} = {_toml_value(v)}\n" for name, v in values.items())
    p.write_text(text, encoding="utf-8")
