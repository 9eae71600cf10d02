/**
 * A failing registration made loud, and mended by a configuration reload,
 * end to end (lab `e2e-reload-w3`, the basic topology):
 *
 * 1. xtr1 starts with a wrong map-server key: its map-server sends nothing
 *    back, and within the failing period xtr1 logs `registration-failing`
 *    with what it tried and the likely cause; its API and status page say
 *    since when and why (roles/tunnel_router/registration_alarm.ts).
 * 2. The key is corrected in xtr1's file and xtr1 gets SIGHUP: it takes
 *    the new map-server without a restart, registers, and logs
 *    `registration-recovered` (runner/reload.ts, roles/tunnel_router/peers.ts).
 * 3. With pings flowing hosta → hostb every 50 ms, xtr1's file gains a
 *    second mapping (a site the ms has) and xtr1 gets SIGHUP: the mapping
 *    registers, and the flow loses at most one packet.
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { apiGet, e2e, pingWorks, registered, withTopology } from "./_lab.ts";

const EXTRA_SITE = "10.11.0.0/24";

/** xtr1 with a wrong key; the ms with one more site for xtr1's second mapping. */
function edit(t: Topology): Topology {
  return {
    ...t,
    lisp: t.lisp.map((p) =>
      p.name === "xtr1"
        ? { ...p, config: p.config.replace(`"${PLAN.site1Key}"`, '"wrong-key"') }
        : p.role === "ms"
        ? {
          ...p,
          config: [
            p.config,
            "[[lisp-site]]",
            `eid-prefix = "${EXTRA_SITE}"`,
            "key-type = 2",
            `key = "${PLAN.site1Key}"`,
            "",
          ].join("\n"),
        }
        : p
    ),
  };
}

/** xtr1's `[[database-mapping]]` of site 1, again for `eid` (same locators). */
function secondMapping(config: string, eid: string): string {
  const start = config.indexOf("[[database-mapping]]");
  const rest = config.slice(start);
  const end = rest.slice(1).search(/\n\[(?!\[database-mapping\.)/);
  const table = end < 0 ? rest : rest.slice(0, end + 1);
  return table.replace(`"${PLAN.site1Eid4}"`, `"${eid}"`);
}

e2e(
  "e2e reload: a wrong key is logged with its cause and shown failing; SIGHUP with the right key registers; " +
    "a mapping added by SIGHUP registers while a ping flow goes on (at most 1 lost)",
  async () => {
    await withTopology("basic", "e2e-reload-w3", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab, topo } = ctx;
      const spec = topo.lisp.find((p) => p.name === "xtr1")!;
      const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
      await registered(ctx, ["xtr2"]);

      // 1. Loud: the warning, the API's state and cause, the page.
      await xtr1.waitForLog(/ registration-failing /, 25_000);
      const warn = xtr1.readLog().split("\n").find((l) => / registration-failing /.test(l))!;
      assert.match(warn, /^\S+ warn /);
      assert.match(warn, new RegExp(`no Map-Notify from ${PLAN.ms4} after \\d+ Map-Registers`));
      assert.match(warn, /wrong key, or key-type 2.*EID prefix not in a site there/);
      assert.match(warn, /the route is there, no ICMP unreachable/, "the local probe ran");
      const status = await apiGet(lab, "xtr1", spec.api, "/api/v1/status") as Record<
        string,
        unknown
      >;
      const servers = (status["mapServers"] ?? status["map-servers"]) as Record<string, unknown>[];
      assert.equal(servers[0]?.["state"], "failing");
      assert.match(String(servers[0]?.["cause"]), /^wrong key/);
      const page = await lab.execOk("xtr1", ["curl", "-sf", `http://${spec.api}/?refresh=0`]);
      assert.match(
        page,
        /failing<\/span> since <time[^>]*>[^<]+<\/time>: wrong key, or key-type 2/,
      );

      // 2. The right key, by SIGHUP: registered, recovered, no restart.
      const configPath = lab.path("xtr1.toml");
      const fixed = spec.config.replace('"wrong-key"', `"${PLAN.site1Key}"`);
      await Deno.writeTextFile(configPath, fixed);
      Deno.kill(xtr1.pid, "SIGHUP");
      await xtr1.waitForLog(/ registered prefix=10\.1\.0\.0\/24/, 10_000);
      await xtr1.waitForLog(/ registration-recovered mapServer=/, 10_000);
      assert.match(xtr1.readLog(), / reload-applied table=peers entry="map-server [\d.]+ changed"/);
      await pingWorks(lab, "hosta", PLAN.hostB4);

      // 3. A second mapping by SIGHUP while pings flow: at most one lost.
      const flow = lab.exec("hosta", ["ping", "-n", "-q", "-i", "0.05", "-c", "120", PLAN.hostB4], {
        timeoutMs: 30_000,
      });
      await new Promise((r) => setTimeout(r, 2_000));
      await Deno.writeTextFile(configPath, `${fixed}\n${secondMapping(fixed, EXTRA_SITE)}\n`);
      Deno.kill(xtr1.pid, "SIGHUP");
      await xtr1.waitForLog(/ registered prefix=10\.11\.0\.0\/24/, 10_000);
      const out = (await flow).stdout;
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      assert.ok(m !== null, out);
      const lost = Number(m[1]) - Number(m[2]);
      console.log(`  ping flow across the reload: ${m[2]}/${m[1]} received`);
      assert.ok(lost <= 1, `${lost} pings lost across the reload:\n${out}`);
      assert.match(xtr1.readLog(), / reloaded trigger=SIGHUP .*changes=1/);
      assert.doesNotMatch(xtr1.readLog(), / stopping /);
    }, edit);
  },
);
