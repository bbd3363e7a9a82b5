"""The active ruleset: read it, validate a candidate, activate one and follow its activation.

Activating makes the ruleset active at once (every later write derives under it) and
re-derives the open cases in the background, a chunk at a time: the answer is 202 with the
activation to poll (`GET /v1/rules/activations/{id}`).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from service.api.deps import Admin, ClockDep, KeyCache, Reader, SessionDep
from service.api.problems import Problem
from service.domain.rules import (
    BUILTIN_RULESETS,
    Ruleset,
    RulesetInvalid,
    builtin_ruleset,
    builtin_rulesets,
    load_ruleset,
)
from service.store.ids import sortable_id
from service.store.ingest import activate_ruleset
from service.store.jobs import get_job
from service.store.orgs import ruleset_of

router = APIRouter(prefix="/v1", tags=["rules"])

_BODY_DOC = {
    "requestBody": {
        "content": {
            "application/toml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        }
    }
}


@router.get("/rules")
async def get_rules(principal: Reader) -> dict[str, Any]:
    """The organisation's active ruleset."""
    source = "custom" if principal.ruleset_text is not None else "builtin"
    ruleset = ruleset_of(principal)
    return {"source": source, "version": ruleset.version(), **ruleset.to_json()}


@router.get("/rulesets")
async def get_rulesets(_principal: Reader) -> dict[str, Any]:
    """The built-in rulesets, any of which an organisation can activate."""
    return {"items": [r.to_json() for r in builtin_rulesets()]}


async def _read_candidate(request: Request) -> tuple[Ruleset, str | None, Literal["toml", "json"]]:
    """Parse a TOML or JSON body, or `{"builtin": name}` to switch to a built-in."""
    try:
        raw = (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:  # refused, not patched with U+FFFD into rule names
        raise Problem(
            422,
            "The ruleset must be UTF-8 text.",
            slug="invalid-ruleset",
            errors=[{"pointer": "", "detail": f"not UTF-8 at byte {exc.start}"}],
        ) from exc
    is_json = request.headers.get("content-type", "").split(";")[0].strip() == "application/json"
    try:
        if is_json:
            ruleset = load_ruleset(raw, format="json")
            return ruleset, raw, "json"
        return load_ruleset(raw, format="toml"), raw, "toml"
    except RulesetInvalid as exc:
        name = _builtin_switch(raw) if is_json else None
        if name is not None:
            return builtin_ruleset(name), None, "toml"
        errors = [
            {
                "pointer": p.pointer,
                "detail": p.detail,
                **({"line": p.line} if p.line else {}),
                **({"rule_id": p.rule_id} if p.rule_id else {}),
            }
            for p in exc.problems
        ]
        raise Problem(
            422, "The ruleset is not valid; see errors.", slug="invalid-ruleset", errors=errors
        ) from exc


def _builtin_switch(raw: str) -> str | None:
    try:
        doc = json.loads(raw)
    except ValueError:
        return None
    if isinstance(doc, dict) and set(doc) == {"builtin"} and doc["builtin"] in BUILTIN_RULESETS:
        return str(doc["builtin"])
    return None


@router.post("/rules/validate", openapi_extra=_BODY_DOC)
async def validate_rules(request: Request, _principal: Reader) -> dict[str, Any]:
    """Check a ruleset without activating it: 200 with the parsed rules, or 422 with every error."""
    ruleset, _, _ = await _read_candidate(request)
    return {"valid": True, "ruleset": ruleset.to_json()}


class ActivationOut(BaseModel):
    id: str
    state: Literal["queued", "running", "done", "failed"]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cases_done: int = Field(description="Open cases re-derived so far.")
    cases_total: int | None = Field(description="Open cases to re-derive; null until counted.")
    problem: dict[str, Any] | None = Field(description="Why it failed (RFC 9457).")


_ACTIVATION_HEADERS = {
    "Location": {
        "description": "The activation to poll: /v1/rules/activations/{id}",
        "schema": {"type": "string"},
    }
}


@router.put(
    "/rules",
    status_code=202,
    openapi_extra=_BODY_DOC,
    responses={
        202: {
            "description": "Active now; the open cases are re-derived in the background "
            "(`activation`, polled at `Location`)",
            "headers": _ACTIVATION_HEADERS,
        }
    },
)
async def put_rules(
    request: Request, principal: Admin, session: SessionDep, clock: ClockDep
) -> JSONResponse:
    """Activate a ruleset (TOML or JSON, or `{"builtin": name}`): it is active when this
    answers, and every open case is re-derived under it in the background."""
    ruleset, text, fmt = await _read_candidate(request)
    activation_id = sortable_id("act_")
    await activate_ruleset(
        session,
        org_id=principal.org_id,
        ruleset=ruleset,
        text=text,
        fmt=fmt,
        now=clock(),
        activation_id=activation_id,
    )
    keys: KeyCache = request.app.state.key_cache
    keys.forget_org(principal.org_id)
    activation = await get_activation(activation_id, principal, session)
    body = {
        "source": "custom" if text else "builtin",
        **ruleset.to_json(),
        "activation": activation.model_dump(mode="json"),
    }
    return JSONResponse(
        body, status_code=202, headers={"Location": f"/v1/rules/activations/{activation_id}"}
    )


@router.get(
    "/rules/activations/{activation_id}",
    response_model=ActivationOut,
    responses={404: {"description": "No such activation in this organisation"}},
)
async def get_activation(
    activation_id: str, principal: Reader, session: SessionDep
) -> ActivationOut:
    """A rules activation: its state (queued, running, done, failed) and the open cases
    re-derived so far."""
    job = await get_job(session, principal.org_id, activation_id, ("rules-activation",))
    if job is None:
        raise Problem(
            404, f"No rules activation {activation_id!r} in this organisation.", slug="not-found"
        )
    return ActivationOut(
        id=job.id,
        state=job.state,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cases_done=job.cases_done,
        cases_total=job.cases_total,
        problem=job.problem,
    )
