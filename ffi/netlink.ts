/**
 * rtnetlink (AF_NETLINK / NETLINK_ROUTE) without `ip`: link state and MTU,
 * IPv4/IPv6 addresses, routes in any table, policy rules, dumps of links,
 * addresses, routes and rules, and a subscription to link and address
 * events.
 *
 * {@link Netlink} sends one request at a time and waits for the kernel's
 * answer synchronously: requests carry increasing sequence numbers, every
 * change asks for an ack, and a negative ack becomes an {@link ErrnoError}
 * whose message includes the kernel's extended-ack text when there is one
 * (NETLINK_EXT_ACK). The socket is blocking with a 5 s SO_RCVTIMEO, so a
 * call can never hang; rtnetlink answers within microseconds, so using it
 * from the main event loop is fine.
 *
 * {@link NetlinkEvents} is a second, nonblocking socket bound to the
 * RTMGRP_LINK, RTMGRP_IPV4_IFADDR and RTMGRP_IPV6_IFADDR groups. Its
 * {@link NetlinkEvents.drain} reads whatever is queued without blocking;
 * {@link NetlinkEvents.listen} drains it from a timer (every 100 ms by
 * default) and yields the events. Why a timer rather than a `nonblocking:
 * true` FFI poll: a nonblocking FFI call parks a thread of Deno's blocking
 * pool inside poll(), cannot be cancelled, keeps the event loop alive until
 * its timeout, and makes close() race with a poll still running on another
 * thread (the fd number could be reused under it). The timer costs one
 * recvfrom() returning EAGAIN per tick (a few microseconds), is stopped at
 * once by an AbortSignal, and 100 ms of latency is far below what RLOC
 * change handling needs (probes run on seconds). The data-plane Worker may
 * instead put {@link NetlinkEvents.fd} in its own synchronous PollSet.
 *
 * Netlink structures are host-endian (every DataView call passes
 * {@link HOST_LE}); addresses inside attributes are network byte order.
 * Prefixes and addresses are text: `"10.1.0.0/16"`, `"2001:db8::/32"`, a
 * bare address meaning a host prefix.
 *
 * @module
 */

import {
  AF_INET,
  AF_INET6,
  AF_NETLINK,
  AF_UNSPEC,
  check,
  closeFd,
  EAGAIN,
  EINTR,
  ENOBUFS,
  ENODEV,
  errno,
  ErrnoError,
  HOST_LE,
  IFF_LOWER_UP,
  IFF_RUNNING,
  IFF_UP,
  ifNameToIndex,
  libc,
  MSG_DONTWAIT,
  MSG_TRUNC,
  NETLINK_CAP_ACK,
  NETLINK_EXT_ACK,
  NETLINK_ROUTE,
  SO_RCVBUF,
  SO_RCVBUFFORCE,
  SO_RCVTIMEO,
  SOCK_CLOEXEC,
  SOCK_NONBLOCK,
  SOCK_RAW,
  SOL_NETLINK,
  SOL_SOCKET,
} from "./libc.ts";
import { ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes } from "../wire/ip_text.ts";

// ---------------------------------------------------------------------------
// Protocol constants (linux/netlink.h, linux/rtnetlink.h, linux/fib_rules.h,
// linux/if_link.h, linux/if_addr.h).

const NLMSG_HDRLEN = 16;
const NLMSG_NOOP = 1;
const NLMSG_ERROR = 2;
const NLMSG_DONE = 3;
const NLM_F_REQUEST = 0x1;
const NLM_F_ACK = 0x4;
const NLM_F_DUMP_INTR = 0x10;
const NLM_F_DUMP = 0x300;
const NLM_F_REPLACE = 0x100;
const NLM_F_EXCL = 0x200;
const NLM_F_CREATE = 0x400;
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

const RTM_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
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
const IFLA_MTU = 4;
const IFLA_MASTER = 10;
const IFLA_OPERSTATE = 16;

