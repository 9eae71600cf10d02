/**
 * The rtnetlink message layer of netlink.ts: numbers from the kernel's
 * uapi headers (linux/netlink.h, linux/rtnetlink.h, linux/if_link.h,
 * linux/if_addr.h, linux/fib_rules.h), the public record types, and the
 * encoding of requests and decoding of answers. No sockets here.
 *
 * @module
 */

import { AF_INET, AF_INET6, HOST_LE, IFF_LOWER_UP, IFF_RUNNING, IFF_UP } from "./libc.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes } from "../wire/ip_text.ts";

// ---------------------------------------------------------------------------
// Protocol constants (linux/netlink.h, linux/rtnetlink.h, linux/fib_rules.h,
// linux/if_link.h, linux/if_addr.h).

const NLMSG_HDRLEN = 16;
export const NLMSG_NOOP = 1;
export const NLMSG_ERROR = 2;
export const NLMSG_DONE = 3;
export const NLM_F_REQUEST = 0x1;
export const NLM_F_ACK = 0x4;
export const NLM_F_DUMP_INTR = 0x10;
export const NLM_F_DUMP = 0x300;
export const NLM_F_REPLACE = 0x100;
export const NLM_F_EXCL = 0x200;
export const NLM_F_CREATE = 0x400;
/** In NLMSG_ERROR: the request copy was left out (NETLINK_CAP_ACK). */
const NLM_F_CAPPED = 0x100;
/** In NLMSG_ERROR: extended-ack TLVs follow. */
const NLM_F_ACK_TLVS = 0x200;
const NLMSGERR_ATTR_MSG = 1;

/** rtnetlink message types. */
export const RTM = {
  NEWLINK: 16,
  DELLINK: 17,
  GETLINK: 18,
  NEWADDR: 20,
  DELADDR: 21,
  GETADDR: 22,
  NEWROUTE: 24,
  DELROUTE: 25,
  GETROUTE: 26,
  NEWRULE: 32,
  DELRULE: 33,
  GETRULE: 34,
} as const;

export const RTM_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(RTM).map(([k, v]) => [v, `RTM_${k}`]),
);

/** Multicast groups (bit masks for sockaddr_nl.nl_groups). */
export const RTMGRP = {
  LINK: 0x1,
  IPV4_IFADDR: 0x10,
  IPV4_ROUTE: 0x40,
  IPV6_IFADDR: 0x100,
  IPV6_ROUTE: 0x400,
} as const;

const IFLA_ADDRESS = 1;
const IFLA_IFNAME = 3;
export const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;

export const IFA_ADDRESS = 1;
export const IFA_LOCAL = 2;
const IFA_LABEL = 3;
export const IFA_FLAGS = 8;
/** ifa_flags: no duplicate address detection (IPv6). */
export const IFA_F_NODAD = 0x02;
/** ifa_flags: do not add the prefix route. */
export const IFA_F_NOPREFIXROUTE = 0x200;

export const RTA_DST = 1;
export const RTA_SRC = 2;
export const RTA_OIF = 4;
export const RTA_GATEWAY = 5;
export const RTA_PRIORITY = 6;
export const RTA_PREFSRC = 7;
export const RTA_TABLE = 15;
/** rtm_flags of RTM_GETROUTE: report the table the lookup used. */
export const RTM_F_LOOKUP_TABLE = 0x1000;

export const FRA_DST = 1;
export const FRA_SRC = 2;
export const FRA_IIFNAME = 3;
export const FRA_PRIORITY = 6;
export const FRA_FWMARK = 10;
export const FRA_TABLE = 15;
export const FRA_OIFNAME = 17;

/** Routing table ids. */
export const RT_TABLE = { UNSPEC: 0, DEFAULT: 253, MAIN: 254, LOCAL: 255 } as const;
/** Route scopes. */
export const RT_SCOPE = { UNIVERSE: 0, SITE: 200, LINK: 253, HOST: 254, NOWHERE: 255 } as const;
/** Route protocols (who installed it). */
export const RTPROT = { UNSPEC: 0, REDIRECT: 1, KERNEL: 2, BOOT: 3, STATIC: 4 } as const;

/** Route types by name. */
export const ROUTE_TYPES = {
  unspec: 0,
  unicast: 1,
  local: 2,
  broadcast: 3,
  anycast: 4,
  multicast: 5,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
  throw: 9,
} as const;

