/**
 * The packet logic of a tunnel router's data plane, with no I/O:
 * {@link Engine} works on {@link PacketBatch}es the Worker loop (worker.ts)
 * reads and sends.
 *
 * - ITR: a batch read from a TUN → source checked against the local EIDs
 *   (its iid from the longest local prefix, or the instance TUN's) →
 *   map-cache lookup of the destination → a locator chosen per flow →
 *   the LISP or VXLAN-GPE header prepended in the slot's headroom → slots
 *   grouped by outer family, ready for sendmmsg.
 * - ETR: a batch received on a data socket → outer header checked and
 *   stripped (control messages on the LISP data port handed up instead) →
 *   destination checked against the local EIDs of the header's iid →
 *   slots tagged with the TUN to write them to.
 * - RTR: decapsulate, look up, re-encapsulate, never back to the sender.
 *
 * - Path MTU (RFC 9300 §7.1, the stateless approach): an ITR packet that
 *   with the outer headers would exceed the path MTU toward its locator's
 *   family (`pathMtu`) is answered, when it has DF or is IPv6, with an
 *   ICMPv4 "fragmentation needed" or ICMPv6 "packet too big" carrying the
 *   MTU it may have (path MTU minus the outer headers; never below 1280 for
 *   IPv6), built in place in the slot and written back to the TUN it came
 *   from (at most {@link ICMP_PER_SECOND} a second; the rest are dropped
 *   and counted); an IPv4 packet without DF is encapsulated anyway and
 *   the kernel fragments the outer packet (the ETR reassembles it).
 *
 * Headers are read in place through wire/'s accessors and offsets.
 * Nothing is allocated per packet: lookups read addresses straight from
 * the packet bytes, and the events that need text (misses, peers) are
 * rate-limited by fixed-size tables.
 *
 * @module
 */

import type {
  DataAction,
  DataLocator,
  DataMapping,
  DataPlaneMode,
  Encapsulation,
  EntryCounts,
  FromWorker,
  ToWorker,
} from "./api.ts";
import { formatPrefix, type Prefix } from "../core/prefix.ts";
import { DATAPLANE_COUNTERS, type DataplaneCounter } from "../core/metrics.ts";
import type { PacketBatch } from "../ffi/batch.ts";
import { u32ToIpv4 } from "../ffi/libc.ts";
import {
  flowHash,
  type Locator,
  LpmTable,
  MapCache,
  type MapCacheEntry,
  selectLocator,
} from "./fib.ts";
import {
  DATA_MAP_NOTIFY_IID,
  isControlOnLispDataPort,
  LISP_DATA_HEADER_LENGTH,
  LISP_DATA_PORT,
  LISP_FLAG_I,
  LISP_FLAG_N,
  lispInstanceId,
  VXLAN_GPE_PORT,
  writeLispDataHeader,
} from "../wire/data_header.ts";
import {
  icmpErrorAllowed,
  TOO_BIG_HEADROOM_V4,
  TOO_BIG_HEADROOM_V6,
  writeTooBigReply,
} from "../wire/icmp.ts";
import {
  IP_PROTO_UDP,
  IPV4_DST_OFFSET,
  IPV4_HEADER_MIN_LENGTH,
  IPV4_PROTOCOL_OFFSET,
  IPV4_SRC_OFFSET,
  ipv4DontFragment,
  IPV6_DST_OFFSET,
  IPV6_HEADER_LENGTH,
  IPV6_SRC_OFFSET,
  ipVersion,
} from "../wire/ip.ts";
import {
  VXLAN_GPE_FLAG_I,
  VXLAN_GPE_FLAG_P,
  VXLAN_GPE_NP_IPV4,
  VXLAN_GPE_NP_IPV6,
  vxlanGpeFlags,
  vxlanGpeNextProtocol,
  vxlanGpeVersion,
  vxlanGpeVni,
  writeVxlanGpeHeader,
} from "../wire/vxlan_gpe.ts";
import { ipv4FromBytes, ipv6FromBytes } from "../wire/ip_text.ts";
import { UDP_HEADER_LENGTH } from "../wire/udp.ts";

// ---------------------------------------------------------------------------
// Counters (declared in core/metrics.ts, kept here by index).

/** Names of the counters, in index order (`dropped:<reason>` for drops). */
export const COUNTER_NAMES: readonly DataplaneCounter[] = DATAPLANE_COUNTERS.map(([k]) => k);

/** Index of counter `name` in {@link COUNTER_NAMES}. */
function counter(name: DataplaneCounter): number {
  return COUNTER_NAMES.indexOf(name);
}
const C_ENCAPSULATED = counter("encapsulated");
const C_DECAPSULATED = counter("decapsulated");
/** Counter index (the I/O loop counts it). */
export const C_TUN_READ = counter("tun-read");
/** Counter index (the I/O loop counts it). */
export const C_TUN_WRITTEN = counter("tun-written");
/** Counter index (the I/O loop counts it). */
export const C_UDP_RECEIVED = counter("udp-received");
/** Counter index (the I/O loop counts it). */
export const C_SENT = counter("sent");
/** Counter index (the I/O loop counts it). */
export const C_SEND_ERRORS = counter("send-errors");
/** Counter index (the I/O loop counts it). */
export const C_TUN_WRITE_ERRORS = counter("tun-write-errors");
/** Counter index (the I/O loop counts it). */
export const C_READ_ERRORS = counter("read-errors");
/** Counter index (the I/O loop counts it). */
export const C_BATCHES = counter("batches");
const C_MISSES_POSTED = counter("misses-posted");
const C_PEERS_POSTED = counter("peers-posted");
const C_CONTROL_PUNTED = counter("control-punted");
/** Counter index (the I/O loop counts it). */
export const C_CONTROL_ERRORS = counter("control-errors");
/** Counter index (the I/O loop counts it). */
export const C_INTERNAL_ERRORS = counter("internal-errors");
const C_ICMP_TOO_BIG = counter("icmp-too-big");
const C_TOO_BIG_FRAGMENTED = counter("too-big-fragmented");
const D_NOT_LOCAL_SOURCE = counter("dropped:not-local-source");
const D_NOT_LOCAL_DESTINATION = counter("dropped:not-local-destination");
const D_MISS = counter("dropped:miss");
const D_NO_PETR = counter("dropped:no-petr");
const D_DROP = counter("dropped:drop");
const D_NO_LOCATOR = counter("dropped:no-locator");
const D_ELP_STRICT = counter("dropped:elp-strict");
/** Counter index (the I/O loop counts it). */
export const D_NO_SOCKET = counter("dropped:no-socket");
const D_LOOP = counter("dropped:loop");
const D_BAD_HEADER = counter("dropped:bad-header");
const D_BAD_INNER = counter("dropped:bad-inner");
const D_TRUNCATED = counter("dropped:truncated");
const D_TOO_BIG = counter("dropped:too-big");
/** Counter index (the I/O loop counts it). */
export const D_SEND_BUFFER = counter("dropped:send-buffer");
const C_ENCAPSULATED_BYTES = counter("encapsulated-bytes");
const C_DECAPSULATED_BYTES = counter("decapsulated-bytes");
/** Counter index (the I/O loop counts it, with {@link Engine.addBytes}). */
export const C_TUN_READ_BYTES = counter("tun-read-bytes");
/** Counter index (the I/O loop counts it, with {@link Engine.addBytes}). */
export const C_UDP_RECEIVED_BYTES = counter("udp-received-bytes");
/** Counter index (the I/O loop counts it, with {@link Engine.addBytes}). */
export const C_SENT_BYTES = counter("sent-bytes");
const G_MAP_CACHE_ENTRIES = counter("map-cache-entries");
/** Entry ids the per-entry counters have room for at first; they double as needed. */
const ENTRY_SLOTS = 64;
// ---------------------------------------------------------------------------
// Engine.

