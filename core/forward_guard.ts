/**
 * What a role checks before it passes a Map-Request on (a map-server to an
 * ETR, a map-resolver to a map-server): that it is not sending it to
 * itself, that the inner IP TTL has a hop left, and that it has not passed
 * the same request on a moment ago. Without these a site registered with
 * the map-server's own address as its RLOC, or a map-resolver listed as
 * its own `[[map-server]]`, sends one request round and round as fast as
 * the socket goes.
 *
 * - **Own addresses** ({@link OwnAddresses}): a destination is ourselves
 *   when it is on the control socket's port and at an address that socket
 *   receives: the bound `control-address`, or, bound to the wildcard, any
 *   address of the host (its interfaces, read now and then, never per
 *   packet; 127.0.0.0/8 and ::1). The unspecified addresses (0.0.0.0, ::)
 *   reach the local host, so they count too, as does an IPv4-mapped IPv6
 *   form of any of these. A datagram to one of the host's addresses on
 *   another port goes to another process (an xTR beside the map-server),
 *   so it is not a loop; chains through such processes end by the TTL.
 * - **Inner TTL**: a forward carries the received inner IPv4 TTL or IPv6
 *   hop limit minus one; one that would leave with 0 is not sent. A plain
 *   Map-Request (no inner header yet) starts at {@link DEFAULT_INNER_TTL}.
 * - **Duplicates**: a request with the nonce and EID of one passed on
 *   within {@link DUPLICATE_WINDOW_MS} is not passed on again. The window
 *   is shorter than an ITR's retransmission interval (1 s for ours; an
 *   ITR's retransmission keeps its nonce), so retransmissions still go
 *   through, while a copy that comes straight back through a loop does
 *   not.
 *
 * @module
 */

import { canonicalIp, ipv4FromBytes, ipv6ToBytes, isIPv4 } from "../wire/ip_text.ts";
import type { Peer } from "./control.ts";
import type { Logger } from "./log.ts";

/** Inner TTL of an ECM built for a request that came without one (a plain Map-Request). */
export const DEFAULT_INNER_TTL = 64;
/** How long a forwarded (nonce, EID) is remembered, ms. */
export const DUPLICATE_WINDOW_MS = 500;
/** How often the host's addresses are read again, ms. */
export const HOST_ADDRESSES_REFRESH_MS = 30_000;
/** How often a failure to read the host's addresses is logged, ms. */
const UNAVAILABLE_LOG_INTERVAL_MS = 600_000;
/** Most (nonce, EID) pairs remembered; the oldest go first. */
const MAX_REMEMBERED = 65_536;

/** Why a Map-Request is not passed on. */
export type ForwardRefusal = "own-address" | "ttl-expired" | "duplicate";

/** The host's addresses, as the roles read them (ffi/ netlink in the product, a list in tests). */
export interface HostAddresses {
  /** Every interface address of the host, any text form. May throw when they cannot be read. */
  addresses(): readonly string[];
  /** The source address the kernel would use toward `dst`, if it has a route. */
  routeSource?(dst: string): string | undefined;
}

/** Options of {@link OwnAddresses}. */
export interface OwnAddressesOptions {
  /** The control socket: its bound address (undefined: the wildcard) and port. */
  readonly socket: { readonly address: string | undefined; readonly port: number };
  /** Where the host's addresses come from. */
  readonly host: HostAddresses;
  /** Clock in milliseconds. */
  readonly now: () => number;
  /** Where a failure to read the host's addresses is logged. */
  readonly logger?: Logger;
  /** How often the host's addresses are read again (default {@link HOST_ADDRESSES_REFRESH_MS}). */
  readonly refreshMs?: number;
}

const v6 = new Uint8Array(16);

/** `text` canonical, with an IPv4-mapped IPv6 address as its IPv4 address. */
function normalIp(text: string): string | undefined {
  if (isIPv4(text)) return text;
  if (!ipv6ToBytes(text, v6, 0)) return undefined;
  if (v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff) {
    return ipv4FromBytes(v6, 12);
  }
  return canonicalIp(text);
}

/** Whether `ip` (normalized) always reaches the local host: loopback or unspecified. */
function alwaysLocal(ip: string): boolean {
  return ip.startsWith("127.") || ip === "::1" || ip === "0.0.0.0" || ip === "::";
}

/** The addresses a role's control socket receives on (see the module notes). */
export class OwnAddresses {
  readonly #o: OwnAddressesOptions;
  readonly #refreshMs: number;
  #host = new Set<string>();
  #readAt = -Infinity;
  readonly #sources = new Map<string, string | undefined>();

  /** Reads nothing yet: the host's addresses are read at the first question. */
  constructor(options: OwnAddressesOptions) {
    this.#o = options;
    this.#refreshMs = options.refreshMs ?? HOST_ADDRESSES_REFRESH_MS;
  }

