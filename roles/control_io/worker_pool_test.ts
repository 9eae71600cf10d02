import assert from "node:assert/strict";
import type { Peer } from "../../core/control.ts";
import { Logger } from "../../core/log.ts";
import { UdpSocket } from "../../ffi/udp.ts";
import type { TestEcho, TestPoolInit } from "../../tests/pool_worker.ts";
import { MAX_WORKERS, type PoolRole, WorkerPool } from "./worker_pool.ts";

const WORKER = new URL("../../tests/pool_worker.ts", import.meta.url);

function pool(
  mode: TestPoolInit["mode"],
  lines: string[] = [],
  extra: Partial<PoolRole<TestPoolInit | TestEcho>> = {},
) {
  return new WorkerPool<TestPoolInit | TestEcho>({
    url: WORKER,
    name: "testing",
    prefix: "testing",
    rebindError: "no",
    logger: new Logger({
      role: "test",
      level: "debug",
      format: "json",
      sink: { write: (l) => lines.push(l) },
    }),
    address: "127.0.0.1",
    port: 0,
    init: (base) => ({ ...base, mode }),
    ...extra,
  });
}

function events(lines: string[], event: string): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) =>
    e.event === event
  );
}

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A Map-Request-shaped datagram (type 1) with the nonce `hi`:`lo` and a tag byte. */
function datagram(hi: number, lo: number, tag: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[0] = 0x10;
  v.setUint32(4, hi);
  v.setUint32(8, lo);
  b[12] = tag;
  return b;
}

Deno.test("WorkerPool.start() fails with the Worker's error when it stops before it is ready", async () => {
  const p = pool("refuse");
  await assert.rejects(p.start(2), {
    // Whichever of the two Workers answers first.
    message: /^testing Worker [01] refused to start: no socket for you$/,
  });
  await p.close();
});

Deno.test("WorkerPool.start() refuses a number of Workers out of 1..MAX_WORKERS", async () => {
  for (const n of [0, MAX_WORKERS + 1, 1.5]) {
    const p = pool("serve");
    await assert.rejects(p.start(n), {
      name: "RangeError",
      message: `testing Workers: ${n}, not 1..16`,
    });
    await p.close();
  }
});

Deno.test("WorkerPool: datagrams a Worker hands over reach the role with its index, then are acknowledged", async () => {
  const lines: string[] = [];
  const acked: number[] = [];
  const p = pool("serve", lines, { acked: (m) => acked.push(m.index) });
  const seen: [number, number, Peer, number, number | undefined, number][] = [];
  p.attach((m, kind, from, data, extra, seq) => {
    seen.push([m.index, kind, from, data[12]!, extra?.length, seq]);
  });
  await p.start(2);
  assert.equal(p.size, 2);
  const client = UdpSocket.open({ address: "127.0.0.1", port: 0 });
  const port = client.localAddress().port;
  try {
    // Spread by nonce: an even one to Worker 0, an odd one to Worker 1.
    for (const [hi, lo, tag] of [[0, 2, 1], [0, 4, 2], [0, 1, 3]] as const) {
      const d = datagram(hi, lo, tag);
      assert.equal(client.sendTo(d, 0, d.length, "127.0.0.1", p.port), d.length);
    }
    await until(() => seen.length === 3, "3 entries");
    await until(() => events(lines, "test-acked").length === 2, "both Workers' acknowledgements");
    p.postAll({ op: "echo", text: "hello" });
    await until(() => events(lines, "test-echo").length === 2, "the echo of both Workers");
  } finally {
    client.close();
    await p.close();
  }
  seen.sort((a, b) => a[0] - b[0] || a[5] - b[5]);
  assert.deepEqual(seen, [
    [0, 5, { address: "127.0.0.1", port }, 1, undefined, 1],
    [0, 5, { address: "127.0.0.1", port }, 2, undefined, 2],
    [1, 5, { address: "127.0.0.1", port }, 3, undefined, 1],
  ]);
  // One Peer object for one IPv4 source, whichever Worker handed it over.
  assert.equal(seen[0]![2], seen[2]![2]);
  const logged = events(lines, "test-acked").map((e) => e.worker).sort();
  assert.deepEqual(logged, [0, 1]);
  assert.ok(acked.includes(0) && acked.includes(1));
});

Deno.test("WorkerPool: a Worker that stops after its start is logged and reported as an error of the role", async () => {
  const lines: string[] = [];
  const reported: string[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(String(e.error?.message ?? e.message));
  };
  globalThis.addEventListener("error", onError);
  try {
    const p = pool("die", lines);
    await p.start(1);
    await until(() => reported.length > 0, "the report");
    await p.close();
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual(reported, ["testing Worker 0 died: gone"]);
  const died = events(lines, "testing-worker-died");
  assert.equal(died.length, 1);
  assert.equal(died[0]!.worker, 0);
  assert.equal(died[0]!.error, "gone");
});

Deno.test("PoolWorker.reportDrop(): once a minute per source address and reason, to the role's dropped()", async () => {
  const drops: [string, string, string][] = [];
  const p = pool("serve", [], {
    dropped: (reason, address, peer) => drops.push([reason, address, peer]),
  });
  const seen: number[] = [];
  p.attach((_m, _kind, _from, data) => seen.push(data[12]!));
  await p.start(1);
  const client = UdpSocket.open({ address: "127.0.0.1", port: 0 });
  const port = client.localAddress().port;
  try {
    // Three drops for one reason, one for another, then a datagram handed
    // over: once it is seen, every drop before it was handled.
    for (const tag of [0xd1, 0xd1, 0xd2, 0xd1, 7]) {
      const d = datagram(0, 2, tag);
      assert.equal(client.sendTo(d, 0, d.length, "127.0.0.1", p.port), d.length);
    }
    await until(() => seen.length === 1, "the datagram after the drops");
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    client.close();
    await p.close();
  }
  assert.deepEqual(seen, [7]);
  const peer = `127.0.0.1:${port}`;
  assert.deepEqual(drops, [["test-one", "127.0.0.1", peer], ["test-second", "127.0.0.1", peer]]);
});
