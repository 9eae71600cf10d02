/**
 * Named, valid sample messages for tests that want "one of everything we
 * put on the wire": the tshark cross-check (tests/tshark_test.ts), fuzzers
 * (mutate `bytes()`), and decode/encode round trips (parse `bytes()`, the
 * result equals the sample's record).
 *
 * Each sample is a record (the codec's own types from wire/), not bytes;
 * `bytes()` emits it through the codec, a fresh buffer on every call.
 * Control messages that carry authentication (Map-Register, Map-Notify,
 * Map-Notify-Ack, Info-Request, Info-Reply) are signed under
 * {@link TEST_AUTH_KEY} with `signAuthenticated` (auth.ts) when this module
 * loads, and the record's `authData` holds that HMAC: so
 * `emitControlMessage(sample.message)` is already the signed message and
 * `verifyAuthenticated(sample.bytes(), TEST_AUTH_KEY)` holds.
 *
 * Coverage:
 * - every control message type: Map-Request (plain, SMR, SMR-invoked,
 *   RLOC-probe with a Map-Reply record, IPv6 ITR-RLOCs, MAC and
 *   Instance-ID EIDs, L and D bits, an RFC 9437 subscription with the N
 *   and I bits), a publication Map-Notify and its Map-Notify-Ack, Map-Reply (positive, negative, probe
 *   reply), Map-Register (key id 1, key id 2 with the I bit and
 *   xTR-ID/site-ID, Instance-ID EIDs, every flag bit), Map-Notify (plain,
 *   with xTR-ID and MS-RTR authentication), Map-Notify-Ack, Map-Referral
 *   (every referral action, the incomplete bit, a signature section),
 *   Info-Request, Info-Reply with RTRs, ECM over IPv4 and over IPv6 (with
 *   the D bit, and with the R and N bits around a Map-Register);
 * - every address kind address.ts models, each in an EID or a locator:
 *   IPv4, IPv6, MAC, distinguished name, and the LCAFs AFI-list (1),
 *   Instance-ID (2), AS number (3), application data (4), geo (5), NAT
 *   traversal (7), nonce locator (8), multicast info (9), ELP (10),
 *   source/dest (12), RLE (13), JSON (14), key/value (15), and raw LCAFs
 *   (a Null-body type 0 and an unmodelled type 16); {@link LCAF_ADDRESSES}
 *   has them by name;
 * - the LISP data header with N/L/E/I (and V) variants and a VXLAN-GPE
 *   header, each with an inner IPv4/UDP packet.
 *
 * Addresses are documentation ranges only (192.0.2.0/24, 198.51.100.0/24,
 * 203.0.113.0/24, 2001:db8::/32, 233.252.0.0/24 MCAST-TEST-NET, AS
 * 64496..64511, example.com, locally administered MACs) or private ones
 * (10.0.0.0/8).
 *
 * @module
 */

