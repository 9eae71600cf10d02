/**
 * LISP addresses: AFI-encoded addresses (RFC 9301 §5, IANA address family
 * numbers) and the LISP Canonical Address Format (RFC 8060).
 *
 * An {@link Address} is a plain readonly record discriminated by `kind`.
 * LCAF types this module does not model are kept as {@link RawLcaf} with
 * their body bytes, so they round-trip.
 *
 * @module
 */

import { checkUint, Reader, target, Writer } from "./cursor.ts";
import {
  ipv4FromBytes,
  ipv4ToBytes,
  ipv6FromBytes,
  ipv6ToBytes,
  macFromBytes,
  macToBytes,
} from "./ip_text.ts";

// ---------------------------------------------------------------------------
// Field table
// ---------------------------------------------------------------------------

/** Address family numbers used by LISP (IANA "Address Family Numbers"). */
export const AFI = {
  /** No address (RFC 9301 §5.3: "AFI 0"). */
  NONE: 0,
  /** IPv4, 4 bytes. */
  IPV4: 1,
  /** IPv6, 16 bytes. */
  IPV6: 2,
  /** Distinguished name: NUL-terminated ASCII (RFC 8060 §3, AFI 17). */
  DN: 17,
  /** LISP Canonical Address Format (RFC 8060 §3). */
  LCAF: 16387,
  /** 48-bit MAC address (AFI 16389). */
  MAC: 16389,
} as const;

/** LCAF type numbers (RFC 8060 §3, IANA "LISP Canonical Address Format (LCAF) Types"). */
export const LCAF_TYPE = {
  NULL: 0,
  AFI_LIST: 1,
  INSTANCE_ID: 2,
  AS_NUMBER: 3,
  APPLICATION_DATA: 4,
  GEO: 5,
  OPAQUE_KEY: 6,
  NAT_TRAVERSAL: 7,
  NONCE_LOCATOR: 8,
  MULTICAST_INFO: 9,
  ELP: 10,
  SECURITY_KEY: 11,
  SOURCE_DEST_KEY: 12,
  RLE: 13,
  JSON: 14,
  KEY_VALUE: 15,
  ENCAPSULATION_FORMAT: 16,
} as const;

/**
 * LCAF common header (RFC 8060 §3), after the 2-byte AFI 16387:
 * Rsvd1 (1) | Flags (1) | Type (1) | Rsvd2 (1) | Length (2); Length counts
 * the bytes after the Length field.
 */
const LCAF_HEADER = 6;
/** Nesting bound: LCAFs inside LCAFs deeper than this are rejected. */
const MAX_DEPTH = 8;

/** ELP hop flags (RFC 8060 §4.9): the low three bits of the 16-bit Rsvd3 field. */
const ELP_L = 0x4, ELP_P = 0x2, ELP_S = 0x1;
/** Multicast-Info flags (RFC 8060 §4.8) in Rsvd2. */
const MC_R = 0x4, MC_L = 0x2, MC_J = 0x1;
/** JSON LCAF (RFC 8060 §4.10.1): B bit (binary JSON) in Rsvd2. */
const JSON_B = 0x1;

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** AFI 0: no address. */
export interface NoAddress {
  /** Discriminant. */
  readonly kind: "none";
}

/** AFI 1: an IPv4 address in dotted-quad text. */
export interface IPv4Address {
  /** Discriminant. */
  readonly kind: "ipv4";
  /** Dotted quad, e.g. `"192.0.2.1"`. */
  readonly ip: string;
}

/** AFI 2: an IPv6 address in RFC 5952 text. */
export interface IPv6Address {
  /** Discriminant. */
  readonly kind: "ipv6";
  /** Canonical text, e.g. `"2001:db8::1"`. */
  readonly ip: string;
}

/** AFI 16389: a 48-bit MAC address. */
export interface MacAddress {
  /** Discriminant. */
  readonly kind: "mac";
  /** Lowercase colon form, e.g. `"00:11:22:33:44:55"`. */
  readonly mac: string;
}

/** AFI 17: a distinguished name (NUL-terminated ASCII string on the wire). */
export interface DistinguishedName {
  /** Discriminant. */
  readonly kind: "dn";
  /** The name, one character per byte (Latin-1), without the NUL. */
  readonly name: string;
}

/** LCAF type 1: a list of addresses of any AFI (RFC 8060 §4.16.1). */
export interface AfiListAddress {
  /** Discriminant. */
  readonly kind: "afi-list";
  /** The addresses, in order. */
  readonly list: readonly Address[];
}

/** LCAF type 2: an address qualified by an Instance ID (RFC 8060 §4.1). */
export interface InstanceIdAddress {
  /** Discriminant. */
  readonly kind: "iid";
  /** 32-bit Instance ID (the low 24 bits go in the data header). */
  readonly iid: number;
  /** IID mask-len (Rsvd2): with AFI 0 inside, the number of IID bits that form a range. */
  readonly iidMaskLen: number;
  /** The address inside. */
  readonly address: Address;
}

