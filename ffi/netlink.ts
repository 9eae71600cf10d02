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
import {
  type AddressOptions,
  afOf,
  FRA_DST,
  FRA_FWMARK,
  FRA_IIFNAME,
  FRA_OIFNAME,
  FRA_PRIORITY,
  FRA_SRC,
  FRA_TABLE,
  IFA_ADDRESS,
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  IFA_FLAGS,
  IFA_LOCAL,
  IFLA_MTU,
  type InterfaceAddress,
  type IpFamily,
  type Link,
  messages,
  MessageWriter,
  type NetlinkEvent,
  NLM_F_ACK,
  NLM_F_CREATE,
  NLM_F_DUMP,
  NLM_F_DUMP_INTR,
  NLM_F_EXCL,
  NLM_F_REPLACE,
  NLM_F_REQUEST,
  NLMSG_DONE,
  NLMSG_ERROR,
  NLMSG_NOOP,
  parseAddress,
  parseError,
  parseIp,
  parseLink,
  parsePrefix,
  parseRoute,
  parseRule,
  type RawMessage,
  type Route,
  ROUTE_TYPES,
  type RouteSpec,
  RT_SCOPE,
  RT_TABLE,
  RTA_DST,
  RTA_GATEWAY,
  RTA_OIF,
  RTA_PREFSRC,
  RTA_PRIORITY,
  RTA_SRC,
  RTA_TABLE,
  RTM,
  RTM_F_LOOKUP_TABLE,
  RTM_NAMES,
  RTMGRP,
  RTPROT,
  type Rule,
  RULE_ACTIONS,
  type RuleSpec,
  view,
} from "./_netlink_msg.ts";

export {
  IFA_F_NODAD,
  IFA_F_NOPREFIXROUTE,
  ROUTE_TYPES,
  RT_SCOPE,
  RT_TABLE,
  RTM,
  RTMGRP,
  RTPROT,
  RULE_ACTIONS,
} from "./_netlink_msg.ts";
export type {
  AddressOptions,
  InterfaceAddress,
  IpFamily,
  Link,
  NetlinkEvent,
  Route,
  RouteSpec,
  RouteTypeName,
  Rule,
  RuleSpec,
} from "./_netlink_msg.ts";

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
