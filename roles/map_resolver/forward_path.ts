/**
 * The map-resolver's forwarding in place: what a forwarding Worker
 * (_forwarding_worker.ts) does with each datagram, without decoding the
 * message or allocating.
 *
 * An ECM'd Map-Request of the common shape (wire/control_view.ts
 * `scanMapRequest`: one record, a host EID, no probe, SMR or subscription),
 * not DDT-originated, with an inner IPv4 header of 20 bytes or an IPv6
 * header, is forwarded to a `[[map-server]]` that is not this resolver
 * itself by copying it into the send batch and rewriting only
 * what changes: the ECM's R and N bits and reserved bytes cleared, the
 * inner TTL (hop limit) less one and, over IPv4, the inner header
 * checksum. The result is byte for byte what roles/mr.ts's main-thread
 * path (`emitEcm` of the parsed ECM) writes, except that the inner UDP
 * checksum is carried as it came, not recomputed.
 *
 * The forward guard's checks (core/forward_guard.ts), per Worker: the
 * target list excludes our own addresses (worked out by the main thread);
 * a request with inner TTL 1 or 0 is dropped (`ttl-expired`); a (nonce,
 * EID) forwarded within 500 ms is dropped (`duplicate`). The reuse-port
 * program spreads datagrams by nonce, so every copy of one request
 * reaches the same Worker and its table. The table is direct-mapped
 * ({@link DUPLICATE_SLOTS} slots): a request evicted by another that
 * hashes to its slot before its copy comes back is not seen as a
 * duplicate (a looping copy comes back within milliseconds; the TTL ends
 * the loop in any case).
 *
 * With several map-servers, the same ITR asking again for the same EID
 * within 3 s (its retransmission) goes to the next one, as on the main
 * thread: the table of recent forwards is one, in shared memory, for all
 * the Workers ({@link ForwardPath.recentMemory}).
 *
 * Everything else (another message, another shape, no map-server, a
 * family the Worker cannot send to) is the main thread's
 * ({@link FWD_MAIN}), where roles/mr.ts decides as it does without
 * Workers.
 *
 * @module
 */

import type { RateLimiter } from "../../core/rate_limit.ts";
import { DUPLICATE_WINDOW_MS } from "../../core/forward_guard.ts";
import { MapRequestView, scanMapRequest } from "../../wire/control_view.ts";
import { type Ecm, emitEcm } from "../../wire/ecm.ts";
import { ipv4ToBytes, ipv6ToBytes } from "../../wire/ip_text.ts";

/** The datagram was forwarded: {@link ForwardPath.outLength} bytes written, to the target. */
export const FWD_SENT = 1;
/** For the main thread (the full codec and roles/mr.ts). */
export const FWD_MAIN = 2;
/** For the main thread, its rate-limit token taken already. */
export const FWD_MAIN_ADMITTED = 3;
/** Dropped by the rate limit (counted). */
export const FWD_RATE_LIMITED = 4;
/** Dropped by the forward guard (counted): {@link ForwardPath.dropReason} says why. */
export const FWD_DROPPED = 5;

/** What the fast path counts, by index (the pool maps each to a series). */
export const FORWARD_COUNTS = [
  "in ecm-map-request",
  "mr requests forward",
  "mr forwarded",
  "out ecm",
  "mr dropped ttl-expired",
  "mr dropped duplicate",
  "control dropped rate-limited",
] as const;
const C_IN = 0;
const C_REQUESTS = 1;
const C_FORWARDED = 2;
const C_OUT = 3;
const C_TTL = 4;
const C_DUPLICATE = 5;
const C_RATE_LIMITED = 6;

/** Most map-servers a Worker forwards to (more: the main thread's). */
export const MAX_TARGETS = 16;
/** Slots of the table of recent (ITR, EID) forwards (a power of two). */
const RECENT_SLOTS = 1 << 14;
/** Bytes of that table: when (f64), two hashes (i32), the target (u8), per slot. */
const RECENT_BYTES = RECENT_SLOTS * 17;
/** Slots of the duplicate table (a power of two). */
export const DUPLICATE_SLOTS = 1 << 16;
/** Words of a duplicate-table slot: nonce (2), iid, family, address (4). */
const DUP_WORDS = 8;