/** LCAF type 3: an address qualified by an AS number (RFC 8060 §4.2). */
export interface AsNumberAddress {
  /** Discriminant. */
  readonly kind: "as";
  /** 32-bit AS number. */
  readonly asn: number;
  /** The address inside. */
  readonly address: Address;
}

/** LCAF type 4: application data, ports and protocol (RFC 8060 §4.4). */
export interface ApplicationDataAddress {
  /** Discriminant. */
  readonly kind: "app-data";
  /** IP TOS, IPv6 traffic class or flow label (24 bits). */
  readonly tos: number;
  /** IP protocol number. */
  readonly protocol: number;
  /** Local port range, low end. */
  readonly localPortLow: number;
  /** Local port range, high end. */
  readonly localPortHigh: number;
  /** Remote port range, low end. */
  readonly remotePortLow: number;
  /** Remote port range, high end. */
  readonly remotePortHigh: number;
  /** The address inside. */
  readonly address: Address;
}

/** LCAF type 5: geo-coordinates (RFC 8060 §4.3). */
export interface GeoAddress {
  /** Discriminant. */
  readonly kind: "geo";
  /** N bit: north latitude when set. */
  readonly north: boolean;
  /** Latitude degrees (15 bits). */
  readonly latDegrees: number;
  /** Latitude minutes. */
  readonly latMinutes: number;
  /** Latitude seconds. */
  readonly latSeconds: number;
  /** E bit: east longitude when set. */
  readonly east: boolean;
  /** Longitude degrees (15 bits). */
  readonly lonDegrees: number;
  /** Longitude minutes. */
  readonly lonMinutes: number;
  /** Longitude seconds. */
  readonly lonSeconds: number;
  /** Altitude in meters (32-bit signed). */
  readonly altitude: number;
  /** The address inside. */
  readonly address: Address;
}

/** LCAF type 7: NAT traversal (RFC 8060 §4.5, draft-ietf-lisp-nat-traversal). */
export interface NatTraversalAddress {
  /** Discriminant. */
  readonly kind: "nat";
  /** Map-Server UDP port. */
  readonly msPort: number;
  /** ETR UDP port (as seen by the Map-Server: the translated port). */
  readonly etrPort: number;
  /** Global ETR RLOC (the translated address). */
  readonly globalEtr: Address;
  /** Map-Server RLOC. */
  readonly ms: Address;
  /** Private ETR RLOC (the address before translation). */
  readonly privateEtr: Address;
  /** RTR RLOCs, possibly none. */
  readonly rtrs: readonly Address[];
}

/** LCAF type 8: nonce locator (RFC 8060 §4.6). */
export interface NonceLocatorAddress {
  /** Discriminant. */
  readonly kind: "nonce";
  /** 24-bit nonce. */
  readonly nonce: number;
  /** The address inside. */
  readonly address: Address;
}

/** LCAF type 9: multicast info (RFC 8060 §4.7). */
export interface MulticastInfoAddress {
  /** Discriminant. */
  readonly kind: "mcast";
  /** 32-bit Instance ID. */
  readonly iid: number;
  /** R bit: RP bit. */
  readonly r: boolean;
  /** L bit: leave request. */
  readonly l: boolean;
  /** J bit: join request. */
  readonly j: boolean;
  /** Source mask length. */
  readonly sourceMaskLen: number;
  /** Group mask length. */
  readonly groupMaskLen: number;
  /** Source or source subnet. */
  readonly source: Address;
  /** Group address. */
  readonly group: Address;
}

/** One re-encapsulation hop of an Explicit Locator Path. */
export interface ElpHop {
  /** L bit: lookup, the hop looks the destination up in the mapping system. */
  readonly lookup: boolean;
  /** P bit: RLOC-probe this hop. */
  readonly probe: boolean;
  /** S bit: strict, the hop must be used. */
  readonly strict: boolean;
  /** The hop's address. */
  readonly address: Address;
}

/** LCAF type 10: Explicit Locator Path (RFC 8060 §4.9). */
export interface ElpAddress {
  /** Discriminant. */
  readonly kind: "elp";
  /** The hops, first to last. */
  readonly hops: readonly ElpHop[];
}

/** LCAF type 12: source/destination key (RFC 8060 §4.11). */
export interface SourceDestAddress {
  /** Discriminant. */
  readonly kind: "src-dst";
  /** Source prefix mask length. */
  readonly sourceMaskLen: number;
  /** Destination prefix mask length. */
  readonly destMaskLen: number;
  /** Source prefix. */
  readonly source: Address;
  /** Destination prefix. */
  readonly dest: Address;
}

