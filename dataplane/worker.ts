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
 * slots are sized from `tunMtu` ({@link slotSizeFor}).
 *
 * Offloads (`init.offloads`, on unless false): a TUN with a virtio-net
 * header is asked for checksum, TSO and USO offloads; its reads then bring
 * GSO super-packets, cut into whole segments (segment.ts) before the
 * engine sees them. Runs of equal segments to one RLOC leave in one UDP
 * GSO send. An xtr turns UDP GRO on on its sockets, reads datagrams into
 * 64 KiB slots, decapsulates each datagram of a slot ({@link Engine.etrAt})
 * and writes the inner packets through a {@link Coalescer}, which merges
 * in-order TCP segments into one TUN write. What the kernel refuses is
 * left out, and the `ready` message says what was had. One of several
 * Workers (`init.spread`) keys its GSO runs by inner flow (spread.ts), so
 * that a GSO send reaches the receiver's Worker of that flow whole. Control messages (the contract in
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

import type { FromWorker, OffloadReport, ToWorker } from "./api.ts";
import { MAX_SLOT_SIZE, PacketBatch } from "../ffi/batch.ts";
import { PollSet } from "../ffi/poll.ts";
import { UdpSocket } from "../ffi/udp.ts";
import { offloadNames, Tun } from "../ffi/tun.ts";
import {
  EAGAIN,
  EIO,
  HOST_LE,
  pinThread,
  POLLNVAL,
  POLLOUT,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  TUN_F_TSO_ECN,
  TUN_F_USO4,
  TUN_F_USO6,
} from "../ffi/libc.ts";
import { isIPv4 } from "../wire/ip_text.ts";
import {
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_NONE,
  vnetCsumOffset,
  vnetCsumStart,
  vnetGsoSize,
} from "../wire/virtio_net.ts";
import { Segmenter } from "./segment.ts";
import { flowSpreadHash } from "./spread.ts";
import {
  Coalescer,
  TUN_MERGE_TCP,
  TUN_MERGE_UDP,
  TUN_VNET,
  type TunWriteSink,
} from "./coalesce.ts";
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
  COUNTER_NAMES,
  D_NO_SOCKET,
  D_SEND_BUFFER,
  Engine,
  HEADROOM,
  slotSizeFor,
} from "./engine.ts";

/** Index of the offload counters (declared in core/metrics.ts). */
const C_TUN_READ_GSO = COUNTER_NAMES.indexOf("tun-read-gso");
const C_TUN_GSO_SEGMENTS = COUNTER_NAMES.indexOf("tun-gso-segments");
const C_TUN_WRITTEN_GSO = COUNTER_NAMES.indexOf("tun-written-gso");
const C_TUN_MERGED = COUNTER_NAMES.indexOf("tun-merged");
const C_UDP_GSO_SENDS = COUNTER_NAMES.indexOf("udp-gso-sends");
const C_UDP_GSO_FALLBACKS = COUNTER_NAMES.indexOf("udp-gso-fallbacks");
const C_UDP_GRO_DATAGRAMS = COUNTER_NAMES.indexOf("udp-gro-datagrams");
const C_MERGE_BAD_CHECKSUMS = COUNTER_NAMES.indexOf("merge-bad-checksums");
const D_BAD_OFFLOAD = COUNTER_NAMES.indexOf("dropped:bad-offload");
const D_TOO_BIG = COUNTER_NAMES.indexOf("dropped:too-big");

/** The TUN offloads asked for: checksum, TSO (with ECN) and USO. */
const TUN_OFFLOADS = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_USO4 |
  TUN_F_USO6;

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
  /**
   * The offloads in use (see the module notes): UDP GSO per socket, and
   * whether received datagrams go through 64 KiB slots and a
   * {@link Coalescer} (xtr). TUN offloads are what each Tun says. Absent:
   * none.
   */
  readonly offloads?: {
    readonly gso4: boolean;
    readonly gso6: boolean;
    readonly coalesce: boolean;
  };
  /**
   * One of several Workers spread by flow (`init.spread`): a UDP GSO send
   * carries one flow only (runs keyed by {@link flowSpreadHash}).
   */
  readonly spread?: boolean;
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

