/**
 * The hand-over between a pool's Workers and the main thread (the ms's
 * answering Workers, roles/map_server/serving.ts, and the mr's forwarding
 * Workers, roles/map_resolver/forwarding.ts): what a Worker leaves to the
 * main thread is copied into a staging buffer, one entry per datagram, and
 * the staged run is posted (transferred) as one buffer per receive batch.
 *
 * An entry, 4-byte aligned ({@link HAND_OVER_HEADER} bytes of header):
 *
 * ```
 * 0   kind (u8: what the role says it is)
 * 1   family of the source (4 or 6)
 * 2   source port (u16, big-endian)
 * 4   data length (u32, big-endian)
 * 8   extra length (u32, big-endian: bytes the role adds after the data)
 * 12  source address (16 bytes; IPv4 in the first 4, big-endian)
 * 28  data, then the extra bytes, then padding to a multiple of 4
 * ```
 *
 * Each entry has a sequence number (1, 2, ... per Worker); a post carries
 * those of its first and last entries, and the main thread stores the last
 * one it handled in a shared array (`acks[index]`) once it has handled the
 * post. Past {@link MAX_BACKLOG} entries handed over and not acknowledged,
 * {@link HandOverStage.stage} refuses more (the Worker drops and counts
 * them): the backlog is bounded, not queued.
 *
 * Worker side: {@link HandOverStage}. Main side: {@link HandOverReader}.
 *
 * @module
 */

import type { Peer } from "../../core/control.ts";
import { u32ToIpv4 } from "../../ffi/libc.ts";
import { ipv6FromBytes } from "../../wire/ip_text.ts";

/** Bytes of an entry's header: kind, family, port, data length, extra length, address (16). */
export const HAND_OVER_HEADER = 28;
/** Most entries handed over and not yet acknowledged by the main thread. */
export const MAX_BACKLOG = 16_384;
/** The default size of a Worker's staging buffer, bytes. */
export const STAGING_BYTES = 4 << 20;
/** Most IPv4 sources a {@link HandOverReader} keeps a Peer object for (then it starts again). */
const MAX_PEERS = 65_536;

/** {@link HandOverStage.stage}: the entry is staged. */
export const STAGED = 1;
/** {@link HandOverStage.stage}: refused, {@link MAX_BACKLOG} entries wait for the main thread. */
export const BACKLOG_FULL = 0;
/** {@link HandOverStage.stage}: refused, larger than the staging buffer. */
export const TOO_LARGE = -1;

/**
 * A received datagram where it lies: `bytes[start, end)`, from `port` and,
 * by `fam`, `src4` (4: the address as a host-order u32) or the 16 bytes at
 * `bytes[src6]` (6). A Worker fills one in place per datagram.
 */
export interface Received {
  bytes: Uint8Array;
  start: number;
  end: number;
  fam: number;
  src4: number;
  src6: number;
  port: number;
}

/**
 * A Worker's staging buffer: entries staged one by one, taken as one
 * buffer to post. Nothing is allocated per entry.
 */
export class HandOverStage {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #acks: Int32Array;
  readonly #index: number;
  readonly #backlog: number;
  readonly #full: () => void;
  #length = 0;
  #seq = 0;
  #first = 1;

  /**
   * @param acks Int32 [index]: the last sequence number the main thread handled.
   * @param index This Worker's slot in `acks`.
   * @param full Called when an entry does not fit behind those staged: the
   *   Worker posts them ({@link take}) so that it does.
   * @param size The staging buffer's size, bytes.
   * @param backlog Most entries handed over and not acknowledged.
   */
  constructor(
    acks: SharedArrayBuffer | Int32Array,
    index: number,
    full: () => void,
    size = STAGING_BYTES,
    backlog = MAX_BACKLOG,
  ) {
    this.#acks = acks instanceof Int32Array ? acks : new Int32Array(acks);
    this.#index = index;
    this.#full = full;
    this.#bytes = new Uint8Array(size);
    this.#view = new DataView(this.#bytes.buffer);
    this.#backlog = backlog;
  }

  /** The sequence number of the last entry staged (0: none yet). */
  get seq(): number {
    return this.#seq;
  }

  /** The sequence number of the first staged entry ({@link seq} + 1 when none is staged). */
  get first(): number {
    return this.#length > 0 ? this.#first : this.#seq + 1;
  }

  /** Bytes staged. */
  get length(): number {
    return this.#length;
  }

