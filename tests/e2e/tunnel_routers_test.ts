/**
 * End-to-end tests: real traffic across a LISP overlay between network
 * namespaces, carried by `oor` processes (`main.ts xtr|mn|rtr|ms|mr`) in
 * the lab topologies of scripts/lab/topologies.ts.
 *
 * - basic: UDP and ICMP hosta ↔ hostb through LISP, then through VXLAN-GPE;
 * - ipv6 (IPv6 EIDs over IPv4 RLOCs) and ipv6-rloc (IPv4 EIDs over IPv6);
 * - mn: the mobile node reaching hostb;
 * - multihoming: xtr1's primary RLOC link goes down in the middle of a
 *   flow, traffic continues on the backup within three probe intervals,
 *   and comes back to the primary when the link returns;
 * - rtr: the rtr as the only locator of site 2, traffic both ways.
 *
 * Every test stops the tunnel routers with SIGTERM and then checks, inside
 * their namespaces, that no rule, route or lispTun0 is left.
 *
 * Needs root (namespaces, TUN); skipped otherwise, with the reason in the
 * test name. Nothing leaves the lab namespaces. `OOR_E2E_KEEP=1` keeps the
 * configs and logs (the path is printed).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Lab, type LabProcess, sleep } from "../../scripts/lab/topology.ts";
import { PLAN, type Topology } from "../../scripts/lab/topologies.ts";
import {
  bothWays,
  e2e,
  pingWorks,
  registered,
  udpEcho,
  udpRoundTrips,
  withTopology,
} from "./_lab.ts";

// ---------------------------------------------------------------------------

e2e("e2e basic: UDP and ICMP between hosta and hostb through LISP", async () => {
  await withTopology("basic", "e2e-basic", {}, async (ctx) => {
    await registered(ctx, ["xtr1", "xtr2"]);
    await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
    const ports = await ctx.lab.execOk("xtr1", ["ss", "-uln"]);
    assert.match(ports, /:4341\b/, "the data plane listens on 4341");
  });
});

e2e("e2e basic: UDP and ICMP between hosta and hostb through VXLAN-GPE", async () => {
  await withTopology("basic", "e2e-vxlan", { encapsulation: "VXLAN-GPE" }, async (ctx) => {
    await registered(ctx, ["xtr1", "xtr2"]);
    const ports = await ctx.lab.execOk("xtr1", ["ss", "-uln"]);
    assert.match(ports, /:4790\b/, "the data plane listens on 4790");
    assert.doesNotMatch(ports, /:4341\b/);
    await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
  });
});

e2e("e2e ipv6: IPv6 EIDs over IPv4 RLOCs", async () => {
  await withTopology("ipv6", "e2e-v6", {}, async (ctx) => {
    await registered(ctx, ["xtr1", "xtr2"]);
    await bothWays(ctx.lab, "hosta", PLAN.hostA6, "hostb", PLAN.hostB6);
  });
});

e2e("e2e ipv6-rloc: IPv4 EIDs over IPv6 RLOCs", async () => {
  await withTopology("ipv6-rloc", "e2e-v6rloc", {}, async (ctx) => {
    await registered(ctx, ["xtr1", "xtr2"]);
    await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
  });
});

e2e("e2e mn: the mobile node reaches hostb from its EID, also after its RLOC changes", async () => {
  await withTopology("mn", "e2e-mn", {}, async (ctx) => {
    await registered(ctx, ["mn", "xtr2"]);
    const addr = await ctx.lab.execOk("mn", ["ip", "-4", "-o", "addr", "show", "dev", "lispTun0"]);
    assert.match(addr, new RegExp(`${PLAN.mnEid4.replaceAll(".", "\\.")}/32`));
    await pingWorks(ctx.lab, "mn", PLAN.hostB4);
    await udpEcho(ctx.lab, "hostb", PLAN.hostB4);
    const n = await udpRoundTrips(ctx.lab, "mn", PLAN.hostB4);
    assert.ok(n >= 8, `mn → hostb UDP: ${n}/10 echoes`);
    // hostb saw the mobile node's EID as the source.
    await pingWorks(ctx.lab, "hostb", PLAN.mnEid4);

    // The mobile node moves to another RLOC: it binds again, registers the
    // new one and tells xtr2 (SMR), and traffic follows.
    const lab = ctx.lab;
    const moved = "100.64.1.3";
    await lab.execOk("mn", ["sysctl", "-q", "-w", "net.ipv4.conf.rloc0.promote_secondaries=1"]);
    await lab.execOk("mn", ["ip", "addr", "add", `${moved}/24`, "dev", "rloc0"]);
    await lab.execOk("mn", ["ip", "addr", "del", `${PLAN.mnRloc4}/24`, "dev", "rloc0"]);
    await lab.applyRoutes("mn");
    const mn = ctx.started.find((p) => p.name === "mn")!;
    await mn.waitForLog(new RegExp(`registered .*rlocs=${moved.replaceAll(".", "\\.")}`), 10_000);
    await pingWorks(lab, "mn", PLAN.hostB4, 10_000);
    await pingWorks(lab, "hostb", PLAN.mnEid4, 10_000);
    const m = await udpRoundTrips(lab, "mn", PLAN.hostB4);
    assert.ok(m >= 8, `mn → hostb UDP after the move: ${m}/10 echoes`);
  }, withoutMnControlAddress);
});

/** The mn without `control-address`: it binds to its RLOC, wherever that goes. */
function withoutMnControlAddress(t: Topology): Topology {
  return {
    ...t,
    lisp: t.lisp.map((p) =>
      p.name === "mn" ? { ...p, config: p.config.replace(/^control-address = .*\n/m, "") } : p
    ),
  };
}

