/**
 * Map-cache figures: 1,000,000 random IPv4 prefixes with the length mix of
 * a real table, then lookups/s of random addresses, insert and delete
 * time, and bytes per entry; the same for IPv6 and for the whole per-packet
 * path (flow hash, lookup, locator selection).
 *
 *   deno bench -A dataplane/fib_bench.ts     (prints the figures, then runs the benches)
 *   deno run -A dataplane/fib_bench.ts       (the figures only)
 *
 * @module
 */

import { flowHash, LpmTable, MapCache, selectLocator } from "./fib.ts";
import type { Prefix } from "../core/prefix.ts";

const PREFIXES = 1_000_000;
const ADDRESSES = 1 << 20;

/** Seeded PRNG (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Prefix lengths roughly as in a DFZ table: mostly /24, some /16–/23, few shorter. */
const LENGTHS: [number, number][] = [
  [24, 0.6],
  [23, 0.09],
  [22, 0.11],
  [21, 0.05],
  [20, 0.05],
  [19, 0.03],
  [18, 0.02],
  [17, 0.01],
  [16, 0.025],
  [-1, 0.015], // /8../15
];

function randomLength(r: () => number): number {
  let x = r();
  for (const [len, share] of LENGTHS) {
    if (x < share) return len === -1 ? 8 + Math.floor(r() * 8) : len;
    x -= share;
  }
  return 24;
}

/** Unicast-looking IPv4 address: 1.0.0.0 .. 223.255.255.255. */
function randomV4(r: () => number): number {
  return ((1 + Math.floor(r() * 223)) * 2 ** 24 + Math.floor(r() * 2 ** 24)) >>> 0;
}

function v4Prefix(a: number, len: number, iid = 0): Prefix {
  const m = len === 0 ? 0 : (a & (-1 << (32 - len))) >>> 0;
  return {
    iid,
    family: "ipv4",
    bytes: new Uint8Array([m >>> 24, (m >>> 16) & 255, (m >>> 8) & 255, m & 255]),
    len,
  };
}

function mib(n: number): string {
  return (n / 2 ** 20).toFixed(1) + " MiB";
}

function rate(n: number, ms: number): string {
  return (n / ms * 1000 / 1e6).toFixed(2) + " M/s";
}

const hasGc = typeof (globalThis as { gc?: () => void }).gc === "function";
function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

// --- Build 1M IPv4 prefixes ---------------------------------------------------

const r = rng(42);
const prefixes: Prefix[] = [];
{
  const seen = new Set<number>();
  while (prefixes.length < PREFIXES) {
    const len = randomLength(r);
    const p = v4Prefix(randomV4(r), len);
    const key = (p.bytes[0]! * 2 ** 24 + p.bytes[1]! * 2 ** 16 + p.bytes[2]! * 256 + p.bytes[3]!) *
        64 + len;
    if (seen.has(key)) continue;
    seen.add(key);
    prefixes.push(p);
  }
}
const uniform = new Uint8Array(ADDRESSES * 4);
const inside = new Uint8Array(ADDRESSES * 4);
{
  const dv = new DataView(uniform.buffer);
  const di = new DataView(inside.buffer);
  for (let i = 0; i < ADDRESSES; i++) {
    dv.setUint32(i * 4, randomV4(r));
    const p = prefixes[Math.floor(r() * prefixes.length)]!;
    const base = new DataView(p.bytes.buffer).getUint32(0);
    const host = p.len === 32 ? 0 : Math.floor(r() * 2 ** (32 - p.len));
    di.setUint32(i * 4, (base + host) >>> 0);
  }
}

gc();
const mem0 = Deno.memoryUsage();
const table = new LpmTable();
let t0 = performance.now();
for (let i = 0; i < prefixes.length; i++) table.set(prefixes[i]!, i);
const insertMs = performance.now() - t0;
gc();
const mem1 = Deno.memoryUsage();
const m = table.memory();

/** Runs `fn` over the whole address array `rounds` times; returns ms. */
function timeLookups(addrs: Uint8Array, rounds: number): { ms: number; sink: number } {
  let sink = 0;
  const t = performance.now();
  for (let k = 0; k < rounds; k++) {
    for (let off = 0; off < addrs.length; off += 4) sink += table.lookupV4(0, addrs, off);
  }
  return { ms: performance.now() - t, sink };
}

timeLookups(uniform, 1); // warm up
timeLookups(inside, 1);
const heapBefore = Deno.memoryUsage().heapUsed;
const u = timeLookups(uniform, 5);
const ins = timeLookups(inside, 5);
const heapGrowth = Deno.memoryUsage().heapUsed - heapBefore;
let hits = 0;
for (let off = 0; off < uniform.length; off += 4) if (table.lookupV4(0, uniform, off) >= 0) hits++;

