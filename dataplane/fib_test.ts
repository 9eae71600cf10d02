import assert from "node:assert/strict";
import { type Family, parsePrefix, type Prefix } from "../core/prefix.ts";
import {
  entryInit,
  flowHash,
  LpmTable,
  MapCache,
  type MapCacheEntry,
  selectLocator,
} from "./fib.ts";

/** Small seeded PRNG (mulberry32). */
class Rng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0;
  }
  next(): number {
    let t = (this.#s = (this.#s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return (this.next() * n) | 0;
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

/** Address bytes of `text`, written at `off` in a buffer of `size` bytes. */
function addr(text: string, off = 0, size = off + 16): Uint8Array {
  const x = p(text);
  const b = new Uint8Array(size);
  b.set(x.bytes, off);
  return b;
}

/** Copy of `b` with every bit from `len` on set to random values. */
function fillHost(rng: Rng, b: Uint8Array, len: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    const r = rng.int(256);
    out[i] = keep <= 0 ? r : (out[i]! & (0xff << (8 - keep))) | (r & (0xff >> keep));
  }
  return out;
}

function masked(b: Uint8Array, len: number): Uint8Array {
  const out = b.slice();
  for (let i = 0; i < out.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    out[i] = keep <= 0 ? 0 : out[i]! & (0xff << (8 - keep));
  }
  return out;
}

interface NaiveItem {
  len: number;
  words: Uint32Array;
  masks: Uint32Array;
  id: number;
  bytes: Uint8Array;
}

/** The oracle: per iid, a plain list scanned for the longest match. */
class Naive {
  readonly #lists = new Map<number, NaiveItem[]>();
  readonly #index = new Map<string, NaiveItem>();
  readonly #flat = new Map<
    number,
    { lens: Int32Array; ids: Int32Array; words: Uint32Array; masks: Uint32Array }
  >();
  readonly #nwords: number;
  constructor(bytes: number) {
    this.#nwords = bytes / 4;
  }
  #words(b: Uint8Array): Uint32Array {
    const w = new Uint32Array(this.#nwords);
    for (let i = 0; i < this.#nwords; i++) {
      w[i] = ((b[i * 4]! << 24) | (b[i * 4 + 1]! << 16) | (b[i * 4 + 2]! << 8) | b[i * 4 + 3]!) >>>
        0;
    }
    return w;
  }
  set(iid: number, b: Uint8Array, len: number, id: number): void {
    const k = `${iid}/${masked(b, len).join(".")}/${len}`;
    const item = this.#index.get(k);
    this.#flat.delete(iid);
    if (item) {
      item.id = id;
      return;
    }
    const list = this.#lists.get(iid) ?? [];
    this.#lists.set(iid, list);
    const masks = new Uint32Array(this.#nwords);
    for (let i = 0; i < this.#nwords; i++) {
      const keep = len - i * 32;
      masks[i] = keep >= 32 ? 0xffffffff : keep <= 0 ? 0 : (0xffffffff << (32 - keep)) >>> 0;
    }
    const x = { len, words: this.#words(masked(b, len)), masks, id, bytes: masked(b, len) };
    list.push(x);
    this.#index.set(k, x);
  }
  delete(iid: number, b: Uint8Array, len: number): void {
    const k = `${iid}/${masked(b, len).join(".")}/${len}`;
    const x = this.#index.get(k);
    if (x === undefined) return;
    this.#flat.delete(iid);
    this.#index.delete(k);
    const list = this.#lists.get(iid)!;
    const i = list.indexOf(x);
    list[i] = list[list.length - 1]!;
    list.pop();
  }
  /** Longest match by scanning every prefix of `iid` (flattened into typed arrays once per change). */
  lookup(iid: number, b: Uint8Array): number {
    const list = this.#lists.get(iid) ?? [];
    let flat = this.#flat.get(iid);
    if (flat === undefined) {
      const nw = this.#nwords;
      flat = {
        lens: Int32Array.from(list, (x) => x.len),
        ids: Int32Array.from(list, (x) => x.id),
        words: new Uint32Array(list.length * nw),
        masks: new Uint32Array(list.length * nw),
      };
      for (let i = 0; i < list.length; i++) {
        flat.words.set(list[i]!.words, i * nw);
        flat.masks.set(list[i]!.masks, i * nw);
      }
      this.#flat.set(iid, flat);
    }
    const a = this.#words(b);
    const nw = this.#nwords;
    const { lens, ids, words, masks } = flat;
    let best = -1;
    let bestLen = -1;
    for (let j = 0; j < lens.length; j++) {
      if (lens[j]! <= bestLen) continue;
      let ok = true;
      for (let i = 0; i < nw; i++) {
        if (((a[i]! & masks[j * nw + i]!) >>> 0) !== words[j * nw + i]) {
          ok = false;
          break;
        }
      }
      if (ok) {
        best = ids[j]!;
        bestLen = lens[j]!;
      }
    }
    return best;
  }
  items(): [number, NaiveItem][] {
    const out: [number, NaiveItem][] = [];
    for (const [iid, list] of this.#lists) for (const x of list) out.push([iid, x]);
    return out;
  }
  get size(): number {
    let n = 0;
    for (const l of this.#lists.values()) n += l.length;
    return n;
  }
}

/**
 * Differential run: `count` clustered random prefixes over `iids`, checked
 * with `lookups` lookups after inserting, after deleting 40%, and after
 * re-inserting and replacing some.
 */
function differential(family: Family, seed: number, count: number, lookups: number): void {
  const bytes = family === "ipv4" ? 4 : 16;
  const bits = bytes * 8;
  const rng = new Rng(seed);
  const lpm = new LpmTable();
  const naive = new Naive(bytes);
  const iids = [0, 7, 0xffffff];
  const seen = new Set<string>();
  const made: { iid: number; b: Uint8Array; len: number }[] = [];
  let nextId = 0;
  // A few cluster seeds so that prefixes nest and share trie nodes.
  const seeds = Array.from({ length: 6 }, () => rng.bytes(bytes));
  const add = () => {
    for (;;) {
      const iid = iids[rng.int(iids.length)]!;
      let b: Uint8Array;
      let len: number;
      const r = rng.next();
      if (r < 0.5 && made.length > 0) {
        // Nest under an existing prefix.
        const parent = made[rng.int(made.length)]!;
        len = Math.min(bits, parent.len + 1 + rng.int(family === "ipv4" ? 10 : 24));
        b = masked(fillHost(rng, parent.b, parent.len), len);
        if (rng.next() < 0.3) {
          made.push({ iid: parent.iid, b, len });
          return add1(parent.iid, b, len);
        }
      } else if (r < 0.9) {
        len = rng.int(bits + 1);
        b = masked(fillHost(rng, seeds[rng.int(seeds.length)]!, rng.int(bits / 2)), len);
      } else {
        len = rng.int(bits + 1);
        b = masked(rng.bytes(bytes), len);
      }
      if (add1(iid, b, len)) {
        made.push({ iid, b, len });
        return true;
      }
    }
  };
  const add1 = (iid: number, b: Uint8Array, len: number): boolean => {
    const k = `${iid}/${b.join(".")}/${len}`;
    if (seen.has(k)) return false;
    seen.add(k);
    const id = nextId++;
    const pr: Prefix = { iid, family, bytes: b, len };
    assert.equal(lpm.set(pr, id), -1);
    naive.set(iid, b, len, id);
    return true;
  };
  while (seen.size < count) add();
  assert.equal(lpm.size, naive.size);

  let items = naive.items();
  const check = (stage: string) => {
    for (let i = 0; i < lookups; i++) {
      let iid = iids[rng.int(iids.length)]!;
      let a: Uint8Array;
      const r = rng.next();
      if (r < 0.6 && items.length > 0) {
        // Inside a stored prefix (usually in its own iid).
        const [xiid, x] = items[rng.int(items.length)]!;
        if (rng.next() < 0.8) iid = xiid;
        a = fillHost(rng, x.bytes, x.len);
      } else if (r < 0.8) {
        a = fillHost(rng, seeds[rng.int(seeds.length)]!, rng.int(bits));
      } else {
        a = rng.bytes(bytes);
      }
      const off = rng.int(4);
      const buf = new Uint8Array(off + bytes + 3).fill(0xa5);
      buf.set(a, off);
      const got = family === "ipv4" ? lpm.lookupV4(iid, buf, off) : lpm.lookupV6(iid, buf, off);
      const want = naive.lookup(iid, a);
      if (got !== want) {
        assert.fail(`${stage}: [${iid}] ${a.join(".")}: got ${got}, want ${want}`);
      }
      assert.equal(lpm.lookup(iid, family, buf, off), want);
    }
    // Exact get() for every present prefix.
    for (const [iid, x] of naive.items()) {
      assert.equal(lpm.get({ iid, family, bytes: x.bytes, len: x.len }), x.id, stage);
    }
    assert.equal(lpm.size, naive.size, stage);
  };
  check("after inserts");

  // Delete 40%.
  for (const [iid, x] of items) {
    if (rng.next() < 0.4) {
      const pr: Prefix = { iid, family, bytes: x.bytes, len: x.len };
      assert.equal(lpm.delete(pr), x.id);
      assert.equal(lpm.delete(pr), -1);
      assert.equal(lpm.get(pr), -1);
      naive.delete(iid, x.bytes, x.len);
    }
  }
  items = naive.items();
  check("after deletes");

  // Replace ids of some, add new ones.
  for (const [iid, x] of items) {
    if (rng.next() < 0.2) {
      const id = nextId++;
      assert.equal(lpm.set({ iid, family, bytes: x.bytes, len: x.len }, id), x.id);
      naive.set(iid, x.bytes, x.len, id);
    }
  }
  for (let i = 0; i < count / 5; i++) add();
  items = naive.items();
  check("after replacing and re-adding");

  // Delete everything: the table is empty and answers -1.
  for (const [iid, x] of items) lpm.delete({ iid, family, bytes: x.bytes, len: x.len });
  assert.equal(lpm.size, 0);
  const z = new Uint8Array(16);
  for (const iid of iids) assert.equal(lpm.lookup(iid, family, z, 0), -1);
  assert.equal(lpm.memory().nodes, 0);
}

Deno.test("LpmTable matches a naive table on 12,000 clustered IPv4 prefixes with deletes", () => {
  differential("ipv4", 1, 12_000, 12_000);
});

Deno.test("LpmTable matches a naive table on 10,000 clustered IPv6 prefixes with deletes", () => {
  differential("ipv6", 2, 10_000, 10_000);
});

Deno.test("LpmTable stays correct through heavy churn (pool reuse and compaction)", () => {
  const rng = new Rng(3);
  const lpm = new LpmTable();
  const naive = new Naive(4);
  const live: { b: Uint8Array; len: number }[] = [];
  const base = rng.bytes(4);
  for (let i = 0; i < 60_000; i++) {
    if (live.length > 0 && (live.length > 1500 || rng.next() < 0.45)) {
      const j = rng.int(live.length);
      const x = live[j]!;
      live[j] = live[live.length - 1]!;
      live.pop();
      lpm.delete({ iid: 1, family: "ipv4", bytes: x.b, len: x.len });
      naive.delete(1, x.b, x.len);
    } else {
      const len = 8 + rng.int(25);
      const b = masked(fillHost(rng, base, 4 + rng.int(12)), len);
      if (lpm.get({ iid: 1, family: "ipv4", bytes: b, len }) !== -1) continue;
      lpm.set({ iid: 1, family: "ipv4", bytes: b, len }, i);
      naive.set(1, b, len, i);
      live.push({ b, len });
    }
  }
  assert.equal(lpm.size, live.length);
  for (let i = 0; i < 5000; i++) {
    const x = live[rng.int(live.length)]!;
    const a = i % 2 === 0 ? fillHost(rng, x.b, x.len) : fillHost(rng, base, rng.int(16));
    assert.equal(lpm.lookupV4(1, a, 0), naive.lookup(1, a));
  }
  const m = lpm.memory();
  assert.ok(m.used <= m.allocated);
});

Deno.test("LpmTable.delete() restores the covering prefix in the expanded slots", () => {
  const t = new LpmTable();
  t.set(p("10.0.0.0/8"), 1);
  t.set(p("10.1.0.0/16"), 2);
  t.set(p("10.1.2.0/23"), 3);
  t.set(p("10.1.2.128/25"), 4);
  const a = addr("10.1.2.5");
  const b = addr("10.1.3.200");
  const c = addr("10.1.2.130");
  assert.equal(t.lookupV4(0, a, 0), 3);
  assert.equal(t.lookupV4(0, b, 0), 3);
  assert.equal(t.lookupV4(0, c, 0), 4);
  assert.equal(t.delete(p("10.1.2.0/23")), 3);
  assert.equal(t.lookupV4(0, a, 0), 2);
  assert.equal(t.lookupV4(0, b, 0), 2);
  assert.equal(t.lookupV4(0, c, 0), 4);
  assert.equal(t.delete(p("10.1.0.0/16")), 2);
  assert.equal(t.lookupV4(0, a, 0), 1);
  assert.equal(t.lookupV4(0, c, 0), 4);
  // A shorter prefix added later is pushed below the existing longer ones.
  t.set(p("10.1.0.0/15"), 5);
  assert.equal(t.lookupV4(0, a, 0), 5);
  assert.equal(t.lookupV4(0, c, 0), 4);
  assert.equal(t.lookupV4(0, addr("10.2.0.1"), 0), 1);
  assert.equal(t.delete(p("10.1.2.128/25")), 4);
  assert.equal(t.lookupV4(0, c, 0), 5);
  assert.equal(t.lookupV4(0, addr("11.0.0.0"), 0), -1);
});

Deno.test("LpmTable handles /0 and full-length prefixes, per instance id", () => {
  const t = new LpmTable();
  t.set(p("0.0.0.0/0"), 1);
  t.set(p("192.0.2.1/32"), 2);
  t.set(p("::/0", 5), 3);
  t.set(p("2001:db8::1/128", 5), 4);
  assert.equal(t.lookupV4(0, addr("192.0.2.1"), 0), 2);
  assert.equal(t.lookupV4(0, addr("192.0.2.0"), 0), 1);
  assert.equal(t.lookupV4(0, addr("255.255.255.255"), 0), 1);
  assert.equal(t.lookupV4(5, addr("192.0.2.1"), 0), -1);
  assert.equal(t.lookupV6(5, addr("2001:db8::1"), 0), 4);
  assert.equal(t.lookupV6(5, addr("2001:db8::2"), 0), 3);
  assert.equal(t.lookupV6(0, addr("2001:db8::1"), 0), -1);
  assert.equal(t.get(p("0.0.0.0/0")), 1);
  assert.equal(t.get(p("0.0.0.0/1")), -1);
  // Host bits in the given prefix bytes are ignored.
  t.set({ iid: 0, family: "ipv4", bytes: new Uint8Array([10, 255, 255, 255]), len: 8 }, 9);
  assert.equal(t.get(p("10.0.0.0/8")), 9);
  assert.equal(t.lookupV4(0, addr("10.9.9.9"), 0), 9);
  assert.throws(() => t.set({ ...p("10.0.0.0/8"), len: 33 }, 1), RangeError);
  assert.throws(() => t.set(p("10.0.0.0/8"), -1), RangeError);
});

Deno.test("LpmTable matches MAC addresses exactly, per instance id", () => {
  const t = new LpmTable();
  const rng = new Rng(4);
  const want = new Map<string, number>();
  const macs: Uint8Array[] = [];
  for (let i = 0; i < 5000; i++) {
    const m = rng.bytes(6);
    if (i % 3 === 0) m.set([0x02, 0, 0, 0], 0); // many share a prefix
    const iid = i % 2;
    const k = `${iid}/${m.join(":")}`;
    if (want.has(k)) continue;
    want.set(k, i);
    macs.push(m);
    t.set({ iid, family: "mac", bytes: m, len: 48 }, i);
  }
  // Delete half (exercises the backward shift of linear probing).
  let n = 0;
  for (const [k, id] of want) {
    if (n++ % 2 === 0) continue;
    const [iid, m] = k.split("/");
    const bytes = new Uint8Array(m!.split(":").map(Number));
    assert.equal(t.delete({ iid: Number(iid), family: "mac", bytes, len: 48 }), id);
    want.delete(k);
  }
  assert.equal(t.size, want.size);
  const buf = new Uint8Array(8);
  for (const m of macs) {
    for (const iid of [0, 1, 2]) {
      buf.set(m, 2);
      const got = t.lookupMac(iid, buf, 2);
      assert.equal(got, want.get(`${iid}/${m.join(":")}`) ?? -1);
      assert.equal(t.lookup(iid, "mac", buf, 2), got);
    }
  }
  assert.throws(() => t.set(p("02:00:00:00:00:00/47"), 1), RangeError);
});

// ---------------------------------------------------------------------------
// MapCache
// ---------------------------------------------------------------------------

function udp4(src: string, dst: string, sport: number, dport: number, extra = 0): Uint8Array {
  const b = new Uint8Array(28 + extra);
  b[0] = 0x45;
  b[8] = 64;
  b[9] = 17;
  b.set(p(src).bytes, 12);
  b.set(p(dst).bytes, 16);
  b[20] = sport >> 8;
  b[21] = sport & 255;
  b[22] = dport >> 8;
  b[23] = dport & 255;
  return b;
}

function udp6(src: string, dst: string, sport: number, dport: number): Uint8Array {
  const b = new Uint8Array(48);
  b[0] = 0x60;
  b[6] = 17;
  b[7] = 64;
  b.set(p(src).bytes, 8);
  b.set(p(dst).bytes, 24);
  b[40] = sport >> 8;
  b[41] = sport & 255;
  b[42] = dport >> 8;
  b[43] = dport & 255;
  return b;
}

function share(e: MapCacheEntry, flows: number, seed: number): number[] {
  const rng = new Rng(seed);
  const counts = new Array<number>(e.locators.length).fill(0);
  for (let i = 0; i < flows; i++) {
    const pkt = udp4(
      `10.${rng.int(256)}.${rng.int(256)}.${rng.int(256)}`,
      "192.0.2.1",
      rng.int(65536),
      53,
    );
    const k = selectLocator(e, flowHash(pkt, 0, pkt.length));
    if (k >= 0) counts[k]!++;
  }
  return counts;
}

Deno.test("MapCache.lookup() returns the most specific entry, positive or negative", () => {
  const mc = new MapCache();
  const neg = mc.set(p("10.0.0.0/8", 3), { kind: "negative", action: 1, expiresAt: 1000 });
  const pos = mc.set(p("10.1.0.0/16", 3), {
    kind: "positive",
    locators: [{ address: "192.0.2.1", priority: 1, weight: 100 }],
    expiresAt: 1000,
  });
  const v6 = mc.set(p("2001:db8::/32", 3), {
    kind: "positive",
    locators: [{ address: "2001:DB8:ffff::0001", priority: 1, weight: 100 }],
    expiresAt: 1000,
  });
  const mac = mc.set(p("02:00:00:00:00:01", 3), {
    kind: "positive",
    locators: [{ address: "192.0.2.9", priority: 1, weight: 1 }],
    static: true,
  });
  assert.equal(mc.size, 4);
  const pkt = udp4("10.9.9.9", "10.1.2.3", 1, 2);
  assert.equal(mc.lookupV4(3, pkt, 16), pos);
  assert.equal(mc.lookup(3, "ipv4", pkt, 16), pos);
  assert.equal(mc.lookupV4(3, pkt, 12), neg);
  assert.equal(neg.action, 1);
  assert.equal(neg.usable, 0);
  assert.equal(mc.lookupV4(0, pkt, 16), undefined);
  assert.equal(mc.lookupV6(3, udp6("::1", "2001:db8::5", 1, 2), 24), v6);
  assert.equal(v6.locators[0]!.address, "2001:db8:ffff::1");
  assert.deepEqual([...v6.locators[0]!.bytes.subarray(0, 4)], [0x20, 0x01, 0x0d, 0xb8]);
  assert.equal(mc.lookupMac(3, p("02:00:00:00:00:01").bytes, 0), mac);
  assert.equal(mc.lookupMac(3, p("02:00:00:00:00:02").bytes, 0), undefined);
  assert.equal(mc.get(p("10.1.0.0/16", 3)), pos);
  assert.equal(mc.byId(pos.id), pos);
  assert.equal(new Set(mc.entries()).size, 4);
  // Replacing keeps the object and id.
  const again = mc.set(p("10.1.0.0/16", 3), { kind: "negative", action: 3, expiresAt: 2000 });
  assert.equal(again, pos);
  assert.equal(pos.kind, "negative");
  assert.equal(pos.locators.length, 0);
  assert.equal(mc.size, 4);
  assert.equal(mc.delete(p("10.1.0.0/16", 3)), pos);
  assert.equal(mc.delete(p("10.1.0.0/16", 3)), undefined);
  assert.equal(mc.lookupV4(3, pkt, 16), neg);
  assert.equal(mc.size, 3);
});

Deno.test("MapCache.expire() removes expired dynamic entries and keeps static ones", () => {
  const mc = new MapCache();
  const a = mc.set(p("10.0.0.0/8"), { kind: "negative", expiresAt: 1000 });
  const b = mc.set(p("10.1.0.0/16"), { kind: "negative", expiresAt: 3000 });
  const c = mc.set(p("10.1.1.0/24"), { kind: "negative", expiresAt: 2000 });
  const s = mc.set(p("10.2.0.0/16"), {
    kind: "positive",
    static: true,
    locators: [{ address: "192.0.2.1", priority: 1, weight: 1 }],
  });
  assert.equal(s.expiresAt, Infinity);
  assert.equal(mc.nextExpiry(), 1000);
  assert.deepEqual(mc.expire(999), []);
  assert.deepEqual(mc.expire(1000), [a]);
  // A refresh moves the expiry later.
  mc.set(p("10.1.1.0/24"), { kind: "negative", expiresAt: 5000 });
  assert.equal(mc.nextExpiry(), 3000);
  assert.deepEqual(mc.expire(4000), [b]);
  assert.equal(mc.lookupV4(0, addr("10.1.1.1"), 0), c);
  assert.equal(mc.lookupV4(0, addr("10.1.2.1"), 0), undefined);
  assert.deepEqual(mc.expire(Number.MAX_SAFE_INTEGER), [c]);
  assert.equal(mc.size, 1);
  assert.equal(mc.lookupV4(0, addr("10.2.3.4"), 0), s);
  assert.equal(mc.nextExpiry(), Infinity);
  // Turning a dynamic entry static takes it off the expiry schedule.
  mc.set(p("10.3.0.0/16"), { kind: "negative", expiresAt: 10 });
  mc.set(p("10.3.0.0/16"), { kind: "negative", static: true });
  assert.deepEqual(mc.expire(100), []);
  assert.equal(mc.size, 2);
});

Deno.test("MapCache.expire() returns entries in expiry order among many", () => {
  const mc = new MapCache();
  const rng = new Rng(5);
  const times: number[] = [];
  for (let i = 0; i < 2000; i++) {
    const t = rng.int(100_000);
    times.push(t);
    mc.set({ iid: 0, family: "ipv4", bytes: new Uint8Array([10, i >> 8, i & 255, 0]), len: 24 }, {
      kind: "negative",
      expiresAt: t,
    });
  }
  for (let i = 0; i < 2000; i += 3) {
    mc.delete({ iid: 0, family: "ipv4", bytes: new Uint8Array([10, i >> 8, i & 255, 0]), len: 24 });
  }
  const left = times.filter((_, i) => i % 3 !== 0).sort((x, y) => x - y);
  const got = mc.expire(50_000).map((e) => e.expiresAt);
  assert.deepEqual(got, left.filter((t) => t <= 50_000));
  assert.equal(mc.size, left.filter((t) => t > 50_000).length);
});

Deno.test("selectLocator() uses the best priority and skips down and priority-255 locators", () => {
  const mc = new MapCache();
  const e = mc.set(p("10.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: "192.0.2.1", priority: 2, weight: 50 },
      { address: "192.0.2.2", priority: 1, weight: 50 },
      { address: "192.0.2.3", priority: 255, weight: 100 },
      { address: "192.0.2.4", priority: 1, weight: 50, up: false },
    ],
  });
  assert.deepEqual(share(e, 2000, 1), [0, 2000, 0, 0]);
  assert.ok(mc.setLocatorUp(e, 1, false));
  assert.ok(!mc.setLocatorUp(e, 1, false));
  assert.deepEqual(share(e, 2000, 1), [2000, 0, 0, 0]);
  mc.setLocatorUp(e, 0, false);
  assert.equal(e.usable, 0);
  assert.deepEqual(share(e, 500, 1), [0, 0, 0, 0]);
  assert.equal(selectLocator(e, 12345), -1);
  mc.setLocatorUp(e, 3, true);
  assert.deepEqual(share(e, 500, 1), [0, 0, 0, 500]);
  // Only priority 255 left: nothing usable.
  const only255 = mc.set(p("11.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [{ address: "192.0.2.3", priority: 255, weight: 100 }],
  });
  assert.equal(selectLocator(only255, 7), -1);
});

Deno.test("selectLocator() splits flows in proportion to weights", () => {
  const mc = new MapCache();
  const e = mc.set(p("10.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: "192.0.2.1", priority: 1, weight: 30 },
      { address: "192.0.2.2", priority: 1, weight: 20 },
      { address: "2001:db8::3", priority: 1, weight: 20 },
      { address: "192.0.2.4", priority: 1, weight: 30 },
    ],
  });
  const flows = 40_000;
  const got = share(e, flows, 2);
  const want = [0.3, 0.2, 0.2, 0.3];
  for (let i = 0; i < 4; i++) {
    assert.ok(Math.abs(got[i]! / flows - want[i]!) < 0.02, `locator ${i}: ${got[i]}/${flows}`);
  }
  // A weight of 0 among non-zero weights gets nothing; all zero splits evenly.
  const z = mc.set(p("11.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: "192.0.2.1", priority: 1, weight: 0 },
      { address: "192.0.2.2", priority: 1, weight: 10 },
    ],
  });
  assert.deepEqual(share(z, 1000, 3), [0, 1000]);
  const even = mc.set(p("12.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: "192.0.2.1", priority: 1, weight: 0 },
      { address: "192.0.2.2", priority: 1, weight: 0 },
    ],
  });
  const ev = share(even, 10_000, 4);
  assert.ok(Math.abs(ev[0]! - 5000) < 300, `${ev}`);
  // Taking one down moves its share to the other.
  mc.setLocatorUp(e, 0, false);
  const after = share(e, flows, 2);
  assert.equal(after[0], 0);
  assert.ok(Math.abs(after[3]! / flows - 30 / 70) < 0.02);
});

Deno.test("selectLocator() keeps a flow on one locator", () => {
  const mc = new MapCache();
  const e = mc.set(p("10.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [
      { address: "192.0.2.1", priority: 1, weight: 1 },
      { address: "192.0.2.2", priority: 1, weight: 1 },
      { address: "192.0.2.3", priority: 1, weight: 1 },
    ],
  });
  const seen = new Set<number>();
  for (let sport = 1000; sport < 1100; sport++) {
    const a = udp4("10.0.0.1", "10.0.0.2", sport, 53, 10);
    const b = udp4("10.0.0.1", "10.0.0.2", sport, 53, 300);
    b[8] = 3; // other TTL, length, id, payload: same flow
    b[4] = 0x12;
    b[200] = 7;
    const ka = selectLocator(e, flowHash(a, 0, a.length));
    assert.equal(selectLocator(e, flowHash(b, 0, b.length)), ka);
    assert.equal(selectLocator(e, flowHash(a, 0, a.length)), ka);
    seen.add(ka);
  }
  assert.equal(seen.size, 3); // different ports spread over all locators
});

