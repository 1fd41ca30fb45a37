"""The merchandisers' file: a tenant's rule policy and overrides, kept outside the code.

``<workspace>/merchandising.json`` (or ``merchandising_file`` in the settings), read when the
service starts, both parts optional::

    {"policy": {"min_margin_rate": 0.1, "max_per_category": 3, "diversity": 0.3},
     "overrides": {"pins": {"1082185": 1}, "blocks": ["6534178"],
                   "person_pins": {"P000000001": {"844179": 2}}, "person_blocks": {}}}

A running ``shelfwise serve`` looks at the file every 10 s (beside the registry's champions)
and decides under what it says from then on; an edit that cannot be read is logged and counted
(``faults["merchandising_file"]``) and the rules read before stay.

``policy`` takes the fields of :class:`~shelfwise.recommend.rules.RulePolicy` (a request's
``scope`` replaces its scope), ``overrides`` those of
:class:`~shelfwise.recommend.overrides.Overrides`: every decision applies them, a request's
``filters.exclude_skus`` adding to the blocks, and the fallbacks leave the blocked skus out too.
No file: the defaults and no overrides. A file that cannot be read stops the service with what
is wrong in it. ``shelfwise quickstart`` writes one where there is none, whose policy leaves out
The Complete Journey's lines that are not merchandise (fuel, coupons, gift cards:
``excluded_categories``).
"""

from __future__ import annotations

import json
from pathlib import Path

from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.rules import RulePolicy
from shelfwise.settings import Settings

PARTS = ("policy", "overrides")


class MerchandisingError(ValueError):
    """The merchandisers' file cannot be read: what is wrong, and in which file."""


def merchandising_file(settings: Settings) -> Path:
    """``merchandising_file``, else the workspace's merchandising.json."""
    return Path(settings.merchandising_file or settings.workspace / "merchandising.json")


def read_merchandising(path: Path) -> tuple[RulePolicy, Overrides]:
    """The file's policy and overrides (the defaults where it or a part is missing)."""
    if not path.exists():
        return RulePolicy(), Overrides()
    try:
        values = json.loads(path.read_text())
        if not isinstance(values, dict):
            raise ValueError(f"expected an object with {' and '.join(PARTS)}")
        unknown = sorted(set(values) - set(PARTS))
        if unknown:
            raise ValueError(f"unknown parts {unknown}; it may hold {', '.join(PARTS)}")
        return (
            RulePolicy.from_dict(values.get("policy") or {}),
            Overrides.from_dict(values.get("overrides") or {}),
        )
    except (ValueError, TypeError) as error:  # JSONDecodeError is a ValueError
        raise MerchandisingError(f"{path}: {error}") from None


def write_merchandising(path: Path, policy: RulePolicy, overrides: Overrides | None = None) -> None:
    """A merchandisers' file that :func:`read_merchandising` reads back as (policy, overrides),
    every field of the policy written out, so that whoever edits it sees what it may set."""
    values = {"policy": policy.to_dict(), "overrides": (overrides or Overrides()).to_dict()}
    path.write_text(json.dumps(values, indent=2) + "\n")