/**
 * Writes the ECM `b[start, end)` (inner IPv4 header of 20 bytes, or IPv6)
 * into `out` at `at` as a map-resolver forwards it: the ECM's type and S,
 * E, M bits kept, D, R, N and the reserved bytes cleared, the inner TTL
 * (hop limit) set to `ttl` and the inner IPv4 header checksum written
 * again; the rest as it came. Returns false, writing nothing, for another
 * inner header. `out` must have room from `at`.
 */
export function writeForward(
  b: Uint8Array,
  start: number,
  end: number,
  ttl: number,
  out: Uint8Array,
  at: number,
): boolean {
  if (end - start < 44) return false;
  const first = b[start + 4]!;
  const v4 = first === 0x45;
  if (!v4 && first >>> 4 !== 6) return false;
  out.set(b.subarray(start, end), at);
  out[at] = b[start]! & 0xfb;
  out[at + 1] = 0;
  out[at + 2] = 0;
  out[at + 3] = 0;
  const o = at + 4;
  if (v4) {
    out[o + 8] = ttl;
    out[o + 10] = 0;
    out[o + 11] = 0;
    let sum = 0;
    for (let k = 0; k < 20; k += 2) sum += (out[o + k]! << 8) | out[o + k + 1]!;
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    const cs = ~sum & 0xffff;
    out[o + 10] = cs >>> 8;
    out[o + 11] = cs & 0xff;
  } else {
    out[o + 7] = ttl;
  }
  return true;
}

/**
 * An ITR's ECM as a map-resolver passes it on with inner TTL `ttl`: the
 * `datagram` it came in, rewritten ({@link writeForward}), or, without
 * one or for another inner header, `ecm` emitted anew with the same
 * changes.
 */
export function forwardedEcm(ecm: Ecm, ttl: number, datagram?: Uint8Array): Uint8Array {
  if (datagram !== undefined) {
    const out = new Uint8Array(datagram.length);
    if (writeForward(datagram, 0, datagram.length, ttl, out, 0)) return out;
  }
  const inner = { ...ecm.inner, ttl };
  return emitEcm({ ...ecm, ddtOriginated: false, forRtr: false, rtrRelayed: false, inner });
}

/** A map-server to forward to, as the main thread worked it out. */
export interface ForwardTarget {
  readonly address: string;
  readonly port: number;
}

function bump(c: Float64Array, i: number): void {
  c[i] = c[i]! + 1;
}

const scratch4 = new Uint8Array(4);

function ipv4U32(text: string): number | undefined {
  if (!ipv4ToBytes(text, scratch4, 0)) return undefined;
  return ((scratch4[0]! << 24) | (scratch4[1]! << 16) | (scratch4[2]! << 8) | scratch4[3]!) >>> 0;
}

/** The forwarding of one Worker (see the module notes). */
export class ForwardPath {
  readonly #view = new MapRequestView();
  readonly #limiter: RateLimiter | undefined;
  readonly #windowMs: number;
  /** Counts since the owner last took them, by {@link FORWARD_COUNTS} index. */
  readonly counts: Float64Array;
  readonly #dupKeys = new Int32Array(DUPLICATE_SLOTS * DUP_WORDS);
  readonly #dupUntil = new Float64Array(DUPLICATE_SLOTS);
  #targets = 0;
  readonly #tAddr4 = new Uint32Array(MAX_TARGETS);
  readonly #tAddr6 = new Uint8Array(MAX_TARGETS * 16);
  readonly #tPort = new Uint16Array(MAX_TARGETS);
  readonly #retransmitMs: number;
  /** Per (ITR address, EID) hash: two more hashes of it, the target it went to, and when. */
  readonly #recentA: Int32Array;
  readonly #recentB: Int32Array;
  readonly #recentAt: Float64Array;
  readonly #recentIndex: Uint8Array;
  /** Family of the targets: 4 or 6. */
  toFamily: 4 | 6 = 4;
  /** The target's IPv4 address as a u32 (toFamily 4). */
  toAddr4 = 0;
  /** The target's IPv6 address (toFamily 6). */
  readonly toAddr6 = new Uint8Array(16);
  /** The target's port. */
  toPort = 0;
  /** Length written by the last {@link FWD_SENT}. */
  outLength = 0;
  /** Why the last {@link FWD_DROPPED}: `ttl-expired` or `duplicate`. */
  dropReason: "ttl-expired" | "duplicate" = "duplicate";
  /** The families the Worker has sockets for (bit 1: IPv4, bit 2: IPv6). */
  readonly #families: number;

