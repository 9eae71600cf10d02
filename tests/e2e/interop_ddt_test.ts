/**
 * Our DDT map-resolver in front of the real OOR 1.3.0's map-server
 * (tests/e2e/_oor.ts): the `ddt` lab with OOR's MS in place of our ms2
 * (site 2, key-type 1: OOR has HMAC-SHA-1-96 only). Our ddt-mr sends the
 * DDT Map-Servers of an MS-REFERRAL the ITR's own request with the D bit
 * (RFC 8111 §7.3.1, roles/mr.ts): OOR's map-server must answer the ITR
 * (here it forwards the request to our xtr2, which answers xtr1) and
 * return MS-ACK to our ddt-mr, which ends the request. LISP data both
 * ways shows the ITR got its answer.
 *
 * Needs root and OOR; skipped otherwise, failed in CI.
 *
 * @module
 */

import assert from "node:assert/strict";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import { bothWays, e2e, withTopology } from "./_lab.ts";
import { OOR_MISSING, oorMsConfig, startOor } from "./_oor.ts";

/** Our ms2 out; every key of the topology key-type 1 (OOR's only one). */
function oorAsMs2(t: Topology): Topology {
  return {
    ...t,
    lisp: t.lisp.filter((p) => p.name !== "ms2").map((p) => ({
      ...p,
      config: p.config.replaceAll("key-type = 2", "key-type = 1"),
    })),
  };
}

/** The value of the series of `metric` whose line matches all of `labels`, from a /metrics text. */
function sample(text: string, metric: string, labels: readonly string[]): number {
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${metric}{`) || !labels.every((l) => line.includes(l))) continue;
    return Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return 0;
}

e2e(
  "e2e interop ddt: our ddt-mr sends OOR's map-server the ITR's own request (D bit); OOR answers the ITR and returns MS-ACK",
  async () => {
    await withTopology("ddt", "e2e-ddt-oor-ms", { rlocProbeInterval: 0 }, async (ctx) => {
      const { lab } = ctx;
      const ms = await startOor(
        lab,
        "ms2",
        "oor-ms2",
        oorMsConfig({
          iface: "eth0",
          sites: [{ eid: PLAN.site2Eid4, key: PLAN.site2Key }],
        }),
      );
      const xtr2 = ctx.started.find((p) => p.name === "xtr2")!;
      // xtr2 started before OOR's map-server: it retries its Map-Register.
      await xtr2.waitForLog(/ registered prefix=10\.2\.0\.0\/24/, 30_000);
      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      const text = await lab.execOk("mr", ["curl", "-sf", "http://127.0.0.1:9942/metrics"]);
      // xtr1's request for site 2 went to OOR's map-server as the ITR's own (the same for
      // xtr2's to our ms1), and its MS-ACK ended it: nothing timed out, nothing was asked again.
      assert.ok(
        sample(text, "oor_mr_resolutions_total", ['result="succeeded"', 'reason="ms-ack"']) >= 2,
        "MS-ACKs ended both requests",
      );
      for (const counter of ["oor_mr_referral_timeouts_total", "oor_mr_root_restarts_total"]) {
        assert.equal(
          Number(text.match(new RegExp(`^${counter} (\\d+)`, "m"))?.[1] ?? 0),
          0,
          counter,
        );
      }
      assert.ok(Number(text.match(/^oor_mr_forwarded_total (\d+)/m)?.[1] ?? 0) >= 2);
      assert.equal(
        sample(text, "oor_mr_dropped_total", ['reason="referral-to-itr-nonce"']),
        0,
        "OOR answered the ITR's request with MS-ACK, nothing else",
      );
      assert.equal(
        Number(text.match(/^oor_mr_map_replies_ignored_total (\d+)/m)?.[1] ?? 0),
        0,
        "OOR answered the ITR, not the ddt-mr",
      );
      assert.ok(ms.process.alive(), "OOR's map-server still runs");
    }, oorAsMs2);
  },
  OOR_MISSING,
);
