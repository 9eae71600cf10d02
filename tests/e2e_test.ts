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
import { isRoot, type Lab, type LabProcess, sleep, waitFor } from "../scripts/lab/topology.ts";
import {
  makeTopology,
  PLAN,
  REPO_ROOT,
  type Topology,
  type TopologyName,
  type TopologyOptions,
  upTopology,
} from "../scripts/lab/topologies.ts";

function skipReason(): string | undefined {
  if (Deno.build.os !== "linux") return "needs Linux network namespaces";
  if (!isRoot()) return "needs root for network namespaces and TUN devices";
  try {
    Deno.statSync(`${REPO_ROOT}/roles/_dataplane.ts`);
  } catch {
    return "the data plane (roles/_dataplane.ts) is not built yet";
  }
  return undefined;
}

const SKIP = skipReason();

function e2e(name: string, fn: () => Promise<void>): void {
  Deno.test({
    name: SKIP === undefined ? name : `${name} (skipped: ${SKIP})`,
    ignore: SKIP !== undefined,
    // Lab processes and dax commands outlive single awaits by design.
    sanitizeOps: false,
    sanitizeResources: false,
    fn,
  });
}

const PYTHON = (() => {
  for (const p of ["/usr/bin/python3", "/usr/local/bin/python3"]) {
    try {
      Deno.statSync(p);
      return p;
    } catch { /* next */ }
  }
  return "python3";
})();

/** UDP echo server: `echo.py ADDRESS PORT`. */
const UDP_ECHO = `
import socket, sys
fam = socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
print("listening", flush=True)
while True:
    d, a = s.recvfrom(4096)
    s.sendto(d, a)
`;

/** UDP client: sends N datagrams, prints how many came back intact. */
const UDP_CLIENT = `
import socket, sys
dst, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET
s = socket.socket(fam, socket.SOCK_DGRAM)
s.settimeout(0.5)
ok = 0
for i in range(n):
    msg = ("oor-e2e-%d-" % i).encode() * 40
    s.sendto(msg, (dst, port))
    try:
        while True:
            d, _ = s.recvfrom(4096)
            if d == msg:
                ok += 1
                break
    except socket.timeout:
        pass
print(ok)
`;

const UDP_PORT = 7777;

/** Starts a UDP echo server on `node` listening on `address`. */
async function udpEcho(lab: Lab, node: string, address: string): Promise<LabProcess> {
  const p = await lab.spawn(node, `udp-echo-${node}`, [
    PYTHON,
    "-c",
    UDP_ECHO,
    address,
    String(UDP_PORT),
  ]);
  await p.waitForLog(/listening/, 5000);
  return p;
}

/** Sends `n` datagrams from `node` to `dst`; resolves to how many echoes came back. */
async function udpRoundTrips(lab: Lab, node: string, dst: string, n = 10): Promise<number> {
  const r = await lab.exec(node, [PYTHON, "-c", UDP_CLIENT, dst, String(UDP_PORT), String(n)], {
    timeoutMs: n * 1000 + 5000,
  });
  return r.code === 0 ? Number(r.stdout.trim()) : 0;
}

/** Pings until one round trip succeeds (the first packets resolve the mapping). */
async function pingWorks(lab: Lab, from: string, dst: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(`${from} pinging ${dst}`, () => lab.ping(from, dst, { count: 1, waitS: 1 }), {
    timeoutMs,
    intervalMs: 200,
  });
}

interface Ctx {
  readonly lab: Lab;
  readonly topo: Topology;
  readonly started: readonly LabProcess[];
}

const TUNNEL_ROLES = new Set(["xtr", "mn", "rtr"]);

/**
 * Builds `name` as lab `labName`, starts every process, runs `fn`, then
 * stops the tunnel routers with SIGTERM and checks their namespaces are
 * clean; tears the lab down whatever happens.
 */
