"""Every example in docs/notify.md works: the YAML loads, the commands shown run as shown."""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
from email import message_from_string
from email.policy import default
from pathlib import Path

import pytest
from conftest import free_port

from engine.rules.loader import load_rules

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "notify.md"
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
YAML = [text for lang, text in BLOCKS if lang == "yaml"]
SHELL = [text.strip() for lang, text in BLOCKS if lang == "sh"]
TEXT = [text for lang, text in BLOCKS if lang == "text"]
SECRETS = {"SMTP_USER": "u", "SMTP_PASSWORD": "p", "HOOK_TOKEN": "t", "TELEGRAM_TOKEN": "1:a"}


@pytest.mark.parametrize("index", range(len(YAML)))
def test_each_example_loads(index: int, tmp_path: Path) -> None:
    path = tmp_path / "example.yaml"
    path.write_text(YAML[index], encoding="utf-8")
    needs_shipped = "bench" in YAML[index]  # the examples that build on the shipped rules
    rules = load_rules([REPO / "rules", path] if needs_shipped else [path], env=SECRETS)
    assert rules.targets


def test_the_shot_is_mailed_as_shown(tmp_path: Path) -> None:
    port = free_port()
    server_line, run_line = SHELL
    argv = shlex.split(server_line.replace("8025", str(port)))
    assert argv[:3] == ["python", "-m", "aiosmtpd"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen([sys.executable, *argv[1:]], stdout=subprocess.PIPE, text=True,
                              env=env)  # fmt: skip
    printed_lines: list[str] = []
    # Read as it prints: a full pipe would stall the server in the middle of a message.
    reader = threading.Thread(target=lambda: printed_lines.extend(server.stdout or ()))
    reader.start()
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            assert time.monotonic() < deadline, "aiosmtpd did not listen"
            time.sleep(0.02)
        [mail_yaml] = [y for y in YAML if y.startswith("# mail.yaml")]
        (tmp_path / "mail.yaml").write_text(mail_yaml.replace("8025", str(port)), encoding="utf-8")
        run_line = run_line.replace("/tmp/", f"{tmp_path}/").replace(
            " mail.yaml", f" {tmp_path}/mail.yaml"
        )
        run = shlex.split(run_line)
        done = subprocess.run([sys.executable, "-m", "engine", *run[1:]], cwd=REPO,
                              capture_output=True, text=True, timeout=120)  # fmt: skip
        assert done.returncode == 0, done.stderr
        deadline = time.monotonic() + 10
        while "END MESSAGE" not in "".join(printed_lines):
            assert time.monotonic() < deadline, "aiosmtpd printed no message"
            time.sleep(0.02)
    finally:
        server.terminate()
        server.wait(5)
        reader.join(5)
    first = "".join(printed_lines).split("---------- MESSAGE FOLLOWS ----------\n")[1]
    lines = first.split("------------ END MESSAGE ------------")[0].splitlines()
    printed = "\n".join(lines)
    position = 0
    for shown in TEXT[0].strip().splitlines():  # every line shown, in the order shown
        pattern = re.compile(re.escape(shown).replace(r"\.\.\.", ".*"))
        while not pattern.fullmatch(lines[position]):
            position += 1
            assert position < len(lines), f"{shown!r} not printed (in order):\n{printed}"
    start = next(i for i, text in enumerate(lines) if text.startswith("From: "))
    raw = "\n".join(text for text in lines[start:] if not text.startswith("X-Peer: "))
    message = message_from_string(raw, policy=default)
    [attachment] = list(message.iter_attachments())
    shot = tmp_path / "shots" / str(attachment.get_filename())
    assert attachment.get_payload(decode=True) == shot.read_bytes()  # byte for byte
