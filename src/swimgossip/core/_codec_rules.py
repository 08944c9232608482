"""The codec's rule table: every check a decoded value must pass, written once.

How this works. ``RECORDS`` holds, per message class (and for the member rows inside a
push-pull), its fields in wire order, and for each field a ``Kind``: the rules the value
must pass, in order, and what to do with it (convert it, or check every item of a list).
A rule is a small value (``IsType``, ``Between``, ``MaxLength``, ``LengthIs``) that can
both *say* itself as a Python expression and *test* a value. Two things are derived:

* the fast path. :func:`render` writes each record's rules as one ``and`` chain into
  ``_codec_generated.py``: one decoder and one row builder per message class, the limits
  inlined as constants. The codec imports that module, not this one.
* the explanation. :func:`violation` walks the same rules in the same order on the slow
  path (only once a generated decoder refused a row) and names the first field and rule
  that broke; :func:`explain` raises it as the ``DecodeError``. The generated module
  imports this module on its first refusal, so a process that never meets a malformed
  packet never loads the table.

Why a checked-in module instead of building the decoders with ``exec`` (at import, as
before, or lazily): the code that parses bytes from the network stays readable and
reviewable in the tree; it shows its real file and line in tracebacks, profiles and
coverage (and to atheris, which instruments only the functions that exist when the fuzzer
starts); ruff and mypy check it; and its bytecode is cached like any module's, where exec'd
source is compiled again in every process. The price is regenerating it when this table
changes, and a test that says so:

    python -c 'from swimgossip.core import _codec_rules; _codec_rules.main()'

tests/core/test_codec.py fails when the checked-in module differs from :func:`render`.
(Regenerating imports the package, so the old generated module must still import: if a
change to messages.py breaks it, replace it by ``DECODERS = ROWS = {}`` and
``decode_push_pull = None`` first.)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import attrs

from .errors import DecodeError
from .member import Member, Status
from .messages import MAX_NAME_LENGTH, MESSAGE_TYPES, Message, StateDelta

__all__ = [
    "RECORDS",
    "Between",
    "Field",
    "IsType",
    "Kind",
    "LengthIs",
    "MaxLength",
    "Record",
    "Rule",
    "explain",
    "render",
    "violation",
]

U64_MAX = (1 << 64) - 1


# --- rules: each one says itself as code and tests a value --------------------------------


@attrs.frozen
class IsType:
    """The value's type is exactly ``type`` (so ``True`` is not an int)."""

    type: type[Any]

    def source(self, value: str) -> str:
        return f"type({value}) is {self.type.__name__}"

    def refuses(self, value: str) -> str:
        return f"type({value}) is not {self.type.__name__}"

    def holds(self, value: Any) -> bool:
        return type(value) is self.type

    def __str__(self) -> str:
        return f"type {self.type.__name__}"

    def seen(self, value: Any) -> str:
        return type(value).__name__


@attrs.frozen
class Between:
    """``low <= value <= high`` (an int, once ``IsType(int)`` held)."""

    low: int
    high: int

    def source(self, value: str) -> str:
        return f"{self.low} <= {value} <= {self.high}"

    def refuses(self, value: str) -> str:
        return f"not {self.low} <= {value} <= {self.high}"

    def holds(self, value: Any) -> bool:
        return bool(self.low <= value <= self.high)

    def __str__(self) -> str:
        return f"{self.low} <= value <= {self.high}"

    def seen(self, value: Any) -> str:
        return repr(value)


@attrs.frozen
class MaxLength:
    """``len(value) <= limit`` (characters of a str, items of a list)."""

    limit: int

    def source(self, value: str) -> str:
        return f"len({value}) <= {self.limit}"

    def refuses(self, value: str) -> str:
        return f"len({value}) > {self.limit}"

    def holds(self, value: Any) -> bool:
        return len(value) <= self.limit

    def __str__(self) -> str:
        return f"length <= {self.limit}"

    def seen(self, value: Any) -> str:
        return f"length {len(value)}"


@attrs.frozen
class LengthIs:
    """``len(value) == length`` (the fields of a row)."""

    length: int

    def source(self, value: str) -> str:
        return f"len({value}) == {self.length}"

    def refuses(self, value: str) -> str:
        return f"len({value}) != {self.length}"

    def holds(self, value: Any) -> bool:
        return len(value) == self.length

    def __str__(self) -> str:
        return f"length == {self.length}"

    def seen(self, value: Any) -> str:
        return f"length {len(value)}"


Rule = IsType | Between | MaxLength | LengthIs


