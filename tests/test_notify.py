"""The send action: e-mail to a real SMTP server, webhooks and Telegram to a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import ssl
import textwrap
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from engine.events import Event, SendErrored, SendSucceeded, ShotSaved
from engine.notify.message import default_text
from engine.notify.spam import SpamPolicy
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules
from engine.runtime.adapters import rule_adapters
from engine.runtime.engine import Engine
from engine.runtime.summary import Summary
from engine.shots.testing import make_jpeg
from tests.http_standin import StandIn

JPEG = make_jpeg(48, 36, "orange", "send")
T0 = 1_700_000_000.0


def camera_jpeg(request: object) -> bytes:
    return JPEG


class Inbox:
    """aiosmtpd's handler: keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.envelopes.append(envelope)
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content, policy=default))  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
async def smtp() -> AsyncIterator[tuple[Inbox, int]]:
    """A real SMTP server (aiosmtpd) in this test's loop, on 127.0.0.1 and a free port."""
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield inbox, port
    server.close()
    await server.wait_closed()


def rules_file(tmp_path: Path, *parts: str) -> Path:
    """A rule file: settings and a python camera, then ``parts`` (each dedented alone)."""
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent(f"""\
        settings:
          timezone: UTC
          shots: {{folder: {tmp_path / "shots"}}}
        cameras:
          door: {{type: python, function: "tests.test_notify:camera_jpeg"}}
        """) + "".join(textwrap.dedent(p) for p in parts), encoding="utf-8")  # fmt: skip
    return path


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def run_until(
    path: Path, env: dict[str, str], done: Callable[[list[Event]], bool]
) -> tuple[Summary, list[Event]]:
    """Run the engine live on ``path`` until ``done(events)``, then stop it."""
    rules = load_rules([path], env=env)
    engine = Engine(rules, adapters=rule_adapters(rules, env=env))
    seen: list[Event] = []
    engine.subscribe(seen.append)
    run = asyncio.create_task(engine.run())
    try:
        await until(lambda: done(seen))
    finally:
        engine.request_stop("test done")
    return await run, seen


def kinds(events: list[Event], cls: type[Event]) -> list[Any]:
    return [e for e in events if isinstance(e, cls)]


SHOT_AND_SEND = """\
rules:
  door-shot:
    when: {{type: event, event: engine.started}}
    do:
      - {{type: shot, cameras: door}}
      - {{type: send, to: {to}, shot: true, message: "{{rule}}: {{camera}} at {{time:%H:%M}}"}}
"""

SAID_SO = """\
  said-so:
    when: {type: event, event: send.error, target: hook}
    do: {type: log, message: "{target} failed for {rule}: {reason}"}
"""


async def test_a_shot_is_emailed_with_the_jpeg_attached(
    tmp_path: Path, smtp: tuple[Inbox, int]
) -> None:
    inbox, port = smtp
    path = rules_file(tmp_path, f"""\
        targets:
          ops-mail:
            type: email
            host: 127.0.0.1
            port: {port}
            security: none
            sender: cuecap@lab.example
            to: [ops@lab.example, night@lab.example]
            subject: "{{camera}} shot by {{rule}}"
        """, SHOT_AND_SEND.format(to="ops-mail"))  # fmt: skip
    summary, events = await run_until(path, {}, lambda seen: bool(kinds(seen, SendSucceeded)))
    [shot] = summary.shots_ok
    [message] = inbox.messages
    assert inbox.envelopes[0].rcpt_tos == ["ops@lab.example", "night@lab.example"]
    assert (
        message["From"] == "cuecap@lab.example" and message["Subject"] == "door shot by door-shot"
    )
    body = message.get_body(("plain",))
    assert body is not None and body.get_content().startswith("door-shot: door at ")
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "image/jpeg"
    assert attachment.get_filename() == Path(shot).name
    assert attachment.get_payload(decode=True) == JPEG == Path(shot).read_bytes()
    [sent] = kinds(events, SendSucceeded)
    assert (sent.target, sent.rule, sent.camera, sent.path, sent.tries) == (
        "ops-mail", "door-shot", "door", shot, 1)  # fmt: skip
    assert Path(shot).exists()  # no delete_after_send: it stays


