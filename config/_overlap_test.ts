import { deepStrictEqual } from "node:assert/strict";
import { checkOverlaps } from "./_overlap.ts";
import { Ctx } from "./_read.ts";
import { LineLocator } from "./_locate.ts";
import { prefixCovers } from "./_ip.ts";
import { type DatabaseMapping, formatPrefix, type Instance } from "./schema.ts";

/** The rule as it was first written: every pair compared. */
function naive(mappings: readonly DatabaseMapping[], instances: readonly Instance[]): string[] {
  const separate = new Set(instances.map((i) => i.iid));
  const shared = mappings.map((m, index) => ({ m, index })).filter(({ m }) => !separate.has(m.iid));
  const out: string[] = [];
  for (let a = 0; a < shared.length; a++) {
    for (let b = a + 1; b < shared.length; b++) {
      const x = shared[a]!;
      const y = shared[b]!;
      if (x.m.iid === y.m.iid) continue;
      if (
        !prefixCovers(x.m.eidPrefix, y.m.eidPrefix) && !prefixCovers(y.m.eidPrefix, x.m.eidPrefix)
      ) {
        continue;
      }
      out.push(`${y.index} ${formatPrefix(x.m.eidPrefix)} ${x.m.iid} ${x.index}`);
    }
  }
  return out.sort();
}

function fast(mappings: readonly DatabaseMapping[], instances: readonly Instance[]): string[] {
  const ctx = new Ctx("oor.toml", new LineLocator(""), () => undefined);
  checkOverlaps(ctx, mappings, instances);
  return ctx.errors.map((e) => {
    const m = /^database-mapping\[(\d+)\]\.eid-prefix$/.exec(e.keyPath)!;
    const r = /^overlaps (\S+) of iid (\d+) \(database-mapping\[(\d+)\]\)/.exec(e.reason)!;
    return `${m[1]} ${r[1]} ${r[2]} ${r[3]}`;
  }).sort();
}

/** A small deterministic generator, so a failure can be replayed. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

function mapping(r: () => number): DatabaseMapping {
  const v6 = r() < 0.3;
  const length = v6 ? 16 + Math.floor(r() * 8) : 8 + Math.floor(r() * 8);
  const value = Math.floor(r() * 4) << (v6 ? 6 : 14); // few distinct networks: many overlaps
  const bits = v6 ? 32 : 24;
  const masked = length >= bits ? value : value & ~((1 << (bits - (length - (v6 ? 0 : 8)))) - 1);
  const address = v6
    ? `fd00:${(masked >>> 16).toString(16)}::`.replace("fd00:0::", "fd00::")
    : `10.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.0`;
  return {
    eidPrefix: { family: v6 ? 6 : 4, address, length: v6 ? length : length },
    iid: Math.floor(r() * 3),
    ttl: 10,
    rlocAddresses: [],
    rlocIfaces: [],
  };
}

Deno.test("checkOverlaps() finds the same pairs as comparing every pair", () => {
  const r = rng(7);
  let pairs = 0;
  for (let round = 0; round < 300; round++) {
    const ms = Array.from({ length: 1 + Math.floor(r() * 12) }, () => mapping(r));
    const instances: Instance[] = r() < 0.3
      ? [{ iid: Math.floor(r() * 3), tunName: "t", siteInterfaces: [] }]
      : [];
    const want = naive(ms, instances);
    pairs += want.length;
    deepStrictEqual(fast(ms, instances), want, JSON.stringify(ms));
  }
  if (pairs < 100) throw new Error(`only ${pairs} overlaps: the cases test too little`);
});

Deno.test("checkOverlaps() reports at the later mapping, ordered by mapping then by the earlier one", () => {
  const m = (address: string, length: number, iid: number): DatabaseMapping => ({
    eidPrefix: { family: 4, address, length },
    iid,
    ttl: 10,
    rlocAddresses: [],
    rlocIfaces: [],
  });
  const ctx = new Ctx("oor.toml", new LineLocator(""), () => undefined);
  checkOverlaps(ctx, [m("10.1.0.0", 24, 0), m("10.0.0.0", 8, 1), m("10.1.0.0", 24, 2)], []);
  deepStrictEqual(ctx.errors.map((e) => `${e.keyPath}: ${e.reason.split(";")[0]}`), [
    "database-mapping[1].eid-prefix: overlaps 10.1.0.0/24 of iid 0 (database-mapping[0])",
    "database-mapping[2].eid-prefix: overlaps 10.1.0.0/24 of iid 0 (database-mapping[0])",
    "database-mapping[2].eid-prefix: overlaps 10.0.0.0/8 of iid 1 (database-mapping[1])",
  ]);
});