# --- the table's shape ---------------------------------------------------------------------


@attrs.frozen
class Kind:
    """What a field holds: the rules it passes, in order, and how it meets the message.

    ``items``: the value is a list and every item is of this kind (the list becomes a
    tuple). ``rows``: the value is a list of records of this shape, each built into an
    instance of ``rows.cls``. ``to_wire`` / ``from_wire``: expressions (``{v}`` is the
    value) converting between the attribute and the wire value.
    """

    name: str
    rules: tuple[Rule, ...]
    items: Kind | None = None
    rows: Record | None = None
    to_wire: str = "{v}"
    from_wire: str = "{v}"


@attrs.frozen
class Field:
    """One field of a record: its attribute name and its kind."""

    name: str
    kind: Kind


@attrs.frozen
class Record:
    """A msgpack array with one field per attribute of ``cls``, in this order.

    A message's array starts with its wire ``type_id``; a member row has none.
    """

    cls: type[Any]
    fields: tuple[Field, ...]
    type_id: int | None = None
    #: Rows of this record may be held already by the receiver, by their first field
    #: (a member table by name): the decoder then takes a ``known`` mapping, and a row
    #: equal to the value held for its key decodes as that value, unchecked and unbuilt
    #: (it passed these rules when it came, or is the receiver's own).
    keyed: bool = False

    @property
    def offset(self) -> int:
        """Index of the first field in the array (1 after a type id, else 0)."""
        return 0 if self.type_id is None else 1

    @property
    def shape(self) -> tuple[Rule, ...]:
        """The rules of the array itself: a list of exactly its fields.

        A message array is known to be a list already (its type id was read from it).
        """
        length = LengthIs(self.offset + len(self.fields))
        return (length,) if self.type_id is not None else (IsType(list), length)


# --- the table -----------------------------------------------------------------------------

UINT64 = Kind("uint64", (IsType(int), Between(0, U64_MAX)))
NAME = Kind("name", (IsType(str), MaxLength(MAX_NAME_LENGTH)))
BYTES = Kind("bytes", (IsType(bytes),))
BOOL = Kind("bool", (IsType(bool),))
STATUS = Kind(
    "status",
    (IsType(int), Between(0, len(Status) - 1)),
    to_wire="int({v})",
    from_wire="STATUSES[{v}]",
)
NAMES = Kind("names", (IsType(list),), items=NAME, from_wire="tuple({v})")

MEMBER_ROW = Record(
    Member,
    (
        Field("name", NAME),
        Field("address", NAME),
        Field("status", STATUS),
        Field("incarnation", UINT64),
        Field("meta", BYTES),
        Field("boot", UINT64),
    ),
    keyed=True,
)
MEMBERS = Kind("members", (IsType(list),), rows=MEMBER_ROW)
VERSIONS = Kind("versions", (IsType(list),), items=UINT64, from_wire="tuple({v})")
DELTA_ROW = Record(
    StateDelta,
    (
        Field("owner", NAME),
        Field("key", NAME),
        Field("version", UINT64),
        Field("value", BYTES),
        Field("deleted", BOOL),
    ),
)
DELTAS = Kind("deltas", (IsType(list),), rows=DELTA_ROW)

#: The kind of every message field, by attribute name (a name means the same everywhere).
FIELD_KINDS = {
    "seq": UINT64,
    "incarnation": UINT64,
    "id": UINT64,
    "boot": UINT64,
    "target": NAME,
    "target_address": NAME,
    "name": NAME,
    "address": NAME,
    "source": NAME,
    "meta": BYTES,
    "payload": BYTES,
    "nack": BOOL,
    "join": BOOL,
    "members": MEMBERS,
    "suspected_by": NAMES,
    "owner": NAME,
    "key": NAME,
    "version": UINT64,
    "value": BYTES,
    "deleted": BOOL,
    "push": BOOL,
    "owners": NAMES,
    "versions": VERSIONS,
    "deltas": DELTAS,
    "digest": BYTES,
}

#: Per message class, its record: wire type id, fields in the order of the class.
RECORDS: dict[type[Message], Record] = {
    cls: Record(
        cls,
        tuple(Field(field.name, FIELD_KINDS[field.name]) for field in attrs.fields(cls)),
        type_id,
    )
    for type_id, cls in MESSAGE_TYPES.items()
}


# --- the explanation (slow path) -----------------------------------------------------------


