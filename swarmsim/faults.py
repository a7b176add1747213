"""Fault schedules: one text form of a fault, read alike by the simulator and the live runtime.

A fault is written ``KIND:TARGET@WHEN[=VALUE]`` (``--inject`` on the command line, a string in
a scenario's ``faults:`` list), so the same schedule rehearses an incident in simulation and on
a live swarm:

==========================================  ================================================
``kill:ROLE[#i]@T``                         the agent dies at T (live: SIGKILL)
``pause:ROLE[#i]@T+D``                      frozen for D seconds (live: SIGSTOP, SIGCONT)
``hang:ROLE[#i]@T[+D]``                     its loop stops progressing, process and sockets live
``slow:ROLE[#i]@T+D=X``                     service X times slower for D seconds
``delay:LINK@T+D=MS[±J]``                   messages on the link take MS ms more (± J, uniform)
``drop:LINK@T+D=P``                         each message on the link is lost with probability P
``partition:NODE@T+D``                      the node cannot reach the others for D seconds
``coordinator:restart@T``                   the coordinator dies and comes back at once
``controller:crash|hang|nan|invalid@T[+D]`` every acting controller misbehaves so
==========================================  ================================================

``ROLE`` is a layer or role name (``retrieval``, ``retriever``); ``#i`` picks its i-th agent in
id order, ``#*`` all of them, and no index means ``#0``. ``LINK`` is the link between the
coordinator and such a target, or ``*`` for every link. Times are scenario seconds and accept
``ms``, ``s``, ``m`` and ``h`` suffixes (``@90s+2m``). Parsing needs no scenario; whether a
target exists is checked by :func:`check_targets` once the scenario is known.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import ConfigError

WORKER_KINDS = ("kill", "pause", "hang", "slow")
LINK_KINDS = ("delay", "drop")
KINDS = (*WORKER_KINDS, *LINK_KINDS, "partition", "coordinator", "controller")
CONTROLLER_MODES = ("crash", "hang", "nan", "invalid")
ALL = -1  # Target.index for ``#*``

_UNITS = {"ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "": 1.0}
_TIME = r"(\d+(?:\.\d+)?)(ms|s|m|h)?"
_SPEC = re.compile(
    rf"^(?P<kind>[a-z]+):(?P<target>[^@]+)@(?P<at>{_TIME})(?:\+(?P<dur>{_TIME}))?"
    r"(?:=(?P<value>[^=]+))?$"
)
_TARGET = re.compile(r"^(?P<name>[A-Za-z_][\w.-]*|\*)(?:#(?P<index>\d+|\*))?$")
_DELAY = re.compile(r"^(?P<ms>\d+(?:\.\d+)?)(?:(?:±|\+-|\+/-)(?P<jitter>\d+(?:\.\d+)?))?$")
FIELD = "faults"


@dataclass(frozen=True)
class Target:
    """What a fault strikes: agents of a layer or role (``index`` ALL for every one), a node
    (``name`` only), ``*`` for every link, or the coordinator or controllers' mode."""

    name: str
    index: int = 0

    def __str__(self) -> str:
        if self.index == ALL:
            return f"{self.name}#*"
        return self.name if self.index == 0 else f"{self.name}#{self.index}"


@dataclass(frozen=True)
class Fault:
    """One scheduled fault; ``text`` is the spec it was read from (for logs and reports)."""

    kind: str
    target: Target
    at_s: float
    duration_s: float | None = None  # None: until the run ends (kill, hang, restart: instant)
    value: float | None = None  # slow: factor; delay: milliseconds; drop: probability
    jitter_ms: float = 0.0  # delay only
    text: str = ""

    @property
    def end_s(self) -> float | None:
        """When the fault is lifted, or None if it is never lifted."""
        return None if self.duration_s is None else self.at_s + self.duration_s


def parse_fault(text: str, field: str = FIELD) -> Fault:
    """A :class:`Fault` from its text form; a :class:`ConfigError` naming ``field`` and saying
    what is wrong otherwise."""
    spec = text.strip()
    m = _SPEC.match(spec)
    if m is None:
        raise ConfigError(field, text, "KIND:TARGET@T[+D][=VALUE], e.g. kill:retriever#1@60")
    kind = m["kind"]
    if kind not in KINDS:
        raise ConfigError(field, text, f"a fault kind ({', '.join(KINDS)})")
    at_s = _seconds(m["at"])
    duration = _seconds(m["dur"]) if m["dur"] is not None else None
    value, jitter = _value(kind, m["value"], text, field)
    target = _target(kind, m["target"], text, field)
    needs_duration = kind in ("pause", "slow", *LINK_KINDS, "partition")
    if needs_duration and duration is None:
        raise ConfigError(field, text, f"a duration for {kind} (@T+D)")
    if kind in ("kill", "coordinator") and duration is not None:
        raise ConfigError(field, text, f"no duration for {kind} (it is instant)")
    if duration is not None and duration <= 0:
        raise ConfigError(field, text, "a duration > 0")
    return Fault(kind, target, at_s, duration, value, jitter, spec)


