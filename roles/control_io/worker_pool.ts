/**
 * A pool of Workers on SO_REUSEPORT control sockets, main side: what the
 * ms's answering Workers (roles/map_server/serving.ts) and the mr's
 * forwarding Workers (roles/map_resolver/forwarding.ts) share.
 *
 * - Sockets: one reuse-port group per family on the control port, spread
 *   by the LISP nonce ({@link nonceSpreadFilter}), one socket of each group
 *   per Worker.
 * - Start: each Worker gets its init message (the role's, built on
 *   {@link PoolInit}) and has {@link START_TIMEOUT_MS} to answer `ready`; a
 *   `stopped` or an error before that fails the start.
 * - Messages to a Worker: `postMessage`, then a count in its mailbox
 *   (shared memory) and a write to its eventfd ({@link Waker}), which wakes
 *   it from `poll()`.
 * - From a Worker: `up` (handed-over datagrams, hand_over.ts, each entry
 *   given to the role; then the acknowledgement in the shared `acks`),
 *   `log` and `drop` (logged, rate-limited), `stopped` or an error after
 *   the start: the Worker died, an error of the role (`reportError`), since
 *   1/N of the traffic would reach nobody.
 * - The main thread sends on the first Worker's sockets ({@link
 *   WorkerPool.transport}); {@link WorkerPool.close} stops the Workers.
 *
 * What differs per role (the Worker's module, its names, the init
 * message, what an entry and the counts mean) is a {@link PoolRole}.
 *
 * @module
 */

import {
  type ControlTransport,
  type ControlTransportFactory,
  formatPeer,
  type TransportHooks,
} from "../../core/control.ts";
import type { Logger } from "../../core/log.ts";
import { HOST_LE } from "../../ffi/libc.ts";
import type { UdpSocket } from "../../ffi/udp.ts";
import { Waker } from "../../ffi/wait.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import { HandOverReader, type HandOverVisit } from "./hand_over.ts";
import { logSocketBuffers, openControlSocket, SendQueue } from "./socket.ts";

/** How long a Worker has to start, ms. */
export const START_TIMEOUT_MS = 60_000;
/** How long the Workers have to stop before they are terminated, ms. */
const STOP_TIMEOUT_MS = 3_000;
/** Most Workers in a pool. */
export const MAX_WORKERS = 16;

/** The default number of Workers: one per CPU the process may use, up to {@link MAX_WORKERS}. */
export function defaultWorkers(): number {
  const n = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(1, Math.min(MAX_WORKERS, n));
}

/** What every pool Worker's init message carries (the role adds its own). */
export interface PoolInit {
  readonly op: "init";
  /** The Worker's index: its slot in `acks` and in shared counts. */
  readonly index: number;
  /** Its sockets' fds, -1 for a family it has none of. */
  readonly fds: { readonly v4: number; readonly v6: number };
  /** An eventfd the main thread writes to after each post. */
  readonly wakeFd: number;
  /**
   * Int32 [0]: posts made to this Worker; [1]: 1 while it waits in poll()
   * (the main thread writes to its eventfd only then).
   */
  readonly mailbox: SharedArrayBuffer;
  /** Int32 [index]: the last handed-over sequence number the main thread handled. */
  readonly acks: SharedArrayBuffer;
}

/** What every pool Worker posts to the main thread. */
export type FromPoolWorker =
  | { readonly op: "ready" }
  | { readonly op: "stopped"; readonly error?: string }
  | {
    readonly op: "up";
    /** Handed-over datagrams (hand_over.ts entries), or undefined. */
    readonly buf?: ArrayBuffer;
    /** The sequence number of the first entry. */
    readonly first: number;
    /** The sequence number of the last entry (to acknowledge). */
    readonly seq: number;
    /** Counts since the last post, if the role posts them. */
    readonly counts?: Float64Array;
  }
  | {
    /** A log event (the Worker limits them; the main thread too, once a minute per event). */
    readonly op: "log";
    readonly event: string;
    readonly fields: Record<string, string | number>;
  }
  | {
    /** A datagram dropped (the Worker reports one a minute per source address). */
    readonly op: "drop";
    readonly reason: string;
    readonly address: string;
    readonly port: number;
  };

/** What asks a pool Worker to stop (it answers `stopped`). */
export interface PoolStop {
  readonly op: "stop";
}

/** A Worker of a pool and its sockets. */
export interface PoolMember {
  /** Its index (0..n-1). */
  readonly index: number;
  readonly worker: Worker;
  readonly waker: Waker;
  /** Int32 [0]: posts made to it; [1]: 1 while it waits in poll(). */
  readonly mailbox: Int32Array;
  readonly v4: UdpSocket | undefined;
  readonly v6: UdpSocket | undefined;
  /** Settles when it stopped (or failed). */
  readonly stopped: Promise<void>;
}