/** A data socket and whether it sends with UDP GSO (turned off for good on EIO). */
interface Sender {
  readonly socket: UdpSocket | undefined;
  gso: boolean;
}

/**
 * Sends slots `[start, start+n)` of `b` like {@link sendAll}, but each run
 * of consecutive slots to one RLOC with equal lengths (the last may be
 * shorter) in one UDP GSO send when the socket may. A run the kernel
 * refuses goes again one datagram at a time (EINVAL: a segment bigger than
 * the path MTU, for the kernel to fragment); on EIO (the route's device
 * takes no checksum offload) the socket sends without GSO from then on.
 */
function sendRuns(
  e: Engine,
  g: Sender,
  out: PollSet,
  b: PacketBatch,
  start: number,
  n: number,
): void {
  const s = g.socket;
  if (n <= 0) return;
  if (s === undefined || !g.gso) {
    sendAll(e, s, out, b, start, n);
    return;
  }
  const end = start + n;
  let i = start;
  let waits = 0;
  while (i < end) {
    const k = s.sendGso(b, i, end - i);
    if (k > 0) {
      e.add(C_SENT, k);
      e.addBytes(C_SENT_BYTES, b, i, k);
      let runs = 0;
      for (let m = 0, c = 0; c < k; m++) {
        const r = b.gsoRun[m]!;
        if (r > 1) runs++;
        c += r;
      }
      e.add(C_UDP_GSO_SENDS, runs);
      i += k;
    } else if (k === 0) {
      if (waits++ >= 4) {
        e.add(D_SEND_BUFFER, end - i);
        return;
      }
      out.set(0, s.fd, POLLOUT);
      out.poll(1);
    } else {
      const run = s.gsoFailedRun;
      if (run > 1) {
        e.add(C_UDP_GSO_FALLBACKS, 1);
        if (s.errno === EIO) g.gso = false;
        sendAll(e, s, out, b, i, run);
        i += run;
      } else {
        e.add(C_SEND_ERRORS, 1);
        i++;
      }
    }
  }
}

/** Keys slots `[0, n)` of `b` (encapsulated: the UDP payloads) by their inner flow for GSO runs. */
function keyRuns(b: PacketBatch, n: number): void {
  const bytes = b.bytes;
  for (let i = 0; i < n; i++) b.runKey[i] = flowSpreadHash(bytes, b.offset[i]!, b.length[i]!) >>> 0;
}

/**
 * Reads TUN `dev` (one with offloads) into `b` until it has nothing more
 * or `b.slots × DRAIN_ROUNDS` reads were made: a plain packet takes a slot
 * (its partial checksum finished), a super-packet as many as it has
 * segments (cut by `seg` from the spill area). `after(count)` handles each
 * full batch and the last one.
 */
