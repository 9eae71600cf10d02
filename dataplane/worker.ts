/**
 * The data-plane Worker of a tunnel router (xtr, mn, rtr): batched,
 * synchronous I/O on the TUN(s) and the data UDP sockets around the
 * {@link Engine} (engine.ts), as docs/architecture.md describes.
 *
 * On `init` it wraps the fds the main thread opened (it never closes
 * them), then {@link routineDataPlane} loops: `poll()` with a short
 * timeout on the TUNs and the UDP sockets, drain each ready fd with
 * `readBatch` / `recvmmsg` until EAGAIN (bounded rounds, for fairness),
 * send with `sendmmsg` / TUN writes (and write the ICMP too-big errors the
 * engine made of packets read from a TUN back to that TUN). The batch
 * slots are sized from `tunMtu` ({@link slotSizeFor}). Control messages (the contract in
 * api.ts) are handled between polls: the main thread bumps a shared
 * counter on every post, and the loop yields to the event loop (a
 * `setTimeout(0)` round trip, about 2 ms: only timers let a Worker's host
 * messages in) only when that counter is ahead of the messages handled,
 * or once a second anyway (every 50 ms without a counter). Counters are
 * posted every second.
 *
 * The messages between mod.ts and this Worker are the contract's plus two
 * private ones ({@link WorkerIn}): `init` carries the shared wake-up
 * counter, and `report` asks for the counters at once.
 *
 * @module
 */

import type { FromWorker, ToWorker } from "./api.ts";
import { PacketBatch } from "../ffi/batch.ts";
import { PollSet } from "../ffi/poll.ts";
import { UdpSocket } from "../ffi/udp.ts";
import { Tun } from "../ffi/tun.ts";
import { EAGAIN, POLLNVAL, POLLOUT } from "../ffi/libc.ts";
import { isIPv4 } from "../wire/ip_text.ts";
import {
  C_BATCHES,
  C_CONTROL_ERRORS,
  C_INTERNAL_ERRORS,
  C_READ_ERRORS,
  C_SEND_ERRORS,
  C_SENT,
  C_SENT_BYTES,
  C_TUN_READ,
  C_TUN_READ_BYTES,
  C_TUN_WRITE_ERRORS,
  C_TUN_WRITTEN,
  C_UDP_RECEIVED,
  C_UDP_RECEIVED_BYTES,
  D_NO_SOCKET,
  D_SEND_BUFFER,
  Engine,
  HEADROOM,
  slotSizeFor,
} from "./engine.ts";

// ---------------------------------------------------------------------------
// Private messages between mod.ts and this Worker.

/** The contract's `init`. */
export type InitMessage = Extract<ToWorker, { readonly op: "init" }>;

/** `init` as mod.ts sends it: with the shared wake-up counter. */
export type WorkerInit = InitMessage & {
  /**
   * Int32 at index 0: messages posted so far (init included), bumped by
   * the main thread after every post. The loop yields to the event loop
   * while it is ahead of the messages handled.
   */
  readonly wake?: SharedArrayBuffer;
};

/** Every message the Worker accepts. */
export type WorkerIn =
  | Exclude<ToWorker, { readonly op: "init" }>
  | WorkerInit
  /** Post the counters now (tests, status pages), besides the one-second ones. */
  | { readonly op: "report" };

// ---------------------------------------------------------------------------
// The Worker loop.

/** Batches read per fd before the others get their turn. */
const DRAIN_ROUNDS = 16;
/** Without a wake counter, the loop yields to the event loop this often (ms). */
const YIELD_MS = 50;
/** With a wake counter, it still yields this often (ms), in case a post was not counted. */
const YIELD_MAX_MS = 1000;
/** Counters are posted this often (ms). */
const COUNTERS_MS = 1000;

/** What the loop runs on. */
export interface LoopIo {
  /** The TUN (xtr), or undefined (rtr). */
  readonly tun: Tun | undefined;
  /** The TUNs of instances with their own (xtr; see `Engine` `instanceIids`). */
  readonly instanceTuns?: readonly Tun[];
  /** The IPv4 data socket, or undefined. */
  readonly udp4: UdpSocket | undefined;
  /** The IPv6 data socket, or undefined. */
  readonly udp6: UdpSocket | undefined;
  /** rtr: the raw IPv4 socket for xTRs behind a NAT (Engine `natSourcePort`), or undefined. */
  readonly natRaw?: UdpSocket;
  /** Poll timeout in ms. */
  readonly pollMs: number;
  /** Packets per batch. */
  readonly batch: number;
  /** Bytes per batch slot, headroom included (default: {@link slotSizeFor} of 0, 4,096). */
  readonly slotSize?: number;
}

