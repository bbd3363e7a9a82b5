"""The active ruleset: read it, validate a candidate, activate one."""

from __future__ import annotations

import json
from typing import Any, Literal

from fastapi import APIRouter, Request

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
from service.store.ingest import activate_ruleset
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


@router.put("/rules", openapi_extra=_BODY_DOC)
async def put_rules(
    request: Request, principal: Admin, session: SessionDep, clock: ClockDep
) -> dict[str, Any]:
    """Activate a ruleset (TOML or JSON, or `{"builtin": name}`) and re-derive open cases."""
    ruleset, text, fmt = await _read_candidate(request)
    count = await activate_ruleset(
        session, org_id=principal.org_id, ruleset=ruleset, text=text, fmt=fmt, now=clock()
    )
    keys: KeyCache = request.app.state.key_cache
    keys.forget_org(principal.org_id)
    return {
        "source": "custom" if text else "builtin",
        "rederived_cases": count,
        **ruleset.to_json(),
    }
