/**
 * End-to-end tests of the bits of explicit locator paths (RFC 8060 §4.9),
 * in variants of the `elp` lab (scripts/lab/topologies.ts
 * `elpTopology`): site 2 is registered with a path rtr → hop → xtr2.
 *
 * - L: a hop named by an EID is resolved through the mapping system: rtr
 *   sends to the RLOC the map-server gives rtr2's EID.
 * - P: a probed hop ahead that stops answering takes the path down at the
 *   ITR, which then sends straight to xtr2's own RLOC (its second
 *   locator), not to the path's first hop.
 * - S: a strict hop that cannot be reached (an EID nothing maps, or no
 *   route to it) makes rtr drop and count the packets
 *   (`dropped:elp-strict`); the same hop without S is skipped and rtr sends
 *   straight to xtr2.
 *
 * Root and Linux only (see tests/e2e/_lab.ts); skipped otherwise, saying why.
 *
 * @module
 */

import assert from "node:assert/strict";
import { sleep } from "../../scripts/lab/topology.ts";
import {
  elpTopology,
  type ElpVariant,
  PLAN,
  type Topology,
  type TopologyOptions,
} from "../../scripts/lab/topologies.ts";
import {
  bothWays,
  type Ctx,
  e2e,
  metric,
  pingWorks,
  registered,
  udpRoundTrips,
  withTopology,
} from "./_lab.ts";

const DECAPSULATED = "oor_dataplane_decapsulated_packets_total";
const ELP_STRICT = 'oor_dataplane_dropped_packets_total{reason="elp-strict"}';

/** Runs `fn` in a variant of the `elp` lab named `labName`. */
function withElp(
  labName: string,
  variant: ElpVariant,
  fn: (ctx: Ctx) => Promise<void>,
  opts: TopologyOptions = {},
): Promise<void> {
  return withTopology("elp", labName, opts, fn, (_t: Topology) => elpTopology(opts, variant));
}

/** A series of process `name`'s /metrics. */
function series(ctx: Ctx, name: string, s: string): Promise<number> {
  const p = ctx.topo.lisp.find((x) => x.name === name);
  assert.ok(p !== undefined, `${name} in the topology`);
  return metric(ctx.lab, p.node, p.api, s);
}

/** Data-plane counters of `names` (they are posted every second: read after a pause). */
async function counts(ctx: Ctx, names: readonly string[], s: string): Promise<Map<string, number>> {
  await sleep(1500);
  const out = new Map<string, number>();
  for (const n of names) out.set(n, await series(ctx, n, s));
  return out;
}

e2e("e2e elp L bit: a hop named by an EID is resolved, and rtr sends to its RLOC", async () => {
  const hops = [
    { address: PLAN.rtrRloc4 },
    { address: PLAN.rtr2Eid4, lookup: true },
    { address: PLAN.xtr2Rloc4 },
  ];
  await withElp("e2e-elp-lookup", { hops }, async (ctx) => {
    await registered(ctx, ["xtr1", "xtr2"]);
    const before = await counts(ctx, ["rtr", "rtr2", "xtr2"], DECAPSULATED);
    await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
    const after = await counts(ctx, ["rtr", "rtr2", "xtr2"], DECAPSULATED);
    for (const n of ["rtr", "rtr2"]) {
      const d = after.get(n)! - before.get(n)!;
      assert.ok(d >= 20, `${n} decapsulated ${d} packets on their way to hostb`);
    }
    // rtr learned rtr2's EID from the mapping system.
    const rtr = ctx.started.find((p) => p.name === "rtr")!;
    assert.match(
      rtr.readLog(),
      new RegExp(
        `map-cache-added .*prefix=${PLAN.rtr2Eid4.replaceAll(".", "\\.")}/32 .*rlocs="?${
          PLAN.rtr2Rloc4.replaceAll(".", "\\.")
        }`,
      ),
    );
  });
});