/** Shared state of the loop and the message handler. */
export interface LoopControl {
  /** Set to leave the loop. */
  stopping: boolean;
  /** Messages handled so far (compared with the wake counter). */
  handled: number;
  /** Int32 view of the wake counter, or undefined (then the loop yields every 50 ms). */
  readonly wake: Int32Array | undefined;
  /** Yields to the event loop so that posted messages get handled (a timer round trip). */
  readonly yieldNow: () => Promise<void>;
}

/** Sends slots `[start, start+n)` of `b` on `s`; counts what was sent, failed or left behind. */
function sendAll(
  e: Engine,
  s: UdpSocket | undefined,
  out: PollSet,
  b: PacketBatch,
  start: number,
  n: number,
): void {
  if (n <= 0) return;
  if (s === undefined) {
    e.add(D_NO_SOCKET, n);
    return;
  }
  const end = start + n;
  let i = start;
  let waits = 0;
  while (i < end) {
    const k = s.sendmmsg(b, i, end - i);
    if (k > 0) {
      e.add(C_SENT, k);
      e.addBytes(C_SENT_BYTES, b, i, k);
      i += k;
    } else if (k === 0) {
      // Socket buffer full: wait a little for room, then give up on the rest.
      if (waits++ >= 4) {
        e.add(D_SEND_BUFFER, end - i);
        return;
      }
      out.set(0, s.fd, POLLOUT);
      out.poll(1);
    } else {
      e.add(C_SEND_ERRORS, 1);
      i++;
    }
  }
}

/** Writes the decapsulated slots of TUN number `t` (all of them without `tags`); counts. */
function writeTun(
  e: Engine,
  dev: Tun,
  b: PacketBatch,
  tags: Uint8Array | undefined,
  t: number,
  errorsAt: number[],
): void {
  e.add(C_TUN_WRITTEN, dev.writeBatch(b, 0, b.count, tags, t));
  e.add(C_TUN_WRITE_ERRORS, dev.writeErrors - errorsAt[t]!);
  errorsAt[t] = dev.writeErrors;
}

/** Writes slots `[start, start+n)` (ICMP errors the engine made) back to TUN `t`; counts failures. */
function writeIcmp(
  e: Engine,
  dev: Tun,
  b: PacketBatch,
  start: number,
  n: number,
  t: number,
  errorsAt: number[],
): void {
  if (n <= 0) return;
  dev.writeBatch(b, start, n);
  e.add(C_TUN_WRITE_ERRORS, dev.writeErrors - errorsAt[t]!);
  errorsAt[t] = dev.writeErrors;
}

/**
 * The data-plane loop: poll, drain, process, send; handles control
 * messages between polls (see the module documentation). Resolves when
 * `ctl.stopping` is set; throws on a fatal error (an fd closed under it,
 * a failed poll).
 */
