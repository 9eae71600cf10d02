/**
 * Data-plane tests with real traffic, run inside a throwaway network
 * namespace by roles/dataplane_test.ts (never directly: the guard below
 * refuses). Inside it, three more namespaces are made, each with a data
 * plane in its own process ({@link DataPlaneNode}):
 *
 * ```
 *   A (xTR)  va1 100.64.0.1/24 2001:db8:64::1/64 ─── vb1 100.64.0.2 2001:db8:64::2   B (xTR)
 *            va2 100.64.1.1/24 ───────────────────── vb2 100.64.1.2 (B's 2nd RLOC)
 *            var 100.65.0.1/24 ── vra 100.65.0.3  R (rtr)  vrb 100.66.0.3 ── vbr 100.66.0.2
 *   EIDs (on lo): A 10.1.0.1 fd00:1::1 in 10.1.0.0/24 fd00:1::/64; B 10.2.0.1 fd00:2::1
 *   routes: 10.0.0.0/8 and fd00::/16 dev lispTun0 (MTU 1440) src the local EID
 * ```
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertInTestNetns, ip } from "../netns.ts";
import { DataPlaneNode, type MappingJson, type NodeStart } from "../../scripts/dataplane_node.ts";
import type { DataLocator, Encapsulation } from "../../dataplane/api.ts";

const base = assertInTestNetns();
const A = `${base}-a`;
const B = `${base}-b`;
const R = `${base}-r`;

function run(cmd: string, args: string[]): { code: number; out: string; err: string } {
  const o = new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).outputSync();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout), err: d.decode(o.stderr) };
}

/** Runs `cmd` in namespace `ns`. */
function inNs(ns: string, ...cmd: string[]): { code: number; out: string; err: string } {
  return run("ip", ["netns", "exec", ns, ...cmd]);
}

