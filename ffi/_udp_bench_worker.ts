/**
 * Receiver Worker of ffi/udp_bench.ts: a synchronous poll + recvmmsg drain
 * loop on one UDP socket, the way the data-plane Worker reads its sockets.
 *
 * Protocol: the main thread posts `{ shared, slots, address, recvBuffer }`;
 * the worker binds, answers `{ port }`, waits until the command word
 * (Int32 index 0 of `shared`) is 1, drains until it becomes 2, then posts
 * its totals.
 *
 * @module
 */

import { PacketBatch, PollSet, UdpSocket } from "./udp.ts";

/** The worker's global scope (typed here: the project compiles with the window lib). */
const scope = globalThis as unknown as {
  postMessage(message: unknown): void;
  onmessage: ((m: MessageEvent) => void) | null;
};

/** Message from the main thread. */
interface Start {
  /** Int32[0]: 0 wait, 1 run, 2 stop. Float64 from byte 8: [received, bytes]. */
  readonly shared: SharedArrayBuffer;
  /** recvmmsg batch size. */
  readonly slots: number;
  /** Address to bind. */
  readonly address: string;
  /** SO_RCVBUF(FORCE) in bytes. */
  readonly recvBuffer: number;
}

scope.onmessage = (m: MessageEvent<Start>) => {
  const { shared, slots, address, recvBuffer } = m.data;
  const cmd = new Int32Array(shared, 0, 1);
  const stats = new Float64Array(shared, 8, 2);
  using sock = UdpSocket.open({ address, recvBuffer });
  const batch = new PacketBatch({ slots });
  const ps = new PollSet([sock.fd]);
  scope.postMessage({ port: sock.localAddress().port });
  while (Atomics.load(cmd, 0) === 0) Atomics.wait(cmd, 0, 0, 50);
  let received = 0;
  let bytes = 0;
  let calls = 0;
  let first = 0;
  let last = 0;
  let errors = 0;
  while (Atomics.load(cmd, 0) === 1) {
    if (ps.poll(10) === 0) continue;
    for (;;) {
      const n = sock.recvmmsg(batch);
      if (n <= 0) {
        if (n < 0) errors++;
        break;
      }
      calls++;
      if (received === 0) first = performance.now();
      received += n;
      for (let i = 0; i < n; i++) bytes += batch.length[i]!;
      last = performance.now();
    }
    stats[0] = received;
    stats[1] = bytes;
  }
  scope.postMessage({ received, bytes, calls, ms: last - first, errors });
};
