"""The identity model's settings: every choice of the linkage ladder, as data saved with the model.

Comparisons are written ``"column:kind"`` (``"last_name:name"``), blocking and training rules
``"column+column"`` (``"last_name+date_of_birth"``): strings, so that the settings round-trip
through JSON and MLflow params unchanged, and a reader sees the whole model in one screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from shelfwise.models.settings import Constraints, EstimatorSettings, Interval, Options

LINK_TYPES = ("dedupe_only", "link_only", "link_and_dedupe")

# What each customer-record field is compared with (see shelfwise.identity.comparisons).
DEFAULT_COMPARISONS = (
    "first_name:given_name",
    "last_name:name",
    "date_of_birth:date",
    "email:email",
    "phone:phone",
    "address_line:location",
    "device_id:shared",
    "ip:shared",
    "behaviour:set",
)
# Pairs scored at all: each rule is an equi-join; a pair found by several is scored once.
DEFAULT_BLOCKING = (
    "first_name+last_name",
    "last_name+date_of_birth",
    "first_name+date_of_birth",
    "given_name_canonical+last_name+postcode",
    "email",
    "phone",
    "loyalty_id",
    "postcode+street_number",
    "device_id",
    # Broad: a first name alone; kept while it proposes few pairs (max_pairs_per_rule).
    "first_name",
)
# Expectation maximisation runs once per rule, each estimating the comparisons it does not use.
# Not the date of birth alone: most systems do not keep one, so its block holds too few
# matches for EM (in Splink 5 its m probabilities can underflow to 0 there).
DEFAULT_TRAINING = ("first_name+last_name", "email", "postcode+street_number", "phone")
# Exact keys trusted on their own (the deterministic rung of the ladder).
DEFAULT_KEYS = ("email", "phone", "loyalty_id")

_UNIT = Interval(0.0, 1.0)
_POSITIVE = Interval(0, None, "neither")


@dataclass(frozen=True)
class IdentitySettings(EstimatorSettings):
    """How customer records are linked into persons.

    - ``deterministic_keys``: normalised exact keys linking two records outright, unless the
      key is shared by more than ``max_records_per_key`` records (a household landline, a
      placeholder the normaliser did not know) or, for the ``guarded_keys`` (a phone: a
      household shares its landline) with ``guard_given_names``, the two records name clearly
      different people. An email or a loyalty card is one person's, typos in names or not.
    - ``comparisons``, ``blocking_rules``, ``training_rules``: the Fellegi-Sunter model
      (Splink). u probabilities come from random pairs (``max_pairs_u``), m probabilities from
      expectation maximisation on ``training_sample`` records, the prior from deterministic
      rules assumed to find ``prior_recall`` of the true matches.
    - ``threshold``: a scored pair at or above it is a link; pairs with a probability in
      ``[review_low, review_high)`` also go to the review queue.
    - ``veto_conflicts``: a pair whose given names disagree, and whose dates of birth do not
      agree (they differ, or one is unknown), is never linked by the model, whatever its
      other fields (a household shares address, phone, IP
      and often the surname; independence of fields does not hold there), unless one of the
      person-unique identifiers ``veto_unless_same`` agrees (a national id, a loyalty card).
    - ``max_pairs_per_rule``: a blocking rule that would propose more pairs than this (counted
      on the data before scoring) is skipped for that run and reported: at a million records
      a rule on two common values (a street number and a suburb) pairs millions of strangers,
      while on a few thousand records the same rule is cheap and finds the hardest matches.
    - ``shared_value_limit``: a device or IP seen on more records than this is a shop kiosk, a
      shop's Wi-Fi or a carrier's gateway: it is blanked before linking.
    """

    link_type: str = "dedupe_only"
    comparisons: tuple[str, ...] = DEFAULT_COMPARISONS
    blocking_rules: tuple[str, ...] = DEFAULT_BLOCKING
    training_rules: tuple[str, ...] = DEFAULT_TRAINING
    deterministic_keys: tuple[str, ...] = DEFAULT_KEYS
    max_records_per_key: int = 12
    guard_given_names: bool = True
    guarded_keys: tuple[str, ...] = ("phone",)
    threshold: float = 0.5
    review_low: float = 0.3
    review_high: float = 0.7
    veto_conflicts: bool = True
    veto_unless_same: tuple[str, ...] = ("email", "loyalty_id")
    shared_value_limit: int = 12
    term_frequencies: bool = True
    max_pairs_per_rule: float = 2e6
    max_pairs_u: float = 1e6
    training_sample: int = 200_000
    em_max_pairs: float = 3e6
    prior_recall: float = 0.8
    max_iterations: int = 25
    seed: int = 42
    default_region: str = "US"
    attribute_columns: tuple[str, ...] = ()

    constraints: ClassVar[Constraints] = {
        "link_type": (Options(LINK_TYPES),),
        "comparisons": (tuple,),
        "blocking_rules": (tuple,),
        "training_rules": (tuple,),
        "deterministic_keys": (tuple,),
        "max_records_per_key": (Interval(2, None, integer=True),),
        "guard_given_names": (bool,),
        "guarded_keys": (tuple,),
        "threshold": (Interval(0.0, 1.0, "neither"),),
        "review_low": (_UNIT,),
        "review_high": (_UNIT,),
        "veto_conflicts": (bool,),
        "veto_unless_same": (tuple,),
        "shared_value_limit": (Interval(2, None, integer=True),),
        "term_frequencies": (bool,),
        "max_pairs_per_rule": (_POSITIVE,),
        "max_pairs_u": (_POSITIVE,),
        "training_sample": (Interval(100, None, integer=True),),
        "em_max_pairs": (_POSITIVE,),
        "prior_recall": (Interval(0.0, 1.0, "right"),),
        "max_iterations": (Interval(1, None, integer=True),),
        "seed": (int,),
        "default_region": (str,),
        "attribute_columns": (tuple,),
    }

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.review_low <= self.threshold <= self.review_high:
            raise ValueError(
                "IdentitySettings: review_low <= threshold <= review_high must hold, got "
                f"{self.review_low}, {self.threshold}, {self.review_high}"
            )
        for spec in self.comparisons:
            column, _, kind = spec.partition(":")
            if not column or not kind:
                raise ValueError(f"IdentitySettings.comparisons: {spec!r} is not 'column:kind'")
        for rules, name in ((self.blocking_rules, "blocking_rules"), (self.training_rules, "")):
            for rule in rules:
                if not all(rule_columns(rule)):
                    raise ValueError(
                        f"IdentitySettings.{name or 'training_rules'}: {rule!r} is not "
                        "'column+column'"
                    )

    @property
    def comparison_columns(self) -> tuple[str, ...]:
        return tuple(spec.partition(":")[0] for spec in self.comparisons)


def rule_columns(rule: str) -> tuple[str, ...]:
    """``"last_name+date_of_birth"`` -> ``("last_name", "date_of_birth")``."""
    return tuple(part.strip() for part in rule.split("+"))


FEBRL_SETTINGS = IdentitySettings(
    comparisons=(
        "first_name:given_name",
        "last_name:name",
        "date_of_birth:date",
        "street_number:exact",
        "address_line:address",
        "city:city",
        "postcode:postcode",
        "state:exact",
        "soc_sec_id:identifier",
    ),
    blocking_rules=(
        "last_name+date_of_birth",
        "first_name+date_of_birth",
        "soc_sec_id",
        "postcode+address_line",
        "date_of_birth+city",
        "date_of_birth+postcode",
        "date_of_birth+street_number",
        "first_name+last_name+city",
        "first_name+last_name+postcode",
        "first_name+last_name+street_number",
        # Broad rules: kept on small files, skipped by max_pairs_per_rule on large ones.
        "first_name+last_name",
        "postcode+street_number",
        "first_name+city",
        "last_name+city",
        "city+street_number",
        "address_line",
    ),
    training_rules=("first_name+last_name", "date_of_birth"),
    deterministic_keys=(),
    veto_unless_same=("soc_sec_id",),
    attribute_columns=("soc_sec_id", "state"),
    default_region="AU",
)
"""Settings for person files with national ids and no contact details (FEBRL's shape)."""
