"""What ``cuecap run`` says: invalid frames in its summary, the over-size hint's setting."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from click.testing import CliRunner
from logfixtures import session, write_recording
from scripted_server import ScriptedServer, sample_events

from engine.cli.main import main
from engine.core.clock import SYSTEM_CLOCK
from engine.rules.loader import load_rules
from engine.runtime.sources import build_source
from engine.sources.websocket import WebSocketSource

BAD = b"\xff\xfe not an event"


def test_invalid_frames_are_counted_in_the_run_summary(tmp_path: Path) -> None:
    good = session(3.0, images=False)
    records = [(good[0][0] - 0.01, BAD), *good[:10], (good[10][0], BAD), *good[10:]]
    rec = write_recording(tmp_path / "in.bin", records)
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "r.yaml").write_text(
        textwrap.dedent(
            f"""\
            sources:
              pd: {{type: replay, path: "{rec}", speed: null}}
            """
        )
    )
    result = CliRunner().invoke(
        main,
        ["run", str(tmp_path / "rules"), "--fast", "--recordings", str(tmp_path / "out")],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.stderr
    first = result.stdout.splitlines()[0]
    assert f"pd: {len(records)} frames (2 invalid)" in first


async def test_the_over_size_hint_names_the_sources_max_size_setting(tmp_path: Path) -> None:
    big = b"\x1a" + bytes(5000)
    async with ScriptedServer([*sample_events(2), big], then="hold") as server:
        path = tmp_path / "r.yaml"
        path.write_text(
            f"sources:\n  cam: {{type: websocket, url: '{server.uri}', max_size: 1000}}\n"
        )
        source = build_source("cam", load_rules([path], env={}).sources["cam"], SYSTEM_CLOCK)
        assert isinstance(source, WebSocketSource)
        async with asyncio.timeout(10):
            async for _ in source:
                if source.stats.errors:
                    break
        await source.aclose()
    (error,) = source.stats.errors
    assert "exceeded max_size (1000 bytes)" in error
    assert "max_size: of source cam in the rule file" in error
    assert "cuecap record" not in error


async def test_a_refused_shot_counts_as_failed() -> None:
    from zoneinfo import ZoneInfo

    from engine.rules.model import Rule
    from engine.runtime.actions import ActionRunner
    from engine.runtime.rulebook import Firing
    from engine.runtime.stats import RunStats

    class Refusing:
        def submit(self, camera: str, **_: object) -> None:
            raise ValueError(f"{camera}: queue full")

    stats = RunStats()
    rule = Rule.model_validate(
        {
            "when": {"type": "event", "event": "engine.started"},
            "do": {"type": "shot", "cameras": ["a", "b"]},
        }
    )
    actions = ActionRunner(
        shots=Refusing(), recorders={}, tz=ZoneInfo("UTC"), on_refused=stats.shot_refused
    )
    await actions.run(rule, Firing("r", 0.0, "event", 0, "engine.started", "", 1, {}))
    summary = stats.summary(started=0.0, ended=1.0, reason="done", sources=[], dry_run=False)
    assert summary.shot_failures == 2
    assert "shots taken: 0, failed: 2" in summary.render(ZoneInfo("UTC"))
    assert summary.shots_failed == ["a: refused: a: queue full", "b: refused: b: queue full"]