/** A route type name. */
export type RouteTypeName = keyof typeof ROUTE_TYPES;

const ROUTE_TYPE_NAMES: readonly RouteTypeName[] = Object.keys(ROUTE_TYPES) as RouteTypeName[];

/** Rule actions by name (FR_ACT_*). */
export const RULE_ACTIONS = {
  lookup: 1,
  goto: 2,
  nop: 3,
  blackhole: 6,
  unreachable: 7,
  prohibit: 8,
} as const;

/** A rule action name. */
export type RuleActionName = keyof typeof RULE_ACTIONS;

/** An IP family as this project spells it. */
export type IpFamily = "ipv4" | "ipv6";
// ---------------------------------------------------------------------------
// Records.

/** A network interface, from {@link Netlink.links} or a link event. */
export interface Link {
  /** Interface index. */
  readonly index: number;
  /** Interface name. */
  readonly name: string;
  /** IFF_* flags (ifi_flags). */
  readonly flags: number;
  /** IFF_UP: administratively up. */
  readonly up: boolean;
  /** IFF_RUNNING: operationally up (carrier and up). */
  readonly running: boolean;
  /** IFF_LOWER_UP: the driver reports carrier. */
  readonly lowerUp: boolean;
  /** ARPHRD_* hardware type (1 Ethernet, 772 loopback, 65534 TUN/none). */
  readonly type: number;
  /** MTU, when reported. */
  readonly mtu?: number;
  /** Link-layer address (`"aa:bb:..."`), when it has one. */
  readonly mac?: string;
  /** IF_OPER_* state (6 up, 2 down, 0 unknown), when reported. */
  readonly operstate?: number;
  /** Index of the master device (bridge, VRF), when enslaved. */
  readonly master?: number;
}

/** An interface address, from {@link Netlink.addresses} or an address event. */
export interface InterfaceAddress {
  /** Address family. */
  readonly family: IpFamily;
  /** Interface index. */
  readonly index: number;
  /** The local address. */
  readonly address: string;
  /** Prefix length. */
  readonly prefixLen: number;
  /** Scope (0 universe, 253 link, 254 host). */
  readonly scope: number;
  /** IFA_F_* flags (IFA_FLAGS when present, else ifa_flags). */
  readonly flags: number;
  /** Peer address of a point-to-point address, when different from the local one. */
  readonly peer?: string;
  /** IPv4 label (usually the interface name). */
  readonly label?: string;
}

/** Options of {@link Netlink.addrAdd}. */
export interface AddressOptions {
  /** IFA_F_NODAD: usable at once, no duplicate address detection (IPv6). */
  readonly nodad?: boolean;
  /** IFA_F_NOPREFIXROUTE: do not add the route to the address's prefix. */
  readonly noprefixroute?: boolean;
}

/** A route to add or delete with {@link Netlink.routeAdd} / {@link Netlink.routeDel}. */
export interface RouteSpec {
  /** Destination prefix, e.g. `"0.0.0.0/0"`, `"10.1.0.0/16"`, `"8000::/1"`. */
  readonly dst: string;
  /** Table id (any u32; > 255 goes in RTA_TABLE). Default 254 (main). */
  readonly table?: number;
  /** Output interface index. */
  readonly dev?: number;
  /** Next hop. */
  readonly gateway?: string;
  /** Preferred source address (RTA_PREFSRC). */
  readonly src?: string;
  /** Metric (RTA_PRIORITY). */
  readonly metric?: number;
  /** Route type; default `"unicast"`. */
  readonly type?: RouteTypeName;
  /** RTPROT_* protocol; default RTPROT_BOOT (3) on add, "any" on delete. */
  readonly protocol?: number;
  /** RT_SCOPE_*; default link for a unicast route without gateway, else universe. */
  readonly scope?: number;
  /** On add: replace a route with the same key instead of failing with EEXIST. */
  readonly replace?: boolean;
}

/** A route from {@link Netlink.routes}. */
export interface Route {
  /** Address family. */
  readonly family: IpFamily;
  /** Destination prefix (`"0.0.0.0/0"` for a default route). */
  readonly dst: string;
  /** Table id. */
  readonly table: number;
  /** Route type name, or the number when unknown. */
  readonly type: RouteTypeName | number;
  /** RTPROT_* protocol. */
  readonly protocol: number;
  /** RT_SCOPE_* scope. */
  readonly scope: number;
  /** Output interface index. */
  readonly dev?: number;
  /** Next hop. */
  readonly gateway?: string;
  /** Preferred source. */
  readonly src?: string;
  /** Metric. */
  readonly metric?: number;
}