def _kind_violation(kind: Kind, value: Any, where: str) -> str | None:
    for rule in kind.rules:
        if not rule.holds(value):
            return f"{where}: expected {rule}, got {rule.seen(value)}"
    if kind.items is not None:
        for index, item in enumerate(value):
            found = _kind_violation(kind.items, item, f"{where}[{index}]")
            if found is not None:
                return found
    if kind.rows is not None:
        for index, row in enumerate(value):
            found = violation(kind.rows, row, f"{where}[{index}]")
            if found is not None:
                return found
    return None


def violation(record: Record, row: Any, where: str | None = None) -> str | None:
    """The first rule of ``record`` that ``row`` breaks, said in words; None if none.

    Args:
        record: the table entry to check against.
        row: the decoded msgpack array (for a message, including its type id).
        where: how to name the row in the answer (default: the class name).
    Returns:
        ``"<where>.<field>: expected <rule>, got <what>"`` or None.
    """
    where = record.cls.__name__ if where is None else where
    for rule in record.shape:
        if not rule.holds(row):
            return f"{where}: expected {rule}, got {rule.seen(row)}"
    for field, value in zip(record.fields, row[record.offset :], strict=True):
        found = _kind_violation(field.kind, value, f"{where}.{field.name}")
        if found is not None:
            return found
    return None


def explain(cls: type[Message], row: list[Any]) -> NoReturn:
    """Raise the ``DecodeError`` that says which field of ``row`` broke which rule.

    Called by the generated decoders once their fast check refused ``row``.

    Raises:
        DecodeError: always.
    """
    found = violation(RECORDS[cls], row)
    if found is None:  # fail closed: the fast path refused what the table accepts
        raise DecodeError(f"malformed {cls.__name__} (the fast check and the rules disagree)")
    raise DecodeError(found)


# --- the fast path (generated) -------------------------------------------------------------

GENERATED = Path(__file__).with_name("_codec_generated.py")


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _condition(kind: Kind, value: str) -> list[tuple[str, str]]:
    """The rules of ``kind`` on the variable ``value``: (holds, refuses) expressions."""
    terms = [(rule.source(value), rule.refuses(value)) for rule in kind.rules]
    if kind.items is not None:
        inner = " and ".join(holds for holds, _ in _condition(kind.items, "item"))
        every = f"all({inner} for item in {value})"
        terms.append((every, f"not {every}"))
    return terms


def _refused(terms: list[tuple[str, str]]) -> str:
    """The expression true when one of ``terms`` does not hold (they run in order)."""
    if len(terms) == 1:
        return terms[0][1]
    return "not (" + " and ".join(holds for holds, _ in terms) + ")"


def _row_expression(record: Record, value: str) -> str:
    """The msgpack array of the instance ``value`` (a message or a member)."""
    parts = [] if record.type_id is None else [str(record.type_id)]
    for field in record.fields:
        attribute = f"{value}.{field.name}"
        rows = field.kind.rows
        if rows is not None and rows.keyed:
            # A tuple of the attributes packs as the same array (an IntEnum as its int).
            assert all(column.kind.to_wire in ("{v}", "int({v})") for column in rows.fields)
            parts.append(f"list(map({_snake(rows.cls.__name__).upper()}_FIELDS, {attribute}))")
        elif rows is not None:
            inner = _row_expression(rows, "item")
            parts.append(f"[{inner} for item in {attribute}]")
        else:
            parts.append(field.kind.to_wire.format(v=attribute))
    return "[" + ", ".join(parts) + "]"


def _fill(record: Record, target: str, indent: str, local: str = "") -> list[str]:
    """Statements making ``target`` an instance of ``record.cls`` from the checked locals
    (named ``local`` + the field's name).

    The values are checked, so the instance is filled through its slots instead of running
    attrs' frozen ``__init__`` again (five times faster; the classes have no validators or
    converters to skip).
    """
    prefix = _snake(record.cls.__name__).upper()
    lines = [f"{indent}{target} = new({record.cls.__name__})"]
    for field in record.fields:
        value = field.kind.from_wire.format(v=local + field.name)
        if field.kind.rows is not None:
            value = f"tuple({local}{field.name}_built)"
        lines.append(f"{indent}SET_{prefix}_{field.name.upper()}({target}, {value})")
    return lines