/** One entry of a Replication List Entry LCAF. */
export interface RleEntry {
  /** Level value: the replication level of this RTR or ETR. */
  readonly level: number;
  /** The RTR or ETR address. */
  readonly address: Address;
}

/** LCAF type 13: Replication List Entry (RFC 8060 §4.12). */
export interface RleAddress {
  /** Discriminant. */
  readonly kind: "rle";
  /** The entries, in order. */
  readonly entries: readonly RleEntry[];
}

/** LCAF type 14: JSON data model (RFC 8060 §4.10.1). */
export interface JsonAddress {
  /** Discriminant. */
  readonly kind: "json";
  /** B bit: the JSON field is a binary encoding. */
  readonly binary: boolean;
  /** The JSON text (decoded as UTF-8; invalid UTF-8 is a WireError), when `binary` is false. */
  readonly json: string;
  /** The raw JSON field bytes, when `binary` is true (`json` is then ""). */
  readonly data?: Uint8Array;
  /**
   * The optional address after the JSON field: kind "none" is sent as AFI 0
   * (the AFI field itself is always present, RFC 8060 JSON LCAF diagram).
   */
  readonly address: Address;
}

/** LCAF type 15: key/value address pair (RFC 8060 §4.13). */
export interface KeyValueAddress {
  /** Discriminant. */
  readonly kind: "kv";
  /** The key. */
  readonly key: Address;
  /** The value. */
  readonly value: Address;
}

/** Any other LCAF type: kept as raw body bytes so it round-trips. */
export interface RawLcaf {
  /** Discriminant. */
  readonly kind: "lcaf";
  /** LCAF type number. */
  readonly type: number;
  /** Rsvd1 byte. */
  readonly rsvd1: number;
  /** Flags byte. */
  readonly flags: number;
  /** Rsvd2 byte (type-specific). */
  readonly rsvd2: number;
  /** The bytes after the Length field. */
  readonly body: Uint8Array;
}

/** Any address a LISP message can carry. */
export type Address =
  | NoAddress
  | IPv4Address
  | IPv6Address
  | MacAddress
  | DistinguishedName
  | AfiListAddress
  | InstanceIdAddress
  | AsNumberAddress
  | ApplicationDataAddress
  | GeoAddress
  | NatTraversalAddress
  | NonceLocatorAddress
  | MulticastInfoAddress
  | ElpAddress
  | SourceDestAddress
  | RleAddress
  | JsonAddress
  | KeyValueAddress
  | RawLcaf;

// ---------------------------------------------------------------------------
// Constructors and helpers
// ---------------------------------------------------------------------------

/** The AFI 0 address. */
export const NO_ADDRESS: NoAddress = Object.freeze({ kind: "none" });

/** IID mask-len of an Instance-ID LCAF naming one exact instance ID: all 32 bits. */
export const IID_EXACT_MASK_LEN = 32;

/**
 * `address` in instance `iid`: the address itself for instance 0, else an
 * Instance-ID LCAF with IID mask-len 32 (one exact instance; OOR 1.3.0
 * sends 32 and compares it, so a registration with 0 is refused there).
 */
export function inInstance(iid: number, address: Address): Address {
  return iid === 0 ? address : { kind: "iid", iid, iidMaskLen: IID_EXACT_MASK_LEN, address };
}

/**
 * Builds an IPv4 or IPv6 address from text, normalising IPv6 to RFC 5952
 * form. Throws `TypeError` if the text is neither.
 */
export function ipAddress(text: string): IPv4Address | IPv6Address {
  const buf = new Uint8Array(16);
  if (ipv4ToBytes(text, buf, 0)) return { kind: "ipv4", ip: text };
  if (ipv6ToBytes(text, buf, 0)) return { kind: "ipv6", ip: ipv6FromBytes(buf, 0) };
  throw new TypeError(`not an IPv4 or IPv6 address: ${JSON.stringify(text)}`);
}

/** The AFI number an address is carried under (16387 for every LCAF). */
export function afiOf(a: Address): number {
  switch (a.kind) {
    case "none":
      return AFI.NONE;
    case "ipv4":
      return AFI.IPV4;
    case "ipv6":
      return AFI.IPV6;
    case "mac":
      return AFI.MAC;
    case "dn":
      return AFI.DN;
    default:
      return AFI.LCAF;
  }
}

/** Maximum prefix length for an address's family (32, 128, 48; 0 for others). */
export function maxMaskLen(a: Address): number {
  switch (a.kind) {
    case "ipv4":
      return 32;
    case "ipv6":
      return 128;
    case "mac":
      return 48;
    case "iid":
      return maxMaskLen(a.address);
    default:
      return 0;
  }
}

/**
 * Short human text for logs and keys: `"10.0.0.1"`, `"[5]10.0.0.0"`,
 * `"(10.0.0.0/8,192.0.2.0/24)"`, `"elp{192.0.2.1,192.0.2.2}"`.
 */
