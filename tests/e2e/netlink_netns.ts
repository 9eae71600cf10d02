/**
 * rtnetlink tests that run inside a throwaway network namespace: started
 * by ffi/netlink_test.ts, never directly (the guard below refuses). Every
 * change made through {@link Netlink} is cross-checked with `ip -j`.
 *
 * @module
 */

import assert from "node:assert/strict";
import { assertInTestNetns, ip, ipJson, noFdLeak } from "../netns.ts";
import { Tun } from "../../ffi/tun.ts";
import { Netlink, type NetlinkEvent, NetlinkEvents } from "../../ffi/netlink.ts";
import { ErrnoError } from "../../ffi/libc.ts";

assertInTestNetns();

interface IpAddrInfo {
  family: string;
  local: string;
  prefixlen: number;
}
interface IpAddr {
  ifindex: number;
  ifname: string;
  mtu: number;
  addr_info: IpAddrInfo[];
}
interface IpRoute {
  dst: string;
  dev?: string;
  gateway?: string;
  prefsrc?: string;
  metric?: number;
  type?: string;
  table?: string;
}
interface IpRule {
  priority: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  table?: string;
  action?: string;
}

function addrsOf(dev: string): string[] {
  const [a] = ipJson("addr", "show", "dev", dev) as IpAddr[];
  return (a?.addr_info ?? []).filter((i) => i.local !== undefined && !i.local.startsWith("fe80"))
    .map((i) => `${i.local}/${i.prefixlen}`).sort();
}

/** `ip -j route show table T` of both families, as "dst dev/type extras" lines. */
function routeLines(table: string): string[] {
  const lines: string[] = [];
  for (const fam of ["-4", "-6"]) {
    for (const r of ipJson(fam, "route", "show", "table", table) as IpRoute[]) {
      if (r.dst.startsWith("fe80") || r.dst.startsWith("ff00") || r.dst === "multicast") continue;
      const parts = [r.dst];
      if (r.type !== undefined && r.type !== "unicast") parts.push(r.type);
      if (r.gateway !== undefined) parts.push(`via ${r.gateway}`);
      // The kernel hangs IPv6 blackhole/unreachable routes on lo; ip shows it.
      if (r.dev !== undefined && (r.type ?? "unicast") === "unicast") parts.push(`dev ${r.dev}`);
      if (r.prefsrc !== undefined) parts.push(`src ${r.prefsrc}`);
      if (r.metric !== undefined && fam === "-4") parts.push(`metric ${r.metric}`);
      lines.push(parts.join(" "));
    }
  }
  return lines.sort();
}

function ruleLines(fam: "-4" | "-6"): string[] {
  return (ipJson(fam, "rule", "show") as IpRule[]).map((r) => {
    const from = r.src === undefined
      ? "all"
      : r.srclen === undefined
      ? r.src
      : `${r.src}/${r.srclen}`;
    const to = r.dst === undefined
      ? ""
      : ` to ${r.dstlen === undefined ? r.dst : `${r.dst}/${r.dstlen}`}`;
    return `${r.priority}: from ${from}${to} ${
      r.table === undefined ? r.action : `lookup ${r.table}`
    }`;
  });
}