e2e(
  "e2e elp P bit: a probed hop that stops answering takes the path down, the ITR sends straight to xtr2",
  async () => {
    const hops = [
      { address: PLAN.rtrRloc4, probe: true },
      { address: PLAN.rtr2Rloc4, probe: true },
      { address: PLAN.xtr2Rloc4 },
    ];
    await withElp("e2e-elp-probe", { hops, direct: true }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      // The path is used while every probed hop answers.
      let before = await counts(ctx, ["rtr", "rtr2"], DECAPSULATED);
      await bothWays(lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      let after = await counts(ctx, ["rtr", "rtr2"], DECAPSULATED);
      for (const n of ["rtr", "rtr2"]) {
        const d = after.get(n)! - before.get(n)!;
        assert.ok(d >= 20, `${n} decapsulated ${d} packets while the path is up`);
      }
      // rtr2 stops answering RLOC-probes from xtr1 and rtr (its data keeps flowing).
      const rules = await lab.writeFile(
        "rtr2-no-probes.nft",
        [
          "table inet oor_e2e_elp {",
          "  chain in {",
          "    type filter hook input priority 0; policy accept;",
          `    ip saddr { ${PLAN.xtr1Rloc4}, ${PLAN.rtrRloc4} } udp dport 4342 drop`,
          "  }",
          "}",
          "",
        ].join("\n"),
      );
      await lab.execOk("rtr2", ["nft", "-f", rules]);
      const xtr1 = ctx.started.find((p) => p.name === "xtr1")!;
      await xtr1.waitForLog(
        new RegExp(`locator-down .*rloc=${PLAN.rtr2Rloc4.replaceAll(".", "\\.")}`),
        30_000,
      );
      before = await counts(ctx, ["rtr", "rtr2", "xtr2"], DECAPSULATED);
      // Again (the echo servers run already).
      await pingWorks(lab, "hosta", PLAN.hostB4);
      const echoes = await udpRoundTrips(lab, "hosta", PLAN.hostB4, 20);
      assert.ok(echoes >= 18, `hosta → hostb UDP: ${echoes}/20 echoes`);
      after = await counts(ctx, ["rtr", "rtr2", "xtr2"], DECAPSULATED);
      assert.equal(
        after.get("rtr")! - before.get("rtr")!,
        0,
        "nothing goes to the path's first hop",
      );
      const direct = after.get("xtr2")! - before.get("xtr2")!;
      assert.ok(direct >= 20, `xtr2 decapsulated ${direct} packets sent straight to it`);
    });
  },
);

e2e(
  "e2e elp S bit: a strict hop that cannot be reached makes rtr drop and count, a loose one is skipped",
  async () => {
    const hops = (strict: boolean) => [
      { address: PLAN.rtrRloc4 },
      { address: PLAN.unmappedEid4, lookup: true, strict },
      { address: PLAN.xtr2Rloc4 },
    ];
    await withElp("e2e-elp-strict", { hops: hops(true) }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      const before = await counts(ctx, ["rtr", "xtr2"], DECAPSULATED);
      // The first packets resolve site 2 at xtr1 and rtr, and the hop's EID at rtr.
      assert.equal(
        await lab.ping("hosta", PLAN.hostB4, { count: 8, waitS: 1 }),
        false,
        "hostb is not reached past the strict hop",
      );
      const after = await counts(ctx, ["rtr", "xtr2"], DECAPSULATED);
      const atRtr = after.get("rtr")! - before.get("rtr")!;
      assert.ok(atRtr >= 4, `xtr1 still sends to rtr (${atRtr} packets)`);
      assert.equal(after.get("xtr2")! - before.get("xtr2")!, 0, "nothing reaches xtr2");
      const dropped = await series(ctx, "rtr", ELP_STRICT);
      assert.ok(dropped >= 3, `rtr counted ${dropped} packets as dropped:elp-strict`);
    });
    await withElp("e2e-elp-loose", { hops: hops(false) }, async (ctx) => {
      await registered(ctx, ["xtr1", "xtr2"]);
      const before = await counts(ctx, ["rtr", "rtr2"], DECAPSULATED);
      await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
      const after = await counts(ctx, ["rtr", "rtr2"], DECAPSULATED);
      const atRtr = after.get("rtr")! - before.get("rtr")!;
      assert.ok(atRtr >= 20, `rtr decapsulated ${atRtr} packets`);
      assert.equal(after.get("rtr2")! - before.get("rtr2")!, 0, "rtr2 is not on the way");
      assert.equal(await series(ctx, "rtr", ELP_STRICT), 0);
    });
  },
);

e2e(
  "e2e elp S bit: with no route to a strict hop rtr drops and counts, and sends through it once the route is back",
  async () => {
    const hops = [
      { address: PLAN.rtrRloc4 },
      { address: PLAN.rtr2Rloc4, strict: true },
      { address: PLAN.xtr2Rloc4 },
    ];
    await withElp("e2e-elp-noroute", { hops }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      await lab.execOk("rtr", ["ip", "route", "add", "unreachable", `${PLAN.rtr2Rloc4}/32`]);
      assert.equal(
        await lab.ping("hosta", PLAN.hostB4, { count: 6, waitS: 1 }),
        false,
        "hostb is not reached: rtr has no route to the strict hop",
      );
      await sleep(1500);
      const dropped = await series(ctx, "rtr", ELP_STRICT);
      assert.ok(dropped >= 3, `rtr counted ${dropped} packets as dropped:elp-strict`);
      // The route comes back: within a probe round rtr sends through rtr2 again.
      await lab.execOk("rtr", ["ip", "route", "del", "unreachable", `${PLAN.rtr2Rloc4}/32`]);
      const before = await counts(ctx, ["rtr2"], DECAPSULATED);
      await pingWorks(lab, "hosta", PLAN.hostB4, 20_000);
      assert.ok(await lab.ping("hosta", PLAN.hostB4, { count: 5, waitS: 2 }), "hosta → hostb");
      const after = await counts(ctx, ["rtr2"], DECAPSULATED);
      assert.ok(after.get("rtr2")! - before.get("rtr2")! >= 5, "through rtr2 again");
    });
  },
);
