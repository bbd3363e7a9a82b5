"""Signatures must verify with the reference Standard Webhooks library, not just with ourselves."""

from __future__ import annotations

import base64
import json
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from service.webhooks.signing import headers, new_secret, sign, signature_header

BODY = json.dumps({"type": "obligation.overdue", "data": {"obligation": {"id": "ob_1"}}}).encode()
MSG_ID = "msg_2f1c8a"


def _now() -> int:
    """The reference verifier rejects timestamps more than five minutes from now."""
    return int(time.time())


def test_new_secret_is_whsec_prefixed_base64_of_32_bytes() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32


def test_new_secrets_are_not_repeated() -> None:
    assert len({new_secret() for _ in range(50)}) == 50


def test_signature_matches_the_published_standard_webhooks_example() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_delivery_headers_verify_with_the_reference_library() -> None:
    secret = new_secret()
    sent = headers([secret], MSG_ID, _now(), BODY)
    assert Webhook(secret).verify(BODY, sent) == json.loads(BODY)


def test_headers_carry_id_timestamp_signature_and_json_content_type() -> None:
    secret = new_secret()
    sent = headers([secret], MSG_ID, 1_800_000_000, BODY)
    assert sent == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": "1800000000",
        "webhook-signature": sign(secret, MSG_ID, 1_800_000_000, BODY),
        "content-type": "application/json",
    }


def test_rotated_secrets_sign_once_each_separated_by_a_space() -> None:
    old, new = new_secret(), new_secret()
    header = signature_header([old, new], MSG_ID, 1_800_000_000, BODY)
    assert header.split(" ") == [
        sign(old, MSG_ID, 1_800_000_000, BODY),
        sign(new, MSG_ID, 1_800_000_000, BODY),
    ]


def test_header_signed_during_rotation_verifies_with_the_old_secret_alone() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([old, new], MSG_ID, _now(), BODY)
    Webhook(old).verify(BODY, sent, json_parse=False)


def test_header_signed_during_rotation_verifies_with_the_new_secret_alone() -> None:
    old, new = new_secret(), new_secret()
    sent = headers([old, new], MSG_ID, _now(), BODY)
    Webhook(new).verify(BODY, sent, json_parse=False)


def test_tampered_body_fails_verification() -> None:
    secret = new_secret()
    sent = headers([secret], MSG_ID, _now(), BODY)
    tampered = BODY.replace(b"overdue", b"due_soon")
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, sent)


def test_signature_from_an_unrelated_secret_fails_verification() -> None:
    sent = headers([new_secret()], MSG_ID, _now(), BODY)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(BODY, sent)


def test_secret_without_the_whsec_prefix_is_rejected() -> None:
    bare = new_secret().removeprefix("whsec_")
    with pytest.raises(ValueError, match="whsec_"):
        sign(bare, MSG_ID, 1_800_000_000, BODY)


def test_secret_that_is_not_base64_is_rejected() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign("whsec_not*base64!", MSG_ID, 1_800_000_000, BODY)


def test_signing_without_any_secret_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        signature_header([], MSG_ID, 1_800_000_000, BODY)