function expectErrno(fn: () => void, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof ErrnoError, `not an ErrnoError: ${e}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

Deno.test("addrAdd()/addrDel() add and remove IPv4 and IPv6 addresses (checked with ip -j addr)", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    nl.addrAdd(tun.index, "10.1.0.1/24");
    nl.addrAdd(tun.index, "192.0.2.7/32");
    nl.addrAdd(tun.index, "2001:db8:1::1/64", { nodad: true });
    nl.addrAdd(tun.index, "2001:db8:9::9/128", { nodad: true, noprefixroute: true });
    assert.deepEqual(addrsOf("lispTun0"), [
      "10.1.0.1/24",
      "192.0.2.7/32",
      "2001:db8:1::1/64",
      "2001:db8:9::9/128",
    ]);
    const mine = nl.addresses().filter((a) => a.index === tun.index && a.scope === 0)
      .map((a) => `${a.family} ${a.address}/${a.prefixLen}`).sort();
    assert.deepEqual(mine, [
      "ipv4 10.1.0.1/24",
      "ipv4 192.0.2.7/32",
      "ipv6 2001:db8:1::1/64",
      "ipv6 2001:db8:9::9/128",
    ]);
    const v6 = nl.addresses("ipv6").find((a) => a.address === "2001:db8:9::9")!;
    assert.ok((v6.flags & 0x200) !== 0, "IFA_F_NOPREFIXROUTE kept");
    assert.ok(nl.addresses("ipv4").every((a) => a.family === "ipv4"));

    nl.addrDel(tun.index, "10.1.0.1/24");
    nl.addrDel(tun.index, "192.0.2.7/32");
    nl.addrDel(tun.index, "2001:db8:1::1/64");
    nl.addrDel(tun.index, "2001:db8:9::9/128");
    assert.deepEqual(addrsOf("lispTun0"), []);
  }));

Deno.test("routeAdd()/routeDel() in main, table 100 and table 1000, with every route kind", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    nl.addrAdd(tun.index, "10.1.0.1/24");
    nl.addrAdd(tun.index, "2001:db8:1::1/64", { nodad: true });
    const main0 = routeLines("main");
    const routes = [
      { dst: "10.2.0.0/16", dev: tun.index },
      { dst: "10.3.0.0/16", gateway: "10.1.0.254", dev: tun.index, src: "10.1.0.1", metric: 7 },
      { dst: "0.0.0.0/1", dev: tun.index, table: 100 },
      { dst: "128.0.0.0/1", dev: tun.index, table: 100 },
      { dst: "0.0.0.0/0", dev: tun.index, table: 1000 },
      { dst: "10.9.0.0/16", type: "blackhole" as const, table: 100 },
      { dst: "10.8.0.0/16", type: "unreachable" as const, table: 1000 },
      { dst: "::/1", dev: tun.index, table: 100 },
      { dst: "8000::/1", dev: tun.index, table: 100 },
      { dst: "2001:db8:2::/48", gateway: "2001:db8:1::fe", dev: tun.index },
      { dst: "2001:db8:3::/48", type: "blackhole" as const, table: 1000 },
    ];
    for (const r of routes) nl.routeAdd(r);

    assert.deepEqual(
      routeLines("main").filter((l) => !main0.includes(l)),
      [
        "10.2.0.0/16 dev lispTun0",
        "10.3.0.0/16 via 10.1.0.254 dev lispTun0 src 10.1.0.1 metric 7",
        "2001:db8:2::/48 via 2001:db8:1::fe dev lispTun0",
      ],
    );
    assert.deepEqual(routeLines("100"), [
      "0.0.0.0/1 dev lispTun0",
      "10.9.0.0/16 blackhole",
      "128.0.0.0/1 dev lispTun0",
      "8000::/1 dev lispTun0",
      "::/1 dev lispTun0",
    ]);
    assert.deepEqual(routeLines("1000"), [
      "10.8.0.0/16 unreachable",
      "2001:db8:3::/48 blackhole",
      "default dev lispTun0",
    ]);

    // Our own dump agrees.
    const t1000 = nl.routes({ table: 1000 }).map((r) => `${r.dst} ${r.type}`).sort();
    assert.deepEqual(t1000, [
      "0.0.0.0/0 unicast",
      "10.8.0.0/16 unreachable",
      "2001:db8:3::/48 blackhole",
    ]);
    const gw = nl.routes({ family: "ipv4" }).find((r) => r.dst === "10.3.0.0/16")!;
    assert.deepEqual(
      { gateway: gw.gateway, dev: gw.dev, src: gw.src, metric: gw.metric, table: gw.table },
      { gateway: "10.1.0.254", dev: tun.index, src: "10.1.0.1", metric: 7, table: 254 },
    );

    // Adding the same again fails; replace succeeds.
    expectErrno(
      () => nl.routeAdd({ dst: "10.2.0.0/16", dev: tun.index }),
      "EEXIST",
      /^RTM_NEWROUTE 10\.2\.0\.0\/16 dev \d+ table 254: File exists \(EEXIST\)$/,
    );
    nl.routeAdd({ dst: "10.2.0.0/16", dev: tun.index, replace: true });

    for (const r of routes) nl.routeDel(r);
    assert.deepEqual(routeLines("main"), main0);
    assert.deepEqual(routeLines("100"), []);
    assert.deepEqual(routeLines("1000"), []);
  }));

Deno.test("ruleAdd()/ruleDel(): from 10.1.0.0/16 lookup 100 and IPv6 rules (checked with ip -j rule)", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    const v4before = ruleLines("-4");
    const v6before = ruleLines("-6");
    const rules = [
      { family: "ipv4" as const, priority: 100, from: "10.1.0.0/16", table: 100 },
      { family: "ipv4" as const, priority: 99, to: "10.1.0.0/16", table: 254 },
      { family: "ipv4" as const, priority: 200, from: "192.0.2.1", table: 1000 },
      { family: "ipv6" as const, priority: 100, from: "2001:db8:1::/48", table: 100 },
    ];
    for (const r of rules) nl.ruleAdd(r);
    assert.deepEqual(ruleLines("-4").filter((l) => !v4before.includes(l)), [
      "99: from all to 10.1.0.0/16 lookup main",
      "100: from 10.1.0.0/16 lookup 100",
      "200: from 192.0.2.1 lookup 1000",
    ]);
    assert.deepEqual(ruleLines("-6").filter((l) => !v6before.includes(l)), [
      "100: from 2001:db8:1::/48 lookup 100",
    ]);
    const mine = nl.rules("ipv4").filter((r) => r.priority >= 99 && r.priority <= 200);
    assert.deepEqual(mine, [
      { family: "ipv4", priority: 99, table: 254, action: "lookup", to: "10.1.0.0/16" },
      { family: "ipv4", priority: 100, table: 100, action: "lookup", from: "10.1.0.0/16" },
      { family: "ipv4", priority: 200, table: 1000, action: "lookup", from: "192.0.2.1/32" },
    ]);
    expectErrno(
      () => nl.ruleAdd(rules[0]!),
      "EEXIST",
      /^RTM_NEWRULE ipv4 pref 100 from 10\.1\.0\.0\/16 lookup 100: /,
    );
    for (const r of rules) nl.ruleDel(r);
    assert.deepEqual(ruleLines("-4"), v4before);
    assert.deepEqual(ruleLines("-6"), v6before);
  }));

Deno.test("failures are ErrnoError with the errno name and the kernel's message", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    expectErrno(
      () => nl.routeDel({ dst: "10.99.0.0/16", table: 100 }),
      "ESRCH",
      /^RTM_DELROUTE 10\.99\.0\.0\/16 table 100: No such process \(ESRCH\)/,
    );
    expectErrno(
      () => nl.ruleDel({ family: "ipv4", priority: 4242, from: "10.99.0.0/16", table: 100 }),
      "ENOENT",
      /^RTM_DELRULE ipv4 pref 4242 from 10\.99\.0\.0\/16 lookup 100: No such file or directory \(ENOENT\)/,
    );
    expectErrno(
      () => nl.addrDel(tun.index, "10.77.0.1/24"),
      "EADDRNOTAVAIL",
      /^RTM_DELADDR 10\.77\.0\.1\/24 index \d+: Cannot assign requested address \(EADDRNOTAVAIL\)/,
    );
    expectErrno(
      () => nl.routeAdd({ dst: "10.2.0.1/8", dev: tun.index }),
      "EINVAL",
      /: Invalid argument \(EINVAL\): Invalid prefix for given prefix length$/,
    );
    expectErrno(() => nl.linkSetMtu(tun.index, 10), "EINVAL", /mtu less than device minimum/);
    expectErrno(
      () => nl.linkSetUp(99999, true),
      "ENODEV",
      /^RTM_NEWLINK index 99999 up: No such device/,
    );
    expectErrno(() => nl.linkIndex("nope0"), "ENODEV", /^if_nametoindex nope0: /);
    assert.equal(nl.linkIndex("lispTun0"), tun.index);
    assert.throws(() => nl.routeAdd({ dst: "10.2.0.0/33" }), TypeError);
    assert.throws(() => nl.routeAdd({ dst: "not-an-ip/8" }), TypeError);
    assert.throws(() => nl.routeAdd({ dst: "10.0.0.0/8", gateway: "2001:db8::1" }), TypeError);
    assert.throws(() => nl.ruleAdd({ family: "ipv6", from: "10.0.0.0/8", table: 1 }), TypeError);
  }));

Deno.test("routeGet() answers like `ip route get`, policy rules included", () =>
  noFdLeak(async () => {
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    nl.addrAdd(tun.index, "10.1.0.1/24");
    nl.routeAdd({ dst: "10.2.0.0/16", dev: tun.index });
    await nl.addrWaitUsable("10.1.0.1");
    const local = nl.routeGet("10.1.0.1");
    assert.equal(local.type, "local");
    assert.equal(local.table, 255);
    const out = nl.routeGet("10.2.3.4");
    assert.deepEqual(
      { type: out.type, dst: out.dst, dev: out.dev, src: out.src, table: out.table },
      { type: "unicast", dst: "10.2.3.4/32", dev: tun.index, src: "10.1.0.1", table: 254 },
    );
    expectErrno(
      () => nl.routeGet("192.0.2.99"),
      "ENETUNREACH",
      /^RTM_GETROUTE 192\.0\.2\.99: Network is unreachable/,
    );
    // from 10.1.0.0/16 lookup 100, and a default route in table 100.
    nl.routeAdd({ dst: "0.0.0.0/0", dev: tun.index, table: 100 });
    nl.ruleAdd({ family: "ipv4", priority: 100, from: "10.1.0.0/16", table: 100 });
    try {
      const viaRule = nl.routeGet("192.0.2.99", { src: "10.1.0.1" });
      assert.equal(viaRule.table, 100);
      assert.equal(viaRule.dev, tun.index);
    } finally {
      nl.ruleDel({ family: "ipv4", priority: 100, from: "10.1.0.0/16", table: 100 });
    }
    await assert.rejects(() => nl.addrWaitUsable("10.1.0.77", 50), /not usable after 50 ms/);
  }));

Deno.test("links(), addresses() and routes() agree with ip -j", () =>
  noFdLeak(() => {
    using nl = Netlink.open();
    nl.linkSetUp(nl.linkIndex("lo"), true);
    using tun = Tun.open("lispTun0", { netlink: nl });
    nl.addrAdd(tun.index, "10.1.0.1/24");
    const ipLinks = (ipJson("link", "show") as IpAddr[]).map((l) =>
      `${l.ifindex} ${l.ifname} ${l.mtu}`
    );
    assert.deepEqual(nl.links().map((l) => `${l.index} ${l.name} ${l.mtu}`), ipLinks);
    const ipAddrs = (ipJson("addr", "show") as IpAddr[]).flatMap((l) =>
      l.addr_info.map((a) => `${l.ifindex} ${a.local}/${a.prefixlen}`)
    ).sort();
    assert.deepEqual(
      nl.addresses().map((a) => `${a.index} ${a.address}/${a.prefixLen}`).sort(),
      ipAddrs,
    );
    const ipMain = (ipJson("-4", "route", "show", "table", "main") as IpRoute[]).map((r) => r.dst)
      .sort();
    assert.deepEqual(
      nl.routes({ table: 254, family: "ipv4" }).map((r) => r.dst.replace(/\/32$/, "")).sort(),
      ipMain,
    );
    assert.ok(nl.routes({ table: 255 }).some((r) => r.type === "local" && r.dst === "10.1.0.1/32"));
  }));

/** Drains `ev` until `want` matches an event or `ms` pass. */
async function waitFor(
  ev: NetlinkEvents,
  want: (e: NetlinkEvent) => boolean,
  ms = 2000,
): Promise<NetlinkEvent> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const found = ev.drain().find(want);
    if (found !== undefined) return found;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error("expected netlink event did not come");
}

Deno.test("NetlinkEvents sees link down/up and address add/del made with ip", () =>
  noFdLeak(async () => {
    using ev = NetlinkEvents.open();
    assert.deepEqual(ev.drain(), []);
    ip("link", "add", "oorv0", "type", "veth", "peer", "name", "oorv1");
    try {
      const created = await waitFor(ev, (e) => e.kind === "link" && e.link.name === "oorv0");
      assert.ok(created.kind === "link" && created.change === "new" && !created.link.up);
      const index = created.link.index;

      ip("link", "set", "oorv0", "up");
      ip("link", "set", "oorv1", "up");
      const up = await waitFor(
        ev,
        (e) => e.kind === "link" && e.link.index === index && e.link.running,
      );
      assert.ok(up.kind === "link" && up.link.up && up.link.lowerUp);

      ip("addr", "add", "10.5.0.1/24", "dev", "oorv0");
      const added = await waitFor(
        ev,
        (e) => e.kind === "address" && e.address.address === "10.5.0.1",
      );
      assert.deepEqual(added, {
        kind: "address",
        change: "new",
        address: {
          family: "ipv4",
          index,
          address: "10.5.0.1",
          prefixLen: 24,
          scope: 0,
          flags: 0x80,
          label: "oorv0",
        },
      });
      ip("addr", "add", "2001:db8:5::1/64", "dev", "oorv0", "nodad");
      const added6 = await waitFor(
        ev,
        (e) => e.kind === "address" && e.address.address === "2001:db8:5::1",
      );
      assert.ok(
        added6.kind === "address" && added6.address.family === "ipv6" &&
          added6.address.index === index,
      );

      ip("addr", "del", "10.5.0.1/24", "dev", "oorv0");
      const removed = await waitFor(ev, (e) => e.kind === "address" && e.change === "del");
      assert.ok(removed.kind === "address" && removed.address.address === "10.5.0.1");

      // The peer going down takes the carrier away: running false, still admin up.
      ip("link", "set", "oorv1", "down");
      const noCarrier = await waitFor(
        ev,
        (e) => e.kind === "link" && e.link.index === index && !e.link.running,
      );
      assert.ok(noCarrier.kind === "link" && noCarrier.link.up);
      ip("link", "set", "oorv0", "down");
      const down = await waitFor(
        ev,
        (e) => e.kind === "link" && e.link.index === index && !e.link.up,
      );
      assert.ok(down.kind === "link" && down.change === "new");
    } finally {
      ip("link", "del", "oorv0");
    }
    const gone = await waitFor(ev, (e) => e.kind === "link" && e.change === "del");
    assert.ok(gone.kind === "link" && gone.link.name === "oorv0");
  }));

Deno.test("NetlinkEvents.listen() yields events from a timer and stops on abort", () =>
  noFdLeak(async () => {
    using ev = NetlinkEvents.open();
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    ev.drain();
    const ac = new AbortController();
    const seen: string[] = [];
    const loop = (async () => {
      for await (const e of ev.listen({ intervalMs: 20, signal: ac.signal })) {
        if (e.kind === "address" && e.address.family === "ipv4") {
          seen.push(`${e.change} ${e.address.address}`);
        }
        if (seen.length === 2) ac.abort();
      }
    })();
    ip("addr", "add", "10.6.0.1/24", "dev", "lispTun0");
    ip("addr", "del", "10.6.0.1/24", "dev", "lispTun0");
    const timer = setTimeout(() => ac.abort(), 3000);
    await loop;
    clearTimeout(timer);
    assert.deepEqual(seen, ["new 10.6.0.1", "del 10.6.0.1"]);
    assert.ok(tun.index > 0);
  }));

Deno.test("NetlinkEvents reports an overflow when its queue overruns", () =>
  noFdLeak(() => {
    using ev = NetlinkEvents.open({ recvBuffer: 1 });
    using nl = Netlink.open();
    using tun = Tun.open("lispTun0", { netlink: nl });
    for (let i = 1; i <= 200; i++) nl.addrAdd(tun.index, `10.7.${i}.1/24`);
    const events = ev.drain();
    assert.ok(events.some((e) => e.kind === "overflow"), `${events.length} events, none overflow`);
    assert.ok(ev.overflows >= 1);
  }));
