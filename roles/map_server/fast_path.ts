/**
 * The map-server's per-datagram fast path: what its answering Workers
 * (serving.ts) do with each datagram, without allocating.
 *
 * - A Map-Request of the common shape (wire/control_view.ts), plain or in
 *   an ECM without the D bit: answered here when the answer is a negative
 *   Map-Reply (from the configured sites and the registered prefixes of the
 *   shared {@link AnswerTable}) or a proxy Map-Reply whose record the main
 *   thread published; the answer is written into the caller's send buffer,
 *   byte for byte what answerer.ts sends.
 * - The same in an ECM with the D bit (from a DDT map-resolver, RFC 8111
 *   §7.2), when the answer is a proxy Map-Reply and the registered prefix
 *   lies in a `[[lisp-site]]`: the Map-Reply to the ITR-RLOC and, after it
 *   in the buffer, the MS-ACK Map-Referral to the source
 *   ({@link FAST_ANSWERED_DDT}), both byte for byte what answerer.ts sends.
 * - A Map-Register of the common shape whose records fall in one
 *   `[[lisp-site]]` that admits them and whose HMAC checks with that site's
 *   prepared key: verified here, and its Map-Notify (M bit) written and
 *   signed; both go to the main thread, which applies the registration
 *   (limits, store, answer table) and only then sends the Map-Notify.
 * - Anything else goes to the main thread as it came: there the
 *   dispatcher (core/control.ts) parses, counts and handles it as it does
 *   without Workers. A Map-Request whose answer the main thread gives (a
 *   forward to an ETR, another DDT referral, a registration past its expiry) goes
 *   there too, marked as admitted by the rate limit.
 *
 * The rate limit (`control-rate-limit`) is taken here, from the buckets the
 * main thread and every Worker share, for what this path reads; a datagram
 * it refuses is counted and dropped.
 *
 * @module
 */

import {
  MapRegisterView,
  MapRequestView,
  scanMapRegister,
  scanMapRequest,
  writeMapNotifyFrom,
  writeMapReplyHeader,
  writeNegativeRecord,
} from "../../wire/control_view.ts";
import { ACTION, REFERRAL_ACTION } from "../../wire/eid_record.ts";
import { emitLocator, locatorLength } from "../../wire/locator.ts";
import { writeU32 } from "../../wire/tcp.ts";
import { authStatusAt, type HmacKey, signAuthenticatedAt } from "../../wire/auth.ts";
import type { RateLimiter } from "../../core/rate_limit.ts";
import { type AnswerTable, FOUND_NONE, FOUND_PROXY } from "./answers.ts";
import { keyFromBytes, NO_VALUE, SharedTrie, type TrieFamily } from "./shared_trie.ts";
import type { Sites } from "./sites.ts";
import { MS_ACK_TTL, NOT_EID_TTL, NOT_REGISTERED_TTL } from "./answerer.ts";

/** Answered: the answer is in the output buffer. */
export const FAST_ANSWERED = 1;
/** For the main thread, untouched (the rate limit not taken). */
export const FAST_MAIN = 2;
/** For the main thread, the rate limit taken. */
export const FAST_MAIN_ADMITTED = 3;
/** Dropped by the rate limit. */
export const FAST_RATE_LIMITED = 4;
/** A verified Map-Register for the main thread; its Map-Notify (if any) in the output buffer. */
export const FAST_REGISTER = 5;
/**
 * Answered, a DDT request: the Map-Reply as for {@link FAST_ANSWERED}, and the
 * MS-ACK for the source at {@link FastPath.referralAt} ({@link FastPath.referralLength} bytes).
 */
export const FAST_ANSWERED_DDT = 6;

/** What the fast path counts, by index (serving.ts turns them into series). */
export const FAST_COUNTS = [
  "in map-request",
  "in ecm-map-request",
  "in map-register",
  "out map-reply",
  "answered proxy",
  "answered negative-site",
  "answered negative-hole",
  "dropped rate-limited",
  "answered referral",
  "referrals ms-ack",
  "out map-referral",
] as const;
const C_IN_REQUEST = 0;
const C_IN_ECM_REQUEST = 1;
const C_IN_REGISTER = 2;
const C_OUT_REPLY = 3;
const C_PROXY = 4;
const C_NEG_SITE = 5;
const C_NEG_HOLE = 6;
const C_RATE_LIMITED = 7;
const C_REFERRAL = 8;
const C_MS_ACK = 9;
const C_OUT_REFERRAL = 10;