async function withTopology(
  name: TopologyName,
  labName: string,
  opts: TopologyOptions,
  fn: (ctx: Ctx) => Promise<void>,
  edit: (t: Topology) => Topology = (t) => t,
): Promise<void> {
  const stateDir = await Deno.makeTempDir({ prefix: "oor-e2e-" });
  const topo = edit(makeTopology(name, opts));
  const { lab, started, skipped } = await upTopology(topo, {
    name: labName,
    stateDir,
    stopTimeoutMs: 8000,
  });
  try {
    assert.deepEqual(skipped.map((s) => s.spec.name), [], "every process of the topology runs");
    try {
      await fn({ lab, topo, started });
      // Shutdown: SIGTERM, then nothing of ours may be left in the namespaces.
      for (const p of topo.lisp.filter((p) => TUNNEL_ROLES.has(p.role))) {
        await lab.stop(p.name);
        const proc = lab.processes.get(p.name)!;
        assert.equal(proc.status?.code, 0, `${p.name} exited cleanly`);
        assert.match(proc.readLog(), /host-restored/, `${p.name} logged its clean-up`);
        await assertClean(lab, p.node);
      }
    } catch (e) {
      for (const p of lab.processes.values()) {
        const tail = p.readLog().split("\n").slice(-25).join("\n    ");
        console.error(`--- ${p.name} (${p.log}):\n    ${tail}`);
      }
      throw e;
    }
  } finally {
    await lab.down();
    if (Deno.env.get("OOR_E2E_KEEP") === "1") console.error(`logs kept in ${stateDir}/${labName}`);
    else await Deno.remove(stateDir, { recursive: true }).catch(() => {});
  }
}

/** Asserts that `node` has only the kernel's default rules, no table 100/x route, no lispTun0. */
async function assertClean(lab: Lab, node: string): Promise<void> {
  const json = async (args: string[]) =>
    JSON.parse((await lab.execOk(node, ["ip", "-j", ...args])) || "[]") as Record<
      string,
      unknown
    >[];
  const rules4 = (await json(["-4", "rule"])).map((r) => r["priority"]);
  assert.deepEqual(
    rules4,
    [0, 32766, 32767],
    `${node}: IPv4 rules left: ${JSON.stringify(rules4)}`,
  );
  const rules6 = (await json(["-6", "rule"])).map((r) => r["priority"]);
  assert.deepEqual(rules6, [0, 32766], `${node}: IPv6 rules left: ${JSON.stringify(rules6)}`);
  for (const family of ["-4", "-6"]) {
    const routes = await json([family, "route", "show", "table", "all"]);
    const ours = routes.filter((r) => {
      const table = r["table"];
      const t = typeof table === "string" ? Number(table) : table;
      return r["dev"] === "lispTun0" || t === 100 || (typeof t === "number" && t >= 1000);
    });
    assert.deepEqual(ours, [], `${node}: routes left`);
  }
  const links = (await json(["link"])).map((l) => l["ifname"]);
  assert.ok(!links.includes("lispTun0"), `${node}: lispTun0 left`);
}

/** Waits until every tunnel router that should register has a Map-Notify. */
async function registered(ctx: Ctx, names: readonly string[]): Promise<void> {
  for (const n of names) {
    const p = ctx.started.find((s) => s.name === n);
    assert.ok(p !== undefined, `${n} started`);
    await p.waitForLog(/ registered /, 20_000);
  }
}

async function bothWays(lab: Lab, a: string, aAddr: string, b: string, bAddr: string) {
  await pingWorks(lab, a, bAddr);
  await pingWorks(lab, b, aAddr);
  assert.ok(await lab.ping(a, bAddr, { count: 5, waitS: 2 }), `${a} → ${bAddr} ICMP`);
  await udpEcho(lab, b, bAddr);
  await udpEcho(lab, a, aAddr);
  const ab = await udpRoundTrips(lab, a, bAddr);
  assert.ok(ab >= 8, `${a} → ${b} UDP: ${ab}/10 echoes`);
  const ba = await udpRoundTrips(lab, b, aAddr);
  assert.ok(ba >= 8, `${b} → ${a} UDP: ${ba}/10 echoes`);
}

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