  /**
   * A fast path taking rate-limit tokens from `limiter` (shared with the
   * main thread), counting into `counts` (length {@link FORWARD_COUNTS}),
   * able to send over the `families` given (bit 1: IPv4, bit 2: IPv6).
   * With several map-servers, the same ITR asking for the same EID within
   * `retransmitMs` (its retransmission) goes to the next one, as
   * roles/mr.ts does (MrOptions.retransmitWindowMs).
   */
  constructor(
    limiter: RateLimiter | undefined,
    counts: Float64Array,
    families: number,
    windowMs = DUPLICATE_WINDOW_MS,
    retransmitMs = 3000,
    recent: SharedArrayBuffer | ArrayBuffer = ForwardPath.recentMemory(),
  ) {
    if (counts.length < FORWARD_COUNTS.length) throw new RangeError("counts too short");
    this.#limiter = limiter;
    this.counts = counts;
    this.#families = families;
    this.#windowMs = windowMs;
    this.#retransmitMs = retransmitMs;
    if (recent.byteLength < RECENT_BYTES) throw new RangeError("recent-forwards memory too small");
    this.#recentAt = new Float64Array(recent, 0, RECENT_SLOTS);
    this.#recentA = new Int32Array(recent, RECENT_SLOTS * 8, RECENT_SLOTS);
    this.#recentB = new Int32Array(recent, RECENT_SLOTS * 12, RECENT_SLOTS);
    this.#recentIndex = new Uint8Array(recent, RECENT_SLOTS * 16, RECENT_SLOTS);
  }

  /**
   * Memory for the table of recent (ITR, EID) forwards, to share between
   * the Workers (a SharedArrayBuffer): a request reaches the Worker of its
   * nonce, and an ITR's next request for the same EID may carry another.
   * Two Workers writing one slot at once at worst send a request to
   * another map-server than the next one.
   */
  static recentMemory(): SharedArrayBuffer {
    const m = new SharedArrayBuffer(RECENT_BYTES);
    new Float64Array(m, 0, RECENT_SLOTS).fill(-Infinity);
    return m;
  }