async def test_a_webhook_gets_its_json_body_and_the_shot_as_multipart(tmp_path: Path) -> None:
    with StandIn() as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook:
                type: webhook
                url: {hook.url}/cuecap
                body: {{text: "{{camera}} by {{rule}}", at: "{{time:%Y-%m-%d}}", fixed: [1, true]}}
                bearer_env: HOOK_TOKEN
                delete_after_send: true
            """, SHOT_AND_SEND.format(to="hook"))  # fmt: skip
        summary, events = await run_until(
            path, {"HOOK_TOKEN": "s3cret-token"}, lambda seen: bool(kinds(seen, SendSucceeded))
        )
    [request] = hook.requests
    assert request.path == "/cuecap"
    assert request.headers["authorization"] == "Bearer s3cret-token"
    form = request.form()
    payload = json.loads(form["payload"][1])
    today = datetime.fromtimestamp(summary.started, UTC).strftime("%Y-%m-%d")
    assert payload == {"text": "door by door-shot", "at": today, "fixed": [1, True]}
    [shot] = summary.shots_ok
    assert form["file"] == (Path(shot).name, JPEG)
    [sent] = kinds(events, SendSucceeded)
    assert sent.deleted is True and not Path(shot).exists()  # confirmed, then deleted


async def test_a_target_that_is_down_gets_retries_then_send_error_and_the_shot_stays(
    tmp_path: Path,
) -> None:
    with StandIn(statuses=[503]) as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook:
                type: webhook
                url: {hook.url}/down
                retries: 2
                backoff_initial: 0.01
                backoff_max: 0.02
                delete_after_send: true
            """, SHOT_AND_SEND.format(to="hook") + SAID_SO)  # fmt: skip
        summary, events = await run_until(path, {}, lambda seen: bool(kinds(seen, SendErrored)))
    assert len(hook.requests) == 3  # the first try and two retries
    [error] = kinds(events, SendErrored)
    assert error.tries == 3 and "answered 503" in error.reason and error.target == "hook"
    [shot] = summary.shots_ok
    assert Path(shot).read_bytes() == JPEG  # a failed send never deletes
    fired = [f for f in summary.firings if f.rule == "said-so"]
    assert len(fired) == 1 and fired[0].facts["target"] == "hook"
    assert fired[0].facts["rule"] == "door-shot"


async def test_a_refused_request_is_not_retried(tmp_path: Path) -> None:
    with StandIn(statuses=[400]) as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook: {{type: webhook, url: "{hook.url}/", retries: 5, backoff_initial: 0.01}}
            rules:
              hello:
                when: {{type: event, event: engine.started}}
                do: {{type: send, to: hook}}
            """)  # fmt: skip
        _, events = await run_until(path, {}, lambda seen: bool(kinds(seen, SendErrored)))
    assert len(hook.requests) == 1
    assert hook.requests[0].json()["message"].startswith("hello: engine.started at ")
    assert kinds(events, SendErrored)[0].tries == 1


async def test_telegram_gets_the_photo_with_its_caption(tmp_path: Path) -> None:
    with StandIn(answer={"ok": True, "result": {"message_id": 7}}) as api:
        path = rules_file(tmp_path, f"""\
            targets:
              phone: {{type: telegram, token_env: BOT_TOKEN, chat_id: -100123, base_url: "{api.url}"}}
            """, SHOT_AND_SEND.format(to="phone"))  # fmt: skip
        summary, _ = await run_until(
            path, {"BOT_TOKEN": "123:abc"}, lambda seen: bool(kinds(seen, SendSucceeded))
        )
    [request] = api.requests
    assert request.path == "/bot123:abc/sendPhoto"
    form = request.form()
    assert form["chat_id"] == (None, b"-100123")
    assert form["caption"][1].decode().startswith("door-shot: door at ")
    assert form["photo"] == (Path(summary.shots_ok[0]).name, JPEG)


async def test_a_spam_period_lets_one_message_through_per_period(tmp_path: Path) -> None:
    with StandIn() as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook: {{type: webhook, url: "{hook.url}/", period: 1h}}
            rules:
              burst:
                when: {{type: event, event: engine.started}}
                do: [{{type: send, to: hook}}, {{type: send, to: hook}}, {{type: send, to: hook}}]
            """)  # fmt: skip
        _, events = await run_until(path, {}, lambda seen: bool(kinds(seen, SendSucceeded)))
    assert len(hook.requests) == 1 and len(kinds(events, SendSucceeded)) == 1


def test_spam_periods_per_target_and_per_camera() -> None:
    policy = SpamPolicy(period=10, camera_period=60)
    assert policy.accepts(0, "door")
    assert not policy.accepts(5, "yard")  # the target's period
    assert policy.accepts(11, "yard")
    assert not policy.accepts(30, "door")  # door's own period
    assert policy.accepts(61, "door") and policy.refused == 2
    assert SpamPolicy().accepts(0) and SpamPolicy().accepts(0)


