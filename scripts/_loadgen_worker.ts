/**
 * One sending and receiving thread of the control-plane load generator
 * (scripts/_loadgen.ts runs one or more of these Workers): its own UDP
 * socket, its own share of the window and of the prefixes, and batched
 * I/O through ffi/udp.ts (`sendmmsg`/`recvmmsg` over {@link PacketBatch},
 * `poll()` when there is nothing to do), so that one datagram costs a
 * fraction of a system call and no trip through an event loop.
 *
 * Every message is built and signed before the clock starts: ECM'd
 * Map-Requests whose nonce (and inner UDP checksum) is patched at send time,
 * Map-Registers signed once each (the HMAC covers the nonce, so a
 * registration is re-sent as it is and its Map-Notify is matched by the
 * prefix index in the nonce). Latencies go into a {@link Histogram} the
 * main thread merges.
 *
 * Also exports what the main thread and the tests need: the message
 * builders ({@link buildMessages}, {@link fillRequest}), the histogram, and
 * the types of the messages between the two.
 *
 * @module
 */

import { PacketBatch, PollSet, UdpSocket } from "../ffi/udp.ts";
import { ipv4ToU32 } from "../ffi/libc.ts";
import { ipAddress } from "../wire/address.ts";
import { HmacKey, KEY_ID_HMAC_SHA1_96, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import { emitEcm } from "../wire/ecm.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { ipv4FromBytes, ipv4ToBytes } from "../wire/ip_text.ts";
import { locatorRecord } from "../wire/locator.ts";

// ---------------------------------------------------------------------------
// Where things sit in the messages we build and read.

/** Map-Register, Map-Notify, Map-Request, Map-Reply: the nonce is bytes 4..11. */
const NONCE_OFFSET = 4;
/** ECM header (4) + IPv4 header (20) + UDP header (8): the inner Map-Request starts here. */
export const ECM_INNER_OFFSET = 32;
/** Inner UDP checksum: ECM header (4) + IPv4 header (20) + 6. */
const ECM_UDP_CHECKSUM = 30;
const TYPE_MAP_REPLY = 2;
const TYPE_MAP_NOTIFY = 4;
/** Map-Reply: record count at byte 3; first record's locator count at 12 + 4. */
const REPLY_RECORD_COUNT = 3;
const REPLY_FIRST_LOCATOR_COUNT = 16;

// ---------------------------------------------------------------------------
// Latency histogram.

/** Buckets of 1 µs up to 100 ms. */
const FINE_BUCKETS = 100_000;
/** Then buckets of 1 ms up to 10 s; one more for anything longer. */
const COARSE_BUCKETS = 9_900;
/** Length of a histogram's counts. */
export const HISTOGRAM_LENGTH = FINE_BUCKETS + COARSE_BUCKETS + 1;

/** Latencies in buckets (1 µs below 100 ms, 1 ms up to 10 s): mergeable across Workers. */
export class Histogram {
  /** Count per bucket. */
  readonly counts: Uint32Array<ArrayBuffer>;
  /** Samples recorded. */
  total = 0;
  /** Largest sample, ms. */
  max = 0;

  /** A histogram over `counts` (a fresh one when absent). */
  constructor(counts: Uint32Array<ArrayBuffer> = new Uint32Array(HISTOGRAM_LENGTH)) {
    if (counts.length !== HISTOGRAM_LENGTH) throw new RangeError("histogram: wrong length");
    this.counts = counts;
    for (let i = 0; i < counts.length; i++) this.total += counts[i]!;
  }

  /** Records one latency in milliseconds. */
  record(ms: number): void {
    const us = ms * 1000;
    let i: number;
    if (us < FINE_BUCKETS) i = us < 0 ? 0 : Math.floor(us);
    else i = Math.min(FINE_BUCKETS + Math.floor((us - FINE_BUCKETS) / 1000), HISTOGRAM_LENGTH - 1);
    this.counts[i]!++;
    this.total++;
    if (ms > this.max) this.max = ms;
  }

  /** Adds another histogram's counts into this one. */
  merge(o: Histogram): void {
    for (let i = 0; i < HISTOGRAM_LENGTH; i++) this.counts[i]! += o.counts[i]!;
    this.total += o.total;
    if (o.max > this.max) this.max = o.max;
  }

  /** The latency (ms, lower edge of its bucket) below which a share `q` of the samples fall. */
  quantile(q: number): number {
    if (this.total === 0) return 0;
    const want = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < HISTOGRAM_LENGTH; i++) {
      seen += this.counts[i]!;
      if (seen >= want) return i < FINE_BUCKETS ? i / 1000 : 100 + (i - FINE_BUCKETS);
    }
    return this.max;
  }
}

