"""Delivering one ``Notification`` to one target: webhook, e-mail, Telegram.

One coroutine per kind, each a single try; retries, queues and spam periods
are the notifier's. Library errors (httpx, aiosmtplib) are translated here
into ``SendFailed``, whose ``retryable`` says whether another try may help
(a refused connection may; a 400 or a rejected password will not).
Secrets are read from the environment at each try, never stored.
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx

from engine.core.secrets import read_secret
from engine.core.templates import render
from engine.errors import CuecapError
from engine.notify.config import EmailTarget, TelegramTarget, WebhookTarget
from engine.notify.message import Notification, jsonable

MAX_ATTACHMENT = 25 * 1024 * 1024  # bytes: what mail servers commonly take; larger is refused
TELEGRAM_CAPTION = 1024  # the Bot API's caption limit, in characters
TELEGRAM_TEXT = 4096


class SendFailed(CuecapError):
    """A try to deliver failed; ``retryable``: another try may succeed."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


Target = WebhookTarget | EmailTarget | TelegramTarget
Attachment = tuple[str, bytes, str]  # file name, bytes, content type


def read_attachment(path: str) -> Attachment:
    """The shot's bytes (called in a worker thread); a missing shot is not worth a retry."""
    file = Path(path)
    try:
        size = file.stat().st_size
        if size > MAX_ATTACHMENT:
            raise SendFailed(f"{path} has {size} bytes, over {MAX_ATTACHMENT}", retryable=False)
        data = file.read_bytes()
    except OSError as exc:
        raise SendFailed(f"cannot read {path}: {exc.strerror or exc}", retryable=False) from None
    kind = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return file.name, data, kind


def fill(template: Any, values: Mapping[str, Any]) -> Any:
    """A JSON body template with every string in it filled (keys too)."""
    if isinstance(template, str):
        return render(template, values)
    if isinstance(template, Mapping):
        return {fill(str(k), values): fill(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [fill(v, values) for v in template]
    return template


def _http_status(response: httpx.Response, what: str) -> None:
    if response.status_code < 300:
        return
    retryable = response.status_code >= 500 or response.status_code in (408, 429)
    detail = response.text[:200].strip()
    raise SendFailed(
        f"{what} answered {response.status_code}{': ' + detail if detail else ''}",
        retryable=retryable,
    )


async def _post(client: httpx.AsyncClient, url: str, what: str, **kwargs: Any) -> httpx.Response:
    try:
        response = await client.post(url, **kwargs)
    except httpx.TimeoutException:
        raise SendFailed(f"{what}: no answer in time") from None
    except httpx.HTTPError as exc:
        raise SendFailed(f"{what}: {exc}") from None
    _http_status(response, what)
    return response


async def send_webhook(
    target: WebhookTarget,
    note: Notification,
    attachment: Attachment | None,
    client: httpx.AsyncClient,
    env: Mapping[str, str],
) -> None:
    if target.body is None:
        body: Any = {"message": note.text, **jsonable(note.facts), "rule": note.rule}
    else:
        body = fill(target.body, note.values)
    headers = dict(target.headers)
    if target.bearer_env:
        headers["Authorization"] = f"Bearer {read_secret(target.bearer_env, env)}"
    if attachment is None:
        await _post(client, target.url, "webhook", json=body, headers=headers,
                    timeout=target.timeout)  # fmt: skip
    else:
        await _post(
            client, target.url, "webhook", headers=headers, timeout=target.timeout,
            data={"payload": json.dumps(body)}, files={"file": attachment},
        )  # fmt: skip


async def send_telegram(
    target: TelegramTarget,
    note: Notification,
    attachment: Attachment | None,
    client: httpx.AsyncClient,
    env: Mapping[str, str],
) -> None:
    token = read_secret(target.token_env, env)
    try:
        await _telegram(target, note, attachment, client, f"{target.base_url}/bot{token}")
    except SendFailed as exc:  # the token is part of the URL: never in a reason
        raise SendFailed(str(exc).replace(token, "***"), retryable=exc.retryable) from None


async def _telegram(
    target: TelegramTarget,
    note: Notification,
    attachment: Attachment | None,
    client: httpx.AsyncClient,
    base: str,
) -> None:
    chat = str(target.chat_id)
    if attachment is None:
        data = {"chat_id": chat, "text": note.text[:TELEGRAM_TEXT]}
        response = await _post(client, f"{base}/sendMessage", "telegram", json=data,
                               timeout=target.timeout)  # fmt: skip
    else:
        data = {"chat_id": chat, "caption": note.text[:TELEGRAM_CAPTION]}
        response = await _post(client, f"{base}/sendPhoto", "telegram", data=data,
                               files={"photo": attachment}, timeout=target.timeout)  # fmt: skip
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or answer.get("ok") is not True:
        raise SendFailed(f"telegram did not confirm: {response.text[:200]}", retryable=False)


def email_message(
    target: EmailTarget, note: Notification, attachment: Attachment | None
) -> EmailMessage:
    """The e-mail for a notification: subject from the template, the shot attached."""
    message = EmailMessage()
    message["From"] = target.sender
    message["To"] = ", ".join(target.to)
    message["Subject"] = render(target.subject, note.values).replace("\n", " ")
    message["Date"] = formatdate(note.time or None, localtime=True)
    message["Message-ID"] = make_msgid(domain="cuecap")
    message.set_content(note.text)
    if attachment is not None:
        name, data, kind = attachment
        maintype, _, subtype = kind.partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return message


async def send_email(
    target: EmailTarget, note: Notification, attachment: Attachment | None, env: Mapping[str, str]
) -> None:
    message = email_message(target, note, attachment)
    username = read_secret(target.username_env, env) if target.username_env else None
    password = read_secret(target.password_env, env) if target.password_env else None
    client = aiosmtplib.SMTP(
        hostname=target.host,
        port=target.smtp_port,
        use_tls=target.security == "ssl",
        start_tls=target.security == "starttls",
        cert_bundle=target.tls_ca,
        timeout=target.timeout,
    )
    try:
        async with client:
            # After STARTTLS the server's extensions (AUTH among them) are asked for anew.
            await client.ehlo()
            if username is not None and password is not None:
                await client.login(username, password)
            await client.send_message(message)
    except aiosmtplib.SMTPAuthenticationError as exc:
        raise SendFailed(
            f"smtp {target.host}: login refused: {exc.message}", retryable=False
        ) from None
    except (aiosmtplib.SMTPRecipientsRefused, aiosmtplib.SMTPSenderRefused) as exc:
        raise SendFailed(f"smtp {target.host}: {exc}", retryable=False) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise SendFailed(
            f"smtp {target.host}: {exc.code} {exc.message}",
            retryable=exc.code >= 400 and exc.code < 500,
        ) from None
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"smtp {target.host}:{target.smtp_port}: {exc}") from None