/** What a role says about its pool. */
export interface PoolRole<ToWorker> {
  /** The Worker's module. */
  readonly url: URL;
  /** What a Worker is called in errors: "answering" gives "answering Worker 0 died: ...". */
  readonly name: string;
  /**
   * The prefix of the log events: `<prefix>-worker-died`,
   * `<prefix>-hand-over-failed`, `<prefix>-spread-unavailable`.
   */
  readonly prefix: string;
  /** Why the transport does not rebind (its rejection). */
  readonly rebindError: string;
  readonly logger: Logger;
  /** `control-address` (undefined: 0.0.0.0 and ::). */
  readonly address: string | undefined;
  /** `control-port`. */
  readonly port: number;
  /** Worker `m`'s init message, from the pool's part. */
  init(base: PoolInit, m: PoolMember): ToWorker;
  /** The counts Worker `index` posted with a hand-over (before its entries). */
  counts?(index: number, counts: Float64Array): void;
  /** After the main thread acknowledged what Worker `m` handed over. */
  acked?(m: PoolMember): void;
  /** A drop Worker reported for a reason other than `rate-limited` (logged as control-dropped). */
  dropped?(reason: string, address: string, peer: string): void;
}

/**
 * What the main thread does with an entry Worker `m` handed over: its kind,
 * source, data, extra bytes and sequence number ({@link HandOverVisit}).
 */
export type PoolEntry = (m: PoolMember, ...entry: Parameters<HandOverVisit>) => void;

interface Member extends PoolMember {
  readonly done: () => void;
  /** Its entries to the pool's {@link PoolEntry} (made once). */
  readonly visit: HandOverVisit;
}

/**
 * A classic BPF program for a reuse-port group of `n` sockets: the socket
 * of a datagram is its LISP nonce (its two halves XORed) modulo `n` (bytes
 * 4..11 of the message, or of the Map-Request inside an ECM over IPv4), so
 * one busy source (a
 * map-resolver in front of the ms sends everything from one address and
 * port, which the kernel's own hash would give to one socket) spreads over
 * every Worker, while a message and its retransmissions (same nonce) stay
 * on one.
 */
export function nonceSpreadFilter(n: number): Uint8Array {
  const code: [number, number, number, number][] = [
    [0x30, 0, 0, 0], // 0 ldb [0]: type and flags
    [0x74, 0, 0, 4], // 1 rsh #4: the type
    [0x15, 0, 5, 8], // 2 jeq #8 (ECM) ? 3 : 8
    [0x20, 0, 0, 36], // 3 ld [36]: ECM 4 + IPv4 20 + UDP 8, then the Map-Request's nonce at 4
    [0x02, 0, 0, 0], // 4 st M[0]
    [0x20, 0, 0, 40], // 5 ld [40]: its low half
    [0x61, 0, 0, 0], // 6 ldx M[0]
    [0x05, 0, 0, 4], // 7 ja 12
    [0x20, 0, 0, 4], // 8 ld [4]: the message's nonce
    [0x02, 0, 0, 0], // 9 st M[0]
    [0x20, 0, 0, 8], // 10 ld [8]: its low half
    [0x61, 0, 0, 0], // 11 ldx M[0]
    [0xac, 0, 0, 0], // 12 xor x: both halves
    [0x94, 0, 0, n], // 13 mod #n
    [0x16, 0, 0, 0], // 14 ret a: the socket's index in the group
  ];
  const b = new Uint8Array(code.length * 8);
  const v = new DataView(b.buffer);
  code.forEach(([op, jt, jf, k], i) => {
    v.setUint16(i * 8, op, HOST_LE);
    b[i * 8 + 2] = jt;
    b[i * 8 + 3] = jf;
    v.setUint32(i * 8 + 4, k, HOST_LE);
  });
  return b;
}

/**
 * Opens `n` sockets on one address and port, SO_REUSEPORT, spread by
 * {@link nonceSpreadFilter}; the port is checked free first. Without the
 * filter it logs `event` (the kernel's hash then spreads the datagrams).
 */
function openReusePortGroup(
  address: string,
  port: number,
  n: number,
  logger: Logger,
  event: string,
): UdpSocket[] {
  // Without SO_REUSEPORT this bind fails when another process holds the port,
  // which a group of reuse-port sockets would otherwise share with it.
  const probe = openControlSocket(address, port);
  const p = probe.localAddress().port;
  probe.close();
  const out: UdpSocket[] = [];
  try {
    for (let i = 0; i < n; i++) out.push(openControlSocket(address, p, { reusePort: true }));
  } catch (e) {
    for (const s of out) s.close();
    throw e;
  }
  if (n > 1) {
    try {
      out[0]!.attachReusePortFilter(nonceSpreadFilter(n));
    } catch (e) {
      // Without it the kernel's hash of addresses and ports spreads the datagrams.
      logger.warn(event, { error: (e as Error).message });
    }
  }
  return out;
}

