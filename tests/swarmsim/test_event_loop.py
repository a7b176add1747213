"""The envs' event loop (clock.run_until) and pool rebuild (Pool.of) against what they replace."""

from __future__ import annotations

from collections.abc import Generator

import simpy

from swarmsim.clock import Call, run_until
from swarmsim.pool import Pool


def _model(env: simpy.Environment, log: list[tuple[str, float]]) -> simpy.Event:
    """Calls and a process at equal and distinct times; ``stop`` triggers at t=2, between
    the two events due then, so the loop must stop after exactly the first."""
    stop = env.event()

    def proc() -> Generator[simpy.Event, None, None]:
        yield env.timeout(1.0)
        log.append(("proc", env.now))
        Call(env, 1.0, lambda _: log.append(("before", env.now)), None)
        Call(env, 1.0, lambda _: stop.succeed(), None)
        Call(env, 1.0, lambda _: log.append(("after", env.now)), None)

    env.process(proc())
    Call(env, 0.5, lambda _: log.append(("call", env.now)), None)
    return stop


def test_run_until_stops_where_env_run_does_with_the_same_event_count() -> None:
    """Story: call at 0.5, proc at 1, then at 2 'before', the stop, 'after'. Both loops stop
    once the stop is processed, after 'after' (scheduled before the stop triggered, so due
    first), and both count the same events; a second run resumes identically."""
    logs: list[list[tuple[str, float]]] = [[], []]
    envs = [simpy.Environment(), simpy.Environment()]
    stops = [_model(env, log) for env, log in zip(envs, logs, strict=True)]
    envs[0].run(until=stops[0])
    run_until(envs[1], stops[1])
    assert logs[0] == logs[1] == [("call", 0.5), ("proc", 1.0), ("before", 2.0), ("after", 2.0)]
    assert next(envs[0]._eid) == next(envs[1]._eid)
    for env, log in zip(envs, logs, strict=True):
        Call(env, 1.0, lambda _, log=log, env=env: log.append(("later", env.now)), None)
        later = env.timeout(2.0)
        if env is envs[0]:
            env.run(until=later)
        else:
            run_until(env, later)
    assert logs[0] == logs[1] and logs[1][-1] == ("later", 3.0)
    assert next(envs[0]._eid) == next(envs[1]._eid)


class _Agent:
    def __init__(self, aid: int, outstanding: int) -> None:
        self.id = aid
        self.outstanding = outstanding
        self.pool: Pool | None = None


def test_pool_of_equals_adding_one_by_one() -> None:
    """Same buckets in the same order (ties go to the first added), size and least pick."""
    agents = [_Agent(i, n) for i, n in enumerate([3, 0, 5, 0, 3, 1])]
    one = Pool()
    for agent in agents:
        one.add(agent)
    bulk = Pool.of(agents)
    assert [list(b) for b in bulk.buckets] == [list(b) for b in one.buckets]
    assert (bulk.size, bulk.lo) == (one.size, one.lo) == (6, 0)
    assert all(a.pool is bulk for a in agents)
    least = bulk.least()
    assert least is not None and least.id == 1
