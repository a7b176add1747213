"""Readable renderings of a metrics summary for the terminal."""

from __future__ import annotations

from typing import Any

from .tables import table, text


def _num(value: Any, unit: str = "", digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}{unit}"
    return f"{value}{unit}"


def render_summary(s: dict[str, Any]) -> str:
    """The metrics summary as aligned text: queries, latency, SLO, recall, cost, detail."""
    q, lat, slo = s["queries"], s["latency_s"], s["slo"]
    if s["mode"] == "live":
        head = f"scenario {s['scenario']}  seed {s['seed']}  LIVE {s['duration_s']:.0f} s"
    else:
        head = (
            f"scenario {s['scenario']}  seed {s['seed']}  simulated {s['duration_s']:.0f} s"
            f"  in {s['wall_s']:.2f} s wall ({s['events']:,} events)"
        )
    lines = [
        head,
        "queries    " + "  ".join(f"{k} {v:,}" for k, v in q.items()),
        "latency_s  " + "  ".join(f"{k} {_num(v)}" for k, v in lat.items()),
        f"slo        target {slo['target_s']} s"
        f"  violation_rate {_num(slo['violation_rate'], digits=4)}"
        f"  goodput {_num(slo['goodput_qps'], ' q/s', 2)}",
        f"recall@k   {_num(s['recall_at_k'], digits=4)}"
        f"  answer_quality {_num(s.get('answer_quality'), digits=4)}",
        f"cost       gpu_hours {_num(s['gpu_hours'], digits=2)}"
        f"  usd {_num(s['cost_usd'], digits=2)}  throughput {_num(s['throughput_qps'], ' q/s', 2)}",
    ]
    if s.get("sessions"):
        lines.insert(2, f"sessions   {s['sessions']} (how a session's turns were sent)")
    ttft, kv = s.get("ttft_s"), s.get("kv_cache")
    if ttft or kv:
        first = "  ".join(f"{k} {_num(v)}" for k, v in (ttft or {}).items()) or "-"
        hits = "" if kv is None else f"  kv_cache hit_rate {_num(kv['hit_rate'], digits=4)}"
        lines.append(f"ttft_s     {first}{hits}")
    util = "  ".join(f"{k} {_num(v, digits=2)}" for k, v in s["utilisation"].items())
    lines.append(f"utilisation {util}")
    reps = "  ".join(
        f"{k} {v['running']}" + (f"+{v['starting']}" if v["starting"] else "")
        for k, v in s["replicas"].items()
    )
    lines.append(f"replicas   {reps}")
    lines.append(_messages(s["messages"]))
    fails = {k: v for k, v in s["failures"].items() if v}
    if fails or s["outcomes"]:
        lines.append(f"failures   {fails}  outcomes {s['outcomes']}")
    if s.get("faults"):
        lines.append(_faults(s["faults"]))
    return "\n".join(lines)


def _faults(f: dict[str, Any]) -> str:
    """The fault schedule's line: what was applied, what it did, availability."""
    counts = ("deaths_declared", "false_deaths", "late_results_discarded", "messages_dropped",
              "heartbeats_lost", "guardrail_fallbacks")  # fmt: skip
    did = "  ".join(f"{k} {f[k]}" for k in counts if f[k])
    up = _num(f["window_availability"], digits=3)
    return (
        f"faults     {len(f['applied'])} applied  {did}  availability "
        f"{_num(f['availability'], digits=4)}  windows_up {up}"
    )


def _messages(msgs: dict[str, Any]) -> str:
    dropped = sum(msgs["dropped"].values())
    return (
        f"messages   sent {msgs['sent']:,}  received {msgs['received']:,}  dropped {dropped:,}"
        + (f" {msgs['dropped']}" if dropped else "")
    )


COMPARED = ("latency_s.p50", "latency_s.p99", "slo.violation_rate", "recall_at_k",
            "answer_quality", "gpu_hours", "cost_usd")  # fmt: skip


