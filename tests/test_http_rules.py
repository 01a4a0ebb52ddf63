"""The HTTP server's pure parts: access rules, listen addresses, tokens, download paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.core.address import AddressError, parse_listen
from engine.core.templates import PathEscapeError
from engine.http.config import HttpConfigError, HttpSettings, resolve
from engine.http.files import inside
from engine.http.security import COOKIE, AccessPolicy, Kind, Verdict, is_loopback

TOKEN = "0123456789abcdef-token"
LOCAL = {"host": "127.0.0.1:7080"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("127.0.0.1:7080", ("127.0.0.1", 7080)),
        ("localhost:0", ("localhost", 0)),
        ("[::1]:8000", ("::1", 8000)),
        ("0.0.0.0:80", ("0.0.0.0", 80)),
        ("cuecap.lab:7080", ("cuecap.lab", 7080)),
    ],
)
def test_listen_addresses(text: str, expected: tuple[str, int]) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize("text", ["7080", "127.0.0.1", "::1:7080", "host:99999", "h st:1", ":80"])
def test_bad_listen_addresses_say_what_is_wrong(text: str) -> None:
    with pytest.raises(AddressError, match=r"HOST:PORT|port|host name"):
        parse_listen(text)


def test_loopback_names() -> None:
    assert all(map(is_loopback, ["127.0.0.1", "127.3.4.5", "::1", "[::1]", "localhost"]))
    assert not any(map(is_loopback, ["0.0.0.0", "192.168.1.4", "::", "example.org", ""]))


def test_flags_win_over_settings_and_the_default_is_loopback() -> None:
    settings = HttpSettings(listen="127.0.0.1:9000")
    assert resolve(HttpSettings(), env={}).url == "http://127.0.0.1:7080/"  # type: ignore[union-attr]
    default = resolve(HttpSettings(), env={})
    assert default is not None and not default.explicit
    chosen = resolve(settings, env={})
    assert chosen is not None and (chosen.port, chosen.explicit) == (9000, True)
    flagged = resolve(settings, listen="[::1]:9001", env={})
    assert flagged is not None and flagged.url == "http://[::1]:9001/"
    assert resolve(settings, enabled=False, env={}) is None
    assert resolve(HttpSettings(enabled=False), env={}) is None
    assert resolve(HttpSettings(enabled=False), listen="127.0.0.1:1", env={}) is not None


def test_a_non_loopback_address_needs_a_token() -> None:
    with pytest.raises(HttpConfigError, match="needs a token"):
        resolve(HttpSettings(), listen="0.0.0.0:7080", env={})
    options = resolve(HttpSettings(), listen="0.0.0.0:7080", env={"CUECAP_HTTP_TOKEN": TOKEN})
    assert options is not None and options.token == TOKEN
    flag = resolve(HttpSettings(), listen="0.0.0.0:7080", token=TOKEN, env={})
    assert flag is not None and flag.token == TOKEN


def test_the_token_from_the_variable_the_settings_name() -> None:
    settings = HttpSettings(listen="0.0.0.0:7080", token_env="LAB_TOKEN")
    options = resolve(settings, env={"LAB_TOKEN": TOKEN})
    assert options is not None and options.token == TOKEN
    with pytest.raises(HttpConfigError, match="LAB_TOKEN, which is not set"):
        resolve(settings, env={})
    with pytest.raises(HttpConfigError, match="too short"):
        resolve(settings, env={"LAB_TOKEN": "short"})


def test_settings_hold_a_variable_name_never_a_token() -> None:
    with pytest.raises(ValueError, match="not an environment variable name"):
        HttpSettings(token_env="my secret token!")
    with pytest.raises(ValueError, match="HOST:PORT"):
        HttpSettings(listen="7080")


# -- the access rules -------------------------------------------------------------------


def check(policy: AccessPolicy, kind: Kind, client: str = "127.0.0.1", **headers: str) -> Verdict:
    cookies = {COOKIE: headers.pop("cookie")} if "cookie" in headers else {}
    merged = {**LOCAL, **{k.replace("_", "-"): v for k, v in headers.items()}}
    return policy.check(kind=kind, client=client, headers=merged, cookies=cookies)


def test_loopback_without_a_token_serves_loopback_clients_only() -> None:
    policy = AccessPolicy("127.0.0.1", None)
    assert check(policy, Kind.READ) is Verdict.ALLOW
    assert check(policy, Kind.CONTROL) is Verdict.ALLOW
    assert check(policy, Kind.READ, client="10.0.0.5") is Verdict.NEEDS_TOKEN


def test_cross_site_control_is_forbidden_and_same_site_is_not() -> None:
    policy = AccessPolicy("127.0.0.1", None)
    assert check(policy, Kind.CONTROL, origin="http://evil.example") is Verdict.FORBIDDEN
    assert check(policy, Kind.CONTROL, origin="http://127.0.0.1:7081") is Verdict.FORBIDDEN
    assert check(policy, Kind.CONTROL, sec_fetch_site="cross-site") is Verdict.FORBIDDEN
    assert check(policy, Kind.CONTROL, sec_fetch_site="same-site") is Verdict.FORBIDDEN
    assert check(policy, Kind.CONTROL, origin="http://127.0.0.1:7080") is Verdict.ALLOW
    assert check(policy, Kind.CONTROL, sec_fetch_site="same-origin") is Verdict.ALLOW
    assert check(policy, Kind.READ, origin="http://evil.example") is Verdict.ALLOW  # reads: CORS


def test_a_foreign_host_header_is_forbidden_on_loopback() -> None:
    policy = AccessPolicy("127.0.0.1", None)
    assert check(policy, Kind.READ, host="evil.example:7080") is Verdict.FORBIDDEN
    assert check(policy, Kind.READ, host="localhost:7080") is Verdict.ALLOW
    assert check(policy, Kind.READ, host="[::1]:7080") is Verdict.ALLOW


def test_with_a_token_every_control_and_every_remote_request_carries_it() -> None:
    policy = AccessPolicy("0.0.0.0", TOKEN)
    lan = {"host": "192.168.1.9:7080"}
    assert check(policy, Kind.READ) is Verdict.ALLOW  # a loopback read
    assert check(policy, Kind.CONTROL) is Verdict.NEEDS_TOKEN
    assert check(policy, Kind.CONTROL, authorization=f"Bearer {TOKEN}") is Verdict.ALLOW
    assert check(policy, Kind.CONTROL, authorization=f"Basic {TOKEN}") is Verdict.NEEDS_TOKEN
    assert check(policy, Kind.READ, "192.168.1.20", **lan) is Verdict.NEEDS_TOKEN
    assert check(policy, Kind.READ, "192.168.1.20", **lan, cookie=TOKEN) is Verdict.ALLOW
    assert (
        check(policy, Kind.READ, "192.168.1.20", **lan, cookie=TOKEN + "x") is Verdict.NEEDS_TOKEN
    )
    assert check(policy, Kind.SIGN_IN, "192.168.1.20", **lan) is Verdict.ALLOW
    assert (
        check(policy, Kind.SIGN_IN, "192.168.1.20", **lan, origin="http://evil.example")
        is Verdict.FORBIDDEN
    )


# -- downloads ---------------------------------------------------------------------------


def test_downloads_stay_inside_their_folder(tmp_path: Path) -> None:
    root = tmp_path / "rec"
    (root / "moves").mkdir(parents=True)
    (root / "moves" / "a.bin").write_bytes(b"x")
    (tmp_path / "secret").write_text("no", encoding="utf-8")
    (root / "moves" / "link.bin").symlink_to(tmp_path / "secret")
    assert inside(root, "moves/a.bin") == (root / "moves" / "a.bin").resolve()
    for bad in ("../secret", "moves/../../secret", "/etc/passwd", "", "moves/link.bin", "a\0b"):
        with pytest.raises(PathEscapeError):
            inside(root, bad)
    with pytest.raises(FileNotFoundError):
        inside(root, "moves/missing.bin")
    with pytest.raises(FileNotFoundError):
        inside(root, "moves")  # a folder is not a download
