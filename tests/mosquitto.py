"""A real Mosquitto broker for the tests: 127.0.0.1, a free port, a generated config.

Mosquitto comes from the system packages (``tools/system-packages``); a
missing one fails the test saying what to install, it never skips.
"""

from __future__ import annotations

import contextlib
import getpass
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import free_port

START_TIMEOUT = 10.0


def mosquitto_binary() -> str:
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if Path(candidate).is_file():
            return candidate
    pytest.fail("the MQTT tests need Mosquitto: run tools/system-packages (apt install mosquitto)")


@dataclass
class Broker:
    host: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_broker(
    folder: Path,
    port: int | None = None,
    *,
    passwords: Path | None = None,
    tls: tuple[Path, Path] | None = None,
) -> Broker:
    """Start Mosquitto and wait until it accepts connections.

    ``passwords``: a mosquitto_passwd file (anonymous clients are then refused);
    ``tls``: (certificate chain, key) files, and the listener speaks TLS only.
    """
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "mosquitto.conf"
    lines = [f"listener {port} 127.0.0.1", "persistence false", "log_dest stderr", "log_type all"]
    # Started as root, Mosquitto becomes user "mosquitto", who cannot read the test's files.
    lines.append(f"user {getpass.getuser()}")
    if passwords is not None:
        lines += ["allow_anonymous false", f"password_file {passwords}"]
    else:
        lines.append("allow_anonymous true")
    if tls is not None:
        lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
    config.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = folder / "mosquitto.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [mosquitto_binary(), "-c", str(config)], stdout=out, stderr=subprocess.STDOUT
        )
    broker = Broker("127.0.0.1", port, process, log)
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            pytest.fail(f"mosquitto exited with {process.returncode}: {log.read_text()[-2000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return broker
        if time.monotonic() > deadline:
            broker.stop()
            pytest.fail(f"mosquitto did not listen on {port} within {START_TIMEOUT}s")
        time.sleep(0.02)
