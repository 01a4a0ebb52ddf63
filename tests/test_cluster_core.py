"""The cluster's pure parts: the firing decision, names, settings, the bounded outbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from engine.cluster.decide import RECENT, Delivery, Mode, RulePolicy, Verdict, decide
from engine.cluster.link import Outbox, Outgoing
from engine.cluster.names import Names, token
from engine.rules.errors import RuleFileError
from engine.rules.loader import load_rules

SINGLE = RulePolicy(Mode.SINGLE, 10, 0.0, 1.0)


RAN = [(99.0, 101.5)]  # a run that finished: going from 99 to 101.5


@pytest.mark.parametrize(
    ("policy", "delivery", "accepted", "runs", "verdict"),
    [
        # handed out at once: runs
        (SINGLE, Delivery(100.0, 1, 0, 100.0, 0.01), [], [], Verdict.RUN),
        # waited past its grace for a run that was going: dropped, as single drops an overlap
        (SINGLE, Delivery(100.0, 1, 0, 100.0, 1.5), [99.0], RAN, Verdict.LATE),
        # waited as long, but behind a fire whose engine died (no finished run covers it)
        (SINGLE, Delivery(100.0, 1, 0, 100.0, 2.5), [99.0], [(101.6, 102.0)], Verdict.RUN),
        # published long after its instant (the server was away) and handed out at once: runs
        (SINGLE, Delivery(40.0, 1, 0, 100.0, 0.05), [30.0], RAN, Verdict.RUN),
        # a redelivery (its engine died) runs however late, and even if recorded
        (SINGLE, Delivery(100.0, 2, 0, 100.0, 30.0), [100.0], RAN, Verdict.RUN),
        # a copy of an accepted instant (the server forgot the id): not again
        (SINGLE, Delivery(100.0, 1, 0, 100.0, 0.0), [99.0, 100.0], [], Verdict.DUPLICATE),
        # older than every remembered instant of a full record: a late copy
        (SINGLE, Delivery(1.0, 1, 0, 1.0, 0.0), [float(i) for i in range(10, 10 + RECENT)], [],
         Verdict.DUPLICATE),
        # cooldown holds across engines: the record says when it last ran
        (RulePolicy(Mode.SINGLE, 10, 5.0, 1.0), Delivery(103.0, 1, 0, 103.0, 0.0), [100.0], [],
         Verdict.COOLED),
        (RulePolicy(Mode.SINGLE, 10, 5.0, 1.0), Delivery(105.0, 1, 0, 105.0, 0.0), [100.0], [],
         Verdict.RUN),
        # queued waits its turn however long, up to max waiting behind it
        (RulePolicy(Mode.QUEUED, 3, 0.0, 1.0), Delivery(100.0, 1, 3, 100.0, 60.0), [], RAN,
         Verdict.RUN),
        (RulePolicy(Mode.QUEUED, 3, 0.0, 1.0), Delivery(100.0, 1, 4, 100.0, 60.0), [], RAN,
         Verdict.QUEUE_FULL),
        # parallel: the slots are the server's; one that waited for a slot is dropped
        (RulePolicy(Mode.PARALLEL, 3, 0.0, 1.0), Delivery(100.0, 1, 0, 100.0, 0.2), [99.0], RAN,
         Verdict.RUN),
        (RulePolicy(Mode.PARALLEL, 3, 0.0, 1.0), Delivery(100.0, 1, 0, 100.0, 2.0), [], RAN,
         Verdict.LATE),
    ],
)  # fmt: skip
def test_decide(
    policy: RulePolicy,
    delivery: Delivery,
    accepted: list[float],
    runs: list[tuple[float, float]],
    verdict: Verdict,
) -> None:
    assert decide(policy, delivery, accepted, runs) is verdict


def test_slots_are_the_site_wide_runs_at_once() -> None:
    assert RulePolicy(Mode.PARALLEL, 4, 0.0, 1.0).slots == 4
    for mode in (Mode.SINGLE, Mode.QUEUED, Mode.RESTART):
        assert RulePolicy(mode, 4, 0.0, 1.0).slots == 1


def test_names_agree_and_stay_subject_tokens() -> None:
    names = Names("lab-2")
    assert names.firing_stream == "CUECAP_LAB_2_FIRINGS"
    assert names.firing_id("tick", 1733070000.25) == "tick@1733070000.250000"
    assert names.firing_subject("tick") == "cuecap.lab-2.firings.tick"
    assert names.event_subject("recording.started") == "cuecap.lab-2.events.recording.started"
    dotted = token("cam.north")  # a dot would split the subject
    assert "." not in dotted and dotted != token("cam_north")
    assert token("cam.north") == dotted  # the same on every engine


def _write(tmp_path: Path, cluster: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(
        "settings:\n"
        f"  cluster: {cluster}\n"
        "rules:\n"
        "  tick:\n"
        "    when: {type: schedule, every: 1s}\n"
        "    do: {type: log, message: tick}\n"
    )
    return path


def test_cluster_settings_name_the_environment_variables_of_their_secrets(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path, "{nats: 'nats://n1:4222', name: lab, password_env: NATS_PASSWORD}")
    rules = load_rules([path], env={"NATS_PASSWORD": "s3cret-pw"})
    cluster = rules.settings.cluster
    assert cluster is not None
    assert cluster.nats == ["nats://n1:4222"] and cluster.name == "lab"
    assert cluster.secret_names() == [("password_env", "NATS_PASSWORD")]
    assert "s3cret-pw" not in repr(rules.settings)  # the value is read at connect only
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    assert f"{path}:2:" in str(info.value)
    assert "cluster.password_env: environment variable NATS_PASSWORD is not set" in str(info.value)


@pytest.mark.parametrize(
    ("cluster", "message"),
    [
        ("{nats: 'http://n1:4222', name: lab}", "is not a NATS URL"),
        ("{nats: 'nats://n1:4222', name: 'two words'}", "name"),
        ("{nats: 'nats://n1:4222'}", "name"),
        ("{nats: 'nats://n1:4222', name: lab, ack_wait: 0}", "ack_wait"),
    ],
)
def test_bad_cluster_settings_are_errors_with_their_place(
    tmp_path: Path, cluster: str, message: str
) -> None:
    path = _write(tmp_path, cluster)
    with pytest.raises(RuleFileError) as info:
        load_rules([path], env={})
    text = str(info.value)
    assert message in text
    assert f"{path}:2:" in text  # file:line:column of the cluster setting


async def test_outbox_is_bounded_drops_the_oldest_and_expires_what_is_too_old() -> None:
    now = [0.0]
    outbox = Outbox(3, lambda: now[0])
    for i in range(5):
        outbox.put(Outgoing(f"s.{i}", b"", deadline=10.0 if i == 3 else None))
    assert len(outbox) == 3 and outbox.dropped == 2  # s.0, s.1 pushed out
    now[0] = 20.0  # s.3 waited past its deadline
    first = await outbox.next()
    assert first.subject == "s.2"
    outbox.done(first)
    second = await asyncio.wait_for(outbox.next(), 1)
    assert second.subject == "s.4" and outbox.expired == 1 and outbox.sent == 1


def test_cuecap_run_says_at_start_which_site_it_joins(tmp_path: Path) -> None:
    from engine.cli.startup import RunOptions, startup_lines

    path = _write(tmp_path, "{nats: ['nats://n1:4222', 'nats://n2:4222'], name: lab}")
    rules = load_rules([path], env={})
    lines = startup_lines(rules, 0.0, RunOptions(None, None, None, False, ()), tmp_path)
    assert (
        "  cluster lab: one of the site's engines, NATS at nats://n1:4222, nats://n2:4222 "
        "(schedules and shot limits shared)" in lines
    )


async def test_a_shot_asked_on_the_site_tells_its_statuses_in_order_and_one_final() -> None:
    from engine.cluster.shots import _Tracker, _update
    from engine.shots.status import ShotStatus

    told: list[tuple[str, int]] = []
    tracker = _Tracker("g", "cam", lambda _guid, s: told.append((str(s), s.try_number)))
    # a try's status overtakes the queue's acknowledgement; copies come twice
    tracker.tell(_update(ShotStatus.saving, "g", "cam", tries=1))
    tracker.tell(_update(ShotStatus.in_queue, "g", "cam"))
    tracker.tell(_update(ShotStatus.saving, "g", "cam", tries=1))
    tracker.tell(_update(ShotStatus.saving, "g", "cam", tries=2))
    tracker.final(_update(ShotStatus.success, "g", "cam", tries=2))
    tracker.final(_update(ShotStatus.error, "g", "cam", tries=2, reason="late copy"))
    tracker.tell(_update(ShotStatus.saving, "g", "cam", tries=3))
    assert told == [("in_queue", 0), ("saving", 1), ("saving", 2), ("success", 2)]