export async function routineDataPlane(
  engine: Engine,
  io: LoopIo,
  ctl: LoopControl,
  post: (m: FromWorker) => void,
): Promise<void> {
  const { tun, udp4, udp6, natRaw } = io;
  const extra = io.instanceTuns ?? [];
  const slots = io.batch;
  const batch = new PacketBatch({
    slots,
    slotSize: io.slotSize ?? slotSizeFor(0),
    headroom: HEADROOM,
  });
  // Poll slots: 0 the main TUN, 1 and 2 the sockets, 3.. the instance TUNs.
  const ps = new PollSet([
    tun?.fd ?? -1,
    udp4?.fd ?? -1,
    udp6?.fd ?? -1,
    ...extra.map((t) => t.fd),
  ]);
  const tuns: (Tun | undefined)[] = [tun, ...extra];
  const tunWriteErrorsAt = tuns.map((t) => t?.writeErrors ?? 0);
  const out = new PollSet([-1], POLLOUT);
  let lastYield = performance.now();
  let nextCounters = lastYield + COUNTERS_MS;
  while (!ctl.stopping) {
    const ready = ps.poll(io.pollMs);
    const now = performance.now();
    engine.now = now;
    if (ready > 0) {
      for (let k = 0; k < 3 + extra.length; k++) {
        if ((ps.revents(k) & POLLNVAL) !== 0) throw new Error(`fd ${ps.fd(k)} is not open`);
      }
      for (let t = 0; t < tuns.length; t++) {
        const dev = tuns[t];
        if (dev === undefined || !ps.readable(t === 0 ? 0 : t + 2)) continue;
        for (let r = 0; r < DRAIN_ROUNDS; r++) {
          const n = dev.readBatch(batch);
          if (n === 0) {
            if (dev.errno !== EAGAIN) engine.add(C_READ_ERRORS, 1);
            break;
          }
          engine.add(C_TUN_READ, n);
          engine.addBytes(C_TUN_READ_BYTES, batch, 0, n);
          engine.add(C_BATCHES, 1);
          try {
            engine.fromTun(batch, t);
          } catch {
            // A bug, not a bad packet (those are counted and dropped): lose the batch, go on.
            engine.add(C_INTERNAL_ERRORS, 1);
            continue;
          }
          sendAll(engine, udp4, out, batch, 0, engine.n4);
          sendAll(engine, udp6, out, batch, engine.n4, engine.n6);
          sendAll(engine, natRaw, out, batch, engine.n4 + engine.n6, engine.nNat);
          const icmpAt = engine.n4 + engine.n6 + engine.nNat;
          writeIcmp(engine, dev, batch, icmpAt, engine.nIcmp, t, tunWriteErrorsAt);
          if (n < slots) break;
        }
      }
      for (let k = 1; k <= 2; k++) {
        const s = k === 1 ? udp4 : udp6;
        if (s === undefined || !ps.readable(k)) continue;
        for (let r = 0; r < DRAIN_ROUNDS; r++) {
          const n = s.recvmmsg(batch);
          if (n <= 0) {
            if (n < 0) engine.add(C_READ_ERRORS, 1);
            break;
          }
          engine.add(C_UDP_RECEIVED, n);
          engine.addBytes(C_UDP_RECEIVED_BYTES, batch, 0, n);
          engine.add(C_BATCHES, 1);
          try {
            engine.fromUdp(batch);
          } catch {
            engine.add(C_INTERNAL_ERRORS, 1);
            continue;
          }
          if (engine.mode === "rtr") {
            sendAll(engine, udp4, out, batch, 0, engine.n4);
            sendAll(engine, udp6, out, batch, engine.n4, engine.n6);
            sendAll(engine, natRaw, out, batch, engine.n4 + engine.n6, engine.nNat);
          } else if (extra.length === 0) {
            if (tun !== undefined) writeTun(engine, tun, batch, undefined, 0, tunWriteErrorsAt);
          } else {
            for (let t = 0; t < tuns.length; t++) {
              const dev = tuns[t];
              if (dev !== undefined) {
                writeTun(engine, dev, batch, engine.tunTag, t, tunWriteErrorsAt);
              }
            }
          }
          if (n < slots) break;
        }
      }
    }
    if (now >= nextCounters) {
      nextCounters = now + COUNTERS_MS;
      post(engine.countersMessage());
    }
    const pending = ctl.wake === undefined
      ? now - lastYield >= YIELD_MS
      : Atomics.load(ctl.wake, 0) !== ctl.handled || now - lastYield >= YIELD_MAX_MS;
    if (pending) {
      await ctl.yieldNow();
      lastYield = performance.now();
    }
  }
}

// ---------------------------------------------------------------------------
// Worker glue.

/** The worker's global scope (typed here: the project compiles with the window lib). */
interface WorkerScope {
  postMessage(message: unknown): void;
  onmessage: ((m: MessageEvent<WorkerIn>) => void) | null;
}

function isWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function" &&
    globalThis instanceof
      ((globalThis as unknown as { WorkerGlobalScope: new () => unknown }).WorkerGlobalScope);
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