// ---------------------------------------------------------------------------
// Messages between the load generator's main thread and its Workers.

/** What a phase sends: negative or positive Map-Requests, or Map-Registers of key type 1 or 2. */
export type PhaseKind = "negative" | "positive" | "register-kt1" | "register-kt2";

/** Sites and keys, identical for every map-server measured. */
export interface Plan {
  /** Map-server address (IPv4) and port. */
  readonly target: string;
  readonly port: number;
  /** Address of this end (the ITR-RLOC of the Map-Requests). */
  readonly source: string;
  /** Datagrams per sendmmsg/recvmmsg. */
  readonly batch: number;
  /** /24s per site used (registered, or asked for). */
  readonly prefixes: number;
  /** A configured site nobody registers in: its Map-Requests get negative Map-Replies. */
  readonly negativeSite: string;
  /** The site registered with key type 1 (HMAC-SHA-1-96). */
  readonly kt1Site: string;
  readonly kt1Key: string;
  /** The site registered with key type 2 (HMAC-SHA-256-128). */
  readonly kt2Site: string;
  readonly kt2Key: string;
}

/** Main thread to Worker. */
export type ToWorker =
  | { readonly op: "init"; readonly index: number; readonly workers: number; readonly plan: Plan }
  | {
    readonly op: "phase";
    readonly kind: PhaseKind;
    /** Date.now() at which to start sending. */
    readonly startAt: number;
    readonly durationMs: number;
    readonly drainMs: number;
    readonly expireMs: number;
    /** Most messages outstanding at once (this Worker's share). */
    readonly window: number;
    /** Messages per second to send (open loop, this Worker's share); 0: closed loop. */
    readonly rate: number;
  }
  | { readonly op: "close" };

/** What one Worker counted in one phase. */
export interface WorkerCounts {
  /** Messages sent. */
  sent: number;
  /** Messages answered by the end of the drain. */
  answered: number;
  /** Answers received while sending (what the rate counts). */
  answeredInTime: number;
  /** Answers to messages whose window slot had already expired. */
  late: number;
  /** Map-Replies with a locator (request phases). */
  positive: number;
  /** Datagrams of the expected type we could not match (nonce unknown or answered twice). */
  stray: number;
  /** Datagrams of another type (e.g. Map-Referrals), by type number. */
  other: Record<string, number>;
  /** sendmmsg calls that sent nothing because the socket buffer was full. */
  sendFull: number;
  /** Datagrams the kernel refused for another reason. */
  sendErrors: number;
  /** sendmmsg calls that sent something. */
  sendCalls: number;
  /** recvmmsg calls that received something. */
  recvCalls: number;
  /** Datagrams received. */
  received: number;
  /** Milliseconds actually spent sending. */
  sendingMs: number;
}

/** Worker to main thread. */
export type FromWorker =
  | { readonly op: "ready"; readonly port: number; readonly buildMs: number }
  | {
    readonly op: "done";
    readonly counts: WorkerCounts;
    readonly histogram: Uint32Array<ArrayBuffer>;
    readonly maxMs: number;
  }
  | { readonly op: "error"; readonly message: string };

// ---------------------------------------------------------------------------
// Building the messages.

/** The /24s of an IPv4 prefix of length ≤ 24, in order, at most `max`. */
export function slash24s(prefix: string, max: number): string[] {
  const [addr, lenText] = prefix.split("/");
  const len = Number(lenText);
  const b = new Uint8Array(4);
  if (addr === undefined || !ipv4ToBytes(addr, b, 0) || !(len >= 0 && len <= 24)) {
    throw new TypeError(`site must be an IPv4 prefix of length 0..24, got ${prefix}`);
  }
  const base = new DataView(b.buffer).getUint32(0, false) & (len === 0 ? 0 : ~0 << (32 - len));
  const count = Math.min(max, 2 ** (24 - len));
  const out: string[] = [];
  const o = new Uint8Array(4);
  const ov = new DataView(o.buffer);
  for (let i = 0; i < count; i++) {
    ov.setUint32(0, (base + (i << 8)) >>> 0, false);
    out.push(ipv4FromBytes(o, 0));
  }
  return out;
}

