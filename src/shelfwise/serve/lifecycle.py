"""The lifecycle's endpoints: the ML alert inbox, the registered models (listed, reviewed,
rolled back) and their cards, and experiments (listed, read, proposed, approved, their
results, completed).

``GET /ml-alerts?status=unread``, ``PATCH /ml-alerts/{id}/read``, ``GET /models`` (every
registered model and its versions' states) and ``GET /models/{version}/card`` for readers;
``PATCH /ml-alerts/{id}/action`` (approve or dismiss, with notes) and
``GET /models/{version}/review`` (the evidence: metrics and backtests beside the champion's,
feature-importance deltas), ``POST /models/{version}/review`` (approve promotes the version
to champion, reject archives it; the answer carries the same evidence) and
``POST /models/rollback`` (the previous champion back) for reviewers. Every
change is recorded in the registry's history and the audit log; a refused move is a 409 that
says why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request

from shelfwise.lifecycle import ModelRegistry, TransitionRefused
from shelfwise.lifecycle.alerts import AlertInbox, AlertNotFound
from shelfwise.lifecycle.cards import card_markdown, model_card
from shelfwise.lifecycle.experiments import ExperimentNotFound, Experiments
from shelfwise.lifecycle.registry import VersionNotFound
from shelfwise.lifecycle.review import review_evidence
from shelfwise.lifecycle.shadow import COMPARISON_WINDOW, MIN_SAMPLES, ShadowTests
from shelfwise.ops.states import (
    AlertAction,
    AlertStatus,
    ExperimentDecision,
    ExperimentStatus,
    RegistryState,
)
from shelfwise.serve.auth import Principal, requires
from shelfwise.serve.schemas import (
    Alert,
    AlertActionRequest,
    ExperimentApproval,
    ExperimentCompletion,
    ExperimentProposal,
    ExperimentResults,
    ExperimentView,
    RegisteredModel,
    ReviewEvidence,
    ReviewRequest,
    ReviewResponse,
    RollbackRequest,
    RollbackResponse,
)
from shelfwise.serve.tenant import TenantRuntime

TenantOf = Callable[[Request, Principal], TenantRuntime]
# An alert's or an experiment's id: a row id, so past a database integer is a 422, not a 500
RowId = Annotated[int, Path(ge=1, le=2**31 - 1)]


def lifecycle_router(tenant_of: TenantOf) -> APIRouter:
    router = APIRouter(tags=["lifecycle"])

    def governed(request: Request, principal: Principal) -> tuple[ModelRegistry, AlertInbox]:
        runtime = tenant_of(request, principal)
        if runtime.registry is None or runtime.alerts is None:
            raise HTTPException(503, f"tenant {runtime.name!r} has no model registry here")
        return runtime.registry, runtime.alerts

    @router.get("/ml-alerts", response_model=list[Alert])
    def alerts(
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
        status: Annotated[AlertStatus | None, Query()] = None,
    ) -> list[dict[str, Any]]:
        """The tenant's ML alerts, newest first (``status``: unread, read or actioned)."""
        _, inbox = governed(request, principal)
        return inbox.list(status)

    @router.patch("/ml-alerts/{alert_id}/read", response_model=Alert)
    def read(
        alert_id: RowId,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
    ) -> dict[str, Any]:
        _, inbox = governed(request, principal)
        try:
            return inbox.read(alert_id, principal.name)
        except AlertNotFound as error:
            raise HTTPException(404, str(error)) from None

    @router.patch("/ml-alerts/{alert_id}/action", response_model=Alert)
    def act(
        alert_id: RowId,
        body: AlertActionRequest,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
    ) -> dict[str, Any]:
        """Approve or dismiss, once; approving a pending promotion promotes its version."""
        _, inbox = governed(request, principal)
        try:
            return inbox.act(alert_id, AlertAction(body.action), principal.name, body.notes)
        except AlertNotFound as error:
            raise HTTPException(404, str(error)) from None
        except TransitionRefused as error:
            raise HTTPException(409, str(error)) from None

    @router.get("/models", response_model=list[RegisteredModel])
    def models(
        request: Request, principal: Annotated[Principal, Depends(requires("reader"))]
    ) -> list[dict[str, Any]]:
        """Every registered model: champion, challenger and each version's state."""
        registry, _ = governed(request, principal)
        return registry.models()

    @router.post(
        "/models/rollback",
        response_model=RollbackResponse,
        responses={404: {"description": "no such model"}, 409: {"description": "refused"}},
    )
    def rollback(
        body: RollbackRequest,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
    ) -> dict[str, Any]:
        """Make the model's previous champion the champion again (the current one is
        archived), recorded with the reviewer and the notes; the service serves it from its
        next champion check."""
        registry, _ = governed(request, principal)
        before = registry.tracker.get_alias_version(body.model, RegistryState.CHAMPION.value)
        try:
            restored = registry.rollback(body.model, actor=principal.name, reason=body.notes)
        except VersionNotFound as error:
            raise HTTPException(404, str(error)) from None
        except TransitionRefused as error:
            raise HTTPException(409, str(error)) from None
        return {"model": body.model, "champion": restored, "archived": before}

    @router.get("/models/{version}/card")
    def card(
        version: str,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
        model: Annotated[str, Query(min_length=1, max_length=255)],
    ) -> dict[str, Any]:
        """The version's model card: purpose, owner, training data and lineage, metrics
        overall and per segment, limitations, state and every move with who and why (also as
        ``markdown``)."""
        registry, _ = governed(request, principal)
        try:
            found = model_card(registry, model, version)
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        return {**found, "markdown": card_markdown(found)}

    @router.get(
        "/models/{version}/review",
        response_model=ReviewEvidence,
        responses={404: {"description": "no such model version"}},
    )
    def evidence(
        version: str,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
        model: Annotated[str, Query(min_length=1, max_length=255)],
    ) -> dict[str, Any]:
        """What to review: the version's metrics beside the champion's, their backtests on the
        same window, and the feature-importance deltas (LightGBM gain shares)."""
        registry, _ = governed(request, principal)
        try:
            return review_evidence(registry, model, version)
        except VersionNotFound as error:
            raise HTTPException(404, str(error)) from None

    @router.post(
        "/models/{version}/review",
        response_model=ReviewResponse,
        responses={404: {"description": "no such model version"}, 409: {"description": "refused"}},
    )
    def review(
        version: str,
        body: ReviewRequest,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
    ) -> dict[str, Any]:
        """Approve (promote to champion) or reject (archive) a version, with the reviewer's
        notes; the answer carries the evidence it was judged on (metrics beside the
        champion's, backtests on the same window, feature-importance deltas)."""
        registry, _ = governed(request, principal)
        try:
            before = review_evidence(registry, body.model, version)
        except VersionNotFound as error:
            raise HTTPException(404, str(error)) from None
        to = RegistryState.CHAMPION if body.decision == "approve" else RegistryState.ARCHIVED
        try:
            registry.transition(
                body.model,
                version,
                to,
                actor=principal.name,
                reason=f"review: {body.notes}",
                metrics=before["metrics"],
            )
        except TransitionRefused as error:
            raise HTTPException(409, str(error)) from None
        champion = registry.tracker.get_alias_version(body.model, RegistryState.CHAMPION.value)
        return {
            **before,
            "decision": body.decision,
            "state": to.value,
            "champion": champion,
            "judged_against": before["champion"],
        }

    @router.get("/experiments", response_model=list[ExperimentView])
    def experiments(
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
        status: Annotated[ExperimentStatus | None, Query()] = None,
    ) -> list[dict[str, Any]]:
        """The tenant's experiments, newest first (``status``: proposed, approved,
        in_progress, shadow_testing, completed or rejected)."""
        return experiments_of(request, principal).list(status)

    @router.get(
        "/experiments/{experiment_id}",
        response_model=ExperimentView,
        responses={404: {"description": "no such experiment"}},
    )
    def experiment(
        experiment_id: RowId,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
    ) -> dict[str, Any]:
        """One experiment: its status, approval and decision."""
        try:
            return experiments_of(request, principal).get(experiment_id)
        except ExperimentNotFound as error:
            raise HTTPException(404, str(error)) from None

    @router.post("/experiments", response_model=ExperimentView, status_code=201)
    def propose(
        body: ExperimentProposal,
        request: Request,
        principal: Annotated[Principal, Depends(requires("writer"))],
    ) -> dict[str, Any]:
        """Propose an experiment on a model (status proposed); its proposer is the key's name."""
        book = experiments_of(request, principal)
        try:
            return book.propose(body.name, body.hypothesis, body.type, body.model, principal.name)
        except TransitionRefused as error:
            raise HTTPException(409, str(error)) from None

    @router.patch("/experiments/{experiment_id}/approve", response_model=ExperimentView)
    def approve(
        experiment_id: RowId,
        body: ExperimentApproval,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
    ) -> dict[str, Any]:
        """Approve a proposed experiment, with the rationale. The approver is the key's name,
        and it may not be the proposer's: a typed name would let one person approve their own
        experiment under another's."""
        book = experiments_of(request, principal)
        return _answer(lambda: book.approve(experiment_id, principal.name, body.rationale))

    @router.get("/experiments/{experiment_id}/results", response_model=ExperimentResults)
    def results(
        experiment_id: RowId,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
    ) -> dict[str, Any]:
        """The experiment, its versions' metrics and the champion's."""
        book = experiments_of(request, principal)
        return _answer(lambda: book.results(experiment_id))

    @router.post("/experiments/{experiment_id}/complete", response_model=ExperimentView)
    def complete(
        experiment_id: RowId,
        body: ExperimentCompletion,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reviewer"))],
    ) -> dict[str, Any]:
        """Record the decision (adopt, partial_adopt, reject) and its rationale."""
        book = experiments_of(request, principal)
        decision = ExperimentDecision(body.decision)
        return _answer(
            lambda: book.complete(experiment_id, decision, principal.name, body.rationale)
        )

    def experiments_of(request: Request, principal: Principal) -> Experiments:
        return Experiments(*governed(request, principal))

    @router.get("/models/{version}/shadow", responses={404: {"description": "no such model"}})
    def shadow(
        version: str,
        request: Request,
        principal: Annotated[Principal, Depends(requires("reader"))],
        model: Annotated[str, Query(min_length=1, max_length=255)],
        window_days: Annotated[float, Query(gt=0, le=366)] = COMPARISON_WINDOW.days,
        min_samples: Annotated[int, Query(ge=1)] = MIN_SAMPLES,
    ) -> dict[str, Any]:
        """The version's shadow test: the champion against it on the requests of the last
        ``window_days`` that both answered and whose actuals are in, paired (equal sample
        counts), each side's error, whether it has its ``min_samples``, and whether it has
        completed (its ``shadow_test_complete`` alert raised)."""
        tests = ShadowTests(*governed(request, principal))
        window = timedelta(days=window_days)
        try:
            comparison = tests.compare(model, version, window=window, min_samples=min_samples)
        except LookupError as error:
            raise HTTPException(404, str(error)) from None
        return {**comparison, "completed": tests.completed(model, version)}

    return router


def _answer(step: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """An experiment step's answer; 404 for an unknown experiment, 409 for a refused step."""
    try:
        return step()
    except ExperimentNotFound as error:
        raise HTTPException(404, str(error)) from None
    except TransitionRefused as error:
        raise HTTPException(409, str(error)) from None
