/**
 * A pool Worker for roles/control_io/worker_pool_test.ts, built like the
 * ms's and the mr's (roles/control_io/pool_worker.ts): it hands every
 * datagram over as it came (kind 5), and does what its init message's
 * `mode` says: `refuse` (its constructor throws: stopped with the error
 * before ready), `die` (its loop throws once it runs), `serve` (logs
 * `test-acked` once the main thread acknowledged something). A datagram
 * whose byte 12 is 0xd1 or 0xd2 is not handed over but reported dropped
 * (`reportDrop`) for reason `test-one` or `test-second`.
 *
 * @module
 */

import type { Received } from "../roles/control_io/hand_over.ts";
import { PoolWorker, type PostToMain, runPoolWorker } from "../roles/control_io/pool_worker.ts";
import type { PoolInit } from "../roles/control_io/worker_pool.ts";

/** The test Worker's init message. */
export interface TestPoolInit extends PoolInit {
  readonly mode: "refuse" | "die" | "serve";
}

/** A role message: what the Worker logs back (`test-echo`). */
export interface TestEcho {
  readonly op: "echo";
  readonly text: string;
}

class TestWorker extends PoolWorker<TestEcho> {
  readonly #mode: TestPoolInit["mode"];
  #ackLogged = false;

  constructor(init: TestPoolInit, post: PostToMain) {
    if (init.mode === "refuse") throw new Error("no socket for you");
    super(init, post, "testing", { counts: new Float64Array(2), sendFull: 0, sendRefused: 1 });
    this.#mode = init.mode;
  }

  message(m: TestEcho): void {
    this.post({ op: "log", event: "test-echo", fields: { worker: this.index, text: m.text } });
  }

  protected override beforeWait(): void {
    if (this.#mode === "die") throw new Error("gone");
    const acked = Atomics.load(this.acks, this.index);
    if (acked > 0 && !this.#ackLogged) {
      this.#ackLogged = true;
      this.post({ op: "log", event: "test-acked", fields: { worker: this.index, acked } });
    }
  }

  protected one(d: Received, now: number): void {
    const tag = d.bytes[d.start + 12];
    if (tag === 0xd1 || tag === 0xd2) {
      this.reportDrop(tag === 0xd1 ? "test-one" : "test-second", d, now);
    } else this.stage.stage(5, d);
  }

  protected postUp(): void {
    const first = this.stage.first;
    const buf = this.stage.take();
    if (buf !== undefined) this.post({ op: "up", buf, first, seq: this.stage.seq }, [buf]);
  }
}

runPoolWorker<TestPoolInit, TestEcho>((init, post) => new TestWorker(init, post));