export function addressToString(a: Address): string {
  switch (a.kind) {
    case "none":
      return "-";
    case "ipv4":
    case "ipv6":
      return a.ip;
    case "mac":
      return a.mac;
    case "dn":
      return `dn:${a.name}`;
    case "iid":
      return `[${a.iid}]${addressToString(a.address)}`;
    case "as":
      return `as${a.asn}:${addressToString(a.address)}`;
    case "afi-list":
      return `{${a.list.map(addressToString).join(",")}}`;
    case "elp":
      return `elp{${a.hops.map((h) => addressToString(h.address)).join(",")}}`;
    case "rle":
      return `rle{${a.entries.map((e) => addressToString(e.address)).join(",")}}`;
    case "src-dst":
      return `(${addressToString(a.source)}/${a.sourceMaskLen},${
        addressToString(a.dest)
      }/${a.destMaskLen})`;
    case "nat":
      return `nat{${addressToString(a.globalEtr)}:${a.etrPort}}`;
    case "nonce":
      return addressToString(a.address);
    case "geo":
      return `geo:${addressToString(a.address)}`;
    case "app-data":
      return `app:${addressToString(a.address)}`;
    case "mcast":
      return `[${a.iid}](${addressToString(a.source)},${addressToString(a.group)})`;
    case "json":
      return `json:${addressToString(a.address)}`;
    case "kv":
      return `${addressToString(a.key)}=${addressToString(a.value)}`;
    case "lcaf":
      return `lcaf${a.type}`;
  }
}

// ---------------------------------------------------------------------------
// Parse
// ---------------------------------------------------------------------------

/**
 * Reads one AFI-encoded address (2-byte AFI then the address) at the
 * reader's position. Unknown AFIs are a `WireError`: their length is unknown.
 */
export function readAddress(r: Reader, field = "address"): Address {
  return readAddr(r, field, 0);
}

function readAddr(r: Reader, field: string, depth: number): Address {
  // The happy path builds no field-name strings; they are made only to throw.
  const b = r.bytes;
  const start = r.pos;
  if (start + 2 > r.end) r.need(2, `${field}.afi`);
  const afi = (b[start]! << 8) | b[start + 1]!;
  const p = start + 2;
  switch (afi) {
    case AFI.NONE:
      r.pos = p;
      return NO_ADDRESS;
    case AFI.IPV4: {
      if (p + 4 > r.end) {
        r.pos = p;
        r.need(4, `${field}.ipv4`);
      }
      r.pos = p + 4;
      return { kind: "ipv4", ip: ipv4FromBytes(b, p) };
    }
    case AFI.IPV6: {
      if (p + 16 > r.end) {
        r.pos = p;
        r.need(16, `${field}.ipv6`);
      }
      r.pos = p + 16;
      return { kind: "ipv6", ip: ipv6FromBytes(b, p) };
    }
    case AFI.MAC: {
      if (p + 6 > r.end) {
        r.pos = p;
        r.need(6, `${field}.mac`);
      }
      r.pos = p + 6;
      return { kind: "mac", mac: macFromBytes(b, p) };
    }
    case AFI.DN: {
      let i = p;
      while (i < r.end && b[i] !== 0) i++;
      if (i >= r.end) r.fail(`${field}.dn`, "distinguished name has no terminating NUL", p);
      let name = "";
      for (let j = p; j < i; j++) name += String.fromCharCode(b[j]!);
      r.pos = i + 1;
      return { kind: "dn", name };
    }
    case AFI.LCAF:
      if (depth >= MAX_DEPTH) r.fail(`${field}.lcaf`, `nested deeper than ${MAX_DEPTH}`, start);
      r.pos = p;
      return readLcaf(r, field, depth + 1);
    default:
      return r.fail(`${field}.afi`, `unknown AFI ${afi}`, start);
  }
}

