"""From YAML nodes to settings models: keys folded as viper does, each problem with its line.

The walk follows the models' fields (``msgspec.structs.fields``): a mapping becomes a model, its
keys matched case-insensitively against the camelCase field names (unknown keys get a
did-you-mean, required ones a "has no ... key"); a list of mappings becomes a tuple of models;
every other value is checked by ``msgspec.convert`` against the field's annotated type (Go
durations are parsed first). All problems are collected, none stops the walk; each model built
is then asked for its own :meth:`~.base.Model.problems`, which are located by key path.
"""

from __future__ import annotations

import functools
import types
import typing
from datetime import timedelta
from typing import Annotated, Any, Literal, get_args, get_origin

import msgspec
import yaml

from thv_registry.config.durations import parse_duration

__all__ = ["Walker", "Located", "pairs", "kind_of"]

Located = tuple[int, int, str]  #: line, column (from 1), text
_MERGE = "tag:yaml.org,2002:merge"
_NULL = "tag:yaml.org,2002:null"
_BAD: Any = object()  #: a value that could not be built (its problems are recorded)
_UNSET: Any = object()  #: null (or empty text) for a key with a default: the default applies
_DURATION = "a duration such as 30s, 5m or 1h30m"
_BASE_WORDS = {str: "text", int: "a whole number", float: "a number", bool: "true or false"}


class _Field(msgspec.Struct, frozen=True):  # a Struct: cheaper to define than a dataclass
    name: str  #: the attribute
    key: str  #: the YAML key (camelCase)
    core: Any  #: the type without ``| None`` (Annotated kept: msgspec checks its Meta)
    base: Any  #: ``core`` without Annotated
    required: bool
    optional: bool  #: ``| None``: null (and empty text) mean unset
    item: Any  #: the model of a tuple of models, else None
    description: str  #: what the value must be, for messages
    secret: bool  #: never show the value


@functools.cache
def _fields(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    return tuple(_field(f) for f in msgspec.structs.fields(cls))


def _field(info: msgspec.structs.FieldInfo) -> _Field:
    core, optional = info.type, False
    if get_origin(core) in (typing.Union, types.UnionType):
        args = [a for a in get_args(core) if a is not type(None)]
        optional = len(args) < len(get_args(core))
        core = args[0] if len(args) == 1 else typing.Union[tuple(args)]  # noqa: UP007
    base, metas = core, []
    if get_origin(core) is Annotated:
        base, *extra = get_args(core)
        metas = [m for m in extra if isinstance(m, msgspec.Meta)]
    item = None
    if get_origin(base) is tuple and len(get_args(base)) == 2 and get_args(base)[1] is Ellipsis:
        candidate = get_args(base)[0]
        item = candidate if _is_model(candidate) else None
    description = next((m.description for m in metas if m.description), None)
    return _Field(
        name=info.name,
        key=info.encode_name,
        core=core,
        base=base,
        required=info.required,
        optional=optional,
        item=item,
        description=description or _describe_type(base),
        secret=any((m.extra or {}).get("secret") for m in metas),
    )


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, msgspec.Struct)


def _describe_type(base: Any) -> str:
    if base in _BASE_WORDS:
        return _BASE_WORDS[base]
    if base is timedelta:
        return _DURATION
    if get_origin(base) is Literal:
        return " or ".join(str(a) for a in get_args(base))
    if _is_model(base):
        return "a mapping of keys"
    if get_origin(base) is tuple:
        return "a list"
    return "a mapping" if get_origin(base) is dict else "a value"