  /**
   * Forwards to `targets` from now on: the map-servers that are not this
   * resolver. With none, more than {@link MAX_TARGETS}, targets of both
   * families or of a family the Worker cannot send to, every datagram is
   * the main thread's.
   */
  setTargets(targets: readonly ForwardTarget[]): void {
    this.#targets = 0;
    const n = targets.length;
    if (n === 0 || n > MAX_TARGETS) return;
    let family = 0;
    for (let i = 0; i < n; i++) {
      const t = targets[i]!;
      const a4 = ipv4U32(t.address);
      const f = a4 !== undefined ? 4 : 6;
      if (family !== 0 && f !== family) return;
      family = f;
      if (a4 !== undefined) this.#tAddr4[i] = a4;
      else if (!ipv6ToBytes(t.address, this.#tAddr6, i * 16)) return;
      this.#tPort[i] = t.port;
    }
    if ((this.#families & (family === 4 ? 1 : 2)) === 0) return;
    this.toFamily = family as 4 | 6;
    this.#targets = n;
  }

  /** Which target (ITR `src4`/`src6`, EID of `v`) goes to: the next one after a recent ask. */
  #pick(b: Uint8Array, v: MapRequestView, src4: number, src6: number, now: number): number {
    const n = this.#targets;
    if (n === 1) return 0;
    let h1 = 0x811c9dc5 ^ v.iid ^ v.eidFamily;
    let h2 = Math.imul(src4 ^ 0x5bd1e995, 0x27d4eb2d);
    if (src6 >= 0) { for (let k = 0; k < 16; k++) h2 = Math.imul(h2 ^ b[src6 + k]!, 0x01000193); }
    h1 = Math.imul(h1 ^ h2, 0x85ebca6b);
    const len = v.eidFamily === 4 ? 4 : 16;
    for (let k = 0; k < len; k++) {
      const x = b[v.eidAddress + k]!;
      h1 = Math.imul(h1 ^ x, 0x01000193);
      h2 = Math.imul(h2 + x, 0xc2b2ae35) ^ (h2 >>> 13);
    }
    h1 ^= h1 >>> 15;
    const slot = (h1 ^ (h1 >>> 16)) & (RECENT_SLOTS - 1);
    let index = 0;
    if (
      this.#recentA[slot] === h1 && this.#recentB[slot] === h2 &&
      now - this.#recentAt[slot]! < this.#retransmitMs
    ) index = (this.#recentIndex[slot]! + 1) % n;
    this.#recentA[slot] = h1;
    this.#recentB[slot] = h2;
    this.#recentIndex[slot] = index;
    this.#recentAt[slot] = now;
    return index;
  }

  /**
   * Handles the datagram `b[start, end)` from the source `src4` (an IPv4
   * address as a u32) or, when `src6` ≥ 0, the 16 bytes at `b[src6]`; a
   * forward is written to `out[at, at + room)`. Returns a `FWD_*` code.
   * Never throws for what a peer sent.
   */
  handle(
    b: Uint8Array,
    start: number,
    end: number,
    src4: number,
    src6: number,
    now: number,
    out: Uint8Array,
    at: number,
    room: number,
  ): number {
    if (this.#targets === 0 || end - start < 1 || b[start]! >>> 4 !== 8) return FWD_MAIN;
    const v = this.#view;
    if (!scanMapRequest(b, start, end, v, 3) || !v.ecm || v.ddt) return FWD_MAIN;
    const ip = start + 4;
    const v4 = b[ip]! >>> 4 === 4;
    if ((v4 && b[ip]! !== 0x45) || end - start > room) return FWD_MAIN;
    const c = this.counts;
    const l = this.#limiter;
    if (l !== undefined && !(src6 < 0 ? l.allow4(src4, now) : l.allow6(b, src6, now))) {
      bump(c, C_IN);
      bump(c, C_RATE_LIMITED);
      return FWD_RATE_LIMITED;
    }
    bump(c, C_IN);
    bump(c, C_REQUESTS);
    if (v.innerTtl <= 1) {
      bump(c, C_TTL);
      this.dropReason = "ttl-expired";
      return FWD_DROPPED;
    }
    const t = this.#pick(b, v, src4, src6, now);
    if (this.toFamily === 4) this.toAddr4 = this.#tAddr4[t]!;
    else this.toAddr6.set(this.#tAddr6.subarray(t * 16, t * 16 + 16));
    this.toPort = this.#tPort[t]!;
    if (this.#seen(b, v, now)) {
      bump(c, C_DUPLICATE);
      this.dropReason = "duplicate";
      return FWD_DROPPED;
    }
    const n = end - start;
    writeForward(b, start, end, v.innerTtl - 1, out, at);
    this.outLength = n;
    bump(c, C_FORWARDED);
    bump(c, C_OUT);
    return FWD_SENT;
  }

  /** Whether (nonce, EID) of `v` was forwarded within the window; remembers it if not. */
  #seen(b: Uint8Array, v: MapRequestView, now: number): boolean {
    const n = v.nonce;
    const hi = (b[n]! << 24) | (b[n + 1]! << 16) | (b[n + 2]! << 8) | b[n + 3]!;
    const lo = (b[n + 4]! << 24) | (b[n + 5]! << 16) | (b[n + 6]! << 8) | b[n + 7]!;
    const e = v.eidAddress;
    const words = v.eidFamily === 4 ? 1 : 4;
    let h = Math.imul(hi ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(lo, 0xc2b2ae35) ^ v.iid;
    let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    for (let w = 0; w < words; w++) {
      const p = e + w * 4;
      const x = (b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) | b[p + 3]!;
      if (w === 0) a0 = x;
      else if (w === 1) a1 = x;
      else if (w === 2) a2 = x;
      else a3 = x;
      h = Math.imul(h ^ x, 0x27d4eb2d);
    }
    h ^= h >>> 15;
    const slot = h & (DUPLICATE_SLOTS - 1);
    const k = this.#dupKeys;
    const s = slot * DUP_WORDS;
    const same = k[s] === hi && k[s + 1] === lo && k[s + 2] === (v.iid | 0) &&
      k[s + 3] === v.eidFamily && k[s + 4] === a0 && k[s + 5] === a1 && k[s + 6] === a2 &&
      k[s + 7] === a3;
    if (same && this.#dupUntil[slot]! > now) return true;
    k[s] = hi;
    k[s + 1] = lo;
    k[s + 2] = v.iid | 0;
    k[s + 3] = v.eidFamily;
    k[s + 4] = a0;
    k[s + 5] = a1;
    k[s + 6] = a2;
    k[s + 7] = a3;
    this.#dupUntil[slot] = now + this.#windowMs;
    return false;
  }
}
