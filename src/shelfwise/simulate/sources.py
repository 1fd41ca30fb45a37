"""The source systems a retailer's customers are scattered over, and the noise rates as data."""

from __future__ import annotations

from dataclasses import dataclass

# Fields a source system may keep (the rest of customer_records is its id and times).
PERSON_FIELDS = (
    "email", "phone", "first_name", "last_name", "full_name", "address_line", "city",
    "postcode", "country", "date_of_birth", "device_id", "ip", "loyalty_id", "attributes",
)  # fmt: skip
ADDRESS_FIELDS = ("address_line", "city", "postcode")

# Garbage that forms and tills collect: every value here is shared by many persons.
PLACEHOLDER_EMAILS = (
    "test@test.com",
    "noemail@example.com",
    "none@none.com",
    "na@na.com",
    "no@email.com",
)
ZERO_IP = "0.0.0.0"
# Public addresses of the stores' guest Wi-Fi (outside the blocks homes are drawn from).
SHOP_WIFI_IPS = ("12.162.40.17", "209.85.231.104", "64.233.160.9")
# The in-store kiosks and tills: ids of the same shape as any phone's or laptop's.
KIOSK_DEVICE_IDS = ("5f0c2e9a81b34d67", "c41d8e7702fa9b35", "9e6b13a0d4c7f852")


@dataclass(frozen=True)
class SourceSystem:
    """One system that keeps customers: what it keeps, how it numbers and writes them.

    ``presence`` is the probability that a person has an account there; ``source_id`` is
    ``id_prefix`` followed by a number of ``id_digits`` digits; ``phone_format`` is a key of
    :data:`shelfwise.simulate.noise.PHONE_FORMATS`; a system with ``full_name`` in its
    ``fields`` writes ``"Last, First"`` with probability ``surname_first``.
    """

    name: str
    presence: float
    fields: tuple[str, ...]
    id_prefix: str
    id_digits: int
    phone_format: str = "e164"
    surname_first: float = 0.0

    def __post_init__(self) -> None:
        unknown = sorted(set(self.fields) - set(PERSON_FIELDS))
        if unknown:
            raise ValueError(f"source system {self.name}: unknown fields {unknown}")
        if not 0.0 <= self.presence <= 1.0:
            raise ValueError(f"source system {self.name}: presence must lie in [0, 1]")


_CRM_FIELDS = (
    "email", "phone", "first_name", "last_name", "address_line", "city", "postcode", "country",
    "date_of_birth", "loyalty_id", "attributes",
)  # fmt: skip
DEFAULT_SYSTEMS = (
    SourceSystem("web_shop", 0.55, ("email", "first_name", "device_id", "ip"), "", 7),
    SourceSystem(
        "crm",
        0.65,
        _CRM_FIELDS,
        "CRM-",
        8,
    ),
    SourceSystem(
        "loyalty_app",
        0.45,
        ("loyalty_id", "first_name", "email", "device_id", "attributes"),
        "LA",
        9,
    ),
    SourceSystem("email", 0.35, ("email", "first_name"), "sub_", 7),
    SourceSystem(
        "support", 0.2, ("full_name", "phone"), "SUP", 6, phone_format="national", surname_first=0.2
    ),
    SourceSystem(
        "returns",
        0.15,
        ("first_name", "last_name", "address_line", "city", "postcode", "country"),
        "RMA-",
        6,
    ),
)


_RATES = (
    "duplicate", "duplicate_new_email", "typo", "nickname", "moved", "street_abbreviation",
    "email_variant", "date_transposed", "placeholder_email", "household_landline",
    "shop_wifi_ip", "zero_ip", "kiosk_device", "other_phone_format", "case_variant",
    "whitespace", "missing", "empty_string_share",
)  # fmt: skip


@dataclass(frozen=True)
class FragmentationConfig:
    """How persons scatter over ``systems`` and how each record is corrupted.

    Each rate is the probability per eligible cell (a field the record's system keeps; for
    ``nickname`` a person who has one, for ``household_landline`` a person with a landline, for
    ``date_transposed`` a birth day up to 12). Content noise is applied first, then garbage
    identifiers, then formatting, then ``missing`` (of which ``empty_string_share`` are written
    as ``""`` rather than left null), so every rate is measured against the same cells.
    ``moved`` is per record that keeps an address: it holds the person's previous address and
    was last updated before ``moved_before``. On ``country`` a ``case_variant`` is another way
    of writing the country (``USA``, ``United States``, ``us``, ...).
    """

    systems: tuple[SourceSystem, ...] = DEFAULT_SYSTEMS
    duplicate: float = 0.06
    duplicate_new_email: float = 0.5
    typo: float = 0.04
    nickname: float = 0.25
    moved: float = 0.12
    street_abbreviation: float = 0.15
    email_variant: float = 0.08
    date_transposed: float = 0.03
    placeholder_email: float = 0.03
    household_landline: float = 0.25
    shop_wifi_ip: float = 0.06
    zero_ip: float = 0.03
    kiosk_device: float = 0.05
    other_phone_format: float = 0.2
    case_variant: float = 0.06
    whitespace: float = 0.04
    missing: float = 0.06
    empty_string_share: float = 0.3
    text_noise_fields: tuple[str, ...] = (
        "first_name", "last_name", "full_name", "address_line", "city",
    )  # fmt: skip
    start: str = "2016-01-01"
    end: str = "2018-01-01"
    moved_before: str = "2016-10-01"
    placeholder_emails: tuple[str, ...] = PLACEHOLDER_EMAILS
    shop_wifi_ips: tuple[str, ...] = SHOP_WIFI_IPS
    kiosk_device_ids: tuple[str, ...] = KIOSK_DEVICE_IDS

    def __post_init__(self) -> None:
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"FragmentationConfig.{name} must lie in [0, 1], got {value}")
        names = [s.name for s in self.systems]
        if len(set(names)) != len(names) or not names:
            raise ValueError("FragmentationConfig.systems: names must be distinct, at least one")

    def system(self, name: str) -> SourceSystem:
        for system in self.systems:
            if system.name == name:
                return system
        raise KeyError(f"no source system {name!r}")
