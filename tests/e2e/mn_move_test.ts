/**
 * The `mn` lab's mobile node really moves: its RLOC address changes (the
 * old one removed), and with the lab's own configuration, unchanged, it
 * binds its control socket to the new address, registers the new RLOC
 * with the map-server, and traffic to and from its EID flows again, with
 * no failed control send. Lab `e2e-mn-move`.
 *
 * Needs root; skipped otherwise.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PLAN } from "../../scripts/lab/topologies.ts";
import {
  apiGet,
  e2e,
  pingWorks,
  registered,
  udpEcho,
  udpRoundTrips,
  withTopology,
} from "./_lab.ts";

const MOVED = "100.64.1.3";
const re = (s: string) => s.replaceAll(".", "\\.");

e2e(
  "e2e mn lab: the mobile node moves to a new RLOC, re-registers it, traffic follows",
  async () => {
    await withTopology("mn", "e2e-mn-move", {}, async (ctx) => {
      const { lab, topo } = ctx;
      const mnSpec = topo.lisp.find((p) => p.name === "mn")!;
      // The lab's mobile node follows its RLOC: nothing pins its control socket.
      assert.doesNotMatch(mnSpec.config, /^control-address/m, "mn.toml pins no control-address");
      await registered(ctx, ["mn", "xtr2"]);
      await pingWorks(lab, "mn", PLAN.hostB4);
      await udpEcho(lab, "hostb", PLAN.hostB4);

      const mn = ctx.started.find((p) => p.name === "mn")!;
      const before = mn.readLog().length;
      await lab.execOk("mn", ["sysctl", "-q", "-w", "net.ipv4.conf.rloc0.promote_secondaries=1"]);
      await lab.execOk("mn", ["ip", "addr", "add", `${MOVED}/24`, "dev", "rloc0"]);
      await lab.execOk("mn", ["ip", "addr", "del", `${PLAN.mnRloc4}/24`, "dev", "rloc0"]);
      await lab.applyRoutes("mn");

      await mn.waitForLog(new RegExp(`control-rebound address=${re(MOVED)}`), 10_000);
      await mn.waitForLog(new RegExp(`registered .*rlocs=${re(MOVED)}\\b`), 10_000);
      // The map-server has the new RLOC for the mobile node's EID, not the old one.
      const ms = topo.lisp.find((p) => p.role === "ms")!;
      const sites = await apiGet(lab, ms.node, ms.api, "/api/v1/sites") as {
        registrations: { "eid-prefix": string; "rloc-address": { address: string }[] }[];
      };
      const mine = sites.registrations.filter((r) => r["eid-prefix"] === `${PLAN.mnEid4}/32`);
      assert.deepEqual(mine.flatMap((r) => r["rloc-address"].map((l) => l.address)), [MOVED]);

      await pingWorks(lab, "mn", PLAN.hostB4, 10_000);
      await pingWorks(lab, "hostb", PLAN.mnEid4, 10_000);
      const n = await udpRoundTrips(lab, "mn", PLAN.hostB4);
      assert.ok(n >= 8, `mn → hostb UDP after the move: ${n}/10 echoes`);
      const after = mn.readLog().slice(before);
      assert.doesNotMatch(after, /control-send-failed|send UNKNOWN|control-rebind-failed/, after);
    });
  },
);
