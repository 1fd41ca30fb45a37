"""Merchandisers' overrides of a recommendation list: skus pinned to a position, skus blocked.

They hold for everyone or for one person, round-trip through JSON (so they can be stored and
edited outside the code) and are applied by :func:`shelfwise.recommend.rules.apply_rules`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Self


@dataclass(frozen=True)
class Overrides:
    """Merchandisers' hand: ``pins`` (sku -> 1-based position) and ``blocks`` (skus) for
    everyone, and ``person_pins`` / ``person_blocks`` keyed by person_id. A person's pin of a
    sku replaces the global pin of that sku; blocks add up and win over pins."""

    pins: Mapping[str, int] = field(default_factory=dict)
    blocks: tuple[str, ...] = ()
    person_pins: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    person_blocks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        pins = {"pins": self.pins} | {f"person_pins[{p!r}]": v for p, v in self.person_pins.items()}
        for where, positions in pins.items():
            for sku, position in positions.items():
                if isinstance(position, bool) or not isinstance(position, int) or position < 1:
                    raise ValueError(
                        f"{where}[{sku!r}]: expected a position from 1, got {position!r}"
                    )
        blocks = {"blocks": self.blocks} | {
            f"person_blocks[{p!r}]": v for p, v in self.person_blocks.items()
        }
        for where, skus in blocks.items():
            if isinstance(skus, str):
                raise ValueError(f"{where}: expected a sequence of skus, got the string {skus!r}")
        # Plain dicts and tuples, so that a JSON round trip gives back an equal object.
        object.__setattr__(self, "pins", dict(self.pins))
        object.__setattr__(self, "blocks", tuple(self.blocks))
        object.__setattr__(self, "person_pins", {p: dict(v) for p, v in self.person_pins.items()})
        object.__setattr__(
            self, "person_blocks", {p: tuple(v) for p, v in self.person_blocks.items()}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pins": dict(self.pins),
            "blocks": list(self.blocks),
            "person_pins": {person: dict(pins) for person, pins in self.person_pins.items()},
            "person_blocks": {person: list(b) for person, b in self.person_blocks.items()},
        }

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> Self:
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"Overrides: unknown fields {sorted(unknown)}")
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))