/** Runs `cmd` in namespace `ns` and asynchronously (for pings that take time). */
async function inNsAsync(ns: string, ...cmd: string[]): Promise<{ code: number; out: string }> {
  const o = await new Deno.Command("ip", {
    args: ["netns", "exec", ns, ...cmd],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: o.code, out: d.decode(o.stdout) + d.decode(o.stderr) };
}

/**
 * Pings `dst` from `src` in `ns`: `count` echo requests 50 ms apart;
 * resolves with the number of replies (waiting up to 4 s for them all).
 */
async function ping(ns: string, src: string, dst: string, count = 3): Promise<number> {
  const r = await inNsAsync(
    ns,
    "ping",
    "-n",
    "-c",
    `${count}`,
    "-i",
    "0.05",
    "-w",
    "4",
    "-I",
    src,
    dst,
  );
  const m = /(\d+) received/.exec(r.out);
  return m ? Number(m[1]) : 0;
}

/** Sends exactly `count` echo requests that get no reply (waits 1 s after the last). */
async function pingUnanswered(ns: string, src: string, dst: string, count = 2): Promise<number> {
  const r = await inNsAsync(
    ns,
    "ping",
    "-n",
    "-c",
    `${count}`,
    "-i",
    "0.05",
    "-W",
    "1",
    "-I",
    src,
    dst,
  );
  const m = /(\d+) received/.exec(r.out);
  return m ? Number(m[1]) : 0;
}

function txPackets(ns: string, dev: string): number {
  const r = inNs(ns, "ip", "-s", "-j", "link", "show", "dev", dev);
  const j = JSON.parse(r.out) as { stats64: { tx: { packets: number } } }[];
  return j[0]!.stats64.tx.packets;
}

function snmp6(ns: string, name: string): number {
  const r = inNs(ns, "cat", "/proc/net/snmp6");
  const m = new RegExp(`^${name}\\s+(\\d+)`, "m").exec(r.out);
  return m ? Number(m[1]) : 0;
}

function loc(address: string, priority = 1, weight = 100): DataLocator {
  return { address, priority, weight, up: true };
}

function setupTopology(): void {
  for (const ns of [A, B, R]) {
    ip("netns", "add", ns);
    ip("-n", ns, "link", "set", "lo", "up");
    for (const k of ["all", "default"]) {
      inNs(ns, "sysctl", "-qw", `net.ipv4.conf.${k}.rp_filter=0`);
    }
  }
  const veth = (a: string, an: string, b: string, bn: string) =>
    ip("link", "add", an, "netns", a, "type", "veth", "peer", "name", bn, "netns", b);
  veth(A, "va1", B, "vb1");
  veth(A, "va2", B, "vb2");
  veth(A, "var", R, "vra");
  veth(R, "vrb", B, "vbr");
  const addr = (ns: string, dev: string, ...cidrs: string[]) => {
    for (const c of cidrs) {
      if (c.includes(":")) ip("-n", ns, "addr", "add", c, "dev", dev, "nodad");
      else ip("-n", ns, "addr", "add", c, "dev", dev);
    }
    // The veths were born in the parent namespace, with its DAD setting: no DAD on them
    // (a tentative link-local address holds the first neighbour solicitation for ~1 s).
    if (dev !== "lo") inNs(ns, "sysctl", "-qw", `net.ipv6.conf.${dev}.accept_dad=0`);
    ip("-n", ns, "link", "set", dev, "up");
  };
  // Only IPv4 on the second pair, so its tx counter shows nothing but our traffic (and ARP).
  for (const [ns, dev] of [[A, "va2"], [B, "vb2"]] as const) {
    inNs(ns, "sysctl", "-qw", `net.ipv6.conf.${dev}.disable_ipv6=1`);
  }
  addr(A, "va1", "100.64.0.1/24", "2001:db8:64::1/64");
  addr(B, "vb1", "100.64.0.2/24", "2001:db8:64::2/64");
  addr(A, "va2", "100.64.1.1/24");
  addr(B, "vb2", "100.64.1.2/24");
  addr(A, "var", "100.65.0.1/24");
  addr(R, "vra", "100.65.0.3/24");
  addr(R, "vrb", "100.66.0.3/24");
  addr(B, "vbr", "100.66.0.2/24");
  // The EIDs live on the loopback (no dummy module here).
  addr(A, "lo", "10.1.0.1/32", "fd00:1::1/128");
  addr(B, "lo", "10.2.0.1/32", "fd00:2::1/128");
}

function routeIntoTun(ns: string, v4src: string, v6src: string): void {
  inNs(ns, "sysctl", "-qw", "net.ipv4.conf.lispTun0.rp_filter=0");
  ip("-n", ns, "route", "add", "10.0.0.0/8", "dev", "lispTun0", "src", v4src);
  ip("-n", ns, "-6", "route", "add", "fd00::/16", "dev", "lispTun0", "src", v6src);
}

const LOCAL_A = [{ prefix: "10.1.0.0/24" }, { prefix: "fd00:1::/64" }];
const LOCAL_B = [{ prefix: "10.2.0.0/24" }, { prefix: "fd00:2::/64" }];

function mappingsTo(prefixes: string[], ...locators: DataLocator[]): MappingJson[] {
  return prefixes.map((prefix) => ({ prefix, action: "encapsulate", locators }));
}

function xtrStart(encapsulation: Encapsulation, side: "a" | "b"): NodeStart {
  return side === "a"
    ? {
      mode: "xtr",
      encapsulation,
      local: LOCAL_A,
      mappings: mappingsTo(["10.2.0.0/24", "fd00:2::/64"], loc("100.64.0.2")),
    }
    : {
      mode: "xtr",
      encapsulation,
      local: LOCAL_B,
      mappings: mappingsTo(["10.1.0.0/24", "fd00:1::/64"], loc("100.64.0.1")),
    };
}

Deno.test({
  name: "data plane between namespaces",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async (t) => {
    const nodes: DataPlaneNode[] = [];
    try {
      setupTopology();
      const a = DataPlaneNode.spawn(A);
      const b = DataPlaneNode.spawn(B);
      const r = DataPlaneNode.spawn(R);
      nodes.push(a, b, r);
      // Resolve the IPv6 underlay neighbours meanwhile: the kernel's first neighbour
      // solicitation on these fresh veths goes unanswered, which holds packets for 1 s.
      const warm = Promise.all([
        inNsAsync(A, "ping", "-c", "1", "-W", "3", "2001:db8:64::2"),
        inNsAsync(B, "ping", "-c", "1", "-W", "3", "2001:db8:64::1"),
      ]);
      await Promise.all([a.openTun(), b.openTun()]);
      routeIntoTun(A, "10.1.0.1", "fd00:1::1");
      routeIntoTun(B, "10.2.0.1", "fd00:2::1");
      await Promise.all([a.start(xtrStart("LISP", "a")), b.start(xtrStart("LISP", "b"))]);
      await warm;

      await t.step("LISP: ping from A's EID to B's EID and back; counters move", async () => {
        assert.ok(await ping(A, "10.1.0.1", "10.2.0.1") >= 3);
        const [ca, cb] = await Promise.all([a.counters(), b.counters()]);
        console.log(`=> A ${JSON.stringify(pick(ca))}`);
        console.log(`=> B ${JSON.stringify(pick(cb))}`);
        for (const c of [ca, cb]) {
          assert.ok(c["encapsulated"]! >= 3);
          assert.ok(c["decapsulated"]! >= 3);
          assert.ok(c["tun-read"]! >= 3);
          assert.ok(c["tun-written"]! >= 3);
          assert.ok(c["udp-received"]! >= 3);
          assert.ok(c["sent"]! >= 3);
          assert.ok(c["batches"]! >= 3);
          assert.equal(c["send-errors"], 0);
        }
        assert.ok(
          a.events.some((e) =>
            e.ev === "peer" && e.rloc === "100.64.0.2" && e.srcEid === "10.2.0.1" && e.iid === 0
          ),
          "A reported B's RLOC and EID as a peer",
        );
      });

      await t.step("LISP: IPv6 EIDs over IPv4 RLOCs", async () => {
        assert.ok(await ping(A, "fd00:1::1", "fd00:2::1") >= 3);
      });

      await t.step("LISP: IPv4 EIDs over IPv6 RLOCs", async () => {
        await a.set({ prefix: "10.2.0.0/24", locators: [loc("2001:db8:64::2")] });
        await b.set({ prefix: "10.1.0.0/24", locators: [loc("2001:db8:64::1")] });
        const before = snmp6(A, "Udp6OutDatagrams");
        assert.ok(await ping(A, "10.1.0.1", "10.2.0.1") >= 3);
        assert.ok(snmp6(A, "Udp6OutDatagrams") - before >= 3, "sent over IPv6");
        await a.set({ prefix: "10.2.0.0/24", locators: [loc("100.64.0.2")] });
        await b.set({ prefix: "10.1.0.0/24", locators: [loc("100.64.0.1")] });
      });

      await t.step(
        "priority picks the preferred RLOC; a locator-down message moves traffic",
        async () => {
          await a.set({
            prefix: "10.2.0.0/24",
            locators: [loc("100.64.1.2", 2), loc("100.64.0.2", 1)],
          });
          let t1 = txPackets(A, "va1");
          let t2 = txPackets(A, "va2");
          assert.ok(await ping(A, "10.1.0.1", "10.2.0.1", 5) >= 5);
          assert.ok(txPackets(A, "va1") - t1 >= 5, "priority 1 (va1) carries the traffic");
          assert.equal(txPackets(A, "va2") - t2, 0, "priority 2 (va2) carries nothing");
          await a.locator("100.64.0.2", false);
          t1 = txPackets(A, "va1");
          t2 = txPackets(A, "va2");
          assert.ok(await ping(A, "10.1.0.1", "10.2.0.1", 5) >= 5);
          assert.ok(txPackets(A, "va2") - t2 >= 5, "after the down message va2 carries it");
          assert.ok(txPackets(A, "va1") - t1 <= 2, "and va1 at most an ARP reply or two");
          await a.locator("100.64.0.2", true);
          t1 = txPackets(A, "va1");
          assert.ok(await ping(A, "10.1.0.1", "10.2.0.1", 5) >= 5);
          assert.ok(txPackets(A, "va1") - t1 >= 5, "back on va1 once it is up");
          await a.set({ prefix: "10.2.0.0/24", locators: [loc("100.64.0.2")] });
        },
      );

      await t.step(
        "a packet for a non-local inner destination is dropped and counted",
        async () => {
          await a.set({ prefix: "10.9.0.0/24", locators: [loc("100.64.0.2")] });
          const before = (await b.counters())["dropped:not-local-destination"]!;
          assert.equal(await pingUnanswered(A, "10.1.0.1", "10.9.0.5", 2), 0);
          const after = (await b.counters())["dropped:not-local-destination"]!;
          assert.equal(after - before, 2);
        },
      );

      await t.step(
        "a packet from a source that is no local EID is dropped and counted",
        async () => {
          const before = (await a.counters())["dropped:not-local-source"]!;
          assert.equal(await pingUnanswered(A, "100.64.0.1", "10.2.0.1", 2), 0);
          const after = (await a.counters())["dropped:not-local-source"]!;
          assert.ok(after - before >= 2);
        },
      );

      await t.step("a flood to an unmapped destination posts one miss per second", async () => {
        const first = a.events.length;
        const before = (await a.counters())["dropped:miss"]!;
        const t0 = performance.now();
        // ping -f sends every 10 ms or so when no reply comes back: ~200 packets in 3 s.
        await inNsAsync(A, "ping", "-n", "-f", "-w", "3", "-I", "10.1.0.1", "10.7.0.1");
        const elapsed = performance.now() - t0;
        await a.counters(); // every event before the reply has arrived
        const misses = a.events.slice(first).filter((e) => e.ev === "miss" && e.dst === "10.7.0.1");
        const dropped = (await a.counters())["dropped:miss"]! - before;
        console.log(
          `=> ${misses.length} misses for ${dropped} packets in ${elapsed.toFixed(0)} ms`,
        );
        assert.ok(dropped >= 100, `${dropped} packets dropped as misses`);
        for (const m of misses) {
          assert.deepEqual(m, { ev: "miss", iid: 0, dst: "10.7.0.1", src: "10.1.0.1" });
        }
        // At most one per started second of the flood, at least one per whole second.
        assert.ok(misses.length >= Math.floor(elapsed / 1000) - 1, `${misses.length} misses`);
        assert.ok(misses.length <= Math.ceil(elapsed / 1000), `${misses.length} misses`);
      });

      await t.step("VXLAN-GPE: ping both ways, IPv4 and IPv6 EIDs", async () => {
        await Promise.all([a.stop(), b.stop()]);
        await Promise.all([
          a.start(xtrStart("VXLAN-GPE", "a")),
          b.start(xtrStart("VXLAN-GPE", "b")),
        ]);
        assert.ok(await ping(A, "10.1.0.1", "10.2.0.1") >= 3);
        assert.ok(await ping(A, "fd00:1::1", "fd00:2::1") >= 3);
        const [ca, cb] = await Promise.all([a.counters(), b.counters()]);
        for (const c of [ca, cb]) {
          assert.ok(c["encapsulated"]! >= 6);
          assert.ok(c["decapsulated"]! >= 6);
        }
        // Over IPv6 RLOCs too.
        await a.set({ prefix: "fd00:2::/64", locators: [loc("2001:db8:64::2")] });
        await b.set({ prefix: "fd00:1::/64", locators: [loc("2001:db8:64::1")] });
        assert.ok(await ping(A, "fd00:1::1", "fd00:2::1") >= 3);
      });

      await t.step(
        "rtr: A -> R -> B and back, re-encapsulated; never back to the sender",
        async () => {
          await r.start({
            mode: "rtr",
            encapsulation: "VXLAN-GPE",
            mappings: [
              ...mappingsTo(["10.2.0.0/24"], loc("100.66.0.2")),
              ...mappingsTo(["10.1.0.0/24"], loc("100.65.0.1")),
              ...mappingsTo(["10.9.0.0/24"], loc("100.65.0.1")),
            ],
          });
          await a.set({ prefix: "10.2.0.0/24", locators: [loc("100.65.0.3")] });
          await a.set({ prefix: "10.9.0.0/24", locators: [loc("100.65.0.3")] });
          await b.set({ prefix: "10.1.0.0/24", locators: [loc("100.66.0.3")] });
          assert.ok(await ping(A, "10.1.0.1", "10.2.0.1") >= 3);
          let c = await r.counters();
          console.log(`=> R ${JSON.stringify(pick(c))}`);
          assert.ok(c["decapsulated"]! >= 6);
          assert.ok(c["encapsulated"]! >= 6);
          assert.ok(c["sent"]! >= 6);
          assert.ok(
            b.events.some((e) =>
              e.ev === "peer" && e.rloc === "100.66.0.3" && e.srcEid === "10.1.0.1"
            ),
            "B saw A's EID behind the RTR",
          );
          assert.equal(await pingUnanswered(A, "10.1.0.1", "10.9.0.5", 2), 0);
          c = await r.counters();
          assert.equal(c["dropped:loop"], 2);
        },
      );

      const errs = [a, b, r].flatMap((n) => n.events.filter((e) => e.ev === "stopped"));
      assert.deepEqual(errs, [], "no data plane stopped on its own");
    } finally {
      await Promise.all(nodes.map((n) => n.close()));
      for (const ns of [A, B, R]) run("ip", ["netns", "del", ns]);
    }
  },
});

function pick(c: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(c)) if (v !== 0) out[k] = v;
  return out;
}
