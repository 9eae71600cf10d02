import assert from "node:assert/strict";
import {
  formatPrefix,
  maskBytes,
  parsePrefix,
  type Prefix,
  prefixContains,
  prefixEid,
  prefixOf,
  PrefixTable,
} from "./prefix.ts";

/** Small seeded PRNG (mulberry32). */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  int(n: number): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 4294967296 * n) | 0;
  }
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

function p(text: string, iid = 0): Prefix {
  const x = parsePrefix(text, iid);
  if (x === undefined) throw new TypeError(text);
  return x;
}

Deno.test("PrefixTable.lookup() returns the most specific covering entry", () => {
  const t = new PrefixTable<string>();
  t.set(p("10.0.0.0/8"), "a");
  t.set(p("10.1.0.0/16"), "b");
  t.set(p("10.1.1.0/24"), "c");
  assert.equal(t.lookup(p("10.1.1.7"))?.value, "c");
  assert.equal(t.lookup(p("10.1.2.7"))?.value, "b");
  assert.equal(t.lookup(p("10.2.2.7"))?.value, "a");
  assert.equal(t.lookup(p("11.0.0.1")), undefined);
  assert.equal(formatPrefix(t.lookup(p("10.1.2.7"))!.prefix), "10.1.0.0/16");
  assert.equal(t.covering(p("10.1.1.7"))?.value, "a");
  assert.equal(t.size, 3);
});

Deno.test("PrefixTable keeps instance ids and families apart", () => {
  const t = new PrefixTable<number>();
  t.set(p("10.0.0.0/24", 1), 1);
  t.set(p("10.0.0.0/24", 2), 2);
  t.set(p("2001:db8::/32"), 6);
  assert.equal(t.lookup(p("10.0.0.5", 1))?.value, 1);
  assert.equal(t.lookup(p("10.0.0.5", 2))?.value, 2);
  assert.equal(t.lookup(p("10.0.0.5")), undefined);
  assert.equal(t.lookup(p("2001:db8::1"))?.value, 6);
  assert.equal(formatPrefix(p("10.0.0.0/24", 2)), "[2]10.0.0.0/24");
});

Deno.test("PrefixTable.delete() removes exactly one entry and keeps the others reachable", () => {
  const t = new PrefixTable<string>();
  for (const x of ["10.0.0.0/8", "10.1.0.0/16", "10.1.1.0/24", "10.128.0.0/9"]) t.set(p(x), x);
  assert.equal(t.delete(p("10.1.0.0/16")), true);
  assert.equal(t.delete(p("10.1.0.0/16")), false);
  assert.equal(t.lookup(p("10.1.2.3"))?.value, "10.0.0.0/8");
  assert.equal(t.lookup(p("10.1.1.3"))?.value, "10.1.1.0/24");
  assert.equal(t.lookup(p("10.200.1.3"))?.value, "10.128.0.0/9");
  assert.equal(t.size, 3);
});

Deno.test("PrefixTable.hole() is the least specific prefix around an address that overlaps nothing", () => {
  const t = new PrefixTable<string>();
  t.set(p("10.1.0.0/16"), "site");
  // 10.2.3.4 shares 14 bits with 10.1.0.0 (00001010.000000|01 vs |10).
  assert.equal(formatPrefix(t.hole(p("10.2.3.4"))!), "10.2.0.0/15");
  // 192.0.2.1 differs at the first bit: the hole is 128.0.0.0/1.
  assert.equal(formatPrefix(t.hole(p("192.0.2.1"))!), "128.0.0.0/1");
  assert.equal(t.hole(p("10.1.2.3")), undefined);
  // An empty table: the whole space.
  assert.equal(formatPrefix(new PrefixTable().hole(p("10.0.0.1"))!), "0.0.0.0/0");
});