/** Packets the router sent out of `iface` so far. */
async function txPackets(lab: Lab, iface: string): Promise<number> {
  const j = JSON.parse(
    await lab.execOk("router", ["ip", "-s", "-j", "link", "show", "dev", iface]),
  );
  return Number(j[0]?.stats64?.tx?.packets ?? 0);
}

/** Reply timestamps (seconds) in a `ping -D` log. */
function replyTimes(p: LabProcess): number[] {
  const out: number[] = [];
  for (const m of p.readLog().matchAll(/^\[(\d+\.\d+)\] \d+ bytes from/gm)) out.push(Number(m[1]));
  return out;
}

function maxGap(times: readonly number[], from: number, to: number): number {
  const inside = times.filter((t) => t >= from && t <= to);
  let gap = 0;
  let prev = from;
  for (const t of inside) {
    gap = Math.max(gap, t - prev);
    prev = t;
  }
  return Math.max(gap, to - prev);
}

e2e(
  "e2e multihoming: a flow survives the primary RLOC link going down and moves back when it returns",
  async () => {
    const interval = 2;
    await withTopology("multihoming", "e2e-mh", { rlocProbeInterval: interval }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      await pingWorks(lab, "hosta", PLAN.hostB4);
      const flow = await lab.spawn("hosta", "flow", [
        "ping",
        "-D",
        "-n",
        "-i",
        "0.2",
        PLAN.hostB4,
      ]);
      await sleep(2000);
      // Both ways over the primary link (rloc0, router side to-xtr1).
      const t0 = await txPackets(lab, "to-xtr1");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1")) - t0 >= 3, "replies arrive over rloc0");

      const down = Date.now() / 1000;
      await lab.setLink("xtr1", "rloc0", false);
      await sleep(3 * interval * 1000 + 2000);
      const now = Date.now() / 1000;
      const times = replyTimes(flow);
      const gap = maxGap(times, down, now);
      assert.ok(
        gap <= 3 * interval,
        `longest gap after the link went down: ${gap.toFixed(1)} s (limit ${3 * interval} s)`,
      );
      const b0 = await txPackets(lab, "to-xtr1b");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1b")) - b0 >= 3, "replies arrive over rloc1");

      const up = Date.now() / 1000;
      await lab.setLink("xtr1", "rloc0", true);
      await sleep(3 * interval * 1000);
      const t1 = await txPackets(lab, "to-xtr1");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1")) - t1 >= 3, "replies are back on rloc0");
      const after = replyTimes(flow);
      const gapUp = maxGap(after, up, Date.now() / 1000);
      assert.ok(
        gapUp <= 3 * interval,
        `longest gap after the link came back: ${gapUp.toFixed(1)} s`,
      );
      await lab.stop("flow");
    });
  },
);