function readLcaf(r: Reader, field: string, depth: number): Address {
  const rsvd1 = r.u8(`${field}.lcaf.rsvd1`);
  const flags = r.u8(`${field}.lcaf.flags`);
  const type = r.u8(`${field}.lcaf.type`);
  const rsvd2 = r.u8(`${field}.lcaf.rsvd2`);
  const lengthAt = r.pos;
  const length = r.u16(`${field}.lcaf.length`);
  if (length > r.remaining) {
    r.fail(
      `${field}.lcaf.length`,
      `length ${length} exceeds the ${r.remaining} bytes left`,
      lengthAt,
    );
  }
  const outerEnd = r.end;
  const bodyEnd = r.pos + length;
  r.end = bodyEnd;
  const f = `${field}.lcaf`;
  let a: Address;
  switch (type) {
    case LCAF_TYPE.AFI_LIST: {
      const list: Address[] = [];
      while (r.pos < bodyEnd) list.push(readAddr(r, `${f}.afi-list[${list.length}]`, depth));
      a = { kind: "afi-list", list };
      break;
    }
    case LCAF_TYPE.INSTANCE_ID: {
      const iid = r.u32(`${f}.iid`);
      a = { kind: "iid", iid, iidMaskLen: rsvd2, address: readAddr(r, `${f}.iid.address`, depth) };
      break;
    }
    case LCAF_TYPE.AS_NUMBER: {
      const asn = r.u32(`${f}.asn`);
      a = { kind: "as", asn, address: readAddr(r, `${f}.as.address`, depth) };
      break;
    }
    case LCAF_TYPE.APPLICATION_DATA: {
      const tos = r.u24(`${f}.app.tos`);
      const protocol = r.u8(`${f}.app.protocol`);
      const localPortLow = r.u16(`${f}.app.local-port-low`);
      const localPortHigh = r.u16(`${f}.app.local-port-high`);
      const remotePortLow = r.u16(`${f}.app.remote-port-low`);
      const remotePortHigh = r.u16(`${f}.app.remote-port-high`);
      a = {
        kind: "app-data",
        tos,
        protocol,
        localPortLow,
        localPortHigh,
        remotePortLow,
        remotePortHigh,
        address: readAddr(r, `${f}.app.address`, depth),
      };
      break;
    }
    case LCAF_TYPE.GEO: {
      const lat = r.u16(`${f}.geo.latitude`);
      const latMinutes = r.u8(`${f}.geo.latitude`);
      const latSeconds = r.u8(`${f}.geo.latitude`);
      const lon = r.u16(`${f}.geo.longitude`);
      const lonMinutes = r.u8(`${f}.geo.longitude`);
      const lonSeconds = r.u8(`${f}.geo.longitude`);
      const altitude = r.u32(`${f}.geo.altitude`) | 0;
      a = {
        kind: "geo",
        north: (lat & 0x8000) !== 0,
        latDegrees: lat & 0x7fff,
        latMinutes,
        latSeconds,
        east: (lon & 0x8000) !== 0,
        lonDegrees: lon & 0x7fff,
        lonMinutes,
        lonSeconds,
        altitude,
        address: readAddr(r, `${f}.geo.address`, depth),
      };
      break;
    }
    case LCAF_TYPE.NAT_TRAVERSAL: {
      const msPort = r.u16(`${f}.nat.ms-port`);
      const etrPort = r.u16(`${f}.nat.etr-port`);
      const globalEtr = readAddr(r, `${f}.nat.global-etr`, depth);
      const ms = readAddr(r, `${f}.nat.ms`, depth);
      const privateEtr = readAddr(r, `${f}.nat.private-etr`, depth);
      const rtrs: Address[] = [];
      while (r.pos < bodyEnd) rtrs.push(readAddr(r, `${f}.nat.rtr[${rtrs.length}]`, depth));
      a = { kind: "nat", msPort, etrPort, globalEtr, ms, privateEtr, rtrs };
      break;
    }
    case LCAF_TYPE.NONCE_LOCATOR: {
      r.skip(1, `${f}.nonce.reserved`);
      const nonce = r.u24(`${f}.nonce.nonce`);
      a = { kind: "nonce", nonce, address: readAddr(r, `${f}.nonce.address`, depth) };
      break;
    }
    case LCAF_TYPE.MULTICAST_INFO: {
      const iid = r.u32(`${f}.mcast.iid`);
      r.skip(2, `${f}.mcast.reserved`);
      const sourceMaskLen = r.u8(`${f}.mcast.source-mask-len`);
      const groupMaskLen = r.u8(`${f}.mcast.group-mask-len`);
      const source = readAddr(r, `${f}.mcast.source`, depth);
      const group = readAddr(r, `${f}.mcast.group`, depth);
      a = {
        kind: "mcast",
        iid,
        r: (rsvd2 & MC_R) !== 0,
        l: (rsvd2 & MC_L) !== 0,
        j: (rsvd2 & MC_J) !== 0,
        sourceMaskLen,
        groupMaskLen,
        source,
        group,
      };
      break;
    }
    case LCAF_TYPE.ELP: {
      const hops: ElpHop[] = [];
      while (r.pos < bodyEnd) {
        const hf = `${f}.elp.hop[${hops.length}]`;
        const bits = r.u16(`${hf}.flags`);
        hops.push({
          lookup: (bits & ELP_L) !== 0,
          probe: (bits & ELP_P) !== 0,
          strict: (bits & ELP_S) !== 0,
          address: readAddr(r, `${hf}.address`, depth),
        });
      }
      a = { kind: "elp", hops };
      break;
    }
    case LCAF_TYPE.SOURCE_DEST_KEY: {
      r.skip(2, `${f}.src-dst.reserved`);
      const sourceMaskLen = r.u8(`${f}.src-dst.source-mask-len`);
      const destMaskLen = r.u8(`${f}.src-dst.dest-mask-len`);
      const source = readAddr(r, `${f}.src-dst.source`, depth);
      const dest = readAddr(r, `${f}.src-dst.dest`, depth);
      a = { kind: "src-dst", sourceMaskLen, destMaskLen, source, dest };
      break;
    }
    case LCAF_TYPE.RLE: {
      const entries: RleEntry[] = [];
      while (r.pos < bodyEnd) {
        const ef = `${f}.rle.entry[${entries.length}]`;
        r.skip(3, `${ef}.reserved`);
        const level = r.u8(`${ef}.level`);
        entries.push({ level, address: readAddr(r, `${ef}.address`, depth) });
      }
      a = { kind: "rle", entries };
      break;
    }
    case LCAF_TYPE.JSON: {
      const jsonLength = r.u16(`${f}.json.length`);
      const dataAt = r.pos;
      const data = r.copy(jsonLength, `${f}.json.data`);
      const binary = (rsvd2 & JSON_B) !== 0;
      // Text must be valid UTF-8: a lossy decode would not emit back the
      // same bytes, and its U+FFFDs could grow the LCAF past 65535 on emit.
      const json = binary ? "" : utf8Decode(data);
      if (json === undefined) r.fail(`${f}.json.data`, "JSON text is not valid UTF-8", dataAt);
      // RFC 8060 §4.10.1 always has the AFI field (AFI 0 for no address); a
      // body ending right after the JSON field is malformed (accepting it
      // would make our re-encoding 2 bytes longer than what we parsed).
      const address = readAddr(r, `${f}.json.address`, depth);
      a = binary
        ? { kind: "json", binary, json: "", data, address }
        : { kind: "json", binary, json, address };
      break;
    }
    case LCAF_TYPE.KEY_VALUE: {
      const key = readAddr(r, `${f}.kv.key`, depth);
      const value = readAddr(r, `${f}.kv.value`, depth);
      a = { kind: "kv", key, value };
      break;
    }
    default:
      a = { kind: "lcaf", type, rsvd1, flags, rsvd2, body: r.copy(length, `${f}.body`) };
  }
  if (r.pos !== bodyEnd) {
    r.fail(
      `${f}.length`,
      `LCAF type ${type} length ${length} does not match its contents (${
        r.pos - (lengthAt + 2)
      } bytes)`,
      lengthAt,
    );
  }
  r.end = outerEnd;
  return a;
}

