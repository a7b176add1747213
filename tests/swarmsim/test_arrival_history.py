"""The arrival history in ``LayerStats``: per layer, the jobs/s of the completed control
intervals before the last one, oldest first, as a forecasting controller reads them."""

from __future__ import annotations

from swarmsim import Simulation

ONE_SERVER = """
fabric: {enabled: false}
control_interval_s: 10
layers:
  server: {role: synthesizer, service: {kind: deterministic, rate: 100.0}}
stages: [{layer: server}]
nodes:
  - name: host
    agents: [{layer: server}]
"""


def test_each_control_interval_pushes_its_rate_into_the_history(story) -> None:
    """3 queries in [0, 10), 1 in [10, 20), 2 in [20, 30), 0 in [30, 40), 5 in [40, 50), 1 in
    [50, 60): at each decision the last interval's rate and up to 4 before it."""
    arrivals = [0, 1, 2, 12, 25, 26, 41, 42, 43, 44, 45, 55]
    seen: list[tuple[float, float, tuple[float, ...]]] = []
    sim = Simulation(story(ONE_SERVER, arrivals=arrivals, duration_s=60.5), seed=0)

    def look() -> None:
        st = sim.view().layers["server"]
        seen.append((sim.env.now, st.arrival_rate, st.arrival_history))

    sim.on_control.append(look)
    sim.run()
    assert seen == [
        (10.0, 0.3, ()),
        (20.0, 0.1, (0.3,)),
        (30.0, 0.2, (0.3, 0.1)),
        (40.0, 0.0, (0.3, 0.1, 0.2)),
        (50.0, 0.5, (0.3, 0.1, 0.2, 0.0)),
        (60.0, 0.1, (0.1, 0.2, 0.0, 0.5)),  # four kept: the oldest drops out
    ]