def _decoder(record: Record) -> list[str]:
    cls = record.cls.__name__
    names = [field.name for field in record.fields]
    shape = [(rule.source("row"), rule.refuses("row")) for rule in record.shape]
    keyed = [f.kind.rows for f in record.fields if f.kind.rows is not None and f.kind.rows.keyed]
    signature = "row: list[Any]"
    if keyed:
        signature += f", known: Mapping[str, {keyed[0].cls.__name__}] = NOTHING"
    lines = [
        f"def decode_{_snake(cls)}({signature}) -> {cls}:",
        f"    if {_refused(shape)}:",
        f"        explain({cls}, row)",
        f"    {', '.join(['_', *names])}{',' if not names else ''} = row",
    ]
    terms = [term for field in record.fields for term in _condition(field.kind, field.name)]
    if terms:
        lines += [f"    if {_refused(terms)}:", f"        explain({cls}, row)"]
    for field in record.fields:
        rows = field.kind.rows
        if rows is None:
            continue
        # The columns become locals named "<field>_<column>" (no clash with the fields).
        local = f"{field.name}_"
        row_shape = [(rule.source("item"), rule.refuses("item")) for rule in rows.shape]
        checks = [
            term for column in rows.fields for term in _condition(column.kind, local + column.name)
        ]
        built = f"{field.name}_built"
        unpack = f"        {', '.join(local + column.name for column in rows.fields)} = item"
        if rows.keyed:
            # Rows equal to what the receiver holds are taken in bulk (reuse_held); the
            # loop checks and builds the others, in place.
            prefix = _snake(rows.cls.__name__).upper()
            pending = f"{field.name}_pending"
            lines += [
                f"    {built}, {pending} = reuse_held(",
                f"        {field.name}, known, {prefix}_FIELDS, {len(rows.fields)},"
                f" {prefix}_TYPED, {prefix}_CELLS, {prefix}_ABSENT",
                "    )",
                f"    for index in {pending}:",
                f"        item = {field.name}[index]",
            ]
        else:
            lines += [
                f"    {built}: list[{rows.cls.__name__}] = []",
                f"    for item in {field.name}:",
            ]
        lines += [
            f"        if {_refused(row_shape)}:",
            f"            explain({cls}, row)",
            unpack,
            f"        if {_refused(checks)}:",
            f"            explain({cls}, row)",
            *_fill(rows, "value", "        ", local),
            f"        {built}[index] = value" if rows.keyed else f"        {built}.append(value)",
        ]
    lines += [*_fill(record, "message", "    "), "    return message"]
    return lines


def _nested(record: Record) -> list[Record]:
    """The records inside ``record``'s fields (the member rows of a push-pull)."""
    rows = [field.kind.rows for field in record.fields if field.kind.rows is not None]
    return [nested for row in rows for nested in [row, *_nested(row)]]