/** Length of the LISP and of the VXLAN-GPE header (the same). */
const HEADER = LISP_DATA_HEADER_LENGTH;
/** At most this many miss events per (iid, destination) per window. */
const MISS_WINDOW_MS = 1000;
/** Slots of the recent-miss table (a power of two). */
const MISS_SLOTS = 1024;
/** At most this many miss events per second in all. */
const MISS_POSTS_PER_SECOND = 1000;
/** At most one peer event per (rloc, iid, source EID) per window. */
const PEER_WINDOW_MS = 10_000;
/** Slots of the recent-peer table (a power of two). */
const PEER_SLOTS = 4096;
/** At most this many control messages from the data port handed up per second. */
const PUNTS_PER_SECOND = 100;
/** At most this many ICMP too-big errors written back per second. */
export const ICMP_PER_SECOND = 100;
/** Bytes per batch slot (headroom included) at least; {@link slotSizeFor} grows it with the MTU. */
export const SLOT_SIZE = 4096;
/**
 * Free bytes before each received packet: room for the outer header (8,
 * and 28 more for an RTR's IPv4/UDP header to an xTR behind a NAT), or for
 * the IP and ICMP headers of a too-big error (48 for IPv6).
 */
export const HEADROOM = 64;
/** Outer headers in front of an inner packet: IPv4 or IPv6, UDP, LISP or VXLAN-GPE. */
export const OUTER_OVERHEAD_V4 = IPV4_HEADER_MIN_LENGTH + UDP_HEADER_LENGTH +
  LISP_DATA_HEADER_LENGTH;
/** See {@link OUTER_OVERHEAD_V4}. */
export const OUTER_OVERHEAD_V6 = IPV6_HEADER_LENGTH + UDP_HEADER_LENGTH + LISP_DATA_HEADER_LENGTH;
/** The smallest MTU an IPv6 link has (RFC 8200 §5): an IPv6 source never goes below it. */
const IPV6_MIN_MTU = 1280;
/** The smallest MTU of an IPv4 path (RFC 791). */
const IPV4_MIN_MTU = 68;

/**
 * Bytes per batch slot for a TUN of MTU `tunMtu`: room for a packet of
 * that size read from the TUN (a read that fills the slot counts as too
 * big) and for one received with the outer LISP header in front, plus the
 * headroom; never below {@link SLOT_SIZE}. A multiple of 8.
 */
export function slotSizeFor(tunMtu: number): number {
  const need = HEADROOM + LISP_DATA_HEADER_LENGTH + Math.max(0, Math.floor(tunMtu)) + 1;
  return Math.max(SLOT_SIZE, (need + 7) & ~7);
}

/** Wire action codes stored in map-cache entries (RFC 9301 ACT). */
const ACT_NATIVE_FORWARD = 1;
const ACT_SEND_MAP_REQUEST = 2;
const ACT_DROP = 3;

/** Settings of an {@link Engine}. */
export interface EngineOptions {
  /** xtr (TUN <-> UDP) or rtr (UDP -> UDP). */
  readonly mode: DataPlaneMode;
  /** LISP (port 4341) or VXLAN-GPE (port 4790). */
  readonly encapsulation: Encapsulation;
  /** Largest number of slots of the batches passed in. */
  readonly slots: number;
  /** Whether an IPv4 / IPv6 data socket exists (else packets to such RLOCs are dropped). */
  readonly ipv4?: boolean;
  /** See {@link ipv4}. */
  readonly ipv6?: boolean;
  /** Where events go (misses, peers). */
  readonly post: (m: FromWorker) => void;
  /** Seed of the nonce generator (default: from the clock). */
  readonly seed?: number;
  /** The iids of the instance TUNs, in order: TUN k + 1 carries `instanceIids[k]`. */
  readonly instanceIids?: readonly number[];
  /**
   * An RTR with a raw IPv4 socket: the UDP source port (its control port)
   * of what it sends to xTRs behind a NAT, through the NAT binding their
   * Map-Registers opened. Absent: those go out of the data socket.
   */
  readonly natSourcePort?: number;
  /**
   * The largest outer packet toward RLOCs of each family (L in RFC 9300
   * §7.1): packets from the TUN that would exceed it with the outer
   * headers are answered with ICMP (see the module notes). 0 or absent:
   * no check for that family.
   */
  readonly pathMtu?: { readonly ipv4: number; readonly ipv6: number };
}