  #refresh(): void {
    const now = this.#o.now();
    if (now - this.#readAt < this.#refreshMs) return;
    this.#readAt = now;
    this.#sources.clear();
    try {
      const next = new Set<string>();
      for (const a of this.#o.host.addresses()) {
        const ip = normalIp(a);
        if (ip !== undefined) next.add(ip);
      }
      this.#host = next;
    } catch (e) {
      // Keep what was read before; loopback and the bound address still count.
      this.#o.logger?.limited(
        "host-addresses-unavailable",
        UNAVAILABLE_LOG_INTERVAL_MS,
        "warn",
        "host-addresses-unavailable",
        { error: e instanceof Error ? e.message : String(e) },
      );
    }
  }

  /** Whether `address` is one of the host's: an interface's, loopback, or unspecified. */
  isHostAddress(address: string): boolean {
    const ip = normalIp(address);
    if (ip === undefined) return false;
    if (alwaysLocal(ip)) return true;
    this.#refresh();
    return this.#host.has(ip);
  }

  /** Whether a datagram sent to `to` would come back to our own control socket. */
  isSelf(to: Peer): boolean {
    const { address, port } = this.#o.socket;
    if (to.port !== port) return false;
    const ip = normalIp(to.address);
    if (ip === undefined) return false;
    if (ip === "0.0.0.0" || ip === "::") return true;
    if (address !== undefined) return ip === normalIp(address);
    return this.isHostAddress(ip);
  }

  /**
   * Our address to name as the source of a request to `dst`: the bound
   * control address when it is of `dst`'s family, else (bound to the
   * wildcard) the address the kernel would send from, a loopback address
   * toward loopback; undefined when there is none.
   */
  sourceToward(dst: string): string | undefined {
    const bound = this.#o.socket.address;
    const v4 = isIPv4(dst);
    if (bound !== undefined) return isIPv4(bound) === v4 ? bound : undefined;
    this.#refresh();
    if (this.#sources.has(dst)) return this.#sources.get(dst);
    const ip = normalIp(dst);
    let src: string | undefined;
    if (ip !== undefined && alwaysLocal(ip)) src = v4 ? "127.0.0.1" : "::1";
    else {
      try {
        src = this.#o.host.routeSource?.(dst);
      } catch {
        src = undefined;
      }
    }
    if (src !== undefined && isIPv4(src) !== v4) src = undefined;
    if (this.#sources.size >= 1024) this.#sources.clear();
    this.#sources.set(dst, src);
    return src;
  }
}

/** Options of {@link ForwardGuard}. */
export interface ForwardGuardOptions {
  /** Clock in milliseconds. */
  readonly now: () => number;
  /** How long a forwarded (nonce, EID) is remembered (default {@link DUPLICATE_WINDOW_MS}). */
  readonly windowMs?: number;
}

/** The checks before a Map-Request is passed on (see the module notes). */
export class ForwardGuard {
  /** The addresses that are ourselves. */
  readonly own: OwnAddresses;
  readonly #now: () => number;
  readonly #windowMs: number;
  /** `nonce EID` -> when it may be passed on again. */
  readonly #seen = new Map<string, number>();
  /**
   * The same keys in insertion (so expiry) order, from `#head` on: expiry
   * takes them from here, never by walking the map from its start (which
   * steps over every entry deleted since the map was compacted).
   */
  #queue: string[] = [];
  #head = 0;

  /** A guard that takes `own` for ourselves. */
  constructor(own: OwnAddresses, options: ForwardGuardOptions) {
    this.own = own;
    this.#now = options.now;
    this.#windowMs = options.windowMs ?? DUPLICATE_WINDOW_MS;
  }

  /**
   * Whether the Map-Request with `nonce` for `eid` (any text that names
   * the EID and its instance) may go to `to`, having come with inner TTL
   * `receivedTtl` (undefined: it came with no inner header). Returns the
   * inner TTL to send it with, and remembers it as passed on; or why not.
   */
  check(
    to: Peer,
    receivedTtl: number | undefined,
    nonce: bigint,
    eid: string,
  ): number | ForwardRefusal {
    if (this.own.isSelf(to)) return "own-address";
    const ttl = receivedTtl === undefined ? DEFAULT_INNER_TTL : receivedTtl - 1;
    if (ttl < 1) return "ttl-expired";
    const now = this.#now();
    const q = this.#queue;
    while (this.#head < q.length) {
      const k = q[this.#head]!;
      if (this.#seen.get(k)! > now) break;
      this.#seen.delete(k);
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > q.length) {
      this.#queue = q.slice(this.#head);
      this.#head = 0;
    }
    const key = `${nonce.toString(16)} ${eid}`;
    if (this.#seen.has(key)) return "duplicate";
    if (this.#seen.size >= MAX_REMEMBERED) this.#seen.delete(this.#queue[this.#head++]!);
    this.#seen.set(key, now + this.#windowMs);
    this.#queue.push(key);
    return ttl;
  }
}