def parse_faults(texts: Iterable[str], field: str = FIELD) -> tuple[Fault, ...]:
    """Every fault of a list, in time order (stable for equal times); errors name ``field[i]``."""
    faults = []
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise ConfigError(f"{field}[{i}]", text, "a fault spec string")
        faults.append(parse_fault(text, f"{field}[{i}]"))
    return tuple(sorted(faults, key=lambda f: f.at_s))


def check_targets(
    faults: Sequence[Fault],
    names: dict[str, int],
    nodes: Iterable[str],
    field: str = FIELD,
) -> None:
    """Raise a :class:`ConfigError` for a fault whose target the run does not have.

    ``names`` maps each layer and role name to how many agents it starts with; ``nodes`` are
    the node names. An index past the count is refused: the fault would silently do nothing.
    """
    node_names = set(nodes)
    for fault in faults:
        t = fault.target
        if fault.kind in (*WORKER_KINDS, *LINK_KINDS) and t.name != "*":
            if t.name not in names:
                raise ConfigError(field, fault.text, f"a layer or role name ({sorted(names)})")
            if t.index != ALL and t.index >= names[t.name]:
                raise ConfigError(
                    field, fault.text, f"an index below {names[t.name]} ({t.name} agents)"
                )
        if fault.kind == "partition" and t.name not in node_names:
            raise ConfigError(field, fault.text, f"a node name ({sorted(node_names)})")


def _seconds(text: str) -> float:
    m = re.fullmatch(_TIME, text)
    assert m is not None  # the spec pattern matched it already
    return float(m[1]) * _UNITS[m[2] or ""]


def _value(kind: str, raw: str | None, text: str, field: str) -> tuple[float | None, float]:
    if kind in ("slow", *LINK_KINDS) and raw is None:
        wanted = {"slow": "=X (a slowdown factor)", "delay": "=MS[±J]", "drop": "=P"}[kind]
        raise ConfigError(field, text, f"a value for {kind}: {wanted}")
    if kind not in ("slow", *LINK_KINDS):
        if raw is not None:
            raise ConfigError(field, text, f"no =VALUE for {kind}")
        return None, 0.0
    assert raw is not None
    if kind == "delay":
        m = _DELAY.match(raw)
        if m is None:
            raise ConfigError(field, text, "a delay MS or MS±J in milliseconds")
        ms, jitter = float(m["ms"]), float(m["jitter"] or 0.0)
        if jitter > ms:
            raise ConfigError(field, text, "a jitter no larger than the delay")
        return ms, jitter
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(field, text, f"a number after = for {kind}") from None
    if kind == "slow" and not value >= 1.0:
        raise ConfigError(field, text, "a slowdown factor >= 1")
    if kind == "drop" and not 0.0 <= value <= 1.0:
        raise ConfigError(field, text, "a drop probability in [0, 1]")
    return value, 0.0


def _target(kind: str, raw: str, text: str, field: str) -> Target:
    if kind == "coordinator":
        if raw != "restart":
            raise ConfigError(field, text, "coordinator:restart@T")
        return Target("restart")
    if kind == "controller":
        if raw not in CONTROLLER_MODES:
            raise ConfigError(field, text, f"a controller fault ({', '.join(CONTROLLER_MODES)})")
        return Target(raw)
    m = _TARGET.match(raw)
    if m is None:
        raise ConfigError(field, text, "a target NAME, NAME#i or NAME#*")
    name, index = m["name"], m["index"]
    if kind == "partition":
        if index is not None or name == "*":
            raise ConfigError(field, text, "a node name for partition (no #index)")
        return Target(name)
    if name == "*" and kind not in LINK_KINDS:
        raise ConfigError(field, text, f"a layer or role name for {kind} (* is for links)")
    if name == "*":
        return Target("*", ALL)
    return Target(name, ALL if index == "*" else int(index or 0))
