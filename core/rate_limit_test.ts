import assert from "node:assert/strict";
import { RATE_LIMIT_BYTES, RateLimiter } from "./rate_limit.ts";

function takes(l: RateLimiter, address: string, n: number, now: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.allow(address, now)) ok++;
  return ok;
}

Deno.test("RateLimiter: a source gets a burst of twice its rate, then its rate per second", () => {
  const l = new RateLimiter(10);
  assert.equal(takes(l, "192.0.2.1", 50, 1000), 20);
  assert.equal(takes(l, "192.0.2.1", 50, 1500), 5, "half a second refills 5");
  assert.equal(takes(l, "192.0.2.1", 50, 60_000), 20, "never more than the burst");
});

Deno.test("RateLimiter: sources are apart, IPv4 and IPv6, text and bytes alike", () => {
  const l = new RateLimiter(1);
  assert.equal(takes(l, "192.0.2.1", 5, 0), 2);
  assert.equal(takes(l, "192.0.2.2", 5, 0), 2);
  assert.equal(takes(l, "2001:db8::1", 5, 0), 2);
  assert.equal(takes(l, "2001:db8::2", 5, 0), 2);
  assert.equal(l.allow4(0xc0000201, 0), false, "192.0.2.1 as a u32 is the same bucket");
  const b = new Uint8Array(20);
  b.set([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3], 4);
  assert.equal(l.allow6(b, 4, 0), true);
  assert.equal(l.allow6(b, 4, 0), true);
  assert.equal(l.allow6(b, 4, 0), false);
  assert.equal(l.allow("2001:db8::3", 0), false, "2001:db8::3 as text is that bucket");
});

Deno.test("RateLimiter: with the table full, a new source still gets its burst and no more", () => {
  const l = new RateLimiter(1);
  // 300,000 sources: far more than the table's slots; each gets its own burst.
  let granted = 0;
  for (let i = 0; i < 300_000; i++) {
    if (l.allow4(0x0a000000 + i, 0)) granted++;
    if (l.allow4(0x0a000000 + i, 0)) granted++;
    if (l.allow4(0x0a000000 + i, 0)) granted++;
  }
  assert.equal(granted, 600_000);
  assert.equal(takes(l, "198.51.100.1", 3, 0), 2);
});

Deno.test("RateLimiter: two Workers and this thread take from the same buckets", async () => {
  const l = new RateLimiter(1000);
  const src = `
    import { RateLimiter } from ${JSON.stringify(new URL("./rate_limit.ts", import.meta.url).href)};
    self.onmessage = (e) => {
      const l = new RateLimiter(1000, e.data);
      let ok = 0;
      for (let i = 0; i < 3000; i++) if (l.allow("203.0.113.9", 5)) ok++;
      self.postMessage(ok);
    };`;
  const url = `data:application/javascript,${encodeURIComponent(src)}`;
  const workers = [0, 1].map(() => new Worker(url, { type: "module" }));
  try {
    const got = workers.map((w) =>
      new Promise<number>((resolve) => {
        w.onmessage = (e) => resolve(e.data as number);
      })
    );
    for (const w of workers) w.postMessage(l.memory);
    let here = 0;
    for (let i = 0; i < 3000; i++) if (l.allow("203.0.113.9", 5)) here++;
    const [a, b] = await Promise.all(got);
    assert.equal(a! + b! + here, 2000, `${a} + ${b} + ${here}: exactly the burst, once`);
  } finally {
    for (const w of workers) w.terminate();
  }
  assert.equal(l.memory.byteLength, RATE_LIMIT_BYTES);
});