function drainTunOffloaded(
  e: Engine,
  dev: Tun,
  b: PacketBatch,
  seg: Segmenter,
  after: (count: number) => void,
): void {
  const slots = b.slots;
  const cap = b.capacity;
  const spill = b.spillOffset;
  const bytes = b.bytes;
  const vnet = dev.vnet;
  let i = 0;
  for (let r = 0; r < slots * DRAIN_ROUNDS; r++) {
    if (i === slots) {
      after(i);
      i = 0;
    }
    const n = dev.readSlot(b, i);
    if (n < 0) {
      if (dev.errno !== EAGAIN) e.add(C_READ_ERRORS, 1);
      break;
    }
    e.add(C_TUN_READ, 1);
    e.add(C_TUN_READ_BYTES, n);
    const type = vnet[1]!;
    const csumStart = vnetCsumStart(vnet, 0, HOST_LE);
    if (type === VIRTIO_NET_HDR_GSO_NONE) {
      if (n >= cap) e.add(D_TOO_BIG, 1);
      else if (
        (vnet[0]! & VIRTIO_NET_HDR_F_NEEDS_CSUM) !== 0 &&
        !seg.complete(i, csumStart, vnetCsumOffset(vnet, 0, HOST_LE))
      ) e.add(D_BAD_OFFLOAD, 1);
      else seg.follows[i++] = 0;
      continue;
    }
    // A super-packet: its head in slot i, the rest in the spill area; make it whole there.
    bytes.copyWithin(spill, b.offset[i]!, b.offset[i]! + (n < cap ? n : cap));
    const gso = vnetGsoSize(vnet, 0, HOST_LE);
    const k = seg.plan(spill, n, type, gso, csumStart);
    if (k < 0) {
      e.add(D_BAD_OFFLOAD, 1);
      continue;
    }
    e.add(C_TUN_READ_GSO, 1);
    e.add(C_TUN_GSO_SEGMENTS, k);
    for (let first = 0; first < k;) {
      if (i === slots) {
        after(i);
        i = 0;
      }
      const c = k - first < slots - i ? k - first : slots - i;
      seg.split(spill, gso, csumStart, i, first, c);
      i += c;
      first += c;
    }
  }
  if (i > 0) after(i);
}

/**
 * Receives on `s` into `rx` (64 KiB slots: UDP GRO may put many datagrams
 * in one) until nothing is waiting or DRAIN_ROUNDS batches were taken;
 * decapsulates every datagram ({@link Engine.etrAt}) and hands the inner
 * packets to `co`, flushed through `sink` after each batch.
 */
function receiveCoalesced(
  e: Engine,
  s: UdpSocket,
  rx: PacketBatch,
  co: Coalescer,
  sink: TunWriteSink,
): void {
  for (let r = 0; r < DRAIN_ROUNDS; r++) {
    const n = s.recvmmsg(rx);
    if (n <= 0) {
      if (n < 0) e.add(C_READ_ERRORS, 1);
      break;
    }
    e.add(C_BATCHES, 1);
    let datagrams = 0;
    let bytes = 0;
    for (let i = 0; i < n; i++) {
      const o = rx.offset[i]!;
      const len = rx.length[i]!;
      const gs = rx.gsoSize[i]!;
      const g = gs > 0 && gs < len ? gs : len;
      const segs = g === len ? 1 : Math.ceil(len / g);
      datagrams += segs;
      bytes += len;
      if (segs > 1) e.add(C_UDP_GRO_DATAGRAMS, segs);
      if (co.pending + segs > co.capacity) co.flush(sink);
      if (rx.truncated[i] !== 0 || len === 0) {
        e.etrAt(rx, i, o, len); // counted as truncated (or too short)
        continue;
      }
      for (let p = o; p < o + len; p += g) {
        const tag = e.etrAt(rx, i, p, o + len - p < g ? o + len - p : g);
        if (tag >= 0) co.add(tag, rx.offset[i]!, rx.length[i]!);
      }
    }
    e.add(C_UDP_RECEIVED, datagrams);
    e.add(C_UDP_RECEIVED_BYTES, bytes);
    co.flush(sink);
    if (n < rx.slots) break;
  }
}

