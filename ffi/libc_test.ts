/**
 * libc table, errno and sockaddr helpers (no privileges needed).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  addressOf,
  check,
  decodeSockaddr,
  EBADF,
  encodeSockaddr,
  encodeSockaddrIn,
  encodeSockaddrIn6,
  ENOENT,
  errno,
  ErrnoError,
  errnoName,
  HOST_LE,
  ifNameToIndex,
  ipv4ToU32,
  libc,
  MAX_CPU,
  pinThread,
  setPointer,
  setPointerAt,
  splitAddress,
  threadCpus,
  u32ToIpv4,
} from "./libc.ts";

Deno.test("errnoName() gives Linux errno names, E<n> when unknown", () => {
  assert.equal(errnoName(1), "EPERM");
  assert.equal(errnoName(3), "ESRCH");
  assert.equal(errnoName(11), "EAGAIN");
  assert.equal(errnoName(17), "EEXIST");
  assert.equal(errnoName(98), "EADDRINUSE");
  assert.equal(errnoName(105), "ENOBUFS");
  assert.equal(errnoName(133), "EHWPOISON");
  assert.equal(errnoName(0), "E0");
  assert.equal(errnoName(999), "E999");
});

Deno.test("ErrnoError reads `call: strerror (CODE): detail`", () => {
  const e = new ErrnoError(3, "RTM_DELROUTE 10.9.0.0/16 table 100");
  assert.equal(e.message, "RTM_DELROUTE 10.9.0.0/16 table 100: No such process (ESRCH)");
  assert.equal(e.name, "ErrnoError");
  assert.equal(e.code, "ESRCH");
  assert.equal(e.errno, 3);
  assert.equal(e.call, "RTM_DELROUTE 10.9.0.0/16 table 100");
  assert.equal(e.detail, undefined);
  const d = new ErrnoError(22, "RTM_NEWROUTE x", "Invalid prefix for given prefix length");
  assert.equal(
    d.message,
    "RTM_NEWROUTE x: Invalid argument (EINVAL): Invalid prefix for given prefix length",
  );
  assert.ok(d instanceof Error);
});

Deno.test("errno() is read right after a failed synchronous call; check() throws it", () => {
  assert.equal(libc().close(-1), -1);
  assert.equal(errno(), EBADF);
  assert.throws(() => check(libc().fcntl(-1, 1, 0), "fcntl -1"), (e: unknown) => {
    assert.ok(e instanceof ErrnoError);
    assert.equal(e.code, "EBADF");
    assert.equal(e.message, "fcntl -1: Bad file descriptor (EBADF)");
    return true;
  });
  assert.equal(check(libc().getpid(), "getpid"), Deno.pid);
});

Deno.test("errno is per thread: a Worker reads its own", async () => {
  const w = new Worker(new URL("./_errno_worker.ts", import.meta.url), { type: "module" });
  const got = await new Promise<number[]>((resolve) => (w.onmessage = (m) => resolve(m.data)));
  w.terminate();
  assert.deepEqual(got, [EBADF, ENOENT]);
});

Deno.test("pinThread() pins the calling thread only: a Worker pinned to one CPU runs on it, the others keep theirs", async () => {
  const before = threadCpus();
  assert.ok(before.length >= 1);
  const cpu = before[before.length - 1]!;
  const ask = async (n: number) => {
    const w = new Worker(new URL("./_pin_worker.ts", import.meta.url), { type: "module" });
    try {
      const got = new Promise<{ cpus?: number[]; error?: string }>((resolve) =>
        w.onmessage = (m) => resolve(m.data)
      );
      w.postMessage(n);
      return await got;
    } finally {
      w.terminate();
    }
  };
  assert.deepEqual(await ask(cpu), { cpus: [cpu] });
  assert.deepEqual(threadCpus(), before, "the test's own thread is not pinned");
  // A CPU this machine does not have: the kernel's refusal, as an ErrnoError.
  assert.deepEqual(await ask(MAX_CPU), {
    error: `sched_setaffinity CPU ${MAX_CPU}: Invalid argument (EINVAL)`,
  });
  assert.throws(() => pinThread(MAX_CPU + 1), RangeError);
});

Deno.test("encodeSockaddrIn() writes family host-endian, port and address big-endian", () => {
  const into = new Uint8Array(20).fill(0xa5);
  const out = encodeSockaddrIn("10.1.2.3", 4341, into, 2);
  const family = HOST_LE ? [0x02, 0x00] : [0x00, 0x02];
  assert.deepEqual([...into], [
    0xa5,
    0xa5,
    ...family, // sin_family AF_INET (host order)
    0x10,
    0xf5, // sin_port 4341
    10,
    1,
    2,
    3, // sin_addr
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0, // sin_zero
    0xa5,
    0xa5,
  ]);
  assert.equal(out.length, 16);
  assert.equal(out.byteOffset, 2);
  assert.deepEqual(encodeSockaddrIn(0x0a010203, 4341), into.subarray(2, 18));
  assert.throws(() => encodeSockaddrIn("10.1.2", 1), TypeError);
  assert.throws(() => encodeSockaddrIn("10.1.2.3", 65536), RangeError);
});

Deno.test("encodeSockaddrIn6() writes the 28-byte layout", () => {
  const out = encodeSockaddrIn6("2001:db8::1", 4342, undefined, 0, 7);
  const family = HOST_LE ? [0x0a, 0x00] : [0x00, 0x0a];
  const scope = HOST_LE ? [7, 0, 0, 0] : [0, 0, 0, 7];
  assert.deepEqual([...out], [
    ...family, // sin6_family AF_INET6
    0x10,
    0xf6, // sin6_port 4342
    0,
    0,
    0,
    0, // sin6_flowinfo
    0x20,
    0x01,
    0x0d,
    0xb8,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    1, // sin6_addr
    ...scope, // sin6_scope_id
  ]);
});

Deno.test("decodeSockaddr() reads back what encodeSockaddr() wrote", () => {
  for (
    const [address, port] of [["127.0.0.1", 1], ["255.255.255.255", 65535], ["::1", 4341], [
      "fe80::1:2",
      0,
    ]] as const
  ) {
    const sa = encodeSockaddr(address, port);
    assert.deepEqual(decodeSockaddr(sa), {
      family: address.includes(":") ? "ipv6" : "ipv4",
      address,
      port,
    });
  }
  assert.equal(decodeSockaddr(new Uint8Array(16)), undefined, "AF_UNSPEC");
  assert.equal(decodeSockaddr(encodeSockaddr("::1", 1).subarray(0, 20)), undefined, "short");
});

Deno.test("ipv4ToU32() and u32ToIpv4() convert both ways", () => {
  assert.equal(ipv4ToU32("10.0.0.1"), 0x0a000001);
  assert.equal(ipv4ToU32("255.255.255.255"), 0xffffffff);
  assert.equal(ipv4ToU32("1.2.3"), undefined);
  assert.equal(u32ToIpv4(0xc0000201), "192.0.2.1");
  assert.equal(u32ToIpv4(0), "0.0.0.0");
});

Deno.test("addressOf() is stable per buffer and adds the view's offset; setPointer() splits 64 bits", () => {
  const ab = new ArrayBuffer(64);
  const a = addressOf(new Uint8Array(ab));
  assert.ok(a > 0 && Number.isSafeInteger(a));
  assert.equal(addressOf(new Uint8Array(ab, 24)), a + 24);
  assert.equal(addressOf(new Uint8Array(ab)), a);
  assert.equal(BigInt(a), Deno.UnsafePointer.value(Deno.UnsafePointer.of(ab)));
  const v = new DataView(new ArrayBuffer(8));
  setPointer(v, 0, 0x7fff_1234_5678);
  assert.equal(v.getBigUint64(0, HOST_LE), 0x7fff_1234_5678n);
  assert.throws(() => addressOf(new Uint8Array(0)), RangeError);
});

Deno.test("setPointerAt() writes base + rel as 64 bits, carries into the high word; setPointer() takes small values", () => {
  const v = new DataView(new ArrayBuffer(8));
  const bases = [0x7f67_3011_b167, 0x7fff_ffff_f000, 0x1_ffff_fff0, 0x1000, 0x5555_0000_0000];
  const rels = [0, 1, 0xfff, 0x1000, 0x10_0000, (1 << 30) - 1];
  for (const base of bases) {
    const parts = splitAddress(base);
    for (const rel of rels) {
      setPointerAt(v, 0, parts, rel);
      assert.equal(v.getBigUint64(0, HOST_LE), BigInt(base) + BigInt(rel), `${base} + ${rel}`);
    }
  }
  for (const n of [0, 1, 65_535, 0xffff_ffff, 0x1_0000_0000, 0x7fff_1234_5678]) {
    setPointer(v, 0, n);
    assert.equal(v.getBigUint64(0, HOST_LE), BigInt(n));
  }
});

Deno.test("ifNameToIndex() finds lo and gives 0 for a missing name", () => {
  assert.ok(ifNameToIndex("lo") > 0);
  assert.equal(ifNameToIndex("no-such-if0"), 0);
});
