/**
 * Unit tests of explicit locator paths (elp.ts) and of what the map-cache
 * gives the data plane for them (map_cache.ts): L hops resolved through
 * the map-cache, P hops probed and a down one taking the path down, S hops
 * that cannot be reached dropping instead of being skipped.
 */

import assert from "node:assert/strict";
import { parseConfig } from "../../config/mod.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { formatPrefix, parsePrefix, type Prefix } from "../../core/prefix.ts";
import type { DataMapping } from "../../dataplane/api.ts";
import { type ElpAddress, ipAddress } from "../../wire/address.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { defaultTiming, type Env } from "./context.ts";
import { elpNextHop, elpPosition, elpProbeTargets, type ElpReader } from "./elp.ts";
import { type CacheEntry, MapCache } from "./map_cache.ts";

const RTR = "100.64.3.2";
const RTR2 = "100.64.5.2";
const ETR = "100.64.2.2";
const RTR2_EID = "10.5.0.2";

type Bits = { l?: boolean; p?: boolean; s?: boolean };

function path(...hops: [string, Bits?][]): ElpAddress {
  return {
    kind: "elp",
    hops: hops.map(([ip, b = {}]) => ({
      lookup: b.l === true,
      probe: b.p === true,
      strict: b.s === true,
      address: ipAddress(ip),
    })),
  };
}

function reader(o: {
  here?: string[];
  mapped?: Record<string, string>;
  down?: string[];
  noRoute?: string[];
  asked?: string[];
} = {}): ElpReader {
  return {
    here: new Set(o.here ?? []),
    resolve: (eid) => {
      const ip = formatPrefix(eid).replace(/\/\d+$/, "");
      o.asked?.push(ip);
      return o.mapped?.[ip];
    },
    probedDown: (ip) => (o.down ?? []).includes(ip),
    hasRoute: (ip) => !(o.noRoute ?? []).includes(ip),
  };
}

Deno.test("elpNextHop() with no bits: the ITR sends to the first hop, each RTR to the one after it", () => {
  const elp = path([RTR], [RTR2], [ETR]);
  assert.deepEqual(elpNextHop(elp, reader()), { kind: "send", ip: RTR, hop: 0, skipped: 0 });
  assert.deepEqual(elpNextHop(elp, reader({ here: [RTR] })), {
    kind: "send",
    ip: RTR2,
    hop: 1,
    skipped: 0,
  });
  assert.deepEqual(elpNextHop(elp, reader({ here: [ETR] })), { kind: "last" });
});

Deno.test("elpNextHop() resolves an L hop's EID to its RLOC, and is unreachable until it is", () => {
  const elp = path([RTR], [RTR2_EID, { l: true }], [ETR]);
  const asked: string[] = [];
  assert.deepEqual(
    elpNextHop(elp, reader({ here: [RTR], mapped: { [RTR2_EID]: RTR2 }, asked })),
    { kind: "send", ip: RTR2, hop: 1, skipped: 0 },
  );
  assert.ok(asked.includes(RTR2_EID), "the EID was looked up");
  // Unresolved, loose: skipped, straight to the last hop.
  assert.deepEqual(elpNextHop(elp, reader({ here: [RTR] })), {
    kind: "send",
    ip: ETR,
    hop: 2,
    skipped: 1,
  });
  // The hop whose EID maps to one of our addresses is us: we send to the hop after it.
  assert.equal(elpPosition(elp, reader({ here: [RTR2], mapped: { [RTR2_EID]: RTR2 } })), 2);
  assert.deepEqual(
    elpNextHop(elp, reader({ here: [RTR2], mapped: { [RTR2_EID]: RTR2 } })),
    { kind: "send", ip: ETR, hop: 2, skipped: 0 },
  );
});

Deno.test("elpNextHop(): a P hop ahead that is probed down takes the path down, near or far", () => {
  const elp = path([RTR, { p: true }], [RTR2, { p: true }], [ETR]);
  assert.equal(elpNextHop(elp, reader()).kind, "send");
  assert.deepEqual(elpNextHop(elp, reader({ down: [RTR2] })), {
    kind: "down",
    ip: RTR2,
    hop: 1,
    problem: "probed-down",
  });
  assert.equal(elpNextHop(elp, reader({ down: [RTR] })).kind, "down");
  // A hop behind us does not count.
  assert.equal(elpNextHop(elp, reader({ here: [RTR], down: [RTR] })).kind, "send");
  // A hop without P is never taken as probed, whatever probing says of its address.
  const loose = path([RTR], [RTR2], [ETR]);
  assert.deepEqual(elpNextHop(loose, reader({ down: [RTR2] })), {
    kind: "send",
    ip: RTR,
    hop: 0,
    skipped: 0,
  });
});

