"""Restoration prompts: SPIRE's "what to remove, and how much", as text and back.

``RestorationPrompt.format()`` writes canonical clauses joined by "; "
("deblur with sigma 1.5; denoise with sigma 25"); ``parse()`` reads them back
exactly. Clauses that are not canonical are kept verbatim as free text, which
the text tower encodes as it is: a user's "remove the rain but keep the blur"
is never thrown away.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vlir.degradations.registry import OPS, get_op

BLIND = "remove all degradation"
"""The blind prompt: restore everything the model finds."""
NOTHING = "keep the image as it is"
"""What an empty, non-blind prompt formats to."""


@dataclass(frozen=True)
class PromptItem:
    """One op to remove, with the numbers the user stated (possibly none)."""

    op: str
    values: tuple[tuple[str, float], ...] = ()

    @classmethod
    def of(cls, op: str, values: Mapping[str, float] | None = None) -> PromptItem:
        """Build an item, quantising numbers to the precision prompts are written with."""
        spec = get_op(op)
        ordered = tuple(
            (name, spec.range_of(name).quantise(values[name]))
            for name in spec.prompt_names
            if values is not None and name in values
        )
        return cls(op, ordered)

    @property
    def stated(self) -> dict[str, float]:
        return dict(self.values)

    def format(self) -> str:
        spec = get_op(self.op)
        if len(self.values) != len(spec.prompt_names):
            return spec.verb
        return spec.describe(self.stated)


@dataclass(frozen=True)
class RestorationPrompt:
    """What to remove: specific ops (with optional strengths), or everything (blind)."""

    items: tuple[PromptItem, ...] = ()
    blind: bool = False
    text: str = ""
    """Free text kept as typed (clauses that are not canonical)."""
    _index: dict[str, PromptItem] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {item.op: item for item in self.items})

    @classmethod
    def blind_prompt(cls, text: str = "") -> RestorationPrompt:
        return cls(blind=True, text=text)

    @classmethod
    def removing(cls, ops: Iterable[str], text: str = "") -> RestorationPrompt:
        """Remove the named ops wholly, with no strengths stated."""
        return cls(tuple(PromptItem.of(op) for op in ops), text=text)

    def removes(self, op: str) -> bool:
        return self.blind or op in self._index

    def item_for(self, op: str) -> PromptItem | None:
        return self._index.get(op)

    def format(self) -> str:
        clauses = [BLIND] if self.blind else [item.format() for item in self.items]
        if self.text:
            clauses.append(self.text)
        return "; ".join(clauses) if clauses else NOTHING

    def __str__(self) -> str:
        return self.format()

    @classmethod
    def parse(cls, text: str) -> RestorationPrompt:
        """Read canonical clauses back; everything else becomes free text."""
        items: list[PromptItem] = []
        free: list[str] = []
        blind = False
        for raw in text.split(";"):
            clause = raw.strip()
            if not clause:
                continue
            canonical = " ".join(clause.lower().split())
            if canonical == BLIND:
                blind = True
                continue
            if canonical == NOTHING:
                continue
            item = _match_clause(canonical)
            if item is None or any(existing.op == item.op for existing in items):
                free.append(clause)
            else:
                items.append(item)
        return cls(tuple(items), blind=blind, text="; ".join(free))


def _match_clause(clause: str) -> PromptItem | None:
    for op in OPS.values():
        match = op.pattern.match(clause)
        if match is None:
            continue
        numbers = [g for g in match.groups() if g is not None]
        if not numbers:
            return PromptItem(op.name)
        return PromptItem.of(op.name, dict(zip(op.prompt_names, map(float, numbers), strict=True)))
    return None