const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;
const IFA_LABEL = 3;
const IFA_FLAGS = 8;
/** ifa_flags: no duplicate address detection (IPv6). */
export const IFA_F_NODAD = 0x02;
/** ifa_flags: do not add the prefix route. */
export const IFA_F_NOPREFIXROUTE = 0x200;

const RTA_DST = 1;
const RTA_SRC = 2;
const RTA_OIF = 4;
const RTA_GATEWAY = 5;
const RTA_PRIORITY = 6;
const RTA_PREFSRC = 7;
const RTA_TABLE = 15;
/** rtm_flags of RTM_GETROUTE: report the table the lookup used. */
const RTM_F_LOOKUP_TABLE = 0x1000;

const FRA_DST = 1;
const FRA_SRC = 2;
const FRA_IIFNAME = 3;
const FRA_PRIORITY = 6;
const FRA_FWMARK = 10;
const FRA_TABLE = 15;
const FRA_OIFNAME = 17;

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

function parseIp(text: string, what: string): { af: number; bytes: Uint8Array } {
  const b4 = new Uint8Array(4);
  if (ipv4ToBytes(text, b4, 0)) return { af: AF_INET, bytes: b4 };
  const b6 = new Uint8Array(16);
  if (ipv6ToBytes(text, b6, 0)) return { af: AF_INET6, bytes: b6 };
  throw new TypeError(`${what}: not an IP address: ${JSON.stringify(text)}`);
}

function parsePrefix(text: string, what: string): ParsedPrefix {
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

function afOf(family: IpFamily): number {
  return family === "ipv4" ? AF_INET : AF_INET6;
}

// ---------------------------------------------------------------------------
// Message building and parsing.

/** Builds one netlink message in a reusable buffer. */
class MessageWriter {
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
interface RawMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  /** The payload (after the 16-byte header), a view into the receive buffer. */
  readonly payload: Uint8Array;
}

function* messages(buf: Uint8Array, n: number): Generator<RawMessage> {
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

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.length);
}