class Walker:
    """One walk over one file's node tree; ``problems`` and ``where`` fill as it goes."""

    def __init__(self) -> None:
        self.problems: list[Located] = []
        #: key path in model spellings (``sources[0].syncPolicy``) -> (path as written, node)
        self.where: dict[str, tuple[str, yaml.Node]] = {}
        self._constructor = yaml.constructor.SafeConstructor()

    def model(
        self,
        cls: type[msgspec.Struct],
        node: yaml.Node,
        path: tuple[str, str],
        anchor: yaml.Node,
        skip: frozenset[str] = frozenset(),
    ) -> Any:
        """Build ``cls`` from a mapping node; ``path`` is (model spelling, as written); problems
        about the whole mapping point at ``anchor`` (its key, or the list item)."""
        canon, shown = path
        self.where[canon] = (shown, anchor)
        fields = [f for f in _fields(cls) if f.name not in skip]
        if _is_null(node):
            if any(f.required for f in fields):
                return self._fail(anchor, f"{shown} is empty; {_expected(fields)}")
            return self._built(cls, {}, path, anchor)
        if not isinstance(node, yaml.MappingNode):
            what = f"must be a mapping of keys, not {self.kind(node)}"
            return self._fail(anchor, f"{shown} {what}; {_expected(fields)}")
        by_key = {f.key.lower(): f for f in fields}
        checks = getattr(cls, "field_checks", {})
        values: dict[str, Any] = {}
        given: dict[str, str] = {}
        suggested: set[str] = set()
        ok = True
        for key, (knode, vnode) in pairs(node, _join(shown, ""), self.problems).items():
            field = by_key.get(key.lower())
            if field is None and not canon and key.lower().startswith("x-"):
                continue  # an extension key at the top (anchors to reuse), as in compose files
            if field is None:
                close = close_matches(key.lower(), list(by_key), 0.6)
                hint = f"did you mean {by_key[close[0]].key!r}?" if close else _expected(fields)
                suggested.update(by_key[c].name for c in close)
                self._fail(knode, f"{_join(shown, key)} is not a known key; {hint}")
                ok = False
                continue
            if field.name in given:
                first = _join(shown, given[field.name])
                self._fail(knode, f"{_join(shown, key)} repeats {first}; keep only one")
                ok = False
                continue
            given[field.name] = key
            sub = (_join(canon, field.key), _join(shown, key))
            self.where[sub[0]] = (sub[1], knode)
            value = self.value(field, vnode, sub, knode)
            check = checks.get(field.name)
            if check and value not in (_BAD, _UNSET, None) and (why := check(value)):
                value = self._fail(knode, f"{sub[1]} {why}")
            if value is _BAD:
                ok = False
            elif value is not _UNSET:
                values[field.name] = value
        for field in fields:
            if field.required and field.name not in given and field.name not in suggested:
                ok = False
                self._fail(
                    anchor,
                    f"{shown} has no {field.key} key, which is required; add "
                    f"{field.key}: <{field.description}>",
                )
        return self._built(cls, values, path, anchor) if ok else _BAD

    def _built(
        self, cls: type[msgspec.Struct], values: dict[str, Any], path: tuple[str, str], anchor: Any
    ) -> Any:
        obj = cls(**values)
        problems = getattr(obj, "problems", None)
        for rel, text in problems() if problems else ():
            self.locate(path, anchor, rel, text)
        return obj

    def value(self, field: _Field, node: yaml.Node, path: tuple[str, str], anchor: Any) -> Any:
        """The value of one field, or _BAD (its problem recorded)."""
        canon, shown = path
        if _is_model(field.base):  # null: the defaults, or "is empty" if a key is required
            return self.model(field.base, node, path, anchor)
        if _is_null(node) and field.optional:
            return None
        if _is_null(node) and not field.required:
            return _UNSET  # as Go's zero value: the default
        if _is_null(node):
            return self._fail(anchor, f"{shown} has no value; give {field.description}")
        if field.item is not None:
            if not isinstance(node, yaml.SequenceNode):
                return self._fail(anchor, f"{shown} must be a list, not {self.kind(node)}")
            items = [
                self.model(field.item, item, (f"{canon}[{i}]", f"{shown}[{i}]"), item)
                for i, item in enumerate(node.value)
            ]
            return _BAD if any(i is _BAD for i in items) else tuple(items)
        if isinstance(node, yaml.MappingNode):
            pairs(node, _join(shown, ""), self.problems)  # repeated keys inside a value
        value = self._constructor.construct_object(node, deep=True)
        if field.base is timedelta:
            return self._duration(value, shown, anchor, field.secret)
        if value == "" and field.base is str and (field.optional or not field.required):
            return None if field.optional else _UNSET  # the Go server reads "" as unset
        try:
            return msgspec.convert(value, field.core, strict=True)
        except msgspec.ValidationError as exc:
            return self._fail(anchor, _wrong(field, shown, value, str(exc)))

    def _duration(self, value: Any, shown: str, anchor: Any, secret: bool) -> Any:
        if not isinstance(value, str):
            return self._fail(anchor, f"{shown} must be {_DURATION} (text), not {kind_of(value)}")
        try:
            return parse_duration(value)
        except ValueError as exc:
            return self._fail(anchor, f"{shown} must be {_DURATION}: {exc}")

    def locate(
        self, path: tuple[str, str], anchor: Any, rel: tuple[str | int, ...], text: str
    ) -> None:
        """Record a model's problem at ``rel`` below ``path``, at the nearest written key."""
        canon = path[0]
        names = [canon]
        for part in rel:
            names.append(
                f"{names[-1]}[{part}]" if isinstance(part, int) else _join(names[-1], part)
            )
        for depth in range(len(rel), -1, -1):
            if names[depth] in self.where:
                shown, node = self.where[names[depth]]
                for part in rel[depth:]:
                    shown = f"{shown}[{part}]" if isinstance(part, int) else _join(shown, part)
                self._fail(node, f"{shown} {text}")
                return
        self._fail(anchor, f"{path[1]} {text}")

    def kind(self, node: yaml.Node) -> str:
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        return kind_of(self._constructor.construct_object(node, deep=True))

    def _fail(self, node: yaml.Node, text: str) -> Any:
        self.problems.append((node.start_mark.line + 1, node.start_mark.column + 1, text))
        return _BAD


