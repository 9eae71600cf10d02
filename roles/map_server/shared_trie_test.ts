import assert from "node:assert/strict";
import { formatPrefix, type Prefix, PrefixTable } from "../../core/prefix.ts";
import { keyFromBytes, NO_VALUE, SharedTrie, type TrieFamily } from "./shared_trie.ts";

/** A deterministic generator (xorshift32). */
function rng(seed: number): () => number {
  let x = seed | 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

function prefix(iid: number, family: TrieFamily, bytes: Uint8Array, len: number): Prefix {
  const b = bytes.slice();
  for (let i = 0; i < b.length; i++) {
    const keep = len - i * 8;
    if (keep >= 8) continue;
    b[i] = keep <= 0 ? 0 : b[i]! & (0xff << (8 - keep));
  }
  return { iid, family: family === 4 ? "ipv4" : "ipv6", bytes: b, len };
}

/** Random addresses clustered under a few bases, so prefixes nest and share paths. */
function address(r: () => number, family: TrieFamily): Uint8Array {
  const n = family === 4 ? 4 : 16;
  const b = new Uint8Array(n);
  b[0] = [10, 172, 192][Math.floor(r() * 3)]!;
  b[1] = Math.floor(r() * 4);
  for (let i = 2; i < n; i++) b[i] = r() < 0.5 ? 0 : Math.floor(r() * 256);
  return b;
}

function check(family: TrieFamily, seed: number): void {
  const r = rng(seed);
  const bits = family === 4 ? 32 : 128;
  const naive = new PrefixTable<number>();
  const trie = new SharedTrie(undefined, false);
  const live: Prefix[] = [];
  for (let step = 0; step < 6000; step++) {
    const iid = r() < 0.8 ? 0 : 7;
    if (r() < 0.3 && live.length > 0) {
      const i = Math.floor(r() * live.length);
      const p = live[i]!;
      live.splice(i, 1);
      keyFromBytes(trie.key, family, p.bytes, 0);
      trie.beginWrite();
      const had = trie.delete(p.iid, family, p.len);
      trie.endWrite();
      assert.equal(had, naive.delete(p), `delete ${formatPrefix(p)}`);
    } else {
      const len = Math.floor(r() * (bits + 1));
      const p = prefix(iid, family, address(r, family), len);
      const value = Math.floor(r() * 1e6);
      keyFromBytes(trie.key, family, p.bytes, 0);
      trie.beginWrite();
      trie.set(p.iid, family, p.len, value);
      trie.endWrite();
      if (!naive.has(p)) live.push(p);
      naive.set(p, value);
    }
    assert.equal(trie.size, naive.size);
    // Host lookups: the longest match and the hole agree with PrefixTable.
    for (let q = 0; q < 4; q++) {
      const host = prefix(r() < 0.8 ? 0 : 7, family, address(r, family), bits);
      keyFromBytes(trie.key, family, host.bytes, 0);
      assert.ok(trie.lookup(host.iid, family, bits));
      const m = trie.match;
      const want = naive.lookup(host);
      assert.equal(m.value, want?.value ?? NO_VALUE, `lookup ${formatPrefix(host)}`);
      if (want !== undefined) assert.equal(m.len, want.prefix.len);
      else {
        const hole = naive.hole(host);
        assert.equal(m.common + 1 <= bits ? m.common + 1 : -1, hole?.len ?? -1, "hole");
      }
    }
  }
  // Exact gets of every live prefix.
  for (const p of live) {
    keyFromBytes(trie.key, family, p.bytes, 0);
    assert.equal(trie.get(p.iid, family, p.len), naive.get(p));
  }
}

Deno.test("SharedTrie matches PrefixTable (longest match, hole) on clustered IPv4 prefixes with deletes", () => {
  check(4, 1);
  check(4, 2);
});

Deno.test("SharedTrie matches PrefixTable (longest match, hole) on clustered IPv6 prefixes with deletes", () => {
  check(6, 3);
});

Deno.test("SharedTrie reuses the nodes of deleted prefixes and grows its memory when full", () => {
  const t = new SharedTrie();
  const b = new Uint8Array(4);
  const put = (i: number, on: boolean) => {
    new DataView(b.buffer).setUint32(0, 0x0a000000 + (i << 8));
    keyFromBytes(t.key, 4, b, 0);
    t.beginWrite();
    if (on) t.set(0, 4, 24, i);
    else t.delete(0, 4, 24);
    t.endWrite();
  };
  for (let i = 0; i < 5000; i++) put(i, true);
  const grown = t.memory.byteLength;
  assert.ok(grown > 200_000, `grew to ${grown}`);
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 5000; i++) put(i, false);
    assert.equal(t.size, 0);
    for (let i = 0; i < 5000; i++) put(i, true);
  }
  assert.equal(t.memory.byteLength, grown, "deleted nodes were reused");
  new DataView(b.buffer).setUint32(0, 0x0a001301);
  keyFromBytes(t.key, 4, b, 0);
  assert.ok(t.lookup(0, 4, 32));
  assert.deepEqual([t.match.value, t.match.len], [0x13, 24]);
});

Deno.test("SharedTrie: a Worker reading while this thread writes sees each prefix whole, never a torn answer", async () => {
  const t = new SharedTrie();
  const src = `
    import { SharedTrie } from ${JSON.stringify(new URL("./shared_trie.ts", import.meta.url).href)};
    self.onmessage = (e) => {
      const t = new SharedTrie(e.data.memory);
      const end = Date.now() + e.data.ms;
      let reads = 0, retries = 0, bad = 0;
      while (Date.now() < end) {
        for (let i = 0; i < 64; i++) {
          t.key[0] = 0x0a000000 + (i << 8) + 1;
          for (;;) {
            const s = t.beginRead();
            if (s < 0) { retries++; continue; }
            const ok = t.lookup(0, 4, 32);
            const v = t.match.value, len = t.match.len;
            if (!t.validate(s) || !ok) { retries++; continue; }
            reads++;
            // Prefix i is either absent, or /24 with value i, or /16 (the cover) with value 1000.
            if (!(v === -1 || (len === 24 && v === i) || (len === 16 && v === 1000))) bad++;
            break;
          }
        }
      }
      self.postMessage({ reads, retries, bad });
    };`;
  const w = new Worker(`data:application/javascript,${encodeURIComponent(src)}`, {
    type: "module",
  });
  try {
    const done = new Promise<{ reads: number; retries: number; bad: number }>((resolve) => {
      w.onmessage = (e) => resolve(e.data);
    });
    w.postMessage({ memory: t.memory, ms: 700 });
    const b = new Uint8Array(4);
    const end = Date.now() + 800;
    let changes = 0;
    for (let k = 0; Date.now() < end; k++) {
      const i = k % 64;
      const on = Math.floor(k / 64) % 2 === 0;
      new DataView(b.buffer).setUint32(0, 0x0a000000 + (i << 8));
      keyFromBytes(t.key, 4, b, 0);
      t.beginWrite();
      if (on) t.set(0, 4, 24, i);
      else t.delete(0, 4, 24);
      if (i === 0) {
        keyFromBytes(t.key, 4, b, 0);
        if (on) t.set(0, 4, 16, 1000);
        else t.delete(0, 4, 16);
      }
      t.endWrite();
      changes++;
      if (k % 256 === 0) await new Promise((r) => setTimeout(r, 0));
    }
    const got = await done;
    assert.equal(got.bad, 0, JSON.stringify(got));
    assert.ok(got.reads > 1000 && changes > 1000, JSON.stringify({ ...got, changes }));
  } finally {
    w.terminate();
  }
});