def render_comparison(result: dict[str, Any]) -> str:
    """A table of the key metrics per controller: mean and 95% half-width over seeds."""
    seeds = result["seeds"]
    head = f"scenario {result['scenario']}  seeds {seeds[0]}..{seeds[-1]} ({len(seeds)})"
    rows = [[label, *(_cell(metrics.get(m)) for m in COMPARED)]
            for label, metrics in result["controllers"].items()]  # fmt: skip
    return head + "\n" + text(table(["controller", *COMPARED], rows))


def _cell(stat: dict[str, Any] | None) -> str:
    if not stat or stat["mean"] is None:
        return "n/a"
    half = (stat["ci95"][1] - stat["ci95"][0]) / 2
    return f"{stat['mean']:.4g} ± {half:.2g}"


def render_status(st: dict[str, Any]) -> str:
    """``live status`` as text: layers, queries, recent latency, controllers, events."""
    rec = st["recent"]
    lines = [
        f"swarm {st['scenario']}  up {st['uptime_s']:.0f} s  control {st['addresses']['control']}"
        f"  queries {st['addresses']['queries']}",
        "queries    "
        + "  ".join(f"{k} {v:,}" for k, v in st["queries"].items())
        + f"  in flight {st['active']}",
        f"last {rec['window_s']:.0f} s  finished {rec['finished']}  completed {rec['completed']}"
        f"  p50 {_num(rec['p50_s'], ' s')}  p95 {_num(rec['p95_s'], ' s')}"
        f"  p99 {_num(rec['p99_s'], ' s')}",
    ]
    auth = st.get("auth")
    if auth is not None:  # a swarm with keys: what each socket's authenticator decided
        state = "running" if auth["running"] else "DOWN"
        lines.append(f"keys {auth['keys']}  authenticator {state}"
                     + "".join(f"  {d} {auth[d]['admitted']} admitted / {auth[d]['denied']} denied"
                               for d in ("workers", "clients", "control")))  # fmt: skip
    lines += ["", _layers(st["layers"]), ""]
    if not st["controllers"]:
        lines.append("controllers: none attached (every Task runs its heuristic)")
    for task, c in st["controllers"].items():
        lines.append(f"{task}: {_controller(c['acting'], 'acting')}")
        if c["candidate"] is not None:
            mode = c["mode"] + (f" {c['split']:g}" if c["mode"] == "split" else "")
            lines.append(f"  {_controller(c['candidate'], mode)}")
        if c["acting"] is not None:
            lines.append(
                f"  decisions {c['decisions']:,}  invalid {c['invalid']:,}  decision p50/p99 "
                f"{_num(c['decision_us_p50'], ' us', 0)} / {_num(c['decision_us_p99'], ' us', 0)}"
            )
    if st["events"]:
        lines += ["", "events:"]
        for e in st["events"]:
            lines.append(
                f"  {e['t']:9.1f} s  {e['task']}: {e['change']} {e['controller']}"
                + (f" ({e['detail']})" if e["detail"] else "")
            )
    return "\n".join(lines)


def _layers(layers: dict[str, Any]) -> str:
    rows = [
        [name, ly["role"], " ".join(f"{k} {v}" for k, v in sorted(ly["workers"].items())),
         ly["healthy"], ly["queue"], ly["in_flight"]]
        for name, ly in layers.items()
    ]  # fmt: skip
    return text(table(["layer", "role", "workers", "healthy", "queue", "in flight"], rows, 3))


def _controller(c: dict[str, Any] | None, role: str) -> str:
    if c is None:
        return "heuristic (no controller attached)"
    fallbacks = {k: v for k, v in c["fallbacks"].items() if v}
    digest = f"  sha256 {c['sha256'][:12]}" if c["sha256"] else ""
    implicit = " (heuristic, facing the candidate)" if c.get("implicit") else ""
    return (
        f"{role} {c['name']}{implicit}{digest}  for {c['for_s']:.0f} s  decisions "
        f"{c['decisions']:,}  fallbacks {fallbacks or 0}"
    )