e2e(
  "e2e multihoming: RLOC probing moves traffic off a locator that silently stops answering, and back",
  async () => {
    // Worst case: one interval, then 1 + retries probes 1 s apart (3 + 3 s).
    const interval = 3;
    await withTopology("multihoming", "e2e-probe", { rlocProbeInterval: interval }, async (ctx) => {
      const { lab } = ctx;
      await registered(ctx, ["xtr1", "xtr2"]);
      // xtr1 reaches xtr2 over rloc1, so only the way into rloc0 will break
      // and xtr1 sees nothing: no netlink event, no SMR; only xtr2's probes
      // of 100.64.1.2 can tell.
      await lab.execOk("xtr1", [
        "ip",
        "route",
        "add",
        `${PLAN.xtr2Rloc4}/32`,
        "via",
        PLAN.routerXtr1b,
      ]);
      await pingWorks(lab, "hosta", PLAN.hostB4);
      const flow = await lab.spawn("hosta", "flow", ["ping", "-D", "-n", "-i", "0.2", PLAN.hostB4]);
      await sleep(2000);
      const t0 = await txPackets(lab, "to-xtr1");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1")) - t0 >= 3, "replies arrive over rloc0");

      const broken = Date.now() / 1000;
      await lab.execOk("router", ["ip", "route", "add", "blackhole", `${PLAN.xtr1Rloc4}/32`]);
      await sleep(3 * interval * 1000 + 2000);
      const gap = maxGap(replyTimes(flow), broken, Date.now() / 1000);
      assert.ok(gap <= 3 * interval, `longest gap: ${gap.toFixed(1)} s (limit ${3 * interval} s)`);
      const b0 = await txPackets(lab, "to-xtr1b");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1b")) - b0 >= 3, "replies arrive over rloc1");
      const xtr2 = ctx.started.find((p) => p.name === "xtr2")!;
      assert.match(xtr2.readLog(), new RegExp(`locator-down rloc=${PLAN.xtr1Rloc4}`));
      assert.doesNotMatch(ctx.started.find((p) => p.name === "xtr1")!.readLog(), /smrs-sent/);

      await lab.execOk("router", ["ip", "route", "del", "blackhole", `${PLAN.xtr1Rloc4}/32`]);
      await xtr2.waitForLog(new RegExp(`locator-up rloc=${PLAN.xtr1Rloc4}`), 3 * interval * 1000);
      await sleep(500);
      const t1 = await txPackets(lab, "to-xtr1");
      await sleep(1000);
      assert.ok((await txPackets(lab, "to-xtr1")) - t1 >= 3, "replies are back on rloc0");
      await lab.stop("flow");
      await lab.execOk("xtr1", ["ip", "route", "del", `${PLAN.xtr2Rloc4}/32`]);
    });
  },
);

e2e("e2e rtr: the rtr as site 2's only locator carries traffic both ways", async () => {
  await withTopology("rtr", "e2e-rtr", {}, async (ctx) => {
    await registered(ctx, ["xtr1"]);
    await bothWays(ctx.lab, "hosta", PLAN.hostA4, "hostb", PLAN.hostB4);
    // The way through the rtr: xtr1 never talks to xtr2's private address.
    const rtrLog = ctx.started.find((p) => p.name === "rtr")!.readLog();
    assert.match(rtrLog, /map-cache-added prefix=10\.1\.0\.0\/24/, "the rtr resolved site 1");
  });
});