/** A policy rule to add or delete with {@link Netlink.ruleAdd} / {@link Netlink.ruleDel}. */
export interface RuleSpec {
  /** Address family of the rule. */
  readonly family: IpFamily;
  /** Priority (preference); the kernel picks one when omitted on add. */
  readonly priority?: number;
  /** Table to look up (action lookup); 254 is main. */
  readonly table?: number;
  /** Source prefix (`from`). */
  readonly from?: string;
  /** Destination prefix (`to`). */
  readonly to?: string;
  /** Input interface name (`iif`). */
  readonly iif?: string;
  /** Output interface name (`oif`). */
  readonly oif?: string;
  /** Firewall mark. */
  readonly fwmark?: number;
  /** Action; default `"lookup"`. */
  readonly action?: RuleActionName;
}

/** A policy rule from {@link Netlink.rules}. */
export interface Rule {
  /** Address family. */
  readonly family: IpFamily;
  /** Priority (0 for the local-table rule). */
  readonly priority: number;
  /** Table id (0 for rules without lookup). */
  readonly table: number;
  /** Action name, or the number when unknown. */
  readonly action: RuleActionName | number;
  /** Source prefix. */
  readonly from?: string;
  /** Destination prefix. */
  readonly to?: string;
  /** Input interface name. */
  readonly iif?: string;
  /** Output interface name. */
  readonly oif?: string;
  /** Firewall mark. */
  readonly fwmark?: number;
}

/** A change seen by {@link NetlinkEvents}. */
export type NetlinkEvent =
  | {
    /** A link appeared or changed (`"new"`: flags, MTU, name...) or was deleted (`"del"`). */
    readonly kind: "link";
    /** New/changed, or deleted. */
    readonly change: "new" | "del";
    /** The link. */
    readonly link: Link;
  }
  | {
    /** An address was added (`"new"`, also sent on flag updates) or removed (`"del"`). */
    readonly kind: "address";
    /** Added/updated, or removed. */
    readonly change: "new" | "del";
    /** The address. */
    readonly address: InterfaceAddress;
  }
  | {
    /** The kernel dropped events (ENOBUFS): re-read state with the dumps. */
    readonly kind: "overflow";
  };
// ---------------------------------------------------------------------------
// Prefixes.

interface ParsedPrefix {
  readonly af: number;
  readonly bytes: Uint8Array;
  readonly len: number;
}

export function parseIp(text: string, what: string): { af: number; bytes: Uint8Array } {
  const b4 = new Uint8Array(4);
  if (ipv4ToBytes(text, b4, 0)) return { af: AF_INET, bytes: b4 };
  const b6 = new Uint8Array(16);
  if (ipv6ToBytes(text, b6, 0)) return { af: AF_INET6, bytes: b6 };
  throw new TypeError(`${what}: not an IP address: ${JSON.stringify(text)}`);
}

export function parsePrefix(text: string, what: string): ParsedPrefix {
  const slash = text.indexOf("/");
  const ip = parseIp(slash < 0 ? text : text.slice(0, slash), what);
  const max = ip.af === AF_INET ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const l = text.slice(slash + 1);
    len = /^\d{1,3}$/.test(l) ? Number(l) : -1;
    if (len < 0 || len > max) throw new TypeError(`${what}: bad prefix length in ${text}`);
  }
  return { af: ip.af, bytes: ip.bytes, len };
}

function ipText(b: Uint8Array): string {
  return b.length === 4 ? ipv4FromBytes(b, 0) : ipv6FromBytes(b, 0);
}

function familyName(af: number): IpFamily {
  return af === AF_INET ? "ipv4" : "ipv6";
}

export function afOf(family: IpFamily): number {
  return family === "ipv4" ? AF_INET : AF_INET6;
}

// ---------------------------------------------------------------------------
// Message building and parsing.

/** Builds one netlink message in a reusable buffer. */
export class MessageWriter {
  readonly buf = new Uint8Array(8192);
  readonly view = new DataView(this.buf.buffer);
  len = 0;

  begin(type: number, flags: number, seq: number): void {
    this.buf.fill(0, 0, this.len);
    const v = this.view;
    v.setUint32(0, 0, HOST_LE);
    v.setUint16(4, type, HOST_LE);
    v.setUint16(6, flags, HOST_LE);
    v.setUint32(8, seq, HOST_LE);
    v.setUint32(12, 0, HOST_LE);
    this.len = NLMSG_HDRLEN;
  }