Deno.test("flowHash() covers addresses, protocol and ports, not fragments", () => {
  const h = (b: Uint8Array) => flowHash(b, 0, b.length);
  const a = udp4("10.0.0.1", "10.0.0.2", 1000, 53);
  assert.notEqual(h(a), h(udp4("10.0.0.1", "10.0.0.2", 1001, 53)));
  assert.notEqual(h(a), h(udp4("10.0.0.1", "10.0.0.3", 1000, 53)));
  assert.notEqual(h(a), h(udp4("10.0.0.9", "10.0.0.2", 1000, 53)));
  const tcp = a.slice();
  tcp[9] = 6;
  assert.notEqual(h(a), h(tcp));
  // Fragments: ports are not used, so all fragments of a flow hash alike.
  const f1 = udp4("10.0.0.1", "10.0.0.2", 1000, 53);
  f1[6] = 0x20; // MF
  const f2 = udp4("10.0.0.1", "10.0.0.2", 7777, 9999);
  f2[7] = 0x10; // offset 16
  assert.equal(h(f1), h(f2));
  // ICMP: no ports.
  const icmp = udp4("10.0.0.1", "10.0.0.2", 1, 2);
  icmp[9] = 1;
  const icmp2 = udp4("10.0.0.1", "10.0.0.2", 3, 4);
  icmp2[9] = 1;
  assert.equal(h(icmp), h(icmp2));
  // IPv6, with and without a hop-by-hop header before UDP.
  const v6 = udp6("2001:db8::1", "2001:db8::2", 1000, 53);
  assert.notEqual(h(v6), h(udp6("2001:db8::1", "2001:db8::2", 1001, 53)));
  const hbh = new Uint8Array(56);
  hbh.set(v6.subarray(0, 40));
  hbh[6] = 0; // next header: hop-by-hop
  hbh[40] = 17; // then UDP
  hbh[41] = 0; // 8 bytes
  hbh.set(v6.subarray(40, 48), 48);
  assert.equal(h(hbh), h(v6)); // same flow: the extension header is skipped
  const hbh2 = hbh.slice();
  hbh2[49] = 0xff; // another source port
  assert.notEqual(h(hbh), h(hbh2));
  // At an offset, and results in 0..2^30-1.
  const buf = new Uint8Array(a.length + 5);
  buf.set(a, 5);
  assert.equal(flowHash(buf, 5, a.length), h(a));
  assert.ok(h(a) >= 0 && h(a) < 2 ** 30);
  // Garbage and truncation never throw.
  assert.equal(flowHash(a, 0, 19), 0);
  assert.equal(flowHash(v6, 0, 39), 0);
  assert.equal(flowHash(a, 20, 100), 0);
  const rng = new Rng(6);
  for (let i = 0; i < 2000; i++) {
    const g = rng.bytes(rng.int(80));
    const x = flowHash(g, 0, g.length);
    assert.ok(Number.isInteger(x) && x >= 0);
  }
});