/**
 * The reuse-port groups of a pool: on `address` (its family only), or on
 * both wildcards (IPv6 where the host has it, on the port IPv4 got).
 */
function openReusePortGroups(
  address: string | undefined,
  port: number,
  n: number,
  logger: Logger,
  event: string,
): { v4: UdpSocket[]; v6: UdpSocket[] } {
  if (address !== undefined) {
    const group = openReusePortGroup(address, port, n, logger, event);
    return isIPv4(address) ? { v4: group, v6: [] } : { v4: [], v6: group };
  }
  const v4 = openReusePortGroup("0.0.0.0", port, n, logger, event);
  let v6: UdpSocket[] = [];
  try {
    v6 = openReusePortGroup("::", v4[0]!.localAddress().port, n, logger, event);
  } catch (e) {
    logger.warn("control-ipv6-unavailable", { error: (e as Error).message });
  }
  return { v4, v6 };
}

/** The Workers of a pool, their sockets and what they hand over (see the module notes). */
export class WorkerPool<ToWorker extends { readonly op: string }> {
  readonly #role: PoolRole<ToWorker>;
  readonly #members: Member[] = [];
  readonly #acks = new Int32Array(new SharedArrayBuffer(4 * MAX_WORKERS));
  readonly #sockets: UdpSocket[] = [];
  readonly #reader: HandOverReader;
  #port = 0;
  #entry: PoolEntry | undefined;
  #queue: SendQueue | undefined;
  #closing: Promise<void> | undefined;