def test_the_default_message_of_a_stopped_recording_is_its_summary() -> None:
    values = {
        "event": "recording.stopped", "rule": "r", "recorder": "moves", "reason": "idle",
        "records": 1200, "bytes": 3 * 1024 * 1024, "duration": 42.5, "path": "/r/a.bin",
        "time": datetime(2026, 12, 1, 8, 30, 5, tzinfo=UTC),
    }  # fmt: skip
    assert default_text(values) == (
        "moves: recording stopped at 08:30:05 (idle): 1200 messages, 3.0 MiB, 42.5 s in /r/a.bin"
    )


async def test_a_stopped_recording_sends_its_summary(tmp_path: Path) -> None:
    with StandIn() as hook:
        path = rules_file(tmp_path, f"""\
            sources:
              sim: {{type: simulator, seed: 1, fps: 5, image_size: [64, 48], idle: [100, 100]}}
            recorders:
              manual: {{source: sim, pre_roll: 0}}
            targets:
              hook: {{type: webhook, url: "{hook.url}/"}}
            rules:
              begin:
                when: {{type: event, event: engine.started}}
                do: {{type: record, recorder: manual}}
              end:
                when: {{type: event, event: recording.started}}
                do: {{type: record, recorder: manual, action: stop}}
              report:
                when: {{type: event, event: recording.stopped}}
                do: {{type: send, to: hook}}
            """)  # fmt: skip
        text = path.read_text().replace("settings:\n", f"settings:\n  recordings: {tmp_path}/rec\n")
        path.write_text(text, encoding="utf-8")
        summary, _ = await run_until(path, {}, lambda seen: bool(kinds(seen, SendSucceeded)))
    [segment] = summary.segments
    body = hook.requests[0].json()
    assert body["recorder"] == "manual" and body["path"] == segment.path
    assert body["message"].startswith("manual: recording stopped at ")
    assert f"{segment.records} messages" in body["message"] and segment.path in body["message"]


