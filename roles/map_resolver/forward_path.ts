/**
 * The map-resolver's forwarding in place: what a forwarding Worker
 * (_forwarding_worker.ts) does with each datagram, without decoding the
 * message or allocating.
 *
 * An ECM'd Map-Request of the common shape (wire/control_view.ts
 * `scanMapRequest`: one record, a host EID, no probe, SMR or subscription),
 * not DDT-originated, with an inner IPv4 header of 20 bytes or an IPv6
 * header, is forwarded to the one `[[map-server]]` that is not this
 * resolver itself by copying it into the send batch and rewriting only
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
 * Everything else (another message, another shape, several map-servers or
 * none, a family the Worker cannot send to) is the main thread's
 * ({@link FWD_MAIN}), where roles/mr.ts decides as it does without
 * Workers.
 *
 * @module
 */

import type { RateLimiter } from "../../core/rate_limit.ts";
import { DUPLICATE_WINDOW_MS } from "../../core/forward_guard.ts";
import { MapRequestView, scanMapRequest } from "../../wire/control_view.ts";
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

/** Slots of the duplicate table (a power of two). */
export const DUPLICATE_SLOTS = 1 << 16;
/** Words of a duplicate-table slot: nonce (2), iid, family, address (4). */
const DUP_WORDS = 8;

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
  /** Family of the target: 4 or 6. */
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
   */
  constructor(
    limiter: RateLimiter | undefined,
    counts: Float64Array,
    families: number,
    windowMs = DUPLICATE_WINDOW_MS,
  ) {
    if (counts.length < FORWARD_COUNTS.length) throw new RangeError("counts too short");
    this.#limiter = limiter;
    this.counts = counts;
    this.#families = families;
    this.#windowMs = windowMs;
  }

  /**
   * Forwards to `targets` from now on: the map-servers that are not this
   * resolver. With other than exactly one, or one of a family the Worker
   * cannot send to, every datagram is the main thread's.
   */
  setTargets(targets: readonly ForwardTarget[]): void {
    this.#targets = 0;
    if (targets.length !== 1) return;
    const t = targets[0]!;
    const a4 = ipv4U32(t.address);
    if (a4 !== undefined) {
      if ((this.#families & 1) === 0) return;
      this.toFamily = 4;
      this.toAddr4 = a4;
    } else {
      if ((this.#families & 2) === 0 || !ipv6ToBytes(t.address, this.toAddr6, 0)) return;
      this.toFamily = 6;
    }
    this.toPort = t.port;
    this.#targets = 1;
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
    if (this.#targets !== 1 || end - start < 1 || b[start]! >>> 4 !== 8) return FWD_MAIN;
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
    if (this.#seen(b, v, now)) {
      bump(c, C_DUPLICATE);
      this.dropReason = "duplicate";
      return FWD_DROPPED;
    }
    const n = end - start;
    out.set(b.subarray(start, end), at);
    // ECM header: type and the S, E, M bits kept; D is clear (checked); R, N, reserved cleared.
    out[at] = b[start]! & 0xfb;
    out[at + 1] = 0;
    out[at + 2] = 0;
    out[at + 3] = 0;
    const o = at + 4;
    if (v4) {
      out[o + 8] = v.innerTtl - 1;
      out[o + 10] = 0;
      out[o + 11] = 0;
      let sum = 0;
      for (let k = 0; k < 20; k += 2) sum += (out[o + k]! << 8) | out[o + k + 1]!;
      while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
      const cs = ~sum & 0xffff;
      out[o + 10] = cs >>> 8;
      out[o + 11] = cs & 0xff;
    } else {
      out[o + 7] = v.innerTtl - 1;
    }
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