function bump(c: Float64Array, i: number): void {
  c[i] = c[i]! + 1;
}

/** The configured sites, as the fast path looks them up (built once per thread). */
export class SiteIndex {
  /** Site prefixes → site number. */
  readonly sites = new SharedTrie(undefined, false);
  /** Every configured prefix (sites and static registrations). */
  readonly configured = new SharedTrie(undefined, false);
  /** Per site: prefix length. */
  readonly len: number[] = [];
  /** Per site: accept-more-specifics. */
  readonly moreSpecifics: boolean[] = [];
  /** Per site: its prepared key. */
  readonly keys: HmacKey[] = [];
  /** Families answered: bit 1 IPv4, bit 2 IPv6. */
  readonly families: number;
  /** Per site: its MS-ACK referral locators (answerer.ts), as written on the wire. */
  readonly refs: Uint8Array[] = [];
  /** Per site: how many. */
  readonly refCount: number[] = [];
  /** Per site: the referral's I bit. */
  readonly refIncomplete: boolean[] = [];

  /** Indexes the sites of `sites` (sites.ts). */
  constructor(sites: Sites) {
    this.families = (sites.families.has("ipv4") ? 1 : 0) | (sites.families.has("ipv6") ? 2 : 0);
    const put = (
      t: SharedTrie,
      p: { iid: number; family: string; bytes: Uint8Array; len: number },
      v: number,
    ) => {
      if (p.family !== "ipv4" && p.family !== "ipv6") return;
      const f: TrieFamily = p.family === "ipv4" ? 4 : 6;
      keyFromBytes(t.key, f, p.bytes, 0);
      t.beginWrite();
      t.set(p.iid, f, p.len, v);
      t.endWrite();
    };
    sites.list.forEach((s, i) => {
      this.len.push(s.prefix.len);
      this.moreSpecifics.push(s.config.acceptMoreSpecifics);
      this.keys.push(s.key);
      const refs = new Uint8Array(s.referralLocators.reduce((n, l) => n + locatorLength(l), 0));
      let at = 0;
      for (const l of s.referralLocators) at += emitLocator(l, refs, at).length;
      this.refs.push(refs);
      this.refCount.push(s.referralLocators.length);
      this.refIncomplete.push(s.referralIncomplete);
      put(this.sites, s.prefix, i);
    });
    for (const e of sites.configured.entries()) put(this.configured, e.prefix, 1);
  }
}

/** The per-datagram logic of an answering Worker (see the module notes). */
export class FastPath {
  #sites: SiteIndex;
  readonly #answers: AnswerTable;
  readonly #limiter: RateLimiter | undefined;
  readonly #req = new MapRequestView();
  readonly #reg = new MapRegisterView();
  /** Counts by {@link FAST_COUNTS} index (the caller resets them when it has read them). */
  readonly counts: Float64Array;
  /** Of an answer: its length in the output buffer. */
  outLength = 0;
  /** Of an answer: where it goes: 4 or 6. */
  toFamily: 4 | 6 = 4;
  /** Of an answer: the offset of the destination address in the input buffer (-1: the source). */
  toAddress = -1;
  /** Of an answer: the destination port (0: the source's). */
  toPort = 0;
  /** Of a DDT answer: where its MS-ACK starts in the output buffer. */
  referralAt = 0;
  /** Of a DDT answer: the MS-ACK's length. */
  referralLength = 0;
  #lastKind = 0;
  #lastEcm = false;
  #lastDdt = false;

  /**
   * A fast path over `sites`, the shared `answers` and the shared `limiter`
   * (none: no limit), counting into the first {@link FAST_COUNTS} slots of
   * `counts` (default: an array of its own).
   */
  constructor(
    sites: SiteIndex,
    answers: AnswerTable,
    limiter: RateLimiter | undefined,
    counts = new Float64Array(FAST_COUNTS.length),
  ) {
    if (counts.length < FAST_COUNTS.length) throw new RangeError("counts too short");
    this.#sites = sites;
    this.#answers = answers;
    this.#limiter = limiter;
    this.counts = counts;
  }

  /** Answers from `sites` from now on (the API added or removed a site). */
  setSites(sites: SiteIndex): void {
    this.#sites = sites;
  }

