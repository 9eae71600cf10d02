/**
 * A Worker for roles/control_io/worker_pool_test.ts: it speaks the pool's
 * protocol and does what its init message's `mode` says: `refuse` (stopped
 * with an error before ready), `die` (ready, then stopped with an error),
 * `serve` (ready, hands over two entries, waits for their acknowledgement
 * and logs it).
 *
 * @module
 */

import { HandOverStage } from "../roles/control_io/hand_over.ts";
import type { FromPoolWorker, PoolInit, PoolStop } from "../roles/control_io/worker_pool.ts";

/** The test Worker's init message. */
export interface TestPoolInit extends PoolInit {
  readonly mode: "refuse" | "die" | "serve";
}

const scope = globalThis as unknown as {
  postMessage(m: FromPoolWorker, transfer?: Transferable[]): void;
  onmessage: ((m: MessageEvent<TestPoolInit | PoolStop>) => void) | null;
};

if (typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function") {
  scope.onmessage = (m) => {
    const msg = m.data;
    if (msg.op === "stop") {
      scope.postMessage({ op: "stopped" });
      return;
    }
    if (msg.mode === "refuse") {
      scope.postMessage({ op: "stopped", error: "no socket for you" });
      return;
    }
    scope.postMessage({ op: "ready" });
    if (msg.mode === "die") {
      scope.postMessage({ op: "stopped", error: "gone" });
      return;
    }
    const stage = new HandOverStage(msg.acks, msg.index, () => {});
    const b = new Uint8Array(20);
    b.set([0x20, 0x01, 0x0d, 0xb8], 0);
    b[15] = msg.index;
    b.set([1, 2, 3, 4], 16);
    stage.stage(7, b, 16, 19, 4, 0x7f000001, -1, 4342);
    stage.stage(8, b, 16, 17, 6, 0, 0, 99, b.subarray(18), 2);
    const first = stage.first;
    const buf = stage.take()!;
    scope.postMessage({ op: "up", buf, first, seq: stage.seq }, [buf]);
    const acks = new Int32Array(msg.acks);
    Atomics.wait(acks, msg.index, 0, 10_000);
    scope.postMessage({
      op: "log",
      event: "test-acked",
      fields: { worker: msg.index, acked: Atomics.load(acks, msg.index) },
    });
  };
}
