/**
 * Mutation fuzzing of every wire/ parser.
 *
 * Valid messages of every kind (from `_testing.ts`) are emitted, then
 * mutated: bit flips (1–8 bits), truncation, random bytes appended or
 * inserted, a segment duplicated, bytes swapped, a range zeroed, and the
 * length and count fields (found by position for each message type: record
 * count, IRC, LCAF length, authentication data length, JSON length, locator
 * count, SigCnt, signature length, inner IP/UDP lengths, ...) overwritten
 * with edge values. Each input goes to the parser for its kind, and:
 *
 * - anything thrown that is not a `WireError` fails (so does a `WireError`
 *   whose offset is outside the input or whose field is not a dotted
 *   lowercase name);
 * - a parse that succeeds must survive emit → parse with a deep-equal
 *   result, `xLength()` must match the emitted length, and a second emit
 *   must give the same bytes. An ECM's inner message (and an IP/UDP
 *   packet's payload) is then parsed the same way, as a receiver would;
 * - no input may take more than `SLOW_MS` milliseconds (a slow one is timed
 *   twice more, so a GC pause or a busy machine does not count), and the whole run
 *   has a time limit: the fuzzing runs in Workers (one per core, at most
 *   two by default), which the test terminates when the limit passes,
 *   reporting the input that was running.
 *
 * Environment: `OOR_FUZZ_SEED` (default {@link DEFAULT_SEED}; decimal or
 * 0x hex), `OOR_FUZZ_ITERATIONS` (total inputs, default
 * {@link DEFAULT_ITERATIONS}), `OOR_FUZZ_WORKERS`, `OOR_FUZZ_TIMEOUT`
 * (seconds), and `OOR_FUZZ_ONLY=<target>[:<iteration>]` to replay one target
 * or one input in the main thread (a failure report prints this line).
 *
 * The only documented exception to "parse succeeds ⇒ emit succeeds": a LISP
 * data header with both N and V set parses (RFC 9300 §5.3 says to read the
 * field as a nonce) and emit refuses it with a RangeError (data_header.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { type Address, addressLength, AFI, afiOf, emitAddress, parseAddress } from "./address.ts";
import { emitLispDataHeader, parseLispDataHeader } from "./data_header.ts";
import type { Ecm } from "./ecm.ts";
import { type EidRecord, eidRecordLength } from "./eid_record.ts";
import { WireError } from "./errors.ts";
import { isIPv4 } from "./ip_text.ts";
import { locatorLength } from "./locator.ts";
import {
  type ControlMessage,
  controlMessageLength,
  type ControlMessageType,
  emitControlMessage,
  parseControlMessage,
} from "./message.ts";
import { emitIpUdp, type IpUdpPacket, type IpUdpSpec, parseIpUdp } from "./udp.ts";
import { emitVxlanGpeHeader, parseVxlanGpeHeader } from "./vxlan_gpe.ts";
import {
  deriveSeed,
  fromHex,
  nestedAddress,
  randomAddress,
  randomControlMessage,
  randomEcm,
  randomIpUdp,
  randomLispDataHeader,
  randomVxlanGpeHeader,
  Rng,
  toHex,
} from "../tests/wire_gen.ts";

/** Seed used unless `OOR_FUZZ_SEED` says otherwise. */
export const DEFAULT_SEED = 0x4c495350; // "LISP"
/** Inputs across all targets unless `OOR_FUZZ_ITERATIONS` says otherwise. */
export const DEFAULT_ITERATIONS = 240_000;
/** An input taking longer than this fails the run. */
const SLOW_MS = 250;
/** Valid messages generated per target; every input mutates one of them. */
const POOL_SIZE = 64;
/** How deep the fuzzer follows ECMs nested in ECMs. */
const MAX_INNER_DEPTH = 4;
/** Bytes of the running input kept in shared memory for a timeout report. */
const SHARED_INPUT_BYTES = 1 << 17;

// ---------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------

/** A property the fuzzer checks did not hold. */
class FuzzFailure extends Error {
  constructor(what: string, cause?: unknown) {
    super(cause === undefined ? what : `${what}:\n${describe(cause)}`);
    this.name = "FuzzFailure";
  }
}

function describe(e: unknown): string {
  if (e instanceof Error) return e.stack ?? `${e.name}: ${e.message}`;
  return String(e);
}

// ---------------------------------------------------------------------------
// Length and count fields, by position
// ---------------------------------------------------------------------------

/** A field to overwrite: `size` bytes at `off`; with a mask, only those bits. */
interface Field {
  readonly off: number;
  readonly size: 1 | 2;
  readonly mask: number;
}

function field(out: Field[], off: number, size: 1 | 2, mask = 0): void {
  out.push({ off, size, mask });
}

