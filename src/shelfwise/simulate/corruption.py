"""Corrupting true values the way source systems do, one logged noise kind at a time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from shelfwise.simulate._frames import masked, objects
from shelfwise.simulate.noise import (
    COUNTRY_VARIANTS,
    PHONE_FORMATS,
    abbreviate_street,
    case_variant,
    email_variant,
    format_phone,
    transpose_day_month,
    typo,
    whitespace_variant,
)
from shelfwise.simulate.sources import PERSON_FIELDS, ZERO_IP, FragmentationConfig


class Corruption:
    """Draws which eligible cells a noise kind hits, changes them and logs each change."""

    def __init__(
        self,
        cells: dict[str, np.ndarray],
        keeps: dict[str, np.ndarray],
        rng: np.random.Generator,
        log: list[tuple[int, str, str]],
    ) -> None:
        self.cells, self.keeps, self.rng, self.log = cells, keeps, rng, log
        self.size = next(iter(keeps.values())).size

    def pick(self, eligible: np.ndarray, rate: float) -> np.ndarray:
        return np.flatnonzero(eligible & (self.rng.random(self.size) < rate))

    def apply(
        self,
        field: str,
        kind: str,
        rate: float,
        change: Callable[[Any], Any],
        *,
        only: np.ndarray | None = None,
    ) -> None:
        eligible = self.keeps[field] if only is None else self.keeps[field] & only
        for row in self.pick(eligible, rate):
            self.cells[field][row] = change(self.cells[field][row])
            self.log.append((int(row), field, kind))

    def replace(self, field: str, kind: str, rows: np.ndarray, pool: Sequence[object]) -> None:
        values = np.asarray(pool, dtype=object)
        self.cells[field][rows] = values[self.rng.integers(values.size, size=rows.size)]
        self.log.extend((int(r), field, kind) for r in rows)


def corrupt(
    cells: dict[str, np.ndarray],
    keeps: dict[str, np.ndarray],
    people: pd.DataFrame,
    person: np.ndarray,
    system: np.ndarray,
    rng: np.random.Generator,
    config: FragmentationConfig,
    log: list[tuple[int, str, str]],
) -> None:
    """Content noise, then garbage identifiers, then formatting, then missing values."""
    noise = Corruption(cells, keeps, rng, log)
    nickname = objects(people["nickname"])[person]
    has_nickname = np.array([v is not None for v in nickname], dtype=bool)
    for row in noise.pick(
        (keeps["first_name"] | keeps["full_name"]) & has_nickname, config.nickname
    ):
        cells["first_name"][row] = nickname[row]
        log.append(
            (int(row), "first_name" if keeps["first_name"][row] else "full_name", "nickname")
        )
    surname_first = np.array([s.surname_first for s in config.systems])[system]
    cells["full_name"] = np.where(
        rng.random(person.size) < surname_first,
        cells["last_name"] + ", " + cells["first_name"],
        cells["first_name"] + " " + cells["last_name"],
    )
    for field in config.text_noise_fields:
        noise.apply(field, "typo", config.typo, lambda v: typo(v, rng))
    noise.apply(
        "address_line", "street_abbreviation", config.street_abbreviation, abbreviate_street
    )
    noise.apply("email", "email_variant", config.email_variant, lambda v: email_variant(v, rng))
    dob = pd.DatetimeIndex(cells["date_of_birth"])
    swappable = np.asarray((dob.day <= 12) & (dob.day != dob.month))
    noise.apply(
        "date_of_birth",
        "date_transposed",
        config.date_transposed,
        transpose_day_month,
        only=swappable,
    )
    _garbage(noise, people, person, config)
    _phone_layouts(noise, system, config)
    for field in (*config.text_noise_fields, "email"):
        noise.apply(field, "case_variant", config.case_variant, lambda v: case_variant(v, rng))
    countries = COUNTRY_VARIANTS
    noise.apply(
        "country",
        "case_variant",
        config.case_variant,
        lambda _: countries[int(rng.integers(len(countries)))],
    )
    for field in (*config.text_noise_fields, "email"):
        noise.apply(field, "whitespace", config.whitespace, lambda v: whitespace_variant(v, rng))
    for field in PERSON_FIELDS:
        rows = noise.pick(keeps[field], config.missing)
        blank = rng.random(rows.size) < config.empty_string_share
        textual = field not in ("date_of_birth", "attributes")
        cells[field][rows] = masked(blank & textual, np.full(rows.size, "", dtype=object))
        log.extend((int(r), field, "missing") for r in rows)


def _garbage(
    noise: Corruption, people: pd.DataFrame, person: np.ndarray, config: FragmentationConfig
) -> None:
    """Identifiers many persons share: placeholders, household landlines, shop Wi-Fi, kiosks."""
    keeps, rng = noise.keeps, noise.rng
    rows = noise.pick(keeps["email"], config.placeholder_email)
    noise.replace("email", "placeholder_email", rows, config.placeholder_emails)
    landline = objects(people["landline"])[person]
    has_landline = np.array([v is not None for v in landline], dtype=bool)
    rows = noise.pick(keeps["phone"] & has_landline, config.household_landline)
    noise.cells["phone"][rows] = landline[rows]
    noise.log.extend((int(r), "phone", "household_landline") for r in rows)
    draw = rng.random(person.size)
    wifi = keeps["ip"] & (draw < config.shop_wifi_ip)
    zero = keeps["ip"] & ~wifi & (draw < config.shop_wifi_ip + config.zero_ip)
    noise.replace("ip", "shop_wifi_ip", np.flatnonzero(wifi), config.shop_wifi_ips)
    noise.replace("ip", "zero_ip", np.flatnonzero(zero), (ZERO_IP,))
    rows = noise.pick(keeps["device_id"], config.kiosk_device)
    noise.replace("device_id", "kiosk_device", rows, config.kiosk_device_ids)


def _phone_layouts(noise: Corruption, system: np.ndarray, config: FragmentationConfig) -> None:
    """Each system writes phones its own way; ``other_phone_format`` of them another way."""
    layout = np.array([s.phone_format for s in config.systems], dtype=object)[system]
    layouts = np.array(list(PHONE_FORMATS), dtype=object)
    for row in noise.pick(noise.keeps["phone"], config.other_phone_format):
        choices = layouts[layouts != layout[row]]
        layout[row] = choices[int(noise.rng.integers(choices.size))]
        noise.log.append((int(row), "phone", "other_phone_format"))
    kept = np.flatnonzero(noise.keeps["phone"])
    phones = noise.cells["phone"]
    phones[kept] = [format_phone(p, f) for p, f in zip(phones[kept], layout[kept], strict=True)]
