import assert from "node:assert/strict";
import type { Peer } from "../../core/control.ts";
import { Logger } from "../../core/log.ts";
import type { TestPoolInit } from "../../tests/pool_worker.ts";
import { MAX_WORKERS, type PoolRole, WorkerPool } from "./worker_pool.ts";

const WORKER = new URL("../../tests/pool_worker.ts", import.meta.url);

function pool(
  mode: TestPoolInit["mode"],
  lines: string[] = [],
  extra: Partial<PoolRole<TestPoolInit>> = {},
) {
  return new WorkerPool<TestPoolInit>({
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

function events(lines: string[]): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
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

Deno.test("WorkerPool: the entries a Worker hands over reach the role with its index, then are acknowledged", async () => {
  const lines: string[] = [];
  let ackedCalls = 0;
  const p = pool("serve", lines, {
    acked: () => {
      ackedCalls++;
    },
  });
  const seen: [number, number, Peer, number[], number[] | undefined, number][] = [];
  p.attach((m, kind, from, data, extra, seq) => {
    seen.push([m.index, kind, from, [...data], extra && [...extra], seq]);
  });
  await p.start(2);
  assert.equal(p.size, 2);
  assert.ok(p.port > 0);
  const deadline = Date.now() + 10_000;
  while (
    events(lines).filter((e) => e.event === "test-acked").length < 2 && Date.now() < deadline
  ) {
    await new Promise((r) => setTimeout(r, 10));
  }
  await p.close();
  seen.sort((a, b) => a[0] - b[0] || a[5] - b[5]);
  assert.deepEqual(seen, [
    [0, 7, { address: "127.0.0.1", port: 4342 }, [1, 2, 3], undefined, 1],
    [0, 8, { address: "2001:db8::", port: 99 }, [1], [3, 4], 2],
    [1, 7, { address: "127.0.0.1", port: 4342 }, [1, 2, 3], undefined, 1],
    [1, 8, { address: "2001:db8::1", port: 99 }, [1], [3, 4], 2],
  ]);
  // One Peer object for one IPv4 source, whichever Worker handed it over.
  assert.equal(seen[0]![2], seen[2]![2]);
  const logged = events(lines).filter((e) => e.event === "test-acked").map((
    e,
  ) => [e.worker, e.acked]);
  assert.deepEqual(logged.sort(), [[0, 2], [1, 2]]);
  assert.equal(ackedCalls, 2);
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
    const deadline = Date.now() + 10_000;
    while (reported.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await p.close();
  } finally {
    globalThis.removeEventListener("error", onError);
  }
  assert.deepEqual(reported, ["testing Worker 0 died: gone"]);
  const died = events(lines).filter((e) => e.event === "testing-worker-died");
  assert.equal(died.length, 1);
  assert.equal(died[0]!.worker, 0);
  assert.equal(died[0]!.error, "gone");
});
