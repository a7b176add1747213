"""A heuristic's tunable parameters, declared beside its registry entry so that ``swarmsim
tune`` searches them without code: keyword, range, and whether to search it on a log scale
or over integers."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tunable:
    """One keyword argument of a controller's factory and the range it is searched over."""

    name: str
    low: float
    high: float
    log: bool = False  # searched uniformly in log(value): for scale-like parameters
    integer: bool = False  # searched over the integers low..high

    def __post_init__(self) -> None:
        if not self.low < self.high:
            raise ValueError(f"{self.name}: low must be < high, got {self.low}..{self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"{self.name}: a log-scale range needs low > 0, got {self.low}")
        if self.integer and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError(f"{self.name}: integer bounds expected, got {self.low}..{self.high}")

    def __str__(self) -> str:
        scale = " log" if self.log else " int" if self.integer else ""
        return f"{self.name}={self.low:g}:{self.high:g}{scale}"


def factory_defaults(factory: Callable[..., Any], params: Sequence[Tunable]) -> dict[str, Any]:
    """The factory's default value of each of ``params`` (what an untuned controller uses);
    raises ValueError naming a parameter the factory does not take with a default."""
    signature = inspect.signature(factory).parameters
    out = {}
    for p in params:
        if p.name not in signature or signature[p.name].default is inspect.Parameter.empty:
            raise ValueError(f"{p.name}: not a keyword argument with a default of {factory}")
        out[p.name] = signature[p.name].default
    return out
