/**
 * The contract between a tunnel router's control plane (main event loop)
 * and its data plane (a Worker doing batched, synchronous I/O on the TUN
 * and the data UDP sockets). Types only: mod.ts implements the main-thread
 * side, worker.ts (with engine.ts) the Worker.
 *
 * The control plane owns the truth (map-cache, database, locator state)
 * and pushes changes in; the worker reports misses, control packets it
 * does not handle, and counters out. Nothing here is per packet except
 * the worker's own loop.
 *
 * @module
 */

import type { Prefix } from "../core/prefix.ts";

/** Data-plane encapsulation (RFC 9300 LISP on 4341, or VXLAN-GPE on 4790). */
export type Encapsulation = "LISP" | "VXLAN-GPE";

/** What a tunnel router does with packets. */
export type DataPlaneMode =
  /** xTR / MN: TUN <-> UDP, encapsulating towards remote RLOCs, decapsulating to local EIDs. */
  | "xtr"
  /** RTR: UDP -> UDP, decapsulate, look the inner destination up, re-encapsulate. */
  | "rtr";

/** One remote locator of a map-cache entry, as the data plane uses it. */
export interface DataLocator {
  /** IPv4 or IPv6 address text of the RLOC. */
  readonly address: string;
  /** Unicast priority (lower preferred, 255 unusable). */
  readonly priority: number;
  /** Unicast weight among equal priorities. */
  readonly weight: number;
  /** Reachability as the control plane sees it (RLOC probing, R bit). */
  readonly up: boolean;
  /**
   * UDP destination port of packets to this locator; absent: the data
   * port (4341 or 4790). An RTR sets it for an xTR behind a NAT: its
   * translated port (NAT traversal).
   */
  readonly port?: number;
  /**
   * Down because a strict hop of its explicit locator path cannot be
   * reached (RFC 8060 §4.9, the S bit; roles/tunnel_router/elp.ts): a
   * packet of the entry with no other usable locator is dropped and counted
   * as `dropped:elp-strict`, not sent past the hop. Comes with `up: false`.
   */
  readonly elpStrict?: boolean;
}

/** What to do with packets matching an entry. */
export type DataAction =
  /** Encapsulate to one of the locators. */
  | "encapsulate"
  /** Send to a proxy-ETR (negative entry with natively-forward). */
  | "native-forward"
  /** Drop (negative entry with a drop action, or no usable locator). */
  | "drop"
  /** A negative entry asking for a new Map-Request (treated as a miss). */
  | "send-map-request";

/** A map-cache entry pushed to the worker. */
export interface DataMapping {
  /** EID prefix, with its instance id. */
  readonly prefix: Prefix;
  /** What to do. */
  readonly action: DataAction;
  /** Locators (for `encapsulate`). */
  readonly locators: readonly DataLocator[];
}