  /** A pool of no Workers yet ({@link start}). */
  constructor(role: PoolRole<ToWorker>) {
    this.#role = role;
    this.#reader = new HandOverReader((e) =>
      role.logger.limited(
        `${role.prefix}-hand-over`,
        60_000,
        "error",
        `${role.prefix}-hand-over-failed`,
        {
          error: e instanceof Error ? e.message : String(e),
        },
      )
    );
  }

  /**
   * Opens the sockets of `n` Workers, calls `setup` (the role's counters),
   * starts the Workers and resolves once every one is ready. On a failure
   * the caller closes the pool.
   */
  async start(n: number, setup?: () => void): Promise<void> {
    const role = this.#role;
    if (!(Number.isInteger(n) && n >= 1 && n <= MAX_WORKERS)) {
      throw new RangeError(`${role.name} Workers: ${n}, not 1..${MAX_WORKERS}`);
    }
    const event = `${role.prefix}-spread-unavailable`;
    const { v4, v6 } = openReusePortGroups(role.address, role.port, n, role.logger, event);
    this.#sockets.push(...v4, ...v6);
    this.#port = (v4[0] ?? v6[0])!.localAddress().port;
    for (const s of [v4[0], v6[0]]) if (s !== undefined) logSocketBuffers(role, s);
    setup?.();
    const started: Promise<void>[] = [];
    for (let i = 0; i < n; i++) started.push(this.#spawn(i, v4[i], v6[i]));
    await Promise.all(started);
  }

  #spawn(i: number, v4: UdpSocket | undefined, v6: UdpSocket | undefined): Promise<void> {
    const role = this.#role;
    const worker = new Worker(role.url, { type: "module" });
    const mailboxMemory = new SharedArrayBuffer(8);
    let done = () => {};
    const stopped = new Promise<void>((r) => (done = r));
    const m: Member = {
      index: i,
      worker,
      waker: new Waker(),
      mailbox: new Int32Array(mailboxMemory),
      v4,
      v6,
      stopped,
      done: () => done(),
      visit: (kind, from, data, extra, seq) => this.#entry?.(m, kind, from, data, extra, seq),
    };
    this.#members.push(m);
    return new Promise<void>((resolve, reject) => {
      let starting = true;
      const timer = setTimeout(() => {
        starting = false;
        reject(new Error(`${role.name} Worker ${i} did not start within ${START_TIMEOUT_MS} ms`));
      }, START_TIMEOUT_MS);
      worker.onmessage = (e: MessageEvent<FromPoolWorker>) => {
        const msg = e.data;
        switch (msg.op) {
          case "ready":
            if (starting) {
              starting = false;
              clearTimeout(timer);
              resolve();
            }
            return;
          case "up":
            this.#up(m, msg.buf, msg.first, msg.seq, msg.counts);
            return;
          case "log":
            role.logger.limited(
              `${role.prefix} ${msg.event} ${i}`,
              60_000,
              "warn",
              msg.event,
              msg.fields,
            );
            return;
          case "drop": {
            // As core/control.ts logs its own drops: once a minute per reason and source.
            const peer = formatPeer({ address: msg.address, port: msg.port });
            if (msg.reason === "rate-limited") {
              role.logger.limited(
                `${msg.reason} ${msg.address}`,
                60_000,
                "warn",
                "control-dropped",
                {
                  reason: msg.reason,
                  peer,
                },
              );
            } else role.dropped?.(msg.reason, msg.address, peer);
            return;
          }
          case "stopped":
            m.done();
            if (starting) {
              starting = false;
              clearTimeout(timer);
              reject(new Error(`${role.name} Worker ${i} refused to start: ${msg.error}`));
            } else if (this.#closing === undefined) this.#died(i, msg.error ?? "stopped");
            return;
        }
      };
      worker.onerror = (e: ErrorEvent) => {
        e.preventDefault();
        m.done();
        if (starting) {
          starting = false;
          clearTimeout(timer);
          reject(new Error(`${role.name} Worker ${i}: ${e.message}`));
        } else if (this.#closing === undefined) this.#died(i, e.message);
      };
      this.post(
        m,
        role.init({
          op: "init",
          index: i,
          fds: { v4: v4?.fd ?? -1, v6: v6?.fd ?? -1 },
          wakeFd: m.waker.fd,
          mailbox: mailboxMemory,
          acks: this.#acks.buffer as SharedArrayBuffer,
        }, m),
      );
    });
  }

  /** Posts `msg` to Worker `m` and wakes it. */
  post(m: PoolMember, msg: ToWorker | PoolStop): void {
    m.worker.postMessage(msg);
    Atomics.add(m.mailbox, 0, 1);
    m.waker.wake();
  }

  /** Posts `msg` to every Worker. */
  postAll(msg: ToWorker): void {
    for (const m of this.#members) this.post(m, msg);
  }

  #died(i: number, why: string): void {
    const role = this.#role;
    role.logger.error(`${role.prefix}-worker-died`, { worker: i, error: why });
    reportError(new Error(`${role.name} Worker ${i} died: ${why}`));
  }

  /** Handles what Worker `m` handed over, then acknowledges it. */
  #up(
    m: Member,
    buf: ArrayBuffer | undefined,
    first: number,
    seq: number,
    counts: Float64Array | undefined,
  ): void {
    const role = this.#role;
    if (counts !== undefined) role.counts?.(m.index, counts);
    if (buf !== undefined && this.#entry !== undefined && this.#closing === undefined) {
      this.#reader.read(buf, first, m.visit);
    }
    Atomics.store(this.#acks, m.index, seq);
    role.acked?.(m);
  }

  /** Where handed-over entries go (set once the main thread's parts exist). */
  attach(entry: PoolEntry): void {
    this.#entry = entry;
  }

  /** The bound port. */
  get port(): number {
    return this.#port;
  }

  /** Number of Workers. */
  get size(): number {
    return this.#members.length;
  }

  /**
   * The main thread's ControlPlane transport: it sends on the first
   * Worker's sockets; what it receives comes through {@link attach}.
   */
  readonly transport: ControlTransportFactory = (_address, _port, hooks: TransportHooks) => {
    const first = this.#members[0];
    this.#queue = new SendQueue(first?.v4, first?.v6, hooks.failed);
    const queue = this.#queue;
    const t: ControlTransport = {
      address: this.#role.address,
      port: this.#port,
      send: (bytes, to) => queue.send(bytes, to),
      rebind: () => Promise.reject(new Error(this.#role.rebindError)),
      close: () => this.close(),
    };
    return Promise.resolve(t);
  };

  /** Stops the Workers (each within 3 s), then closes the sockets. */
  close(): Promise<void> {
    this.#closing ??= this.#stop();
    return this.#closing;
  }

  /**
   * Flushes the main thread's sends, asks each Worker to stop, waits for
   * them at most {@link STOP_TIMEOUT_MS}, terminates them and closes their
   * wakers, then the sockets.
   */
  async #stop(): Promise<void> {
    this.#queue?.flush();
    for (const m of this.#members) this.post(m, { op: "stop" });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<void>((r) => (timer = setTimeout(r, STOP_TIMEOUT_MS)));
    await Promise.race([Promise.all(this.#members.map((m) => m.stopped)), late]);
    clearTimeout(timer);
    for (const m of this.#members) {
      m.worker.terminate();
      m.waker.close();
    }
    for (const s of this.#sockets) s.close();
  }
}