  /** The last sequence number the main thread acknowledged. */
  get acked(): number {
    return Atomics.load(this.#acks, this.#index);
  }

  /**
   * Stages one entry: the datagram `d`, then `extra[0, extraLength)`.
   * Returns {@link STAGED} (the sequence number is then {@link seq}),
   * {@link BACKLOG_FULL} or {@link TOO_LARGE}.
   */
  stage(kind: number, d: Received, extra?: Uint8Array, extraLength = 0): number {
    const { bytes: b, start, end, fam, src6 } = d;
    if (this.#seq - Atomics.load(this.#acks, this.#index) >= this.#backlog) return BACKLOG_FULL;
    const len = end - start;
    const need = HAND_OVER_HEADER + len + extraLength + 3;
    const s = this.#bytes;
    if (this.#length + need > s.length) this.#full();
    if (this.#length + need > s.length) return TOO_LARGE;
    if (this.#length === 0) this.#first = this.#seq + 1;
    const v = this.#view;
    let p = this.#length;
    s[p] = kind;
    s[p + 1] = fam;
    v.setUint16(p + 2, d.port, false);
    v.setUint32(p + 4, len, false);
    v.setUint32(p + 8, extraLength, false);
    if (fam === 4) v.setUint32(p + 12, d.src4, false);
    else for (let k = 0; k < 16; k++) s[p + 12 + k] = b[src6 + k]!;
    p += HAND_OVER_HEADER;
    for (let k = 0; k < len; k++) s[p + k] = b[start + k]!;
    p += len;
    if (extra !== undefined) { for (let k = 0; k < extraLength; k++) s[p + k] = extra[k]!; }
    p += extraLength;
    this.#length = (p + 3) & ~3;
    this.#seq++;
    return STAGED;
  }

  /** The staged entries in a buffer of their own (to transfer), or undefined; the stage empties. */
  take(): ArrayBuffer | undefined {
    if (this.#length === 0) return undefined;
    const buf = (this.#bytes.buffer as ArrayBuffer).slice(0, this.#length);
    this.#length = 0;
    return buf;
  }
}

/**
 * What a {@link HandOverReader} calls for each entry: its kind, source,
 * data, extra bytes (undefined when none) and sequence number. The arrays
 * are views of the posted buffer.
 */
export type HandOverVisit = (
  kind: number,
  from: Peer,
  data: Uint8Array,
  extra: Uint8Array | undefined,
  seq: number,
) => void;

/**
 * The main thread's side: walks a posted buffer's entries. IPv4 sources
 * come from a bounded cache, one Peer object per source address and port.
 */
export class HandOverReader {
  readonly #peers4 = new Map<number, Peer>();
  readonly #failed: (e: unknown) => void;

  /** @param failed Called with what a visit threw; the walk goes on with the next entry. */
  constructor(failed: (e: unknown) => void) {
    this.#failed = failed;
  }

  /** Calls `visit` for each entry of `buf`, whose first entry has the sequence number `first`. */
  read(buf: ArrayBuffer, first: number, visit: HandOverVisit): void {
    const b = new Uint8Array(buf);
    const v = new DataView(buf);
    let p = 0;
    for (let s = first; p + HAND_OVER_HEADER <= b.length; s++) {
      const kind = b[p]!;
      const fam = b[p + 1]!;
      const port = v.getUint16(p + 2, false);
      const len = v.getUint32(p + 4, false);
      const extra = v.getUint32(p + 8, false);
      const from = fam === 4
        ? this.peer4(v.getUint32(p + 12, false), port)
        : { address: ipv6FromBytes(b, p + 12), port };
      const at = p + HAND_OVER_HEADER;
      const data = b.subarray(at, at + len);
      try {
        visit(kind, from, data, extra > 0 ? b.subarray(at + len, at + len + extra) : undefined, s);
      } catch (e) {
        this.#failed(e);
      }
      p = (at + len + extra + 3) & ~3;
    }
  }

  /** The IPv4 source `address`:`port` (one object per source, not per datagram). */
  peer4(address: number, port: number): Peer {
    const k = address * 65536 + port;
    let peer = this.#peers4.get(k);
    if (peer === undefined) {
      if (this.#peers4.size >= MAX_PEERS) this.#peers4.clear();
      peer = { address: u32ToIpv4(address), port };
      this.#peers4.set(k, peer);
    }
    return peer;
  }
}