/** Messages from the control plane to the worker. */
export type ToWorker =
  /** Start: file descriptors opened by the main thread, and settings. */
  | {
    readonly op: "init";
    readonly mode: DataPlaneMode;
    readonly encapsulation: Encapsulation;
    /** TUN fd (xtr mode), or -1. */
    readonly tunFd: number;
    /**
     * TUNs of the instance IDs that have their own (`[[instance]]`): what
     * one reads enters the overlay in its iid, and packets decapsulated
     * with that iid are written to it. Absent or empty: only `tunFd`.
     */
    readonly instanceTuns?: readonly { readonly fd: number; readonly iid: number }[];
    /** Data UDP socket fds (bound to the data port), IPv4 and/or IPv6, -1 when absent. */
    readonly udp4Fd: number;
    readonly udp6Fd: number;
    /**
     * rtr: a send-only raw IPv4 socket fd for data to xTRs behind a NAT,
     * sent from `natSourcePort` (the control port, through the binding
     * their Map-Registers opened); -1 or absent: from the data socket.
     */
    readonly natRawFd?: number;
    /** The UDP source port of what goes out of `natRawFd`. */
    readonly natSourcePort?: number;
    /** Packets per batch. */
    readonly batch: number;
    /** Poll timeout in milliseconds. */
    readonly pollMs: number;
    /**
     * MTU of the TUN(s) (`tun-mtu`): the batch slots are sized to hold a
     * packet that large (and one received with the outer LISP header).
     * Absent: 4,096-byte slots.
     */
    readonly tunMtu?: number;
    /**
     * The largest outer packet toward RLOCs of each family (RFC 9300 §7.1's
     * L: the MTU of the local RLOCs' interfaces): an ITR packet too big for
     * it is answered with ICMP "fragmentation needed" / "packet too big"
     * (or, IPv4 without DF, sent and fragmented). 0 or absent: no check.
     */
    readonly pathMtu?: { readonly ipv4: number; readonly ipv6: number };
    /**
     * Use the offloads (default true): checksum, TSO and USO on the TUNs
     * that have a virtio-net header, UDP GSO to send and (xtr) UDP GRO to
     * receive, each as far as the kernel takes it (the `ready` message says
     * what it took). false: one plain packet per read, write and datagram.
     */
    readonly offloads?: boolean;
    /**
     * With offloads: send runs of equal datagrams to one RLOC as one UDP
     * GSO send (default true). A GSO send may cross virtual links (veth,
     * virtio) whole, and a peer that reads data from a raw socket (OOR
     * 1.3.0) then sees one datagram where there are many: false sends
     * each datagram on its own.
     */
    readonly udpGso?: boolean;
    /**
     * One of several Workers whose receiving sockets are spread by inner
     * flow (dataplane/spread.ts): a UDP GSO send then carries the datagrams
     * of one flow only, since the receiver gives all of it to the Worker of
     * its first datagram's flow. Default false.
     */
    readonly spread?: boolean;
    /**
     * The CPU to pin this Worker's thread to (`[data-plane] cpus`); the
     * Worker does not start when the kernel refuses it. Absent: the
     * kernel's scheduler places it.
     */
    readonly cpu?: number;
  }
  /** Add or replace a mapping. */
  | { readonly op: "set"; readonly mapping: DataMapping }
  /** Remove a mapping. */
  | { readonly op: "delete"; readonly prefix: Prefix }
  /** Local EID prefixes (decapsulated packets must be for one of these; their iid tags encapsulation). */
  | { readonly op: "local"; readonly prefixes: readonly Prefix[] }
  /** Proxy-ETRs used for native-forward entries and unresolvable destinations. */
  | {
    readonly op: "petrs";
    readonly ipv4: readonly DataLocator[];
    readonly ipv6: readonly DataLocator[];
  }
  /** Reachability change of one RLOC in every entry that has it. */
  | { readonly op: "locator"; readonly address: string; readonly up: boolean }
  /**
   * Send one datagram from the data socket of `address`'s family (NAT
   * traversal: Info-Requests and Map-Registers through the NAT binding of
   * the data port, Map-Notifies from an RTR back through it).
   */
  | {
    readonly op: "send";
    readonly address: string;
    readonly port: number;
    readonly bytes: Uint8Array;
  }
  /** Stop the loop, close nothing (the main thread owns the fds). */
  | { readonly op: "stop" };

/** What the Worker got of the offloads it asked for (in its `ready` message). */
export interface OffloadReport {
  /**
   * Per TUN, the main one first: the offloads it takes (`csum tso4 tso6
   * tso-ecn uso4 uso6`), `none`, or `no virtio-net header`.
   */
  readonly tuns: readonly string[];
  /** Offloads a TUN refused (the kernel lacks them, e.g. `uso4 uso6` before Linux 6.2). */
  readonly refused: readonly string[];
  /** Whether UDP GSO sends are used (IPv4, IPv6 socket). */
  readonly udpGso: { readonly ipv4: boolean; readonly ipv6: boolean };
  /** Whether UDP GRO is on on the data sockets (xtr). */
  readonly udpGro: boolean;
  /** Why something asked for could not be had, one line each. */
  readonly errors: readonly string[];
}