/** Parses a buffer holding exactly one AFI-encoded address. */
export function parseAddress(bytes: Uint8Array): Address {
  const r = new Reader(bytes);
  const a = readAddress(r);
  if (r.pos !== r.end) r.fail("address", `${r.remaining} trailing bytes`);
  return a;
}

// ---------------------------------------------------------------------------
// Length
// ---------------------------------------------------------------------------

/** Encoded length of an address, including its 2-byte AFI. */
export function addressLength(a: Address): number {
  switch (a.kind) {
    case "none":
      return 2;
    case "ipv4":
      return 6;
    case "ipv6":
      return 18;
    case "mac":
      return 8;
    case "dn":
      return 2 + a.name.length + 1;
    default:
      return 2 + LCAF_HEADER + lcafBodyLength(a);
  }
}

function sumLengths(list: readonly Address[]): number {
  let n = 0;
  for (const x of list) n += addressLength(x);
  return n;
}

function lcafBodyLength(a: Address): number {
  switch (a.kind) {
    case "afi-list":
      return sumLengths(a.list);
    case "iid":
    case "as":
      return 4 + addressLength(a.address);
    case "app-data":
      return 12 + addressLength(a.address);
    case "geo":
      return 12 + addressLength(a.address);
    case "nat":
      return 4 + addressLength(a.globalEtr) + addressLength(a.ms) +
        addressLength(a.privateEtr) + sumLengths(a.rtrs);
    case "nonce":
      return 4 + addressLength(a.address);
    case "mcast":
      return 8 + addressLength(a.source) + addressLength(a.group);
    case "elp": {
      let n = 0;
      for (const h of a.hops) n += 2 + addressLength(h.address);
      return n;
    }
    case "src-dst":
      return 4 + addressLength(a.source) + addressLength(a.dest);
    case "rle": {
      let n = 0;
      for (const e of a.entries) n += 4 + addressLength(e.address);
      return n;
    }
    case "json":
      // The AFI field is always present (AFI 0 when there is no address).
      return 2 + jsonBytes(a).length + addressLength(a.address);
    case "kv":
      return addressLength(a.key) + addressLength(a.value);
    case "lcaf":
      return a.body.length;
    default:
      throw new TypeError(`not an LCAF address: ${a.kind}`);
  }
}

// ---------------------------------------------------------------------------
// Emit
// ---------------------------------------------------------------------------

