/**
 * The Prometheus text of a snapshot holding a series of every declared
 * metric (and every data-plane key, as the tunnel routers export them)
 * passes `promtool check metrics`, and every family carries its own HELP
 * and TYPE. tests/e2e/metrics_test.ts runs promtool on each running role.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Counters } from "../core/counters.ts";
import {
  DATAPLANE_COUNTERS,
  dataplaneSeries,
  type Metric,
  metricByName,
  METRICS,
} from "../core/metrics.ts";
import { commandsMissing, testNeeding } from "../tests/prereq.ts";
import { renderMetrics } from "./_metrics.ts";

/** Counters with one series of every metric (every label set to a sample value). */
function everything(): Counters {
  const c = new Counters();
  for (const m of Object.values(METRICS) as Metric[]) {
    const labels = Object.fromEntries(m.labels.map((l) => [l, `sample-${l}`]));
    if (m.type === "counter") c.inc(m, labels, 3);
    else c.gauge(m, () => 0.25, labels);
  }
  for (const [key] of DATAPLANE_COUNTERS) {
    const { metric, labels } = dataplaneSeries(key);
    c.series(metric, () => 7, labels);
  }
  return c;
}

function render(): string {
  return renderMetrics(everything().snapshot(), {
    role: "xtr",
    version: "0.0.0-test",
    startedAt: 1_700_000_000_000,
    now: 1_700_000_060_000,
    rssBytes: 1 << 20,
  });
}

Deno.test("renderMetrics() writes every declared family once, with its own HELP and TYPE", () => {
  const text = render();
  const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)];
  const names = types.map((m) => m[1]!);
  assert.equal(new Set(names).size, names.length, "one TYPE line per family");
  for (const [, name, type] of types) {
    const declared = metricByName(name!);
    assert.ok(declared !== undefined, `${name} is declared in core/metrics.ts`);
    assert.equal(type, declared.type, name);
    const help = new RegExp(`^# HELP ${name} (.*)$`, "m").exec(text)?.[1];
    assert.ok(help !== undefined && help.length > 0 && !/^oor (counter|gauge) /.test(help), name);
  }
  assert.match(text, /^oor_dataplane_dropped_packets_total\{reason="too-big"\} 7$/m);
  assert.doesNotMatch(text, /^oor_[^ {]*:/m, "no colon in a name");
});

const PROMTOOL = commandsMissing(["promtool"], "apt-get install prometheus");

testNeeding(PROMTOOL, {
  name: "promtool check metrics passes on a series of every declared metric",
  fn: async () => {
    const child = new Deno.Command("promtool", {
      args: ["check", "metrics"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).spawn();
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(render()));
    await w.close();
    const o = await child.output();
    const out = new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr);
    assert.equal(out.trim(), "", "promtool says nothing");
    assert.equal(o.code, 0);
  },
});