def test_bad_send_input_is_refused_at_load_with_its_position(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        targets:
          mail: {type: email, host: h, sender: a@b, to: [c@d], password_env: SMTP_PASSWORD}
          hook: {type: webhook, url: "ftp://x"}
        rules:
          a:
            when: {type: schedule, every: 1min}
            do:
              - {type: send, to: [mail, pager]}
              - {type: send, to: mail, message: "{camera} saw it"}
        """), encoding="utf-8")  # fmt: skip
    with pytest.raises(RuleFileError) as caught:
        load_rules([path], env={})
    errors = [str(e).replace(str(path), "F") for e in caught.value.errors]
    assert errors == [
        "F:2:70: environment variable SMTP_PASSWORD is not set",
        "F:3:30: url: 'ftp://x' is not an HTTP URL; write e.g. https://host/path",
        "F:8:33: unknown target 'pager' (known targets: hook, mail)",
        "F:9:41: {camera}: not provided by this trigger of the rule "
        "(available: count, epoch, event, rule, source, time, trigger)",
    ]


@pytest.mark.parametrize("security", ["starttls", "ssl"])
async def test_email_over_starttls_and_ssl_logs_in_and_delivers(
    tmp_path: Path, security: str
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    inbox = Inbox()
    logins: list[tuple[bytes, bytes, bool]] = []

    def authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                     data: Any) -> AuthResult:  # fmt: skip
        encrypted = server.transport.get_extra_info("ssl_object") is not None  # type: ignore[union-attr]
        logins.append((data.login, data.password, encrypted))
        return AuthResult(success=data.password == b"mail-pw")

    def factory() -> SMTP:
        # aiosmtpd's auth_require_tls knows STARTTLS only; with SSL every byte is encrypted
        return SMTP(inbox, authenticator=authenticate, auth_require_tls=security == "starttls",
                    tls_context=server_context if security == "starttls" else None,
                    require_starttls=security == "starttls")  # fmt: skip

    loop = asyncio.get_running_loop()
    tls = server_context if security == "ssl" else None
    server = await loop.create_server(factory, "127.0.0.1", 0, ssl=tls)
    port = server.sockets[0].getsockname()[1]
    try:
        path = rules_file(tmp_path, f"""\
            targets:
              mail:
                type: email
                host: 127.0.0.1
                port: {port}
                security: {security}
                tls_ca: {ca_file}
                username_env: SMTP_USER
                password_env: SMTP_PASSWORD
                sender: cuecap@lab.example
                to: ops@lab.example
            """, SHOT_AND_SEND.format(to="mail"))  # fmt: skip
        env = {"SMTP_USER": "lab", "SMTP_PASSWORD": "mail-pw"}
        summary, _ = await run_until(path, env, lambda seen: bool(kinds(seen, SendSucceeded)))
    finally:
        server.close()
        await server.wait_closed()
    assert logins == [(b"lab", b"mail-pw", True)]  # over the encrypted session
    [message] = inbox.messages
    [attachment] = list(message.iter_attachments())
    assert attachment.get_payload(decode=True) == Path(summary.shots_ok[0]).read_bytes() == JPEG


async def test_a_server_with_a_certificate_nobody_vouches_for_gets_no_mail(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    inbox = Inbox()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(inbox), "127.0.0.1", 0, ssl=server_context)
    port = server.sockets[0].getsockname()[1]
    try:
        path = rules_file(tmp_path, f"""\
            targets:
              mail: {{type: email, host: 127.0.0.1, port: {port}, security: ssl,
                      sender: a@b.example, to: c@d.example, retries: 1, backoff_initial: 0.01}}
            """, SHOT_AND_SEND.format(to="mail"))  # fmt: skip
        _, events = await run_until(path, {}, lambda seen: bool(kinds(seen, SendErrored)))
    finally:
        server.close()
        await server.wait_closed()
    [error] = kinds(events, SendErrored)
    assert "CERTIFICATE_VERIFY_FAILED" in error.reason or "certificate" in error.reason.lower()
    assert inbox.messages == []


def test_check_explains_targets_and_send_actions(tmp_path: Path) -> None:
    from engine.rules.describe import explain

    path = rules_file(tmp_path, """\
        targets:
          hook: {type: webhook, url: "https://hooks.example/x", period: 5min, delete_after_send: true}
          phone: {type: telegram, token_env: BOT_TOKEN, chat_id: 42}
        rules:
          a:
            when: {type: event, event: send.error, target: hook}
            do: {type: send, to: [phone], message: "{target} failed: {reason}"}
        """)  # fmt: skip
    text = explain(load_rules([path], env={"BOT_TOKEN": "123456:secret"}), T0)
    assert "  hook: webhook POST https://hooks.example/x; queue 100, 3 retries, one per 5m, " \
        "shots deleted once sent" in text  # fmt: skip
    assert "  phone: telegram chat 42 via https://api.telegram.org (token in $BOT_TOKEN)" in text
    assert "when event send.error (target=hook)" in text
    assert "do   send to phone: {target} failed: {reason}" in text
    assert "secret" not in text


async def test_a_full_queue_ends_in_send_error_at_once() -> None:
    from engine.notify.config import WebhookTarget
    from engine.notify.message import Notification
    from engine.notify.notifier import Notifier

    events: list[Event] = []
    target = WebhookTarget(type="webhook", url="http://127.0.0.1:9/", queue=2)
    notifier = Notifier({"hook": target}, emit=events.append, clock=lambda: T0)  # not started
    notes = [Notification(rule="r", text=f"n{i}", values={}, time=T0) for i in range(3)]
    assert [notifier.submit("hook", n) for n in notes] == [True, True, False]
    [error] = kinds(events, SendErrored)
    assert (error.target, error.tries, error.reason) == ("hook", 0, "queue full (2 waiting)")
    with pytest.raises(KeyError, match="unknown target 'nope'"):
        notifier.submit("nope", notes[0])


async def test_a_shot_success_trigger_sends_the_shot_it_reports(tmp_path: Path) -> None:
    with StandIn() as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook: {{type: webhook, url: "{hook.url}/"}}
            rules:
              take:
                when: {{type: event, event: engine.started}}
                do: {{type: shot, cameras: door}}
              forward:
                when: {{type: event, event: shot.success, camera: door}}
                do: {{type: send, to: hook, shot: true}}
            """)  # fmt: skip
        summary, _ = await run_until(path, {}, lambda seen: bool(kinds(seen, SendSucceeded)))
    form = hook.requests[0].form()
    assert form["file"] == (Path(summary.shots_ok[0]).name, JPEG)
    payload = json.loads(form["payload"][1])
    assert payload["message"].startswith("door: shot saved at ") and payload["camera"] == "door"