Deno.test("prefixOf() unwraps an Instance-ID LCAF and clears host bits", () => {
  const x = prefixOf({
    kind: "iid",
    iid: 9,
    iidMaskLen: 0,
    address: { kind: "ipv4", ip: "10.1.1.77" },
  }, 24)!;
  assert.equal(formatPrefix(x), "[9]10.1.1.0/24");
  assert.deepEqual(prefixEid(x), {
    kind: "iid",
    iid: 9,
    iidMaskLen: 32,
    address: { kind: "ipv4", ip: "10.1.1.0" },
  });
  assert.equal(prefixOf({ kind: "ipv4", ip: "10.0.0.0" }, 33), undefined);
  assert.equal(prefixOf({ kind: "none" }, 0), undefined);
});

// Differential test against a naive list, in the spirit of wireguard-go's
// allowedips_rand_test.go.
Deno.test("PrefixTable agrees with a naive table on 6,000 random prefixes and 10,000 lookups", () => {
  const rng = new Rng(20261125);
  for (const family of ["ipv4", "ipv6"] as const) {
    const size = family === "ipv4" ? 4 : 16;
    const t = new PrefixTable<number>();
    const naive = new Map<string, { prefix: Prefix; value: number }>();
    // Clustered prefixes so they nest and share bits.
    const base = rng.bytes(size);
    const randomPrefix = (): Prefix => {
      const b = base.slice();
      const flip = rng.int(size);
      for (let i = flip; i < size; i++) b[i] = rng.int(256);
      const len = rng.int(size * 8 + 1);
      return { iid: rng.int(2), family, bytes: maskBytes(b, len), len };
    };
    for (let i = 0; i < 3_000; i++) {
      const x = randomPrefix();
      const key = `${x.iid}/${formatPrefix(x)}`;
      if (rng.int(5) === 0 && naive.size > 0) {
        assert.equal(t.delete(x), naive.delete(key));
      } else {
        t.set(x, i);
        naive.set(key, { prefix: x, value: i });
      }
    }
    assert.equal(t.size, naive.size);
    const entries = [...naive.values()];
    for (let i = 0; i < 5_000; i++) {
      const q = randomPrefix();
      let best: { prefix: Prefix; value: number } | undefined;
      let least: { prefix: Prefix; value: number } | undefined;
      const naiveWithin: number[] = [];
      let overlaps = false;
      for (const e of entries) {
        if (prefixContains(q, e.prefix)) {
          naiveWithin.push(e.value);
          overlaps = true;
        }
        if (!prefixContains(e.prefix, q)) continue;
        overlaps = true;
        if (best === undefined || e.prefix.len > best.prefix.len) best = e;
        if (least === undefined || e.prefix.len < least.prefix.len) least = e;
      }
      assert.equal(t.lookup(q)?.value, best?.value, `lookup ${formatPrefix(q)}`);
      assert.equal(t.covering(q)?.value, least?.value, `covering ${formatPrefix(q)}`);
      const within = [...t.within(q)].map((e) => e.value).sort((a, b) => a - b);
      assert.deepEqual(within, naiveWithin.sort((a, b) => a - b), `within ${formatPrefix(q)}`);
      const hole = t.hole(q);
      if (overlaps) {
        assert.equal(hole, undefined);
      } else {
        assert.ok(hole !== undefined && prefixContains(hole, q), `hole for ${formatPrefix(q)}`);
        const inHole = entries.some((e) =>
          prefixContains(hole, e.prefix) || prefixContains(e.prefix, hole)
        );
        assert.equal(inHole, false, `hole ${formatPrefix(hole)} overlaps an entry`);
        if (hole.len > 0) {
          // One bit shorter would overlap something: the hole is least specific.
          const wider = { ...hole, bytes: maskBytes(hole.bytes, hole.len - 1), len: hole.len - 1 };
          assert.ok(
            entries.some((e) => prefixContains(wider, e.prefix) || prefixContains(e.prefix, wider)),
            `hole ${formatPrefix(hole)} is not the least specific`,
          );
        }
      }
    }
  }
});
