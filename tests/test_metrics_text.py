"""Prometheus text exposition: ``metrics_text()`` and the agent's ``/metrics``, read back with
prometheus_client's own parser (not a regex of ours)."""

from __future__ import annotations

import http.client

import trio
from prometheus_client.parser import text_string_to_metric_families

import swimgossip
from node_helpers import FAST, PATIENCE, start_node
from swimgossip.cli._status import PROMETHEUS_CONTENT_TYPE, serve_status
from swimgossip.net import parse_address
from swimgossip.node._metrics import metrics_text


def _families(
    text: str,
) -> dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]]]:
    """family name -> (type, {(sample name, labels): value})."""
    found = {}
    for family in text_string_to_metric_families(text):
        samples = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for sample in family.samples
        }
        assert family.name not in found, f"family {family.name} twice"
        found[family.name] = (family.type, samples)
    return found


async def test_metrics_text_parses_and_follows_the_naming_conventions() -> None:
    with trio.fail_after(PATIENCE):
        async with trio.open_nursery() as nursery:
            a, _ = await start_node(nursery, "a")
            b, _ = await start_node(nursery, "b")
            await b.join([a.address])
            metrics = a.metrics()
            text = metrics_text(metrics)
            families = _families(text)
            nursery.cancel_scope.cancel()

    # The parser itself adds "_total" to counter samples, so check the text as written.
    types = [line.split()[2:] for line in text.splitlines() if line.startswith("# TYPE ")]
    assert len(types) == len(families)
    for name, kind in types:
        assert name.endswith("_total") == (kind == "counter"), (name, kind)

    assert families["swimgossip_members"][0] == "gauge"
    members = families["swimgossip_members"][1]
    for status in ("alive", "suspect", "dead", "left"):
        key = ("swimgossip_members", (("status", status),))
        assert members[key] == metrics[f"members_{status}"]
    # the parser drops "_total" from a counter's family name; the sample keeps it
    received = families["swimgossip_packets_received"]
    assert received[0] == "counter"
    assert received[1][("swimgossip_packets_received_total", ())] == metrics["packets_in"]
    sent_bytes = families["swimgossip_packets_sent_bytes"][1]
    assert sent_bytes[("swimgossip_packets_sent_bytes_total", ())] == metrics["bytes_out"]
    assert families["swimgossip_health_score"] == (
        "gauge",
        {("swimgossip_health_score", ()): metrics["health"]},
    )
    assert families["swimgossip_event_loop_lag_seconds"][0] == "gauge"
    for name, (kind, samples) in families.items():
        assert name.startswith("swimgossip_"), name
        assert kind in ("counter", "gauge"), name
        for sample_name, _ in samples:
            if kind == "counter":
                assert sample_name == f"{name}_total", sample_name
            else:
                assert not sample_name.endswith("_total"), sample_name
    # every field of metrics() is exposed once: four member statuses share one family
    samples = sum(len(s) for _, s in families.values())
    assert samples == len(metrics)


def test_labels_and_odd_values_are_escaped_and_parse() -> None:
    text = metrics_text(
        {"probes": 3, "event_loop_lag": float("inf"), "health": 0.25},
        labels={"node": 'n"1\\\n'},
    )
    families = _families(text)
    labels = (("node", 'n"1\\\n'),)
    assert families["swimgossip_probes"][1] == {("swimgossip_probes_total", labels): 3}
    lag = families["swimgossip_event_loop_lag_seconds"][1]
    assert lag[("swimgossip_event_loop_lag_seconds", labels)] == float("inf")
    assert families["swimgossip_health_score"][1] == {("swimgossip_health_score", labels): 0.25}
    assert "# HELP swimgossip_probes_total " in text
    assert "# TYPE swimgossip_probes_total counter" in text


def _get(address: str, path: str) -> tuple[int, str, str]:
    host, port = parse_address(address)
    connection = http.client.HTTPConnection(host, port, timeout=PATIENCE)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type") or "", response.read().decode()
    finally:
        connection.close()


async def test_the_status_endpoint_serves_prometheus_text() -> None:
    async with (
        swimgossip.open_node("solo", bind="127.0.0.1:0", config=FAST) as node,
        trio.open_nursery() as nursery,
    ):
        where = await nursery.start(serve_status, node, "127.0.0.1:0")
        status, content_type, body = await trio.to_thread.run_sync(_get, where, "/metrics")
        nursery.cancel_scope.cancel()
    assert status == 200
    assert content_type == PROMETHEUS_CONTENT_TYPE
    families = _families(body)
    alive = families["swimgossip_members"][1][("swimgossip_members", (("status", "alive"),))]
    assert alive == 1
    assert families["swimgossip_probes"][0] == "counter"
