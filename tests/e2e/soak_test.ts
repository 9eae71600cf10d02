/**
 * The soak (scripts/soak.ts) for one round of faults under traffic in the
 * basic lab: the ms restarted, xtr1 killed with SIGKILL and started again,
 * xtr2's link down and up. Every check must hold: the flow recovers within
 * the stated bounds, nothing leaks natively, no role exits on its own.
 * `deno task soak` runs the same for longer.
 *
 * @module
 */

import assert from "node:assert/strict";
import { formatSummary, soak } from "../../scripts/soak.ts";
import { e2e, withTopology } from "./_lab.ts";
import { commandsMissing } from "../prereq.ts";

e2e(
  "e2e soak: one round of faults under traffic; the flow recovers in bounds and nothing leaks",
  async () => {
    await withTopology("basic", "e2e-soak", { rlocProbeInterval: 2 }, async (ctx) => {
      const summary = await soak(ctx.lab, ctx.topo, 1);
      const text = formatSummary(summary).join("\n");
      console.log(text);
      assert.equal(summary.faults.length, 3, "one round: three faults");
      assert.ok(summary.ok, text);
    });
  },
  commandsMissing(["nft"], "apt-get install nftables"),
);