/** AFI, and for an LCAF its type and length and every nested address and length. */
function addressFields(a: Address, off: number, out: Field[]): void {
  field(out, off, 2); // AFI
  if (afiOf(a) !== AFI.LCAF) return;
  field(out, off + 4, 1); // LCAF type
  field(out, off + 6, 2); // LCAF length
  let p = off + 8;
  const seq = (list: readonly Address[]) => {
    for (const x of list) {
      addressFields(x, p, out);
      p += addressLength(x);
    }
  };
  switch (a.kind) {
    case "afi-list":
      seq(a.list);
      break;
    case "iid":
      field(out, off + 5, 1); // IID mask-len (Rsvd2)
      addressFields(a.address, p + 4, out);
      break;
    case "as":
    case "nonce":
      addressFields(a.address, p + 4, out);
      break;
    case "app-data":
    case "geo":
      addressFields(a.address, p + 12, out);
      break;
    case "nat":
      p += 4;
      seq([a.globalEtr, a.ms, a.privateEtr, ...a.rtrs]);
      break;
    case "mcast":
      field(out, p + 6, 1);
      field(out, p + 7, 1);
      p += 8;
      seq([a.source, a.group]);
      break;
    case "elp":
      for (const h of a.hops) {
        p += 2;
        seq([h.address]);
      }
      break;
    case "src-dst":
      field(out, p + 2, 1);
      field(out, p + 3, 1);
      p += 4;
      seq([a.source, a.dest]);
      break;
    case "rle":
      for (const e of a.entries) {
        p += 4;
        seq([e.address]);
      }
      break;
    case "json": {
      field(out, off + 5, 1, 0x01); // B bit
      field(out, p, 2); // JSON length
      p += 2 + jsonLength(a);
      seq([a.address]);
      break;
    }
    case "kv":
      seq([a.key, a.value]);
      break;
    default:
      break;
  }
}

function jsonLength(a: Address & { kind: "json" }): number {
  return a.binary ? (a.data?.length ?? 0) : new TextEncoder().encode(a.json).length;
}

function eidRecordFields(rec: EidRecord, off: number, out: Field[]): void {
  field(out, off + 4, 1); // Locator Count
  field(out, off + 5, 1); // EID mask-len
  field(out, off + 8, 1, 0xf0); // SigCnt
  addressFields(rec.eid, off + 10, out);
  let p = off + 10 + addressLength(rec.eid);
  for (const l of rec.locators) {
    addressFields(l.address, p + 6, out);
    p += locatorLength(l);
  }
}

function recordsFields(recs: readonly EidRecord[], p: number, out: Field[]): number {
  for (const r of recs) {
    eidRecordFields(r, p, out);
    p += eidRecordLength(r);
  }
  return p;
}

/** Inner IPv4/IPv6 and UDP length fields of an IP/UDP packet at `off`; returns the UDP data offset. */
function ipUdpFields(v4: boolean, off: number, out: Field[]): number {
  field(out, off, 1, 0xf0); // version
  if (v4) {
    field(out, off, 1, 0x0f); // IHL
    field(out, off + 2, 2); // total length
    field(out, off + 6, 2); // flags, fragment offset
    field(out, off + 9, 1); // protocol
  } else {
    field(out, off + 4, 2); // payload length
    field(out, off + 6, 1); // next header
  }
  const udp = off + (v4 ? 20 : 40);
  field(out, udp + 4, 2); // UDP length
  return udp + 8;
}

function controlFields(m: ControlMessage, off: number, out: Field[]): void {
  field(out, off, 1, 0xf0); // type
  switch (m.type) {
    case "map-request": {
      const q = m.msg;
      field(out, off, 1, 0x04); // M
      field(out, off + 1, 1, 0x10); // I (RFC 9437): xTR-ID and Site-ID follow
      field(out, off + 2, 1, 0x1f); // IRC
      field(out, off + 3, 1); // Record Count
      let p = off + 12;
      for (const a of [q.sourceEid, ...q.itrRlocs]) {
        addressFields(a, p, out);
        p += addressLength(a);
      }
      for (const r of q.records) {
        field(out, p, 1, 0x80); // N (RFC 9437)
        field(out, p + 1, 1); // EID mask-len
        addressFields(r.eid, p + 2, out);
        p += 2 + addressLength(r.eid);
      }
      if (q.mapReply !== undefined) eidRecordFields(q.mapReply, p, out);
      break;
    }
    case "map-reply":
      field(out, off + 3, 1);
      recordsFields(m.msg.records, off + 12, out);
      break;
    case "map-register":
      field(out, off, 1, 0x02); // I
      field(out, off + 3, 1);
      field(out, off + 14, 2); // Authentication Data Length
      recordsFields(m.msg.records, off + 16 + m.msg.authData.length, out);
      break;
    case "map-notify":
    case "map-notify-ack": {
      const n = m.msg;
      field(out, off, 1, 0x0c); // I, R
      field(out, off + 3, 1);
      field(out, off + 14, 2);
      let p = recordsFields(n.records, off + 16 + n.authData.length, out);
      if (n.xtrIdPresent) p += 24;
      if (n.rtrAuthPresent) field(out, p + 2, 2); // MS-RTR Authentication Data Length
      break;
    }
    case "map-referral": {
      field(out, off + 3, 1);
      let p = off + 12;
      for (const r of m.msg.records) {
        eidRecordFields(r.record, p, out);
        p += eidRecordLength(r.record);
        for (const s of r.signatures) {
          field(out, p + 14, 2); // Sig Length
          p += 20 + s.signature.length;
        }
      }
      break;
    }
    case "info-request":
    case "info-reply": {
      const i = m.msg;
      field(out, off, 1, 0x08); // R
      field(out, off + 14, 2);
      const p = off + 16 + i.authData.length;
      field(out, p + 5, 1); // EID mask-len
      addressFields(i.eid, p + 6, out);
      addressFields(i.reply ? i.nat : i.address, p + 6 + addressLength(i.eid), out);
      break;
    }
    case "ecm": {
      const e = m.msg;
      const data = ipUdpFields(isIPv4(e.inner.src), off + 4, out);
      const inner = tryParse(e.payload);
      if (inner !== undefined) controlFields(inner, data, out);
      break;
    }
  }
}