/** Parses an ifinfomsg (RTM_NEWLINK/DELLINK payload). */
function parseLink(p: Uint8Array): Link | undefined {
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
function parseAddress(p: Uint8Array): InterfaceAddress | undefined {
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
function parseRoute(p: Uint8Array): Route | undefined {
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
function parseRule(p: Uint8Array): Rule | undefined {
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
function parseError(m: RawMessage): { code: number; text?: string } {
  const v = view(m.payload);
  const code = m.payload.length >= 4 ? -v.getInt32(0, HOST_LE) : 0;
  if (code === 0 || (m.flags & NLM_F_ACK_TLVS) === 0 || m.payload.length < 20) return { code };
  // After the error: the request's header, and its payload unless capped.
  let o = 4 + NLMSG_HDRLEN;
  if ((m.flags & NLM_F_CAPPED) === 0) o = 4 + v.getUint32(4, HOST_LE);
  const text = str(attributes(m.payload, (o + 3) & ~3).get(NLMSGERR_ATTR_MSG));
  return text === undefined || text === "" ? { code } : { code, text };
}

// ---------------------------------------------------------------------------
// Sockets.

const RECV_SIZE = 65536;

function openSocket(flags: number, groups: number, what: string): number {
  const c = libc();
  const fd = check(c.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | flags, NETLINK_ROUTE), what);
  try {
    const sa = new Uint8Array(12);
    const v = new DataView(sa.buffer);
    v.setUint16(0, AF_NETLINK, HOST_LE);
    v.setUint32(4, 0, HOST_LE); // nl_pid: let the kernel assign the port id
    v.setUint32(8, groups, HOST_LE);
    check(c.bind(fd, sa, sa.length), `${what} bind`);
    return fd;
  } catch (e) {
    closeFd(fd);
    throw e;
  }
}

function setInt(fd: number, level: number, name: number, value: number): boolean {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, value, HOST_LE);
  return libc().setsockopt(fd, level, name, b, 4) === 0;
}

/** Options of {@link Netlink.open}. */
export interface NetlinkOptions {
  /** Longest wait for the kernel's answer, in ms; default 5000. */
  readonly timeoutMs?: number;
}

/**
 * An rtnetlink request socket. Every method is synchronous and throws
 * {@link ErrnoError} on a negative ack (e.g. EEXIST when adding what
 * exists, ESRCH deleting a route that does not, ENOENT deleting a rule
 * that does not, EADDRNOTAVAIL deleting an absent address) and TypeError
 * for text that is not an address or prefix.
 */
export class Netlink {
  /** The file descriptor (-1 once closed). */
  fd: number;
  #seq = 0;
  readonly #w = new MessageWriter();
  readonly #rx = new Uint8Array(RECV_SIZE);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens a NETLINK_ROUTE socket. */
  static open(options: NetlinkOptions = {}): Netlink {
    const fd = openSocket(0, 0, "netlink socket");
    const ms = options.timeoutMs ?? 5000;
    const tv = new Uint8Array(16);
    const v = new DataView(tv.buffer);
    v.setBigInt64(0, BigInt(Math.floor(ms / 1000)), HOST_LE);
    v.setBigInt64(8, BigInt((ms % 1000) * 1000), HOST_LE);
    if (libc().setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, tv, 16) !== 0) {
      const e = ErrnoError.fromErrno("setsockopt SO_RCVTIMEO");
      closeFd(fd);
      throw e;
    }
    setInt(fd, SOL_NETLINK, NETLINK_EXT_ACK, 1);
    setInt(fd, SOL_NETLINK, NETLINK_CAP_ACK, 1);
    return new Netlink(fd);
  }

  // -- links ----------------------------------------------------------------

  /** Sets IFF_UP on link `index` (true) or clears it (false). */
  linkSetUp(index: number, up: boolean): void {
    const w = this.#begin(RTM.NEWLINK, NLM_F_ACK);
    const o = w.reserve(16);
    w.view.setUint32(o + 4, index, HOST_LE);
    w.view.setUint32(o + 8, up ? IFF_UP : 0, HOST_LE);
    w.view.setUint32(o + 12, IFF_UP, HOST_LE); // ifi_change
    this.#ack(`RTM_NEWLINK index ${index} ${up ? "up" : "down"}`);
  }

  /** Sets the MTU of link `index`. */
  linkSetMtu(index: number, mtu: number): void {
    const w = this.#begin(RTM.NEWLINK, NLM_F_ACK);
    const o = w.reserve(16);
    w.view.setUint32(o + 4, index, HOST_LE);
    w.attrU32(IFLA_MTU, mtu);
    this.#ack(`RTM_NEWLINK index ${index} mtu ${mtu}`);
  }

  /** The index of interface `name`; throws {@link ErrnoError} ENODEV when there is none. */
  linkIndex(name: string): number {
    const i = ifNameToIndex(name);
    if (i === 0) throw new ErrnoError(ENODEV, `if_nametoindex ${name}`);
    return i;
  }

  /** Every link (RTM_GETLINK dump). */
  links(): Link[] {
    const out: Link[] = [];
    this.#dump(RTM.GETLINK, (w) => w.reserve(16), (m) => {
      if (m.type !== RTM.NEWLINK) return;
      const l = parseLink(m.payload);
      if (l !== undefined) out.push(l);
    });
    return out;
  }

  // -- addresses ------------------------------------------------------------

  /**
   * Adds `prefix` (`"10.0.0.1/24"`, `"2001:db8::1/64"`) to link `index`.
   * The kernel may need a few milliseconds more before packets to the
   * address are delivered: see {@link addrWaitUsable}.
   */
  addrAdd(index: number, prefix: string, options: AddressOptions = {}): void {
    this.#addr(RTM.NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, prefix, options);
  }

  /** Removes `prefix` from link `index`. */
  addrDel(index: number, prefix: string): void {
    this.#addr(RTM.DELADDR, 0, index, prefix, {});
  }

  #addr(type: number, flags: number, index: number, prefix: string, o: AddressOptions): void {
    const p = parsePrefix(prefix, "address");
    const w = this.#begin(type, NLM_F_ACK | flags);
    const h = w.reserve(8);
    const extra = (o.nodad ? IFA_F_NODAD : 0) | (o.noprefixroute ? IFA_F_NOPREFIXROUTE : 0);
    w.buf[h] = p.af;
    w.buf[h + 1] = p.len;
    w.buf[h + 2] = extra & 0xff;
    w.buf[h + 3] = RT_SCOPE.UNIVERSE;
    w.view.setUint32(h + 4, index, HOST_LE);
    w.attr(IFA_LOCAL, p.bytes);
    w.attr(IFA_ADDRESS, p.bytes);
    if (extra > 0xff) w.attrU32(IFA_FLAGS, extra);
    this.#ack(`${RTM_NAMES[type]} ${prefix} index ${index}`);
  }

  /** Every IPv4 and IPv6 interface address (RTM_GETADDR dump), optionally of one family. */
  addresses(family?: IpFamily): InterfaceAddress[] {
    const out: InterfaceAddress[] = [];
    this.#dump(RTM.GETADDR, (w) => {
      const h = w.reserve(8);
      w.buf[h] = family === undefined ? AF_UNSPEC : afOf(family);
    }, (m) => {
      if (m.type !== RTM.NEWADDR) return;
      const a = parseAddress(m.payload);
      if (a !== undefined && (family === undefined || a.family === family)) out.push(a);
    });
    return out;
  }

  // -- routes ---------------------------------------------------------------

  /** Adds a route (EEXIST when one with the same key exists, unless `replace`). */
  routeAdd(r: RouteSpec): void {
    this.#route(RTM.NEWROUTE, r);
  }

  /** Deletes a route matching `r` (ESRCH when there is none). */
  routeDel(r: RouteSpec): void {
    this.#route(RTM.DELROUTE, r);
  }

  #route(type: number, r: RouteSpec): void {
    const add = type === RTM.NEWROUTE;
    const dst = parsePrefix(r.dst, "route dst");
    const table = r.table ?? RT_TABLE.MAIN;
    if (!Number.isInteger(table) || table < 0 || table > 0xffffffff) {
      throw new RangeError(`route table out of range: ${table}`);
    }
    const rtype = r.type === undefined ? (add ? ROUTE_TYPES.unicast : 0) : ROUTE_TYPES[r.type];
    if (rtype === undefined) throw new TypeError(`unknown route type: ${r.type}`);
    const gw = r.gateway === undefined ? undefined : parseIp(r.gateway, "route gateway");
    const src = r.src === undefined ? undefined : parseIp(r.src, "route src");
    for (const x of [gw, src]) {
      if (x !== undefined && x.af !== dst.af) {
        throw new TypeError(`route ${r.dst}: gateway/src family differs from the destination's`);
      }
    }
    let scope = r.scope;
    if (scope === undefined) {
      if (!add) scope = RT_SCOPE.NOWHERE;
      else if (rtype === ROUTE_TYPES.local) scope = RT_SCOPE.HOST;
      else if (rtype === ROUTE_TYPES.unicast && gw === undefined) scope = RT_SCOPE.LINK;
      else scope = RT_SCOPE.UNIVERSE;
    }
    const flags = add ? NLM_F_CREATE | (r.replace ? NLM_F_REPLACE : NLM_F_EXCL) : 0;
    const w = this.#begin(type, NLM_F_ACK | flags);
    const h = w.reserve(12);
    w.buf[h] = dst.af;
    w.buf[h + 1] = dst.len;
    w.buf[h + 4] = table < 256 ? table : RT_TABLE.UNSPEC;
    w.buf[h + 5] = r.protocol ?? (add ? RTPROT.BOOT : RTPROT.UNSPEC);
    w.buf[h + 6] = scope;
    w.buf[h + 7] = rtype;
    if (dst.len > 0) w.attr(RTA_DST, dst.bytes);
    w.attrU32(RTA_TABLE, table);
    if (r.dev !== undefined) w.attrU32(RTA_OIF, r.dev);
    if (gw !== undefined) w.attr(RTA_GATEWAY, gw.bytes);
    if (src !== undefined) w.attr(RTA_PREFSRC, src.bytes);
    if (r.metric !== undefined) w.attrU32(RTA_PRIORITY, r.metric);
    const via = gw === undefined ? "" : ` via ${r.gateway}`;
    const dev = r.dev === undefined ? "" : ` dev ${r.dev}`;
    const kind = r.type === undefined || r.type === "unicast" ? "" : `${r.type} `;
    this.#ack(`${RTM_NAMES[type]} ${kind}${r.dst}${via}${dev} table ${table}`);
  }

  /**
   * The routes of both families (RTM_GETROUTE dump), optionally only of
   * one table and/or family. Cached clones and multipath next hops are
   * not decoded (a multipath route shows without `dev`/`gateway`).
   */
  routes(filter: { readonly table?: number; readonly family?: IpFamily } = {}): Route[] {
    const out: Route[] = [];
    this.#dump(RTM.GETROUTE, (w) => {
      const h = w.reserve(12);
      w.buf[h] = filter.family === undefined ? AF_UNSPEC : afOf(filter.family);
    }, (m) => {
      if (m.type !== RTM.NEWROUTE) return;
      const r = parseRoute(m.payload);
      if (r === undefined) return;
      if (filter.table !== undefined && r.table !== filter.table) return;
      if (filter.family !== undefined && r.family !== filter.family) return;
      out.push(r);
    });
    return out;
  }

  /**
   * The route the kernel would use to reach `dst` (like `ip route get`),
   * optionally from source `src` and/or out of interface `oif`. Its `src`
   * is the source address the kernel would pick; `type` is `"local"` when
   * `dst` is one of this host's addresses. Throws {@link ErrnoError}
   * (ENETUNREACH, EHOSTUNREACH...) when there is no route.
   */
  routeGet(dst: string, options: { readonly src?: string; readonly oif?: number } = {}): Route {
    const d = parseIp(dst, "route get");
    const w = this.#begin(RTM.GETROUTE, 0);
    const h = w.reserve(12);
    w.buf[h] = d.af;
    w.buf[h + 1] = d.af === AF_INET ? 32 : 128;
    w.view.setUint32(h + 8, RTM_F_LOOKUP_TABLE, HOST_LE);
    w.attr(RTA_DST, d.bytes);
    if (options.src !== undefined) {
      const s = parseIp(options.src, "route get src");
      if (s.af !== d.af) throw new TypeError(`route get ${dst}: src family differs`);
      w.buf[h + 2] = s.af === AF_INET ? 32 : 128;
      w.attr(RTA_SRC, s.bytes);
    }
    if (options.oif !== undefined) w.attrU32(RTA_OIF, options.oif);
    let found: Route | undefined;
    this.#exchange(`RTM_GETROUTE ${dst}`, (m) => {
      if (m.type !== RTM.NEWROUTE) return false;
      found = parseRoute(m.payload);
      return true;
    });
    if (found === undefined) throw new Error(`RTM_GETROUTE ${dst}: no route in the answer`);
    return found;
  }

  /**
   * Resolves once `address` (one of this host's, just added) is usable:
   * the kernel installs the local route of an address asynchronously
   * (for IPv6 from its DAD work, even with `nodad`), so packets to it can
   * be dropped for a few milliseconds after {@link addrAdd} returns.
   * Rejects with a timeout Error after `timeoutMs` (default 2000).
   */
  async addrWaitUsable(address: string, timeoutMs = 2000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        if (this.routeGet(address).type === "local") return;
      } catch (e) {
        if (!(e instanceof ErrnoError)) throw e;
      }
      if (Date.now() > end) throw new Error(`address ${address} not usable after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  // -- rules ----------------------------------------------------------------

  /** Adds a policy rule (EEXIST when an identical one exists). */
  ruleAdd(r: RuleSpec): void {
    this.#rule(RTM.NEWRULE, r);
  }

  /** Deletes the first policy rule matching `r` (ENOENT when none does). */
  ruleDel(r: RuleSpec): void {
    this.#rule(RTM.DELRULE, r);
  }

  #rule(type: number, r: RuleSpec): void {
    const add = type === RTM.NEWRULE;
    const af = afOf(r.family);
    const from = r.from === undefined ? undefined : parsePrefix(r.from, "rule from");
    const to = r.to === undefined ? undefined : parsePrefix(r.to, "rule to");
    for (const p of [from, to]) {
      if (p !== undefined && p.af !== af) {
        throw new TypeError(`rule: prefix family differs from ${r.family}`);
      }
    }
    const action = RULE_ACTIONS[r.action ?? "lookup"];
    if (action === undefined) throw new TypeError(`unknown rule action: ${r.action}`);
    const table = r.table;
    if (add && action === RULE_ACTIONS.lookup && table === undefined) {
      throw new TypeError("rule: a lookup rule needs a table");
    }
    const w = this.#begin(type, NLM_F_ACK | (add ? NLM_F_CREATE | NLM_F_EXCL : 0));
    const h = w.reserve(12);
    w.buf[h] = af;
    w.buf[h + 1] = to?.len ?? 0;
    w.buf[h + 2] = from?.len ?? 0;
    w.buf[h + 4] = table !== undefined && table < 256 ? table : 0;
    w.buf[h + 7] = action;
    if (to !== undefined) w.attr(FRA_DST, to.bytes);
    if (from !== undefined) w.attr(FRA_SRC, from.bytes);
    if (r.priority !== undefined) w.attrU32(FRA_PRIORITY, r.priority);
    if (table !== undefined) w.attrU32(FRA_TABLE, table);
    if (r.iif !== undefined) w.attrString(FRA_IIFNAME, r.iif);
    if (r.oif !== undefined) w.attrString(FRA_OIFNAME, r.oif);
    if (r.fwmark !== undefined) w.attrU32(FRA_FWMARK, r.fwmark);
    const parts = [RTM_NAMES[type], r.family];
    if (r.priority !== undefined) parts.push(`pref ${r.priority}`);
    if (r.from !== undefined) parts.push(`from ${r.from}`);
    if (r.to !== undefined) parts.push(`to ${r.to}`);
    if (table !== undefined) parts.push(`lookup ${table}`);
    this.#ack(parts.join(" "));
  }

  /** The policy rules of `family` (RTM_GETRULE dump), in kernel order. */
  rules(family: IpFamily): Rule[] {
    const out: Rule[] = [];
    this.#dump(RTM.GETRULE, (w) => {
      const h = w.reserve(12);
      w.buf[h] = afOf(family);
    }, (m) => {
      if (m.type !== RTM.NEWRULE) return;
      const r = parseRule(m.payload);
      if (r !== undefined && r.family === family) out.push(r);
    });
    return out;
  }

  // -- plumbing -------------------------------------------------------------

  #begin(type: number, flags: number): MessageWriter {
    if (this.fd < 0) throw new TypeError("netlink socket is closed");
    this.#seq = (this.#seq + 1) >>> 0 || 1;
    this.#w.begin(type, NLM_F_REQUEST | flags, this.#seq);
    return this.#w;
  }

  #send(what: string): void {
    const msg = this.#w.finish();
    const sa = new Uint8Array(12);
    new DataView(sa.buffer).setUint16(0, AF_NETLINK, HOST_LE);
    for (;;) {
      if (libc().sendto(this.fd, msg, BigInt(msg.length), 0, sa, sa.length) >= 0) return;
      const e = errno();
      if (e !== EINTR) throw new ErrnoError(e, `${what} (send)`);
    }
  }

  /** Receives one datagram (blocking, bounded by SO_RCVTIMEO). */
  #recv(what: string): number {
    for (;;) {
      const n = libc().recvfrom(this.fd, this.#rx, BigInt(RECV_SIZE), MSG_TRUNC, null, null);
      if (n >= 0) {
        if (n > RECV_SIZE) throw new Error(`${what}: netlink message of ${n} bytes truncated`);
        return n;
      }
      const e = errno();
      if (e === EINTR) continue;
      if (e === EAGAIN) throw new ErrnoError(e, what, "no answer from the kernel in time");
      throw new ErrnoError(e, `${what} (recv)`);
    }
  }

  /** Sends the message being built and waits for its ack. */
  #ack(what: string): void {
    this.#exchange(what, () => false);
  }

  /**
   * Sends the message being built, then reads answers with its sequence
   * number until an ack (error 0), an error (thrown) or a message that
   * `reply` accepts (returns true).
   */
  #exchange(what: string, reply: (m: RawMessage) => boolean): void {
    const seq = this.#seq;
    this.#send(what);
    for (;;) {
      const n = this.#recv(what);
      for (const m of messages(this.#rx, n)) {
        if (m.seq !== seq) continue;
        if (m.type !== NLMSG_ERROR) {
          if (reply(m)) return;
          continue;
        }
        const { code, text } = parseError(m);
        if (code === 0) return;
        throw new ErrnoError(code, what, text);
      }
    }
  }

  /** Runs a dump, calling `each` per message; restarts it (up to 5 times) when interrupted. */
  #dump(type: number, header: (w: MessageWriter) => void, each: (m: RawMessage) => void): void {
    const what = `${RTM_NAMES[type]} dump`;
    for (let attempt = 0;; attempt++) {
      const kept: RawMessage[] = [];
      const w = this.#begin(type, NLM_F_DUMP);
      header(w);
      const seq = this.#seq;
      this.#send(what);
      let interrupted = false;
      let done = false;
      while (!done) {
        const n = this.#recv(what);
        for (const m of messages(this.#rx, n)) {
          if (m.seq !== seq) continue;
          if ((m.flags & NLM_F_DUMP_INTR) !== 0) interrupted = true;
          if (m.type === NLMSG_DONE) {
            const code = m.payload.length >= 4 ? -view(m.payload).getInt32(0, HOST_LE) : 0;
            if (code > 0) throw new ErrnoError(code, what);
            done = true;
            break;
          }
          if (m.type === NLMSG_ERROR) {
            const { code, text } = parseError(m);
            if (code !== 0) throw new ErrnoError(code, what, text);
            continue;
          }
          if (m.type === NLMSG_NOOP) continue;
          // Copy: the receive buffer is reused by the next recv.
          kept.push({ ...m, payload: m.payload.slice() });
        }
      }
      if (interrupted && attempt < 5) continue;
      for (const m of kept) each(m);
      return;
    }
  }

  /** Closes the socket (idempotent). */
  close(): void {
    if (this.fd >= 0) {
      closeFd(this.fd);
      this.fd = -1;
    }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------
// Events.

/** Options of {@link NetlinkEvents.open}. */
export interface NetlinkEventsOptions {
  /** RTMGRP_* mask; default LINK | IPV4_IFADDR | IPV6_IFADDR. */
  readonly groups?: number;
  /** Receive buffer, forced when allowed; default 1 MiB (fewer overflows in bursts). */
  readonly recvBuffer?: number;
}

/** Options of {@link NetlinkEvents.listen}. */
export interface ListenOptions {
  /** Drain period in ms; default 100. */
  readonly intervalMs?: number;
  /** Stops the iteration. */
  readonly signal?: AbortSignal;
}

/**
 * A nonblocking rtnetlink socket subscribed to link and address changes.
 * Read it with {@link drain} (from a poll loop or a timer) or iterate
 * {@link listen}.
 */
export class NetlinkEvents {
  /** The file descriptor (-1 once closed); nonblocking, so it can join a PollSet. */
  fd: number;
  /** Times the kernel reported lost events (ENOBUFS). */
  overflows = 0;
  readonly #rx = new Uint8Array(RECV_SIZE);

  private constructor(fd: number) {
    this.fd = fd;
  }

  /** Opens and subscribes the socket. */
  static open(options: NetlinkEventsOptions = {}): NetlinkEvents {
    const groups = options.groups ?? (RTMGRP.LINK | RTMGRP.IPV4_IFADDR | RTMGRP.IPV6_IFADDR);
    const fd = openSocket(SOCK_NONBLOCK, groups, "netlink events socket");
    const size = options.recvBuffer ?? 1 << 20;
    if (!setInt(fd, SOL_SOCKET, SO_RCVBUFFORCE, size)) setInt(fd, SOL_SOCKET, SO_RCVBUF, size);
    return new NetlinkEvents(fd);
  }

  /**
   * Reads the queued messages without blocking (at most `max` datagrams,
   * default 256, so a storm cannot hold the event loop; the rest waits for
   * the next call) and returns the events, oldest first (`[]` when none).
   * An `{kind: "overflow"}` event says the kernel dropped some: the caller
   * should re-read state with the dumps.
   */
  drain(max = 256): NetlinkEvent[] {
    const out: NetlinkEvent[] = [];
    if (this.fd < 0) return out;
    const c = libc();
    for (let reads = 0; reads < max; reads++) {
      const n = c.recvfrom(this.fd, this.#rx, BigInt(RECV_SIZE), MSG_DONTWAIT, null, null);
      if (n < 0) {
        const e = errno();
        if (e === EINTR) continue;
        if (e === ENOBUFS) {
          this.overflows++;
          out.push({ kind: "overflow" });
          continue;
        }
        if (e === EAGAIN) return out;
        throw new ErrnoError(e, "netlink events recv");
      }
      for (const m of messages(this.#rx, n)) {
        switch (m.type) {
          case RTM.NEWLINK:
          case RTM.DELLINK: {
            const link = parseLink(m.payload);
            const change = m.type === RTM.NEWLINK ? "new" : "del";
            if (link !== undefined) out.push({ kind: "link", change, link });
            break;
          }
          case RTM.NEWADDR:
          case RTM.DELADDR: {
            const address = parseAddress(m.payload);
            const change = m.type === RTM.NEWADDR ? "new" : "del";
            if (address !== undefined) out.push({ kind: "address", change, address });
            break;
          }
        }
      }
    }
    return out;
  }

  /**
   * Yields events as they come, draining every `intervalMs` (default
   * 100) on a timer of the event loop, until `signal` aborts or the
   * socket is closed. Abort the signal (or break out of the loop) before
   * closing the socket.
   */
  async *listen(options: ListenOptions = {}): AsyncGenerator<NetlinkEvent, void, undefined> {
    const interval = options.intervalMs ?? 100;
    const signal = options.signal;
    while (this.fd >= 0 && !signal?.aborted) {
      const events = this.drain();
      for (const e of events) yield e;
      await sleep(interval, signal);
    }
  }

  /** Closes the socket (idempotent); a running {@link listen} ends at its next tick. */
  close(): void {
    if (this.fd >= 0) {
      closeFd(this.fd);
      this.fd = -1;
    }
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