  /** Reserves `n` zeroed bytes (a family header) and returns their offset. */
  reserve(n: number): number {
    const o = this.len;
    this.buf.fill(0, o, o + n);
    this.len += (n + 3) & ~3;
    return o;
  }

  attr(type: number, payload: Uint8Array): void {
    const o = this.len;
    const l = 4 + payload.length;
    if (o + ((l + 3) & ~3) > this.buf.length) throw new RangeError("netlink message too long");
    this.view.setUint16(o, l, HOST_LE);
    this.view.setUint16(o + 2, type, HOST_LE);
    this.buf.set(payload, o + 4);
    this.buf.fill(0, o + l, o + ((l + 3) & ~3));
    this.len = o + ((l + 3) & ~3);
  }

  attrU32(type: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value, HOST_LE);
    this.attr(type, b);
  }

  attrString(type: number, s: string): void {
    const e = new TextEncoder().encode(s);
    const b = new Uint8Array(e.length + 1);
    b.set(e);
    this.attr(type, b);
  }

  finish(): Uint8Array {
    this.view.setUint32(0, this.len, HOST_LE);
    return this.buf.subarray(0, this.len);
  }
}

/** One received netlink message: header fields and its payload. */
export interface RawMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  /** The payload (after the 16-byte header), a view into the receive buffer. */
  readonly payload: Uint8Array;
}

export function* messages(buf: Uint8Array, n: number): Generator<RawMessage> {
  const v = new DataView(buf.buffer, buf.byteOffset, n);
  let o = 0;
  while (o + NLMSG_HDRLEN <= n) {
    const len = v.getUint32(o, HOST_LE);
    if (len < NLMSG_HDRLEN || o + len > n) break;
    yield {
      type: v.getUint16(o + 4, HOST_LE),
      flags: v.getUint16(o + 6, HOST_LE),
      seq: v.getUint32(o + 8, HOST_LE),
      payload: buf.subarray(o + NLMSG_HDRLEN, o + len),
    };
    o += (len + 3) & ~3;
  }
}

/** The attributes in `b[start, end)` by type (the last one wins), as views. */
function attributes(b: Uint8Array, start: number): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  const v = new DataView(b.buffer, b.byteOffset, b.length);
  let o = start;
  while (o + 4 <= b.length) {
    const len = v.getUint16(o, HOST_LE);
    if (len < 4 || o + len > b.length) break;
    out.set(v.getUint16(o + 2, HOST_LE) & 0x3fff, b.subarray(o + 4, o + len));
    o += (len + 3) & ~3;
  }
  return out;
}

function u32(b: Uint8Array | undefined): number | undefined {
  if (b === undefined || b.length < 4) return undefined;
  return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, HOST_LE);
}

function str(b: Uint8Array | undefined): string | undefined {
  if (b === undefined) return undefined;
  const end = b.indexOf(0);
  return new TextDecoder().decode(end < 0 ? b : b.subarray(0, end));
}

export function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** Parses an ifinfomsg (RTM_NEWLINK/DELLINK payload). */
export function parseLink(p: Uint8Array): Link | undefined {
  if (p.length < 16) return undefined;
  const v = view(p);
  const a = attributes(p, 16);
  const flags = v.getUint32(8, HOST_LE);
  const link: {
    -readonly [K in keyof Link]: Link[K];
  } = {
    index: v.getInt32(4, HOST_LE),
    name: str(a.get(IFLA_IFNAME)) ?? "",
    flags,
    up: (flags & IFF_UP) !== 0,
    running: (flags & IFF_RUNNING) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    type: v.getUint16(2, HOST_LE),
  };
  const mtu = u32(a.get(IFLA_MTU));
  if (mtu !== undefined) link.mtu = mtu;
  const mac = a.get(IFLA_ADDRESS);
  if (mac !== undefined && mac.length > 0) {
    link.mac = Array.from(mac, (x) => x.toString(16).padStart(2, "0")).join(":");
  }
  const op = a.get(IFLA_OPERSTATE);
  if (op !== undefined && op.length >= 1) link.operstate = op[0]!;
  const master = u32(a.get(IFLA_MASTER));
  if (master !== undefined) link.master = master;
  return link;
}