function tryParse(b: Uint8Array): ControlMessage | undefined {
  try {
    return parseControlMessage(b);
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------

/** Per-target counters. */
interface Counts {
  inputs: number;
  parsed: number;
  rejected: number;
  inner: number;
}

const FIELD_NAME =
  /^[a-z0-9]+(?:-[a-z0-9]+)*(?:\[\d+\])?(?:\.[a-z0-9]+(?:-[a-z0-9]+)*(?:\[\d+\])?)*$/;

/** Throws unless `e` is a well-formed WireError for an input of `length` bytes. */
function checkWireError(e: unknown, length: number, what: string): void {
  if (!(e instanceof WireError)) throw new FuzzFailure(`${what} threw a non-WireError`, e);
  if (!Number.isInteger(e.offset) || e.offset < 0 || e.offset > length) {
    throw new FuzzFailure(
      `${what}: WireError offset ${e.offset} outside the ${length}-byte input`,
      e,
    );
  }
  if (!FIELD_NAME.test(e.field)) {
    throw new FuzzFailure(
      `${what}: WireError field ${JSON.stringify(e.field)} is not a dotted name`,
      e,
    );
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Deep equality for parsed records (plain objects, arrays, Uint8Array, bigint, primitives). */
function deepEq(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (a instanceof Uint8Array) return b instanceof Uint8Array && bytesEqual(a, b);
  if (b instanceof Uint8Array) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEq(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  for (const k of ka) if (!Object.hasOwn(rb, k) || !deepEq(ra[k], rb[k])) return false;
  return true;
}

function mustEqual(got: unknown, want: unknown, what: string): void {
  if (deepEq(got, want)) return;
  let diff = "";
  try {
    assert.deepStrictEqual(got, want);
  } catch (e) {
    diff = e instanceof Error ? e.message : String(e);
  }
  throw new FuzzFailure(`${what}\n${diff.slice(0, 4000)}`);
}

function attempt<T>(f: () => T, what: string): T {
  try {
    return f();
  } catch (e) {
    throw new FuzzFailure(what, e);
  }
}

/** An ECM record without the parse-only `checksumOk`. */
function withoutChecksum(e: Ecm): Omit<Ecm, "checksumOk"> {
  const { checksumOk: _, ...rest } = e;
  return rest;
}

/**
 * Parses `bytes` as a control message; on success checks emit → parse and
 * follows an ECM's inner message. Returns whether the parse succeeded.
 */
function checkControl(bytes: Uint8Array, depth: number, c: Counts): boolean {
  let m: ControlMessage;
  try {
    m = parseControlMessage(bytes);
  } catch (e) {
    checkWireError(e, bytes.length, "parseControlMessage()");
    return false;
  }
  const out = attempt(
    () => emitControlMessage(m),
    `emitControlMessage() threw for a parsed ${m.type}`,
  );
  if (out.length !== controlMessageLength(m)) {
    throw new FuzzFailure(`controlMessageLength() ${controlMessageLength(m)} != ${out.length}`);
  }
  const back = attempt(() => parseControlMessage(out), `re-parsing an emitted ${m.type} threw`);
  if (m.type === "ecm" && back.type === "ecm") {
    mustEqual(withoutChecksum(back.msg), withoutChecksum(m.msg), "ECM differs after emit → parse");
    if (back.msg.checksumOk !== true) throw new FuzzFailure("emitted ECM has bad checksums");
  } else {
    mustEqual(back, m, `${m.type} differs after emit → parse`);
  }
  const again = attempt(() => emitControlMessage(back), "second emit threw");
  if (!bytesEqual(again, out)) {
    throw new FuzzFailure(`second emit differs: ${toHex(out)} then ${toHex(again)}`);
  }
  if (m.type === "ecm" && depth < MAX_INNER_DEPTH) {
    c.inner++;
    checkControl(m.msg.payload, depth + 1, c);
  }
  return true;
}

function ipUdpView(p: IpUdpPacket): IpUdpSpec {
  return {
    src: p.ip.src,
    dst: p.ip.dst,
    srcPort: p.udp.srcPort,
    dstPort: p.udp.dstPort,
    ttl: p.ip.version === 4 ? p.ip.ttl : p.ip.hopLimit,
    payload: p.payload,
  };
}

function checkIpUdp(bytes: Uint8Array, c: Counts): boolean {
  let p: IpUdpPacket;
  try {
    p = parseIpUdp(bytes);
  } catch (e) {
    checkWireError(e, bytes.length, "parseIpUdp()");
    return false;
  }
  const spec = ipUdpView(p);
  const out = attempt(() => emitIpUdp(spec), "emitIpUdp() threw for a parsed packet");
  const back = attempt(() => parseIpUdp(out), "re-parsing an emitted IP/UDP packet threw");
  mustEqual(ipUdpView(back), spec, "IP/UDP fields differ after emit → parse");
  if (!back.checksumOk) throw new FuzzFailure("emitted IP/UDP packet has bad checksums");
  c.inner++;
  checkControl(p.payload, 1, c);
  return true;
}

function checkAddress(bytes: Uint8Array): boolean {
  let a: Address;
  try {
    a = parseAddress(bytes);
  } catch (e) {
    checkWireError(e, bytes.length, "parseAddress()");
    return false;
  }
  const out = attempt(() => emitAddress(a), "emitAddress() threw for a parsed address");
  if (out.length !== addressLength(a)) throw new FuzzFailure("addressLength() disagrees with emit");
  const back = attempt(() => parseAddress(out), "re-parsing an emitted address threw");
  mustEqual(back, a, "address differs after emit → parse");
  if (!bytesEqual(emitAddress(back), out)) throw new FuzzFailure("second emit differs");
  return true;
}

function checkDataHeader(bytes: Uint8Array): boolean {
  let h;
  try {
    h = parseLispDataHeader(bytes);
  } catch (e) {
    checkWireError(e, bytes.length, "parseLispDataHeader()");
    return false;
  }
  if (h.n && h.v) {
    // Documented in data_header.ts: parsed (the field is a nonce), never emitted.
    assert.throws(() => emitLispDataHeader(h), RangeError);
    return true;
  }
  const out = attempt(
    () => emitLispDataHeader(h),
    "emitLispDataHeader() threw for a parsed header",
  );
  mustEqual(parseLispDataHeader(out), h, "LISP data header differs after emit → parse");
  return true;
}

function checkVxlanGpe(bytes: Uint8Array): boolean {
  let h;
  try {
    h = parseVxlanGpeHeader(bytes);
  } catch (e) {
    checkWireError(e, bytes.length, "parseVxlanGpeHeader()");
    return false;
  }
  const out = attempt(
    () => emitVxlanGpeHeader(h),
    "emitVxlanGpeHeader() threw for a parsed header",
  );
  mustEqual(parseVxlanGpeHeader(out), h, "VXLAN-GPE header differs after emit → parse");
  return true;
}

// ---------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------

/** A valid input and the positions of its length and count fields. */
interface Base {
  readonly bytes: Uint8Array;
  readonly fields: readonly Field[];
}

interface Target {
  readonly name: string;
  /** Share of the iterations. */
  readonly weight: number;
  make(rng: Rng): Base;
  check(bytes: Uint8Array, c: Counts): boolean;
}

function controlTarget(type: ControlMessageType, weight: number): Target {
  return {
    name: type,
    weight,
    make(rng) {
      const m = randomControlMessage(rng, type, 1);
      const fields: Field[] = [];
      controlFields(m, 0, fields);
      return { bytes: emitControlMessage(m), fields };
    },
    check: (b, c) => checkControl(b, 0, c),
  };
}

function ecmTarget(family: 4 | 6, weight: number): Target {
  return {
    name: `ecm-ipv${family}`,
    weight,
    make(rng) {
      const m: ControlMessage = { type: "ecm", msg: randomEcm(rng, { family, nesting: 2 }) };
      const fields: Field[] = [];
      controlFields(m, 0, fields);
      return { bytes: emitControlMessage(m), fields };
    },
    check: (b, c) => checkControl(b, 0, c),
  };
}

function ipUdpTarget(family: 4 | 6, weight: number): Target {
  return {
    name: `ip-udp-ipv${family}`,
    weight,
    make(rng) {
      const spec = randomIpUdp(rng, family);
      const fields: Field[] = [];
      const data = ipUdpFields(family === 4, 0, fields);
      const inner = tryParse(spec.payload);
      if (inner !== undefined) controlFields(inner, data, fields);
      return { bytes: emitIpUdp(spec), fields };
    },
    check: checkIpUdp,
  };
}

/** Random bytes after an 8-byte header, as in a packet. */
function withPayload(rng: Rng, header: Uint8Array): Uint8Array {
  const out = new Uint8Array(header.length + rng.int(24));
  out.set(header);
  out.set(rng.bytes(out.length - header.length), header.length);
  return out;
}

/** Every target, with its share of the iterations. */
const TARGETS: readonly Target[] = [
  controlTarget("map-request", 10),
  controlTarget("map-reply", 10),
  controlTarget("map-register", 10),
  controlTarget("map-notify", 7),
  controlTarget("map-notify-ack", 5),
  controlTarget("map-referral", 8),
  controlTarget("info-request", 6),
  controlTarget("info-reply", 6),
  ecmTarget(4, 6),
  ecmTarget(6, 6),
  ipUdpTarget(4, 4),
  ipUdpTarget(6, 4),
  {
    name: "address",
    weight: 10,
    make(rng) {
      const a = rng.bool(0.1) ? nestedAddress(rng, rng.range(1, 8)) : randomAddress(rng, 4);
      const fields: Field[] = [];
      addressFields(a, 0, fields);
      return { bytes: emitAddress(a), fields };
    },
    check: (b) => checkAddress(b),
  },
  {
    name: "lisp-data-header",
    weight: 2,
    make: (rng) => ({
      bytes: withPayload(rng, emitLispDataHeader(randomLispDataHeader(rng))),
      fields: [{ off: 0, size: 1, mask: 0 }],
    }),
    check: (b) => checkDataHeader(b),
  },
  {
    name: "vxlan-gpe",
    weight: 2,
    make: (rng) => ({
      bytes: withPayload(rng, emitVxlanGpeHeader(randomVxlanGpeHeader(rng))),
      fields: [{ off: 0, size: 1, mask: 0 }, { off: 3, size: 1, mask: 0 }],
    }),
    check: (b) => checkVxlanGpe(b),
  },
];

// ---------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------

function splice(b: Uint8Array, at: number, insert: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length + insert.length);
  out.set(b.subarray(0, at));
  out.set(insert, at);
  out.set(b.subarray(at), at + insert.length);
  return out;
}

function randomFill(rng: Rng, n: number): Uint8Array {
  const k = rng.int(4);
  if (k === 0) return new Uint8Array(n);
  if (k === 1) return new Uint8Array(n).fill(0xff);
  return rng.bytes(n);
}

/** A new value for a field whose current value is `v` (at most `max`), `rest` bytes after it. */
function fieldValue(rng: Rng, v: number, max: number, rest: number): number {
  let x: number;
  switch (rng.int(10)) {
    case 0:
      x = 0;
      break;
    case 1:
      x = 1;
      break;
    case 2:
      x = max;
      break;
    case 3:
      x = v + 1;
      break;
    case 4:
      x = v - 1;
      break;
    case 5:
      x = v + rng.range(-8, 8);
      break;
    case 6:
      x = rest + rng.range(-2, 2);
      break;
    case 7:
      x = (max + 1) >>> 1;
      break;
    default:
      x = rng.int(max + 1);
  }
  return ((x % (max + 1)) + max + 1) % (max + 1);
}

/** Applies one mutation to `b` (possibly in place); returns the result and appends a description. */
function mutateOnce(rng: Rng, b: Uint8Array, base: Base, log: string[]): Uint8Array {
  const len = b.length;
  const k = rng.int(100);
  if (k < 30 && base.fields.length > 0) {
    const f = rng.pick(base.fields);
    if (f.off + f.size <= len) {
      const cur = f.size === 1 ? b[f.off]! : (b[f.off]! << 8) | b[f.off + 1]!;
      const full = f.size === 1 ? 0xff : 0xffff;
      const rest = len - f.off - f.size;
      let next: number;
      if (f.mask === 0) {
        next = fieldValue(rng, cur, full, rest);
      } else {
        const shift = 31 - Math.clz32(f.mask & -f.mask);
        const bits = fieldValue(rng, (cur & f.mask) >>> shift, f.mask >>> shift, rest);
        next = (cur & ~f.mask) | ((bits << shift) & f.mask);
      }
      if (f.size === 1) b[f.off] = next;
      else {
        b[f.off] = next >>> 8;
        b[f.off + 1] = next & 0xff;
      }
      log.push(
        `field@${f.off}/${f.size}${f.mask ? `&0x${f.mask.toString(16)}` : ""}=0x${
          next.toString(16)
        }`,
      );
      return b;
    }
  }
  if (k < 50 || len === 0) {
    if (len === 0) {
      log.push("append");
      return rng.bytes(rng.range(1, 16));
    }
    const n = rng.range(1, 8);
    for (let i = 0; i < n; i++) {
      const bit = rng.int(len * 8);
      b[bit >>> 3]! ^= 1 << (bit & 7);
    }
    log.push(`flip${n}`);
    return b;
  }
  if (k < 60) {
    const at = rng.int(len);
    log.push(`truncate@${at}`);
    return b.subarray(0, at);
  }
  if (k < 67) {
    const n = rng.range(1, 16);
    log.push(`append${n}`);
    return splice(b, len, randomFill(rng, n));
  }
  if (k < 74) {
    const at = rng.int(len + 1);
    const n = rng.range(1, 16);
    log.push(`insert${n}@${at}`);
    return splice(b, at, randomFill(rng, n));
  }
  if (k < 81) {
    const from = rng.int(len);
    const n = rng.range(1, Math.min(32, len - from));
    const at = rng.int(len + 1);
    log.push(`dup${n}@${from}->${at}`);
    return splice(b, at, b.slice(from, from + n));
  }
  if (k < 90) {
    const i = rng.int(len);
    const j = rng.bool() ? Math.min(len - 1, i + 1) : rng.int(len);
    const t = b[i]!;
    b[i] = b[j]!;
    b[j] = t;
    log.push(`swap${i},${j}`);
    return b;
  }
  const at = rng.int(len);
  const n = rng.bool(0.8) ? rng.range(1, 8) : len - at;
  b.fill(0, at, at + n);
  log.push(`zero${n}@${at}`);
  return b;
}

/** One fuzz input: a mutated copy of a pooled message. */
function makeInput(rng: Rng, pool: readonly Base[], log: string[]): Uint8Array {
  const base = rng.pick(pool);
  let b: Uint8Array = base.bytes.slice();
  const n = rng.bool(0.7) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) b = mutateOnce(rng, b, base, log);
  return b;
}

// ---------------------------------------------------------------------------
// Running
// ---------------------------------------------------------------------------

/** Valid messages for a target; each must itself parse and round-trip. */
function makePool(t: Target, seed: number): Base[] {
  const rng = new Rng(deriveSeed(seed, t.name, "pool"));
  const pool: Base[] = [];
  const c: Counts = { inputs: 0, parsed: 0, rejected: 0, inner: 0 };
  for (let i = 0; i < POOL_SIZE; i++) {
    const base = t.make(rng);
    if (!t.check(base.bytes, c)) {
      throw new FuzzFailure(
        `${t.name}: generated message #${i} does not parse: ${toHex(base.bytes)}`,
      );
    }
    pool.push(base);
  }
  return pool;
}

/** Inputs for each target out of `total`, by weight. */
function shares(total: number): number[] {
  const sum = TARGETS.reduce((s, t) => s + t.weight, 0);
  return TARGETS.map((t) => Math.ceil((total * t.weight) / sum));
}

/** Where the running input is kept, for a report if the run times out. */
interface Shared {
  readonly header: Int32Array; // target index, iteration, input length
  readonly data: Uint8Array;
}

function sharedOf(sab: SharedArrayBuffer): Shared {
  return { header: new Int32Array(sab, 0, 4), data: new Uint8Array(sab, 16) };
}

/** Result of one target's run. */
interface TargetResult {
  readonly name: string;
  readonly counts: Counts;
  readonly ms: number;
}

function replayLine(seed: number, name: string, i: number): string {
  return `OOR_FUZZ_SEED=0x${seed.toString(16)} OOR_FUZZ_ONLY=${name}:${i}`;
}

/**
 * Runs iterations [from, to) of target `ti`. Throws a FuzzFailure (with the
 * seed, the input and a replay line) on the first failing input.
 */
function runTarget(
  ti: number,
  seed: number,
  from: number,
  to: number,
  shared?: Shared,
): TargetResult {
  const t = TARGETS[ti]!;
  const pool = makePool(t, seed);
  const c: Counts = { inputs: 0, parsed: 0, rejected: 0, inner: 0 };
  const log: string[] = [];
  const t0 = performance.now();
  for (let i = from; i < to; i++) {
    log.length = 0;
    const rng = new Rng(deriveSeed(seed, t.name, i));
    const input = makeInput(rng, pool, log);
    if (shared !== undefined) {
      shared.header[0] = ti;
      shared.header[1] = i;
      shared.header[2] = input.length;
      shared.data.set(
        input.length <= shared.data.length ? input : input.subarray(0, shared.data.length),
      );
    }
    const s = performance.now();
    try {
      if (t.check(input, c)) c.parsed++;
      else c.rejected++;
      let took = performance.now() - s;
      // A pause (GC, a busy machine) is not the input's fault: a slow input is slow every time.
      for (let k = 0; k < 2 && took > SLOW_MS; k++) {
        const again = performance.now();
        t.check(input, { inputs: 0, parsed: 0, rejected: 0, inner: 0 });
        took = performance.now() - again;
      }
      if (took > SLOW_MS) throw new FuzzFailure(`took ${took.toFixed(0)} ms (limit ${SLOW_MS} ms)`);
    } catch (e) {
      throw new FuzzFailure(
        `fuzz failure in ${t.name}, seed 0x${seed.toString(16)}, iteration ${i}` +
          ` (mutations: ${log.join(" ")})\n` +
          `replay: ${replayLine(seed, t.name, i)}\n` +
          `input (${input.length} bytes): ${toHex(input)}\n` +
          describe(e),
      );
    }
    c.inputs++;
  }
  return { name: t.name, counts: c, ms: performance.now() - t0 };
}

// ---------------------------------------------------------------------------
// Worker side
// ---------------------------------------------------------------------------

/** What the test sends a worker. */
interface WorkerJob {
  readonly seed: number;
  readonly jobs: readonly { readonly ti: number; readonly n: number }[];
  readonly sab: SharedArrayBuffer;
}

/** What a worker sends back. */
type WorkerReply =
  | { readonly kind: "done"; readonly results: readonly TargetResult[] }
  | { readonly kind: "fail"; readonly report: string };

interface Port {
  postMessage(m: WorkerReply): void;
  onmessage: ((e: MessageEvent<WorkerJob>) => void) | null;
}

const IN_WORKER = new URL(import.meta.url).searchParams.has("fuzz-worker");

if (IN_WORKER) {
  const port = globalThis as unknown as Port;
  port.onmessage = (e) => {
    const job = e.data;
    const shared = sharedOf(job.sab);
    const results: TargetResult[] = [];
    try {
      for (const { ti, n } of job.jobs) results.push(runTarget(ti, job.seed, 0, n, shared));
      Atomics.store(shared.header, 3, 1); // finished
      port.postMessage({ kind: "done", results });
    } catch (err) {
      port.postMessage({ kind: "fail", report: describe(err).replace(/^FuzzFailure: /, "") });
    }
  };
}

// ---------------------------------------------------------------------------
// Test side
// ---------------------------------------------------------------------------

function env(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: defaults
  }
}

function envInt(name: string, fallback: number): number {
  const v = env(name);
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new TypeError(`${name}=${v} is not a whole number`);
  return n;
}

/** Splits the targets over `w` workers, heaviest first onto the least loaded. */
function plan(n: readonly number[], w: number): { ti: number; n: number }[][] {
  const bins = Array.from(
    { length: w },
    () => ({ load: 0, jobs: [] as { ti: number; n: number }[] }),
  );
  const order = n.map((c, ti) => ({ ti, c })).sort((a, b) => b.c - a.c);
  for (const { ti, c } of order) {
    const bin = bins.reduce((a, b) => (b.load < a.load ? b : a));
    bin.jobs.push({ ti, n: c });
    bin.load += c;
  }
  return bins.map((b) => b.jobs).filter((j) => j.length > 0);
}

function report(results: readonly TargetResult[], wallMs: number, workers: number): string {
  const rows = results.map((r) =>
    `${r.name.padEnd(17)} ${String(r.counts.inputs).padStart(8)} ${
      String(r.counts.parsed).padStart(8)
    } ${String(r.counts.rejected).padStart(8)} ${String(r.counts.inner).padStart(7)} ${
      Math.round(r.counts.inputs / (r.ms / 1000)).toString().padStart(9)
    }`
  );
  const total = results.reduce((s, r) => s + r.counts.inputs, 0);
  return [
    `${"target".padEnd(17)} ${"inputs".padStart(8)} ${"parsed".padStart(8)} ${
      "rejected".padStart(8)
    } ${"inner".padStart(7)} ${"inputs/s".padStart(9)}`,
    ...rows,
    `${total} inputs in ${(wallMs / 1000).toFixed(1)} s on ${workers} worker${
      workers === 1 ? "" : "s"
    }: ${Math.round(total / (wallMs / 1000))} inputs/s`,
  ].join("\n");
}

async function runInWorkers(
  seed: number,
  n: readonly number[],
  workers: number,
  timeoutMs: number,
): Promise<TargetResult[]> {
  const bins = plan(n, workers);
  const spawned: { w: Worker; shared: Shared }[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    const runs = bins.map((jobs) => {
      const w = new Worker(new URL("./fuzz_test.ts?fuzz-worker", import.meta.url), {
        type: "module",
      });
      const sab = new SharedArrayBuffer(16 + SHARED_INPUT_BYTES);
      spawned.push({ w, shared: sharedOf(sab) });
      return new Promise<readonly TargetResult[]>((resolve, reject) => {
        w.onmessage = (e: MessageEvent<WorkerReply>) => {
          if (e.data.kind === "done") resolve(e.data.results);
          else reject(new Error(e.data.report));
        };
        w.onerror = (e) => {
          e.preventDefault();
          reject(new Error(`fuzz worker crashed: ${e.message}`));
        };
        w.postMessage({ seed, jobs, sab } satisfies WorkerJob);
      });
    });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const running = spawned.filter(({ shared }) => Atomics.load(shared.header, 3) === 0)
          .map(({ shared }) => {
            const ti = Atomics.load(shared.header, 0);
            const i = Atomics.load(shared.header, 1);
            const len = Atomics.load(shared.header, 2);
            const name = TARGETS[ti]?.name ?? "?";
            const input = toHex(shared.data.subarray(0, Math.min(len, shared.data.length)));
            return `${name} iteration ${i} (${
              replayLine(seed, name, i)
            }), input (${len} bytes): ${input}`;
          });
        reject(
          new Error(
            `fuzzing exceeded its ${timeoutMs / 1000} s limit; running:\n${running.join("\n")}`,
          ),
        );
      }, timeoutMs);
    });
    const all = await Promise.race([Promise.all(runs), timeout]);
    return all.flat();
  } finally {
    clearTimeout(timer);
    for (const { w } of spawned) w.terminate();
  }
}