def pairs(
    node: yaml.MappingNode, prefix: str, problems: list[Located], depth: int = 0
) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """Key text -> (key node, value node), merge keys (``<<``) resolved; reports repeated keys."""
    merged: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    own: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for knode, vnode in node.value:
        if knode.tag == _MERGE:
            sources = vnode.value if isinstance(vnode, yaml.SequenceNode) else [vnode]
            for src in reversed(sources):  # earlier sources win, as in PyYAML
                if isinstance(src, yaml.MappingNode) and depth < 20:
                    merged.update(pairs(src, prefix, [], depth + 1))
            continue
        key = str(knode.value)
        if key in own:
            first = own[key][0].start_mark.line + 1
            line, column = knode.start_mark.line + 1, knode.start_mark.column + 1
            problems.append((line, column, f"{prefix}{key} is given twice (also at line {first})"))
        own[key] = (knode, vnode)
    return merged | own


def close_matches(word: str, choices: list[str], cutoff: float) -> list[str]:
    if word in choices or not choices:
        return []
    import difflib  # only for unknown keys: most files never get here

    return difflib.get_close_matches(word, choices, 1, cutoff)


def kind_of(value: Any, secret: bool = False) -> str:
    """How a YAML value reads in a message (its value only when not secret)."""
    if isinstance(value, bool):
        return "a boolean" if secret else f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return "a number" if secret else f"the number {value}"
    if isinstance(value, str):
        return "text" if secret else f"the text {value[:60]!r}"
    names = {list: "a list", dict: "a mapping", type(None): "empty"}
    return names.get(type(value), f"a {type(value).__name__}")


def _wrong(field: _Field, shown: str, value: Any, error: str) -> str:
    """One msgspec refusal in the user's terms, never echoing a secret."""
    if field.base is str:
        if value == "":
            return f"{shown} must not be empty; give {field.description}"
        if not isinstance(value, str):
            quote = "; put it in quotes" if isinstance(value, int | float) else ""
            wrong = kind_of(value, field.secret)
            return f"{shown} must be {field.description} (text), not {wrong}{quote}"
    head, _, at = error.partition(" - at `$")
    if at and not field.secret:
        return f"{shown}{at.rstrip('`')} is wrong ({head}); {shown} must be {field.description}"
    return f"{shown} must be {field.description}, not {kind_of(value, field.secret)}"


def _expected(fields: list[_Field]) -> str:
    required = [f.key for f in fields if f.required]
    need = f"it needs {', '.join(required)}; " if required else ""
    return f"{need}known keys are {', '.join(f.key for f in fields)}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_null(node: yaml.Node) -> bool:
    return isinstance(node, yaml.ScalarNode) and node.tag == _NULL