/** Runs the Worker side: waits for init, then loops until stop. */
function serveWorker(scope: WorkerScope): void {
  let engine: Engine | undefined;
  const early: ToWorker[] = [];
  const ctl: LoopControl & { wake: Int32Array | undefined } = {
    stopping: false,
    handled: 0,
    wake: undefined,
    // A timer round trip: host messages are delivered to a Worker only when its
    // event loop runs timers (a MessageChannel round trip does not let them in).
    yieldNow: () => new Promise<void>((r) => setTimeout(r, 0)),
  };
  const post = (m: FromWorker) => scope.postMessage(m);
  let sockets: { udp4: UdpSocket | undefined; udp6: UdpSocket | undefined } | undefined;

  const start = (init: WorkerInit) => {
    if (init.wake !== undefined) ctl.wake = new Int32Array(init.wake, 0, 1);
    let io: LoopIo;
    try {
      if (init.mode === "xtr" && init.tunFd < 0) throw new Error("xtr mode needs a TUN fd");
      if (init.udp4Fd < 0 && init.udp6Fd < 0) throw new Error("no data socket");
      const mtu = init.tunMtu ?? 0;
      if (!Number.isInteger(mtu) || mtu < 0 || mtu > 65535) {
        throw new Error(`tunMtu must be an integer in 0..65535: ${mtu}`);
      }
      const slots = Math.max(1, Math.min(1024, Math.floor(init.batch) || 64));
      io = {
        tun: init.mode === "xtr" && init.tunFd >= 0 ? Tun.fromFd(init.tunFd) : undefined,
        instanceTuns: init.mode === "xtr"
          ? (init.instanceTuns ?? []).map((t) => Tun.fromFd(t.fd))
          : [],
        udp4: init.udp4Fd >= 0 ? UdpSocket.fromFd(init.udp4Fd) : undefined,
        udp6: init.udp6Fd >= 0 ? UdpSocket.fromFd(init.udp6Fd) : undefined,
        ...(init.natRawFd !== undefined && init.natRawFd >= 0
          ? { natRaw: UdpSocket.fromFd(init.natRawFd) }
          : {}),
        pollMs: Math.max(0, Math.min(1000, init.pollMs)),
        batch: slots,
        slotSize: slotSizeFor(mtu),
      };
      engine = new Engine({
        mode: init.mode,
        encapsulation: init.encapsulation,
        slots,
        ipv4: io.udp4 !== undefined,
        ipv6: io.udp6 !== undefined,
        post,
        ...(io.natRaw !== undefined ? { natSourcePort: init.natSourcePort ?? 0 } : {}),
        instanceIids: init.mode === "xtr" ? (init.instanceTuns ?? []).map((t) => t.iid) : [],
        ...(init.pathMtu !== undefined ? { pathMtu: init.pathMtu } : {}),
      });
      sockets = { udp4: io.udp4, udp6: io.udp6 };
      for (const m of early.splice(0)) engine.control(m);
    } catch (e) {
      post({ op: "stopped", error: describe(e) });
      return;
    }
    const e = engine;
    post({ op: "ready" });
    (async () => {
      let error: string | undefined;
      try {
        await routineDataPlane(e, io, ctl, post);
      } catch (err) {
        ctl.stopping = true;
        error = describe(err);
      }
      post(e.countersMessage());
      post(error === undefined ? { op: "stopped" } : { op: "stopped", error });
    })();
  };

  scope.onmessage = (m: MessageEvent<WorkerIn>) => {
    ctl.handled++;
    const msg = m.data;
    switch (msg.op) {
      case "init":
        if (engine === undefined) start(msg);
        return;
      case "stop":
        ctl.stopping = true;
        if (engine === undefined) post({ op: "stopped" });
        return;
      case "report":
        if (engine !== undefined) post(engine.countersMessage());
        return;
      case "send": {
        // Control plane datagrams from the data port (NAT traversal): rare.
        const s = isIPv4(msg.address) ? sockets?.udp4 : sockets?.udp6;
        if (engine === undefined) return;
        try {
          if (
            s === undefined || s.sendTo(msg.bytes, 0, msg.bytes.length, msg.address, msg.port) < 0
          ) {
            engine.add(C_SEND_ERRORS, 1);
          } else engine.add(C_SENT, 1);
        } catch {
          engine.add(C_CONTROL_ERRORS, 1);
        }
        return;
      }
      default:
        if (engine === undefined) early.push(msg);
        else engine.control(msg);
    }
  };
}

if (isWorker()) serveWorker(globalThis as unknown as WorkerScope);