Deno.test("elpNextHop(): an unreachable hop is skipped without S, and drops with S", () => {
  const loose = path([RTR], [RTR2], [ETR]);
  const strict = path([RTR], [RTR2, { s: true }], [ETR]);
  // No route.
  assert.deepEqual(elpNextHop(loose, reader({ here: [RTR], noRoute: [RTR2] })), {
    kind: "send",
    ip: ETR,
    hop: 2,
    skipped: 1,
  });
  assert.deepEqual(elpNextHop(strict, reader({ here: [RTR], noRoute: [RTR2] })), {
    kind: "strict",
    ip: RTR2,
    hop: 1,
    problem: "no-route",
  });
  // Unresolved L hop.
  const strictL = path([RTR], [RTR2_EID, { l: true, s: true }], [ETR]);
  assert.deepEqual(elpNextHop(strictL, reader({ here: [RTR] })), {
    kind: "strict",
    ip: RTR2_EID,
    hop: 1,
    problem: "unresolved",
  });
  // Probed down (P and S).
  const strictP = path([RTR], [RTR2, { p: true, s: true }], [ETR]);
  assert.deepEqual(elpNextHop(strictP, reader({ here: [RTR], down: [RTR2] })), {
    kind: "strict",
    ip: RTR2,
    hop: 1,
    problem: "probed-down",
  });
  // The last hop is never skipped.
  assert.deepEqual(elpNextHop(loose, reader({ here: [RTR2], noRoute: [ETR] })), {
    kind: "down",
    ip: ETR,
    hop: 2,
    problem: "no-route",
  });
});

Deno.test("elpProbeTargets() lists the P hops ahead only, an L hop once resolved", () => {
  const elp = path([RTR, { p: true }], [RTR2_EID, { l: true, p: true }], [ETR]);
  assert.deepEqual(elpProbeTargets(elp, reader()), [RTR]);
  assert.deepEqual(elpProbeTargets(elp, reader({ mapped: { [RTR2_EID]: RTR2 } })), [RTR, RTR2]);
  assert.deepEqual(elpProbeTargets(elp, reader({ here: [RTR], mapped: { [RTR2_EID]: RTR2 } })), [
    RTR2,
  ]);
  assert.deepEqual(elpProbeTargets(path([RTR], [RTR2], [ETR]), reader()), [], "no P, no probes");
});

// ---------------------------------------------------------------------------
// The map-cache

function prefix(text: string): Prefix {
  return parsePrefix(text, 0)!;
}