// Delete and re-insert 100,000 (churn).
t0 = performance.now();
for (let i = 0; i < 100_000; i++) table.delete(prefixes[i]!);
const deleteMs = performance.now() - t0;
t0 = performance.now();
for (let i = 0; i < 100_000; i++) table.set(prefixes[i]!, i);
const reinsertMs = performance.now() - t0;

console.log(`IPv4 LpmTable, ${PREFIXES.toLocaleString("en")} prefixes (mostly /24):`);
console.log(
  `  insert: ${(insertMs / 1000).toFixed(2)} s (${
    (insertMs * 1000 / PREFIXES).toFixed(2)
  } µs each)`,
);
console.log(
  `  lookups, uniform random addresses: ${rate(5 * ADDRESSES, u.ms)} (${
    (100 * hits / ADDRESSES).toFixed(0)
  }% hit a prefix)`,
);
console.log(`  lookups, addresses inside stored prefixes: ${rate(5 * ADDRESSES, ins.ms)}`);
console.log(`  heap growth over ${10 * ADDRESSES} lookups: ${heapGrowth} bytes`);
console.log(
  `  delete 100,000: ${(deleteMs / 100).toFixed(2)} µs each; re-insert: ${
    (reinsertMs / 100).toFixed(2)
  } µs each`,
);
console.log(
  `  memory: ${m.nodes.toLocaleString("en")} nodes; typed arrays ${mib(m.allocated)} allocated, ${
    mib(m.used)
  } used = ${(m.used / PREFIXES).toFixed(1)} bytes/prefix used, ${
    (m.allocated / PREFIXES).toFixed(1)
  } allocated`,
);
if (!hasGc) console.log("  (process figures are rough: run with --v8-flags=--expose-gc)");
console.log(
  `  process: rss +${mib(mem1.rss - mem0.rss)}, heap +${
    mib(mem1.heapUsed - mem0.heapUsed)
  }, external +${mib(mem1.external - mem0.external)}`,
);

// --- IPv6: 200,000 prefixes, /32../64 -------------------------------------------

const V6 = 200_000;
const v6table = new LpmTable();
const v6prefixes: Prefix[] = [];
for (let i = 0; i < V6; i++) {
  const b = new Uint8Array(16);
  b[0] = 0x20;
  b[1] = 0x01 + Math.floor(r() * 16);
  for (let k = 2; k < 8; k++) b[k] = Math.floor(r() * 256);
  const len = [32, 40, 44, 48, 48, 48, 56, 64][Math.floor(r() * 8)]!;
  for (let k = 0; k < 16; k++) {
    const keep = len - k * 8;
    if (keep < 8) b[k] = keep <= 0 ? 0 : b[k]! & (0xff << (8 - keep));
  }
  v6prefixes.push({ iid: 0, family: "ipv6", bytes: b, len });
}
t0 = performance.now();
for (let i = 0; i < V6; i++) v6table.set(v6prefixes[i]!, i);
const v6insertMs = performance.now() - t0;
const v6addrs = new Uint8Array(ADDRESSES / 4 * 16);
for (let i = 0; i < ADDRESSES / 4; i++) {
  const p = v6prefixes[Math.floor(r() * V6)]!;
  v6addrs.set(p.bytes, i * 16);
  for (let k = p.len >> 3; k < 16; k++) v6addrs[i * 16 + k] = Math.floor(r() * 256);
}
let v6sink = 0;
for (let off = 0; off < v6addrs.length; off += 16) v6sink += v6table.lookupV6(0, v6addrs, off);
t0 = performance.now();
for (let k = 0; k < 5; k++) {
  for (let off = 0; off < v6addrs.length; off += 16) v6sink += v6table.lookupV6(0, v6addrs, off);
}
const v6ms = performance.now() - t0;
const m6 = v6table.memory();
console.log(`IPv6 LpmTable, ${V6.toLocaleString("en")} prefixes (/32../64):`);
console.log(
  `  insert ${(v6insertMs * 1000 / V6).toFixed(2)} µs each; lookups inside prefixes: ${
    rate(5 * ADDRESSES / 4, v6ms)
  }; ${(m6.used / V6).toFixed(1)} bytes/prefix used`,
);

// --- MapCache: the per-packet path ------------------------------------------------

