"""The merchandisers' file: the service's rule policy, pins and blocks, kept outside the code."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from shelfwise.recommend.overrides import Overrides
from shelfwise.recommend.rules import RulePolicy
from shelfwise.serve.merchandising import merchandising_file, read_merchandising
from shelfwise.serve.tenant import TenantRuntime
from shelfwise.settings import Settings


def test_the_file_gives_the_policy_and_the_overrides(tmp_path: Path) -> None:
    path = merchandising_file(Settings(workspace=tmp_path))
    assert path == tmp_path / "merchandising.json"
    assert read_merchandising(path) == (RulePolicy(), Overrides())  # no file: the defaults
    path.write_text(
        json.dumps(
            {
                "policy": {"max_per_category": 2, "allowed_sensitive": ["age_restricted"]},
                "overrides": {"pins": {"s01": 1}, "blocks": ["s02"]},
            }
        )
    )
    policy, overrides = read_merchandising(path)
    assert policy == RulePolicy(max_per_category=2, allowed_sensitive=("age_restricted",))
    assert overrides == Overrides(pins={"s01": 1}, blocks=("s02",))
    path.write_text(json.dumps({"overrides": {"blocks": ["s02"]}}))
    assert read_merchandising(path) == (RulePolicy(), Overrides(blocks=("s02",)))


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "Expecting property name"),
        ("[]", "expected an object with policy and overrides"),
        ('{"rules": {}}', "unknown parts ['rules']; it may hold policy, overrides"),
        ('{"policy": {"max_per_category": 0}}', "RulePolicy.max_per_category=0"),
        ('{"policy": {"margin_floor": 0.1}}', "RulePolicy: unknown settings ['margin_floor']"),
        ('{"overrides": {"pins": {"s01": 0}}}', "pins['s01']: expected a position from 1"),
    ],
)
def test_a_broken_file_says_what_is_wrong_and_where(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "merchandising.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=r"merchandising\.json: ") as error:
        read_merchandising(path)
    assert says in str(error.value)


def test_every_answer_keeps_the_blocks_and_the_model_the_pins(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    """Blocks hold for the model's answers and the fallbacks alike, a person's own as well as
    everyone's; a pin takes its place in the model's answers."""

    def ask(person: str, k: int = 5) -> Any:
        body = {"person_id": person, "k": k}
        return client.post("/api/v1/recommendations", json=body, headers=as_("a_writer")).json()

    tenant = runtimes["a"]
    before = [item["sku"] for item in ask("p10")["items"]]
    own = [item["sku"] for item in ask("p11")["items"]]
    tenant.overrides = Overrides(
        pins={before[4]: 1}, blocks=(before[0],), person_blocks={"p11": (own[0],)}
    )
    after = ask("p10", 6)  # k 6: the answers for k 5 are in the cache, made before
    skus = [item["sku"] for item in after["items"]]
    assert after["fallback"] is None
    assert before[0] not in skus
    assert skus[0] == before[4]  # pinned first
    theirs = [item["sku"] for item in ask("p11", 6)["items"]]
    assert len(theirs) == 6
    assert not {before[0], own[0]} & set(theirs)  # everyone's block and their own
    tenant.admission.max_in_flight = 0  # shed: the fallbacks
    shed = ask("p12")
    assert shed["fallback"] == "popularity"
    best = [item["sku"] for item in shed["items"]]
    tenant.overrides = Overrides(blocks=(best[0],), person_blocks={"p13": (best[1],)})
    assert best[0] not in [item["sku"] for item in ask("p14")["items"]]
    assert not {best[0], best[1]} & {item["sku"] for item in ask("p13")["items"]}


def test_the_fallbacks_keep_the_policys_excluded_categories(
    client: TestClient, runtimes: dict[str, TenantRuntime], as_: Callable[[str], dict[str, str]]
) -> None:
    """A shed request's best sellers pass the policy's rules on the item: an excluded category
    (fuel, coupons) is never the stranger's second recommendation."""

    def shed(person: str) -> list[str]:
        body = {"person_id": person, "k": 5}
        answer = client.post("/api/v1/recommendations", json=body, headers=as_("a_writer")).json()
        assert answer["fallback"] == "popularity"
        return [item["sku"] for item in answer["items"]]

    tenant = runtimes["a"]
    tenant.admission.max_in_flight = 0  # every request shed: the fallbacks answer
    best = shed("p20")
    catalogue = tenant.catalogue
    category = str(catalogue.category[catalogue.index([best[1]])[0]])
    tenant.policy = RulePolicy(excluded_categories=(category,))
    after = shed("p21")
    assert len(after) == 5
    assert category not in {str(c) for c in catalogue.category[catalogue.index(after)]}
    assert best[0] in after or str(catalogue.category[catalogue.index([best[0]])[0]]) == category
