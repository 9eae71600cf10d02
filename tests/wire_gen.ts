/**
 * Test-only helpers for `wire/` (not exported from mod.ts): one seeded PRNG
 * and generators of random, valid values for every address kind, locator,
 * EID record, control message, and the LISP and VXLAN-GPE data headers.
 *
 * "Valid" means: `emitX()` accepts the value and `parseX(emitX(x))` gives
 * back a value deep-equal to `x`. The generators keep to the codecs'
 * documented rules (a mask-len that fits its EID, a Map-Referral record's
 * `sigCount` equal to its signature count, a JSON LCAF with `data` only when
 * binary, no N+V data header, ...), so a round-trip failure on one of them
 * is a codec bug, not a generator quirk.
 *
 * Sizes are kept small by default (most lists 0..3 long) with an occasional
 * long one (up to 40 records, 32 ITR-RLOCs, 255 locators), so a test of a
 * thousand cases runs in milliseconds and still meets the limits.
 *
 * @module
 */

import {
  type Address,
  type ElpHop,
  type IPv4Address,
  type IPv6Address,
  type MacAddress,
  maxMaskLen,
  NO_ADDRESS,
  type RleEntry,
} from "../wire/address.ts";
import { authDataLength } from "../wire/auth.ts";
import type { LispDataHeader } from "../wire/data_header.ts";
import type { Ecm, EcmInner } from "../wire/ecm.ts";
import type { EidRecord } from "../wire/eid_record.ts";
import type { Info, InfoReply, InfoRequest } from "../wire/info.ts";
import { ipv4FromBytes, ipv6FromBytes, macFromBytes } from "../wire/ip_text.ts";
import type { LocatorRecord } from "../wire/locator.ts";
import {
  type ControlMessage,
  type ControlMessageType,
  emitControlMessage,
} from "../wire/message.ts";
import type { MapNotify } from "../wire/map_notify.ts";
import type { MapReferral, MapReferralRecord, ReferralSignature } from "../wire/map_referral.ts";
import type { MapRegister } from "../wire/map_register.ts";
import type { MapReply } from "../wire/map_reply.ts";
import type { MapRequest, MapRequestRecord } from "../wire/map_request.ts";
import type { IpUdpSpec } from "../wire/udp.ts";
import type { VxlanGpeHeader } from "../wire/vxlan_gpe.ts";

// ---------------------------------------------------------------------------
// PRNG
// ---------------------------------------------------------------------------

/**
 * A small seeded PRNG (mulberry32) so failures reproduce, with the helpers
 * tests need. `next` is a bound function: pass `rng.next` where a
 * `() => number` is wanted.
 */
export class Rng {
  #a: number;

  /** Starts the sequence for `seed` (taken as an unsigned 32-bit integer). */
  constructor(seed: number) {
    this.#a = seed >>> 0;
  }