if (!IN_WORKER) {
  const seed = envInt("OOR_FUZZ_SEED", DEFAULT_SEED) >>> 0;
  const iterations = envInt("OOR_FUZZ_ITERATIONS", DEFAULT_ITERATIONS);
  const only = env("OOR_FUZZ_ONLY");

  if (only !== undefined && only !== "") {
    Deno.test(`fuzz replay ${only} (seed 0x${seed.toString(16)})`, () => {
      const [name, iter] = only.split(":");
      const ti = TARGETS.findIndex((t) => t.name === name);
      assert.ok(ti >= 0, `no target ${name}; targets: ${TARGETS.map((t) => t.name).join(", ")}`);
      const n = shares(iterations)[ti]!;
      const r = iter === undefined
        ? runTarget(ti, seed, 0, n)
        : runTarget(ti, seed, Number(iter), Number(iter) + 1);
      console.log(report([r], r.ms, 1));
    });
  } else {
    Deno.test(
      `fuzz: ${iterations} mutated inputs of every message kind throw only WireError and round-trip`,
      async () => {
        const cores = navigator.hardwareConcurrency || 1;
        const workers = Math.max(1, envInt("OOR_FUZZ_WORKERS", Math.min(2, cores)));
        const n = shares(iterations);
        const timeoutMs = 1000 * envInt(
          "OOR_FUZZ_TIMEOUT",
          Math.max(60, Math.ceil((60 * iterations) / DEFAULT_ITERATIONS)),
        );
        const t0 = performance.now();
        const results = await runInWorkers(seed, n, workers, timeoutMs);
        const wall = performance.now() - t0;
        const order = TARGETS.map((t) => t.name);
        results.sort((a, b) => order.indexOf(a.name) - order.indexOf(b.name));
        console.log(report(results, wall, workers));
        const total = results.reduce((s, r) => s + r.counts.inputs, 0);
        assert.ok(total >= iterations, `ran ${total} of ${iterations} inputs`);
        // The mutations must neither break everything nor nothing.
        for (const r of results) {
          if (r.counts.inputs < 2000) continue;
          assert.ok(r.counts.parsed > r.counts.inputs / 100, `${r.name}: almost no input parsed`);
          assert.ok(r.counts.rejected > r.counts.inputs / 100, `${r.name}: almost none rejected`);
        }
      },
    );
  }

  Deno.test("parsers reject LCAFs nested deeper than 8 with WireError, even 5,000 deep", () => {
    const rng = new Rng(0xdee9);
    const nonce = "0102030405060708";
    for (const depth of [1, 8, 9, 10, 64, 5000]) {
      const a = toHex(deepLcaf(rng, depth));
      const place: [string, string][] = [
        ["address", a],
        // Type 1, IRC 0, no records; Source-EID = the LCAF; ITR-RLOC AFI 0.
        ["Map-Request source EID", `10000000${nonce}${a}0000`],
        // Type 3, 1 record, key id 0, no auth data; record TTL 1, no locators, EID = the LCAF.
        ["Map-Register record EID", `30000001${nonce}00000000 00000001 00000000 0000${a}`],
        // Type 2, 1 record: EID AFI 0 with 1 locator whose address is the LCAF.
        ["Map-Reply locator", `20000001${nonce}00000001 01000000 0000 0000 016400ff0005${a}`],
        // Type 7 (request), no auth data, TTL 0, mask-len 32, EID 10.0.0.1, address = the LCAF.
        ["Info-Request address", `70000000${nonce}00000000 00000000 0020 00010a000001${a}`],
      ];
      for (const [what, text] of place) {
        const b = fromHex(text);
        const parse = () => what === "address" ? parseAddress(b) : parseControlMessage(b);
        if (depth <= 8) {
          parse();
          continue;
        }
        assert.throws(parse, (e: unknown) => {
          assert.ok(e instanceof WireError, `${what}, depth ${depth}: ${describe(e)}`);
          assert.match(e.field, /\.lcaf$/, `${what}, depth ${depth}`);
          assert.match(e.message, /nested deeper than 8/);
          return true;
        });
      }
    }
  });

  Deno.test("fuzz mutation and field tables find every length and count field of a Map-Register", () => {
    // The field table is what makes the length/count mutations bite: check one by hand.
    const m: ControlMessage = {
      type: "map-register",
      msg: {
        proxyReply: false,
        securityCapable: false,
        xtrIdPresent: false,
        rtr: false,
        eidNotify: false,
        useTtlForTimeout: false,
        mergeRequest: false,
        mobileNode: false,
        wantMapNotify: true,
        nonce: 1n,
        keyId: 1,
        authData: new Uint8Array(20),
        records: [{
          ttl: 1440,
          maskLen: 24,
          action: 0,
          authoritative: true,
          incomplete: false,
          sigCount: 0,
          mapVersion: 0,
          eid: { kind: "iid", iid: 7, iidMaskLen: 0, address: { kind: "ipv4", ip: "10.0.0.0" } },
          locators: [],
        }],
      },
    };
    const fields: Field[] = [];
    controlFields(m, 0, fields);
    const at = fields.map((f) => `${f.off}/${f.size}${f.mask ? `&${f.mask.toString(16)}` : ""}`);
    // type, I, record count, auth length; record at 36: locator count, mask-len, SigCnt;
    // EID at 46: AFI, LCAF type, IID mask-len, LCAF length; inner AFI at 58.
    assert.deepEqual(at, [
      "0/1&f0",
      "0/1&2",
      "3/1",
      "14/2",
      "40/1",
      "41/1",
      "44/1&f0",
      "46/2",
      "50/1",
      "52/2",
      "51/1",
      "58/2",
    ]);
    const b = emitControlMessage(m);
    assert.equal(b[3], 1); // Record Count
    assert.equal(b[15], 20); // Authentication Data Length
    assert.equal((b[52]! << 8) | b[53]!, 10); // LCAF length: IID (4) + AFI 1 address (6)
  });
}

/**
 * The bytes of `depth` LCAFs nested in one another (AFI-list, Instance-ID or
 * Key-Value with an AFI 0 key, chosen at random) around 192.0.2.1, built
 * by hand: the emitter would recurse as deep as the nesting.
 */
function deepLcaf(rng: Rng, depth: number): Uint8Array {
  let inner = fromHex("0001c0000201");
  for (let i = 0; i < depth; i++) {
    const kind = rng.int(3);
    const pre = kind === 0 ? [] : kind === 1 ? [0, 0, 0, 7] : [0, 0];
    const type = kind === 0 ? 1 : kind === 1 ? 2 : 15;
    const body = pre.length + inner.length;
    const out = new Uint8Array(8 + body);
    out.set([0x40, 0x03, 0, 0, type, 0, body >>> 8, body & 0xff, ...pre]);
    out.set(inner, 8 + pre.length);
    inner = out;
  }
  return inner;
}
