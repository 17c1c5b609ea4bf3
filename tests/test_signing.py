"""monitor/notify/signing.py: Standard Webhooks signatures, checked against the spec's test
vector and against the reference verifier (the `standardwebhooks` package)."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from monitor.models import Entry, Hit, Item, Match
from monitor.notify.signing import secret_key, sign
from monitor.render import alert_document, webhook_body

SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_standard_webhooks_test_vector() -> None:
    assert sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY) == SPEC_SIGNATURE


def test_reference_library_agrees_on_the_test_vector() -> None:
    reference = Webhook(SPEC_SECRET).sign(
        SPEC_ID, datetime.fromtimestamp(SPEC_TIMESTAMP, UTC), SPEC_BODY.decode()
    )
    assert reference == SPEC_SIGNATURE


@pytest.mark.parametrize(
    ("change", "value"),
    [
        ("secret", "whsec_" + base64.b64encode(b"another secret key").decode()),
        ("message_id", "msg_other"),
        ("timestamp", SPEC_TIMESTAMP + 1),
        ("body", b'{"test": 2432232315}'),
        ("body", SPEC_BODY + b" "),
    ],
)
def test_every_input_changes_the_signature(change: str, value: object) -> None:
    inputs: dict[str, object] = {
        "secret": SPEC_SECRET,
        "message_id": SPEC_ID,
        "timestamp": SPEC_TIMESTAMP,
        "body": SPEC_BODY,
    }
    inputs[change] = value
    assert sign(**inputs) != SPEC_SIGNATURE  # type: ignore[arg-type]


def test_signature_format() -> None:
    signature = sign(SPEC_SECRET, SPEC_ID, SPEC_TIMESTAMP, SPEC_BODY)
    version, encoded = signature.split(",")
    assert version == "v1"
    assert len(base64.b64decode(encoded, validate=True)) == 32  # HMAC-SHA256


@pytest.mark.parametrize(
    ("secret", "key"),
    [
        (SPEC_SECRET, base64.b64decode("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")),
        ("whsec_" + base64.b64encode(b"abcd").decode(), b"abcd"),
        ("whsec_" + base64.b64encode(b"abcde").decode().rstrip("="), b"abcde"),  # no padding
        ("whsec_" + base64.b64encode(b"abcdef").decode().rstrip("="), b"abcdef"),
        ("plain passphrase", b"plain passphrase"),
        ("whsec_not base64!", b"whsec_not base64!"),  # not base64: used as raw bytes
    ],
)
def test_secret_key(secret: str, key: bytes) -> None:
    assert secret_key(secret) == key


def _document() -> dict[str, object]:
    entry = Entry(
        guid="g",
        link="https://example.com/a",
        title="Північнокорейські війська — North Korean troops in Genève “talks”",
        summary="Body & <b>more</b>",
        content="",
        author="",
        tags=(),
        published_at=datetime(2024, 10, 24, 9, 12, tzinfo=UTC),
    )
    item = Item("kyiv", "g:g", entry, "en", "h")
    match = Match("dprk-troops", (Hit("north korean troops", "title"),))
    return alert_document("al_1", match, item, datetime(2024, 10, 24, 9, 13, tzinfo=UTC))


def _headers(message_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


SECRETS = [
    SPEC_SECRET,
    "whsec_" + base64.b64encode(bytes(range(32))).decode(),
    "whsec_" + base64.b64encode(b"24-byte-secret-for-hooks").decode(),
]


@pytest.mark.parametrize("secret", SECRETS)
def test_reference_verifier_accepts_our_signature(secret: str) -> None:
    body = webhook_body(_document())
    timestamp = int(time.time())
    signature = sign(secret, "msg_abc", timestamp, body)
    payload = Webhook(secret).verify(body, _headers("msg_abc", timestamp, signature))
    assert payload == _document()


@pytest.mark.parametrize("secret", SECRETS)
def test_reference_verifier_rejects_a_tampered_body(secret: str) -> None:
    body = webhook_body(_document())
    timestamp = int(time.time())
    signature = sign(secret, "msg_abc", timestamp, body)
    tampered = body.replace(b"dprk-troops", b"dprk-troopz")
    assert tampered != body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, _headers("msg_abc", timestamp, signature))


def test_reference_verifier_rejects_another_id_timestamp_or_secret() -> None:
    body = webhook_body(_document())
    timestamp = int(time.time())
    signature = sign(SPEC_SECRET, "msg_abc", timestamp, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body, _headers("msg_other", timestamp, signature))
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body, _headers("msg_abc", timestamp - 1, signature))
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRETS[1]).verify(body, _headers("msg_abc", timestamp, signature))


def test_reference_verifier_rejects_a_stale_timestamp() -> None:
    body = webhook_body(_document())
    stale = int(time.time()) - 3600
    signature = sign(SPEC_SECRET, "msg_abc", stale, body)
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body, _headers("msg_abc", stale, signature))


def test_signature_is_stable_for_a_retry() -> None:
    body = webhook_body(_document())
    assert sign(SPEC_SECRET, "msg_abc", 1700000000, body) == sign(
        SPEC_SECRET, "msg_abc", 1700000000, webhook_body(_document())
    )
