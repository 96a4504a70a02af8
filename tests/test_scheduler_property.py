"""Property: what the scheduler reports running is, at every instant, what the rules say.

Random dispatch sets with recurrences (minutely, hourly, daily; count and until) and
random creates, updates and deletes at random instants run through the real client and
scheduler on a FakeClock. At every checked instant the running set must equal the one
computed here directly from the rules with dateutil (not with the library's schedule
code), and the running-state changes received so far must replay to that same set
(a duplicate STARTED or a STOPPED for something not running fails).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import attrs
import pytest
from dateutil import rrule
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch_client import (
    ChangeKind,
    Client,
    Dispatch,
    EndCriteria,
    Frequency,
    RecurrenceRule,
    RetryPolicy,
    Scheduler,
    TargetIds,
)
from dispatch_client.testing import FakeClock, FakeDispatchService
from transports import MemoryTransport

pytestmark = pytest.mark.anyio

URL = "grpc://dispatch.test:50051?ssl=false"
MG = 3
T0 = datetime(2030, 1, 7, 14, 0, tzinfo=UTC)  # in the future: create() checks the real time
MIN = timedelta(minutes=1)
HORIZON = 12 * 60  # minutes
FREQUENCIES = {
    Frequency.MINUTELY: rrule.MINUTELY,
    Frequency.HOURLY: rrule.HOURLY,
    Frequency.DAILY: rrule.DAILY,
}


@attrs.frozen
class Spec:
    """A dispatch to create: offsets in minutes from the moment it is created."""

    start: int
    duration: int | None
    rule: RecurrenceRule | None
    payload: int


@attrs.frozen
class Op:
    """Something done at minute `at`: create a spec, or update/delete the n-th dispatch."""

    at: int
    kind: str
    spec: Spec | None = None
    index: int = 0
    value: int = 0


@st.composite
def rules(draw: st.DrawFn) -> RecurrenceRule | None:
    """No rule, or a minutely/hourly/daily rule with an optional count or until."""
    if draw(st.booleans()):
        return None
    frequency = draw(st.sampled_from(list(FREQUENCIES)))
    interval = draw(st.integers(1, 3)) * (15 if frequency is Frequency.MINUTELY else 1)
    end = draw(st.sampled_from(["none", "count", "until"]))
    criteria = None
    if end == "count":
        criteria = EndCriteria(count=draw(st.integers(1, 6)))
    elif end == "until":
        criteria = EndCriteria(until=T0 + draw(st.integers(0, HORIZON)) * MIN)
    # Filters make the first run differ from the start time (also without a duration).
    byminutes: list[int] = []
    byhours: list[int] = []
    if frequency is Frequency.HOURLY:
        byminutes = draw(st.lists(st.sampled_from([0, 20, 40]), max_size=2, unique=True))
    elif frequency is Frequency.DAILY:
        byhours = draw(st.lists(st.integers(14, 23), max_size=2, unique=True))
    return RecurrenceRule(
        frequency=frequency,
        interval=interval,
        end_criteria=criteria,
        byminutes=byminutes,
        byhours=byhours,
    )


specs = st.builds(
    Spec,
    start=st.integers(1, HORIZON // 2),
    duration=st.one_of(st.none(), st.just(0), st.integers(1, 180)),
    rule=rules(),
    payload=st.integers(0, 3),
)
ops = st.one_of(
    st.builds(Op, at=st.integers(0, HORIZON), kind=st.just("create"), spec=specs),
    st.builds(
        Op,
        at=st.integers(0, HORIZON),
        kind=st.sampled_from(["payload", "duration", "active", "delete"]),
        index=st.integers(0, 10),
        value=st.integers(0, 120),
    ),
)


def runs_at(dispatch: Dispatch, now: datetime) -> bool:
    """The rules, from dateutil directly: is `dispatch` running at `now`?"""
    if not dispatch.active:
        return False
    rule = dispatch.recurrence
    start = dispatch.start_time
    if rule is None or rule.frequency is Frequency.UNSPECIFIED:
        starts: list[datetime] = [start]
    else:
        criteria = rule.end_criteria
        series = rrule.rrule(
            FREQUENCIES[rule.frequency],  # type: ignore[arg-type]
            dtstart=start,
            interval=rule.interval,
            count=criteria.count if criteria else None,
            until=criteria.until if criteria else None,
            byminute=rule.byminutes or None,
            byhour=rule.byhours or None,
        )
        starts = list(series.between(start - MIN, now, inc=True))
    starts = [s for s in starts if s <= now]
    if dispatch.duration is None:
        return bool(starts)  # forever from the first run on
    return any(s <= now < s + dispatch.duration for s in starts)


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(initial=st.lists(specs, max_size=4), steps=st.lists(ops, max_size=8))
async def test_running_set_follows_the_rules(initial: list[Spec], steps: list[Op]) -> None:
    """At every checked instant, the running set equals the rules' and the changes replay to it."""
    clock = FakeClock(T0)
    retry = RetryPolicy(attempts=None, initial=0.001, maximum=0.01, jitter=False)
    with anyio.fail_after(30), FakeDispatchService(clock=clock.now) as service:
        transport = MemoryTransport(service)
        client = Client(server_url=URL, key="k", transport=transport, stream_retry=retry)
        async with client:

            async def create(spec: Spec) -> None:
                start = clock.now() + spec.start * MIN
                rule = spec.rule
                if rule is not None and rule.end_criteria and rule.end_criteria.until:
                    # The API refuses an until before the start: keep the drawn offset.
                    until = start + (rule.end_criteria.until - T0)
                    rule = attrs.evolve(rule, end_criteria=EndCriteria(until=until))
                await client.create(
                    MG,
                    "T",
                    start,
                    None if spec.duration is None else spec.duration * MIN,
                    TargetIds(1),
                    payload={"v": spec.payload},
                    recurrence=rule,
                )

            for spec in initial:
                await create(spec)
            async with Scheduler(client, MG, clock=clock) as scheduler:
                changes = scheduler.running_state_changes()
                replayed: set[int] = set()

                def check() -> None:
                    while (change := changes.receive_nowait()) is not None:
                        if change.kind is ChangeKind.STARTED:
                            assert change.dispatch.id not in replayed, "a duplicate start"
                            replayed.add(change.dispatch.id)
                        elif change.kind is ChangeKind.STOPPED:
                            assert change.dispatch.id in replayed, "a stop without a start"
                            replayed.remove(change.dispatch.id)
                        else:
                            assert change.dispatch.id in replayed
                    now = clock.now()
                    expected = {d.id for d in service.dispatches(MG) if runs_at(d, now)}
                    assert set(scheduler.running) == expected, now
                    assert replayed == expected, now

                check()
                instants = sorted({op.at for op in steps} | set(range(0, HORIZON + 1, 10)))
                by_instant: dict[int, list[Op]] = {}
                for op in steps:
                    by_instant.setdefault(op.at, []).append(op)
                for minute in instants:
                    await clock.advance_to(T0 + minute * MIN)
                    check()
                    for op in by_instant.get(minute, []):
                        await apply(client, create, service, op)
                        await clock.settle()
                        check()


async def apply(client: Client, create: Any, service: FakeDispatchService, op: Op) -> None:
    """Perform one random operation through the client."""
    if op.kind == "create":
        assert op.spec is not None
        await create(op.spec)
        return
    existing = service.dispatches(MG)
    if not existing:
        return
    target = existing[op.index % len(existing)]
    if op.kind == "delete":
        await client.delete(microgrid_id=MG, dispatch_id=target.id)
        return
    choices: dict[str, dict[str, Any]] = {
        "payload": {"payload": {"v": op.value}},
        "duration": {"duration": None if op.value == 0 else op.value * MIN},
        "active": {"active": op.value % 2 == 0},
    }
    await client.update(microgrid_id=MG, dispatch_id=target.id, new_fields=choices[op.kind])