/** An ECM'd Map-Request for `eid` from `source`:`port` with nonce 0 (see {@link fillRequest}). */
export function mapRequestTemplate(source: string, port: number, eid: string): Uint8Array {
  const inner = emitMapRequest({
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce: 0n,
    sourceEid: { kind: "none" },
    itrRlocs: [{ kind: "ipv4", ip: source }],
    records: [{ maskLen: 32, eid: { kind: "ipv4", ip: eid } }],
  });
  return emitEcm({
    security: false,
    ddtOriginated: false,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: source, dst: eid, srcPort: port, dstPort: 4342, ttl: 64 },
    payload: inner,
  });
}

/**
 * Copies a Map-Request template into `bytes` at `off` with the nonce
 * `tag:seq`, and brings the inner UDP checksum up to date (RFC 1624: the
 * template's nonce is zero, so the new nonce words are simply added).
 * Returns the length written. Allocates nothing.
 */
export function fillRequest(
  tpl: Uint8Array,
  bytes: Uint8Array,
  view: DataView,
  off: number,
  tag: number,
  seq: number,
): number {
  bytes.set(tpl, off);
  view.setUint32(off + ECM_INNER_OFFSET + NONCE_OFFSET, tag, false);
  view.setUint32(off + ECM_INNER_OFFSET + NONCE_OFFSET + 4, seq, false);
  const old = view.getUint16(off + ECM_UDP_CHECKSUM, false);
  if (old !== 0) {
    let s = (~old & 0xffff) + (tag >>> 16) + (tag & 0xffff) + (seq >>> 16) + (seq & 0xffff);
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    const c = ~s & 0xffff;
    view.setUint16(off + ECM_UDP_CHECKSUM, c === 0 ? 0xffff : c, false);
  }
  return tpl.length;
}

/** A signed Map-Register (P and M bits, xTR-ID) for one /24, nonce `tag:index`. */
export function mapRegisterFor(
  prefix: string,
  index: number,
  tag: number,
  key: HmacKey,
): Uint8Array {
  return emitSignedMapRegister({
    proxyReply: true,
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce: (BigInt(tag) << 32n) | BigInt(index),
    keyId: key.keyId,
    authData: new Uint8Array(0),
    records: [{
      ttl: 1440,
      maskLen: 24,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: ipAddress(prefix),
      // Loopback RLOCs: if a map-server ever forwards a request to "the
      // ETR", it stays inside the namespace.
      locators: [
        locatorRecord(ipAddress(`127.0.1.${(index % 250) + 1}`), 1, 100, { local: true }),
      ],
    }],
    xtrId: 0x0123456789abcdefn,
    siteId: 1n,
  }, key);
}

/** Every message one Worker sends, built before any clock starts. */
export interface Messages {
  /** Negative Map-Requests (hosts in the negative site). */
  readonly negative: readonly Uint8Array[];
  /** Signed Map-Registers of key type 1 and 2, one per /24. */
  readonly kt1: readonly Uint8Array[];
  readonly kt2: readonly Uint8Array[];
  /** Map-Requests for a host in each of those /24s (positive once it is registered). */
  readonly kt1Hosts: readonly Uint8Array[];
  readonly kt2Hosts: readonly Uint8Array[];
}

/**
 * The messages of Worker `index` of `workers`: the /24s `i` with
 * `i % workers === index` of each site.
 */
export function buildMessages(
  plan: Plan,
  index: number,
  workers: number,
  port: number,
  tag: number,
): Messages {
  const mine = <T>(list: T[]) => list.filter((_, i) => i % workers === index);
  const host = (p: string) => p.replace(/\.0$/, ".1");
  const neg = mine(slash24s(plan.negativeSite, plan.prefixes));
  const kt1 = mine(slash24s(plan.kt1Site, plan.prefixes));
  const kt2 = mine(slash24s(plan.kt2Site, plan.prefixes));
  const key1 = new HmacKey(KEY_ID_HMAC_SHA1_96, plan.kt1Key);
  const key2 = new HmacKey(KEY_ID_HMAC_SHA256_128, plan.kt2Key);
  const request = (p: string) => mapRequestTemplate(plan.source, port, host(p));
  return {
    negative: neg.map(request),
    kt1: kt1.map((p, i) => mapRegisterFor(p, i, tag, key1)),
    kt2: kt2.map((p, i) => mapRegisterFor(p, i, tag, key2)),
    kt1Hosts: kt1.map(request),
    kt2Hosts: kt2.map(request),
  };
}

