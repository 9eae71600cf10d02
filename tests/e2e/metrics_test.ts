/**
 * Every role's `/metrics` passes `promtool check metrics` (Debian package
 * `prometheus`): xtr, rtr, ms and mr in the rtr topology, mn in the mn
 * topology, ddt and ddt-mr (and more of ms and xtr) in the ddt topology,
 * each after traffic crossed the overlay, so that the labelled series
 * (drop reasons, message types, map-servers, probed RLOCs) are there.
 *
 * Beside the lint, what the operator surface promises end to end: the
 * xTR's data-plane packet and byte counters, the registration state per
 * map-server, the RLOC-probe round trip, and a map-cache entry's origin,
 * age and per-entry packets and bytes in the JSON API; the map-server's
 * rejections of the xTR it has no site for on its status page.
 *
 * Needs root (namespaces, TUN) and promtool; skipped otherwise, with the
 * reason in the test name.
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, waitFor } from "../../scripts/lab/topology.ts";
import { type LispProcessSpec, PLAN, type TopologyName } from "../../scripts/lab/topologies.ts";
import { apiGet, type Ctx, metric, pingWorks, registered, SKIP, withTopology } from "./_lab.ts";
import { commandsMissing, testNeeding } from "../prereq.ts";

const PROMTOOL = commandsMissing(["promtool"], "apt-get install prometheus");

/** `promtool check metrics` on `text`: its exit code and what it printed. */
async function promtool(text: string): Promise<{ code: number; output: string }> {
  const child = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(30_000),
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const o = await child.output();
  const d = new TextDecoder();
  return { code: o.code, output: (d.decode(o.stdout) + d.decode(o.stderr)).trim() };
}

/** The `/metrics` text of `p`, read inside its namespace. */
function metricsOf(lab: Lab, p: LispProcessSpec): Promise<string> {
  return lab.execOk(p.node, ["curl", "-sf", `http://${p.api}/metrics`]);
}

/** Runs promtool on the `/metrics` of every process of the topology; the roles checked. */
async function lintAll(ctx: Ctx): Promise<string[]> {
  const roles: string[] = [];
  for (const p of ctx.topo.lisp) {
    if (p.api === undefined) continue;
    const text = await metricsOf(ctx.lab, p);
    const r = await promtool(text);
    assert.equal(
      r.output,
      "",
      `${p.name} (${p.role}): promtool check metrics says:\n${r.output}`,
    );
    assert.equal(r.code, 0, `${p.name} (${p.role}): promtool exit code`);
    assert.match(text, /^# TYPE oor_build_info gauge$/m, `${p.name}: a metrics body`);
    if (p.role === "xtr" || p.role === "mn" || p.role === "rtr") {
      assert.match(
        text,
        /^oor_dataplane_dropped_packets_total\{reason="miss"\} \d+$/m,
        `${p.name}: the data plane's drops are one family with a reason label`,
      );
    }
    roles.push(p.role);
  }
  return roles;
}

/** Runs `fn` in topology `name` (lab `labName`) once every `regs` tunnel router registered. */
function inLab(
  name: TopologyName,
  labName: string,
  regs: readonly string[],
  fn: (ctx: Ctx) => Promise<void>,
): Promise<void> {
  return withTopology(name, labName, { rlocProbeInterval: 2 }, async (ctx) => {
    await registered(ctx, regs);
    await fn(ctx);
  });
}

testNeeding(SKIP ?? PROMTOOL, {
  name: "e2e metrics: promtool check metrics passes on the /metrics of all seven roles",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const roles = new Set<string>();
    await inLab("rtr", "e2e-metrics-rtr", ["xtr1"], async (ctx) => {
      const { lab } = ctx;
      await pingWorks(lab, "hosta", PLAN.hostB4);
      assert.ok(await lab.ping("hosta", PLAN.hostB4, { count: 3, waitS: 2 }), "hosta → hostb");
      const xtr1 = ctx.topo.lisp.find((p) => p.name === "xtr1")!;
      const api = xtr1.api!;
      // The Worker reports once a second; probing runs every 2 s here.
      const enc = await waitFor("xtr1 encapsulated bytes", async () => {
        const n = await metric(lab, "xtr1", api, "oor_dataplane_encapsulated_bytes_total");
        return n > 0 ? n : undefined;
      }, { timeoutMs: 10_000, intervalMs: 250 });
      const packets = await metric(lab, "xtr1", api, "oor_dataplane_encapsulated_packets_total");
      assert.ok(packets >= 4 && enc >= packets * 84, `${packets} ICMP packets, ${enc} bytes`);
      assert.equal(
        await metric(
          lab,
          "xtr1",
          api,
          `oor_tr_map_server_registration_state{map_server="${PLAN.ms4}",state="registered"}`,
        ),
        1,
        "xtr1 is registered with the map-server",
      );
      const rtt = await waitFor("an RLOC-probe RTT of the rtr", async () => {
        const s = await metric(
          lab,
          "xtr1",
          api,
          `oor_tr_rloc_probe_rtt_seconds{rloc="${PLAN.rtrRloc4}"}`,
        );
        return s > 0 ? s : undefined;
      }, { timeoutMs: 15_000, intervalMs: 500 });
      assert.ok(rtt < 1, `RTT ${rtt} s`);
      // The map-cache entry of site 2: learned from a Map-Reply, with its age and traffic.
      const cache = await apiGet(lab, "xtr1", api, "/api/v1/map-cache") as {
        entries: Record<string, unknown>[];
      };
      const site2 = cache.entries.find((x) => x["eid-prefix"] === PLAN.site2Eid4);
      assert.ok(site2, `an entry for ${PLAN.site2Eid4}: ${JSON.stringify(cache.entries)}`);
      assert.equal(site2["origin"], "map-reply");
      assert.equal(typeof site2["since"], "number");
      assert.ok((site2["packets"] as number) >= 4, `per-entry packets ${site2["packets"]}`);
      assert.ok((site2["bytes"] as number) >= 4 * 84, `per-entry bytes ${site2["bytes"]}`);
      // xtr2's site is no lisp-site: the map-server shows it among its rejections.
      const ms = ctx.topo.lisp.find((p) => p.name === "ms")!;
      const page = await lab.execOk(ms.node, ["curl", "-sf", `http://${ms.api}/?refresh=0`]);
      assert.match(page, /<table id="rejection-table">[\s\S]*?<td>no-site<\/td>/);
      for (const r of await lintAll(ctx)) roles.add(r);
    });
    // Both registered before the first ping: a Map-Request that reaches the
    // ms before xtr2's Map-Register gets a negative reply cached for a minute.
    await inLab("mn", "e2e-metrics-mn", ["mn", "xtr2"], async (ctx) => {
      await pingWorks(ctx.lab, "mn", PLAN.hostB4);
      const mn = ctx.topo.lisp.find((p) => p.name === "mn")!;
      await waitFor("mn's data-plane counters", async () => {
        const text = await metricsOf(ctx.lab, mn);
        return /^oor_dataplane_encapsulated_packets_total [1-9]/m.test(text);
      }, { timeoutMs: 10_000, intervalMs: 250 });
      for (const r of await lintAll(ctx)) roles.add(r);
    });
    await inLab("ddt", "e2e-metrics-ddt", ["xtr1", "xtr2"], async (ctx) => {
      await pingWorks(ctx.lab, "hosta", PLAN.hostB4);
      for (const r of await lintAll(ctx)) roles.add(r);
    });
    assert.deepEqual([...roles].sort(), ["ddt", "ddt-mr", "mn", "mr", "ms", "rtr", "xtr"]);
  },
});