/** Messages from the worker to the control plane. */
export type FromWorker =
  /** The loop runs; with the offloads it got. */
  | { readonly op: "ready"; readonly offloads?: OffloadReport }
  /**
   * No entry (or a send-map-request entry) for this destination: resolve it.
   * Sent at most once per destination per second.
   */
  | {
    readonly op: "miss";
    readonly iid: number;
    /** Destination address text (IPv4, IPv6). */
    readonly dst: string;
    /** Source EID address text of the packet that missed. */
    readonly src: string;
  }
  /** Decapsulated traffic seen from a remote RLOC for a source EID (for SMRs and gleaning). */
  | { readonly op: "peer"; readonly rloc: string; readonly iid: number; readonly srcEid: string }
  /**
   * A LISP control message that arrived on a data socket (NAT traversal:
   * an Info-Reply, an ECM with the R or N bit, or a Data-Map-Notify), with
   * its UDP source. At most 100 a second.
   */
  | {
    readonly op: "control";
    readonly address: string;
    readonly port: number;
    /** The message, or (with `inIpUdp`) the IP/UDP packet carrying it. */
    readonly bytes: Uint8Array;
    /** A Data-Map-Notify: `bytes` is the inner IP/UDP packet of a LISP data packet. */
    readonly inIpUdp?: true;
  }
  /**
   * Counters since start, every second: encapsulated, decapsulated, dropped by reason, ...;
   * with `entries`, the per-entry counts that changed since the last report.
   */
  | {
    readonly op: "counters";
    readonly values: Readonly<Record<string, number>>;
    readonly entries?: EntryCounts;
  }
  /** The loop stopped (after `stop`, or on a fatal error with its message). */
  | { readonly op: "stopped"; readonly error?: string };

/**
 * Packets and bytes (inner packets) encapsulated by map-cache entries:
 * totals since each entry was added, for the entries that carried traffic
 * since the last report (parallel arrays; prefixes as core/prefix.ts's
 * `formatPrefix` writes them), and the prefixes of the entries deleted
 * since (their counts are gone).
 */
export interface EntryCounts {
  /** `[iid]prefix` of each entry counted. */
  readonly prefixes: readonly string[];
  /** Its packets. */
  readonly packets: readonly number[];
  /** Its bytes. */
  readonly bytes: readonly number[];
  /** Entries deleted since the last report. */
  readonly gone: readonly string[];
}

/** The traffic of one map-cache entry (see {@link EntryCounts}). */
export interface EntryTraffic {
  /** Packets encapsulated by it. */
  readonly packets: number;
  /** Their bytes (inner packets). */
  readonly bytes: number;
}

/** Callbacks of the main-thread side for what the worker reports. */
export interface DataPlaneEvents {
  /** A destination with no usable mapping (at most once per destination per second). */
  onMiss(iid: number, dst: string, src: string): void;
  /** Traffic decapsulated from `rloc` for source EID `srcEid`. */
  onPeer?(rloc: string, iid: number, srcEid: string): void;
  /**
   * A control message received on a data socket from `address`:`port`
   * (NAT traversal); `inIpUdp`: `bytes` is the IP/UDP packet that carries
   * it (a Data-Map-Notify).
   */
  onControl?(bytes: Uint8Array, address: string, port: number, inIpUdp?: boolean): void;
  /** The worker stopped on its own (a fatal error). */
  onStopped?(error: string | undefined): void;
}

/**
 * The main-thread handle of a running data plane (implemented by
 * `DataPlane` in mod.ts; tests of the control plane may use a
 * fake with the same shape).
 */
export interface DataPlaneHandle {
  /** Adds or replaces a mapping. */
  setMapping(m: DataMapping): void;
  /** Removes a mapping. */
  deleteMapping(prefix: Prefix): void;
  /** Replaces the set of local EID prefixes. */
  setLocal(prefixes: readonly Prefix[]): void;
  /** Replaces the proxy-ETRs. */
  setPetrs(ipv4: readonly DataLocator[], ipv6: readonly DataLocator[]): void;
  /** Marks an RLOC up or down in every mapping that has it. */
  setLocator(address: string, up: boolean): void;
  /** Sends one datagram from the data socket (NAT traversal); optional for fakes. */
  sendControl?(bytes: Uint8Array, address: string, port: number): void;
  /** The worker's latest counters (updated every second). */
  counters(): Readonly<Record<string, number>>;
  /** What the Worker got of the offloads, once it runs (optional for fakes). */
  offloads?(): OffloadReport | undefined;
  /** The latest traffic per map-cache entry, by `[iid]prefix` (entries without traffic absent). */
  entryCounts?(): ReadonlyMap<string, EntryTraffic>;
  /** Stops the worker; resolves once it has left its loop. */
  stop(): Promise<void>;
}