// ---------------------------------------------------------------------------
// Running a phase.

/** Smallest power of two ≥ n. */
function pow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** A phase's messages and how its answers are recognised. */
interface Traffic {
  /** Message slots (a power of two). */
  readonly slots: number;
  /** Most messages outstanding at once, whatever the window says. */
  readonly maxWindow: number;
  /** Writes the message with sequence number `seq` at `off`; returns its length. */
  fill(seq: number, bytes: Uint8Array, view: DataView, off: number): number;
  /** The type of the answers. */
  readonly answerType: number;
  /** The sequence number an answer is for, or -1. */
  match(bytes: Uint8Array, view: DataView, off: number, len: number): number;
}

/** One Worker's state: socket, batches, messages. */
class LoadWorker {
  readonly #socket: UdpSocket;
  readonly #poll: PollSet;
  readonly #tx: PacketBatch;
  readonly #rx: PacketBatch;
  readonly #tag: number;
  #requestPhases = 0;
  readonly #messages: Messages;
  /** Which /24s (local index) of each registered site got a Map-Notify. */
  readonly #registered: { readonly kt1: Uint8Array; readonly kt2: Uint8Array };
  /** The site of the last registration phase: positive Map-Requests go to it. */
  #lastRegistered: "kt1" | "kt2" | undefined;

