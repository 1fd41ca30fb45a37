"""The API's request and response bodies; FastAPI turns a violation into a 422 naming the field."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shelfwise.data.contract.tables import EVENT_TYPES
from shelfwise.recommend.rules import SCOPES

MAX_K = 100
MAX_BATCH = 1000
MAX_SERIES = 1000
MAX_KNOWN_ROWS = 10_000
Id = Field(default=None, min_length=1, max_length=128)
Scope = Literal["all", "cross_sell", "up_sell", "discovery", "buy_again"]
EventKind = Literal[
    "view", "click", "add_to_cart", "remove_from_cart", "purchase", "search", "return", "login"
]
if set(SCOPES) != set(get_args(Scope)) or set(EVENT_TYPES) != set(get_args(EventKind)):
    raise ImportError("the API's scopes or event kinds differ from the rules' and the contract's")


class Strict(BaseModel):
    """A request body: unknown fields refused, and no text with a NUL character (PostgreSQL
    cannot store one, so the audit log or the registry's history would fail after the fact)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if _holds_nul(value):
            raise ValueError("text may not contain a NUL character (\\x00)")
        return value


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    return False


class RequestContext(Strict):
    """What the page knows: its kind, the basket, the category shown, the device, a segment."""

    page: str | None = Field(default=None, max_length=64)
    basket: list[str] = Field(default_factory=list, max_length=200)
    category: str | None = Field(default=None, max_length=128)
    device: str | None = Field(default=None, max_length=64)
    segment: str | None = Field(default=None, max_length=64)


class Filters(Strict):
    """Skus never to show in this response (on top of the tenant's rules)."""

    exclude_skus: list[str] = Field(default_factory=list, max_length=1000)


class RecommendationRequest(Strict):
    person_id: str | None = Id
    session_id: str | None = Id
    device_id: str | None = Id
    context: RequestContext = Field(default_factory=RequestContext)
    k: int = Field(default=10, ge=1, le=MAX_K)
    scope: Scope = "all"
    filters: Filters = Field(default_factory=Filters)

    @model_validator(mode="after")
    def _someone(self) -> RecommendationRequest:
        if not (self.person_id or self.session_id or self.device_id):
            raise ValueError(
                "give a person_id, or for an anonymous visitor a session_id or device_id"
            )
        return self

    @property
    def subject(self) -> str:
        """The key the decision is for: the person, else the session, else the device."""
        if self.person_id:
            return self.person_id
        return f"session:{self.session_id}" if self.session_id else f"device:{self.device_id}"


class Item(BaseModel):
    sku: str
    rank: int
    score: float | None
    source: str
    explanation: str


class RecommendationResponse(BaseModel):
    request_id: str
    person_id: str
    items: list[Item]
    model_version: str | None
    variant: str
    fallback: str | None = Field(
        description="the stage that answered when the model could not: last_good, "
        "segment_popularity or popularity (null: the model answered)"
    )
    cached: bool


class Event(Strict):
    kind: EventKind
    person_id: str | None = Id
    session_id: str | None = Id
    sku: str | None = Field(default=None, min_length=1, max_length=128)
    occurred_at: datetime
    quantity: float = Field(default=1.0, ge=0)
    price: float | None = Field(default=None, ge=0)
    order_id: str | None = Id
    device: str | None = Field(default=None, max_length=64)
    page: str | None = Field(default=None, max_length=64)
    request_id: str | None = Field(
        default=None,
        max_length=64,
        description="the decision that showed the item, for attribution (else the person's "
        "latest decision within the attribution window that showed it)",
    )

    @model_validator(mode="after")
    def _someone(self) -> Event:
        if not (self.person_id or self.session_id):
            raise ValueError("an event needs a person_id or a session_id")
        return self


class EventsAccepted(BaseModel):
    accepted: int
    persons: int
    cache_entries_dropped: int
    seconds: float


class CatalogueChange(Strict):
    """A stock level (for one store, or the chain's total without ``store_id``) and/or a
    price (and cost) of one sku; ``at`` lets a late stock report be ignored."""

    sku: str = Field(min_length=1, max_length=128)
    on_hand: float | None = Field(default=None, ge=0)
    store_id: str | None = Id
    price: float | None = Field(default=None, ge=0)
    cost: float | None = Field(default=None, ge=0)
    at: datetime | None = None

    @model_validator(mode="after")
    def _something(self) -> CatalogueChange:
        if self.on_hand is None and self.price is None:
            raise ValueError("a change needs on_hand or price")
        return self


class ChangesApplied(BaseModel):
    applied: int
    stale: int = Field(description="stock reports older than what the service already knew")
    unknown_skus: list[str]


class FeedbackRow(BaseModel):
    variant: str
    model_version: str
    segment: str
    decisions: int
    items_shown: int
    clicks: int
    add_to_carts: int
    purchases: int
    revenue: float
    click_through: float
    conversion: float
    revenue_per_decision: float


class FeedbackReport(BaseModel):
    rows: list[FeedbackRow]
    unattributed: int


class PlannedCovariates(BaseModel):
    """Known covariates planned for one series in one forecast period, overlaying what the
    forecaster was given at fit: ``{"series_id": "s1", "period_start": "2024-10-07",
    "display_stores": 12, "mailer_stores": 0}``. The covariates are the model's own known
    covariates (``known_covariates`` in ``/ready``); one left out keeps its planned value."""

    model_config = ConfigDict(extra="allow")
    __pydantic_extra__: dict[str, Annotated[float, Field(allow_inf_nan=False)]] = Field(init=False)

    series_id: str = Field(min_length=1, max_length=128)
    period_start: date

    @property
    def values(self) -> dict[str, float]:
        """The covariate values this row carries (name -> value)."""
        return dict(self.model_extra or {})


class ForecastRequest(Strict):
    series_ids: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        min_length=1, max_length=MAX_SERIES
    )
    horizon: int | None = Field(
        default=None,
        ge=1,
        description="periods ahead, at most the forecaster's horizon (default: all of it)",
    )
    known: list[PlannedCovariates] = Field(
        default_factory=list,
        max_length=MAX_KNOWN_ROWS,
        description="planned promotions (known covariates) per series and forecast period",
    )


