import assert from "node:assert/strict";
import { Counters } from "./counters.ts";
import { DATAPLANE_METRICS, METRICS } from "./metrics.ts";

Deno.test("Counters.inc() and get() count a series per label set", () => {
  const c = new Counters();
  c.inc(METRICS.msRegisterRejected, { reason: "auth" });
  c.inc(METRICS.msRegisterRejected, { reason: "auth" }, 2);
  c.inc(METRICS.msRegisterRejected, { reason: "no-site" });
  assert.equal(c.get(METRICS.msRegisterRejected, { reason: "auth" }), 3);
  assert.equal(c.get("oor_map_server_map_registers_rejected_total", { reason: "no-site" }), 1);
  assert.equal(c.get(METRICS.msRegisterRejected, { reason: "key-id" }), 0);
});

Deno.test("Counters.series() reads a counter kept elsewhere when the counters are listed", () => {
  const c = new Counters();
  let kept = 5;
  c.series(DATAPLANE_METRICS.droppedPackets, () => kept, { reason: "miss" });
  assert.deepEqual(c.snapshot(), { 'oor_dataplane_dropped_packets_total{reason="miss"}': 5 });
  kept = 9;
  assert.equal(c.get(DATAPLANE_METRICS.droppedPackets, { reason: "miss" }), 9);
});

Deno.test("Counters.family() lists the series a reader yields at each snapshot, and only those", () => {
  const c = new Counters();
  const rtts = new Map([["192.0.2.1", 0.012], ["2001:db8::1", 0.034]]);
  c.family(METRICS.trProbeRtt, () => [...rtts].map(([rloc, s]) => [{ rloc }, s] as const));
  c.inc(METRICS.trProbesSent);
  assert.deepEqual(c.snapshot(), {
    'oor_tr_rloc_probe_rtt_seconds{rloc="192.0.2.1"}': 0.012,
    'oor_tr_rloc_probe_rtt_seconds{rloc="2001:db8::1"}': 0.034,
    "oor_tr_probes_sent_total": 1,
  });
  assert.equal(c.get(METRICS.trProbeRtt, { rloc: "2001:db8::1" }), 0.034);
  rtts.delete("192.0.2.1");
  assert.deepEqual(Object.keys(c.snapshot()), [
    "oor_tr_probes_sent_total",
    'oor_tr_rloc_probe_rtt_seconds{rloc="2001:db8::1"}',
  ]);
  assert.equal(c.get(METRICS.trProbeRtt, { rloc: "192.0.2.1" }), 0);
});

Deno.test("Counters.addend() adds a count kept elsewhere to the series bumped here", () => {
  const c = new Counters();
  const shared = new Float64Array(2);
  c.addend(METRICS.mrForwarded, () => shared[0]!);
  c.addend(METRICS.mrForwarded, () => shared[1]!);
  c.addend(METRICS.mrDropped, () => 3, { reason: "duplicate" });
  assert.equal(c.get(METRICS.mrForwarded), 0);
  shared[0] = 5;
  shared[1] = 2;
  c.inc(METRICS.mrForwarded);
  assert.equal(c.get(METRICS.mrForwarded), 8);
  assert.equal(c.get("oor_mr_dropped_total", { reason: "duplicate" }), 3);
  const s = c.snapshot();
  assert.equal(s["oor_mr_forwarded_total"], 8);
  assert.equal(s['oor_mr_dropped_total{reason="duplicate"}'], 3);
});

Deno.test("Counters: one series whatever the order of its labels, past the cached label values too", () => {
  const c = new Counters();
  c.inc(METRICS.mrResolutions, { result: "succeeded", reason: "ms-ack" });
  c.inc(METRICS.mrResolutions, { reason: "ms-ack", result: "succeeded" });
  assert.equal(c.get(METRICS.mrResolutions, { result: "succeeded", reason: "ms-ack" }), 2);
  // More values of one label than the cache keeps: each still its own series.
  for (let i = 0; i < 1500; i++) c.inc(METRICS.mrDropped, { reason: `r${i}` }, i);
  for (let i = 0; i < 1500; i += 250) {
    assert.equal(c.get(METRICS.mrDropped, { reason: `r${i}` }), i);
  }
  const s = c.snapshot();
  assert.equal(s['oor_mr_resolutions_total{reason="ms-ack",result="succeeded"}'], 2);
  assert.equal(s['oor_mr_dropped_total{reason="r1499"}'], 1499);
  assert.equal(Object.keys(s).filter((k) => k.startsWith("oor_mr_dropped_total")).length, 1500);
});
