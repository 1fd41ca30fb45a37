"""Identity resolution: one person across every system, stitched sessions, 360° profiles.

The ladder: customer records are normalised (:mod:`~shelfwise.identity.normalise`), linked by
exact keys (email, phone, loyalty card) where the key is not shared too widely, then by a
Fellegi-Sunter model (Splink 5) over names, date of birth, address, postcode, device, IP and
behaviour (:class:`IdentityModel`); links become persons with stable ids
(:mod:`~shelfwise.identity.graph`); :class:`IdentityResolver` keeps every run in the
workspace, links new records incrementally, applies reviewers' decisions and rolls back.
Then anonymous events are attributed to persons (:func:`stitch_sessions`) and each person
gets a profile (:func:`build_profiles`). Names are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "IdentitySettings": "shelfwise.identity.settings",
    "FEBRL_SETTINGS": "shelfwise.identity.settings",
    "IdentityModel": "shelfwise.identity.model",
    "IdentityResolver": "shelfwise.identity.resolver",
    "ResolveReport": "shelfwise.identity.resolver",
    "NormaliseSettings": "shelfwise.identity.normalise",
    "normalise_email": "shelfwise.identity.normalise",
    "normalise_phone": "shelfwise.identity.normalise",
    "normalise_record": "shelfwise.identity.normalise",
    "cluster_records": "shelfwise.identity.graph",
    "StitchSettings": "shelfwise.identity.sessions",
    "stitch_sessions": "shelfwise.identity.sessions",
    "evaluate_stitching": "shelfwise.identity.sessions",
    "build_profiles": "shelfwise.identity.profiles",
}
__all__ = [
    "FEBRL_SETTINGS",
    "IdentityModel",
    "IdentityResolver",
    "IdentitySettings",
    "NormaliseSettings",
    "ResolveReport",
    "StitchSettings",
    "build_profiles",
    "cluster_records",
    "evaluate_stitching",
    "normalise_email",
    "normalise_phone",
    "normalise_record",
    "stitch_sessions",
]

if TYPE_CHECKING:
    from shelfwise.identity.graph import cluster_records
    from shelfwise.identity.model import IdentityModel
    from shelfwise.identity.normalise import (
        NormaliseSettings,
        normalise_email,
        normalise_phone,
        normalise_record,
    )
    from shelfwise.identity.profiles import build_profiles
    from shelfwise.identity.resolver import IdentityResolver, ResolveReport
    from shelfwise.identity.sessions import StitchSettings, evaluate_stitching, stitch_sessions
    from shelfwise.identity.settings import FEBRL_SETTINGS, IdentitySettings


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'shelfwise.identity' has no attribute {name!r}")