/** How a {@link Coalescer} writes to `dev`: with its header, merging what its offloads allow. */
function tunMode(dev: Tun): number {
  if (!dev.vnetHdr) return 0;
  let m = TUN_VNET;
  const o = dev.offloads;
  if ((o & (TUN_F_TSO4 | TUN_F_TSO6)) === (TUN_F_TSO4 | TUN_F_TSO6)) m |= TUN_MERGE_TCP;
  if ((o & (TUN_F_USO4 | TUN_F_USO6)) === (TUN_F_USO4 | TUN_F_USO6)) m |= TUN_MERGE_UDP;
  return m;
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
  const tunsAll: (Tun | undefined)[] = [tun, ...extra];
  const slotSize = io.slotSize ?? slotSizeFor(0);
  const anyTunOffload = tunsAll.some((t) => t !== undefined && t.offloads !== 0);
  const batch = new PacketBatch({
    slots,
    slotSize,
    headroom: HEADROOM,
    wasm: true, // checksums of segments summed in WebAssembly SIMD
    // The rest of a 64 KiB super-packet past a slot.
    ...(anyTunOffload ? { spill: ((slotSize - HEADROOM + 65536) + 7) & ~7 } : {}),
  });
  const seg = new Segmenter(batch);
  const off = io.offloads;
  const tx4: Sender = { socket: udp4, gso: off?.gso4 ?? false };
  const tx6: Sender = { socket: udp6, gso: off?.gso6 ?? false };
  // Several Workers spread by flow: a GSO send must not carry another Worker's flow.
  const keyed = io.spread === true && (tx4.gso || tx6.gso);
  batch.gsoByKey = keyed;
  // xtr with offloads: received datagrams into 64 KiB slots, TUN writes through a Coalescer.
  const rx = off?.coalesce
    ? new PacketBatch({ slots, slotSize: MAX_SLOT_SIZE, headroom: HEADROOM, wasm: true })
    : undefined;
  const co = rx !== undefined ? new Coalescer(rx, slots * 128) : undefined;
  tunsAll.forEach((t, k) => {
    if (t !== undefined) co?.setMode(k, tunMode(t));
  });
  let badChecksumsAt = 0;
  const sink: TunWriteSink = (t, iov, count, packets) => {
    const dev = tunsAll[t];
    if (dev === undefined) return;
    if (dev.writeIovecs(iov, count) < 0) engine.add(C_TUN_WRITE_ERRORS, packets);
    else {
      engine.add(C_TUN_WRITTEN, packets);
      if (packets > 1) {
        engine.add(C_TUN_WRITTEN_GSO, 1);
        engine.add(C_TUN_MERGED, packets - 1);
      }
    }
  };
  // Poll slots: 0 the main TUN, 1 and 2 the sockets, 3.. the instance TUNs.
  const ps = new PollSet([
    tun?.fd ?? -1,
    udp4?.fd ?? -1,
    udp6?.fd ?? -1,
    ...extra.map((t) => t.fd),
  ]);
  const tuns = tunsAll;
  const tunWriteErrorsAt = tuns.map((t) => t?.writeErrors ?? 0);
  const out = new PollSet([-1], POLLOUT);
  /**
   * After `count` packets of TUN `t` are in the batch: encapsulate (segments
   * of one super-packet as `seg.follows` says, when `split`), send, answer ICMP.
   */
  const afterTunRead = (t: number, dev: Tun, count: number, split: boolean): void => {
    batch.count = count;
    engine.add(C_BATCHES, 1);
    try {
      engine.fromTun(batch, t, split ? seg.follows : undefined);
    } catch {
      // A bug, not a bad packet (those are counted and dropped): lose the batch, go on.
      engine.add(C_INTERNAL_ERRORS, 1);
      return;
    }
    if (keyed) keyRuns(batch, engine.n4 + engine.n6);
    sendRuns(engine, tx4, out, batch, 0, engine.n4);
    sendRuns(engine, tx6, out, batch, engine.n4, engine.n6);
    sendAll(engine, natRaw, out, batch, engine.n4 + engine.n6, engine.nNat);
    const icmpAt = engine.n4 + engine.n6 + engine.nNat;
    writeIcmp(engine, dev, batch, icmpAt, engine.nIcmp, t, tunWriteErrorsAt);
  };
  const afterTun = tuns.map((dev, t) =>
    dev === undefined ? () => {} : (count: number) => afterTunRead(t, dev, count, true)
  );
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
        if (dev.offloads !== 0) {
          drainTunOffloaded(engine, dev, batch, seg, afterTun[t]!);
          continue;
        }
        for (let r = 0; r < DRAIN_ROUNDS; r++) {
          const n = dev.readBatch(batch);
          if (n === 0) {
            if (dev.errno !== EAGAIN) engine.add(C_READ_ERRORS, 1);
            break;
          }
          engine.add(C_TUN_READ, n);
          engine.addBytes(C_TUN_READ_BYTES, batch, 0, n);
          afterTunRead(t, dev, n, false);
          if (n < slots) break;
        }
      }
      for (let k = 1; k <= 2; k++) {
        const s = k === 1 ? udp4 : udp6;
        if (s === undefined || !ps.readable(k)) continue;
        if (co !== undefined && rx !== undefined) {
          receiveCoalesced(engine, s, rx, co, sink);
          engine.add(C_MERGE_BAD_CHECKSUMS, co.badChecksums - badChecksumsAt);
          badChecksumsAt = co.badChecksums;
          continue;
        }
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
            if (keyed) keyRuns(batch, engine.n4 + engine.n6);
            sendRuns(engine, tx4, out, batch, 0, engine.n4);
            sendRuns(engine, tx6, out, batch, engine.n4, engine.n6);
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

/**
 * Asks for the offloads (`want`), or turns them off: TUN offloads on every
 * TUN with a virtio-net header, UDP GSO on both sockets (unless not
 * `udpGso`), UDP GRO on both when `xtr`. Returns what the loop uses and the
 * report for `ready`.
 */
function setUpOffloads(
  tuns: readonly Tun[],
  udp4: UdpSocket | undefined,
  udp6: UdpSocket | undefined,
  want: boolean,
  udpGso: boolean,
  xtr: boolean,
): { use: NonNullable<LoopIo["offloads"]>; report: OffloadReport } {
  const names: string[] = [];
  const refused = new Set<string>();
  const errors: string[] = [];
  for (const t of tuns) {
    if (!t.vnetHdr) {
      names.push("no virtio-net header");
      continue;
    }
    try {
      const got = t.setOffloads(want ? TUN_OFFLOADS : 0);
      names.push(offloadNames(got));
      const missing = want ? TUN_OFFLOADS & ~got : 0;
      if (missing !== 0) { for (const n of offloadNames(missing).split(" ")) refused.add(n); }
    } catch (e) {
      names.push("none");
      errors.push(`TUN offloads: ${describe(e)}`);
    }
  }
  const gso4 = want && udpGso && udp4 !== undefined && udp4.gsoAvailable();
  const gso6 = want && udpGso && udp6 !== undefined && udp6.gsoAvailable();
  let gro = false;
  if (want && xtr) {
    for (const s of [udp4, udp6]) {
      if (s === undefined) continue;
      try {
        s.enableGro();
        gro = true;
      } catch (e) {
        errors.push(`UDP GRO (${s.family}): ${describe(e)}`);
      }
    }
  }
  return {
    use: { gso4, gso6, coalesce: want && xtr },
    report: {
      tuns: names,
      refused: [...refused],
      udpGso: { ipv4: gso4, ipv6: gso6 },
      udpGro: gro,
      errors,
    },
  };
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
    let report: OffloadReport;
    try {
      if (init.mode === "xtr" && init.tunFd < 0) throw new Error("xtr mode needs a TUN fd");
      if (init.udp4Fd < 0 && init.udp6Fd < 0) throw new Error("no data socket");
      if (init.cpu !== undefined) pinThread(init.cpu);
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
      const o = setUpOffloads(
        [...(io.tun !== undefined ? [io.tun] : []), ...(io.instanceTuns ?? [])],
        io.udp4,
        io.udp6,
        init.offloads !== false,
        init.udpGso !== false,
        init.mode === "xtr",
      );
      io = { ...io, offloads: o.use, spread: init.spread === true };
      report = o.report;
      for (const m of early.splice(0)) engine.control(m);
    } catch (e) {
      post({ op: "stopped", error: describe(e) });
      return;
    }
    const e = engine;
    post({ op: "ready", offloads: report });
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
