import assert from "node:assert/strict";
import { dgramTransport, type Peer, type TransportHooks } from "../../core/control.ts";
import { Logger } from "../../core/log.ts";
import { EINVAL, ipv4ToU32 } from "../../ffi/libc.ts";
import { PacketBatch, UdpSocket } from "../../ffi/udp.ts";
import { batchedTransport, CONTROL_RECV_BUFFER, sendWholeBatch } from "./socket.ts";

interface Sink {
  readonly hooks: TransportHooks;
  readonly got: { data: Uint8Array; from: Peer }[];
  readonly failures: string[];
  readonly lines: string[];
}

function sink(): Sink {
  const got: { data: Uint8Array; from: Peer }[] = [];
  const failures: string[] = [];
  const lines: string[] = [];
  return {
    got,
    failures,
    lines,
    hooks: {
      logger: new Logger({ role: "test", level: "debug", sink: { write: (l) => lines.push(l) } }),
      receive: (data, from) => got.push({ data, from }),
      failed: (reason) => failures.push(reason),
    },
  };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Sends `n` datagrams of `size` bytes to `port` from one socket, synchronously: nobody reads meanwhile. */
function burst(port: number, n: number, size: number): void {
  const s = UdpSocket.open({ address: "127.0.0.1", sendBuffer: 16 << 20 });
  try {
    const b = new Uint8Array(size);
    for (let i = 0; i < n; i++) {
      new DataView(b.buffer).setUint32(0, i);
      assert.equal(s.sendTo(b, 0, size, "127.0.0.1", port), size);
    }
  } finally {
    s.close();
  }
}

Deno.test("a burst of 4,000 datagrams that arrives while the role is busy is received whole", async () => {
  const a = sink();
  const t = await batchedTransport("127.0.0.1", 0, a.hooks);
  try {
    burst(t.port, 4000, 100);
    await until(() => a.got.length === 4000, "4000 datagrams");
    assert.deepEqual(
      a.got.slice(0, 3).map((g) => new DataView(g.data.buffer).getUint32(0)),
      [0, 1, 2],
    );
    assert.equal(a.got[0]!.from.address, "127.0.0.1");
    assert.equal(a.got[0]!.data.length, 100);
  } finally {
    await t.close();
  }
});

Deno.test("the kernel's default receive buffer, which node:dgram keeps, loses such a burst", async () => {
  // The reason for the test above: the same burst against node:dgram.
  const a = sink();
  const t = await dgramTransport("127.0.0.1", 0, a.hooks);
  try {
    burst(t.port, 4000, 100);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(a.got.length < 4000, `node:dgram got ${a.got.length} of 4000`);
  } finally {
    await t.close();
  }
});

Deno.test("the receive buffer asked for is granted to root, and logged when it is not", async () => {
  const a = sink();
  const t = await batchedTransport("127.0.0.1", 0, a.hooks);
  try {
    const warned = a.lines.some((l) =>
      l.includes("control-socket-buffers") && l.includes("wanted")
    );
    if (Deno.uid() === 0) assert.ok(!warned, a.lines.join("\n"));
    else assert.ok(warned || CONTROL_RECV_BUFFER <= 212_992);
  } finally {
    await t.close();
  }
});

Deno.test("datagrams sent in one task leave in order, small and large, each to its peer", async () => {
  const a = sink();
  const b = sink();
  const from = await batchedTransport("127.0.0.1", 0, sink().hooks);
  const ta = await batchedTransport("127.0.0.1", 0, a.hooks);
  const tb = await batchedTransport("127.0.0.1", 0, b.hooks);
  try {
    for (let i = 0; i < 300; i++) {
      const size = i % 25 === 8 ? 9000 : 60;
      const d = new Uint8Array(size).fill(i & 0xff);
      assert.ok(from.send(d, { address: "127.0.0.1", port: i % 2 === 0 ? ta.port : tb.port }));
    }
    await until(() => a.got.length === 150 && b.got.length === 150, "300 datagrams");
    assert.deepEqual(
      a.got.map((g) => g.data[0]),
      [...Array(150).keys()].map((k) => (2 * k) & 0xff),
    );
    assert.deepEqual(a.got.map((g) => g.data.length).filter((n) => n === 9000).length, 6);
    assert.deepEqual(a.got.every((g) => g.from.port === from.port), true);
  } finally {
    await Promise.all([from.close(), ta.close(), tb.close()]);
  }
});

Deno.test("a send it cannot make is reported, never thrown: port 0, a family without a socket", async () => {
  const a = sink();
  const t = await batchedTransport("127.0.0.1", 0, a.hooks);
  try {
    assert.equal(t.send(new Uint8Array(4), { address: "127.0.0.1", port: 0 }), false);
    assert.equal(t.send(new Uint8Array(4), { address: "::1", port: 4342 }), false);
    assert.equal(t.send(new Uint8Array(4), { address: "not an address", port: 4342 }), false);
    const w = await batchedTransport(undefined, 0, a.hooks);
    assert.equal(w.send(new Uint8Array(4), { address: "not:an:address", port: 4342 }), false);
    await w.close();
    assert.deepEqual(a.failures, ["bad-destination", "no-socket", "no-socket", "bad-destination"]);
  } finally {
    await t.close();
  }
  assert.equal(t.send(new Uint8Array(4), { address: "127.0.0.1", port: 9 }), false);
});

Deno.test("bound to the wildcard it receives over IPv4 and IPv6 on one port", async () => {
  const a = sink();
  const t = await batchedTransport(undefined, 0, a.hooks);
  const c = await batchedTransport("::1", 0, sink().hooks);
  const c4 = await batchedTransport("127.0.0.1", 0, sink().hooks);
  try {
    c.send(new Uint8Array([6]), { address: "::1", port: t.port });
    c4.send(new Uint8Array([4]), { address: "127.0.0.1", port: t.port });
    await until(() => a.got.length === 2, "two datagrams");
    assert.deepEqual(a.got.map((g) => g.from.address).sort(), ["127.0.0.1", "::1"]);
  } finally {
    await Promise.all([t.close(), c.close(), c4.close()]);
  }
});

Deno.test("rebind() moves the port to another address; close() frees it", async () => {
  const a = sink();
  const t = await batchedTransport("127.0.0.1", 0, a.hooks);
  const port = t.port;
  const c = await batchedTransport("127.0.0.1", 0, sink().hooks);
  try {
    await t.rebind("127.0.0.2");
    assert.equal(t.address, "127.0.0.2");
    c.send(new Uint8Array([1]), { address: "127.0.0.1", port });
    c.send(new Uint8Array([2]), { address: "127.0.0.2", port });
    await until(() => a.got.length >= 1, "a datagram");
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(a.got.map((g) => g.data[0]), [2]);
  } finally {
    await t.close();
    await c.close();
  }
  const again = await batchedTransport("127.0.0.2", port, sink().hooks);
  await again.close();
});

/** A batch of `ports.length` 4-byte datagrams to 127.0.0.1, datagram i to ports[i] and holding i. */
function batchTo(ports: readonly number[]): PacketBatch {
  const b = new PacketBatch({ slots: 8, slotSize: 64, headroom: 0 });
  for (const [i, port] of ports.entries()) {
    const at = b.base(i);
    new DataView(b.bytes.buffer).setUint32(b.bytes.byteOffset + at, i);
    b.offset[i] = at;
    b.length[i] = 4;
    b.setPeer4(i, ipv4ToU32("127.0.0.1")!, port);
  }
  b.count = ports.length;
  return b;
}

Deno.test("sendWholeBatch: a datagram the socket refuses is reported with its errno and skipped; the rest go", async () => {
  const rx = UdpSocket.open({ address: "127.0.0.1" });
  const tx = UdpSocket.open({ address: "127.0.0.1" });
  try {
    const port = rx.localAddress().port;
    const b = batchTo([port, 0, port]);
    const refused: string[] = [];
    sendWholeBatch(tx, b, () => assert.fail("not full"), (batch, i, s) => {
      refused.push(`${i} ${batch.peer(i)?.port} ${s.errno === EINVAL ? "EINVAL" : s.errno}`);
    });
    assert.deepEqual(refused, ["1 0 EINVAL"]);
    assert.equal(b.count, 0, "the batch is emptied");
    const got = new PacketBatch({ slots: 8, slotSize: 64, headroom: 0 });
    await until(() => rx.recvmmsg(got, got.count) > 0 && got.count === 2, "two datagrams");
    assert.deepEqual(
      [0, 1].map((k) =>
        new DataView(got.bytes.buffer).getUint32(got.bytes.byteOffset + got.offset[k]!)
      ),
      [0, 2],
    );
  } finally {
    rx.close();
    tx.close();
  }
});

Deno.test("sendWholeBatch: a full send buffer is told once, with what is left, and ends the send", () => {
  const calls: [number, number][] = [];
  // A socket whose buffer takes two datagrams, then is full.
  const answers = [2, 0];
  const socket = {
    sendmmsg(_b: PacketBatch, start: number, count: number): number {
      calls.push([start, count]);
      return answers.shift() ?? assert.fail("sent again after the buffer was full");
    },
  } as unknown as UdpSocket;
  const full: string[] = [];
  const b = batchTo([9, 9, 9, 9, 9]);
  sendWholeBatch(socket, b, (_b, i, count) => full.push(`${i}..${count}`), () => assert.fail());
  assert.deepEqual(calls, [[0, 5], [2, 3]]);
  assert.deepEqual(full, ["2..5"]);
  assert.equal(b.count, 0);
});

Deno.test("a datagram the kernel refuses at the batch's send is reported, and the others of the batch go", async () => {
  const a = sink();
  const b = sink();
  const t = await batchedTransport("127.0.0.1", 0, a.hooks);
  const r = await batchedTransport("127.0.0.1", 0, b.hooks);
  try {
    const to = { address: "127.0.0.1", port: r.port };
    assert.equal(t.send(new Uint8Array([1]), to), true);
    // Broadcast without SO_BROADCAST: sendmmsg() fails on it with EACCES.
    assert.equal(t.send(new Uint8Array([2]), { address: "255.255.255.255", port: 9 }), true);
    assert.equal(t.send(new Uint8Array([3]), to), true);
    await until(() => b.got.length === 2, "two datagrams");
    assert.deepEqual(b.got.map((g) => g.data[0]), [1, 3]);
    assert.deepEqual(a.failures, ["socket"]);
  } finally {
    await t.close();
    await r.close();
  }
});