  constructor(readonly plan: Plan, index: number, workers: number) {
    this.#socket = UdpSocket.open({
      address: plan.source,
      port: 0,
      recvBuffer: 8 << 20,
      sendBuffer: 8 << 20,
    });
    const port = this.#socket.localAddress().port;
    this.#poll = new PollSet([this.#socket.fd]);
    this.#tx = new PacketBatch({ slots: plan.batch, slotSize: 512, headroom: 0 });
    this.#rx = new PacketBatch({ slots: plan.batch, slotSize: 2048, headroom: 0 });
    const to = ipv4ToU32(plan.target);
    if (to === undefined) throw new TypeError(`target must be IPv4: ${plan.target}`);
    for (let i = 0; i < plan.batch; i++) this.#tx.setPeer4(i, to, plan.port);
    this.#tag = crypto.getRandomValues(new Uint32Array(1))[0]! >>> 0;
    this.#messages = buildMessages(plan, index, workers, port, this.#tag);
    this.#registered = {
      kt1: new Uint8Array(this.#messages.kt1.length),
      kt2: new Uint8Array(this.#messages.kt2.length),
    };
  }

  /** The bound port. */
  get port(): number {
    return this.#socket.localAddress().port;
  }

  /** The traffic of a phase, or a reason why there is none. */
  traffic(kind: PhaseKind): Traffic | string {
    const tag = this.#tag;
    if (kind === "negative" || kind === "positive") {
      // Map-Requests of every phase (the warm-up too) get nonces of their own:
      // a map-resolver drops a request with the nonce and EID of one it passed
      // on within 500 ms (core/forward_guard.ts), and sequence numbers restart.
      const tag = (this.#tag ^ Math.imul(++this.#requestPhases, 0x9e3779b1)) >>> 0;
      let list = this.#messages.negative;
      if (kind === "positive") {
        const site = this.#lastRegistered;
        if (site === undefined) return "no registration phase came before";
        const hosts = site === "kt1" ? this.#messages.kt1Hosts : this.#messages.kt2Hosts;
        list = hosts.filter((_, i) => this.#registered[site][i] === 1);
        if (list.length === 0) return `no /24 of the ${site} site was registered`;
      }
      const m = list.length;
      return {
        slots: 1 << 20,
        maxWindow: 1 << 19,
        fill: (seq, bytes, view, off) => fillRequest(list[seq % m]!, bytes, view, off, tag, seq),
        answerType: TYPE_MAP_REPLY,
        match: (_bytes, view, off, len) => {
          if (len < 12 || view.getUint32(off + NONCE_OFFSET, false) !== tag) return -1;
          return view.getUint32(off + NONCE_OFFSET + 4, false);
        },
      };
    }
    const site = kind === "register-kt1" ? "kt1" : "kt2";
    const regs = this.#messages[site];
    const registered = this.#registered[site];
    this.#lastRegistered = site;
    const n = regs.length;
    if (n < 2) return "too few prefixes for this Worker";
    // Message i goes out as sequence numbers i, i+n, i+2n...; its Map-Notify
    // names only i and answers the latest send (at most n/2 are outstanding).
    const latest = new Float64Array(n).fill(-1);
    return {
      slots: pow2(Math.max(n * 2, 1 << 16)),
      maxWindow: n >> 1,
      fill: (seq, bytes, _view, off) => {
        const i = seq % n;
        latest[i] = seq;
        const m = regs[i]!;
        bytes.set(m, off);
        return m.length;
      },
      answerType: TYPE_MAP_NOTIFY,
      match: (_bytes, view, off, len) => {
        if (len < 12 || view.getUint32(off + NONCE_OFFSET, false) !== tag) return -1;
        const i = view.getUint32(off + NONCE_OFFSET + 4, false);
        if (i >= n) return -1;
        registered[i] = 1;
        return latest[i]!;
      },
    };
  }

  /**
   * Runs one phase: waits for `startAt`, sends for `durationMs` (closed
   * loop: keeping `window` outstanding; open loop: `rate` a second, never
   * more than `window` outstanding), then waits up to `drainMs` for the
   * answers still due. Blocks the thread throughout.
   */
  run(o: Extract<ToWorker, { op: "phase" }>): FromWorker {
    const t = this.traffic(o.kind);
    if (typeof t === "string") return { op: "error", message: `${o.kind}: ${t}` };
    const socket = this.#socket;
    const tx = this.#tx;
    const rx = this.#rx;
    const txBytes = tx.bytes;
    const txView = tx.view;
    const rxBytes = rx.bytes;
    const rxView = rx.view;
    const batch = this.plan.batch;
    const mask = t.slots - 1;
    const window = Math.max(1, Math.min(o.window, t.maxWindow, t.slots >> 1));
    const sentAt = new Float64Array(t.slots);
    const slotSeq = new Float64Array(t.slots).fill(-1);
    /** 0 free, 1 outstanding, 2 expired (not answered yet). */
    const state = new Uint8Array(t.slots);
    const hist = new Histogram();
    const c: WorkerCounts = {
      sent: 0,
      answered: 0,
      answeredInTime: 0,
      late: 0,
      positive: 0,
      stray: 0,
      other: {},
      sendFull: 0,
      sendErrors: 0,
      sendCalls: 0,
      recvCalls: 0,
      received: 0,
      sendingMs: 0,
    };
    const other = new Float64Array(16);
    let seq = 0;
    let oldest = 0;
    let inFlight = 0;

    // Anything left from an earlier phase is not this phase's.
    while (socket.recvmmsg(rx) > 0) { /* drop */ }
    const wait = o.startAt - Date.now();
    if (wait > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, wait);

    const start = performance.now();
    const deadline = start + o.durationMs;
    const perMs = o.rate / 1000;
    const refill = Math.max(1, Math.min(batch, window >> 2));
    let drainEnd = Infinity;
    let sending = true;
    let nextSweep = start + 50;
    for (;;) {
      let now = performance.now();
      if (sending && now >= deadline) {
        sending = false;
        c.sendingMs = now - start;
        drainEnd = now + o.drainMs;
      }
      if (!sending && (inFlight === 0 || now >= drainEnd)) break;
      if (now >= nextSweep) {
        // Frees the window slots of messages unanswered for expireMs, so a
        // lost datagram does not shrink the window for the rest of the run.
        nextSweep = now + 50;
        const limit = now - o.expireMs;
        while (oldest < seq) {
          const slot = oldest & mask;
          if (slotSeq[slot] === oldest && state[slot] === 1) {
            if (sentAt[slot]! > limit) break;
            state[slot] = 2;
            inFlight--;
          }
          oldest++;
        }
      }
      let room = 0;
      if (sending) {
        room = window - inFlight;
        if (perMs > 0) room = Math.min(room, Math.floor((now - start) * perMs) - c.sent);
        // Closed loop: refill in batches (a quarter of the window), not one
        // datagram per answer, so that a sendmmsg carries several.
        else if (room < refill && inFlight > 0) room = 0;
        if (room > batch) room = batch;
      }
      let k = 0;
      while (k < room) {
        const slot = (seq + k) & mask;
        if (state[slot] === 1) {
          // Wrapped onto a message still unanswered a whole cycle of slots
          // later: it has expired (waiting for it would stall the phase).
          state[slot] = 2;
          inFlight--;
        }
        tx.length[k] = t.fill(seq + k, txBytes, txView, tx.offset[k]!);
        k++;
      }
      let sentNow = 0;
      if (k > 0) {
        const n = socket.sendmmsg(tx, 0, k);
        if (n === 0) c.sendFull++;
        else if (n < 0) {
          // The first datagram was refused: count it and move past it.
          c.sendErrors++;
          seq++;
        } else {
          c.sendCalls++;
          sentNow = n;
          for (let i = 0; i < n; i++) {
            const s = seq + i;
            const slot = s & mask;
            state[slot] = 1;
            slotSeq[slot] = s;
            sentAt[slot] = now;
          }
          seq += n;
          inFlight += n;
          c.sent += n;
        }
      }
      const got = socket.recvmmsg(rx);
      if (got <= 0) {
        // Nothing came in: sleep until something does, unless there is more to send now.
        if (sentNow === 0 || inFlight >= window) {
          let ms = 1;
          if (!sending) ms = Math.max(0, Math.min(5, Math.ceil(drainEnd - now)));
          this.#poll.poll(ms);
        }
        continue;
      }
      c.recvCalls++;
      c.received += got;
      now = performance.now();
      for (let i = 0; i < got; i++) {
        const off = rx.offset[i]!;
        const len = rx.length[i]!;
        const type = len > 0 ? rxBytes[off]! >>> 4 : 0;
        if (type !== t.answerType) {
          other[type]!++;
          continue;
        }
        const s = t.match(rxBytes, rxView, off, len);
        const slot = s & mask;
        if (s < 0 || slotSeq[slot] !== s || state[slot] === 0) {
          c.stray++;
          continue;
        }
        if (state[slot] === 1) inFlight--;
        else c.late++;
        state[slot] = 0;
        c.answered++;
        if (sending) c.answeredInTime++;
        if (
          type === TYPE_MAP_REPLY && len > REPLY_FIRST_LOCATOR_COUNT &&
          rxBytes[off + REPLY_RECORD_COUNT]! > 0 && rxBytes[off + REPLY_FIRST_LOCATOR_COUNT]! > 0
        ) c.positive++;
        hist.record(now - sentAt[slot]!);
      }
    }
    for (let i = 0; i < 16; i++) if (other[i]! > 0) c.other[String(i)] = other[i]!;
    return { op: "done", counts: c, histogram: hist.counts, maxMs: hist.max };
  }

  /** Closes the socket. */
  close(): void {
    this.#socket.close();
  }
}

// ---------------------------------------------------------------------------
// Worker glue.

/** The Worker's global scope (typed here: the project compiles with the window lib). */
interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((m: MessageEvent<ToWorker>) => void) | null;
  close(): void;
}

function isWorker(): boolean {
  return typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope === "function" &&
    globalThis instanceof
      ((globalThis as unknown as { WorkerGlobalScope: new () => unknown }).WorkerGlobalScope);
}

function serve(scope: WorkerScope): void {
  let w: LoadWorker | undefined;
  scope.onmessage = (e) => {
    const msg = e.data;
    try {
      switch (msg.op) {
        case "init": {
          const t0 = performance.now();
          w = new LoadWorker(msg.plan, msg.index, msg.workers);
          scope.postMessage({ op: "ready", port: w.port, buildMs: performance.now() - t0 });
          return;
        }
        case "phase": {
          if (w === undefined) throw new Error("phase before init");
          const r = w.run(msg);
          scope.postMessage(r, r.op === "done" ? [r.histogram.buffer] : []);
          return;
        }
        case "close":
          w?.close();
          scope.close();
          return;
      }
    } catch (err) {
      scope.postMessage({ op: "error", message: err instanceof Error ? err.message : String(err) });
    }
  };
}

if (isWorker()) serve(globalThis as unknown as WorkerScope);