const MC = 1_000_000;
gc();
const memMc0 = Deno.memoryUsage();
const cache = new MapCache();
t0 = performance.now();
for (let i = 0; i < MC; i++) {
  const two = i % 4 === 0;
  cache.set(prefixes[i]!, {
    kind: "positive",
    expiresAt: 1e12 + i,
    locators: two
      ? [
        { address: `192.0.2.${i & 127}`, priority: 1, weight: 50 },
        { address: `198.51.100.${i & 127}`, priority: 1, weight: 50 },
      ]
      : [{ address: `203.0.113.${i & 255}`, priority: 1, weight: 100 }],
  });
}
const mcInsertMs = performance.now() - t0;
gc();
const memMc1 = Deno.memoryUsage();
// Packets: IPv4/UDP headers whose destinations lie inside stored prefixes.
const PKTS = 1 << 18;
const pkts = new Uint8Array(PKTS * 28);
for (let i = 0; i < PKTS; i++) {
  const o = i * 28;
  pkts[o] = 0x45;
  pkts[o + 9] = 17;
  pkts.set(inside.subarray(i * 4 + 4, i * 4 + 8), o + 12);
  pkts.set(inside.subarray(i * 4, i * 4 + 4), o + 16);
  pkts[o + 20] = i & 255;
  pkts[o + 21] = i >> 8;
  pkts[o + 23] = 53;
}
function packetPath(rounds: number): number {
  let sink = 0;
  for (let k = 0; k < rounds; k++) {
    for (let o = 0; o < pkts.length; o += 28) {
      const e = cache.lookupV4(0, pkts, o + 16);
      if (e === undefined) continue;
      sink += selectLocator(e, flowHash(pkts, o, 28));
    }
  }
  return sink;
}
packetPath(4);
t0 = performance.now();
packetPath(10);
const pathMs = performance.now() - t0;
console.log(`MapCache, ${MC.toLocaleString("en")} entries (1 or 2 locators):`);
console.log(
  `  set: ${(mcInsertMs * 1000 / MC).toFixed(2)} µs each; heap +${
    mib(memMc1.heapUsed - memMc0.heapUsed)
  } (${((memMc1.heapUsed - memMc0.heapUsed) / MC).toFixed(0)} bytes/entry of JS objects)`,
);
console.log(
  `  per packet (flowHash + lookupV4 + selectLocator): ${rate(10 * PKTS, pathMs)}`,
);

// The same path with a realistic map-cache size: 10,000 entries.
const small = new MapCache();
const smallPkts = new Uint8Array(PKTS * 28);
for (let i = 0; i < 10_000; i++) {
  small.set(prefixes[i]!, {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: `192.0.2.${i & 127}`, priority: 1, weight: 50 },
      { address: `198.51.100.${i & 127}`, priority: 1, weight: 50 },
    ],
  });
}
for (let i = 0; i < PKTS; i++) {
  const o = i * 28;
  smallPkts.set(pkts.subarray(o, o + 28), o);
  const p = prefixes[i % 10_000]!;
  smallPkts.set(p.bytes, o + 16);
  smallPkts[o + 19] = i & 255;
}
function smallPath(rounds: number): number {
  let sink = 0;
  for (let k = 0; k < rounds; k++) {
    for (let o = 0; o < smallPkts.length; o += 28) {
      const e = small.lookupV4(0, smallPkts, o + 16);
      if (e === undefined) continue;
      sink += selectLocator(e, flowHash(smallPkts, o, 28));
    }
  }
  return sink;
}
smallPath(4);
t0 = performance.now();
const smallSink = smallPath(10);
console.log(
  `MapCache, 10,000 entries (2 locators): per packet ${rate(10 * PKTS, performance.now() - t0)}`,
);
console.log(`  (sinks ${u.sink + ins.sink + v6sink + smallSink})`);

// --- deno bench ---------------------------------------------------------------

// Each iteration takes the next batch of the full address arrays, so the
// working set is the whole table, as with real traffic.
const BATCH = 1 << 16;
let cur4 = 0;
let cur6 = 0;
let curPkt = 0;
Deno.bench(`lookupV4, ${BATCH} uniform random addresses, 1M prefixes`, () => {
  let sink = 0;
  const start = cur4;
  cur4 = (cur4 + BATCH * 4) % uniform.length;
  for (let off = start; off < start + BATCH * 4; off += 4) sink += table.lookupV4(0, uniform, off);
  if (sink === 0.5) console.log(sink);
});
Deno.bench(`lookupV4, ${BATCH} addresses inside stored prefixes, 1M prefixes`, () => {
  let sink = 0;
  const start = cur4;
  cur4 = (cur4 + BATCH * 4) % inside.length;
  for (let off = start; off < start + BATCH * 4; off += 4) sink += table.lookupV4(0, inside, off);
  if (sink === 0.5) console.log(sink);
});
Deno.bench(`lookupV6, ${BATCH} addresses inside stored prefixes, 200k prefixes`, () => {
  let sink = 0;
  const start = cur6;
  cur6 = (cur6 + BATCH * 16) % v6addrs.length;
  for (let off = start; off < start + BATCH * 16; off += 16) {
    sink += v6table.lookupV6(0, v6addrs, off);
  }
  if (sink === 0.5) console.log(sink);
});
Deno.bench(`flowHash + MapCache.lookupV4 + selectLocator, ${BATCH} packets, 1M entries`, () => {
  let sink = 0;
  for (let o = curPkt; o < curPkt + BATCH * 28; o += 28) {
    const e = cache.lookupV4(0, pkts, o + 16);
    if (e !== undefined) sink += selectLocator(e, flowHash(pkts, o, 28));
  }
  curPkt = (curPkt + BATCH * 28) % pkts.length;
  if (sink === 0.5) console.log(sink);
});
