"""The Hillstrom MineThatData e-mail experiment (2008): a three-arm randomised trial.

64,000 customers were assigned at random, with probability 1/3 each, to a men's e-mail, a
women's e-mail or no e-mail; visits, conversions and spend were observed over two weeks.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from shelfwise.datasets._frames import contract_frame, json_records, read_csv_typed, row_numbers
from shelfwise.datasets.registry import dataset_file

HILLSTROM_CAMPAIGN_ID = "hillstrom-2008"
HILLSTROM_ARMS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
HILLSTROM_CONTROL = "No E-Mail"
HILLSTROM_DTYPES = {
    "recency": "int64",
    "history_segment": "string",
    "history": "float64",
    "mens": "int64",
    "womens": "int64",
    "zip_code": "string",
    "newbie": "int64",
    "channel": "string",
    "segment": "string",
    "visit": "int64",
    "conversion": "int64",
    "spend": "float64",
}
HILLSTROM_COVARIATES = (
    "recency",
    "history_segment",
    "history",
    "mens",
    "womens",
    "zip_code",
    "newbie",
    "channel",
)


def load_hillstrom(datasets_dir: Path | str | None = None) -> pd.DataFrame:
    """The 64,000 customers in file order: covariates, ``segment`` (the arm) and outcomes.

    Arms: Mens E-Mail 21,307, Womens E-Mail 21,387, No E-Mail 21,306. Outcomes ``visit``,
    ``conversion`` (0/1) and ``spend`` (USD). ``zip_code`` is an area type (Urban,
    Surburban [sic], Rural), not a postcode.
    """
    path = dataset_file("hillstrom_email_rct", "hillstrom.csv.gz", datasets_dir)
    return read_csv_typed(path, HILLSTROM_DTYPES)


def hillstrom_to_campaigns() -> pd.DataFrame:
    """The experiment as one contract ``campaigns`` row, its arms and design in ``attributes``.

    The dates of the e-mails are not published, so ``starts_at``/``ends_at`` are missing.
    """
    design = {
        "arms": list(HILLSTROM_ARMS),
        "control": HILLSTROM_CONTROL,
        "assignment": "uniform random, probability 1/3 per arm",
        "outcome_window_days": 14,
        "source": "Kevin Hillstrom, MineThatData E-Mail Analytics Challenge, 2008",
    }
    values = {
        "campaign_id": HILLSTROM_CAMPAIGN_ID,
        "name": "MineThatData e-mail experiment (Hillstrom, 2008)",
        "campaign_type": "randomised_experiment",
        "channel": "email",
        "attributes": json.dumps(design, separators=(",", ":")),
    }
    return contract_frame("campaigns", values, 1)


def hillstrom_to_treatment_assignments(customers: pd.DataFrame) -> pd.DataFrame:
    """Each customer's assignment as contract ``treatment_assignments``.

    ``unit_id`` is the 1-based row number in the file (the data has no customer id);
    ``arm`` is ``segment``; ``propensity`` is 1/3 by design; ``converted`` is ``conversion``,
    ``revenue`` is ``spend``; ``outcomes`` holds ``visit`` and ``covariates`` the
    pre-treatment features.
    """
    values = {
        "campaign_id": HILLSTROM_CAMPAIGN_ID,
        "unit_id": row_numbers(len(customers)),
        "arm": customers["segment"],
        "propensity": 1.0 / len(HILLSTROM_ARMS),
        "converted": customers["conversion"],
        "revenue": customers["spend"],
        "outcomes": json_records(customers[["visit"]]),
        "covariates": json_records(customers[list(HILLSTROM_COVARIATES)]),
    }
    return contract_frame("treatment_assignments", values, len(customers))