/** Writes one AFI-encoded address. Throws `TypeError`/`RangeError` on bad values. */
export function writeAddress(w: Writer, a: Address): void {
  switch (a.kind) {
    case "none":
      w.u16(AFI.NONE);
      return;
    case "ipv4":
      w.u16(AFI.IPV4);
      if (!ipv4ToBytes(a.ip, w.bytes, w.pos)) {
        throw new TypeError(`not an IPv4 address: ${JSON.stringify(a.ip)}`);
      }
      w.pos += 4;
      return;
    case "ipv6":
      w.u16(AFI.IPV6);
      if (!ipv6ToBytes(a.ip, w.bytes, w.pos)) {
        throw new TypeError(`not an IPv6 address: ${JSON.stringify(a.ip)}`);
      }
      w.pos += 16;
      return;
    case "mac":
      w.u16(AFI.MAC);
      if (!macToBytes(a.mac, w.bytes, w.pos)) {
        throw new TypeError(`not a MAC address: ${JSON.stringify(a.mac)}`);
      }
      w.pos += 6;
      return;
    case "dn":
      w.u16(AFI.DN);
      for (let i = 0; i < a.name.length; i++) {
        const c = a.name.charCodeAt(i);
        if (c === 0 || c > 0xff) {
          throw new RangeError(`distinguished name has a character outside 1..255 at ${i}`);
        }
        w.u8(c);
      }
      w.u8(0);
      return;
    default:
      writeLcaf(w, a);
  }
}

function lcafHeader(w: Writer, type: number, rsvd2: number, bodyLength: number): void {
  if (bodyLength > 0xffff) throw new RangeError(`LCAF type ${type} body ${bodyLength} > 65535`);
  w.u16(AFI.LCAF);
  w.u8(0);
  w.u8(0);
  w.u8(type);
  w.u8(rsvd2);
  w.u16(bodyLength);
}