async def test_each_shot_of_the_rule_goes_in_its_own_message(tmp_path: Path) -> None:
    with StandIn() as hook:
        path = rules_file(tmp_path, f"""\
            targets:
              hook: {{type: webhook, url: "{hook.url}/", body: {{camera: "{{camera}}"}}}}
            rules:
              both:
                when: {{type: event, event: engine.started}}
                do:
                  - {{type: shot, cameras: [door, yard]}}
                  - {{type: send, to: hook, shot: true}}
            """)  # fmt: skip
        text = path.read_text().replace("cameras:\n", "cameras:\n  yard: {type: python, "
                                        'function: "tests.test_notify:camera_jpeg"}\n')  # fmt: skip
        path.write_text(text, encoding="utf-8")
        summary, _ = await run_until(path, {}, lambda seen: len(kinds(seen, SendSucceeded)) == 2)
    sent = sorted((json.loads(r.form()["payload"][1])["camera"], r.form()["file"][0])
                  for r in hook.requests)  # fmt: skip
    assert sent == sorted((Path(p).name.split(" ")[0], Path(p).name) for p in summary.shots_ok)
    assert [camera for camera, _ in sent] == ["door", "yard"]


async def test_telegram_without_a_shot_is_a_text_message(tmp_path: Path) -> None:
    with StandIn(answer={"ok": True, "result": {}}) as api:
        path = rules_file(tmp_path, f"""\
            targets:
              phone: {{type: telegram, token_env: BOT_TOKEN, chat_id: "@lab", base_url: "{api.url}/"}}
            rules:
              hello:
                when: {{type: event, event: engine.started}}
                do: {{type: send, to: phone, message: "cuecap is up ({{rule}})"}}
            """)  # fmt: skip
        await run_until(path, {"BOT_TOKEN": "9:z"}, lambda seen: bool(kinds(seen, SendSucceeded)))
    [request] = api.requests
    assert request.path == "/bot9:z/sendMessage"
    assert request.json() == {"chat_id": "@lab", "text": "cuecap is up (hello)"}


async def test_a_stop_gives_queued_sends_stop_timeout_then_says_send_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        path = rules_file(tmp_path, f"""\
            targets:
              hook: {{type: webhook, url: "http://127.0.0.1:{port}/", delete_after_send: true}}
            """, SHOT_AND_SEND.format(to="hook"))  # fmt: skip
        text = path.read_text().replace("settings:\n", "settings:\n  stop_timeout: 0.2\n")
        path.write_text(text, encoding="utf-8")
        summary, events = await run_until(path, {}, lambda seen: bool(kinds(seen, ShotSaved)))
    [error] = kinds(events, SendErrored)
    assert error.reason == "engine stopped"
    assert Path(summary.shots_ok[0]).read_bytes() == JPEG  # never confirmed: kept


def test_target_templates_are_checked_against_the_rules_that_send_to_them(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""\
        cameras:
          door: {type: http, url: "http://192.168.1.31/snapshot.jpg"}
        targets:
          mail: {type: email, host: h, sender: a@b, to: c@d, subject: "{camra} at {time:%H:%M}"}
          hook: {type: webhook, url: "https://h/x", body: {who: "{camera}", n: [1, "{count}"]}}
        rules:
          daily:
            when: {type: schedule, every: 1h}
            do: {type: send, to: [hook]}
          with-shot:
            when: {type: schedule, every: 1h}
            do: [{type: shot, cameras: door}, {type: send, to: hook, shot: true}]
        """), encoding="utf-8")  # fmt: skip
    with pytest.raises(RuleFileError) as caught:
        load_rules([path], env={})
    errors = [str(e).replace(str(path), "F") for e in caught.value.errors]
    assert len(errors) == 2
    assert errors[0].startswith("F:4:63: template ") and "unknown field {camra}" in errors[0]
    assert errors[1].startswith("F:9:27: target 'hook' fills in {camera}, which this rule's "
                                "trigger does not provide")  # fmt: skip


async def test_a_telegram_failure_never_shows_the_token(tmp_path: Path) -> None:
    echo = {"ok": False, "description": "no bot 77:secret-token here"}
    with StandIn(statuses=[500], error_answer=echo) as api:
        path = rules_file(tmp_path, f"""\
            targets:
              phone: {{type: telegram, token_env: BOT_TOKEN, chat_id: 1, base_url: "{api.url}",
                       retries: 0}}
            rules:
              hello:
                when: {{type: event, event: engine.started}}
                do: {{type: send, to: phone}}
            """)  # fmt: skip
        _, events = await run_until(
            path, {"BOT_TOKEN": "77:secret-token"}, lambda seen: bool(kinds(seen, SendErrored))
        )
    [error] = kinds(events, SendErrored)
    assert "answered 500" in error.reason and "no bot ***" in error.reason
    assert "secret-token" not in error.reason