Deno.test("MapCache.setRlocUp() changes every entry using that RLOC", () => {
  const mc = new MapCache();
  const locs = [
    { address: "192.0.2.1", priority: 1, weight: 1 },
    { address: "192.0.2.2", priority: 2, weight: 1 },
  ];
  const a = mc.set(p("10.0.0.0/8"), { kind: "positive", expiresAt: 1e12, locators: locs });
  const b = mc.set(p("11.0.0.0/8"), { kind: "positive", expiresAt: 1e12, locators: locs });
  const c = mc.set(p("12.0.0.0/8"), {
    kind: "positive",
    expiresAt: 1e12,
    locators: [{ address: "192.0.2.2", priority: 1, weight: 1 }],
  });
  assert.equal(mc.setRlocUp("192.0.2.1", false), 2);
  assert.equal(selectLocator(a, 1), 1);
  assert.equal(selectLocator(b, 99), 1);
  assert.equal(selectLocator(c, 5), 0);
  assert.equal(mc.setRlocUp("192.0.2.1", false), 0);
  assert.equal(mc.setRlocUp("192.0.2.1", true), 2);
  assert.equal(selectLocator(a, 1), 0);
});

Deno.test("MapCache.set() rejects bad entries", () => {
  const mc = new MapCache();
  const loc = { address: "192.0.2.1", priority: 1, weight: 1 };
  assert.throws(
    () => mc.set(p("10.0.0.0/8"), { kind: "negative", expiresAt: 1, locators: [loc] }),
    TypeError,
  );
  assert.throws(() => mc.set(p("10.0.0.0/8"), { kind: "positive", locators: [loc] }), TypeError);
  assert.throws(
    () =>
      mc.set(p("10.0.0.0/8"), {
        kind: "positive",
        expiresAt: 1,
        locators: [{ ...loc, address: "rtr.example" }],
      }),
    TypeError,
  );
  assert.throws(
    () =>
      mc.set(p("10.0.0.0/8"), {
        kind: "positive",
        expiresAt: 1,
        locators: [{ ...loc, priority: 256 }],
      }),
    RangeError,
  );
  assert.throws(
    () => mc.set(p("10.0.0.0/8"), { kind: "negative", expiresAt: 1, action: 8 }),
    RangeError,
  );
  assert.equal(mc.size, 0);
});

Deno.test("entryInit() recreates an entry in another MapCache", () => {
  const a = new MapCache();
  const e = a.set(p("10.0.0.0/8", 9), {
    kind: "positive",
    action: 0,
    expiresAt: 123,
    locators: [{ address: "192.0.2.1", priority: 1, weight: 3, up: false }],
  });
  const b = new MapCache();
  const f = b.set(e.prefix, structuredClone(entryInit(e)));
  assert.notEqual(f, e);
  assert.deepEqual(f.prefix, e.prefix);
  assert.deepEqual(
    [f.kind, f.action, f.expiresAt, f.static, f.usable, f.locators],
    [e.kind, e.action, e.expiresAt, e.static, e.usable, e.locators],
  );
  assert.equal(f.selection, e.selection); // interned
});