function hashMix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  h ^= Math.imul(k, 0x1b873593);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function hashFinal(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

function rd32(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

/** Mixes the 4 or 16 address bytes at `b[off...]` into `h`. */
function hashAddress(h: number, b: Uint8Array, off: number, v6: boolean): number {
  h = hashMix(h, rd32(b, off));
  if (v6) {
    h = hashMix(h, rd32(b, off + 4));
    h = hashMix(h, rd32(b, off + 8));
    h = hashMix(h, rd32(b, off + 12));
  }
  return h;
}

/** Slot mark of a packet for the raw socket (an xTR behind a NAT); 4 and 6 are the families. */
const MARK_NAT = 5;
/** Slot mark of an ICMP error to write back to the TUN the batch came from. */
const MARK_ICMP = 7;

/**
 * Writes an IPv4 and a UDP header at `b[off...]` in front of `len - 28`
 * bytes of UDP data, to `dst` (u32) from UDP port `srcPort` to `dstPort`:
 * the kernel fills in the source address, the identification, the total
 * length and the header checksum; the UDP checksum is left 0 (none, as
 * IPv4 allows).
 */
function writeNatIpUdp(
  b: Uint8Array,
  off: number,
  len: number,
  dst: number,
  srcPort: number,
  dstPort: number,
): void {
  b.fill(0, off, off + IPV4_HEADER_MIN_LENGTH + UDP_HEADER_LENGTH);
  b[off] = 0x45;
  b[off + 2] = len >>> 8;
  b[off + 3] = len;
  b[off + 6] = 0x40; // DF
  b[off + 8] = 64; // TTL
  b[off + IPV4_PROTOCOL_OFFSET] = IP_PROTO_UDP;
  b[off + IPV4_DST_OFFSET] = dst >>> 24;
  b[off + IPV4_DST_OFFSET + 1] = dst >>> 16;
  b[off + IPV4_DST_OFFSET + 2] = dst >>> 8;
  b[off + IPV4_DST_OFFSET + 3] = dst;
  const u = off + IPV4_HEADER_MIN_LENGTH;
  const ulen = len - IPV4_HEADER_MIN_LENGTH;
  b[u] = srcPort >>> 8;
  b[u + 1] = srcPort;
  b[u + 2] = dstPort >>> 8;
  b[u + 3] = dstPort;
  b[u + 4] = ulen >>> 8;
  b[u + 5] = ulen;
}

function mappingInit(m: DataMapping) {
  const action: DataAction = m.action;
  if (action === "encapsulate") {
    return { kind: "positive" as const, action: 0, locators: m.locators, static: true };
  }
  const code = action === "native-forward"
    ? ACT_NATIVE_FORWARD
    : action === "send-map-request"
    ? ACT_SEND_MAP_REQUEST
    : ACT_DROP;
  return { kind: "negative" as const, action: code, static: true };
}

/** Whether a locator of `e` is down for a strict hop of its explicit locator path. */
function strictDown(e: MapCacheEntry): boolean {
  const locs = e.locators;
  for (let i = 0; i < locs.length; i++) if (locs[i]!.elpStrict) return true;
  return false;
}

const ALL_V4: Prefix = { iid: 0, family: "ipv4", bytes: new Uint8Array(4), len: 0 };
const ALL_V6: Prefix = { iid: 0, family: "ipv6", bytes: new Uint8Array(16), len: 0 };

/**
 * The packet logic of the data plane, without I/O. The Worker loop reads
 * a batch, calls {@link fromTun} or {@link fromUdp}, then sends slots
 * `[0, n4)` on the IPv4 socket and `[n4, n4+n6)` on the IPv6 socket, or
 * (xtr decapsulation) writes the slots of non-zero length to the TUN.
 */
export class Engine {
  /** Operating mode. */
  readonly mode: DataPlaneMode;
  /** Encapsulation used on both directions. */
  readonly encapsulation: Encapsulation;
  /** UDP destination port of encapsulated packets (4341 or 4790). */
  readonly port: number;
  /** Counter values, indexed like {@link COUNTER_NAMES}. */
  readonly counts: Float64Array = new Float64Array(COUNTER_NAMES.length);
  /** After {@link fromTun}/{@link fromUdp} (rtr): slots `[0, n4)` go to IPv4 RLOCs. */
  n4 = 0;
  /** ... and slots `[n4, n4 + n6)` to IPv6 RLOCs. */
  n6 = 0;
  /**
   * ... and slots `[n4 + n6, n4 + n6 + nNat)` to xTRs behind a NAT: whole
   * IPv4 packets (IPv4 and UDP header in front) for the raw socket.
   */
  nNat = 0;
  /**
   * ... and (after {@link fromTun}) slots `[n4 + n6 + nNat, ... + nIcmp)`:
   * ICMP too-big errors to write back to the TUN the batch was read from.
   */
  nIcmp = 0;
  /** The current time in ms (performance.now()), set by the loop once per round. */
  now = 0;
  /**
   * After {@link fromUdp} (xtr), per slot: the TUN to write it to, 0 for
   * the main one, k for the instance TUN k (see `instanceIids`).
   */
  readonly tunTag: Uint8Array;
  /** The iids of the instance TUNs (TUN k + 1 carries entry k). */
  readonly #instanceIids: readonly number[];
  /** iid -> instance TUN number (1..); iids absent here use the main TUN. */
  readonly #tunOfIid = new Map<number, number>();

  readonly #cache = new MapCache();
  readonly #petrs = new MapCache();
  #petr4: MapCacheEntry | undefined;
  #petr6: MapCacheEntry | undefined;
  /** Local EIDs by source address, all under key iid 0 → index into #localIid. */
  #localSrc = new LpmTable();
  #localIid: number[] = [];
  /** Local EIDs under their own iid (destination check on decapsulation). */
  #localDst = new LpmTable();
  readonly #ipv4: boolean;
  readonly #natSourcePort: number;
  readonly #ipv6: boolean;
  readonly #post: (m: FromWorker) => void;
  /** Per slot: 0 dropped, 4 or 6 the outer family. */
  readonly #mark: Uint8Array;
  /** Per slot: where #group puts it. */
  readonly #dest: Int32Array;
  #nonce: number;
  /** The iid found by the last #decap. */
  #iid = 0;
  readonly #missKey = new Int32Array(MISS_SLOTS);
  readonly #missTime = new Float64Array(MISS_SLOTS).fill(-Infinity);
  #missSecond = 0;
  #missBudget = MISS_POSTS_PER_SECOND;
  readonly #peerKey = new Int32Array(PEER_SLOTS);
  readonly #peerTime = new Float64Array(PEER_SLOTS).fill(-Infinity);
  /**
   * The last IPv4 (sender RLOC, iid, inner source) noted and when: the
   * segments of one GRO batch repeat it, and comparing three numbers is
   * cheaper than the two hashes (-1: none).
   */
  #lastPeer4 = -1;
  #lastSrc4 = -1;
  #lastIid4 = -1;
  #lastPeerAt = -Infinity;
  #puntSecond = 0;
  #puntBudget = PUNTS_PER_SECOND;
  /** Largest inner packet toward an IPv4 / IPv6 RLOC (path MTU minus the outer headers). */
  readonly #innerMax4: number;
  readonly #innerMax6: number;
  #icmpSecond = 0;
  #icmpBudget = ICMP_PER_SECOND;
  /** Set while a later segment of a super-packet takes the whole path: no ICMP error for it. */
  #quietIcmp = false;
  /** What the last packet {@link fromTun} encapsulated went to: locator, iid, entry. */
  #prevLoc: Locator | undefined;
  #prevIid = 0;
  #prevEntryId = 0;
  /** Per map-cache entry, by its id: packets and bytes (inner) encapsulated by it. */
  #entryPackets = new Float64Array(ENTRY_SLOTS);
  #entryBytes = new Float64Array(ENTRY_SLOTS);
  /** Entries counted since the last {@link entryReport}: a flag per id, and the ids in order. */
  #entryDirty = new Uint8Array(ENTRY_SLOTS);
  #dirtyIds = new Int32Array(ENTRY_SLOTS);
  #nDirty = 0;
  /** Prefixes of the entries deleted since the last {@link entryReport}. */
  #gone: string[] = [];

  /** An engine with an empty map-cache, no local EIDs and no proxy-ETRs. */
  constructor(options: EngineOptions) {
    this.mode = options.mode;
    this.encapsulation = options.encapsulation;
    this.port = options.encapsulation === "LISP" ? LISP_DATA_PORT : VXLAN_GPE_PORT;
    this.#ipv4 = options.ipv4 ?? true;
    this.#natSourcePort = options.natSourcePort ?? 0;
    this.#ipv6 = options.ipv6 ?? true;
    this.#post = options.post;
    this.#mark = new Uint8Array(options.slots);
    this.#dest = new Int32Array(options.slots);
    this.tunTag = new Uint8Array(options.slots);
    this.#instanceIids = [...(options.instanceIids ?? [])];
    this.#instanceIids.forEach((iid, k) => this.#tunOfIid.set(iid, k + 1));
    this.#nonce = (options.seed ?? (Date.now() ^ (performance.now() * 1000))) | 0 || 0x2545f491;
    const mtu4 = options.pathMtu?.ipv4 ?? 0;
    const mtu6 = options.pathMtu?.ipv6 ?? 0;
    this.#innerMax4 = mtu4 > 0 ? mtu4 - OUTER_OVERHEAD_V4 : Infinity;
    this.#innerMax6 = mtu6 > 0 ? mtu6 - OUTER_OVERHEAD_V6 : Infinity;
  }

  // -------------------------------------------------------------------------
  // Control.

  /** Applies one control message (set, delete, local, petrs, locator); returns false for others. */
  control(m: ToWorker): boolean {
    try {
      switch (m.op) {
        case "set":
          this.setMapping(m.mapping);
          return true;
        case "delete":
          this.#deleteMapping(m.prefix);
          return true;
        case "local":
          this.setLocal(m.prefixes);
          return true;
        case "petrs":
          this.setPetrs(m.ipv4, m.ipv6);
          return true;
        case "locator":
          this.#cache.setRlocUp(m.address, m.up);
          this.#petrs.setRlocUp(m.address, m.up);
          return true;
        default:
          return false;
      }
    } catch {
      this.counts[C_CONTROL_ERRORS]!++;
      return true;
    }
  }

  /** Adds or replaces a mapping. Throws on bad input (the loop counts `control-errors`). */
  setMapping(m: DataMapping): void {
    const size = this.#cache.size;
    const e = this.#cache.set(m.prefix, mappingInit(m));
    if (this.#cache.size !== size) this.#newEntry(e.id);
  }

  /** Removes the entry of exactly `prefix`; its counts go with it. */
  #deleteMapping(prefix: Prefix): void {
    const e = this.#cache.delete(prefix);
    if (e === undefined) return;
    this.#entryPackets[e.id] = 0;
    this.#entryBytes[e.id] = 0;
    this.#gone.push(formatPrefix(e.prefix));
  }

  /** Zeroes the counts of a new entry (ids are reused), making room for its id first. */
  #newEntry(id: number): void {
    let n = this.#entryPackets.length;
    if (id >= n) {
      while (id >= n) n *= 2;
      const grow = <T extends Float64Array | Uint8Array | Int32Array>(a: T, b: T): T => {
        b.set(a);
        return b;
      };
      this.#entryPackets = grow(this.#entryPackets, new Float64Array(n));
      this.#entryBytes = grow(this.#entryBytes, new Float64Array(n));
      this.#entryDirty = grow(this.#entryDirty, new Uint8Array(n));
      this.#dirtyIds = grow(this.#dirtyIds, new Int32Array(n));
    }
    this.#entryPackets[id] = 0;
    this.#entryBytes[id] = 0;
  }

  /** Counts one packet of `bytes` (inner) encapsulated by entry `id`. */
  #countEntry(id: number, bytes: number): void {
    this.#entryPackets[id]!++;
    this.#entryBytes[id] = this.#entryBytes[id]! + bytes;
    if (this.#entryDirty[id] === 0) {
      this.#entryDirty[id] = 1;
      this.#dirtyIds[this.#nDirty++] = id;
    }
  }

  /**
   * The packet and byte counts of the map-cache entries counted since the
   * last call (totals since each entry was added), and the prefixes of the
   * entries deleted since; undefined when there is neither. Allocates:
   * called with the counters, once a second.
   */
  entryReport(): EntryCounts | undefined {
    if (this.#nDirty === 0 && this.#gone.length === 0) return undefined;
    const prefixes: string[] = [];
    const packets: number[] = [];
    const bytes: number[] = [];
    for (let k = 0; k < this.#nDirty; k++) {
      const id = this.#dirtyIds[k]!;
      this.#entryDirty[id] = 0;
      const e = this.#cache.byId(id);
      if (e === undefined) continue;
      prefixes.push(formatPrefix(e.prefix));
      packets.push(this.#entryPackets[id]!);
      bytes.push(this.#entryBytes[id]!);
    }
    this.#nDirty = 0;
    const gone = this.#gone;
    this.#gone = [];
    return { prefixes, packets, bytes, gone };
  }

  /** The `counters` message the Worker posts: {@link snapshot} and {@link entryReport}. */
  countersMessage(): FromWorker {
    const entries = this.entryReport();
    return {
      op: "counters",
      values: this.snapshot(),
      ...(entries !== undefined ? { entries } : {}),
    };
  }

  /**
   * Replaces the local EID prefixes (IPv4 and IPv6; MAC prefixes are
   * ignored). A packet from the main TUN takes the instance id of the
   * longest local prefix holding its source, among the iids without a TUN
   * of their own (one prefix in two such instances: the last one given
   * wins; the config refuses that); a packet from an instance TUN has that
   * TUN's iid and its source must be a local prefix of it. A decapsulated
   * packet must be for a local prefix of the header's instance id.
   */
  setLocal(prefixes: readonly Prefix[]): void {
    const src = new LpmTable();
    const dst = new LpmTable();
    const iids: number[] = [];
    for (const p of prefixes) {
      if (p.family === "mac") continue;
      iids.push(p.iid);
      if (!this.#tunOfIid.has(p.iid)) {
        src.set({ iid: 0, family: p.family, bytes: p.bytes, len: p.len }, iids.length - 1);
      }
      dst.set(p, iids.length - 1);
    }
    this.#localSrc = src;
    this.#localDst = dst;
    this.#localIid = iids;
  }

  /** Replaces the proxy-ETRs, for IPv4 and for IPv6 inner destinations. */
  setPetrs(ipv4: readonly DataLocator[], ipv6: readonly DataLocator[]): void {
    this.#petrs.delete(ALL_V4);
    this.#petrs.delete(ALL_V6);
    this.#petr4 = ipv4.length === 0
      ? undefined
      : this.#petrs.set(ALL_V4, { kind: "positive", locators: ipv4, static: true });
    this.#petr6 = ipv6.length === 0
      ? undefined
      : this.#petrs.set(ALL_V6, { kind: "positive", locators: ipv6, static: true });
  }

  /** The counters as a record (allocates: once a second). */
  snapshot(): Record<string, number> {
    this.counts[G_MAP_CACHE_ENTRIES] = this.#cache.size;
    const out: Record<string, number> = {};
    for (let i = 0; i < COUNTER_NAMES.length; i++) out[COUNTER_NAMES[i]!] = this.counts[i]!;
    return out;
  }

  // -------------------------------------------------------------------------
  // ITR: TUN -> UDP.

  /**
   * Encapsulates the packets of `b` (slots `[0, b.count)`, as read from
   * the TUN), then groups them: slots `[0, n4)` for the IPv4 socket,
   * `[n4, n4+n6)` for the IPv6 socket, each with its RLOC as peer.
   * Dropped packets are counted and left behind. Never throws.
   * `follows[i] === 1` says slot `i` holds the segment after slot
   * `i - 1`'s, of one super-packet (segment.ts): it goes where that one
   * went without a lookup, and a too-big one gets no ICMP error of its own.
   */
  fromTun(b: PacketBatch, tun = 0, follows?: Uint8Array): void {
    const mark = this.#mark;
    const count = this.#limit(b);
    const cap = b.capacity;
    const iid = tun > 0 ? this.#instanceIids[tun - 1] : undefined;
    for (let i = 0; i < count; i++) {
      if (b.length[i]! >= cap) {
        mark[i] = this.#drop(D_TOO_BIG);
        continue;
      }
      const follower = follows !== undefined && follows[i] === 1 && i > 0;
      if (follower) {
        // The next segment of the packet in slot i - 1: same flow, same locator, no bigger.
        const pm = mark[i - 1];
        if (pm === 4 || pm === 6 || pm === MARK_NAT) {
          const m = this.#follow(b, i);
          if (m >= 0) {
            mark[i] = m;
            continue;
          }
        }
        this.#quietIcmp = true; // one ICMP error per super-packet is enough
      }
      if (iid === undefined) mark[i] = this.#itr(b, i);
      else mark[i] = this.#itrIn(b, i, iid);
      this.#quietIcmp = false;
    }
    this.#group(b);
  }

  /**
   * Encapsulates slot `i`, the next segment of a super-packet whose
   * previous segment (slot `i - 1`) was just encapsulated, to the same
   * locator, without looking anything up again. -1 when it must take the
   * whole path instead (bigger than the path allows).
   */
  #follow(b: PacketBatch, i: number): number {
    const l = this.#prevLoc!;
    const len = b.length[i]!;
    if (len > (l.family === "ipv4" ? this.#innerMax4 : this.#innerMax6)) return -1;
    const family = this.#encapsulate(b, i, this.#prevIid, ipVersion(b.bytes, b.offset[i]!), l);
    if (family !== 0) this.#countEntry(this.#prevEntryId, len);
    return family;
  }

  /** ITR for a packet of an instance TUN: its source must be a local EID of `iid`. */
  #itrIn(b: PacketBatch, i: number, iid: number): number {
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const len = b.length[i]!;
    const ver = ipVersion(bytes, off);
    let li: number;
    if (ver === 4) {
      if (len < IPV4_HEADER_MIN_LENGTH) return this.#drop(D_BAD_INNER);
      li = this.#localDst.lookupV4(iid, bytes, off + IPV4_SRC_OFFSET);
    } else if (ver === 6) {
      if (len < IPV6_HEADER_LENGTH) return this.#drop(D_BAD_INNER);
      li = this.#localDst.lookupV6(iid, bytes, off + IPV6_SRC_OFFSET);
    } else {
      return this.#drop(D_BAD_INNER);
    }
    if (li < 0) return this.#drop(D_NOT_LOCAL_SOURCE);
    return this.#forward(b, i, iid, ver, false);
  }

  #itr(b: PacketBatch, i: number): number {
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const len = b.length[i]!;
    const ver = ipVersion(bytes, off);
    let li: number;
    if (ver === 4) {
      if (len < IPV4_HEADER_MIN_LENGTH) return this.#drop(D_BAD_INNER);
      li = this.#localSrc.lookupV4(0, bytes, off + IPV4_SRC_OFFSET);
    } else if (ver === 6) {
      if (len < IPV6_HEADER_LENGTH) return this.#drop(D_BAD_INNER);
      li = this.#localSrc.lookupV6(0, bytes, off + IPV6_SRC_OFFSET);
    } else {
      return this.#drop(D_BAD_INNER);
    }
    if (li < 0) return this.#drop(D_NOT_LOCAL_SOURCE);
    const iid = this.#localIid[li]!;
    return this.#forward(b, i, iid, ver, false);
  }

  /**
   * Looks the inner destination of slot `i` up in `iid` and encapsulates
   * it; `fromPeer`: the slot's peer is the RLOC it came from (rtr), which
   * must not be chosen again. Returns the outer family or 0 (dropped).
   */
  #forward(b: PacketBatch, i: number, iid: number, ver: number, fromPeer: boolean): number {
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const e = ver === 4
      ? this.#cache.lookupV4(iid, bytes, off + IPV4_DST_OFFSET)
      : this.#cache.lookupV6(iid, bytes, off + IPV6_DST_OFFSET);
    let target: MapCacheEntry;
    if (e === undefined) return this.#miss(b, i, iid, ver);
    if (e.kind === "positive") target = e;
    else if (e.action === ACT_NATIVE_FORWARD) {
      const p = ver === 4 ? this.#petr4 : this.#petr6;
      if (p === undefined || p.usable === 0) return this.#drop(D_NO_PETR);
      target = p;
    } else if (e.action === ACT_SEND_MAP_REQUEST || e.action === 0) {
      return this.#miss(b, i, iid, ver);
    } else return this.#drop(D_DROP);
    const h = flowHash(bytes, off, b.length[i]!);
    const idx = selectLocator(target, h);
    if (idx < 0) {
      return this.#drop(target !== e ? D_NO_PETR : strictDown(e) ? D_ELP_STRICT : D_NO_LOCATOR);
    }
    let l = target.locators[idx]!;
    if (fromPeer && this.#isPeer(b, i, l)) {
      const other = this.#otherLocator(b, i, target, h, idx);
      if (other === undefined) return this.#drop(D_LOOP);
      l = other;
    }
    if (!fromPeer) {
      // RFC 9300 §7.1: the inner packet may be at most L - H, IPv6 never asked below 1280.
      const max = l.family === "ipv4" ? this.#innerMax4 : this.#innerMax6;
      if (b.length[i]! > max) {
        const allowed = ver === 4 ? Math.max(max, IPV4_MIN_MTU) : Math.max(max, IPV6_MIN_MTU);
        if (b.length[i]! > allowed) {
          if (ver === 6 || ipv4DontFragment(bytes, off)) return this.#tooBig(b, i, allowed);
          this.counts[C_TOO_BIG_FRAGMENTED]!++;
        }
      }
    }
    const len = b.length[i]!;
    const family = this.#encapsulate(b, i, iid, ver, l);
    if (family !== 0) this.#countEntry(e.id, len);
    this.#prevLoc = l;
    this.#prevIid = iid;
    this.#prevEntryId = e.id;
    return family;
  }

  /**
   * Drops slot `i`'s packet, too big for the path, and (within the rate
   * limit, and when an ICMP error may answer it) turns the slot into an
   * ICMP too-big error with `mtu`, to write back to the TUN.
   */
  #tooBig(b: PacketBatch, i: number, mtu: number): number {
    this.counts[D_TOO_BIG]!++;
    if (this.#quietIcmp) return 0;
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const len = b.length[i]!;
    if (!icmpErrorAllowed(bytes, off, len)) return 0;
    const second = Math.floor(this.now / 1000);
    if (second !== this.#icmpSecond) {
      this.#icmpSecond = second;
      this.#icmpBudget = ICMP_PER_SECOND;
    }
    if (this.#icmpBudget <= 0) return 0;
    this.#icmpBudget--;
    b.prepend(i, ipVersion(bytes, off) === 4 ? TOO_BIG_HEADROOM_V4 : TOO_BIG_HEADROOM_V6);
    b.length[i] = writeTooBigReply(bytes, off, len, mtu);
    this.counts[C_ICMP_TOO_BIG]!++;
    return MARK_ICMP;
  }

  /** Whether locator `l` is slot `i`'s peer (the RLOC a packet came from). */
  #isPeer(b: PacketBatch, i: number, l: Locator): boolean {
    const lb = l.bytes;
    const f = b.peerFamily(i);
    if (l.family === "ipv4") return f === 4 && b.peerAddr4(i) === (rd32(lb, 0) >>> 0);
    if (f !== 6) return false;
    const o = b.peerAddr6Offset(i);
    const bytes = b.bytes;
    for (let k = 0; k < 16; k++) if (bytes[o + k] !== lb[k]) return false;
    return true;
  }

  /** Another usable locator than the peer: from the selection table, else the best other up one. */
  #otherLocator(
    b: PacketBatch,
    i: number,
    e: MapCacheEntry,
    h: number,
    idx: number,
  ): Locator | undefined {
    const sel = e.selection;
    for (let k = 1; k < 256; k++) {
      const j = sel[(h + k) & 255]!;
      if (j !== idx) {
        const l = e.locators[j]!;
        if (!this.#isPeer(b, i, l)) return l;
      }
    }
    let best: Locator | undefined;
    for (const l of e.locators) {
      if (!l.up || l.priority === 255 || this.#isPeer(b, i, l)) continue;
      if (best === undefined || l.priority < best.priority) best = l;
    }
    return best;
  }

  /** Prepends the header and sets the peer; returns the outer family, or 0. */
  #encapsulate(b: PacketBatch, i: number, iid: number, ver: number, l: Locator): number {
    const v4 = l.family === "ipv4";
    if (v4 ? !this.#ipv4 : !this.#ipv6) return this.#drop(D_NO_SOCKET);
    const bytes = b.bytes;
    this.counts[C_ENCAPSULATED_BYTES] = this.counts[C_ENCAPSULATED_BYTES]! + b.length[i]!;
    const o = b.prepend(i, HEADER);
    if (this.encapsulation === "LISP") {
      let x = this.#nonce;
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      this.#nonce = x;
      writeLispDataHeader(bytes, o, LISP_FLAG_N | LISP_FLAG_I, x & 0xffffff, (iid << 8) >>> 0);
    } else {
      writeVxlanGpeHeader(
        bytes,
        o,
        VXLAN_GPE_FLAG_I | VXLAN_GPE_FLAG_P,
        ver === 4 ? VXLAN_GPE_NP_IPV4 : VXLAN_GPE_NP_IPV6,
        iid & 0xffffff,
      );
    }
    const port = l.port !== 0 ? l.port : this.port;
    this.counts[C_ENCAPSULATED]!++;
    if (v4 && l.port !== 0 && this.#natSourcePort !== 0) {
      // Behind a NAT: from our control port, whole IPv4 packet for the raw socket.
      const h = b.prepend(i, IPV4_HEADER_MIN_LENGTH + UDP_HEADER_LENGTH);
      writeNatIpUdp(bytes, h, b.length[i]!, rd32(l.bytes, 0) >>> 0, this.#natSourcePort, port);
      b.setPeer4(i, rd32(l.bytes, 0) >>> 0, 0);
      return MARK_NAT;
    }
    if (v4) b.setPeer4(i, rd32(l.bytes, 0) >>> 0, port);
    else b.setPeer6(i, l.bytes, 0, port);
    return v4 ? 4 : 6;
  }

  /** Counts a miss and posts it, at most once per (iid, destination) per second. */
  #miss(b: PacketBatch, i: number, iid: number, ver: number): number {
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const v6 = ver === 6;
    const dst = off + (v6 ? IPV6_DST_OFFSET : IPV4_DST_OFFSET);
    const h = hashFinal(hashAddress(hashMix(0x3c6ef372, iid), bytes, dst, v6));
    const key = hashFinal(hashAddress(hashMix(0x1b873593, iid ^ 0x5bd1e995), bytes, dst, v6)) |
      1;
    const s = h & (MISS_SLOTS - 1);
    const now = this.now;
    if (this.#missKey[s] !== key || now - this.#missTime[s]! >= MISS_WINDOW_MS) {
      const second = Math.floor(now / 1000);
      if (second !== this.#missSecond) {
        this.#missSecond = second;
        this.#missBudget = MISS_POSTS_PER_SECOND;
      }
      if (this.#missBudget > 0) {
        this.#missBudget--;
        this.#missKey[s] = key;
        this.#missTime[s] = now;
        this.counts[C_MISSES_POSTED]!++;
        const src = off + (v6 ? IPV6_SRC_OFFSET : IPV4_SRC_OFFSET);
        this.#post({
          op: "miss",
          iid,
          dst: v6 ? ipv6FromBytes(bytes, dst) : ipv4FromBytes(bytes, dst),
          src: v6 ? ipv6FromBytes(bytes, src) : ipv4FromBytes(bytes, src),
        });
      }
    }
    return this.#drop(D_MISS);
  }

  #drop(reason: number): number {
    this.counts[reason]!++;
    return 0;
  }

  /** `b.count`, cut to the slots this engine was made for (the rest are dropped unsent). */
  #limit(b: PacketBatch): number {
    if (b.count > this.#mark.length) {
      for (let i = this.#mark.length; i < b.count; i++) b.length[i] = 0;
      b.count = this.#mark.length;
    }
    return b.count;
  }

  /**
   * Moves the slots marked 4 to the front, then those marked 6, then those
   * for the raw socket, then the ICMP errors, the dropped ones last; sets
   * n4, n6, nNat and nIcmp. Stable: each group keeps the order the packets
   * came in (the segments of a flow stay in sequence, and runs of them to
   * one RLOC stay together for a UDP GSO send).
   */
  #group(b: PacketBatch): void {
    const mark = this.#mark;
    const dest = this.#dest;
    const count = b.count;
    let n4 = 0;
    let n6 = 0;
    let nNat = 0;
    let nIcmp = 0;
    for (let i = 0; i < count; i++) {
      const m = mark[i];
      if (m === 4) n4++;
      else if (m === 6) n6++;
      else if (m === MARK_NAT) nNat++;
      else if (m === MARK_ICMP) nIcmp++;
    }
    let p4 = 0;
    let p6 = n4;
    let pNat = n4 + n6;
    let pIcmp = pNat + nNat;
    let pRest = pIcmp + nIcmp;
    let moved = false;
    for (let i = 0; i < count; i++) {
      const m = mark[i];
      const d = m === 4
        ? p4++
        : m === 6
        ? p6++
        : m === MARK_NAT
        ? pNat++
        : m === MARK_ICMP
        ? pIcmp++
        : pRest++;
      dest[i] = d;
      if (d !== i) moved = true;
    }
    if (moved) {
      // Apply the permutation by its cycles: each swap puts one slot where it goes.
      for (let i = 0; i < count; i++) {
        while (dest[i] !== i) {
          const j = dest[i]!;
          b.swap(i, j);
          dest[i] = dest[j]!;
          dest[j] = j;
          const m = mark[i]!;
          mark[i] = mark[j]!;
          mark[j] = m;
        }
      }
    }
    this.n4 = n4;
    this.n6 = n6;
    this.nNat = nNat;
    this.nIcmp = nIcmp;
  }

  // -------------------------------------------------------------------------
  // ETR / RTR: UDP -> TUN or UDP.

  /**
   * Decapsulates the datagrams of `b` (slots `[0, b.count)`, as received
   * on a data socket). xtr: packets for local EIDs keep their slot
   * (inner packet only), the others get length 0; write the slots of
   * non-zero length to the TUN. rtr: the inner packets are looked up and
   * re-encapsulated, grouped like {@link fromTun} (`n4`, `n6`). Never throws.
   */
  fromUdp(b: PacketBatch): void {
    const count = this.#limit(b);
    const rtr = this.mode === "rtr";
    const mark = this.#mark;
    for (let i = 0; i < count; i++) {
      const ver = this.#decap(b, i);
      if (ver === 0) {
        b.length[i] = 0;
        mark[i] = 0;
        continue;
      }
      this.counts[C_DECAPSULATED]!++;
      this.counts[C_DECAPSULATED_BYTES] = this.counts[C_DECAPSULATED_BYTES]! + b.length[i]!;
      this.#notePeer(b, i, ver);
      if (rtr) {
        mark[i] = this.#forward(b, i, this.#iid, ver, true);
      } else {
        const off = b.offset[i]!;
        const hit = ver === 4
          ? this.#localDst.lookupV4(this.#iid, b.bytes, off + IPV4_DST_OFFSET)
          : this.#localDst.lookupV6(this.#iid, b.bytes, off + IPV6_DST_OFFSET);
        if (hit < 0) {
          this.#drop(D_NOT_LOCAL_DESTINATION);
          b.length[i] = 0;
        } else {
          this.tunTag[i] = this.#instanceIids.length === 0 ? 0 : this.#tunOfIid.get(this.#iid) ?? 0;
        }
      }
    }
    if (rtr) this.#group(b);
  }

  /**
   * ETR (xtr) for one datagram held in slot `i` at `b.bytes[off, off+len)`
   * (UDP GRO puts several in a slot; the slot's peer is their sender):
   * what {@link fromUdp} does to a slot, with the slot's offset and length
   * set to that datagram first. Returns the TUN to write the inner packet
   * to (see {@link tunTag}), which is then at `b.offset[i]`, `b.length[i]`;
   * or -1 when it was dropped or handed to the control plane. Never throws.
   */
  etrAt(b: PacketBatch, i: number, off: number, len: number): number {
    b.offset[i] = off;
    b.length[i] = len;
    const ver = this.#decap(b, i);
    if (ver === 0) return -1;
    this.counts[C_DECAPSULATED]!++;
    this.counts[C_DECAPSULATED_BYTES] = this.counts[C_DECAPSULATED_BYTES]! + b.length[i]!;
    this.#notePeer(b, i, ver);
    const o = b.offset[i]!;
    const hit = ver === 4
      ? this.#localDst.lookupV4(this.#iid, b.bytes, o + IPV4_DST_OFFSET)
      : this.#localDst.lookupV6(this.#iid, b.bytes, o + IPV6_DST_OFFSET);
    if (hit < 0) return this.#drop(D_NOT_LOCAL_DESTINATION) - 1;
    return this.#instanceIids.length === 0 ? 0 : this.#tunOfIid.get(this.#iid) ?? 0;
  }

  /** Checks and strips the outer header of slot `i`; returns the inner IP version or 0. */
  #decap(b: PacketBatch, i: number): number {
    if (b.truncated[i] !== 0) return this.#drop(D_TRUNCATED);
    const bytes = b.bytes;
    const off = b.offset[i]!;
    const len = b.length[i]!;
    if (this.encapsulation === "LISP" && isControlOnLispDataPort(bytes[off]!)) {
      return this.#punt(b, i);
    }
    if (len < HEADER + IPV4_HEADER_MIN_LENGTH) return this.#drop(D_BAD_HEADER);
    let np = 0;
    if (this.encapsulation === "LISP") {
      this.#iid = lispInstanceId(bytes, off);
      if (this.#iid === DATA_MAP_NOTIFY_IID) return this.#punt(b, i, HEADER);
    } else {
      if (vxlanGpeVersion(bytes, off) !== 0) return this.#drop(D_BAD_HEADER);
      const f = vxlanGpeFlags(bytes, off);
      if ((f & VXLAN_GPE_FLAG_P) !== 0) {
        np = vxlanGpeNextProtocol(bytes, off);
        if (np !== VXLAN_GPE_NP_IPV4 && np !== VXLAN_GPE_NP_IPV6) return this.#drop(D_BAD_HEADER);
      }
      this.#iid = (f & VXLAN_GPE_FLAG_I) !== 0 ? vxlanGpeVni(bytes, off) : 0;
    }
    const ver = ipVersion(bytes, off + HEADER);
    if (ver === 4) {
      if (np === VXLAN_GPE_NP_IPV6) return this.#drop(D_BAD_INNER);
    } else if (ver === 6) {
      if (np === VXLAN_GPE_NP_IPV4 || len < HEADER + IPV6_HEADER_LENGTH) {
        return this.#drop(D_BAD_INNER);
      }
    } else return this.#drop(D_BAD_INNER);
    b.strip(i, HEADER);
    return ver;
  }

  /**
   * Hands a control message received on the data port to the control
   * plane (at most {@link PUNTS_PER_SECOND} a second; the copy is the only
   * allocation, and such messages are rare); returns 0 (not for the TUN).
   * `skip`: the bytes of a LISP data header before an inner IP/UDP packet
   * that carries the message (a Data-Map-Notify), 0 for a bare message.
   */
  #punt(b: PacketBatch, i: number, skip = 0): number {
    const second = Math.floor(this.now / 1000);
    if (second !== this.#puntSecond) {
      this.#puntSecond = second;
      this.#puntBudget = PUNTS_PER_SECOND;
    }
    const f = b.peerFamily(i);
    if (this.#puntBudget <= 0 || f === 0) return this.#drop(D_BAD_HEADER);
    this.#puntBudget--;
    this.counts[C_CONTROL_PUNTED]!++;
    const off = b.offset[i]!;
    this.#post({
      op: "control",
      address: f === 4 ? u32ToIpv4(b.peerAddr4(i)) : ipv6FromBytes(b.bytes, b.peerAddr6Offset(i)),
      port: b.peerPort(i),
      bytes: b.bytes.slice(off + skip, off + b.length[i]!),
      ...(skip > 0 ? { inIpUdp: true } : {}),
    });
    return 0;
  }

  /** Posts {op:"peer"} for (sender RLOC, iid, inner source), once per 10 s each. */
  #notePeer(b: PacketBatch, i: number, ver: number): void {
    const f = b.peerFamily(i);
    if (f === 0) return;
    const bytes = b.bytes;
    const v6 = ver === 6;
    const src = b.offset[i]! + (v6 ? IPV6_SRC_OFFSET : IPV4_SRC_OFFSET);
    const iid = this.#iid;
    const now = this.now;
    let peer4 = -1;
    let src4 = -1;
    if (f === 4 && !v6) {
      peer4 = b.peerAddr4(i);
      src4 = ((bytes[src]! << 24) | (bytes[src + 1]! << 16) | (bytes[src + 2]! << 8) |
        bytes[src + 3]!) >>>
        0;
      if (
        peer4 === this.#lastPeer4 && src4 === this.#lastSrc4 && iid === this.#lastIid4 &&
        now - this.#lastPeerAt < PEER_WINDOW_MS
      ) return;
    }
    let h = hashMix(0x6a09e667, iid);
    let k = hashMix(0x510e527f, iid ^ 0x7f4a7c15);
    if (f === 4) {
      const a = b.peerAddr4(i);
      h = hashMix(h, a);
      k = hashMix(k, a);
    } else {
      const o = b.peerAddr6Offset(i);
      h = hashAddress(h, bytes, o, true);
      k = hashAddress(k, bytes, o, true);
    }
    h = hashFinal(hashAddress(h, bytes, src, v6));
    k = hashFinal(hashAddress(k, bytes, src, v6)) | 1;
    const s = h & (PEER_SLOTS - 1);
    if (this.#peerKey[s] === k && now - this.#peerTime[s]! < PEER_WINDOW_MS) {
      this.#rememberPeer4(peer4, src4, iid, this.#peerTime[s]!);
      return;
    }
    this.#peerKey[s] = k;
    this.#peerTime[s] = now;
    this.#rememberPeer4(peer4, src4, iid, now);
    this.counts[C_PEERS_POSTED]!++;
    this.#post({
      op: "peer",
      rloc: f === 4 ? u32ToIpv4(b.peerAddr4(i)) : ipv6FromBytes(bytes, b.peerAddr6Offset(i)),
      iid,
      srcEid: v6 ? ipv6FromBytes(bytes, src) : ipv4FromBytes(bytes, src),
    });
  }

  /** Remembers the IPv4 triple last noted (posted at `at`), or forgets it (`peer4` -1). */
  #rememberPeer4(peer4: number, src4: number, iid: number, at: number): void {
    this.#lastPeer4 = peer4;
    this.#lastSrc4 = src4;
    this.#lastIid4 = iid;
    this.#lastPeerAt = at;
  }

  // -------------------------------------------------------------------------
  // Counting I/O done by the loop.

  /** Adds `n` to counter `name` (for the I/O loop). */
  add(index: number, n: number): void {
    this.counts[index] = this.counts[index]! + n;
  }

  /** Adds the lengths of slots `[start, start + n)` of `b` to counter `index` (for the I/O loop). */
  addBytes(index: number, b: PacketBatch, start: number, n: number): void {
    let sum = 0;
    const length = b.length;
    for (let i = start; i < start + n; i++) sum += length[i]!;
    this.counts[index] = this.counts[index]! + sum;
  }
}