import {
  type Address,
  type AfiListAddress,
  type ApplicationDataAddress,
  type AsNumberAddress,
  type DistinguishedName,
  type ElpAddress,
  type GeoAddress,
  type InstanceIdAddress,
  type IPv4Address,
  type IPv6Address,
  type JsonAddress,
  type KeyValueAddress,
  type MacAddress,
  type MulticastInfoAddress,
  type NatTraversalAddress,
  NO_ADDRESS,
  type NonceLocatorAddress,
  type RawLcaf,
  type RleAddress,
  type SourceDestAddress,
} from "../wire/address.ts";
import { authDataLength, signAuthenticated } from "../wire/auth.ts";
import {
  emitLispDataHeader,
  LISP_CONTROL_PORT,
  LISP_DATA_PORT,
  type LispDataHeader,
  VXLAN_GPE_PORT,
} from "../wire/data_header.ts";
import type { Ecm } from "../wire/ecm.ts";
import { ACTION, type EidRecord, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { emitInfo, type InfoReply, type InfoRequest } from "../wire/info.ts";
import { type LocatorRecord, locatorRecord } from "../wire/locator.ts";
import { emitMapNotify, type MapNotify } from "../wire/map_notify.ts";
import type { MapReferral, MapReferralRecord } from "../wire/map_referral.ts";
import { emitMapRegister, type MapRegister } from "../wire/map_register.ts";
import type { MapReply } from "../wire/map_reply.ts";
import type { MapRequest } from "../wire/map_request.ts";
import { type ControlMessage, emitControlMessage } from "../wire/message.ts";
import { emitIpUdp } from "../wire/udp.ts";
import { emitVxlanGpeHeader, VXLAN_GPE_NP_IPV4, type VxlanGpeHeader } from "../wire/vxlan_gpe.ts";

// ---------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------

/** What every sample has. */
interface SampleBase {
  /** A unique, human name: `"Map-Register, key id 2, I bit, xTR-ID and site-ID"`. */
  readonly name: string;
  /** UDP source port it would be sent from. */
  readonly srcPort: number;
  /** UDP destination port it would be sent to (4342, 4341 or 4790). */
  readonly dstPort: number;
  /** Carry it over IPv6 rather than IPv4 (a hint for tests that frame it). */
  readonly v6?: boolean;
  /** The sample on the wire: a new buffer on every call. */
  bytes(): Uint8Array;
}

/** A LISP control message (UDP 4342). */
export interface ControlSample extends SampleBase {
  /** Discriminant. */
  readonly kind: "control";
  /** The message; `emitControlMessage(message)` equals `bytes()`. */
  readonly message: ControlMessage;
  /** For an ECM: the inner control message its `payload` holds. */
  readonly inner?: ControlMessage;
}

/** A LISP-encapsulated data packet (UDP 4341): the 8-byte header and the inner packet. */
export interface LispDataSample extends SampleBase {
  /** Discriminant. */
  readonly kind: "lisp-data";
  /** The LISP data header (RFC 9300 §5.3). */
  readonly header: LispDataHeader;
  /** The inner IP packet after the header. */
  readonly payload: Uint8Array;
}

/** A VXLAN-GPE packet (UDP 4790): the 8-byte header and the inner packet. */
export interface VxlanGpeSample extends SampleBase {
  /** Discriminant. */
  readonly kind: "vxlan-gpe";
  /** The VXLAN-GPE header. */
  readonly header: VxlanGpeHeader;
  /** The inner packet after the header. */
  readonly payload: Uint8Array;
}

/** Any sample. */
export type Sample = ControlSample | LispDataSample | VxlanGpeSample;

// ---------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------

/** The shared secret every authenticated sample is signed with (UTF-8 bytes). */
export const TEST_AUTH_KEY = "oor-sample-key";

/** Source port an ITR sends its Map-Requests from (any ephemeral port). */
export const ITR_PORT = 61001;

// ---------------------------------------------------------------------------
// Builders
// ---------------------------------------------------------------------------

function v4(ip: string): IPv4Address {
  return { kind: "ipv4", ip };
}

function v6(ip: string): IPv6Address {
  return { kind: "ipv6", ip };
}

function iid(id: number, address: Address, iidMaskLen = 0): InstanceIdAddress {
  return { kind: "iid", iid: id, iidMaskLen, address };
}

/** A locator with the usual flags (reachable, not local, not probed). */
function loc(
  address: Address,
  priority = 1,
  weight = 100,
  extra: Partial<Pick<LocatorRecord, "local" | "probed" | "reachable">> = {},
): LocatorRecord {
  return { ...locatorRecord(address, priority, weight, extra), reachable: extra.reachable ?? true };
}

/** A mapping record (not a referral: incomplete and sigCount are 0). */
function rec(
  eid: Address,
  maskLen: number,
  locators: readonly LocatorRecord[],
  extra: Partial<Pick<EidRecord, "ttl" | "action" | "authoritative" | "mapVersion">> = {},
): EidRecord {
  return {
    ttl: extra.ttl ?? 1440,
    maskLen,
    action: extra.action ?? ACTION.NO_ACTION,
    authoritative: extra.authoritative ?? true,
    incomplete: false,
    sigCount: 0,
    mapVersion: extra.mapVersion ?? 0,
    eid,
    locators,
  };
}

/**
 * Signs a message record under {@link TEST_AUTH_KEY}: emits it with a
 * zeroed authentication field of the key id's length, runs
 * `signAuthenticated`, and returns the record with that HMAC as its
 * `authData`.
 */
function signed<T extends { readonly keyId: number; readonly authData: Uint8Array }>(
  m: T,
  emit: (m: T) => Uint8Array,
): T {
  const len = authDataLength(m.keyId);
  if (len === undefined || len === 0) throw new RangeError(`cannot sign with key id ${m.keyId}`);
  const bytes = emit({ ...m, authData: new Uint8Array(len) });
  signAuthenticated(bytes, TEST_AUTH_KEY);
  return { ...m, authData: bytes.slice(16, 16 + len) };
}

const NO_AUTH = new Uint8Array(0);

// ---------------------------------------------------------------------------
// Addresses: every kind address.ts models
// ---------------------------------------------------------------------------

/** One address of every LCAF type address.ts models (and two raw LCAFs), by name. */
export const LCAF_ADDRESSES = {
  /** LCAF 1: a dual-stack RLOC as an AFI list (RFC 8060 §4.16.1). */
  afiList: {
    kind: "afi-list",
    list: [v4("192.0.2.11"), v6("2001:db8::11")],
  } satisfies AfiListAddress,
  /** LCAF 2: IPv4 prefix in instance 4096 (RFC 8060 §4.1). */
  iid: iid(4096, v4("198.51.100.0")),
  /** LCAF 3: an RLOC qualified by a documentation AS number (RFC 8060 §4.2). */
  asNumber: { kind: "as", asn: 64500, address: v4("192.0.2.13") } satisfies AsNumberAddress,
  /** LCAF 4: an RLOC for UDP 5004..5005 to 6000 with TOS 0x2e (RFC 8060 §4.4). */
  applicationData: {
    kind: "app-data",
    tos: 0x2e,
    protocol: 17,
    localPortLow: 5004,
    localPortHigh: 5005,
    remotePortLow: 6000,
    remotePortHigh: 6000,
    address: v4("192.0.2.14"),
  } satisfies ApplicationDataAddress,
  /** LCAF 5: an RLOC at 37°23'17" N, 121°55'22" W, 15 m (RFC 8060 §4.3). */
  geo: {
    kind: "geo",
    north: true,
    latDegrees: 37,
    latMinutes: 23,
    latSeconds: 17,
    east: false,
    lonDegrees: 121,
    lonMinutes: 55,
    lonSeconds: 22,
    altitude: 15,
    address: v4("192.0.2.15"),
  } satisfies GeoAddress,
  /** LCAF 7: NAT traversal with two RTRs, one IPv6 (RFC 8060 §4.5). */
  natTraversal: {
    kind: "nat",
    msPort: LISP_CONTROL_PORT,
    etrPort: 61234,
    globalEtr: v4("203.0.113.17"),
    ms: v4("192.0.2.100"),
    privateEtr: v4("10.0.0.17"),
    rtrs: [v4("192.0.2.201"), v6("2001:db8::201")],
  } satisfies NatTraversalAddress,
  /** LCAF 8: an RLOC with a 24-bit nonce (RFC 8060 §4.6). */
  nonceLocator: {
    kind: "nonce",
    nonce: 0xabcdef,
    address: v4("192.0.2.18"),
  } satisfies NonceLocatorAddress,
  /** LCAF 9: (S,G) = (198.51.100.1/32, 233.252.0.1/32) in instance 1000, J bit (RFC 8060 §4.7). */
  multicastInfo: {
    kind: "mcast",
    iid: 1000,
    r: false,
    l: false,
    j: true,
    sourceMaskLen: 32,
    groupMaskLen: 32,
    source: v4("198.51.100.1"),
    group: v4("233.252.0.1"),
  } satisfies MulticastInfoAddress,
  /** LCAF 10: an explicit locator path of three hops with different flags (RFC 8060 §4.9). */
  elp: {
    kind: "elp",
    hops: [
      { lookup: false, probe: true, strict: true, address: v4("192.0.2.21") },
      { lookup: true, probe: false, strict: false, address: v4("192.0.2.22") },
      { lookup: false, probe: false, strict: true, address: v6("2001:db8::23") },
    ],
  } satisfies ElpAddress,
  /** LCAF 12: (source 198.51.100.0/24, destination 203.0.113.0/24) (RFC 8060 §4.11). */
  sourceDest: {
    kind: "src-dst",
    sourceMaskLen: 24,
    destMaskLen: 24,
    source: v4("198.51.100.0"),
    dest: v4("203.0.113.0"),
  } satisfies SourceDestAddress,
  /** LCAF 13: a replication list of three entries at levels 0, 0 and 128 (RFC 8060 §4.12). */
  rle: {
    kind: "rle",
    entries: [
      { level: 0, address: v4("192.0.2.31") },
      { level: 0, address: v4("192.0.2.32") },
      { level: 128, address: v6("2001:db8::33") },
    ],
  } satisfies RleAddress,
  /** LCAF 14: a JSON object with an RLOC after it (RFC 8060 §4.10.1). */
  json: {
    kind: "json",
    binary: false,
    json: '{"site":"example","rack":7}',
    address: v4("192.0.2.34"),
  } satisfies JsonAddress,
  /** LCAF 15: a key/value pair, a name for an RLOC (RFC 8060 §4.13). */
  keyValue: {
    kind: "kv",
    key: { kind: "dn", name: "rloc-1.example.com" },
    value: v4("192.0.2.35"),
  } satisfies KeyValueAddress,
  /** LCAF 0: a Null-body LCAF, kept raw (address.ts does not model type 0). */
  rawNull: {
    kind: "lcaf",
    type: 0,
    rsvd1: 0,
    flags: 0,
    rsvd2: 0,
    body: new Uint8Array(0),
  } satisfies RawLcaf,
  /**
   * LCAF 16 (Encapsulation Format, RFC 8060 §4.10.3), kept raw: a 16-bit
   * reserved field and the format bits with L (LISP) set.
   */
  rawEncapsulationFormat: {
    kind: "lcaf",
    type: 16,
    rsvd1: 0,
    flags: 0,
    rsvd2: 0,
    body: Uint8Array.of(0x00, 0x00, 0x00, 0x01),
  } satisfies RawLcaf,
} as const;

/** A MAC EID (AFI 16389), locally administered. */
export const MAC_EID: MacAddress = { kind: "mac", mac: "02:00:5e:10:00:01" };
/** A distinguished-name EID (AFI 17). */
export const DN_EID: DistinguishedName = { kind: "dn", name: "host1.example.com" };

// ---------------------------------------------------------------------------
// Control messages
// ---------------------------------------------------------------------------

function control(
  name: string,
  message: ControlMessage,
  srcPort: number,
  dstPort: number,
  extra: { readonly v6?: boolean; readonly inner?: ControlMessage } = {},
): ControlSample {
  return {
    name,
    kind: "control",
    message,
    srcPort,
    dstPort,
    ...extra,
    bytes: () => emitControlMessage(message),
  };
}

const REQUEST_DEFAULTS = {
  authoritative: false,
  probe: false,
  smr: false,
  pitr: false,
  smrInvoked: false,
  localXtr: false,
  dontMapReply: false,
} as const;

const MAP_REQUEST_PLAIN: MapRequest = {
  ...REQUEST_DEFAULTS,
  nonce: 0x0123456789abcdefn,
  sourceEid: v4("198.51.100.10"),
  itrRlocs: [v4("192.0.2.1")],
  records: [{ maskLen: 32, eid: v4("203.0.113.20") }],
};

const MAP_REQUEST_IPV6_ITR: MapRequest = {
  ...REQUEST_DEFAULTS,
  nonce: 0x1111222233334444n,
  sourceEid: v6("2001:db8:100::10"),
  itrRlocs: [v4("192.0.2.1"), v6("2001:db8::1"), v6("2001:db8:ffff::1")],
  records: [
    { maskLen: 128, eid: v6("2001:db8:203::20") },
    { maskLen: 24, eid: v4("203.0.113.0") },
  ],
};

const MAP_REQUEST_SMR: MapRequest = {
  ...REQUEST_DEFAULTS,
  smr: true,
  nonce: 0x5a5a5a5a00000001n,
  sourceEid: v4("198.51.100.10"),
  itrRlocs: [v4("192.0.2.2")],
  records: [{ maskLen: 24, eid: v4("203.0.113.0") }],
};

const MAP_REQUEST_SMR_INVOKED: MapRequest = {
  ...REQUEST_DEFAULTS,
  smrInvoked: true,
  pitr: true,
  nonce: 0x5a5a5a5a00000002n,
  sourceEid: NO_ADDRESS,
  itrRlocs: [v4("192.0.2.3")],
  records: [{ maskLen: 24, eid: v4("198.51.100.0") }],
};

const MAP_REQUEST_PROBE: MapRequest = {
  ...REQUEST_DEFAULTS,
  probe: true,
  nonce: 0xfedcba9876543210n,
  sourceEid: NO_ADDRESS,
  itrRlocs: [v4("192.0.2.1")],
  records: [{ maskLen: 24, eid: v4("203.0.113.0") }],
  mapReply: rec(v4("198.51.100.0"), 24, [
    loc(v4("192.0.2.1"), 1, 100, { local: true }),
    loc(v6("2001:db8::1"), 2, 0),
  ], { ttl: 60 }),
};

const MAP_REQUEST_IID: MapRequest = {
  ...REQUEST_DEFAULTS,
  authoritative: true,
  nonce: 0x0000000000000001n,
  sourceEid: iid(7, v6("2001:db8:100::10")),
  itrRlocs: [v6("2001:db8::1")],
  records: [{ maskLen: 48, eid: iid(7, v6("2001:db8:203::")) }],
};

const MAP_REQUEST_MAC: MapRequest = {
  ...REQUEST_DEFAULTS,
  nonce: 0x00000000deadbeefn,
  sourceEid: { kind: "mac", mac: "02:00:5e:10:00:02" },
  itrRlocs: [v4("192.0.2.4")],
  records: [{ maskLen: 48, eid: MAC_EID }],
};

const MAP_REPLY_POSITIVE: MapReply = {
  probe: false,
  echoNonce: true,
  security: false,
  nonce: 0x0123456789abcdefn,
  records: [
    rec(v4("203.0.113.0"), 24, [
      loc(v4("192.0.2.50"), 1, 50),
      loc(v4("192.0.2.51"), 1, 50),
      loc(v6("2001:db8::52"), 2, 100, { reachable: false }),
    ], { ttl: 1440, mapVersion: 7 }),
    rec(v6("2001:db8:203::"), 48, [loc(v6("2001:db8::52"), 1, 100)], { ttl: 60 }),
  ],
};

const MAP_REPLY_NEGATIVE: MapReply = {
  probe: false,
  echoNonce: false,
  security: false,
  nonce: 0x1122334455667788n,
  records: [
    rec(v4("203.0.112.0"), 22, [], { ttl: 15, action: ACTION.NATIVELY_FORWARD }),
    rec(v6("2001:db8:dead::"), 48, [], { ttl: 1, action: ACTION.SEND_MAP_REQUEST }),
    rec(v4("10.99.0.0"), 16, [], { ttl: 5, action: ACTION.DROP_POLICY_DENIED }),
  ],
};

const MAP_REPLY_PROBE: MapReply = {
  probe: true,
  echoNonce: false,
  security: false,
  nonce: 0xfedcba9876543210n,
  records: [
    rec(v4("203.0.113.0"), 24, [
      loc(v4("192.0.2.50"), 1, 100, { local: true, probed: true }),
    ], { ttl: 60 }),
  ],
};

const MAP_REPLY_DN: MapReply = {
  probe: false,
  echoNonce: false,
  security: false,
  nonce: 0x0d0d0d0d0d0d0d0dn,
  records: [rec(DN_EID, 0, [loc(v4("192.0.2.60"))], { ttl: 30 })],
};

/**
 * A Map-Reply whose one record carries `address` as its first locator and
 * a plain IPv4 locator after it (so a decoder that gets the LCAF length
 * wrong shows it on the next locator).
 */
function replyWithLocator(nonce: bigint, address: Address) {
  const msg: MapReply = {
    probe: false,
    echoNonce: false,
    security: false,
    nonce,
    records: [
      rec(v4("203.0.113.0"), 24, [loc(address), loc(v4("192.0.2.99"), 2, 100)], { ttl: 720 }),
    ],
  };
  return { type: "map-reply", msg } as const;
}

/** A Map-Reply whose one record has `address` as its EID, with one IPv4 locator. */
function replyWithEid(nonce: bigint, eid: Address, maskLen: number) {
  const msg: MapReply = {
    probe: false,
    echoNonce: false,
    security: false,
    nonce,
    records: [rec(eid, maskLen, [loc(v4("192.0.2.70"))], { ttl: 720 })],
  };
  return { type: "map-reply", msg } as const;
}

const MAP_REGISTER_KEY1: MapRegister = signed<MapRegister>({
  proxyReply: true,
  securityCapable: false,
  xtrIdPresent: false,
  rtr: false,
  eidNotify: false,
  useTtlForTimeout: false,
  mergeRequest: false,
  mobileNode: false,
  wantMapNotify: true,
  nonce: 0x0102030405060708n,
  keyId: 1,
  authData: NO_AUTH,
  records: [
    rec(v4("198.51.100.0"), 24, [
      loc(v4("192.0.2.1"), 1, 100, { local: true }),
      loc(v6("2001:db8::1"), 2, 100, { local: true }),
    ], { ttl: 1440 }),
  ],
}, (m) => emitMapRegister(m));

const MAP_REGISTER_KEY2_XTR_ID: MapRegister = signed<MapRegister>({
  proxyReply: false,
  securityCapable: false,
  xtrIdPresent: true,
  rtr: false,
  eidNotify: false,
  useTtlForTimeout: true,
  mergeRequest: true,
  mobileNode: false,
  wantMapNotify: true,
  nonce: 0x0a0b0c0d0e0f1011n,
  keyId: 2,
  authData: NO_AUTH,
  records: [
    rec(v4("198.51.100.0"), 24, [loc(v4("192.0.2.1"), 1, 100, { local: true })], { ttl: 3 }),
    rec(v6("2001:db8:100::"), 48, [loc(v6("2001:db8::1"), 1, 100, { local: true })], {
      ttl: 3,
    }),
  ],
  xtrId: 0x000102030405060708090a0b0c0d0e0fn,
  siteId: 0x1122334455667788n,
}, (m) => emitMapRegister(m));

const MAP_REGISTER_IID: MapRegister = signed<MapRegister>({
  proxyReply: false,
  securityCapable: false,
  xtrIdPresent: false,
  rtr: false,
  eidNotify: false,
  useTtlForTimeout: false,
  mergeRequest: false,
  mobileNode: false,
  wantMapNotify: false,
  nonce: 0x2222222222222222n,
  keyId: 1,
  authData: NO_AUTH,
  records: [
    rec(LCAF_ADDRESSES.iid, 24, [loc(v4("192.0.2.1"), 1, 100, { local: true })]),
    rec(iid(4096, v6("2001:db8:100::")), 48, [loc(v4("192.0.2.1"), 1, 100, { local: true })]),
    rec(iid(5000, MAC_EID), 48, [loc(v4("192.0.2.1"), 1, 100, { local: true })]),
  ],
}, (m) => emitMapRegister(m));

const MAP_REGISTER_EID_NOTIFY: MapRegister = signed<MapRegister>({
  proxyReply: false,
  securityCapable: false,
  xtrIdPresent: false,
  rtr: false,
  eidNotify: true,
  useTtlForTimeout: false,
  mergeRequest: false,
  mobileNode: true,
  wantMapNotify: true,
  nonce: 0x5555555555555555n,
  keyId: 1,
  authData: NO_AUTH,
  records: [rec(v4("198.51.100.77"), 32, [loc(v4("192.0.2.7"), 1, 100, { local: true })])],
}, (m) => emitMapRegister(m));

const MAP_NOTIFY: MapNotify = signed<MapNotify>({
  ack: false,
  xtrIdPresent: false,
  rtrAuthPresent: false,
  nonce: 0x0102030405060708n,
  keyId: 1,
  authData: NO_AUTH,
  records: MAP_REGISTER_KEY1.records,
}, (m) => emitMapNotify(m));

const MAP_NOTIFY_XTR_RTR: MapNotify = signed<MapNotify>({
  ack: false,
  xtrIdPresent: true,
  rtrAuthPresent: true,
  nonce: 0x3333333333333333n,
  keyId: 2,
  authData: NO_AUTH,
  records: [rec(v4("198.51.100.0"), 24, [loc(v4("192.0.2.201"), 1, 100)], { ttl: 3 })],
  xtrId: 0x000102030405060708090a0b0c0d0e0fn,
  siteId: 0x1122334455667788n,
  rtrKeyId: 1,
  // A fixed 20-byte pattern: what the RTR would check is not modelled here.
  rtrAuthData: Uint8Array.from({ length: 20 }, (_, i) => 0xa0 + i),
}, (m) => emitMapNotify(m));

const MAP_NOTIFY_ACK: MapNotify = signed<MapNotify>({
  ack: true,
  xtrIdPresent: false,
  rtrAuthPresent: false,
  nonce: 0x4444444444444444n,
  keyId: 2,
  authData: NO_AUTH,
  records: [rec(v4("198.51.100.0"), 24, [loc(v4("192.0.2.1"), 1, 100)], { ttl: 1440 })],
}, (m) => emitMapNotify(m));

/** A Map-Referral record (`locators` are the Ref entries). */
function referral(
  eid: Address,
  maskLen: number,
  action: number,
  refs: readonly Address[],
  extra: { readonly incomplete?: boolean; readonly ttl?: number } = {},
): MapReferralRecord {
  return {
    record: {
      ttl: extra.ttl ?? 1440,
      maskLen,
      action,
      authoritative: true,
      incomplete: extra.incomplete ?? false,
      sigCount: 0,
      mapVersion: 0,
      eid,
      locators: refs.map((a) => loc(a, 1, 0)),
    },
    signatures: [],
  };
}

const MAP_REFERRAL_ACTIONS: MapReferral = {
  nonce: 0x6666666666666666n,
  records: [
    referral(v4("198.51.100.0"), 24, REFERRAL_ACTION.NODE_REFERRAL, [
      v4("192.0.2.91"),
      v6("2001:db8::91"),
    ]),
    referral(v4("203.0.113.0"), 24, REFERRAL_ACTION.MS_REFERRAL, [v4("192.0.2.92")], {
      incomplete: true,
    }),
    referral(v4("203.0.113.128"), 25, REFERRAL_ACTION.MS_ACK, [v4("192.0.2.93")], { ttl: 1 }),
    referral(v6("2001:db8:1::"), 48, REFERRAL_ACTION.MS_NOT_REGISTERED, [v4("192.0.2.93")], {
      ttl: 1,
    }),
  ],
};

const MAP_REFERRAL_NEGATIVE: MapReferral = {
  nonce: 0x7777777777777777n,
  records: [
    referral(iid(4096, v4("10.128.0.0")), 9, REFERRAL_ACTION.DELEGATION_HOLE, [], { ttl: 15 }),
    referral(v4("10.0.0.0"), 8, REFERRAL_ACTION.NOT_AUTHORITATIVE, [], {
      ttl: 0,
      incomplete: true,
    }),
  ],
};

const MAP_REFERRAL_SIGNED: MapReferral = {
  nonce: 0x8888888888888888n,
  records: [{
    record: {
      ...referral(v4("198.51.100.0"), 24, REFERRAL_ACTION.NODE_REFERRAL, [v4("192.0.2.91")])
        .record,
      sigCount: 1, // what a parse reports; the emitter writes signatures.length
    },
    signatures: [{
      originalTtl: 1440,
      expiration: 1_735_689_600, // 2025-01-01T00:00:00Z
      inception: 1_704_067_200, // 2024-01-01T00:00:00Z
      keyTag: 0x1234,
      algorithm: 1,
      signature: Uint8Array.from({ length: 32 }, (_, i) => i),
    }],
  }],
};

const INFO_REQUEST: InfoRequest = signed<InfoRequest>({
  reply: false,
  nonce: 0x9999999999999999n,
  keyId: 1,
  authData: NO_AUTH,
  ttl: 0,
  maskLen: 24,
  eid: v4("198.51.100.0"),
  address: NO_ADDRESS,
}, (m) => emitInfo(m));

const INFO_REPLY: InfoReply = signed<InfoReply>({
  reply: true,
  nonce: 0x9999999999999999n,
  keyId: 1,
  authData: NO_AUTH,
  ttl: 1440,
  maskLen: 24,
  eid: v4("198.51.100.0"),
  nat: LCAF_ADDRESSES.natTraversal,
}, (m) => emitInfo(m));

const INFO_REQUEST_KEY2_IPV6: InfoRequest = signed<InfoRequest>({
  reply: false,
  nonce: 0xaaaaaaaaaaaaaaaan,
  keyId: 2,
  authData: NO_AUTH,
  ttl: 0,
  maskLen: 48,
  eid: v6("2001:db8:100::"),
  address: NO_ADDRESS,
}, (m) => emitInfo(m));

function ecm(
  inner: ControlMessage,
  src: string,
  dst: string,
  flags: Partial<
    Pick<Ecm, "security" | "ddtOriginated" | "forRtr" | "rtrRelayed" | "toEtr" | "toMs">
  > = {},
  srcPort = ITR_PORT,
): Ecm {
  const v4 = !src.includes(":");
  return {
    security: flags.security ?? false,
    ddtOriginated: flags.ddtOriginated ?? false,
    forRtr: flags.forRtr ?? false,
    rtrRelayed: flags.rtrRelayed ?? false,
    toEtr: flags.toEtr ?? false,
    toMs: flags.toMs ?? false,
    inner: v4
      ? {
        src,
        dst,
        srcPort,
        dstPort: LISP_CONTROL_PORT,
        ttl: 64,
        tos: 0,
        identification: 0,
        dontFragment: true,
        zeroUdpChecksum: false,
      }
      : { src, dst, srcPort, dstPort: LISP_CONTROL_PORT, ttl: 64, tos: 0, flowLabel: 0 },
    payload: emitControlMessage(inner),
    // What parseEcm reports for the checksums emitEcm computes, so a parsed
    // sample equals its record.
    checksumOk: true,
  };
}

const REQUEST_PLAIN: ControlMessage = { type: "map-request", msg: MAP_REQUEST_PLAIN };
const REQUEST_IPV6_ITR: ControlMessage = { type: "map-request", msg: MAP_REQUEST_IPV6_ITR };
const REQUEST_IID: ControlMessage = { type: "map-request", msg: MAP_REQUEST_IID };
const REGISTER_KEY1: ControlMessage = { type: "map-register", msg: MAP_REGISTER_KEY1 };

const ECM_V4 = ecm(REQUEST_PLAIN, "198.51.100.10", "203.0.113.20");
const ECM_V6 = ecm(REQUEST_IPV6_ITR, "2001:db8:100::10", "2001:db8:203::20");
const ECM_DDT = ecm(REQUEST_IID, "2001:db8:100::10", "2001:db8:203::", {
  ddtOriginated: true,
});
/** NAT traversal: the xTR behind a NAT sends its Map-Register to an RTR (R bit). */
const ECM_TO_RTR = ecm(
  REGISTER_KEY1,
  "10.0.0.17",
  "192.0.2.201",
  { forRtr: true },
  LISP_CONTROL_PORT,
);
/** NAT traversal: the RTR relays that Map-Register to the Map-Server (N bit). */
const ECM_RTR_RELAYED = ecm(
  REGISTER_KEY1,
  "192.0.2.201",
  "192.0.2.100",
  { rtrRelayed: true },
  LISP_CONTROL_PORT,
);

const MAP_REQUEST_LOCAL_XTR: MapRequest = {
  ...REQUEST_DEFAULTS,
  localXtr: true,
  dontMapReply: true,
  nonce: 0x0000000000001234n,
  sourceEid: v4("198.51.100.10"),
  itrRlocs: [v4("192.0.2.5")],
  records: [{ maskLen: 24, eid: v4("198.51.100.0") }],
};

/** A subscription (RFC 9437 §4): the N bit on its record, the I bit with xTR-ID and Site-ID. */
const MAP_REQUEST_SUBSCRIBE: MapRequest = {
  ...REQUEST_DEFAULTS,
  nonce: 0x5055425355420001n,
  sourceEid: v4("198.51.100.10"),
  itrRlocs: [v4("192.0.2.1")],
  records: [{ maskLen: 32, eid: v4("203.0.113.20"), notify: true }],
  xtrId: 0x000102030405060708090a0b0c0d0e0fn,
  siteId: 0x1122334455667788n,
};

/** A publication (RFC 9437 §5): the subscriber's xTR-ID and Site-ID, signed with its site's key. */
const MAP_NOTIFY_PUBLICATION: MapNotify = signed<MapNotify>({
  ack: false,
  xtrIdPresent: true,
  rtrAuthPresent: false,
  nonce: 0x5055425355420002n,
  keyId: 1,
  authData: NO_AUTH,
  records: [rec(v4("203.0.113.20"), 32, [loc(v4("192.0.2.77"), 1, 100)], { ttl: 1440 })],
  xtrId: 0x000102030405060708090a0b0c0d0e0fn,
  siteId: 0x1122334455667788n,
}, (m) => emitMapNotify(m));

/** The subscriber's Map-Notify-Ack of that publication: the same contents, type 5. */
const MAP_NOTIFY_ACK_PUBLICATION: MapNotify = signed<MapNotify>({
  ...MAP_NOTIFY_PUBLICATION,
  ack: true,
  authData: NO_AUTH,
}, (m) => emitMapNotify(m));

const CONTROL_SAMPLES: readonly ControlSample[] = [
  control(
    "Map-Request, subscription (RFC 9437): N bit, I bit with xTR-ID and Site-ID",
    { type: "map-request", msg: MAP_REQUEST_SUBSCRIBE },
    ITR_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Notify, publication to a subscriber (RFC 9437): I bit, key id 1",
    { type: "map-notify", msg: MAP_NOTIFY_PUBLICATION },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Notify-Ack of a publication: I bit, key id 1",
    { type: "map-notify-ack", msg: MAP_NOTIFY_ACK_PUBLICATION },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, IPv4 EID",
    { type: "map-request", msg: MAP_REQUEST_PLAIN },
    ITR_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, three ITR-RLOCs (two IPv6), IPv6 and IPv4 records",
    { type: "map-request", msg: MAP_REQUEST_IPV6_ITR },
    ITR_PORT,
    LISP_CONTROL_PORT,
    { v6: true },
  ),
  control(
    "Map-Request, SMR (S bit)",
    { type: "map-request", msg: MAP_REQUEST_SMR },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, SMR-invoked from a PITR (s and p bits, no source EID)",
    { type: "map-request", msg: MAP_REQUEST_SMR_INVOKED },
    ITR_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, RLOC-probe (P bit) with a Map-Reply record",
    { type: "map-request", msg: MAP_REQUEST_PROBE },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, Instance-ID source EID and record (A bit)",
    { type: "map-request", msg: MAP_REQUEST_IID },
    ITR_PORT,
    LISP_CONTROL_PORT,
    { v6: true },
  ),
  control(
    "Map-Request, L and D bits (local xTR, don't map-reply)",
    { type: "map-request", msg: MAP_REQUEST_LOCAL_XTR },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Request, MAC source EID and record",
    { type: "map-request", msg: MAP_REQUEST_MAC },
    ITR_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Reply, positive, IPv4 and IPv6 records and locators",
    { type: "map-reply", msg: MAP_REPLY_POSITIVE },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, negative (natively-forward, send-map-request, drop)",
    { type: "map-reply", msg: MAP_REPLY_NEGATIVE },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, RLOC-probe reply (P bit, probed locator)",
    { type: "map-reply", msg: MAP_REPLY_PROBE },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Reply, distinguished-name EID",
    { type: "map-reply", msg: MAP_REPLY_DN },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, AFI-list locator (LCAF 1)",
    replyWithLocator(0x0100000000000001n, LCAF_ADDRESSES.afiList),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, AS-number locator (LCAF 3)",
    replyWithLocator(0x0300000000000003n, LCAF_ADDRESSES.asNumber),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, application-data locator (LCAF 4)",
    replyWithLocator(0x0400000000000004n, LCAF_ADDRESSES.applicationData),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, geo-coordinates locator (LCAF 5)",
    replyWithLocator(0x0500000000000005n, LCAF_ADDRESSES.geo),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, nonce locator (LCAF 8)",
    replyWithLocator(0x0800000000000008n, LCAF_ADDRESSES.nonceLocator),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, multicast-info EID (LCAF 9)",
    replyWithEid(0x0900000000000009n, LCAF_ADDRESSES.multicastInfo, 32),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, explicit-locator-path locator (LCAF 10)",
    replyWithLocator(0x0a0000000000000an, LCAF_ADDRESSES.elp),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, source/dest EID (LCAF 12)",
    replyWithEid(0x0c0000000000000cn, LCAF_ADDRESSES.sourceDest, 24),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, replication-list locator (LCAF 13)",
    replyWithLocator(0x0d0000000000000dn, LCAF_ADDRESSES.rle),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, JSON locator (LCAF 14)",
    replyWithLocator(0x0e0000000000000en, LCAF_ADDRESSES.json),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, key/value locator (LCAF 15)",
    replyWithLocator(0x0f0000000000000fn, LCAF_ADDRESSES.keyValue),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, Null-body LCAF locator (raw LCAF 0)",
    replyWithLocator(0x1000000000000000n, LCAF_ADDRESSES.rawNull),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Reply, unmodelled LCAF locator (raw LCAF 16)",
    replyWithLocator(0x1000000000000010n, LCAF_ADDRESSES.rawEncapsulationFormat),
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Register, key id 1, P and M bits, IPv4 EID with IPv4 and IPv6 locators",
    { type: "map-register", msg: MAP_REGISTER_KEY1 },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Register, key id 2, I bit with xTR-ID and site-ID, T, a and M bits",
    { type: "map-register", msg: MAP_REGISTER_KEY2_XTR_ID },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Register, Instance-ID EIDs (IPv4, IPv6, MAC)",
    { type: "map-register", msg: MAP_REGISTER_IID },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Register, E bit (EID-notify) and m bit (mobile node), dynamic /32 EID",
    { type: "map-register", msg: MAP_REGISTER_EID_NOTIFY },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Notify, key id 1",
    { type: "map-notify", msg: MAP_NOTIFY },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Notify, key id 2, I bit with xTR-ID and site-ID, R bit with MS-RTR authentication",
    { type: "map-notify", msg: MAP_NOTIFY_XTR_RTR },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Notify-Ack, key id 2",
    { type: "map-notify-ack", msg: MAP_NOTIFY_ACK },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Map-Referral, node-referral, ms-referral (incomplete), ms-ack, ms-not-registered",
    { type: "map-referral", msg: MAP_REFERRAL_ACTIONS },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Referral, delegation-hole (Instance-ID EID) and not-authoritative (incomplete)",
    { type: "map-referral", msg: MAP_REFERRAL_NEGATIVE },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Map-Referral, node-referral with a signature section",
    { type: "map-referral", msg: MAP_REFERRAL_SIGNED },
    LISP_CONTROL_PORT,
    ITR_PORT,
  ),
  control(
    "Info-Request, key id 1, IPv4 EID",
    { type: "info-request", msg: INFO_REQUEST },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "Info-Request, key id 2, IPv6 EID",
    { type: "info-request", msg: INFO_REQUEST_KEY2_IPV6 },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
    { v6: true },
  ),
  control(
    "Info-Reply, NAT-traversal LCAF (7) with two RTRs",
    { type: "info-reply", msg: INFO_REPLY },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
  ),
  control(
    "ECM over IPv4 wrapping a Map-Request",
    { type: "ecm", msg: ECM_V4 },
    ITR_PORT,
    LISP_CONTROL_PORT,
    { inner: REQUEST_PLAIN },
  ),
  control(
    "ECM over IPv6 wrapping a Map-Request with IPv6 ITR-RLOCs",
    { type: "ecm", msg: ECM_V6 },
    ITR_PORT,
    LISP_CONTROL_PORT,
    { v6: true, inner: REQUEST_IPV6_ITR },
  ),
  control(
    "ECM with the D bit (DDT) over IPv6 wrapping an Instance-ID Map-Request",
    { type: "ecm", msg: ECM_DDT },
    ITR_PORT,
    LISP_CONTROL_PORT,
    { v6: true, inner: REQUEST_IID },
  ),
  control(
    "ECM with the R bit (for an RTR) wrapping a Map-Register from behind a NAT",
    { type: "ecm", msg: ECM_TO_RTR },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
    { inner: REGISTER_KEY1 },
  ),
  control(
    "ECM with the N bit (relayed by an RTR) wrapping a Map-Register",
    { type: "ecm", msg: ECM_RTR_RELAYED },
    LISP_CONTROL_PORT,
    LISP_CONTROL_PORT,
    { inner: REGISTER_KEY1 },
  ),
];

// ---------------------------------------------------------------------------
// Data headers
// ---------------------------------------------------------------------------

/** The inner packet of every data sample: IPv4/UDP from one EID to another. */
export const INNER_IPV4_PACKET: Uint8Array = emitIpUdp({
  src: "198.51.100.10",
  dst: "203.0.113.20",
  srcPort: 40001,
  dstPort: 40002,
  ttl: 63,
  payload: new TextEncoder().encode("oor sample payload"),
});

const DATA_DEFAULTS: LispDataHeader = {
  n: false,
  l: false,
  e: false,
  v: false,
  i: false,
  flagsReserved: 0,
  nonce: 0,
  sourceMapVersion: 0,
  destMapVersion: 0,
  instanceId: 0,
  lsb: 0,
};

function lispData(name: string, header: LispDataHeader): LispDataSample {
  return {
    name,
    kind: "lisp-data",
    header,
    payload: INNER_IPV4_PACKET,
    srcPort: 61002,
    dstPort: LISP_DATA_PORT,
    bytes: () => {
      const out = new Uint8Array(8 + INNER_IPV4_PACKET.length);
      emitLispDataHeader(header, out, 0);
      out.set(INNER_IPV4_PACKET, 8);
      return out;
    },
  };
}

function vxlanGpe(name: string, header: VxlanGpeHeader, v6 = false): VxlanGpeSample {
  return {
    name,
    kind: "vxlan-gpe",
    header,
    payload: INNER_IPV4_PACKET,
    srcPort: 61003,
    dstPort: VXLAN_GPE_PORT,
    ...(v6 ? { v6 } : {}),
    bytes: () => {
      const out = new Uint8Array(8 + INNER_IPV4_PACKET.length);
      emitVxlanGpeHeader(header, out, 0);
      out.set(INNER_IPV4_PACKET, 8);
      return out;
    },
  };
}

const DATA_SAMPLES: readonly Sample[] = [
  lispData("LISP data, no flags", DATA_DEFAULTS),
  lispData("LISP data, N and E bits (echo-nonce request)", {
    ...DATA_DEFAULTS,
    n: true,
    e: true,
    nonce: 0xabcdef,
  }),
  lispData("LISP data, N and L bits, 32 locator-status-bits", {
    ...DATA_DEFAULTS,
    n: true,
    l: true,
    nonce: 0x123456,
    lsb: 0x00000005,
  }),
  lispData("LISP data, N, L and I bits, instance id 4096", {
    ...DATA_DEFAULTS,
    n: true,
    l: true,
    i: true,
    nonce: 0x0c0ffe,
    instanceId: 4096,
    lsb: 0x03,
  }),
  lispData("LISP data, I bit only, instance id 0xabcdef", {
    ...DATA_DEFAULTS,
    i: true,
    instanceId: 0xabcdef,
  }),
  lispData("LISP data, V bit, map versions 1 and 4095", {
    ...DATA_DEFAULTS,
    v: true,
    sourceMapVersion: 1,
    destMapVersion: 4095,
  }),
  vxlanGpe("VXLAN-GPE, I and P bits, IPv4, VNI 12345", {
    version: 0,
    i: true,
    p: true,
    b: false,
    o: false,
    nextProtocol: VXLAN_GPE_NP_IPV4,
    vni: 12345,
  }),
  vxlanGpe("VXLAN-GPE over IPv6, I, P and B bits, IPv4, VNI 0xfffffe", {
    version: 0,
    i: true,
    p: true,
    b: true,
    o: false,
    nextProtocol: VXLAN_GPE_NP_IPV4,
    vni: 0xfffffe,
  }, true),
];

// ---------------------------------------------------------------------------
// All of them
// ---------------------------------------------------------------------------

/** Every sample, control messages first; names are unique. */
export const SAMPLES: readonly Sample[] = [...CONTROL_SAMPLES, ...DATA_SAMPLES];

{
  const seen = new Set<string>();
  for (const s of SAMPLES) {
    if (seen.has(s.name)) throw new Error(`duplicate sample name ${s.name}`);
    seen.add(s.name);
  }
}

/** The sample called `name`; throws when there is none. */
export function sample(name: string): Sample {
  const s = SAMPLES.find((x) => x.name === name);
  if (s === undefined) throw new Error(`no sample called ${JSON.stringify(name)}`);
  return s;
}

/** Every address in a control message, depth first in wire order (LCAF contents included). */
export function addressesOf(m: ControlMessage): Address[] {
  const out: Address[] = [];
  const add = (a: Address): void => {
    out.push(a);
    for (const c of childAddresses(a)) add(c);
  };
  const addRecord = (r: EidRecord): void => {
    add(r.eid);
    for (const l of r.locators) add(l.address);
  };
  switch (m.type) {
    case "map-request":
      add(m.msg.sourceEid);
      for (const a of m.msg.itrRlocs) add(a);
      for (const r of m.msg.records) add(r.eid);
      if (m.msg.mapReply !== undefined) addRecord(m.msg.mapReply);
      break;
    case "map-reply":
    case "map-register":
    case "map-notify":
    case "map-notify-ack":
      for (const r of m.msg.records) addRecord(r);
      break;
    case "map-referral":
      for (const r of m.msg.records) addRecord(r.record);
      break;
    case "info-request":
      add(m.msg.eid);
      add(m.msg.address);
      break;
    case "info-reply":
      add(m.msg.eid);
      add(m.msg.nat);
      break;
    case "ecm":
      break;
  }
  return out;
}

/** The addresses directly inside an LCAF (none for plain addresses), in wire order. */
export function childAddresses(a: Address): readonly Address[] {
  switch (a.kind) {
    case "afi-list":
      return a.list;
    case "iid":
    case "as":
    case "app-data":
    case "geo":
    case "nonce":
    case "json":
      return [a.address];
    case "nat":
      return [a.globalEtr, a.ms, a.privateEtr, ...a.rtrs];
    case "mcast":
      return [a.source, a.group];
    case "elp":
      return a.hops.map((h) => h.address);
    case "src-dst":
      return [a.source, a.dest];
    case "rle":
      return a.entries.map((e) => e.address);
    case "kv":
      return [a.key, a.value];
    default:
      return [];
  }
}