class Forecast(BaseModel):
    series_id: str
    period_start: date
    forecast: float
    lower: float
    upper: float
    demand_class: str
    model: str = Field(description="what made it: global, a tier (department:...) or baseline")


class ForecastResponse(BaseModel):
    model_version: str | None
    interval_level: float = Field(description="the share of outcomes [lower, upper] should hold")
    last_observed_period: date
    forecasts: list[Forecast]
    segment_models: dict[str, str] = Field(
        default_factory=dict,
        description="the departments answered by their own adopted model, with its version",
    )


class Alert(BaseModel):
    """An ML alert: what happened, how grave, what to do (``link``) and what was done."""

    id: int
    type: str
    severity: str
    status: str
    model_name: str | None
    version: str | None
    title: str
    message: str
    link: str | None
    action: str | None
    action_notes: str | None
    actor: str | None
    created_at: datetime
    read_at: datetime | None
    actioned_at: datetime | None


class AlertActionRequest(Strict):
    action: Literal["approve", "dismiss"]
    notes: str = Field("", max_length=4000)


class ReviewRequest(Strict):
    """A reviewer's decision on a model version: approve promotes it, reject archives it."""

    model: str = Field(min_length=1, max_length=255)
    decision: Literal["approve", "reject"]
    notes: str = Field(min_length=1, max_length=4000)


class RollbackRequest(Strict):
    """Make the model's previous champion the champion again, and why."""

    model: str = Field(min_length=1, max_length=255)
    notes: str = Field(min_length=1, max_length=4000)


class RollbackResponse(BaseModel):
    model: str
    champion: str  # the restored version
    archived: str | None  # the champion it replaced


class ModelVersionView(BaseModel):
    version: str
    state: str | None
    registered_at: datetime
    run_id: str | None


class RegisteredModel(BaseModel):
    model: str
    champion: str | None
    challenger: str | None
    rollback_to: str | None = Field(description="the version a rollback would make champion")
    rollback_refused: str | None = Field(description="why there is none to roll back to")
    versions: list[ModelVersionView]


class BacktestComparison(BaseModel):
    window_start: datetime
    window_end: datetime
    primary_metric: str
    version: float
    champion: float | None = Field(description="the champion on the same window")
    gain: float | None = Field(description="relative improvement on the primary metric")


class ImportanceDelta(BaseModel):
    feature: str
    version: float = Field(description="share of this version's total gain")
    champion: float
    delta: float


class ReviewEvidence(BaseModel):
    model: str
    version: str
    state: str | None
    champion: str | None
    primary_metric: str | None
    metrics: dict[str, float]
    champion_metrics: dict[str, float]
    backtest: BacktestComparison | None
    importance_deltas: list[ImportanceDelta]


class ReviewResponse(ReviewEvidence):
    decision: str
    judged_against: str | None = Field(description="the champion when the review was made")


class ExperimentProposal(Strict):
    name: str = Field(min_length=1, max_length=255)
    hypothesis: str = Field(min_length=1, max_length=4000)
    type: str = Field(min_length=1, max_length=64, description="new_feature, new_algorithm, ...")
    model: str = Field(min_length=1, max_length=255)


class ExperimentApproval(Strict):
    rationale: str = Field(min_length=1, max_length=4000)


class ExperimentCompletion(Strict):
    decision: Literal["adopt", "partial_adopt", "reject"]
    rationale: str = Field(min_length=1, max_length=4000)


class ExperimentView(BaseModel):
    id: int
    name: str
    hypothesis: str
    type: str
    model_name: str
    proposer: str
    status: str
    approver: str | None
    approval_rationale: str | None
    decision: str | None
    decision_rationale: str | None
    created_at: datetime
    approved_at: datetime | None
    completed_at: datetime | None


class ExperimentResults(ExperimentView):
    versions: list[dict[str, Any]]
    champion: dict[str, Any]
    shadow: dict[str, Any] = Field(
        default_factory=dict, description="completed shadow tests' comparisons, by version"
    )