  #allowed(src4: number, srcBytes: Uint8Array, src6: number, now: number): boolean {
    const l = this.#limiter;
    if (l === undefined) return true;
    return src6 < 0 ? l.allow4(src4, now) : l.allow6(srcBytes, src6, now);
  }

  /**
   * Handles the datagram `b[start, end)` from the source given by `src4`
   * (an IPv4 address as a u32) or, when `src6` ≥ 0, the 16 bytes at
   * `b[src6]`; writes an answer or a Map-Notify to `out[at, at + room)`.
   * Returns a `FAST_*` code. Never throws for what a peer sent.
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
    if (end - start < 1) return FAST_MAIN;
    const type = b[start]! >>> 4;
    if (type === 3) return this.#register(b, start, end, src4, src6, now, out, at, room);
    const v = this.#req;
    const s = this.#sites;
    if ((type !== 1 && type !== 8) || !scanMapRequest(b, start, end, v, s.families)) {
      return FAST_MAIN;
    }
    if (!this.#allowed(src4, b, src6, now)) {
      bump(this.counts, v.ecm ? C_IN_ECM_REQUEST : C_IN_REQUEST);
      bump(this.counts, C_RATE_LIMITED);
      return FAST_RATE_LIMITED;
    }
    if (room < 12 + 40) return FAST_MAIN_ADMITTED;
    // Where the answer goes (answerer.ts #replyTo).
    if (v.ecm) {
      if (v.itrFamily === 0 || v.innerSrcPort === 0) return FAST_MAIN_ADMITTED;
      this.toFamily = v.itrFamily as 4 | 6;
      this.toAddress = v.itrAddress;
      this.toPort = v.innerSrcPort;
    } else {
      this.toFamily = src6 < 0 ? 4 : 6;
      this.toAddress = -1;
      this.toPort = 0;
    }
    const family = v.eidFamily;
    const bits = family === 4 ? 32 : 128;
    const answers = this.#answers;
    keyFromBytes(answers.trie.key, family, b, v.eidAddress);
    const found = answers.read(v.iid, family, now, out, at + 12, room - 12);
    let n: number;
    let kind: number;
    if (found === FOUND_PROXY) {
      n = answers.recordLength;
      kind = C_PROXY;
    } else if (v.ddt) {
      return FAST_MAIN_ADMITTED; // the referral, or none, is the main thread's
    } else if (found !== FOUND_NONE) {
      return FAST_MAIN_ADMITTED;
    } else {
      const hole = answers.holeLen;
      const sites = s.sites;
      keyFromBytes(sites.key, family, b, v.eidAddress);
      sites.lookup(v.iid, family, bits);
      const site = sites.match.value;
      let len: number;
      let action: number;
      let ttl: number;
      if (site !== NO_VALUE) {
        // Configured, not registered (answerer.ts): the site, or the hole around the EID.
        const siteLen = s.len[site]!;
        len = hole < 0 ? bits : hole < siteLen ? siteLen : hole;
        action = hole < 0 ? ACTION.SEND_MAP_REQUEST : ACTION.NATIVELY_FORWARD;
        ttl = NOT_REGISTERED_TTL;
        kind = C_NEG_SITE;
      } else {
        const c = s.configured;
        keyFromBytes(c.key, family, b, v.eidAddress);
        c.lookup(v.iid, family, bits);
        const h = c.match.common + 1;
        if (c.match.value !== NO_VALUE) return FAST_MAIN_ADMITTED;
        len = h <= bits ? h : bits;
        action = h <= bits ? ACTION.NATIVELY_FORWARD : ACTION.SEND_MAP_REQUEST;
        ttl = h <= bits ? NOT_EID_TTL : NOT_REGISTERED_TTL;
        kind = C_NEG_HOLE;
      }
      n = writeNegativeRecord(
        out,
        at + 12,
        ttl,
        action,
        true,
        v.iid,
        family,
        b,
        v.eidAddress,
        len,
      );
    }
    if (v.ddt && !this.#msAck(b, v.nonce, family, out, at + 12, n, at + 12 + n, room - 12 - n)) {
      return FAST_MAIN_ADMITTED;
    }
    writeMapReplyHeader(out, at, b, v.nonce);
    this.outLength = 12 + n;
    const c = this.counts;
    bump(c, v.ecm ? C_IN_ECM_REQUEST : C_IN_REQUEST);
    bump(c, C_OUT_REPLY);
    bump(c, kind);
    this.#lastKind = kind;
    this.#lastEcm = v.ecm;
    this.#lastDdt = v.ddt;
    if (!v.ddt) return FAST_ANSWERED;
    bump(c, C_REFERRAL);
    bump(c, C_MS_ACK);
    bump(c, C_OUT_REFERRAL);
    return FAST_ANSWERED_DDT;
  }

  /**
   * Writes at `out[to]` the MS-ACK for the proxy record `out[rec, rec + n)`
   * (answerer.ts #sendReferral): its prefix, TTL {@link MS_ACK_TTL}, the A
   * bit, the I bit and locators of the site of the registered prefix.
   * False (nothing to count) when that prefix is in no site or there is no
   * room.
   */
  #msAck(
    b: Uint8Array,
    nonce: number,
    family: TrieFamily,
    out: Uint8Array,
    rec: number,
    n: number,
    to: number,
    room: number,
  ): boolean {
    const s = this.#sites;
    const t = s.sites;
    const len = out[rec + 5]!;
    keyFromBytes(t.key, family, b, this.#req.eidAddress);
    t.lookup(this.#req.iid, family, len);
    const site = t.match.value;
    if (site === NO_VALUE) return false;
    // The record's EID: AFI 1 or 2, or an LCAF with its length.
    const afi = (out[rec + 10]! << 8) | out[rec + 11]!;
    const eid = afi === 1 ? 6 : afi === 2 ? 18 : 8 + ((out[rec + 16]! << 8) | out[rec + 17]!);
    const refs = s.refs[site]!;
    const total = 12 + 10 + eid + refs.length;
    if (12 + 10 + eid > n + 12 || total > room) return false;
    out[to] = 6 << 4;
    out[to + 1] = 0;
    out[to + 2] = 0;
    out[to + 3] = 1;
    for (let i = 0; i < 8; i++) out[to + 4 + i] = b[nonce + i]!;
    const r = to + 12;
    writeU32(out, r, MS_ACK_TTL);
    out[r + 4] = s.refCount[site]!;
    out[r + 5] = len;
    out[r + 6] = (REFERRAL_ACTION.MS_ACK << 5) | 0x10 | (s.refIncomplete[site] ? 0x08 : 0);
    out[r + 7] = 0;
    out[r + 8] = 0;
    out[r + 9] = 0;
    for (let i = 0; i < eid; i++) out[r + 10 + i] = out[rec + 10 + i]!;
    out.set(refs, r + 10 + eid);
    this.referralAt = to;
    this.referralLength = total;
    return true;
  }

  /**
   * Takes back the counts of the last answer, when the caller hands its
   * request to the main thread instead (which counts it there).
   */
  uncount(): void {
    const c = this.counts;
    const i = this.#lastEcm ? C_IN_ECM_REQUEST : C_IN_REQUEST;
    c[i] = c[i]! - 1;
    c[C_OUT_REPLY] = c[C_OUT_REPLY]! - 1;
    c[this.#lastKind] = c[this.#lastKind]! - 1;
    if (this.#lastDdt) {
      c[C_REFERRAL] = c[C_REFERRAL]! - 1;
      c[C_MS_ACK] = c[C_MS_ACK]! - 1;
      c[C_OUT_REFERRAL] = c[C_OUT_REFERRAL]! - 1;
    }
  }

  #register(
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
    const v = this.#reg;
    if (!scanMapRegister(b, start, end, v) || v.records === 0) return FAST_MAIN;
    if (!this.#allowed(src4, b, src6, now)) {
      bump(this.counts, C_IN_REGISTER);
      bump(this.counts, C_RATE_LIMITED);
      return FAST_RATE_LIMITED;
    }
    // Every record in one site that admits it (registrar.ts); the rest, the main thread judges.
    const s = this.#sites;
    const t = s.sites;
    let site = -1;
    for (let i = 0; i < v.records; i++) {
      const family = v.family[i] as TrieFamily;
      keyFromBytes(t.key, family, b, v.address[i]!);
      const len = v.maskLen[i]!;
      t.lookup(v.iid[i]!, family, len);
      const found = t.match.value;
      if (found === NO_VALUE || (site >= 0 && found !== site)) return FAST_MAIN_ADMITTED;
      if (!s.moreSpecifics[found]! && s.len[found]! !== len) return FAST_MAIN_ADMITTED;
      site = found;
    }
    const key = s.keys[site]!;
    if (v.keyId !== key.keyId || authStatusAt(b, start, end, key) !== "ok") {
      return FAST_MAIN_ADMITTED;
    }
    this.outLength = 0;
    if (v.wantMapNotify) {
      if (end - start > room) return FAST_MAIN_ADMITTED;
      const n = writeMapNotifyFrom(b, start, end, out, at);
      signAuthenticatedAt(out, at, at + n, key);
      this.outLength = n;
    }
    bump(this.counts, C_IN_REGISTER);
    return FAST_REGISTER;
  }
}
