/**
 * The `two-ms` lab (scripts/lab/topologies.ts): two map-servers serving the
 * same sites, each xTR registered with both. Scaling past one machine is
 * LISP's own: either map-server answers for every site, traffic between
 * the sites flows, and with one map-server stopped the other still
 * answers (the map-resolver sends the ITR's retransmission to it).
 */

import assert from "node:assert/strict";
import { waitFor } from "../../scripts/lab/topology.ts";
import { lig, PLAN } from "../../scripts/lab/topologies.ts";
import { apiGet, bothWays, e2e, withTopology } from "./_lab.ts";

interface Sites {
  readonly registrations: { "eid-prefix": string; "rloc-address": { address: string }[] }[];
}

e2e(
  "two-ms: both map-servers hold and answer for the same sites; one stopped, the other answers",
  async () => {
    await withTopology("two-ms", "twoms", { rlocProbeInterval: 0 }, async ({ lab, topo }) => {
      const servers = topo.lisp.filter((p) => p.role === "ms");
      assert.deepEqual(servers.map((s) => s.controlAddress), [PLAN.ms1, PLAN.ms2]);
      // Each xTR registered with each map-server.
      const want = [
        `${PLAN.site1Eid4} ${PLAN.xtr1Rloc4}`,
        `${PLAN.site2Eid4} ${PLAN.xtr2Rloc4}`,
      ];
      for (const ms of servers) {
        await waitFor(`${ms.name} holds both sites`, async () => {
          const s = await (apiGet(lab, ms.node, ms.api, "/api/v1/sites") as Promise<Sites>)
            .catch(() => ({ registrations: [] }));
          const got = s.registrations
            .filter((r) => !r["eid-prefix"].startsWith("10.9."))
            .map((r) => `${r["eid-prefix"]} ${r["rloc-address"].map((l) => l.address).join(",")}`)
            .sort();
          return JSON.stringify(got) === JSON.stringify(want) ? true : undefined;
        }, { timeoutMs: 30_000, intervalMs: 500 });
      }
      // Either map-server resolves either site to the same locators (it passes the request
      // to the site's ETR, which answers), and proxy-replies for the static registration.
      for (const ms of servers) {
        for (
          const [from, eid, rloc] of [
            ["xtr2", PLAN.hostA4, PLAN.xtr1Rloc4],
            ["xtr1", PLAN.hostB4, PLAN.xtr2Rloc4],
          ]
        ) {
          const a = await lig(lab, from!, eid!, ms.controlAddress);
          assert.equal(a.code, 0, `lig ${eid} at ${ms.name}: ${a.stderr}`);
          assert.deepEqual([a.negative, a.locators], [false, [rloc]], `${ms.name} on ${eid}`);
        }
        const st = await lig(lab, "xtr1", "10.9.0.1", ms.controlAddress);
        assert.deepEqual([st.code, st.locators], [0, [PLAN.staticRloc4]], st.stderr);
        assert.equal(st.replier?.split(":")[0], ms.controlAddress, `${ms.name} answered itself`);
      }
      // xtr1 resolves through mr1 (ms1), xtr2 through mr2 (ms2): traffic both ways.
      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);

      // ms1 stops: mr1 sends the ITR's repeated request to ms2, which answers.
      await lab.stop("ms1");
      const after = await lig(lab, "xtr1", PLAN.hostB4, PLAN.twoMsMr1, { count: 3, timeoutS: 1 });
      assert.equal(after.code, 0, `lig through mr1 with ms1 stopped: ${after.stderr}`);
      assert.deepEqual([after.negative, after.locators], [false, [PLAN.xtr2Rloc4]]);
      const st = await lig(lab, "xtr1", "10.9.0.1", PLAN.twoMsMr1, { count: 3, timeoutS: 1 });
      assert.equal(st.replier?.split(":")[0], PLAN.ms2, "ms2 answered in ms1's place");
    });
  },
);
