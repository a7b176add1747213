"""The controllers attached to a running coordinator: one ``TaskSlot`` per Task, the
operator requests that change them, and the decisions they take through the coordinator."""

from __future__ import annotations

import sys
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from envs.registry import make_task
from envs.task import Actor, Task
from swarmsim.errors import SwarmError
from swarmsim.view import NO_AGENT

from . import operator, sockets
from .attachment import ACTING, CANDIDATE, TaskSlot
from .config import LiveConfig
from .protocol import Message

if TYPE_CHECKING:
    from .coordinator import Coordinator
    from .state import Query


class Controls:
    """Who takes each Task's decisions in one swarm, and the changes made to that."""

    def __init__(self, coord: Coordinator, cfg: LiveConfig) -> None:
        self.coord, self.cfg = coord, cfg
        self.slots: dict[str, TaskSlot] = {}  # controllers attached, per Task
        self.route_slot: TaskSlot | None = None  # the slot of the per-query routing Task
        self.place_slot: TaskSlot | None = None  # the slot of the per-query placement Task
        self.changes: deque[dict[str, Any]] = deque(maxlen=100)  # controller events (status)
        # controllers named by ATTACH requests are read and verified off the loop
        self.loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="attach")
        self.loading: list[tuple[bytes, Message, Future]] = []

    def close(self) -> None:
        self.loader.shutdown(wait=False, cancel_futures=True)

    def acting(self) -> dict[str, str]:
        """Each Task with an attached acting controller -> its label (the rest follow the
        scenario's own rules)."""
        return {
            name: slot.acting.label
            for name, slot in self.slots.items()
            if slot.active and slot.acting is not None and not slot.acting.implicit
        }

    # --- decisions -------------------------------------------------------------------------

    def decide_route(self, query: Query, layer: str) -> None:
        """Route the waiting ``query`` by the attached controller, else by the default plan.
        A plan the coordinator refuses (ValueError) is counted and replaced by the default."""
        coord, slot = self.coord, self.route_slot
        if slot is None or not slot.active:
            coord.route(query.id, coord.default_plan(layer))
            return
        try:
            slot.decide(coord, query)
        except ValueError:
            coord.counts["bad_plans"] += 1
            if query.id in coord.awaiting:
                coord.route(query.id, coord.default_plan(layer))

    def placing(self) -> bool:
        """Whether a controller places synthesizer jobs (else the layer's rule does)."""
        return self.place_slot is not None and self.place_slot.active

    def decide_place(self, query: Query) -> None:
        """Place the waiting ``query``'s synthesizer job by the attached controller. A
        placement the coordinator refuses (ValueError) is counted and left to the layer's
        dispatch rule."""
        coord, slot = self.coord, self.place_slot
        assert slot is not None  # the pipeline asks only while placing()
        try:
            slot.decide(coord, query)
        except ValueError:
            coord.counts["bad_plans"] += 1
            if query.id in coord.pipeline.placing:
                coord.place(query.id, NO_AGENT)

    def decide_interval(self) -> None:
        """A control interval ended: each attached control Task decides."""
        for slot in list(self.slots.values()):
            if slot.active and slot.task.decision == "control":
                slot.decide(self.coord)

    def check(self) -> None:
        """At a heartbeat: detach the controllers whose decisions keep failing."""
        for slot in self.slots.values():
            self.log_changes(slot.check())

    # --- attach and detach -----------------------------------------------------------------

    def attach(
        self,
        task: Task | str,
        controller: Actor,
        label: str,
        *,
        sha256: str | None = None,
        mode: str = ACTING,
        split: float = 0.0,
    ) -> None:
        """Let ``controller`` take ``task``'s decisions from the next one on (``mode``
        acting), or decide beside the acting one as a ``shadow`` or ``split`` candidate."""
        name = task if isinstance(task, str) else task.name
        slot = self.slots.get(name)
        if slot is None:
            task = make_task(name) if isinstance(task, str) else task
            if task.decision not in ("route", "place", "control"):
                raise SwarmError(
                    f"{task.name}: the live runtime takes route, place and control "
                    f"decisions, not {task.decision!r} ones yet"
                )
            slot = TaskSlot(task, self.cfg, self.coord.now)
        self.log_changes(slot.install(label, controller, sha256, mode, split))
        slot.log = self.coord.events if self.coord.record else None
        self.slots[name] = slot
        if slot.task.decision == "route":
            self.route_slot = slot
        elif slot.task.decision == "place":
            self.place_slot = slot

    def detach(self, task: str, which: str = ACTING) -> list[dict[str, Any]]:
        """Return ``task`` to its heuristic (or take its candidate out); the events made."""
        slot = self.slots.get(task)
        if slot is None or not slot.active:
            raise SwarmError(f"detach: no controller is attached to {task}")
        if which == CANDIDATE and slot.candidate is None:
            raise SwarmError(f"detach: {task} has no shadow or split candidate")
        events = slot.remove(which, "by operator")
        self.log_changes(events)
        return events

    def log_changes(self, events: list[dict[str, Any]]) -> None:
        coord = self.coord
        for event in events:
            self.changes.append(event)
            coord.telemetry.controller_change(event["task"], event["change"])
            if event["change"] in ("auto-detached", "benched", "reinstated"):
                print(f"swarmsim: {event['task']}: {event['controller']} {event['change']}: "
                      f"{event['detail']}", file=sys.stderr)  # fmt: skip
            if coord.record:
                coord.events.append(event)

    # --- operator requests -----------------------------------------------------------------

    def request(self, peer: bytes, msg: Message) -> None:
        """An operator's request: answered at once, or (ATTACH) once its controller loaded."""
        if msg.action != "ATTACH":
            sockets.send(self.coord.control, operator.handle(self.coord, msg), peer)
            return
        p = msg.payload if isinstance(msg.payload, dict) else {}
        self.loading.append((peer, msg, self.loader.submit(operator.load, p)))

    def install_loaded(self) -> None:
        """Attach the controllers whose loading finished, and answer their operators."""
        if not self.loading:
            return
        waiting = []
        for peer, msg, future in self.loading:
            if not future.done():
                waiting.append((peer, msg, future))
                continue
            reply = operator.answer(msg, lambda f=future: operator.attach(self.coord, f.result()))
            sockets.send(self.coord.control, reply, peer)
        self.loading = waiting