def render(table: Mapping[type[Message], Record] = RECORDS) -> str:
    """The source of ``_codec_generated.py`` for ``table`` (before ruff format).

    Args:
        table: the rule table; tests pass weakened copies to see that they notice.
    Returns:
        Python source text defining ``ROWS`` and ``DECODERS``.
    """
    records = list(table.values())
    nested = {id(row): row for record in records for row in _nested(record)}
    classes = sorted([*(record.cls.__name__ for record in records), "Message"])
    out = [
        '"""Generated from the rule table of _codec_rules.py by its ``main()``: do not edit.',
        "",
        "See _codec_rules.py for how it is derived, why it is checked in, and how to",
        "regenerate it; tests/core/test_codec.py fails when it is out of date.",
        '"""',
        "",
        "from __future__ import annotations",
        "",
        "from collections.abc import Callable, Iterable, Mapping",
        "from itertools import chain, repeat",
        "from operator import attrgetter, eq, itemgetter",
        "from typing import Any, NoReturn",
        "",
        "from .member import Member, Status",
        f"from .messages import {', '.join(classes)}",
        "",
        '__all__ = ["DECODERS", "ROWS"]',
        "",
        "STATUSES = tuple(Status)",
        "#: The default ``known`` of a decoder of keyed rows: nothing held.",
        "NOTHING: Mapping[str, Any] = {}",
        "FIRST = itemgetter(0)",
        "#: Equal to nothing but itself (no decoded cell is ever this object).",
        "NOT_HELD = object()",
        "",
        "",
        "def reuse_held(",
        "    rows: list[Any],",
        "    known: Mapping[Any, Any],",
        "    fields: Callable[[Any], tuple[Any, ...]],",
        "    width: int,",
        "    typed: Callable[[Any], tuple[Any, ...]],",
        "    cells: frozenset[type],",
        "    absent: Any,",
        ") -> tuple[list[Any], Iterable[int]]:",
        '    """Rows equal to the value ``known`` holds under their first cell, taken as',
        "    that value: the list of values (``absent`` where a row is still to check and",
        "    build) and the indices of those rows. A row is equal when its ``typed`` cells",
        "    (the key, which must hash, and those a foreign type could equal: ``True == 1``,",
        "    ``2.0 == 2``) are all of the types in ``cells``, and the whole row equals the",
        "    value's ``fields`` (a str or bytes cell equals only its own type). Runs in C",
        "    whatever the number of rows.",
        "    Not tried when ``known`` is less than half as long as ``rows`` (a joiner's",
        "    first state: few rows can be held, and comparing would only add to building).",
        '    """',
        "    count = len(rows)",
        "    if not (",
        "        2 * len(known) >= count",
        "        and set(map(type, rows)) <= {list}",
        "        and set(map(len, rows)) <= {width}",
        "        and set(map(type, chain.from_iterable(map(typed, rows)))) <= cells",
        "    ):",
        "        return [absent] * count, range(count)",
        "    held = list(map(known.get, map(FIRST, rows), repeat(absent, count)))",
        "    same = list(map(eq, map(tuple, rows), map(fields, held)))",
        "    if all(same):",
        "        return held, ()",
        "    return held, [index for index, equal in enumerate(same) if not equal]",
        "",
        "",
        "def explain(cls: type[Message], row: list[Any]) -> NoReturn:",
        '    """Raise the DecodeError naming the broken rule (the table loads on first use)."""',
        "    from ._codec_rules import explain as explain_by_rules",
        "",
        "    explain_by_rules(cls, row)",
        "",
        "",
        "new = object.__new__",
    ]
    for record in [*nested.values(), *records]:
        prefix = _snake(record.cls.__name__).upper()
        for field in record.fields:
            out.append(
                f"SET_{prefix}_{field.name.upper()} = "
                f'{record.cls.__name__}.__dict__["{field.name}"].__set__'
            )
    for record in nested.values():
        if not record.keyed:
            continue
        prefix = _snake(record.cls.__name__).upper()
        names = ", ".join(f'"{field.name}"' for field in record.fields)
        types = [[r.type for r in f.kind.rules if type(r) is IsType] for f in record.fields]
        # The key, and the cells of types another msgpack type can equal (not str, bytes).
        typed = [i for i, kinds in enumerate(types) if i == 0 or kinds[:1] not in ([str], [bytes])]
        # A field without a type rule (a weakened table in the tests): no row is reused.
        cells = sorted({types[i][0].__name__ for i in typed}) if all(types) else []
        picked = ", ".join(map(str, typed if len(typed) > 1 else typed * 2))  # always a tuple
        out += [
            "",
            f"#: A {record.cls.__name__}'s fields in wire order (its row, as a tuple).",
            f"{prefix}_FIELDS = attrgetter({names})",
            f"#: The cells of a {record.cls.__name__} row whose type is checked, and those types.",
            f"{prefix}_TYPED = itemgetter({picked})",
            f"{prefix}_CELLS = frozenset({{{', '.join(cells)}}})",
            f"#: Stands for a {record.cls.__name__} not held: no row's cell equals its fields.",
            f"{prefix}_ABSENT = new({record.cls.__name__})",
            *(
                f"SET_{prefix}_{field.name.upper()}({prefix}_ABSENT, NOT_HELD)"
                for field in record.fields
            ),
        ]
    for record in records:
        cls = record.cls.__name__
        out += [
            "",
            "",
            f"def row_{_snake(cls)}(message: {cls}) -> list[Any]:",
            f"    return {_row_expression(record, 'message')}",
            "",
            "",
            *_decoder(record),
        ]
    out += [
        "",
        "",
        "#: Per message class, the msgpack array of a message (what ``Packer.pack`` packs).",
        "ROWS: dict[type[Any], Callable[[Any], list[Any]]] = {",
        *(f"    {r.cls.__name__}: row_{_snake(r.cls.__name__)}," for r in records),
        "}",
        "#: Per wire type id, the decoder of a message array (its type id already checked).",
        "DECODERS: dict[int, Callable[[list[Any]], Message]] = {",
        *(f"    {r.type_id}: decode_{_snake(r.cls.__name__)}," for r in records),
        "}",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    """Rewrite ``_codec_generated.py`` from the table, then format it with ruff."""
    import subprocess
    import sys

    GENERATED.write_text(render(), encoding="utf-8")
    subprocess.run([sys.executable, "-m", "ruff", "format", "--quiet", str(GENERATED)], check=True)
    print(f"wrote {GENERATED}")
