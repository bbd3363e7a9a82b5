"""RFC 9457 problem details for every error the API returns, FastAPI's own included."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.api.methods import allowed_methods
from service.api.text import sendable, text_error_detail
from service.store.faults import DATABASE_FAULTS, fault_name

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger("caseclock.api")
FAULT_RETRY_AFTER_SECONDS = 2


class Problem(Exception):
    """An error the client can act on; `errors` locate each fault in the request."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        title: str | None = None,
        errors: Sequence[Mapping[str, Any]] = (),
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.title = title or HTTPStatus(status).phrase
        self.errors = list(errors)
        self.headers = dict(headers or {})
        self.extra = dict(extra or {})


def problem_response(problem: Problem) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"/problems/{problem.slug}" if problem.slug else "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        **problem.extra,
    }
    if problem.errors:
        body["errors"] = problem.errors
    return JSONResponse(
        body, status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )


def pointer(location: Sequence[str | int]) -> str:
    """A JSON pointer (RFC 6901) from a pydantic error location; "" is the whole document."""
    return sendable("".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in location))


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic's errors as RFC 9457 members: a pointer into the body, or the parameter name."""
    located: list[dict[str, str]] = []
    for error in errors:
        loc = list(error.get("loc", ()))
        where = loc[0] if loc else "body"
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        message = text_error_detail(error) or message
        if error.get("type") == "json_invalid":  # located by character offset, not by pointer
            reason = error.get("ctx", {}).get("error", "")
            offset = f" at character {loc[1]}" if len(loc) > 1 else ""
            located.append({"pointer": "", "detail": f"not valid JSON: {reason}{offset}"})
        elif where == "body":
            located.append({"pointer": pointer(loc[1:]), "detail": message})
        else:
            located.append({"parameter": ".".join(str(p) for p in loc[1:]), "detail": message})
    return located


class BodyLimit:
    """Refuse request bodies over `max_body_size` bytes with a 413 problem.

    FastAPI's own limit answers a declared oversize body in text/plain, written below every
    exception handler, so caseclock enforces the limit itself.
    """

    def __init__(
        self, app: ASGIApp, max_body_size: int, larger: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.max_body_size = max_body_size
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.larger.get(scope["path"], self.max_body_size)
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await problem_response(self._too_large(limit))(scope, receive, send)
            return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Starlette's HTTPException passes through FastAPI's body parsing as is.
                    raise StarletteHTTPException(413, self._too_large(limit).detail)
            return message

        await self.app(scope, limited, send)

    @staticmethod
    def _too_large(limit: int) -> Problem:
        mib = limit / (1024 * 1024)
        return Problem(413, f"The request body is over {mib:g} MiB.", slug="too-large")


class RefuseNulInUrl:
    """Refuse a path or query holding NUL: PostgreSQL cannot compare text with it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and ("\x00" in scope["path"] or b"%00" in scope["query_string"]):
            problem = Problem(422, "The URL must not contain NUL characters.", slug="validation")
            await problem_response(problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def install(app: FastAPI, *, larger_bodies: Mapping[str, int] | None = None) -> None:
    """Problem responses for every error; `larger_bodies` lifts the body limit on given paths."""
    app.add_middleware(RefuseNulInUrl)
    if app.max_body_size is not None:
        app.add_middleware(BodyLimit, max_body_size=app.max_body_size, larger=larger_bodies)
        app.max_body_size = None

    @app.exception_handler(Problem)
    async def _problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = validation_errors(exc.errors())
        return problem_response(
            Problem(422, "The request is not valid; see errors.", slug="validation", errors=errors)
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        # Starlette's `Allow` names the methods of one route; the resource may have several.
        if exc.status_code == 405 and (
            allowed := allowed_methods(app.router.routes, request.scope)
        ):
            headers["Allow"] = ", ".join(allowed)
        return problem_response(Problem(exc.status_code, str(exc.detail), headers=headers))

    async def _fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("database fault on %s %s: %s", request.method, request.url.path, fault_name(exc))
        return problem_response(
            Problem(
                503,
                "The database could not complete this request; nothing was stored. Try again.",
                slug="unavailable",
                headers={"Retry-After": str(FAULT_RETRY_AFTER_SECONDS)},
            )
        )

    for fault in DATABASE_FAULTS:
        app.add_exception_handler(fault, _fault)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(Problem(500, "An unexpected error occurred; it has been logged."))