function writeLcaf(w: Writer, a: Address): void {
  const len = lcafBodyLength(a);
  switch (a.kind) {
    case "afi-list":
      lcafHeader(w, LCAF_TYPE.AFI_LIST, 0, len);
      for (const x of a.list) writeAddress(w, x);
      return;
    case "iid":
      checkUint(a.iid, 0xffffffff, "instance id");
      checkUint(a.iidMaskLen, 0xff, "iid mask-len");
      lcafHeader(w, LCAF_TYPE.INSTANCE_ID, a.iidMaskLen, len);
      w.u32(a.iid);
      writeAddress(w, a.address);
      return;
    case "as":
      checkUint(a.asn, 0xffffffff, "AS number");
      lcafHeader(w, LCAF_TYPE.AS_NUMBER, 0, len);
      w.u32(a.asn);
      writeAddress(w, a.address);
      return;
    case "app-data":
      checkUint(a.tos, 0xffffff, "app-data tos");
      checkUint(a.protocol, 0xff, "app-data protocol");
      checkUint(a.localPortLow, 0xffff, "app-data local port low");
      checkUint(a.localPortHigh, 0xffff, "app-data local port high");
      checkUint(a.remotePortLow, 0xffff, "app-data remote port low");
      checkUint(a.remotePortHigh, 0xffff, "app-data remote port high");
      lcafHeader(w, LCAF_TYPE.APPLICATION_DATA, 0, len);
      w.u24(a.tos);
      w.u8(a.protocol);
      w.u16(a.localPortLow);
      w.u16(a.localPortHigh);
      w.u16(a.remotePortLow);
      w.u16(a.remotePortHigh);
      writeAddress(w, a.address);
      return;
    case "geo":
      checkUint(a.latDegrees, 0x7fff, "geo latitude degrees");
      checkUint(a.lonDegrees, 0x7fff, "geo longitude degrees");
      checkUint(a.latMinutes, 0xff, "geo latitude minutes");
      checkUint(a.latSeconds, 0xff, "geo latitude seconds");
      checkUint(a.lonMinutes, 0xff, "geo longitude minutes");
      checkUint(a.lonSeconds, 0xff, "geo longitude seconds");
      if (!Number.isInteger(a.altitude) || a.altitude < -0x80000000 || a.altitude > 0x7fffffff) {
        throw new RangeError(`geo altitude: ${a.altitude} is not a 32-bit signed integer`);
      }
      lcafHeader(w, LCAF_TYPE.GEO, 0, len);
      w.u16((a.north ? 0x8000 : 0) | a.latDegrees);
      w.u8(a.latMinutes);
      w.u8(a.latSeconds);
      w.u16((a.east ? 0x8000 : 0) | a.lonDegrees);
      w.u8(a.lonMinutes);
      w.u8(a.lonSeconds);
      w.u32(a.altitude >>> 0);
      writeAddress(w, a.address);
      return;
    case "nat":
      checkUint(a.msPort, 0xffff, "nat ms port");
      checkUint(a.etrPort, 0xffff, "nat etr port");
      lcafHeader(w, LCAF_TYPE.NAT_TRAVERSAL, 0, len);
      w.u16(a.msPort);
      w.u16(a.etrPort);
      writeAddress(w, a.globalEtr);
      writeAddress(w, a.ms);
      writeAddress(w, a.privateEtr);
      for (const x of a.rtrs) writeAddress(w, x);
      return;
    case "nonce":
      checkUint(a.nonce, 0xffffff, "nonce locator nonce");
      lcafHeader(w, LCAF_TYPE.NONCE_LOCATOR, 0, len);
      w.u8(0);
      w.u24(a.nonce);
      writeAddress(w, a.address);
      return;
    case "mcast":
      checkUint(a.iid, 0xffffffff, "multicast instance id");
      checkUint(a.sourceMaskLen, 0xff, "multicast source mask-len");
      checkUint(a.groupMaskLen, 0xff, "multicast group mask-len");
      lcafHeader(
        w,
        LCAF_TYPE.MULTICAST_INFO,
        (a.r ? MC_R : 0) | (a.l ? MC_L : 0) | (a.j ? MC_J : 0),
        len,
      );
      w.u32(a.iid);
      w.u16(0);
      w.u8(a.sourceMaskLen);
      w.u8(a.groupMaskLen);
      writeAddress(w, a.source);
      writeAddress(w, a.group);
      return;
    case "elp":
      lcafHeader(w, LCAF_TYPE.ELP, 0, len);
      for (const h of a.hops) {
        w.u16((h.lookup ? ELP_L : 0) | (h.probe ? ELP_P : 0) | (h.strict ? ELP_S : 0));
        writeAddress(w, h.address);
      }
      return;
    case "src-dst":
      checkUint(a.sourceMaskLen, 0xff, "source mask-len");
      checkUint(a.destMaskLen, 0xff, "dest mask-len");
      lcafHeader(w, LCAF_TYPE.SOURCE_DEST_KEY, 0, len);
      w.u16(0);
      w.u8(a.sourceMaskLen);
      w.u8(a.destMaskLen);
      writeAddress(w, a.source);
      writeAddress(w, a.dest);
      return;
    case "rle":
      lcafHeader(w, LCAF_TYPE.RLE, 0, len);
      for (const e of a.entries) {
        checkUint(e.level, 0xff, "RLE level");
        w.zeros(3);
        w.u8(e.level);
        writeAddress(w, e.address);
      }
      return;
    case "json": {
      const data = jsonBytes(a);
      if (data.length > 0xffff) throw new RangeError(`JSON LCAF data ${data.length} > 65535`);
      lcafHeader(w, LCAF_TYPE.JSON, a.binary ? JSON_B : 0, len);
      w.u16(data.length);
      w.raw(data);
      writeAddress(w, a.address);
      return;
    }
    case "kv":
      lcafHeader(w, LCAF_TYPE.KEY_VALUE, 0, len);
      writeAddress(w, a.key);
      writeAddress(w, a.value);
      return;
    case "lcaf":
      checkUint(a.type, 0xff, "LCAF type");
      checkUint(a.rsvd1, 0xff, "LCAF rsvd1");
      checkUint(a.flags, 0xff, "LCAF flags");
      checkUint(a.rsvd2, 0xff, "LCAF rsvd2");
      if (a.body.length > 0xffff) throw new RangeError(`LCAF body ${a.body.length} > 65535`);
      w.u16(AFI.LCAF);
      w.u8(a.rsvd1);
      w.u8(a.flags);
      w.u8(a.type);
      w.u8(a.rsvd2);
      w.u16(a.body.length);
      w.raw(a.body);
      return;
    default:
      throw new TypeError(`unknown address kind ${(a as { kind: string }).kind}`);
  }
}

/** Emits one AFI-encoded address into a new buffer or into `into` at `offset`. */
export function emitAddress(a: Address, into?: Uint8Array, offset = 0): Uint8Array {
  const len = addressLength(a);
  const w = target(len, into, offset, "emitAddress");
  writeAddress(w, a);
  return w.bytes.subarray(offset, offset + len);
}

// ---------------------------------------------------------------------------
// UTF-8 (for the JSON LCAF)
// ---------------------------------------------------------------------------

// ignoreBOM keeps a leading U+FEFF in the text, so it is emitted back.
const decoder = new TextDecoder("utf-8", { ignoreBOM: true, fatal: true });
const encoder = new TextEncoder();

/** The text `b` encodes, or undefined if it is not valid UTF-8. */
function utf8Decode(b: Uint8Array): string | undefined {
  try {
    return decoder.decode(b);
  } catch {
    return undefined;
  }
}

function jsonBytes(a: JsonAddress): Uint8Array {
  if (a.binary) return a.data ?? new Uint8Array(0);
  return encoder.encode(a.json);
}
