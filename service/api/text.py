"""The one type for every text a request body carries and caseclock stores.

NUL is refused by a pattern rather than a validator, so that a field's own length and
whitespace constraints still apply to the string itself, and the OpenAPI document shows the
rule. Matching the pattern needs the text as UTF-8, so unpaired surrogates are refused too
(a plain `str` field would let them through, and every later read of them would fail).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import StringConstraints

from service.domain.storable import NUL_REFUSED, SURROGATE_REFUSED

WITHOUT_NUL = r"^[^\x00]*$"

Text = Annotated[str, StringConstraints(pattern=WITHOUT_NUL)]


def text_error_detail(error: Mapping[str, Any]) -> str | None:
    """A pydantic error on a Text field said as the rule it breaks, not as a pattern."""
    if error.get("type") == "string_unicode":
        return SURROGATE_REFUSED
    pattern = error.get("ctx", {}).get("pattern")
    if error.get("type") == "string_pattern_mismatch" and pattern == WITHOUT_NUL:
        return NUL_REFUSED
    return None


def sendable(text: str) -> str:
    """`text` as a response can carry it: an unpaired surrogate is written as its escape, for
    the few places a refusal quotes back what was sent (a key, a batch item's id)."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