  /** The next value in [0, 1). */
  readonly next = (): number => {
    this.#a = (this.#a + 0x6d2b79f5) >>> 0;
    let t = this.#a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };

  /** An integer in [0, max) (0 when max <= 0). */
  int(max: number): number {
    return Math.floor(this.next() * max);
  }

  /** An integer in [lo, hi], both ends included. */
  range(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  /** True with probability `p` (default one half). */
  bool(p = 0.5): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty array. */
  pick<T>(arr: readonly T[]): T {
    if (arr.length === 0) throw new RangeError("pick() from an empty array");
    return arr[Math.floor(this.next() * arr.length)]!;
  }

  /** An unsigned 8-bit integer. */
  u8(): number {
    return Math.floor(this.next() * 256);
  }

  /** An unsigned 16-bit integer. */
  u16(): number {
    return Math.floor(this.next() * 65536);
  }

  /** An unsigned 24-bit integer. */
  u24(): number {
    return Math.floor(this.next() * 0x1000000);
  }

  /** An unsigned 32-bit integer. */
  u32(): number {
    return Math.floor(this.next() * 4294967296);
  }

  /** `n` random bytes. */
  bytes(n: number): Uint8Array {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }

  /** An unsigned 64-bit bigint; now and then an edge value (0, 1, all ones, top bit). */
  bigint64(): bigint {
    if (this.next() < 0.05) return this.pick([0n, 1n, 0xffff_ffff_ffff_ffffn, 1n << 63n]);
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  /** An unsigned 128-bit bigint; now and then an edge value. */
  bigint128(): bigint {
    if (this.next() < 0.05) return this.pick([0n, 1n, (1n << 128n) - 1n, 1n << 127n]);
    return (this.bigint64() << 64n) | this.bigint64();
  }
}

/** A mulberry32 function returning values in [0, 1): `new Rng(seed).next`. */
export function prng(seed: number): () => number {
  return new Rng(seed).next;
}

/**
 * A 32-bit seed derived from `parts` (numbers or strings), e.g. a base seed,
 * a message kind and an iteration number, so each case can be replayed on
 * its own. FNV-1a over the parts, then the murmur3 finaliser.
 */
export function deriveSeed(...parts: readonly (number | string)[]): number {
  let h = 0x811c9dc5;
  for (const p of parts) {
    const s = typeof p === "number" ? (p >>> 0).toString(16) : p;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
    h = Math.imul(h ^ 0x2c, 0x01000193); // separator
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** Lowercase hex of `b`, no separators. */
export function toHex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

/** Bytes from hex text; whitespace, `_` and `#` comments to end of line are ignored. */
export function fromHex(s: string): Uint8Array {
  const t = s.replace(/#[^\n]*/g, "").replace(/[\s_]/g, "");
  if (t.length % 2 !== 0) throw new RangeError(`odd hex length: ${t.length}`);
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) {
    const v = parseInt(t.slice(i * 2, i * 2 + 2), 16);
    if (Number.isNaN(v)) throw new RangeError(`bad hex at ${i * 2}`);
    out[i] = v;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

/** A random IPv4 address; now and then 0.0.0.0 or 255.255.255.255. */
export function randomIPv4(rng: Rng): IPv4Address {
  if (rng.bool(0.05)) return { kind: "ipv4", ip: rng.pick(["0.0.0.0", "255.255.255.255"]) };
  return { kind: "ipv4", ip: ipv4FromBytes(rng.bytes(4), 0) };
}

/**
 * A random IPv6 address in RFC 5952 text: zero runs of any length (so every
 * "::" placement shows up), sometimes IPv4-mapped, "::" or "::1".
 */
export function randomIPv6(rng: Rng): IPv6Address {
  const b = rng.bytes(16);
  const k = rng.int(20);
  if (k === 0) b.set([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff]); // IPv4-mapped
  else if (k === 1) b.fill(0);
  else if (k === 2) b.fill(0, 0, 15);
  else {
    // Zero a run of groups (possibly none, possibly all).
    const from = rng.int(9);
    const to = from + rng.int(9 - from);
    b.fill(0, from * 2, to * 2);
    if (rng.bool(0.2)) {
      const g = rng.int(8); // a single zero group, which must not become "::"
      b[g * 2] = 0;
      b[g * 2 + 1] = 0;
    }
  }
  return { kind: "ipv6", ip: ipv6FromBytes(b, 0) };
}

/** IPv4 or IPv6, one half each. */
export function randomIp(rng: Rng): IPv4Address | IPv6Address {
  return rng.bool() ? randomIPv4(rng) : randomIPv6(rng);
}

/** A random 48-bit MAC address. */
export function randomMac(rng: Rng): MacAddress {
  return { kind: "mac", mac: macFromBytes(rng.bytes(6), 0) };
}

/** A distinguished name of 0..15 characters from 1..255 (Latin-1, no NUL). */
export function randomDn(rng: Rng): Address {
  let name = "";
  for (let i = rng.int(16); i > 0; i--) {
    name += String.fromCharCode(rng.bool(0.7) ? rng.range(0x20, 0x7e) : rng.range(1, 255));
  }
  return { kind: "dn", name };
}

/** An address that is not an LCAF: AFI 0, IPv4, IPv6, MAC or a distinguished name. */
export function randomLeafAddress(rng: Rng): Address {
  switch (rng.int(8)) {
    case 0:
      return NO_ADDRESS;
    case 1:
    case 2:
      return randomIPv4(rng);
    case 3:
    case 4:
      return randomIPv6(rng);
    case 5:
      return randomMac(rng);
    default:
      return randomDn(rng);
  }
}

/**
 * LCAF types address.ts does not model (kept as raw bytes): Null, Opaque
 * Key, Security Key, Encapsulation Format, and unassigned ones.
 */
export const RAW_LCAF_TYPES: readonly number[] = [0, 6, 11, 16, 17, 100, 200, 255];

/**
 * A JSON LCAF text: JSON-shaped, with characters from every UTF-8 length
 * (ASCII, Latin-1, BMP, astral) and now and then a U+FEFF (also first).
 */
export function randomJsonText(rng: Rng): string {
  const n = rng.int(12);
  let s = "";
  for (let i = 0; i < n; i++) {
    switch (rng.int(6)) {
      case 0:
        s += String.fromCodePoint(rng.range(0xa0, 0x7ff));
        break;
      case 1: {
        let c = rng.range(0x800, 0xfffd);
        if (c >= 0xd800 && c <= 0xdfff) c -= 0x800; // no lone surrogates
        s += String.fromCodePoint(c);
        break;
      }
      case 2:
        s += String.fromCodePoint(rng.range(0x10000, 0x10ffff));
        break;
      case 3:
        s += "\ufeff";
        break;
      default:
        s += String.fromCharCode(rng.range(0x20, 0x7e));
    }
  }
  const text = JSON.stringify({ k: s, n: rng.int(1000) });
  return rng.bool(0.1) ? "\ufeff" + text : rng.bool(0.05) ? "" : text;
}

/**
 * Any address: a leaf, or an LCAF of any kind (modelled or raw) nesting
 * further LCAFs up to `depth` levels (address.ts accepts up to 8).
 */
export function randomAddress(rng: Rng, depth = 2): Address {
  if (depth <= 0 || rng.bool(0.35)) return randomLeafAddress(rng);
  const sub = () => randomAddress(rng, depth - 1);
  const list = (max: number) => Array.from({ length: rng.int(max + 1) }, sub);
  switch (rng.int(15)) {
    case 0:
      return { kind: "afi-list", list: list(3) };
    case 1:
      return { kind: "iid", iid: rng.u32(), iidMaskLen: rng.u8(), address: sub() };
    case 2:
      return { kind: "as", asn: rng.u32(), address: sub() };
    case 3:
      return {
        kind: "app-data",
        tos: rng.u24(),
        protocol: rng.u8(),
        localPortLow: rng.u16(),
        localPortHigh: rng.u16(),
        remotePortLow: rng.u16(),
        remotePortHigh: rng.u16(),
        address: sub(),
      };
    case 4:
      return {
        kind: "geo",
        north: rng.bool(),
        latDegrees: rng.int(0x8000),
        latMinutes: rng.u8(),
        latSeconds: rng.u8(),
        east: rng.bool(),
        lonDegrees: rng.int(0x8000),
        lonMinutes: rng.u8(),
        lonSeconds: rng.u8(),
        altitude: rng.u32() | 0,
        address: sub(),
      };
    case 5:
      return {
        kind: "nat",
        msPort: rng.u16(),
        etrPort: rng.u16(),
        globalEtr: sub(),
        ms: sub(),
        privateEtr: sub(),
        rtrs: list(3),
      };
    case 6:
      return { kind: "nonce", nonce: rng.u24(), address: sub() };
    case 7:
      return {
        kind: "mcast",
        iid: rng.u32(),
        r: rng.bool(),
        l: rng.bool(),
        j: rng.bool(),
        sourceMaskLen: rng.u8(),
        groupMaskLen: rng.u8(),
        source: sub(),
        group: sub(),
      };
    case 8:
      return {
        kind: "elp",
        hops: Array.from({ length: rng.int(4) }, (): ElpHop => ({
          lookup: rng.bool(),
          probe: rng.bool(),
          strict: rng.bool(),
          address: sub(),
        })),
      };
    case 9:
      return {
        kind: "src-dst",
        sourceMaskLen: rng.u8(),
        destMaskLen: rng.u8(),
        source: sub(),
        dest: sub(),
      };
    case 10:
      return {
        kind: "rle",
        entries: Array.from({ length: rng.int(4) }, (): RleEntry => ({
          level: rng.u8(),
          address: sub(),
        })),
      };
    case 11:
      return rng.bool()
        ? { kind: "json", binary: false, json: randomJsonText(rng), address: sub() }
        : { kind: "json", binary: true, json: "", data: rng.bytes(rng.int(12)), address: sub() };
    case 12:
      return { kind: "kv", key: sub(), value: sub() };
    default:
      return {
        kind: "lcaf",
        type: rng.pick(RAW_LCAF_TYPES),
        rsvd1: rng.u8(),
        flags: rng.u8(),
        rsvd2: rng.u8(),
        body: rng.bytes(rng.int(12)),
      };
  }
}

/**
 * A chain of `depth` nested LCAFs (Instance-ID, AS, Nonce, AFI-list,
 * Key-Value) around an IPv4 address. address.ts accepts 8 levels and
 * rejects a ninth with a WireError.
 */
export function nestedAddress(rng: Rng, depth: number): Address {
  let a: Address = randomIPv4(rng);
  for (let i = 0; i < depth; i++) {
    switch (rng.int(5)) {
      case 0:
        a = { kind: "iid", iid: rng.u32(), iidMaskLen: 0, address: a };
        break;
      case 1:
        a = { kind: "as", asn: rng.u32(), address: a };
        break;
      case 2:
        a = { kind: "nonce", nonce: rng.u24(), address: a };
        break;
      case 3:
        a = { kind: "afi-list", list: [a] };
        break;
      default:
        a = { kind: "kv", key: NO_ADDRESS, value: a };
    }
  }
  return a;
}

// ---------------------------------------------------------------------------
// EID prefixes, locators and records
// ---------------------------------------------------------------------------

/**
 * An EID prefix address: mostly IPv4/IPv6 or an Instance-ID around one,
 * sometimes a MAC, a source/dest pair, AFI 0 or any LCAF.
 */
export function randomEid(rng: Rng): Address {
  switch (rng.int(10)) {
    case 0:
    case 1:
      return randomIPv4(rng);
    case 2:
    case 3:
      return randomIPv6(rng);
    case 4:
    case 5:
      return { kind: "iid", iid: rng.u32(), iidMaskLen: 0, address: randomIp(rng) };
    case 6:
      return randomMac(rng);
    case 7:
      return {
        kind: "src-dst",
        sourceMaskLen: rng.int(33),
        destMaskLen: rng.int(33),
        source: randomIp(rng),
        dest: randomIp(rng),
      };
    case 8:
      return rng.bool() ? NO_ADDRESS : randomAddress(rng, 1);
    default:
      return randomAddress(rng, 2);
  }
}

/** A mask-len that fits `eid`'s family (0..255 when the family sets no limit). */
export function randomMaskLen(rng: Rng, eid: Address): number {
  const max = maxMaskLen(eid);
  return rng.int((max === 0 ? 255 : max) + 1);
}

/** A locator address: mostly IPv4/IPv6, sometimes an ELP, NAT-Traversal or any LCAF. */
export function randomLocatorAddress(rng: Rng): Address {
  switch (rng.int(10)) {
    case 0:
      return {
        kind: "elp",
        hops: Array.from({ length: rng.range(1, 3) }, (): ElpHop => ({
          lookup: rng.bool(),
          probe: rng.bool(),
          strict: rng.bool(),
          address: randomIp(rng),
        })),
      };
    case 1:
      return randomAddress(rng, 2);
    default:
      return randomIp(rng);
  }
}

/** A locator record. */
export function randomLocator(rng: Rng): LocatorRecord {
  return {
    priority: rng.u8(),
    weight: rng.u8(),
    mPriority: rng.u8(),
    mWeight: rng.u8(),
    local: rng.bool(),
    probed: rng.bool(),
    reachable: rng.bool(),
    address: randomLocatorAddress(rng),
  };
}

/** A locator count: mostly 0..4, sometimes up to 20, rarely up to 255. */
function locatorCount(rng: Rng): number {
  const k = rng.int(100);
  return k === 0 ? rng.int(256) : k < 10 ? rng.int(21) : rng.int(5);
}

/** Options for {@link randomEidRecord}. */
export interface EidRecordOptions {
  /** The SigCnt nibble to use (default: 0 mostly, sometimes any 0..15, which round-trips). */
  readonly sigCount?: number;
}

/** An EID record with 0..n locators, any action, flags and map-version. */
export function randomEidRecord(rng: Rng, opts: EidRecordOptions = {}): EidRecord {
  const eid = randomEid(rng);
  return {
    ttl: rng.bool(0.05) ? 0xffffffff : rng.u32(),
    maskLen: randomMaskLen(rng, eid),
    action: rng.int(8),
    authoritative: rng.bool(),
    incomplete: rng.bool(0.2),
    sigCount: opts.sigCount ?? (rng.bool(0.7) ? 0 : rng.int(16)),
    mapVersion: rng.int(4096),
    eid,
    locators: Array.from({ length: locatorCount(rng) }, () => randomLocator(rng)),
  };
}

// ---------------------------------------------------------------------------
// Control messages
// ---------------------------------------------------------------------------

/**
 * A Map-Request: 1..32 ITR-RLOCs, 0..n records (a fifth with the N bit), a
 * Map-Reply record half the time, an xTR-ID and Site-ID (I bit) a quarter.
 */
export function randomMapRequest(rng: Rng): MapRequest {
  const m: MapRequest = {
    authoritative: rng.bool(),
    probe: rng.bool(),
    smr: rng.bool(),
    pitr: rng.bool(),
    smrInvoked: rng.bool(),
    localXtr: rng.bool(),
    dontMapReply: rng.bool(),
    nonce: rng.bigint64(),
    sourceEid: rng.bool(0.25) ? NO_ADDRESS : randomEid(rng),
    itrRlocs: Array.from(
      { length: 1 + (rng.bool(0.25) ? rng.int(32) : rng.int(3)) },
      () => rng.bool(1 / 6) ? randomAddress(rng, 1) : randomIp(rng),
    ),
    records: Array.from({ length: rng.bool(0.05) ? rng.int(40) : rng.int(4) }, () => {
      const eid = randomEid(rng);
      const rec: MapRequestRecord = { maskLen: randomMaskLen(rng, eid), eid };
      return rng.bool(0.2) ? { ...rec, notify: true } : rec;
    }),
  };
  const withReply: MapRequest = rng.bool() ? { ...m, mapReply: randomEidRecord(rng) } : m;
  // RFC 9437: the I bit with an xTR-ID and Site-ID, a quarter of the time.
  return rng.bool(0.25)
    ? { ...withReply, xtrId: (rng.bigint64() << 64n) | rng.bigint64(), siteId: rng.bigint64() }
    : withReply;
}

/** A Map-Reply with 0..3 records, now and then up to 39. */
export function randomMapReply(rng: Rng): MapReply {
  return {
    probe: rng.bool(),
    echoNonce: rng.bool(),
    security: rng.bool(),
    nonce: rng.bigint64(),
    records: Array.from(
      { length: rng.bool(0.1) ? rng.int(40) : rng.int(4) },
      () => randomEidRecord(rng),
    ),
  };
}

/** Key ID and authentication data: none, SHA-1 (20), SHA-256 (32), or an unknown ID. */
function randomAuth(rng: Rng): { keyId: number; authData: Uint8Array } {
  const keyId = rng.pick([0, 1, 2, rng.u16()]);
  // Now and then more than 1 KiB (parsers copy long fields another way).
  const n = authDataLength(keyId) ?? (rng.bool(0.02) ? rng.range(1025, 1500) : rng.int(41));
  return { keyId, authData: rng.bytes(n) };
}

/** A Map-Register; each flag (I included) is set half the time. */
export function randomMapRegister(rng: Rng): MapRegister {
  const xtrIdPresent = rng.bool();
  const { keyId, authData } = randomAuth(rng);
  const m: MapRegister = {
    proxyReply: rng.bool(),
    securityCapable: rng.bool(),
    xtrIdPresent,
    rtr: rng.bool(),
    eidNotify: rng.bool(),
    useTtlForTimeout: rng.bool(),
    mergeRequest: rng.bool(),
    mobileNode: rng.bool(),
    wantMapNotify: rng.bool(),
    nonce: rng.bigint64(),
    keyId,
    authData,
    records: Array.from(
      { length: rng.bool(0.05) ? rng.int(40) : rng.int(5) },
      () => randomEidRecord(rng),
    ),
  };
  return xtrIdPresent ? { ...m, xtrId: rng.bigint128(), siteId: rng.bigint64() } : m;
}

/**
 * A Map-Notify, or a Map-Notify-Ack when `ack` is true (random when
 * undefined); `ack`, I and R are each set half the time.
 */
export function randomMapNotify(rng: Rng, ack?: boolean): MapNotify {
  const { keyId, authData } = randomAuth(rng);
  let m: MapNotify = {
    ack: ack ?? rng.bool(),
    xtrIdPresent: rng.bool(),
    rtrAuthPresent: rng.bool(),
    nonce: rng.bigint64(),
    keyId,
    authData,
    records: Array.from(
      { length: rng.bool(0.05) ? rng.int(40) : rng.int(4) },
      () => randomEidRecord(rng),
    ),
  };
  if (m.xtrIdPresent) m = { ...m, xtrId: rng.bigint128(), siteId: rng.bigint64() };
  if (m.rtrAuthPresent) {
    const rtr = randomAuth(rng);
    m = { ...m, rtrKeyId: rtr.keyId, rtrAuthData: rtr.authData };
  }
  return m;
}

/** One Map-Referral signature section with 0..79 signature bytes. */
export function randomReferralSignature(rng: Rng): ReferralSignature {
  return {
    originalTtl: rng.u32(),
    expiration: rng.u32(),
    inception: rng.u32(),
    keyTag: rng.u16(),
    algorithm: rng.u8(),
    signature: rng.bytes(rng.int(80)),
  };
}

/** One Map-Referral record: `sigCount` equals the number of signatures (0..15). */
export function randomMapReferralRecord(rng: Rng): MapReferralRecord {
  const n = rng.bool(0.6) ? 0 : rng.bool(0.9) ? rng.range(1, 3) : rng.int(16);
  return {
    record: randomEidRecord(rng, { sigCount: n }),
    signatures: Array.from({ length: n }, () => randomReferralSignature(rng)),
  };
}

/** A Map-Referral with 0..3 records, now and then up to 19. */
export function randomMapReferral(rng: Rng): MapReferral {
  return {
    nonce: rng.bigint64(),
    records: Array.from(
      { length: rng.bool(0.05) ? rng.int(20) : rng.int(4) },
      () => randomMapReferralRecord(rng),
    ),
  };
}

/** A NAT-Traversal LCAF as an Info-Reply carries it (IP RLOCs, 0..4 RTRs). */
export function randomNatTraversal(rng: Rng): InfoReply["nat"] {
  const rloc = () => rng.bool(0.9) ? randomIp(rng) : randomAddress(rng, 1);
  return {
    kind: "nat",
    msPort: rng.u16(),
    etrPort: rng.u16(),
    globalEtr: rloc(),
    ms: rloc(),
    privateEtr: rloc(),
    rtrs: Array.from({ length: rng.int(5) }, rloc),
  };
}

/** Fields Info-Request and Info-Reply share. */
function randomInfoCommon(rng: Rng) {
  const eid = randomEid(rng);
  const { keyId, authData } = randomAuth(rng);
  return {
    nonce: rng.bigint64(),
    keyId,
    authData,
    ttl: rng.u32(),
    maskLen: randomMaskLen(rng, eid),
    eid,
  };
}

/** An Info-Request; its trailing address is AFI 0 mostly, any address sometimes. */
export function randomInfoRequest(rng: Rng): InfoRequest {
  return {
    reply: false,
    ...randomInfoCommon(rng),
    address: rng.bool(0.8) ? NO_ADDRESS : randomAddress(rng, 2),
  };
}

/** An Info-Reply with its NAT-Traversal LCAF. */
export function randomInfoReply(rng: Rng): InfoReply {
  return { reply: true, ...randomInfoCommon(rng), nat: randomNatTraversal(rng) };
}

/** An Info-Request or an Info-Reply, one half each. */
export function randomInfo(rng: Rng): Info {
  return rng.bool() ? randomInfoRequest(rng) : randomInfoReply(rng);
}

/** Inner IP/UDP fields of an ECM in the given family (random when undefined). */
export function randomEcmInner(rng: Rng, family?: 4 | 6): EcmInner {
  const v4 = family === undefined ? rng.bool() : family === 4;
  const addr = () => v4 ? randomIPv4(rng).ip : randomIPv6(rng).ip;
  const common = {
    src: addr(),
    dst: addr(),
    srcPort: rng.u16(),
    dstPort: rng.bool(0.5) ? 4342 : rng.u16(),
    ttl: rng.u8(),
    tos: rng.bool(0.8) ? 0 : rng.u8(),
  };
  return v4
    ? {
      ...common,
      identification: rng.bool(0.8) ? 0 : rng.u16(),
      dontFragment: rng.bool(0.8),
      zeroUdpChecksum: rng.bool(0.2),
    }
    : { ...common, flowLabel: rng.bool(0.8) ? 0 : rng.int(0x100000) };
}

/** Options for {@link randomEcm}. */
export interface EcmOptions {
  /** Inner IP family (random when undefined). */
  readonly family?: 4 | 6;
  /** The inner message bytes (default: a random control message, sometimes random bytes). */
  readonly payload?: Uint8Array;
  /** How many more ECMs may nest inside this one (default 1). */
  readonly nesting?: number;
}

/**
 * An ECM around another control message (any type; an ECM only while
 * `nesting` allows), over IPv4 or IPv6. `checksumOk` is true, as parse
 * reports it for the checksums emit computes.
 */
export function randomEcm(rng: Rng, opts: EcmOptions = {}): Ecm {
  const nesting = opts.nesting ?? 1;
  let payload = opts.payload;
  if (payload === undefined) {
    payload = rng.bool(0.1)
      ? rng.bytes(rng.int(120))
      : emitControlMessage(randomControlMessage(rng, undefined, nesting - 1));
  }
  return {
    security: rng.bool(),
    ddtOriginated: rng.bool(),
    forRtr: rng.bool(),
    rtrRelayed: rng.bool(),
    toEtr: rng.bool(0.2),
    toMs: rng.bool(0.2),
    inner: randomEcmInner(rng, opts.family),
    payload,
    checksumOk: true,
  };
}

/** Every {@link ControlMessageType}, in LISP type order. */
export const CONTROL_MESSAGE_TYPES: readonly ControlMessageType[] = [
  "map-request",
  "map-reply",
  "map-register",
  "map-notify",
  "map-notify-ack",
  "map-referral",
  "info-request",
  "info-reply",
  "ecm",
];

/**
 * A control message of `type` (any type when undefined; an ECM only while
 * `ecmNesting` > 0, and an ECM wraps at most `ecmNesting` levels).
 */
export function randomControlMessage(
  rng: Rng,
  type?: ControlMessageType,
  ecmNesting = 1,
): ControlMessage {
  const types = ecmNesting > 0 ? CONTROL_MESSAGE_TYPES : CONTROL_MESSAGE_TYPES.slice(0, -1);
  const t = type ?? rng.pick(types);
  switch (t) {
    case "map-request":
      return { type: t, msg: randomMapRequest(rng) };
    case "map-reply":
      return { type: t, msg: randomMapReply(rng) };
    case "map-register":
      return { type: t, msg: randomMapRegister(rng) };
    case "map-notify":
      return { type: t, msg: randomMapNotify(rng, false) };
    case "map-notify-ack":
      return { type: t, msg: randomMapNotify(rng, true) };
    case "map-referral":
      return { type: t, msg: randomMapReferral(rng) };
    case "info-request":
      return { type: t, msg: randomInfoRequest(rng) };
    case "info-reply":
      return { type: t, msg: randomInfoReply(rng) };
    case "ecm":
      return { type: t, msg: randomEcm(rng, { nesting: Math.max(0, ecmNesting - 1) }) };
  }
}

// ---------------------------------------------------------------------------
// Data plane headers and IP/UDP packets
// ---------------------------------------------------------------------------

/**
 * A LISP data header as parse returns it: N and V never both set, each
 * field zero unless its flag says it is present.
 */
export function randomLispDataHeader(rng: Rng): LispDataHeader {
  const mode = rng.int(3); // 0: nonce, 1: map versions, 2: neither
  const n = mode === 0;
  const v = mode === 1;
  const i = rng.bool();
  return {
    n,
    l: rng.bool(),
    e: rng.bool(),
    v,
    i,
    flagsReserved: rng.bool(0.7) ? 0 : rng.int(8),
    nonce: n ? rng.u24() : 0,
    sourceMapVersion: v ? rng.int(4096) : 0,
    destMapVersion: v ? rng.int(4096) : 0,
    instanceId: i ? rng.u24() : 0,
    lsb: i ? rng.u8() : rng.u32(),
  };
}

/** A VXLAN-GPE header (any version, flags, Next Protocol and VNI). */
export function randomVxlanGpeHeader(rng: Rng): VxlanGpeHeader {
  return {
    version: rng.bool(0.7) ? 0 : rng.int(4),
    i: rng.bool(),
    p: rng.bool(),
    b: rng.bool(),
    o: rng.bool(),
    nextProtocol: rng.bool(0.7) ? rng.range(1, 4) : rng.u8(),
    vni: rng.u24(),
  };
}

/**
 * An IPv4/UDP or IPv6/UDP packet spec for `emitIpUdp` (family random when
 * undefined): the UDP data is a random control message or random bytes.
 */
export function randomIpUdp(rng: Rng, family?: 4 | 6): IpUdpSpec {
  const inner = randomEcmInner(rng, family);
  return {
    ...inner,
    payload: rng.bool(0.3)
      ? rng.bytes(rng.int(64))
      : emitControlMessage(randomControlMessage(rng, undefined, 0)),
  };
}
