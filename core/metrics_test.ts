import assert from "node:assert/strict";
import {
  DATAPLANE_COUNTERS,
  DATAPLANE_METRICS,
  dataplaneSeries,
  type Metric,
  metricByName,
  METRICS,
  PROCESS_METRICS,
} from "./metrics.ts";

const ALL: readonly Metric[] = [
  ...Object.values(METRICS),
  ...Object.values(PROCESS_METRICS),
  ...Object.values(DATAPLANE_METRICS),
];

Deno.test("every declared metric has a Prometheus name, counters end in _total, gauges do not", () => {
  for (const m of ALL) {
    assert.match(m.name, /^oor_[a-z0-9_]+$/, m.name);
    assert.doesNotMatch(m.name, /__|_$/, m.name);
    if (m.type === "counter") assert.match(m.name, /_total$/, m.name);
    else assert.doesNotMatch(m.name, /_total$/, m.name);
    for (const l of m.labels) assert.match(l, /^[a-z][a-z0-9_]*$/, `${m.name} label ${l}`);
  }
});

Deno.test("no declared metric name has an abbreviated unit or a role abbreviation promtool reads as one", () => {
  // promtool's lint: "metric names should not contain abbreviated units".
  const abbreviations = /_(ms|us|ns|sec|secs|min|mins|hr|kb|mb|gb|kib|mib|gib|pct)(_|$)/;
  for (const m of ALL) assert.doesNotMatch(m.name, abbreviations, m.name);
});

Deno.test("metric names are unique and each has help text of its own", () => {
  const names = ALL.map((m) => m.name);
  assert.equal(new Set(names).size, names.length, "no name declared twice");
  for (const m of ALL) {
    assert.ok(m.help.length >= 8 && /\.$/.test(m.help), `${m.name}: "${m.help}"`);
    assert.doesNotMatch(m.help, /^oor (counter|gauge) /, m.name);
    assert.equal(metricByName(m.name), m);
  }
});

Deno.test("dataplaneSeries() exports every data-plane key as a declared metric; drops as a reason label", () => {
  const declared: readonly Metric[] = Object.values(DATAPLANE_METRICS);
  for (const [key, help] of DATAPLANE_COUNTERS) {
    const { metric, labels } = dataplaneSeries(key);
    assert.equal(metricByName(metric.name), metric, `${key} -> ${metric.name} is declared`);
    if (key.startsWith("dropped:")) {
      assert.equal(metric, DATAPLANE_METRICS.droppedPackets);
      assert.deepEqual(labels, { reason: key.slice("dropped:".length) });
      continue;
    }
    assert.equal(labels, undefined, key);
    if (!declared.includes(metric)) {
      // A key without an export of its own: a counter named after it, with its help.
      assert.equal(metric.name, `oor_dataplane_${key.replaceAll("-", "_")}_total`);
      assert.equal(metric.type, "counter");
      assert.equal(metric.help, help);
    }
  }
  const keys = DATAPLANE_COUNTERS.map(([k]) => k).filter((k) => !k.startsWith("dropped:"));
  const exported = new Set(keys.map((k) => dataplaneSeries(k).metric.name));
  assert.equal(exported.size, keys.length, "one metric per key");
  assert.equal(
    dataplaneSeries("encapsulated").metric.name,
    "oor_dataplane_encapsulated_packets_total",
  );
  assert.equal(dataplaneSeries("map-cache-entries").metric.type, "gauge");
});

Deno.test("dataplaneSeries() names a key missing from the export table as a counter of its own", () => {
  const { metric } = dataplaneSeries("gso-segments");
  assert.equal(metric.name, "oor_dataplane_gso_segments_total");
  assert.equal(metric.type, "counter");
  assert.equal(metricByName("oor_dataplane_gso_segments_total"), metric);
});

Deno.test("dataplaneSeries() exports a Worker's packets (worker-packets:<i>) with a worker label", () => {
  const { metric, labels } = dataplaneSeries("worker-packets:1");
  assert.equal(metric, DATAPLANE_METRICS.workerPackets);
  assert.equal(metric.name, "oor_dataplane_worker_packets_total");
  assert.equal(metricByName(metric.name), metric);
  assert.deepEqual(labels, { worker: "1" });
});