function env(now: () => number, lines: string[] = []): Env {
  const toml = [
    'operating-mode = "RTR"',
    'map-resolver = ["127.0.0.1"]',
    "[[rtr-iface]]",
    'iface = "lo"',
    "ip_version = 4",
  ];
  const r = parseConfig(toml.join("\n"), { role: "rtr" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  return {
    config: r.config,
    log: new Logger({
      role: "rtr",
      level: "info",
      sink: { write: (l: string) => void lines.push(l) },
      now,
    }),
    counters: new Counters(),
    now,
    nonce: () => 1n,
    peerPort: () => 4342,
    timing: defaultTiming(r.config),
    signal: new AbortController().signal,
  };
}

function cacheWith(o: { here?: string[]; down?: string[]; noRoute?: string[] } = {}) {
  let t = 1_000_000;
  const lines: string[] = [];
  const given = new Map<string, DataMapping>();
  const pushes: string[] = [];
  const asked: string[] = [];
  const down = new Set(o.down ?? []);
  const cache = new MapCache(env(() => t, lines), {
    data: {
      setMapping: (m) => {
        given.set(formatPrefix(m.prefix), m);
        pushes.push(formatPrefix(m.prefix));
      },
      deleteMapping: (p) => void given.delete(formatPrefix(p)),
    },
    hostIps: () => new Set(o.here ?? []),
    locatorUp: (ip) => !down.has(ip),
    locatorUsed: () => {},
    natRtrs: () => undefined,
    hasRoute: (ip) => !(o.noRoute ?? []).includes(ip),
    resolveEid: (eid) => void asked.push(formatPrefix(eid)),
  });
  return {
    cache,
    given,
    pushes,
    asked,
    down,
    lines,
    advance: (ms: number) => t += ms,
    now: () => t,
  };
}

function entry(p: string, locators: CacheEntry["locators"], ttlMin = 10, now = 1_000_000) {
  return {
    prefix: prefix(p),
    static: false,
    action: "encapsulate" as const,
    locators,
    ttl: ttlMin,
    expiresAt: now + ttlMin * 60_000,
  };
}

Deno.test("MapCache: an L hop is resolved through the mapping system, installed when it answers, asked again when it expires", () => {
  const c = cacheWith({ here: [RTR] });
  const elp = path([RTR], [RTR2_EID, { l: true }], [ETR]);
  c.cache.install(entry("10.2.0.0/24", [locatorRecord(elp, 1, 100)]));
  assert.deepEqual(c.asked, [`${RTR2_EID}/32`], "the L hop's EID is asked for");
  assert.equal(c.given.get("10.2.0.0/24")!.locators[0]!.address, ETR, "loose: skipped meanwhile");
  // The mapping system answers: the path entry is given again, to the RLOC.
  c.cache.install(entry(`${RTR2_EID}/32`, [locatorRecord(ipAddress(RTR2), 1, 100)], 1));
  assert.deepEqual(c.given.get("10.2.0.0/24")!.locators.map((l) => [l.address, l.up]), [
    [RTR2, true],
  ]);
  // Its entry expires: unresolved again, asked again.
  c.advance(61_000);
  c.cache.expiredSweep();
  assert.equal(c.given.get("10.2.0.0/24")!.locators[0]!.address, ETR);
  assert.deepEqual(c.asked, [`${RTR2_EID}/32`, `${RTR2_EID}/32`], "re-resolved on expiry");
});

Deno.test("MapCache: a strict hop that cannot be reached gives the Worker a down elpStrict locator", () => {
  const c = cacheWith({ here: [RTR] });
  const elp = path([RTR], [RTR2_EID, { l: true, s: true }], [ETR]);
  c.cache.install(entry("10.2.0.0/24", [locatorRecord(elp, 1, 100)]));
  assert.deepEqual(c.given.get("10.2.0.0/24")!.locators, [
    { address: RTR2_EID, priority: 1, weight: 100, up: false, elpStrict: true },
  ]);
  assert.equal(c.cache.view(undefined)[0]!.rlocs[0]!.state, "down", "the views say so");
  c.cache.install(entry(`${RTR2_EID}/32`, [locatorRecord(ipAddress(RTR2), 1, 100)], 1));
  assert.deepEqual(c.given.get("10.2.0.0/24")!.locators, [
    { address: RTR2, priority: 1, weight: 100, up: true },
  ]);
  // No route to it: strict again.
  const n = cacheWith({ here: [RTR], noRoute: [RTR2] });
  n.cache.install(
    entry("10.2.0.0/24", [locatorRecord(path([RTR], [RTR2, { s: true }], [ETR]), 1, 100)]),
  );
  assert.equal(n.given.get("10.2.0.0/24")!.locators[0]!.elpStrict, true);
});

Deno.test("MapCache.pushElp() gives the Worker a path again only when a probed hop changed it", () => {
  const c = cacheWith();
  const elp = path([RTR, { p: true }], [RTR2, { p: true }], [ETR]);
  c.cache.install(entry("10.2.0.0/24", [locatorRecord(elp, 1, 100)]));
  assert.deepEqual(c.cache.elpProbeTargets(elp), [RTR, RTR2]);
  const before = c.pushes.length;
  c.cache.pushElp();
  assert.equal(c.pushes.length, before, "nothing changed, nothing pushed");
  c.down.add(RTR2);
  c.cache.pushElp();
  assert.equal(c.pushes.length, before + 1);
  assert.deepEqual(c.given.get("10.2.0.0/24")!.locators, [
    { address: RTR2, priority: 1, weight: 100, up: false },
  ], "the path is down: a probed hop is");
  c.down.delete(RTR2);
  c.cache.pushElp();
  assert.deepEqual(c.given.get("10.2.0.0/24")!.locators.map((l) => [l.address, l.up]), [
    [RTR, true],
  ]);
});

Deno.test("MapCache logs where a path leads when that changes, at most once per 10 s per prefix", () => {
  const c = cacheWith();
  const elp = path([RTR, { p: true }], [RTR2, { p: true }], [ETR]);
  c.cache.install(entry("10.2.0.0/24", [locatorRecord(elp, 1, 100)]));
  const logged = () => c.lines.filter((l) => / elp-path /.test(l));
  assert.equal(logged().length, 1);
  assert.match(logged()[0]!, /prefix=10\.2\.0\.0\/24 .*paths="?send:100\.64\.3\.2/);
  c.advance(10_000);
  c.down.add(RTR2);
  c.cache.pushElp();
  assert.equal(logged().length, 2);
  assert.match(logged()[1]!, /down:100\.64\.5\.2\(probed-down\)/);
  c.down.delete(RTR2);
  c.cache.pushElp();
  c.down.add(RTR2);
  c.cache.pushElp();
  assert.equal(logged().length, 2, "changes within 10 s are held back");
});