/** Parses an ifaddrmsg (RTM_NEWADDR/DELADDR payload). */
export function parseAddress(p: Uint8Array): InterfaceAddress | undefined {
  if (p.length < 8) return undefined;
  const af = p[0]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const v = view(p);
  const a = attributes(p, 8);
  const local = a.get(IFA_LOCAL);
  const addr = a.get(IFA_ADDRESS);
  const mine = local ?? addr;
  if (mine === undefined) return undefined;
  const out: { -readonly [K in keyof InterfaceAddress]: InterfaceAddress[K] } = {
    family: familyName(af),
    index: v.getUint32(4, HOST_LE),
    address: ipText(mine),
    prefixLen: p[1]!,
    scope: p[3]!,
    flags: u32(a.get(IFA_FLAGS)) ?? p[2]!,
  };
  if (local !== undefined && addr !== undefined) {
    const peer = ipText(addr);
    if (peer !== out.address) out.peer = peer;
  }
  const label = str(a.get(IFA_LABEL));
  if (label !== undefined) out.label = label;
  return out;
}

/** Parses an rtmsg (RTM_NEWROUTE payload). */
export function parseRoute(p: Uint8Array): Route | undefined {
  if (p.length < 12) return undefined;
  const af = p[0]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const a = attributes(p, 12);
  const dst = a.get(RTA_DST);
  const zero = new Uint8Array(af === AF_INET ? 4 : 16);
  const type = p[7]!;
  const out: { -readonly [K in keyof Route]: Route[K] } = {
    family: familyName(af),
    dst: `${ipText(dst ?? zero)}/${p[1]!}`,
    table: u32(a.get(RTA_TABLE)) ?? p[4]!,
    type: ROUTE_TYPE_NAMES[type] ?? type,
    protocol: p[5]!,
    scope: p[6]!,
  };
  const oif = u32(a.get(RTA_OIF));
  if (oif !== undefined) out.dev = oif;
  const gw = a.get(RTA_GATEWAY);
  if (gw !== undefined) out.gateway = ipText(gw);
  const src = a.get(RTA_PREFSRC);
  if (src !== undefined) out.src = ipText(src);
  const metric = u32(a.get(RTA_PRIORITY));
  if (metric !== undefined) out.metric = metric;
  return out;
}

/** Parses a fib_rule_hdr (RTM_NEWRULE payload). */
export function parseRule(p: Uint8Array): Rule | undefined {
  if (p.length < 12) return undefined;
  const af = p[0]!;
  if (af !== AF_INET && af !== AF_INET6) return undefined;
  const a = attributes(p, 12);
  const action = p[7]!;
  const actionName = (Object.keys(RULE_ACTIONS) as RuleActionName[]).find((k) =>
    RULE_ACTIONS[k] === action
  );
  const out: { -readonly [K in keyof Rule]: Rule[K] } = {
    family: familyName(af),
    priority: u32(a.get(FRA_PRIORITY)) ?? 0,
    table: u32(a.get(FRA_TABLE)) ?? p[4]!,
    action: actionName ?? action,
  };
  const src = a.get(FRA_SRC);
  if (src !== undefined) out.from = `${ipText(src)}/${p[2]!}`;
  const dst = a.get(FRA_DST);
  if (dst !== undefined) out.to = `${ipText(dst)}/${p[1]!}`;
  const iif = str(a.get(FRA_IIFNAME));
  if (iif !== undefined) out.iif = iif;
  const oif = str(a.get(FRA_OIFNAME));
  if (oif !== undefined) out.oif = oif;
  const mark = u32(a.get(FRA_FWMARK));
  if (mark !== undefined) out.fwmark = mark;
  return out;
}

/** The error code and extended-ack text of an NLMSG_ERROR payload. */
export function parseError(m: RawMessage): { code: number; text?: string } {
  const v = view(m.payload);
  const code = m.payload.length >= 4 ? -v.getInt32(0, HOST_LE) : 0;
  if (code === 0 || (m.flags & NLM_F_ACK_TLVS) === 0 || m.payload.length < 20) return { code };
  // After the error: the request's header, and its payload unless capped.
  let o = 4 + NLMSG_HDRLEN;
  if ((m.flags & NLM_F_CAPPED) === 0) o = 4 + v.getUint32(4, HOST_LE);
  const text = str(attributes(m.payload, (o + 3) & ~3).get(NLMSGERR_ATTR_MSG));
  return text === undefined || text === "" ? { code } : { code, text };
}
