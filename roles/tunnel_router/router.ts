/**
 * The engine shared by the tunnel-router roles — `oor xtr`, `oor mn` and
 * `oor rtr` — on the control side: the local database, registration,
 * resolution, the control-plane map-cache, ETR answers, SMRs, RLOC
 * probing, the routing of each mode, and a clean shutdown. The packets
 * themselves are moved by the data plane (a Worker, `_dataplane.ts`)
 * through the {@link DataPlaneHandle} contract of `_dataplane_api.ts`.
 *
 * Local database (`[[database-mapping]]`; for an rtr, `[[rtr-iface]]`):
 * - Locators come from `rloc-address` (used as written, unless the address
 *   sits on a local interface whose link is down) and `rloc-iface` (the
 *   first usable address of that family on the interface, IPv6 limited by
 *   `ipv6-scope`; none while the link is down). They are resolved again on
 *   every netlink link/address event (debounced), so a locator appears,
 *   moves or disappears with its address or link.
 * - A locator that is down is left out of Map-Registers and Map-Replies
 *   (rather than sent with the R bit clear): a map-server forwards
 *   Map-Requests to the best-priority registered locator whatever its R bit,
 *   and peers cannot use what is not there.
 *
 * Registration (RFC 9301 §5.6, §8.2; OOR sends one mapping per message):
 * - Every mapping goes to every `[[map-server]]` in its own Map-Register
 *   with the M bit, the I bit with a random xTR-ID (per run) and site-ID 0,
 *   the P bit from `proxy-reply`, the m bit for a mobile node, and the HMAC
 *   of `key-type`/`key`. Refreshed every 60 s once a valid Map-Notify came
 *   back from that map-server; until then retried after 1 s, doubling up to
 *   60 s.
 * - A Map-Notify counts when its nonce is one we sent (up to a minute ago)
 *   and its authentication data is right under that map-server's key.
 * - When the locators of a mapping change it is registered again at once
 *   (and retried quickly until notified); a mapping left with no locator is
 *   withdrawn (record TTL 0). Shutdown withdraws every mapping.
 *
 * Resolution (ITR, RFC 9301 §5.8, §6):
 * - A data-plane miss sends an ECM Map-Request to the map-resolvers (one
 *   per attempt, in turn), `map-request-retries` retransmissions a second
 *   apart, at most one request per EID per second and one in flight. The
 *   ITR-RLOCs are our usable locators, the one the kernel uses toward the
 *   first map-resolver first (just `control-address` when it is set: the
 *   control socket listens nowhere else). The reply may come from a
 *   map-server or an ETR, so it is matched by nonce alone.
 * - A Map-Reply record is taken when its prefix covers the EID asked for:
 *   positive records are encapsulated to their locators, negative ones keep
 *   their action; TTL 0 records are not cached. Entries expire after their
 *   TTL. When nothing answers and proxy-ETRs are configured, the EID gets a
 *   native-forward entry for a minute, so its traffic goes to a PETR.
 * - `[[static-map-cache]]` entries never expire and are never replaced by
 *   Map-Replies. `[[proxy-etr-ipv4/6]]` go to the data plane as is.
 *
 * ETR:
 * - A Map-Request (plain, or forwarded by a map-server in an ECM) for one
 *   of our EID prefixes gets an authoritative Map-Reply with our locators
 *   (L bit set): to the first usable ITR-RLOC at the ECM's inner source
 *   port, or to the sender of a plain request. RLOC-probes (P bit) get a
 *   probe reply sent back to the prober. An rtr answers probes for any EID
 *   with its own locators.
 * - When local locators change, SMRs (Map-Request with the S bit, source
 *   EID the changed prefix) go to every remote RLOC we have talked to: the
 *   data plane's decapsulation peers and the locators of the map-cache.
 * - An SMR for an EID we have cached triggers an SMR-invoked Map-Request
 *   (s bit) through the map-resolver; others are ignored (counted).
 *
 * RLOC probing (`[rloc-probing]`): every `rloc-probe-interval` seconds each
 * distinct locator of the map-cache gets a Map-Request with the P bit at
 * its control port, retransmitted `rloc-probe-retries` times
 * `rloc-probe-retries-interval` apart. No reply to any of them marks the
 * RLOC down in every entry (`setLocator`); a reply marks it up again. A new
 * mapping with a locator that is down has it probed at once.
 *
 * Modes: see {@link RouteSetup} (`_tunnel_router_platform.ts`): the xtr
 * opens the TUN and installs OOR's rules, the mn puts its EID on the TUN
 * and routes the two halves of the address space into it (its data sockets
 * and, without `control-address`, its control socket are bound to its
 * RLOC so encapsulated traffic takes the per-RLOC rules instead of the /1
 * routes; when that RLOC changes, both are bound again and the data plane
 * restarted with the whole map-cache), the rtr has no TUN and
 * re-encapsulates. An xtr's `[[instance]]`s each get their own TUN and
 * table (`setupInstance`: `iif` rules for the site interfaces and the
 * TUN, table routes copied from the site interfaces), so their prefixes
 * may overlap other iids'; the data plane tags what each TUN reads with
 * its iid and writes decapsulated packets to the TUN of their iid.
 * `destination-prefixes` narrows what enters the TUNs (xtr and mn) to
 * those prefixes. All three get the per-RLOC source rules, kept in step
 * with the interfaces (checked after each netlink event, 1 s and 3 s
 * later, and every 30 s, since routes through a link that comes back are
 * re-added by others a moment after the link event). Shutdown withdraws
 * the registrations, stops the data plane and undoes every host change in
 * reverse order.
 *
 * Counters (besides the transport's `oor_control_*` and the data plane's,
 * exported as `oor_dataplane_*`):
 * - `oor_tr_map_registers_sent_total{kind="register"|"withdraw"}`,
 *   `oor_tr_map_notifies_total{result="ok"|"auth"|"unmatched"}`,
 *   `oor_tr_registered` (gauge: mapping × map-server pairs notified);
 * - `oor_tr_map_requests_sent_total{reason="miss"|"smr-invoked"}`,
 *   `oor_tr_map_request_timeouts_total`,
 *   `oor_tr_map_replies_total{result="positive"|"negative"|"ttl-0"|"not-covering"|"static"}`,
 *   `oor_tr_map_cache_entries{kind="positive"|"negative"|"static"}` (gauge),
 *   `oor_tr_map_cache_expired_total`, `oor_tr_misses_total{result="sent"|"limited"}`;
 * - `oor_tr_map_requests_received_total{kind="request"|"probe"|"smr"}`,
 *   `oor_tr_map_replies_sent_total{kind="request"|"probe"}`,
 *   `oor_tr_map_requests_dropped_total{reason}`;
 * - `oor_tr_probes_sent_total`, `oor_tr_probes_answered_total`,
 *   `oor_tr_probe_timeouts_total`, `oor_tr_locators_down` (gauge),
 *   `oor_tr_locator_changes_total{state="up"|"down"}`;
 * - `oor_tr_smrs_sent_total`, `oor_tr_smrs_received_total{result="requested"|"ignored"}`,
 *   `oor_tr_rloc_changes_total`.
 *
 * Not handled yet: NAT traversal (Info-Request, RTR-relayed registration),
 * `proxy-itrs` (every requester is answered), LISP-SEC, echo-nonce, probing
 * of proxy-ETRs, Map-Notify-Acks for unsolicited Map-Notifies.
 *
 * @module
 */

import {
  type Address,
  addressToString,
  ipAddress,
  type IPv4Address,
  type IPv6Address,
  NO_ADDRESS,
} from "../../wire/address.ts";
import { authStatus, HmacKey, signAuthenticated } from "../../wire/auth.ts";
import { LISP_CONTROL_PORT } from "../../wire/data_header.ts";
import { ACTION, type EidRecord } from "../../wire/eid_record.ts";
import { isIPv4 } from "../../wire/ip_text.ts";
import type { LocatorRecord } from "../../wire/locator.ts";
import type { MapNotify } from "../../wire/map_notify.ts";
import { emitSignedMapRegister, type MapRegister } from "../../wire/map_register.ts";
import type { MapReply } from "../../wire/map_reply.ts";
import { emitMapRequest, type MapRequest } from "../../wire/map_request.ts";
import { type Ecm, emitEcm } from "../../wire/ecm.ts";
import { emitInfo, type InfoReply, type InfoRequest } from "../../wire/info.ts";
import { parseControlMessage } from "../../wire/message.ts";
import { WireError } from "../../wire/errors.ts";
import { msRtrAuthOk, RTR_NAT_ENTRY_MS, withoutMsRtr } from "../../core/nat_auth.ts";
import type { IpFamily, NetlinkEvent } from "../../ffi/netlink.ts";
import type {
  Config,
  DatabaseMapping,
  MapServer,
  Prefix as ConfigPrefix,
  RlocAddress,
  RlocIface,
  StaticMapCacheEntry,
} from "../../config/mod.ts";
import {
  type DatabaseView,
  type LocatorView,
  type MapCacheView,
  type MapServerStatus,
  type RlocStatus,
  SourceError,
  splitIidPrefix,
  type StatusSource,
} from "../../core/status.ts";
import {
  ControlPlane,
  formatPeer,
  NoReplyError,
  type Peer,
  type Received,
} from "../../core/control.ts";
import { DataPlane } from "../../dataplane/mod.ts";
import type {
  DataAction,
  DataLocator,
  DataMapping,
  DataPlaneEvents,
  DataPlaneHandle,
  ToWorker,
} from "../../dataplane/api.ts";
import {
  formatPrefix,
  hostPrefixOf,
  parsePrefix,
  type Prefix,
  prefixAddress,
  prefixContains,
  prefixEid,
  prefixOf,
  PrefixTable,
} from "../../core/prefix.ts";
import type { RoleDeps, RoleHandle } from "../../core/role.ts";
import {
  type DataSocket,
  type InstanceRouting,
  Journal,
  linkUsable,
  linuxPlatform,
  type LocalRloc,
  type Platform,
  preflight,
  type PreflightFinding,
  RouteSetup,
  type TextPrefix,
  type TunDevice,
  usableAddress,
} from "./platform.ts";

// ---------------------------------------------------------------------------
// Types of the surface

/** Which tunnel router. */
export type TunnelRouterMode = "xtr" | "mn" | "rtr";

/** Options of {@link DataPlaneHandle} start: the `init` message without its tag. */
export type DataPlaneOptions = Omit<Extract<ToWorker, { op: "init" }>, "op">;

/** Starts a data plane (the real `DataPlane.start`, or a fake in tests). */
export type StartDataPlane = (
  opts: DataPlaneOptions,
  events: DataPlaneEvents,
) => Promise<DataPlaneHandle>;

/** Intervals and timeouts, in milliseconds. */
export interface Timing {
  /** Map-Register refresh once notified (60 s, RFC 9301 §8.2). */
  readonly registerIntervalMs: number;
  /** First retry of a Map-Register not yet notified; doubles up to the interval. */
  readonly registerRetryMs: number;
  /** Wait for a Map-Reply to each Map-Request attempt. */
  readonly mapRequestTimeoutMs: number;
  /** How often expired map-cache entries are removed. */
  readonly sweepMs: number;
  /** Between probe rounds (`rloc-probe-interval`; 0 turns probing off). */
  readonly probeIntervalMs: number;
  /** Between probe retransmissions (`rloc-probe-retries-interval`). */
  readonly probeRetryMs: number;
  /** Quiet time after a netlink event before locators are resolved again. */
  readonly eventDebounceMs: number;
  /** Period of the per-RLOC table check (also run after every link/address event). */
  readonly routeSyncMs: number;
  /** Life of the native-forward entry installed when no Map-Reply comes (with PETRs). */
  readonly unresolvedMs: number;
  /** NAT traversal: Info-Request period once answered (keeps the NAT binding of the data port). */
  readonly natKeepaliveMs: number;
  /** NAT traversal: first retry of an unanswered Info-Request; doubles up to the period. */
  readonly natRetryMs: number;
}

/** Options of {@link startTunnelRouter} beyond the config (tests, embedding). */
export interface TunnelRouterOptions {
  /** The host (default: {@link linuxPlatform}). */
  readonly platform?: Platform;
  /** Starts the data plane (default: `DataPlane.start` of `_dataplane.ts`). */
  readonly startDataPlane?: StartDataPlane;
  /** The control port of a peer (default 4342 for everyone; tests map loopback peers). */
  readonly peerPort?: (address: string) => number;
  /** 64-bit nonces (default random). */
  readonly nonce?: () => bigint;
  /** xTR-ID sent with the I bit (default random). */
  readonly xtrId?: bigint;
  /** site-ID sent with the I bit (default 0). */
  readonly siteId?: bigint;
  /** Overrides of the timing derived from the config. */
  readonly timing?: Partial<Timing>;
  /** Data-plane batch size (default 64). */
  readonly batch?: number;
  /** Data-plane poll timeout, ms (default 10). */
  readonly pollMs?: number;
}

/** A locator as the views list it. */
export interface LocatorInfo {
  /** Address (`addressToString` form). */
  readonly address: string;
  /** Priority. */
  readonly priority: number;
  /** Weight. */
  readonly weight: number;
  /** Usable: R bit and not marked down by probing. */
  readonly up: boolean;
}

/** One local mapping, as {@link TunnelRouterHandle.database} lists it. */
export interface DatabaseInfo {
  /** `[iid]prefix`. */
  readonly prefix: string;
  /** Record TTL, minutes. */
  readonly ttl: number;
  /** Its locators now. */
  readonly locators: readonly LocatorInfo[];
}

/** One map-cache entry, as {@link TunnelRouterHandle.mapCache} lists it. */
export interface MapCacheInfo {
  /** `[iid]prefix`. */
  readonly prefix: string;
  /** `static`, `positive` or `negative`. */
  readonly kind: "static" | "positive" | "negative";
  /** Data-plane action. */
  readonly action: DataAction;
  /** Record TTL in minutes (null for static entries). */
  readonly ttl: number | null;
  /** Expiry, ms since the epoch (null: never). */
  readonly expiresAt: number | null;
  /** Who answered (address:port), for learned entries. */
  readonly from?: string;
  /** Locators. */
  readonly locators: readonly LocatorInfo[];
}

/** Registration of one mapping with one map-server. */
export interface RegistrationInfo {
  /** Map-server address. */
  readonly mapServer: string;
  /** `[iid]prefix`. */
  readonly prefix: string;
  /** Whether a valid Map-Notify answered since the last change. */
  readonly notified: boolean;
  /** Map-Registers sent. */
  readonly sent: number;
  /** Last valid Map-Notify, ms since the epoch. */
  readonly lastNotifyAt: number | null;
}

/** Probe state of one remote RLOC. */
export interface ProbeInfo {
  /** RLOC address. */
  readonly address: string;
  /** Reachable as probing sees it. */
  readonly up: boolean;
  /** Probes sent (retransmissions included). */
  readonly sent: number;
  /** Probe replies received. */
  readonly answered: number;
  /** Round trip of the last reply, ms. */
  readonly rttMs: number | null;
}

/** A running tunnel router. */
export interface TunnelRouterHandle extends RoleHandle {
  /** Its mode. */
  readonly mode: TunnelRouterMode;
  /** The bound control port. */
  readonly controlPort: number;
  /** xTR-ID of its Map-Registers. */
  readonly xtrId: bigint;
  /** Sysctls the preflight found wrong at start. */
  readonly preflight: readonly PreflightFinding[];
  /** Local mappings (xtr, mn) or the rtr's own locators (one entry, prefix `rtr`). */
  database(): DatabaseInfo[];
  /** The control plane's map-cache. */
  mapCache(): MapCacheInfo[];
  /** Registration state per mapping and map-server. */
  registrations(): RegistrationInfo[];
  /** Probe state per remote RLOC. */
  probes(): ProbeInfo[];
  /** Host changes currently recorded for undo (rules, routes, addresses, the TUN). */
  hostChanges(): string[];
  /**
   * What the HTTP API shows and edits (web/source.ts): local RLOCs and
   * map-servers, the map-cache, the database, the counters, and the four
   * write hooks (static map-cache entries; database mappings, xtr and mn
   * only, registered or withdrawn at once).
   */
  statusSource(): StatusSource;
}

// ---------------------------------------------------------------------------
// Constants

/** Map-Register refresh period (RFC 9301 §8.2: 60 seconds). */
export const REGISTER_INTERVAL_MS = 60_000;
/** First quick retry of a Map-Register. */
export const REGISTER_RETRY_MS = 1_000;
/** Wait for each Map-Reply. */
export const MAP_REQUEST_TIMEOUT_MS = 1_000;
/** At most one Map-Request per EID per this many ms (also for SMRs received). */
export const MISS_INTERVAL_MS = 1_000;
/** Misses turned into Map-Requests per second, all EIDs together. */
const MISS_RATE = 200;
/** Remote RLOCs remembered from decapsulated traffic. */
const MAX_PEERS = 4096;
/** SMR targets per change. */
const MAX_SMR_TARGETS = 1024;
/** Map-Register nonces remembered for their Map-Notify. */
const REGISTER_NONCE_MS = 60_000;
/** TTL of our negative answer for a local prefix with no usable locator, minutes. */
const NO_LOCATOR_TTL = 1;
/** TTL of an rtr's probe answers, minutes. */
const RTR_PROBE_TTL = 1;
/** ITR-RLOCs a Map-Request can carry. */
const MAX_ITR_RLOCS = 32;
/** Never-expiring record TTL. */
const TTL_FOREVER = 0xffffffff;
/** NAT traversal: Info-Request period (UDP NAT bindings often last 30 s without traffic). */
export const NAT_KEEPALIVE_MS = 10_000;
/** Info-Requests unanswered in a row before a NATed xTR registers directly again. */
const NAT_MAX_FAILURES = 3;
/** RTRs of an Info-Reply used (the rest ignored). */
const MAX_RTRS = 8;
/** Map-Registers an RTR remembers for their Map-Notify. */
const MAX_RELAYS = 4096;
/** How often the data plane's counters are checked for new series. */
const DP_COUNTER_SCAN_MS = 5_000;

function defaultTiming(config: Config): Timing {
  const p = config.rlocProbing;
  return {
    registerIntervalMs: REGISTER_INTERVAL_MS,
    registerRetryMs: REGISTER_RETRY_MS,
    mapRequestTimeoutMs: MAP_REQUEST_TIMEOUT_MS,
    sweepMs: 1_000,
    probeIntervalMs: p.interval * 1000,
    probeRetryMs: Math.max(1, p.retriesInterval) * 1000,
    eventDebounceMs: 100,
    routeSyncMs: 30_000,
    unresolvedMs: 60_000,
    natKeepaliveMs: NAT_KEEPALIVE_MS,
    natRetryMs: 1_000,
  };
}

function randomNonce(): bigint {
  const v = crypto.getRandomValues(new BigUint64Array(1))[0]!;
  return v === 0n ? 1n : v;
}

function randomXtrId(): bigint {
  const w = crypto.getRandomValues(new BigUint64Array(2));
  return (w[0]! << 64n) | w[1]!;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function familyOf(ip: string): IpFamily {
  return isIPv4(ip) ? "ipv4" : "ipv6";
}

function canonicalIp(text: string): string | undefined {
  try {
    return ipAddress(text).ip;
  } catch {
    return undefined;
  }
}

function tablePrefix(p: ConfigPrefix, iid: number): Prefix {
  const out = parsePrefix(`${p.address}/${p.length}`, iid);
  if (out === undefined) throw new TypeError(`bad prefix ${p.address}/${p.length} in config`);
  return out;
}

function textPrefix(p: ConfigPrefix): TextPrefix {
  return { family: p.family === 4 ? "ipv4" : "ipv6", text: `${p.address}/${p.length}` };
}

const DATA_ACTIONS: Readonly<Record<number, DataAction>> = {
  [ACTION.NO_ACTION]: "native-forward",
  [ACTION.NATIVELY_FORWARD]: "native-forward",
  [ACTION.SEND_MAP_REQUEST]: "send-map-request",
  [ACTION.DROP_NO_REASON]: "drop",
  [ACTION.DROP_POLICY_DENIED]: "drop",
  [ACTION.DROP_AUTH_FAILURE]: "drop",
};

/** The data-plane locators of the RTRs a NATed xTR encapsulates everything to. */
function natLocators(nat: { readonly rtrs: readonly string[] }): DataLocator[] {
  return nat.rtrs.map((address) => ({ address, priority: 1, weight: 100, up: true }));
}

/**
 * The IP address to encapsulate to for a locator: itself or, for an
 * explicit locator path, the hop after the last hop that is an address
 * of this host (`here`; an RTR on the path re-encapsulates to the next
 * hop), else the path's first hop (the ITR sends to the first RTR).
 * Undefined when this host is the path's last hop.
 */
export function locatorIp(a: Address, here?: ReadonlySet<string>): string | undefined {
  if (a.kind === "ipv4" || a.kind === "ipv6") return a.ip;
  if (a.kind === "elp") {
    let next = 0;
    if (here !== undefined && here.size > 0) {
      for (let i = a.hops.length - 1; i >= 0; i--) {
        const ip = locatorIp(a.hops[i]!.address);
        if (ip !== undefined && here.has(ip)) {
          next = i + 1;
          break;
        }
      }
    }
    const hop = a.hops[next];
    return hop !== undefined ? locatorIp(hop.address) : undefined;
  }
  return undefined;
}

// ---------------------------------------------------------------------------
// Locators from the config and the host

/** A locator of ours. */
interface LocalLocator {
  /** As sent in records. */
  readonly address: Address;
  /** IP text when it is an IP address. */
  readonly ip?: string;
  readonly priority: number;
  readonly weight: number;
  /** Interface it was taken from or sits on. */
  readonly iface?: string;
  /** Index of that interface. */
  readonly index?: number;
}

/** Whether a locator is an IP address on one of this host's interfaces (not a remote RLOC). */
function onHost(l: LocalLocator): boolean {
  return l.ip !== undefined && l.index !== undefined;
}

/** Interface addresses and links at one moment. */
class HostSnapshot {
  readonly #links = new Map<string, { index: number; usable: boolean }>();
  readonly #byIndex = new Map<number, { name: string; usable: boolean }>();
  readonly #addrs: { ip: string; index: number; family: IpFamily; scope: number }[] = [];

  constructor(platform: Platform) {
    for (const l of platform.net.links()) {
      const usable = linkUsable(l);
      this.#links.set(l.name, { index: l.index, usable });
      this.#byIndex.set(l.index, { name: l.name, usable });
    }
    for (const a of platform.net.addresses()) {
      if (!usableAddress(a)) continue;
      const ip = canonicalIp(a.address);
      if (ip !== undefined) {
        this.#addrs.push({ ip, index: a.index, family: a.family, scope: a.scope });
      }
    }
  }

  /** Every usable address. */
  ips(): Set<string> {
    return new Set(this.#addrs.map((a) => a.ip));
  }

  /** The interface holding `ip`: its index, name and whether it is usable. */
  holder(ip: string): { index: number; name: string; usable: boolean } | undefined {
    const a = this.#addrs.find((x) => x.ip === ip);
    if (a === undefined) return undefined;
    const l = this.#byIndex.get(a.index);
    return { index: a.index, name: l?.name ?? "", usable: l?.usable ?? true };
  }

  /** The first usable address of `family` on interface `name` (undefined while its link is down). */
  ifaceAddress(
    name: string,
    family: IpFamily,
    ipv6Scope: "GLOBAL" | "SITE",
  ): { ip: string; index: number } | undefined {
    const l = this.#links.get(name);
    if (l === undefined || !l.usable) return undefined;
    for (const a of this.#addrs) {
      if (a.index !== l.index || a.family !== family) continue;
      if (family === "ipv6" && !ipv6InScope(a.ip, a.scope, ipv6Scope)) continue;
      return { ip: a.ip, index: l.index };
    }
    return undefined;
  }
}

/** GLOBAL: 2000::/3; SITE: also unique-local fc00::/7 and site-local fec0::/10. */
function ipv6InScope(ip: string, scope: number, want: "GLOBAL" | "SITE"): boolean {
  if (scope >= 253) return false; // link or host scope
  const first = parseInt(ip.split(":")[0] || "0", 16);
  if ((first & 0xe000) === 0x2000) return true;
  if (want === "GLOBAL") return false;
  return (first & 0xfe00) === 0xfc00 || (first & 0xffc0) === 0xfec0;
}

function elpAddress(name: string, config: Config): Address | undefined {
  const elp = config.explicitLocatorPaths.find((e) => e.name === name);
  if (elp === undefined) return undefined;
  return {
    kind: "elp",
    hops: elp.nodes.map((n) => ({
      lookup: n.lookup,
      probe: n.probe,
      strict: n.strict,
      address: ipAddress(n.address),
    })),
  };
}

/** Resolves configured locators against the host. */
function resolveLocators(
  addresses: readonly RlocAddress[],
  ifaces: readonly { iface: string; ipVersion: 4 | 6; priority: number; weight: number }[],
  host: HostSnapshot,
  config: Config,
): LocalLocator[] {
  const out: LocalLocator[] = [];
  const seen = new Set<string>();
  for (const r of addresses) {
    if (r.kind === "elp") {
      const a = elpAddress(r.elpName, config);
      if (a === undefined) continue;
      const k = addressToString(a);
      if (seen.has(k)) continue;
      seen.add(k);
      out.push({ address: a, priority: r.priority, weight: r.weight });
      continue;
    }
    const ip = canonicalIp(r.address);
    if (ip === undefined || seen.has(ip)) continue;
    const holder = host.holder(ip);
    if (holder !== undefined && !holder.usable) continue; // its link is down
    seen.add(ip);
    out.push({
      address: ipAddress(ip),
      ip,
      priority: r.priority,
      weight: r.weight,
      ...(holder !== undefined ? { iface: holder.name, index: holder.index } : {}),
    });
  }
  for (const f of ifaces) {
    const found = host.ifaceAddress(f.iface, f.ipVersion === 4 ? "ipv4" : "ipv6", config.ipv6Scope);
    if (found === undefined || seen.has(found.ip)) continue;
    seen.add(found.ip);
    out.push({
      address: ipAddress(found.ip),
      ip: found.ip,
      priority: f.priority,
      weight: f.weight,
      iface: f.iface,
      index: found.index,
    });
  }
  return out;
}

function locatorSignature(ls: readonly LocalLocator[]): string {
  return ls.map((l) => `${addressToString(l.address)}/${l.priority}/${l.weight}`).join(",");
}

function rlocIfaceList(
  m: DatabaseMapping,
): { iface: string; ipVersion: 4 | 6; priority: number; weight: number }[] {
  return m.rlocIfaces.map((f: RlocIface) => ({
    iface: f.interface,
    ipVersion: f.ipVersion,
    priority: f.priority,
    weight: f.weight,
  }));
}

// ---------------------------------------------------------------------------
// State records

interface LocalMapping {
  readonly prefix: Prefix;
  readonly text: string;
  /** Replaced in place when the API replaces the mapping. */
  config: DatabaseMapping;
  locators: LocalLocator[];
  signature: string;
}

interface RegState {
  readonly ms: MapServer;
  readonly key: HmacKey;
  readonly mapping: LocalMapping;
  readonly peer: Peer;
  notified: boolean;
  attempts: number;
  sent: number;
  lastNotifyAt: number | null;
  /** Last Map-Register (or withdrawal) sent, ms since the epoch. */
  lastSentAt: number | null;
  /** A withdrawal (TTL 0) was sent and nothing registered since. */
  withdrawn: boolean;
  timer: ReturnType<typeof setTimeout> | undefined;
}

interface CacheEntry {
  readonly prefix: Prefix;
  readonly static: boolean;
  readonly action: DataAction;
  readonly locators: readonly LocatorRecord[];
  /** Record TTL in minutes (TTL_FOREVER for static). */
  readonly ttl: number;
  readonly expiresAt: number;
  readonly from?: string;
  /**
   * rtr: the entry of an xTR behind a NAT, learned from its relayed
   * registration: its locator is the xTR's translated address and this
   * its translated port. Never replaced by Map-Replies, never probed.
   */
  readonly natPort?: number;
}

/** NAT traversal: the Info-Request state towards one map-server. */
interface NatProbe {
  readonly ms: MapServer;
  readonly key: HmacKey;
  readonly peer: Peer;
  /** Nonce of the Info-Request not answered yet. */
  pending: bigint | undefined;
  /** Unanswered Info-Requests in a row. */
  failures: number;
  lastReplyAt: number | null;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** NAT traversal: how the xTR is seen from outside its NAT, from the last Info-Reply. */
interface NatView {
  /** Global (translated) RLOC. */
  readonly global: string;
  /** Translated port of the data port. */
  readonly port: number;
  /** RTR RLOCs to register through and encapsulate to. */
  readonly rtrs: readonly string[];
}

/** rtr: a Map-Register relayed to a map-server, waiting for its Map-Notify. */
interface Relay {
  /** The xTR's translated address and port (outer source of its ECM). */
  readonly xtr: Peer;
  /** The inner header of the xTR's ECM. */
  readonly inner: Ecm["inner"];
  /** Map-server address (canonical). */
  readonly ms: string;
  readonly at: number;
}

interface ProbeState {
  readonly address: string;
  eid: Prefix;
  up: boolean;
  inFlight: boolean;
  sent: number;
  answered: number;
  rttMs: number | null;
}

// ---------------------------------------------------------------------------
// The tunnel router

class TunnelRouter implements TunnelRouterHandle {
  readonly mode: TunnelRouterMode;
  readonly xtrId: bigint;
  preflight: readonly PreflightFinding[] = [];

  readonly #config: Config;
  readonly #deps: RoleDeps;
  readonly #platform: Platform;
  readonly #ownsPlatform: boolean;
  readonly #startDataPlane: StartDataPlane;
  readonly #peerPort: (address: string) => number;
  readonly #nonce: () => bigint;
  readonly #siteId: bigint;
  readonly #timing: Timing;
  readonly #batch: number;
  readonly #pollMs: number;
  readonly #journal: Journal;
  readonly #routing: RouteSetup;
  readonly #abort = new AbortController();

  #cp: ControlPlane | undefined;
  #controlAddress: string | undefined;
  #dp: DataPlaneHandle | undefined;
  #tun: TunDevice | undefined;
  /** The TUNs of `[[instance]]`s (xtr), with their routing. */
  #instances: { readonly tun: TunDevice; readonly routing: InstanceRouting }[] = [];
  #udp4: DataSocket | undefined;
  #udp6: DataSocket | undefined;
  #boundData: Record<IpFamily, string | undefined> = { ipv4: undefined, ipv6: undefined };
  #rlocCheck: Promise<void> = Promise.resolve();

  readonly #db: LocalMapping[] = [];
  readonly #dbTable = new PrefixTable<LocalMapping>();
  #rtrLocators: LocalLocator[] = [];
  #localRlocs: LocalRloc[] = [];
  #ownIps = new Set<string>();
  /** Every usable address on this host's interfaces (an ELP hop that is us). */
  #hostIps: ReadonlySet<string> = new Set<string>();
  #itrRlocs: (IPv4Address | IPv6Address)[] = [];

  readonly #regs: RegState[] = [];
  readonly #regNonces = new Map<bigint, { state: RegState; at: number }>();

  /** NAT traversal (xtr, mn with `nat_traversal_support`): one per map-server with a key. */
  readonly #natProbes: NatProbe[] = [];
  readonly #infoNonces = new Map<bigint, NatProbe>();
  /** Behind a NAT (from the last Info-Reply), else undefined. */
  #nat: NatView | undefined;
  /** Whether an Info-Reply has told whether there is a NAT. */
  #natKnown = false;
  /** Catch-all prefixes pushed to the data plane while behind a NAT. */
  #natCatchAll: Prefix[] = [];
  /** rtr: `[[rtr-ms-node]]` keys by canonical map-server address. */
  readonly #rtrMsKeys = new Map<string, HmacKey>();
  /** rtr: relayed Map-Registers by nonce. */
  readonly #relays = new Map<bigint, Relay>();

  readonly #cache = new PrefixTable<CacheEntry>();
  readonly #lastMiss = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  #missTokens = MISS_RATE;
  #missAt = 0;

  readonly #probes = new Map<string, ProbeState>();
  readonly #peers = new Map<string, { iid: number; srcEid: string }>();

  readonly #timers: ReturnType<typeof setInterval>[] = [];
  #eventTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #syncTimers = new Set<ReturnType<typeof setTimeout>>();
  #eventsDone: Promise<void> = Promise.resolve();
  readonly #dpCounterKeys = new Set<string>();
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(
    mode: TunnelRouterMode,
    config: Config,
    deps: RoleDeps,
    options: TunnelRouterOptions,
  ) {
    this.mode = mode;
    this.#config = config;
    this.#deps = deps;
    this.#ownsPlatform = options.platform === undefined;
    this.#platform = options.platform ?? linuxPlatform();
    this.#startDataPlane = options.startDataPlane ?? defaultStartDataPlane;
    this.#peerPort = options.peerPort ?? (() => LISP_CONTROL_PORT);
    this.#nonce = options.nonce ?? randomNonce;
    this.xtrId = options.xtrId ?? randomXtrId();
    this.#siteId = options.siteId ?? 0n;
    this.#timing = { ...defaultTiming(config), ...options.timing };
    this.#batch = options.batch ?? 64;
    this.#pollMs = options.pollMs ?? 10;
    this.#journal = new Journal(deps.logger);
    this.#routing = new RouteSetup(this.#platform.net, this.#journal, deps.logger);
    if (mode !== "rtr") {
      for (const m of config.databaseMappings) {
        const prefix = tablePrefix(m.eidPrefix, m.iid);
        const lm: LocalMapping = {
          prefix,
          text: formatPrefix(prefix),
          config: m,
          locators: [],
          signature: "",
        };
        this.#db.push(lm);
        this.#dbTable.set(prefix, lm);
      }
    }
  }

  get controlPort(): number {
    return this.#cp?.port ?? 0;
  }

  // -------------------------------------------------------------------------
  // Start

  async start(): Promise<void> {
    const log = this.#deps.logger;
    const config = this.#config;
    this.#resolveAll(new HostSnapshot(this.#platform));
    this.#runPreflight();
    this.#controlAddress = this.#pickControlAddress();
    this.#cp = await this.#openControl(this.#controlAddress);
    this.#itrRlocs = this.#computeItrRlocs();
    this.#setupHost();
    await this.#openDataPlane();
    this.#installStatic();
    this.#registerCounters();
    // Registration.
    if (this.mode !== "rtr") {
      for (const ms of config.mapServers) {
        if (ms.key === undefined) log.error("map-server-without-key", { mapServer: ms.address });
      }
      for (const mapping of this.#db) this.#addRegs(mapping);
      if (config.natTraversalSupport) this.#startNat();
      for (const s of this.#regs) this.#expiredRegister(s);
    }
    for (const n of config.rtrMsNodes) {
      const ip = canonicalIp(n.address);
      if (ip !== undefined) this.#rtrMsKeys.set(ip, new HmacKey(n.keyType, n.key));
    }
    // Routines.
    const t = this.#timing;
    this.#timers.push(setInterval(() => this.#expiredSweep(), t.sweepMs));
    if (t.probeIntervalMs > 0) {
      this.#timers.push(setInterval(() => this.#expiredProbeRound(), t.probeIntervalMs));
    }
    this.#timers.push(setInterval(() => this.#syncRouting(), t.routeSyncMs));
    this.#timers.push(setInterval(() => this.#scanDataPlaneCounters(), DP_COUNTER_SCAN_MS));
    this.#eventsDone = this.#routineEvents();
    log.info("tunnel-router-up", {
      mode: this.mode,
      control: `${this.#controlAddress ?? "*"}:${this.controlPort}`,
      dataPort: config.dataPort,
      encapsulation: config.encapsulation,
      tun: [this.#tun, ...this.#instances.map((i) => i.tun)]
        .filter((t) => t !== undefined).map((t) => t.name).join(",") || undefined,
      mappings: this.#db.length,
      rlocs: [...this.#ownIps].join(","),
      xtrId: this.xtrId,
    });
  }

  /** Binds a control socket (all addresses when `address` is undefined) and sets its handlers. */
  async #openControl(address: string | undefined): Promise<ControlPlane> {
    const config = this.#config;
    const cp = await ControlPlane.open({
      logger: this.#deps.logger,
      counters: this.#deps.counters,
      ...(address !== undefined ? { address } : {}),
      port: config.controlPort,
      rateLimit: config.controlRateLimit,
      now: this.#deps.now,
    });
    cp.on("map-request", (r) => {
      if (r.message.type === "map-request") this.#mapRequest(r, r.message.msg);
    });
    cp.on("map-notify", (r) => {
      if (r.message.type !== "map-notify") return;
      if (this.mode === "rtr") this.#rtrMapNotify(r, r.message.msg);
      else this.#mapNotify(r, r.message.msg);
    });
    return cp;
  }

  #runPreflight(): void {
    const config = this.#config;
    const families = new Set<IpFamily>();
    if (this.mode === "rtr") {
      for (const f of config.rtrIfaces) families.add(f.ipVersion === 4 ? "ipv4" : "ipv6");
    } else {
      for (const m of this.#db) families.add(m.prefix.family === "ipv6" ? "ipv6" : "ipv4");
    }
    const ifaces = new Set<string>();
    for (const l of this.#allLocators()) if (l.iface) ifaces.add(l.iface);
    for (const m of config.databaseMappings) for (const f of m.rlocIfaces) ifaces.add(f.interface);
    for (const f of config.rtrIfaces) ifaces.add(f.iface);
    this.preflight = preflight((p) => this.#platform.readSysctl(p), {
      forwarding: this.mode !== "mn",
      families,
      rlocIfaces: [...ifaces],
    });
    for (const f of this.preflight) {
      this.#deps.logger.warn("preflight", {
        key: f.key,
        value: f.value,
        want: f.want,
        fix: f.fix,
        why: f.why,
      });
    }
  }

  /** `control-address`, else the first address of `control-iface`, else (mn) its first RLOC. */
  #pickControlAddress(): string | undefined {
    const c = this.#config;
    if (c.controlAddress !== undefined) return c.controlAddress;
    if (c.controlIface !== undefined) {
      const host = new HostSnapshot(this.#platform);
      const a = host.ifaceAddress(c.controlIface, "ipv4", c.ipv6Scope) ??
        host.ifaceAddress(c.controlIface, "ipv6", c.ipv6Scope);
      if (a !== undefined) return a.ip;
      this.#deps.logger.warn("control-iface-without-address", { iface: c.controlIface });
    }
    if (this.mode === "mn") {
      // Bound to the RLOC, Map-Registers and probes escape the /1 routes of the TUN.
      const mr = c.mapResolvers[0];
      const want = mr !== undefined ? familyOf(mr) : "ipv4";
      const ips = this.#allLocators().filter(onHost).map((l) => l.ip!);
      return ips.find((ip) => familyOf(ip) === want) ?? ips[0];
    }
    return undefined;
  }

  #setupHost(): void {
    const config = this.#config;
    const dests = config.destinationPrefixes.map(textPrefix);
    if (this.mode !== "rtr") {
      this.#tun = this.#platform.openTun(config.tunName, config.tunMtu);
      const tun = this.#tun;
      this.#journal.add("tun", `tun ${tun.name}`, () => tun.close());
      const eids = config.databaseMappings
        .filter((m) => !this.#hasInstance(m.iid))
        .map((m) => textPrefix(m.eidPrefix));
      if (this.mode === "xtr") this.#routing.setupXtr(tun.index, eids, dests);
      else this.#routing.setupMn(tun.index, eids, dests);
    }
    if (this.mode === "xtr") {
      for (const inst of config.instances) {
        const dev = this.#platform.openTun(inst.tunName, config.tunMtu);
        this.#journal.add(`tun ${inst.iid}`, `tun ${dev.name}`, () => dev.close());
        const families = new Set<IpFamily>();
        for (const m of config.databaseMappings) {
          if (m.iid === inst.iid) families.add(m.eidPrefix.family === 4 ? "ipv4" : "ipv6");
        }
        const routing: InstanceRouting = {
          iid: inst.iid,
          tunIndex: dev.index,
          tunName: dev.name,
          siteInterfaces: inst.siteInterfaces,
          families: [...families],
        };
        this.#instances.push({ tun: dev, routing });
        this.#routing.setupInstance(routing, dests);
      }
      this.#routing.syncInstanceTables(this.#instances.map((i) => i.routing));
    }
    this.#routing.syncRlocTables(this.#localRlocs);
    this.#deps.logger.info("host-configured", { changes: this.#journal.size });
  }

  /** Whether `iid` has an `[[instance]]` of its own (xtr). */
  #hasInstance(iid: number): boolean {
    return this.mode === "xtr" && this.#config.instances.some((i) => i.iid === iid);
  }

  /** Where a mobile node binds its data socket of `family`: its first RLOC of that family. */
  #dataBind(family: IpFamily): string | undefined {
    if (this.mode !== "mn") return undefined;
    return this.#allLocators().find((l) => onHost(l) && familyOf(l.ip!) === family)?.ip;
  }

  async #openDataPlane(): Promise<void> {
    const config = this.#config;
    // A mobile node binds its data sockets to its RLOCs (see the module notes).
    this.#boundData = { ipv4: this.#dataBind("ipv4"), ipv6: this.#dataBind("ipv6") };
    const open = (family: IpFamily): DataSocket | undefined => {
      try {
        return this.#platform.openUdp(family, config.dataPort, this.#boundData[family]);
      } catch (e) {
        this.#deps.logger.warn("data-socket-unavailable", { family, error: errText(e) });
        return undefined;
      }
    };
    this.#udp4 = open("ipv4");
    this.#udp6 = open("ipv6");
    if (this.#udp4 === undefined && this.#udp6 === undefined) {
      throw new Error(`no data socket could be bound to port ${config.dataPort}`);
    }
    this.#dp = await this.#startDataPlane({
      mode: this.mode === "rtr" ? "rtr" : "xtr",
      encapsulation: config.encapsulation,
      tunFd: this.#tun?.fd ?? -1,
      instanceTuns: this.#instances.map((i) => ({ fd: i.tun.fd, iid: i.routing.iid })),
      udp4Fd: this.#udp4?.fd ?? -1,
      udp6Fd: this.#udp6?.fd ?? -1,
      batch: this.#batch,
      pollMs: this.#pollMs,
    }, {
      onMiss: (iid, dst, src) => this.#miss(iid, dst, src),
      onPeer: (rloc, iid, srcEid) => this.#peer(rloc, iid, srcEid),
      onControl: (bytes, address, port) => this.#dataPortControl(bytes, { address, port }),
      onStopped: (error) => {
        if (this.#closed) return;
        this.#deps.logger.error("dataplane-stopped", { error: error ?? "stopped" });
      },
    });
    this.#dp.setLocal(this.#db.map((m) => m.prefix));
    const petr = (list: Config["proxyEtrsIpv4"]): DataLocator[] =>
      list.map((p) => ({ address: p.address, priority: p.priority, weight: p.weight, up: true }));
    this.#dp.setPetrs(petr(config.proxyEtrsIpv4), petr(config.proxyEtrsIpv6));
  }

  /**
   * A mobile node whose RLOC changed binds again: a new control socket
   * (unless `control-address`/`control-iface` fix it) and a new data plane
   * on sockets bound to the new RLOC, given the whole map-cache again.
   */
  async #rebindMn(): Promise<void> {
    const log = this.#deps.logger;
    const c = this.#config;
    if (c.controlAddress === undefined && c.controlIface === undefined) {
      const want = this.#pickControlAddress();
      if (want !== undefined && want !== this.#controlAddress) {
        const old = this.#cp;
        try {
          this.#cp = await this.#openControl(want);
          this.#controlAddress = want;
          old?.close();
          log.info("control-rebound", { address: want, port: this.#cp.port });
        } catch (e) {
          log.warn("control-rebind-failed", { address: want, error: errText(e) });
        }
        this.#itrRlocs = this.#computeItrRlocs();
      }
    }
    const same = this.#dataBind("ipv4") === this.#boundData.ipv4 &&
      this.#dataBind("ipv6") === this.#boundData.ipv6;
    if (same || this.#closed) return;
    const old = this.#dp;
    this.#dp = undefined;
    try {
      await old?.stop();
    } catch (e) {
      log.warn("dataplane-stop-failed", { error: errText(e) });
    }
    this.#udp4?.close();
    this.#udp6?.close();
    this.#udp4 = this.#udp6 = undefined;
    try {
      await this.#openDataPlane();
    } catch (e) {
      log.error("dataplane-rebind-failed", { error: errText(e) });
      return;
    }
    const dp = this.#dp as DataPlaneHandle | undefined;
    for (const { value } of this.#cache.entries()) dp?.setMapping(this.#toData(value));
    log.info("dataplane-rebound", {
      ipv4: this.#boundData.ipv4 ?? "*",
      ipv6: this.#boundData.ipv6 ?? "*",
    });
  }

  /** The map-cache entry of a `[[static-map-cache]]` (locators of unknown ELPs left out). */
  #staticEntry(s: StaticMapCacheEntry): CacheEntry {
    const locators: LocatorRecord[] = [];
    for (const r of s.rlocAddresses) {
      const address = r.kind === "address"
        ? ipAddress(r.address)
        : elpAddress(r.elpName, this.#config);
      if (address === undefined) continue;
      locators.push({
        priority: r.priority,
        weight: r.weight,
        mPriority: 255,
        mWeight: 0,
        local: false,
        probed: false,
        reachable: true,
        address,
      });
    }
    return {
      prefix: tablePrefix(s.eidPrefix, s.iid),
      static: true,
      action: "encapsulate",
      locators,
      ttl: TTL_FOREVER,
      expiresAt: Infinity,
    };
  }

  #installStatic(): void {
    const now = this.#deps.now();
    for (const s of this.#config.staticMapCache) this.#install(this.#staticEntry(s), now);
  }

  #registerCounters(): void {
    const c = this.#deps.counters;
    const count = (kind: "positive" | "negative" | "static") => () => {
      let n = 0;
      for (const { value: e } of this.#cache.entries()) if (kindOf(e) === kind) n++;
      return n;
    };
    for (const kind of ["positive", "negative", "static"] as const) {
      c.gauge("oor_tr_map_cache_entries", count(kind), { kind });
    }
    c.gauge("oor_tr_registered", () => this.#regs.filter((s) => s.notified).length);
    c.gauge("oor_tr_locators_down", () => {
      let n = 0;
      for (const p of this.#probes.values()) if (!p.up) n++;
      return n;
    });
  }

  #scanDataPlaneCounters(): void {
    const dp = this.#dp;
    if (dp === undefined) return;
    for (const k of Object.keys(dp.counters())) {
      if (this.#dpCounterKeys.has(k)) continue;
      this.#dpCounterKeys.add(k);
      const brace = k.indexOf("{");
      const name = brace < 0 ? k : k.slice(0, brace);
      const series = name.startsWith("oor_") ? k : `oor_dataplane_${k}`;
      this.#deps.counters.gauge(series, () => this.#dp?.counters()[k] ?? 0);
    }
  }

  // -------------------------------------------------------------------------
  // Locators

  #allLocators(): LocalLocator[] {
    if (this.mode === "rtr") return this.#rtrLocators;
    const out: LocalLocator[] = [];
    for (const m of this.#db) out.push(...m.locators);
    return out;
  }

  /** Resolves every locator; returns the mappings whose locators changed. */
  #resolveAll(host: HostSnapshot): LocalMapping[] {
    const config = this.#config;
    const changed: LocalMapping[] = [];
    if (this.mode === "rtr") {
      this.#rtrLocators = resolveLocators([], config.rtrIfaces, host, config);
    }
    for (const m of this.#db) {
      const ls = resolveLocators(m.config.rlocAddresses, rlocIfaceList(m.config), host, config);
      const sig = locatorSignature(ls);
      if (sig !== m.signature) {
        changed.push(m);
        m.locators = ls;
        m.signature = sig;
      }
    }
    const rlocs: LocalRloc[] = [];
    const own = new Set<string>();
    const seen = new Set<string>();
    for (const l of this.#allLocators()) {
      if (l.ip === undefined) continue;
      own.add(l.ip);
      if (l.index === undefined || seen.has(l.ip)) continue;
      seen.add(l.ip);
      rlocs.push({ address: l.ip, family: familyOf(l.ip), index: l.index });
    }
    this.#localRlocs = rlocs;
    this.#ownIps = own;
    const hostIps = host.ips();
    const moved = hostIps.size !== this.#hostIps.size ||
      [...hostIps].some((ip) => !this.#hostIps.has(ip));
    this.#hostIps = hostIps;
    if (moved) {
      // Our place on an explicit locator path may have changed.
      for (const { value } of this.#cache.entries()) {
        if (value.locators.some((l) => l.address.kind === "elp")) {
          this.#dp?.setMapping(this.#toData(value));
        }
      }
    }
    return changed;
  }

  /** Our ITR-RLOCs: see the module notes. */
  #computeItrRlocs(): (IPv4Address | IPv6Address)[] {
    if (this.#controlAddress !== undefined) return [ipAddress(this.#controlAddress)];
    const ips: string[] = [];
    // Remote RLOCs (on no local interface) are registered, but replies to
    // our requests must come here: only locators on this host are ITR-RLOCs.
    const sorted = [...this.#allLocators()].sort((a, b) => a.priority - b.priority);
    for (const l of sorted) if (onHost(l) && !ips.includes(l.ip!)) ips.push(l.ip!);
    const mr = this.#config.mapResolvers[0];
    const preferred = mr !== undefined ? this.#platform.routeSource(mr) : undefined;
    const p = preferred !== undefined ? canonicalIp(preferred) : undefined;
    if (p !== undefined && ips.includes(p)) {
      ips.splice(ips.indexOf(p), 1);
      ips.unshift(p);
    }
    return ips.slice(0, MAX_ITR_RLOCS).map((ip) => ipAddress(ip));
  }

  /** Whether the control socket can send to `ip`'s family. */
  #canSend(ip: string): boolean {
    const bound = this.#controlAddress;
    return bound === undefined || isIPv4(bound) === isIPv4(ip);
  }

  async #routineEvents(): Promise<void> {
    const signal = this.#abort.signal;
    try {
      for await (const e of this.#platform.events(signal)) {
        if (this.#closed) break;
        this.#netlinkEvent(e);
      }
    } catch (e) {
      if (!this.#closed) this.#deps.logger.error("netlink-events-failed", { error: errText(e) });
    }
  }

  #netlinkEvent(e: NetlinkEvent): void {
    if (this.#deps.logger.enabled("debug")) {
      const what = e.kind === "link"
        ? `${e.change} link ${e.link.name} up=${e.link.up} running=${e.link.running}`
        : e.kind === "address"
        ? `${e.change} address ${e.address.address} index ${e.address.index}`
        : "overflow";
      this.#deps.logger.debug("netlink-event", { what });
    }
    if (this.#eventTimer !== undefined) clearTimeout(this.#eventTimer);
    this.#eventTimer = setTimeout(() => {
      this.#eventTimer = undefined;
      this.#rlocCheck = this.#rlocCheck.then(() => this.#expiredRlocCheck());
    }, this.#timing.eventDebounceMs);
  }

  /** Timer: locators are resolved again after netlink events (one run at a time). */
  async #expiredRlocCheck(): Promise<void> {
    if (this.#closed) return;
    let changed: LocalMapping[];
    const rtrBefore = locatorSignature(this.#rtrLocators);
    try {
      changed = this.#resolveAll(new HostSnapshot(this.#platform));
    } catch (e) {
      this.#deps.logger.error("rloc-resolution-failed", { error: errText(e) });
      return;
    }
    this.#itrRlocs = this.#computeItrRlocs();
    this.#syncRouting();
    // Routes through a link that just came up are re-added by others a
    // moment later: check the per-RLOC tables again shortly.
    for (const ms of [1_000, 3_000]) {
      const t = setTimeout(() => {
        this.#syncTimers.delete(t);
        this.#syncRouting();
      }, ms);
      this.#syncTimers.add(t);
    }
    const rtrChanged = this.mode === "rtr" && locatorSignature(this.#rtrLocators) !== rtrBefore;
    if (changed.length === 0 && !rtrChanged) return;
    if (this.mode === "mn") await this.#rebindMn();
    if (this.#closed) return;
    const c = this.#deps.counters;
    c.inc("oor_tr_rloc_changes_total");
    for (const m of changed) {
      this.#deps.logger.info("rlocs-changed", {
        prefix: m.text,
        rlocs: m.locators.map((l) => addressToString(l.address)).join(",") || "none",
      });
    }
    if (rtrChanged) {
      this.#deps.logger.info("rlocs-changed", {
        prefix: "rtr",
        rlocs: this.#rtrLocators.map((l) => addressToString(l.address)).join(",") || "none",
      });
    }
    for (const s of this.#regs) {
      if (changed.includes(s.mapping)) this.#registerNow(s);
    }
    if (changed.length > 0) this.#sendSmrs(changed);
  }

  #syncRouting(): void {
    if (this.#closed) return;
    try {
      this.#routing.syncRlocTables(this.#localRlocs);
    } catch (e) {
      this.#deps.logger.warn("rloc-tables-failed", { error: errText(e) });
    }
    try {
      this.#routing.syncInstanceTables(this.#instances.map((i) => i.routing));
    } catch (e) {
      this.#deps.logger.warn("instance-tables-failed", { error: errText(e) });
    }
  }

  // -------------------------------------------------------------------------
  // Registration

  #record(m: LocalMapping, ttl: number, probeReply = false): EidRecord {
    const bound = this.#controlAddress;
    const locators: LocatorRecord[] = m.locators.map((l) => ({
      priority: l.priority,
      weight: l.weight,
      mPriority: 255,
      mWeight: 0,
      local: true,
      probed: probeReply && l.ip !== undefined && l.ip === bound,
      reachable: true,
      address: l.address,
    }));
    return {
      ttl,
      maskLen: m.prefix.len,
      action: locators.length > 0 ? ACTION.NO_ACTION : ACTION.DROP_NO_REASON,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(m.prefix),
      locators,
    };
  }

  #sendRegister(s: RegState, withdraw: boolean): void {
    const cp = this.#cp;
    if (cp === undefined) return;
    if (this.#nat !== undefined) return this.#sendNatRegister(s, withdraw, this.#nat);
    const nonce = this.#nonce();
    const reg: MapRegister = {
      proxyReply: s.ms.proxyReply,
      securityCapable: false,
      xtrIdPresent: true,
      rtr: false,
      eidNotify: false,
      useTtlForTimeout: false,
      mergeRequest: false,
      mobileNode: this.mode === "mn",
      wantMapNotify: !withdraw,
      nonce,
      keyId: s.key.keyId,
      authData: new Uint8Array(0),
      records: [this.#record(s.mapping, withdraw ? 0 : s.mapping.config.ttl)],
      xtrId: this.xtrId,
      siteId: this.#siteId,
    };
    cp.send(emitSignedMapRegister(reg, s.key), s.peer);
    s.sent++;
    s.lastSentAt = this.#deps.now();
    this.#deps.counters.inc("oor_tr_map_registers_sent_total", {
      kind: withdraw ? "withdraw" : "register",
    });
    if (withdraw) {
      s.withdrawn = true;
      this.#deps.logger.info("registration-withdrawn", {
        prefix: s.mapping.text,
        mapServer: s.ms.address,
      });
      return;
    }
    s.withdrawn = false;
    const now = this.#deps.now();
    this.#regNonces.set(nonce, { state: s, at: now });
    for (const [n, v] of this.#regNonces) {
      if (now - v.at < REGISTER_NONCE_MS) break;
      this.#regNonces.delete(n);
    }
  }

  /** Timer: sends (or, with no locator, withdraws) a mapping's Map-Register and schedules the next. */
  #expiredRegister(s: RegState): void {
    s.timer = undefined;
    if (this.#closed) return;
    if (this.#natWaiting()) return; // registered once the first Info-Reply (or its failure) says how
    if (this.#nat !== undefined && !s.notified && s.attempts >= 2) this.#infoNow(); // RTR or NAT gone?
    if (s.mapping.locators.length === 0) {
      if (!s.withdrawn && s.sent > 0) this.#sendRegister(s, true);
      this.#deps.logger.limited(
        `no-locators ${s.mapping.text}`,
        60_000,
        "warn",
        "mapping-without-locators",
        { prefix: s.mapping.text },
      );
      return; // registered again when a locator appears
    }
    this.#sendRegister(s, false);
    this.#scheduleRegister(s);
  }

  #scheduleRegister(s: RegState): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    const t = this.#timing;
    const delay = s.notified
      ? t.registerIntervalMs
      : Math.min(t.registerIntervalMs, t.registerRetryMs * 2 ** Math.min(s.attempts, 20));
    if (!s.notified) s.attempts++;
    s.timer = setTimeout(() => this.#expiredRegister(s), delay);
  }

  /** Registration state of `mapping` with every map-server that has a key (not started). */
  #addRegs(mapping: LocalMapping): RegState[] {
    const added: RegState[] = [];
    for (const ms of this.#config.mapServers) {
      if (ms.key === undefined) continue;
      const s: RegState = {
        ms,
        key: new HmacKey(ms.keyType, ms.key),
        mapping,
        peer: { address: ms.address, port: this.#peerPort(ms.address) },
        notified: false,
        attempts: 0,
        sent: 0,
        lastNotifyAt: null,
        lastSentAt: null,
        withdrawn: false,
        timer: undefined,
      };
      this.#regs.push(s);
      added.push(s);
    }
    return added;
  }

  #registerNow(s: RegState): void {
    if (s.timer !== undefined) clearTimeout(s.timer);
    s.notified = false;
    s.attempts = 0;
    this.#expiredRegister(s);
  }

  #mapNotify(r: Received, m: MapNotify): void {
    const c = this.#deps.counters;
    const pending = this.#regNonces.get(m.nonce);
    if (pending === undefined) {
      c.inc("oor_tr_map_notifies_total", { result: "unmatched" });
      this.#deps.logger.limited(
        `map-notify-unmatched ${r.from.address}`,
        60_000,
        "debug",
        "map-notify-unmatched",
        { peer: formatPeer(r.from), nonce: m.nonce },
      );
      return;
    }
    const s = pending.state;
    if (m.keyId !== s.key.keyId || authStatus(r.bytes, s.key) !== "ok") {
      c.inc("oor_tr_map_notifies_total", { result: "auth" });
      this.#deps.logger.limited(
        `map-notify-auth ${r.from.address}`,
        60_000,
        "warn",
        "map-notify-rejected",
        { peer: formatPeer(r.from), reason: "authentication", mapServer: s.ms.address },
      );
      return;
    }
    this.#regNonces.delete(m.nonce);
    c.inc("oor_tr_map_notifies_total", { result: "ok" });
    const first = !s.notified;
    s.notified = true;
    s.attempts = 0;
    s.lastNotifyAt = this.#deps.now();
    if (first) {
      this.#deps.logger.info("registered", {
        prefix: s.mapping.text,
        mapServer: s.ms.address,
        rlocs: s.mapping.locators.map((l) => addressToString(l.address)).join(","),
        ...(this.#nat !== undefined
          ? { via: this.#nat.rtrs.join(","), global: `${this.#nat.global}:${this.#nat.port}` }
          : {}),
      });
      this.#scheduleRegister(s); // from quick retries to the refresh period
    }
  }

  // -------------------------------------------------------------------------
  // NAT traversal (draft-ietf-lisp-nat-traversal; see the module notes)

  /** Sets up one Info-Request probe per map-server with a key and sends the first ones. */
  #startNat(): void {
    if (this.#db.length === 0) return;
    for (const ms of this.#config.mapServers) {
      if (ms.key === undefined) continue;
      this.#natProbes.push({
        ms,
        key: new HmacKey(ms.keyType, ms.key),
        peer: { address: ms.address, port: this.#peerPort(ms.address) },
        pending: undefined,
        failures: 0,
        lastReplyAt: null,
        timer: undefined,
      });
    }
    for (const p of this.#natProbes) this.#expiredInfoRequest(p);
  }

  /** Whether registration waits for the first Info-Reply (or for Info-Requests to fail). */
  #natWaiting(): boolean {
    return this.#natProbes.length > 0 && !this.#natKnown &&
      this.#natProbes.some((p) => p.failures < NAT_MAX_FAILURES);
  }

  /** Sends an Info-Request to every map-server now (re-discovery after a failure). */
  #infoNow(): void {
    for (const p of this.#natProbes) {
      if (p.pending !== undefined) continue; // one in flight already
      if (p.timer !== undefined) clearTimeout(p.timer);
      this.#expiredInfoRequest(p);
    }
  }

  /**
   * Timer: sends an Info-Request to `p`'s map-server from the data port
   * (so that its answer shows the NAT binding the data uses), signed with
   * that map-server's key, and schedules the next: the keepalive period
   * once answered, quick doubling retries while not.
   */
  #expiredInfoRequest(p: NatProbe): void {
    p.timer = undefined;
    if (this.#closed) return;
    if (p.pending !== undefined) {
      this.#infoNonces.delete(p.pending);
      p.pending = undefined;
      p.failures++;
      this.#deps.counters.inc("oor_tr_info_request_timeouts_total");
      if (p.failures === NAT_MAX_FAILURES) {
        this.#deps.logger.warn("nat-info-request-timeout", {
          mapServer: p.ms.address,
          attempts: p.failures,
          behindNat: this.#nat !== undefined,
        });
        // No word from any map-server: register directly until one answers again.
        if (this.#natProbes.every((x) => x.failures >= NAT_MAX_FAILURES)) {
          this.#setNat(undefined, p);
          for (const s of this.#regs) {
            if (s.timer === undefined && !s.notified) this.#registerNow(s);
          }
        }
      }
    }
    const mapping = this.#db[0];
    const dp = this.#dp;
    if (mapping !== undefined && dp?.sendControl !== undefined) {
      const nonce = this.#nonce();
      const req: InfoRequest = {
        reply: false,
        nonce,
        keyId: p.key.keyId,
        authData: new Uint8Array(p.key.digestLength),
        ttl: 0,
        maskLen: mapping.prefix.len,
        eid: prefixEid(mapping.prefix),
        address: NO_ADDRESS,
      };
      const bytes = emitInfo(req);
      signAuthenticated(bytes, p.key);
      dp.sendControl(bytes, p.peer.address, p.peer.port);
      p.pending = nonce;
      this.#infoNonces.set(nonce, p);
      this.#deps.counters.inc("oor_tr_info_requests_sent_total");
    }
    const t = this.#timing;
    const delay = p.failures === 0 && p.lastReplyAt !== null
      ? t.natKeepaliveMs
      : Math.min(t.natKeepaliveMs, t.natRetryMs * 2 ** Math.min(p.failures, 10));
    p.timer = setTimeout(() => this.#expiredInfoRequest(p), delay);
  }

  /** A control message that came in on the data port (Info-Reply; ECM from or to an RTR). */
  #dataPortControl(bytes: Uint8Array, from: Peer): void {
    if (this.#closed) return;
    const c = this.#deps.counters;
    let msg;
    try {
      msg = parseControlMessage(bytes);
      if (msg.type === "ecm") {
        const ecm = msg.msg;
        const inner = parseControlMessage(ecm.payload);
        if (this.mode === "rtr" && ecm.forRtr && inner.type === "map-register") {
          return this.#rtrRelayRegister(from, ecm);
        }
        if (this.mode !== "rtr" && ecm.rtrRelayed && inner.type === "map-notify") {
          c.inc("oor_tr_data_port_control_total", { type: "map-notify" });
          return this.#mapNotify({ message: inner, bytes: ecm.payload, from, ecm }, inner.msg);
        }
      } else if (msg.type === "info-reply" && this.mode !== "rtr") {
        c.inc("oor_tr_data_port_control_total", { type: "info-reply" });
        return this.#infoReply(bytes, msg.msg, from);
      }
    } catch (e) {
      if (!(e instanceof WireError)) throw e;
      c.inc("oor_tr_data_port_control_total", { type: "malformed" });
      return;
    }
    c.inc("oor_tr_data_port_control_total", { type: "ignored" });
  }

  /** An Info-Reply: checks it and takes the NAT view it gives. */
  #infoReply(bytes: Uint8Array, m: InfoReply, from: Peer): void {
    const p = this.#infoNonces.get(m.nonce);
    const log = this.#deps.logger;
    if (p === undefined || m.keyId !== p.key.keyId || authStatus(bytes, p.key) !== "ok") {
      this.#deps.counters.inc("oor_tr_info_replies_total", {
        result: p === undefined ? "unmatched" : "auth",
      });
      log.limited(`info-reply-rejected ${from.address}`, 60_000, "warn", "info-reply-rejected", {
        peer: formatPeer(from),
        reason: p === undefined ? "unknown nonce" : "authentication",
      });
      return;
    }
    this.#infoNonces.delete(m.nonce);
    this.#deps.counters.inc("oor_tr_info_replies_total", { result: "ok" });
    p.pending = undefined;
    p.failures = 0;
    p.lastReplyAt = this.#deps.now();
    const g = m.nat.globalEtr;
    if (g.kind !== "ipv4" && g.kind !== "ipv6") return;
    const rtrs: string[] = [];
    for (const r of m.nat.rtrs) {
      if ((r.kind === "ipv4" || r.kind === "ipv6") && !rtrs.includes(r.ip)) rtrs.push(r.ip);
      if (rtrs.length >= MAX_RTRS) break;
    }
    const natted = !this.#ownIps.has(g.ip) || m.nat.etrPort !== this.#config.dataPort;
    if (natted && rtrs.length === 0) {
      log.limited("nat-without-rtrs", 60_000, "warn", "nat-without-rtrs", {
        mapServer: p.ms.address,
        global: `${g.ip}:${m.nat.etrPort}`,
      });
    }
    this.#setNat(
      natted && rtrs.length > 0 ? { global: g.ip, port: m.nat.etrPort, rtrs } : undefined,
      p,
    );
  }

  /** Takes a new NAT view: logs a change, moves the data plane and the registrations over. */
  #setNat(next: NatView | undefined, p: NatProbe): void {
    const prev = this.#nat;
    const sig = (v: NatView | undefined) =>
      v === undefined ? "" : `${v.global}:${v.port} ${v.rtrs}`;
    const firstAnswer = !this.#natKnown;
    this.#natKnown = true;
    if (sig(prev) === sig(next)) {
      if (firstAnswer) {
        this.#deps.logger.info("nat-not-detected", { mapServer: p.ms.address });
        for (const s of this.#regs) this.#registerNow(s);
      }
      return;
    }
    this.#nat = next;
    const log = this.#deps.logger;
    this.#deps.counters.inc("oor_tr_nat_changes_total");
    if (next === undefined) {
      log.info("nat-gone", { mapServer: p.ms.address, was: `${prev!.global}:${prev!.port}` });
    } else if (prev === undefined) {
      log.info("nat-detected", {
        mapServer: p.ms.address,
        global: `${next.global}:${next.port}`,
        rtrs: next.rtrs.join(","),
      });
    } else {
      log.info("nat-global-rloc-changed", {
        mapServer: p.ms.address,
        from: `${prev.global}:${prev.port}`,
        to: `${next.global}:${next.port}`,
        rtrs: next.rtrs.join(","),
      });
    }
    this.#pushNatCatchAll();
    for (const { value } of this.#cache.entries()) this.#dp?.setMapping(this.#toData(value));
    for (const s of this.#regs) this.#registerNow(s);
  }

  /**
   * Behind a NAT everything goes to the RTRs: a catch-all entry per
   * instance id and family of the local prefixes (more specific map-cache
   * entries point at the RTRs too, see #toData). Without a NAT they go.
   */
  #pushNatCatchAll(): void {
    const dp = this.#dp;
    for (const p of this.#natCatchAll) {
      const e = this.#cache.get(p);
      if (e !== undefined) dp?.setMapping(this.#toData(e));
      else dp?.deleteMapping(p);
    }
    this.#natCatchAll = [];
    const nat = this.#nat;
    if (nat === undefined) return;
    const seen = new Set<string>();
    for (const m of this.#db) {
      if (m.prefix.family === "mac") continue;
      const text = m.prefix.family === "ipv4" ? "0.0.0.0/0" : "::/0";
      const p = parsePrefix(text, m.prefix.iid);
      if (p === undefined || seen.has(formatPrefix(p))) continue;
      seen.add(formatPrefix(p));
      this.#natCatchAll.push(p);
      dp?.setMapping({ prefix: p, action: "encapsulate", locators: natLocators(nat) });
    }
  }

  /**
   * Behind a NAT: the Map-Register goes to each RTR, from the data port,
   * in an ECM with the R bit whose inner header runs from our private RLOC
   * to the map-server. Its record lists the RTRs as locators (what public
   * ITRs must encapsulate to), with the P bit (the map-server answers for
   * us: Map-Requests cannot reach us) and the R and I bits.
   */
  #sendNatRegister(s: RegState, withdraw: boolean, nat: NatView): void {
    const dp = this.#dp;
    const msIp = canonicalIp(s.ms.address);
    const v4 = msIp !== undefined && isIPv4(msIp);
    const priv = s.mapping.locators.find((l) => l.ip !== undefined && isIPv4(l.ip) === v4)?.ip;
    if (dp?.sendControl === undefined || msIp === undefined || priv === undefined) return;
    const base = s.mapping.locators[0]!;
    const rec = this.#record(s.mapping, withdraw ? 0 : s.mapping.config.ttl);
    const record: EidRecord = {
      ...rec,
      locators: nat.rtrs.map((ip) => ({
        priority: base.priority,
        weight: base.weight,
        mPriority: 255,
        mWeight: 0,
        local: false,
        probed: false,
        reachable: true,
        address: ipAddress(ip),
      })),
    };
    const now = this.#deps.now();
    for (const rtr of nat.rtrs) {
      if (isIPv4(rtr) !== v4) continue;
      const nonce = this.#nonce();
      const reg: MapRegister = {
        proxyReply: true,
        securityCapable: false,
        xtrIdPresent: true,
        rtr: true,
        eidNotify: false,
        useTtlForTimeout: false,
        mergeRequest: false,
        mobileNode: this.mode === "mn",
        wantMapNotify: !withdraw,
        nonce,
        keyId: s.key.keyId,
        authData: new Uint8Array(0),
        records: [record],
        xtrId: this.xtrId,
        siteId: this.#siteId,
      };
      const ecm = emitEcm({
        security: false,
        ddtOriginated: false,
        forRtr: true,
        rtrRelayed: false,
        inner: {
          src: priv,
          dst: msIp,
          srcPort: LISP_CONTROL_PORT,
          dstPort: LISP_CONTROL_PORT,
          ttl: 64,
        },
        payload: emitSignedMapRegister(reg, s.key),
      });
      dp.sendControl(ecm, rtr, this.#config.dataPort);
      if (!withdraw) this.#regNonces.set(nonce, { state: s, at: now });
    }
    s.sent++;
    s.lastSentAt = now;
    this.#deps.counters.inc("oor_tr_map_registers_sent_total", {
      kind: withdraw ? "withdraw" : "register",
    });
    s.withdrawn = withdraw;
    if (withdraw) {
      this.#deps.logger.info("registration-withdrawn", {
        prefix: s.mapping.text,
        mapServer: s.ms.address,
        via: nat.rtrs.join(","),
      });
    }
    for (const [n, v] of this.#regNonces) {
      if (now - v.at < REGISTER_NONCE_MS) break;
      this.#regNonces.delete(n);
    }
  }

  /**
   * rtr: an ECM'd Map-Register from an xTR behind a NAT, on the data
   * port. Relayed to its map-server (the inner destination, which must be
   * an `[[rtr-ms-node]]`) in an ECM with the N bit, the inner header kept;
   * the outer source (the xTR's translated address and port) is kept for
   * the Map-Notify.
   */
  #rtrRelayRegister(from: Peer, ecm: Ecm): void {
    const cp = this.#cp;
    const c = this.#deps.counters;
    const ms = canonicalIp(ecm.inner.dst);
    if (cp === undefined || ms === undefined || !this.#rtrMsKeys.has(ms)) {
      c.inc("oor_tr_rtr_relays_total", { result: "unknown-map-server" });
      this.#deps.logger.limited(
        `rtr-relay-refused ${from.address}`,
        60_000,
        "warn",
        "rtr-relay-refused",
        { peer: formatPeer(from), mapServer: ecm.inner.dst, reason: "no [[rtr-ms-node]]" },
      );
      return;
    }
    const nonce = (ecm.payload.length >= 12)
      ? new DataView(ecm.payload.buffer, ecm.payload.byteOffset + 4, 8).getBigUint64(0, false)
      : 0n;
    const now = this.#deps.now();
    if (this.#relays.size >= MAX_RELAYS) {
      const oldest = this.#relays.keys().next();
      if (!oldest.done) this.#relays.delete(oldest.value);
    }
    this.#relays.delete(nonce);
    this.#relays.set(nonce, { xtr: from, inner: ecm.inner, ms, at: now });
    for (const [n, v] of this.#relays) {
      if (now - v.at < REGISTER_NONCE_MS) break;
      this.#relays.delete(n);
    }
    cp.send(
      emitEcm({ ...ecm, security: false, forRtr: false, rtrRelayed: true }),
      { address: ms, port: this.#peerPort(ms) },
    );
    c.inc("oor_tr_rtr_relays_total", { result: "map-register" });
    if (this.#deps.logger.enabled("debug")) {
      this.#deps.logger.debug("rtr-map-register-relayed", {
        xtr: formatPeer(from),
        private: ecm.inner.src,
        mapServer: ms,
      });
    }
  }

  /**
   * rtr: the Map-Notify answering a relayed Map-Register. Its MS-RTR
   * authentication is checked with the `[[rtr-ms-node]]` key; then each
   * record becomes a map-cache entry towards the xTR's translated address
   * and port, and the Map-Notify, without its MS-RTR part, goes on to the
   * xTR in an ECM with the N bit, from the data port to that address and
   * port (back through the NAT binding its Map-Register opened).
   */
  #rtrMapNotify(r: Received, m: MapNotify): void {
    const c = this.#deps.counters;
    const relay = this.#relays.get(m.nonce);
    const key = relay !== undefined ? this.#rtrMsKeys.get(relay.ms) : undefined;
    const fromMs = relay !== undefined && canonicalIp(r.from.address) === relay.ms;
    if (relay === undefined || key === undefined || !fromMs || !msRtrAuthOk(r.bytes, m, key)) {
      const result = relay === undefined ? "unmatched" : "auth";
      c.inc("oor_tr_rtr_relays_total", { result: `map-notify-${result}` });
      this.#deps.logger.limited(
        `rtr-map-notify-rejected ${r.from.address}`,
        60_000,
        "warn",
        "rtr-map-notify-rejected",
        { peer: formatPeer(r.from), reason: result },
      );
      return;
    }
    this.#relays.delete(m.nonce);
    const now = this.#deps.now();
    const xtrIp = canonicalIp(relay.xtr.address);
    for (const rec of m.records) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined || xtrIp === undefined) continue;
      const old = this.#cache.get(p);
      if (old?.static) continue;
      if (rec.ttl === 0) {
        if (old !== undefined) {
          this.#cache.delete(p);
          this.#dp?.deleteMapping(p);
        }
        continue;
      }
      const entry: CacheEntry = {
        prefix: p,
        static: false,
        action: "encapsulate",
        locators: [{
          priority: 1,
          weight: 100,
          mPriority: 255,
          mWeight: 0,
          local: false,
          probed: false,
          reachable: true,
          address: ipAddress(xtrIp),
        }],
        ttl: rec.ttl,
        expiresAt: now + RTR_NAT_ENTRY_MS,
        from: formatPeer(relay.xtr),
        natPort: relay.xtr.port,
      };
      const changed = old?.natPort !== relay.xtr.port || old.from !== entry.from;
      this.#install(entry, now);
      if (changed) {
        this.#deps.logger.info("rtr-nat-xtr-registered", {
          prefix: formatPrefix(p),
          xtr: formatPeer(relay.xtr),
          private: relay.inner.src,
          mapServer: relay.ms,
        });
      }
    }
    const inner = relay.inner;
    this.#dp?.sendControl?.(
      emitEcm({
        security: false,
        ddtOriginated: false,
        forRtr: false,
        rtrRelayed: true,
        inner: {
          src: inner.dst,
          dst: inner.src,
          srcPort: inner.dstPort,
          dstPort: inner.srcPort,
          ttl: 64,
        },
        payload: withoutMsRtr(m),
      }),
      relay.xtr.address,
      relay.xtr.port,
    );
    c.inc("oor_tr_rtr_relays_total", { result: "map-notify" });
  }

  // -------------------------------------------------------------------------
  // Map-cache

  #toData(e: CacheEntry): DataMapping {
    const nat = this.#nat;
    if (nat !== undefined && e.action === "encapsulate") {
      return { prefix: e.prefix, action: e.action, locators: natLocators(nat) };
    }
    const locators: DataLocator[] = [];
    for (const l of e.locators) {
      const ip = locatorIp(l.address, this.#hostIps);
      if (ip === undefined) continue;
      locators.push({
        address: ip,
        priority: l.priority,
        weight: l.weight,
        up: l.reachable && this.#probes.get(ip)?.up !== false,
        ...(e.natPort !== undefined ? { port: e.natPort } : {}),
      });
    }
    return { prefix: e.prefix, action: e.action, locators };
  }

  #install(e: CacheEntry, now: number): void {
    this.#cache.set(e.prefix, e);
    this.#dp?.setMapping(this.#toData(e));
    if (this.#deps.logger.enabled("debug")) {
      this.#deps.logger.debug("map-cache-set", {
        prefix: formatPrefix(e.prefix),
        action: e.action,
        rlocs: e.locators.map((l) => addressToString(l.address)).join(","),
        ttl: e.static ? "static" : e.ttl,
        expiresIn: Number.isFinite(e.expiresAt) ? e.expiresAt - now : undefined,
      });
    }
    // Locators known to be down get a probe at once: they may be back.
    for (const l of e.locators) {
      const ip = locatorIp(l.address, this.#hostIps);
      const p = ip !== undefined ? this.#probes.get(ip) : undefined;
      if (p !== undefined && !p.up && !p.inFlight) this.#probe(p);
    }
  }

  /** Timer: removes expired entries and forgets stale limits. */
  #expiredSweep(): void {
    if (this.#closed) return;
    const now = this.#deps.now();
    const gone: Prefix[] = [];
    for (const { prefix, value } of this.#cache.entries()) {
      if (!value.static && value.expiresAt <= now) gone.push(prefix);
    }
    for (const p of gone) {
      this.#cache.delete(p);
      this.#dp?.deleteMapping(p);
      this.#deps.counters.inc("oor_tr_map_cache_expired_total");
      this.#deps.logger.debug("map-cache-expired", { prefix: formatPrefix(p) });
    }
    if (this.#lastMiss.size > 10_000) {
      for (const [k, t] of this.#lastMiss) {
        if (now - t >= MISS_INTERVAL_MS) this.#lastMiss.delete(k);
      }
    }
  }

  // -------------------------------------------------------------------------
  // Resolution (ITR)

  #miss(iid: number, dst: string, src: string): void {
    if (this.#closed) return;
    const p = parsePrefix(dst, iid);
    if (p === undefined || p.family === "mac") return;
    this.#resolve(p, src, false);
  }

  /** Whether a Map-Request for `key` may go now (one per EID per second, MISS_RATE overall). */
  #allowRequest(key: string): boolean {
    const now = this.#deps.now();
    const last = this.#lastMiss.get(key);
    if (last !== undefined && now - last < MISS_INTERVAL_MS) return false;
    this.#missTokens = Math.min(
      MISS_RATE,
      this.#missTokens + (now - this.#missAt) * MISS_RATE / 1000,
    );
    this.#missAt = now;
    if (this.#missTokens < 1) return false;
    this.#missTokens -= 1;
    this.#lastMiss.set(key, now);
    return true;
  }

  /** Sends an ECM Map-Request for `p` through the map-resolvers and installs the answer. */
  #resolve(p: Prefix, src: string | undefined, smrInvoked: boolean): void {
    const cp = this.#cp;
    const c = this.#deps.counters;
    const key = formatPrefix(p);
    if (cp === undefined || this.#inFlight.has(key) || !this.#allowRequest(key)) {
      c.inc("oor_tr_misses_total", { result: "limited" });
      return;
    }
    const mrs = this.#config.mapResolvers.filter((a) => this.#canSend(a));
    const itrRlocs = this.#itrRlocs;
    if (mrs.length === 0 || itrRlocs.length === 0) {
      this.#deps.logger.limited(
        "no-map-resolver",
        60_000,
        "warn",
        "map-request-not-sent",
        { eid: key, reason: mrs.length === 0 ? "no usable map-resolver" : "no local RLOC" },
      );
      return;
    }
    c.inc("oor_tr_misses_total", { result: "sent" });
    if (this.#deps.logger.enabled("debug")) {
      this.#deps.logger.debug("resolving", { eid: key, src, smrInvoked });
    }
    const eid = prefixAddress(p) as IPv4Address | IPv6Address;
    const v4 = eid.kind === "ipv4";
    const srcIp = src !== undefined ? canonicalIp(src) : undefined;
    const sourceEid: Address = srcIp !== undefined && isIPv4(srcIp) === v4
      ? (p.iid === 0
        ? ipAddress(srcIp)
        : { kind: "iid", iid: p.iid, iidMaskLen: 0, address: ipAddress(srcIp) })
      : NO_ADDRESS;
    const innerSrc = itrRlocs.find((a) => (a.kind === "ipv4") === v4)?.ip ??
      (srcIp !== undefined && isIPv4(srcIp) === v4 ? srcIp : v4 ? "0.0.0.0" : "::");
    const nonce = this.#nonce();
    const bytes = emitMapRequest({
      authoritative: false,
      probe: false,
      smr: false,
      pitr: false,
      smrInvoked,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid,
      itrRlocs,
      records: [{ maskLen: p.len, eid: prefixEid(p) }],
    });
    let attempt = 0;
    const send = () => {
      const mr = mrs[attempt++ % mrs.length]!;
      cp.sendEcm(
        bytes,
        { src: innerSrc, dst: eid.ip, srcPort: cp.port, dstPort: LISP_CONTROL_PORT },
        { address: mr, port: this.#peerPort(mr) },
      );
      c.inc("oor_tr_map_requests_sent_total", { reason: smrInvoked ? "smr-invoked" : "miss" });
    };
    this.#inFlight.add(key);
    cp.request(nonce, send, `Map-Request ${key}`, {
      retries: this.#config.mapRequestRetries,
      timeoutMs: this.#timing.mapRequestTimeoutMs,
      expect: ["map-reply"],
      signal: this.#abort.signal,
    }).then(
      (r) => {
        if (r.message.type === "map-reply") this.#mapReply(r, r.message.msg, p);
      },
      (e) => {
        if (this.#closed) return;
        if (!(e instanceof NoReplyError)) {
          this.#deps.logger.warn("map-request-failed", { eid: key, error: errText(e) });
          return;
        }
        c.inc("oor_tr_map_request_timeouts_total");
        this.#deps.logger.limited(`unresolved ${key}`, 60_000, "info", "map-request-timeout", {
          eid: key,
          attempts: attempt,
        });
        this.#unresolved(p);
      },
    ).finally(() => this.#inFlight.delete(key));
  }

  /** No answer: with proxy-ETRs, the EID is natively forwarded (to them) for a while. */
  #unresolved(p: Prefix): void {
    const petrs = p.family === "ipv4" ? this.#config.proxyEtrsIpv4 : this.#config.proxyEtrsIpv6;
    if (petrs.length === 0 || this.#cache.lookup(p) !== undefined) return;
    const now = this.#deps.now();
    this.#install({
      prefix: p,
      static: false,
      action: "native-forward",
      locators: [],
      ttl: 1,
      expiresAt: now + this.#timing.unresolvedMs,
    }, now);
  }

  #mapReply(r: Received, m: MapReply, asked: Prefix): void {
    const c = this.#deps.counters;
    const now = this.#deps.now();
    for (const rec of m.records) {
      const p = prefixOf(rec.eid, rec.maskLen);
      if (p === undefined || !prefixContains(p, asked)) {
        c.inc("oor_tr_map_replies_total", { result: "not-covering" });
        this.#deps.logger.limited(
          `not-covering ${r.from.address}`,
          60_000,
          "warn",
          "map-reply-rejected",
          {
            peer: formatPeer(r.from),
            asked: formatPrefix(asked),
            got: p !== undefined ? formatPrefix(p) : addressToString(rec.eid),
          },
        );
        continue;
      }
      const old = this.#cache.get(p);
      if (old?.static || old?.natPort !== undefined) {
        c.inc("oor_tr_map_replies_total", { result: "static" });
        continue;
      }
      if (rec.ttl === 0) {
        c.inc("oor_tr_map_replies_total", { result: "ttl-0" });
        if (old !== undefined) {
          this.#cache.delete(p);
          this.#dp?.deleteMapping(p);
        }
        continue;
      }
      const positive = rec.locators.length > 0;
      c.inc("oor_tr_map_replies_total", { result: positive ? "positive" : "negative" });
      const entry: CacheEntry = {
        prefix: p,
        static: false,
        action: positive ? "encapsulate" : DATA_ACTIONS[rec.action] ?? "drop",
        locators: rec.locators,
        ttl: rec.ttl,
        expiresAt: rec.ttl === TTL_FOREVER ? Infinity : now + rec.ttl * 60_000,
        from: formatPeer(r.from),
      };
      this.#install(entry, now);
      if (old === undefined) {
        this.#deps.logger.info("map-cache-added", {
          prefix: formatPrefix(p),
          action: entry.action,
          rlocs: rec.locators.map((l) => addressToString(l.address)).join(","),
          ttl: rec.ttl,
          from: formatPeer(r.from),
        });
      }
    }
  }

  // -------------------------------------------------------------------------
  // ETR

  #dropRequest(r: Received, reason: string, detail?: string): void {
    this.#deps.counters.inc("oor_tr_map_requests_dropped_total", { reason });
    this.#deps.logger.limited(
      `map-request-dropped ${reason} ${r.from.address}`,
      60_000,
      "debug",
      "map-request-dropped",
      { reason, peer: formatPeer(r.from), detail },
    );
  }

  #mapRequest(r: Received, m: MapRequest): void {
    const c = this.#deps.counters;
    if (m.smr) {
      c.inc("oor_tr_map_requests_received_total", { kind: "smr" });
      return this.#smrReceived(r, m);
    }
    c.inc("oor_tr_map_requests_received_total", { kind: m.probe ? "probe" : "request" });
    const rec = m.records[0];
    if (rec === undefined) return this.#dropRequest(r, "no-record");
    const p = prefixOf(rec.eid, rec.maskLen);
    if (p === undefined) return this.#dropRequest(r, "unsupported-eid", addressToString(rec.eid));
    let record: EidRecord | undefined;
    const local = this.#dbTable.lookup(p)?.value;
    if (local !== undefined) {
      record = this.#record(
        local,
        local.locators.length > 0 ? local.config.ttl : NO_LOCATOR_TTL,
        m.probe,
      );
    } else if (this.mode === "rtr" && m.probe) {
      record = this.#rtrProbeRecord(p);
    }
    if (record === undefined) return this.#dropRequest(r, "not-local", formatPrefix(p));
    const to = this.#replyTo(r, m);
    if (to === undefined) return this.#dropRequest(r, "no-itr-rloc");
    const reply: MapReply = {
      probe: m.probe,
      echoNonce: false,
      security: false,
      nonce: m.nonce,
      records: [record],
    };
    this.#cp?.send({ type: "map-reply", msg: reply }, to);
    c.inc("oor_tr_map_replies_sent_total", { kind: m.probe ? "probe" : "request" });
  }

  #rtrProbeRecord(p: Prefix): EidRecord {
    const bound = this.#controlAddress;
    return {
      ttl: RTR_PROBE_TTL,
      maskLen: p.len,
      action: ACTION.NO_ACTION,
      authoritative: false,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: this.#rtrLocators.map((l) => ({
        priority: l.priority,
        weight: l.weight,
        mPriority: 255,
        mWeight: 0,
        local: true,
        probed: l.ip !== undefined && l.ip === bound,
        reachable: true,
        address: l.address,
      })),
    };
  }

  /** Probes and plain requests go back to their sender; forwarded ones to an ITR-RLOC. */
  #replyTo(r: Received, m: MapRequest): Peer | undefined {
    const ecm = r.ecm;
    if (ecm === undefined || m.probe) return r.from;
    for (const a of m.itrRlocs) {
      if ((a.kind === "ipv4" || a.kind === "ipv6") && this.#canSend(a.ip)) {
        return { address: a.ip, port: ecm.inner.srcPort };
      }
    }
    return undefined;
  }

  // -------------------------------------------------------------------------
  // SMRs

  #peer(rloc: string, iid: number, srcEid: string): void {
    const ip = canonicalIp(rloc);
    if (ip === undefined) return;
    if (this.#peers.has(ip)) this.#peers.delete(ip);
    else if (this.#peers.size >= MAX_PEERS) {
      const oldest = this.#peers.keys().next();
      if (!oldest.done) this.#peers.delete(oldest.value);
    }
    this.#peers.set(ip, { iid, srcEid });
  }

  /** Sends SMRs for the changed mappings to every remote RLOC we have talked to. */
  #sendSmrs(changed: readonly LocalMapping[]): void {
    const cp = this.#cp;
    if (cp === undefined) return;
    const targets = new Map<string, Prefix>();
    for (const [ip, peer] of this.#peers) {
      const p = parsePrefix(peer.srcEid, peer.iid);
      if (p !== undefined) targets.set(ip, p);
    }
    for (const { prefix, value } of this.#cache.entries()) {
      for (const l of value.locators) {
        const ip = locatorIp(l.address, this.#hostIps);
        if (ip !== undefined && !targets.has(ip)) targets.set(ip, prefix);
      }
    }
    let sent = 0;
    for (const [ip, remote] of targets) {
      if (this.#ownIps.has(ip) || !this.#canSend(ip)) continue;
      if (sent >= MAX_SMR_TARGETS * changed.length) {
        this.#deps.logger.warn("smr-targets-truncated", { max: MAX_SMR_TARGETS });
        break;
      }
      for (const m of changed) {
        const src = prefixAddress(m.prefix) as IPv4Address | IPv6Address;
        const bytes = emitMapRequest({
          authoritative: false,
          probe: false,
          smr: true,
          pitr: false,
          smrInvoked: false,
          localXtr: false,
          dontMapReply: false,
          nonce: this.#nonce(),
          sourceEid: m.prefix.iid === 0
            ? src
            : { kind: "iid", iid: m.prefix.iid, iidMaskLen: 0, address: src },
          itrRlocs: this.#itrRlocs.length > 0 ? this.#itrRlocs : [ipAddress(ip)],
          records: [{ maskLen: remote.len, eid: prefixEid(remote) }],
        });
        cp.send(bytes, { address: ip, port: this.#peerPort(ip) });
        this.#deps.counters.inc("oor_tr_smrs_sent_total");
        sent++;
      }
    }
    if (sent > 0) this.#deps.logger.info("smrs-sent", { count: sent });
  }

  /** An SMR: a fresh Map-Request for its source EID, when we have it cached. */
  #smrReceived(r: Received, m: MapRequest): void {
    const c = this.#deps.counters;
    const p = hostPrefixOf(m.sourceEid);
    const entry = p !== undefined ? this.#cache.lookup(p) : undefined;
    if (p === undefined || entry === undefined || entry.value.static) {
      c.inc("oor_tr_smrs_received_total", { result: "ignored" });
      this.#deps.logger.limited(`smr-ignored ${r.from.address}`, 60_000, "debug", "smr-ignored", {
        peer: formatPeer(r.from),
        eid: addressToString(m.sourceEid),
      });
      return;
    }
    c.inc("oor_tr_smrs_received_total", { result: "requested" });
    this.#deps.logger.info("smr-received", {
      peer: formatPeer(r.from),
      eid: formatPrefix(p),
      cached: formatPrefix(entry.prefix),
    });
    this.#resolve(p, undefined, true);
  }

  // -------------------------------------------------------------------------
  // RLOC probing

  /** Timer: probes every distinct locator of the map-cache. */
  #expiredProbeRound(): void {
    if (this.#closed) return;
    const wanted = new Map<string, Prefix>();
    for (const { prefix, value } of this.#cache.entries()) {
      if (value.natPort !== undefined) continue; // behind a NAT: its control port is not reachable
      for (const l of value.locators) {
        const ip = locatorIp(l.address, this.#hostIps);
        if (ip !== undefined && !wanted.has(ip) && this.#canSend(ip)) wanted.set(ip, prefix);
      }
    }
    for (const [ip, p] of this.#probes) {
      if (!wanted.has(ip) && !p.inFlight) this.#probes.delete(ip);
    }
    for (const [ip, eid] of wanted) {
      let p = this.#probes.get(ip);
      if (p === undefined) {
        p = { address: ip, eid, up: true, inFlight: false, sent: 0, answered: 0, rttMs: null };
        this.#probes.set(ip, p);
      }
      p.eid = eid;
      if (!p.inFlight) this.#probe(p);
    }
  }

  #probe(p: ProbeState): void {
    const cp = this.#cp;
    if (cp === undefined || this.#closed) return;
    const c = this.#deps.counters;
    const nonce = this.#nonce();
    const own = this.#itrRlocs.filter((a) => isIPv4(a.ip) === isIPv4(p.address));
    const bytes = emitMapRequest({
      authoritative: false,
      probe: true,
      smr: false,
      pitr: false,
      smrInvoked: false,
      localXtr: false,
      dontMapReply: false,
      nonce,
      sourceEid: NO_ADDRESS,
      itrRlocs: own.length > 0
        ? own
        : this.#itrRlocs.length > 0
        ? this.#itrRlocs
        : [ipAddress(p.address)],
      records: [{ maskLen: p.eid.len, eid: prefixEid(p.eid) }],
    });
    const to: Peer = { address: p.address, port: this.#peerPort(p.address) };
    let sentAt = 0;
    p.inFlight = true;
    cp.request(
      nonce,
      () => {
        sentAt = performance.now();
        cp.send(bytes, to);
        p.sent++;
        c.inc("oor_tr_probes_sent_total");
      },
      `RLOC-probe ${p.address}`,
      {
        retries: this.#config.rlocProbing.retries,
        timeoutMs: this.#timing.probeRetryMs,
        expect: ["map-reply"],
        signal: this.#abort.signal,
      },
    ).then(
      () => {
        p.answered++;
        p.rttMs = Math.round((performance.now() - sentAt) * 10) / 10;
        c.inc("oor_tr_probes_answered_total");
        this.#setProbeState(p, true);
      },
      (e) => {
        if (this.#closed) return;
        if (!(e instanceof NoReplyError)) {
          this.#deps.logger.warn("probe-failed", { rloc: p.address, error: errText(e) });
          return;
        }
        c.inc("oor_tr_probe_timeouts_total");
        this.#setProbeState(p, false);
      },
    ).finally(() => p.inFlight = false);
  }

  #setProbeState(p: ProbeState, up: boolean): void {
    if (p.up === up || this.#closed) return;
    p.up = up;
    this.#dp?.setLocator(p.address, up);
    this.#deps.counters.inc("oor_tr_locator_changes_total", { state: up ? "up" : "down" });
    this.#deps.logger.info(up ? "locator-up" : "locator-down", {
      rloc: p.address,
      retries: this.#config.rlocProbing.retries,
    });
  }

  // -------------------------------------------------------------------------
  // Views

  database(): DatabaseInfo[] {
    const info = (l: LocalLocator): LocatorInfo => ({
      address: addressToString(l.address),
      priority: l.priority,
      weight: l.weight,
      up: true,
    });
    if (this.mode === "rtr") {
      return [{ prefix: "rtr", ttl: RTR_PROBE_TTL, locators: this.#rtrLocators.map(info) }];
    }
    return this.#db.map((m) => ({
      prefix: m.text,
      ttl: m.config.ttl,
      locators: m.locators.map(info),
    }));
  }

  mapCache(): MapCacheInfo[] {
    const out: MapCacheInfo[] = [];
    for (const { value: e } of this.#cache.entries()) {
      out.push({
        prefix: formatPrefix(e.prefix),
        kind: kindOf(e),
        action: e.action,
        ttl: e.static ? null : e.ttl,
        expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : null,
        ...(e.from !== undefined ? { from: e.from } : {}),
        locators: e.locators.map((l) => {
          const ip = locatorIp(l.address, this.#hostIps);
          return {
            address: addressToString(l.address),
            priority: l.priority,
            weight: l.weight,
            up: l.reachable && (ip === undefined || this.#probes.get(ip)?.up !== false),
          };
        }),
      });
    }
    return out.sort((a, b) => a.prefix < b.prefix ? -1 : a.prefix > b.prefix ? 1 : 0);
  }

  registrations(): RegistrationInfo[] {
    return this.#regs.map((s) => ({
      mapServer: s.ms.address,
      prefix: s.mapping.text,
      notified: s.notified,
      sent: s.sent,
      lastNotifyAt: s.lastNotifyAt,
    }));
  }

  probes(): ProbeInfo[] {
    return [...this.#probes.values()].map((p) => ({
      address: p.address,
      up: p.up,
      sent: p.sent,
      answered: p.answered,
      rttMs: p.rttMs,
    }));
  }

  hostChanges(): string[] {
    return this.#journal.list();
  }

  // -------------------------------------------------------------------------
  // HTTP API (web/source.ts)

  statusSource(): StatusSource {
    const source: StatusSource = {
      status: () => ({
        rlocs: this.#rlocStatus(),
        ...(this.mode !== "rtr" ? { mapServers: this.#mapServerStatus() } : {}),
        details: this.#details(),
      }),
      mapCache: (query) => this.#mapCacheView(query.iid),
      database: () => this.#databaseView(),
      counters: () => {
        this.#scanDataPlaneCounters();
        return this.#deps.counters.snapshot();
      },
      addStaticMapping: (entry) => this.#addStaticMapping(entry),
      removeStaticMapping: (p, iid) => this.#removeStaticMapping(p, iid),
    };
    if (this.mode === "rtr") return source;
    return {
      ...source,
      addDatabaseMapping: (m) => this.#edit(() => this.#addDatabaseMapping(m)),
      removeDatabaseMapping: (p, iid) => this.#edit(() => this.#removeDatabaseMapping(p, iid)),
    };
  }

  /** Local locators: those in use (up) and configured ones that are not usable now (down). */
  #rlocStatus(): RlocStatus[] {
    const out = new Map<string, RlocStatus>();
    const used = (l: LocalLocator) => {
      const address = addressToString(l.address);
      if (out.has(address)) return;
      out.set(address, {
        address,
        state: "up",
        priority: l.priority,
        weight: l.weight,
        ...(l.iface !== undefined ? { interface: l.iface } : {}),
      });
    };
    const ifaceDown = (iface: string, priority: number, weight: number) => {
      const resolved = [...out.values()].some((r) => r.interface === iface);
      if (resolved || out.has(`iface ${iface}`)) return;
      out.set(`iface ${iface}`, {
        address: "",
        state: "down",
        interface: iface,
        priority,
        weight,
        reason: "no usable address (link down or no address)",
      });
    };
    if (this.mode === "rtr") {
      for (const l of this.#rtrLocators) used(l);
      for (const f of this.#config.rtrIfaces) ifaceDown(f.iface, f.priority, f.weight);
      return [...out.values()];
    }
    for (const m of this.#db) for (const l of m.locators) used(l);
    for (const m of this.#db) {
      for (const r of m.config.rlocAddresses) {
        if (r.kind !== "address") continue;
        const ip = canonicalIp(r.address);
        if (ip === undefined || out.has(ip)) continue;
        out.set(ip, {
          address: ip,
          state: "down",
          priority: r.priority,
          weight: r.weight,
          reason: "link down",
        });
      }
      for (const f of m.config.rlocIfaces) ifaceDown(f.interface, f.priority, f.weight);
    }
    return [...out.values()];
  }

  #mapServerStatus(): MapServerStatus[] {
    const latest = (a: number | null, b: number | null) =>
      a === null ? b : b === null ? a : Math.max(a, b);
    return this.#config.mapServers.map((ms) => {
      let lastMapNotify: number | null = null;
      let lastMapRegister: number | null = null;
      let regs = 0;
      let notified = 0;
      for (const s of this.#regs) {
        if (s.ms !== ms) continue;
        regs++;
        if (s.notified) notified++;
        lastMapNotify = latest(lastMapNotify, s.lastNotifyAt);
        lastMapRegister = latest(lastMapRegister, s.lastSentAt);
      }
      return {
        address: ms.address,
        lastMapNotify,
        lastMapRegister,
        registered: regs > 0 && notified === regs,
      };
    });
  }

  #details(): Record<string, string | number | boolean | null> {
    const c = this.#config;
    let down = 0;
    for (const p of this.#probes.values()) if (!p.up) down++;
    return {
      mode: this.mode,
      "control address": `${this.#controlAddress ?? "*"} port ${this.controlPort}`,
      "data port": c.dataPort,
      encapsulation: c.encapsulation,
      ...(this.#tun !== undefined ? { tun: this.#tun.name } : {}),
      ...(this.#instances.length > 0
        ? {
          "instance TUNs": this.#instances.map((i) => `${i.tun.name} (iid ${i.routing.iid})`)
            .join(", "),
        }
        : {}),
      ...(c.destinationPrefixes.length > 0
        ? {
          "destination prefixes": c.destinationPrefixes.map((p) => textPrefix(p).text).join(", "),
        }
        : {}),
      "xTR-ID": this.xtrId.toString(16).padStart(32, "0"),
      "map-resolvers": c.mapResolvers.join(", ") || null,
      "map-cache entries": this.#cache.size,
      ...(this.mode !== "rtr" ? { "database mappings": this.#db.length } : {}),
      "remote RLOCs probed": this.#probes.size,
      "remote RLOCs down": down,
    };
  }

  #mapCacheView(iid: number | undefined): MapCacheView[] {
    const out: MapCacheView[] = [];
    for (const { value: e } of this.#cache.entries()) {
      if (iid !== undefined && e.prefix.iid !== iid) continue;
      const { eidPrefix } = splitIidPrefix(formatPrefix(e.prefix));
      const positive = e.locators.length > 0;
      out.push({
        eidPrefix,
        iid: e.prefix.iid,
        kind: positive ? "positive" : "negative",
        ...(!positive ? { action: VIEW_ACTIONS[e.action] } : {}),
        static: e.static,
        ...(e.static ? {} : { ttl: e.ttl }),
        expiresAt: Number.isFinite(e.expiresAt) ? e.expiresAt : null,
        rlocs: e.locators.map((l): LocatorView => {
          const ip = locatorIp(l.address, this.#hostIps);
          const up = l.reachable && (ip === undefined || this.#probes.get(ip)?.up !== false);
          return {
            address: addressToString(l.address),
            priority: l.priority,
            weight: l.weight,
            state: up ? "up" : "down",
          };
        }),
      });
    }
    return out;
  }

  #databaseView(): DatabaseView[] {
    const view = (l: LocalLocator): LocatorView => ({
      address: addressToString(l.address),
      priority: l.priority,
      weight: l.weight,
      state: "up",
      ...(l.iface !== undefined ? { interface: l.iface } : {}),
    });
    if (this.mode === "rtr") return [];
    return this.#db.map((m) => {
      const rlocs = m.locators.map(view);
      // Configured addresses left out because their link is down.
      for (const r of m.config.rlocAddresses) {
        if (r.kind !== "address") continue;
        const ip = canonicalIp(r.address);
        if (ip === undefined || rlocs.some((x) => x.address === ip)) continue;
        rlocs.push({ address: ip, priority: r.priority, weight: r.weight, state: "down" });
      }
      return {
        eidPrefix: `${m.config.eidPrefix.address}/${m.config.eidPrefix.length}`,
        iid: m.prefix.iid,
        ttl: m.config.ttl,
        rlocs,
      };
    });
  }

  #addStaticMapping(s: StaticMapCacheEntry): void {
    if (this.#closed) throw new SourceError(503, "the router is stopping");
    const e = this.#staticEntry(s);
    if (e.locators.length === 0) {
      throw new SourceError(400, "no locator: unknown explicit-locator-path", "rloc-address");
    }
    if (this.#dbTable.get(e.prefix) !== undefined) {
      throw new SourceError(409, `${formatPrefix(e.prefix)} is a local EID prefix (database)`);
    }
    this.#install(e, this.#deps.now());
    this.#deps.logger.info("static-mapping-added", {
      prefix: formatPrefix(e.prefix),
      rlocs: e.locators.map((l) => addressToString(l.address)).join(","),
    });
  }

  #removeStaticMapping(p: ConfigPrefix, iid: number): boolean {
    const prefix = tablePrefix(p, iid);
    if (this.#cache.get(prefix)?.static !== true) return false;
    this.#cache.delete(prefix);
    this.#dp?.deleteMapping(prefix);
    this.#deps.logger.info("static-mapping-removed", { prefix: formatPrefix(prefix) });
    return true;
  }

  /** Runs a database edit after any locator check in progress, one at a time. */
  #edit<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed || this.#closing !== undefined) {
      return Promise.reject(new SourceError(503, "the router is stopping"));
    }
    const run = this.#rlocCheck.then(work);
    this.#rlocCheck = run.then(() => {}, () => {});
    return run;
  }

  /** After the set of local locators changed: ITR-RLOCs, per-RLOC tables, an mn's sockets. */
  async #locatorsChanged(): Promise<void> {
    this.#itrRlocs = this.#computeItrRlocs();
    this.#syncRouting();
    if (this.mode === "mn") await this.#rebindMn();
  }

  async #addDatabaseMapping(m: DatabaseMapping): Promise<void> {
    if (this.#closed) throw new SourceError(503, "the router is stopping");
    const prefix = tablePrefix(m.eidPrefix, m.iid);
    const tp = textPrefix(m.eidPrefix);
    const tun = this.#tun;
    // The mode's routing for the prefix first: if the host refuses, nothing changed here.
    const dests = this.#config.destinationPrefixes.map(textPrefix);
    const inst = this.#instances.find((i) => i.routing.iid === m.iid);
    if (inst !== undefined) {
      const f: IpFamily = tp.family;
      if (!inst.routing.families.includes(f)) {
        const routing = { ...inst.routing, families: [...inst.routing.families, f] };
        this.#routing.setupInstance(routing, dests);
        this.#instances[this.#instances.indexOf(inst)] = { tun: inst.tun, routing };
      }
    } else if (tun !== undefined) {
      if (this.mode === "xtr") this.#routing.setupXtr(tun.index, [tp], dests);
      else this.#routing.setupMn(tun.index, [tp], dests);
    }
    let lm = this.#dbTable.get(prefix);
    const added = lm === undefined;
    if (lm === undefined) {
      lm = { prefix, text: formatPrefix(prefix), config: m, locators: [], signature: "" };
      this.#db.push(lm);
      this.#dbTable.set(prefix, lm);
    } else {
      lm.config = m;
    }
    const changed = this.#resolveAll(new HostSnapshot(this.#platform));
    this.#dp?.setLocal(this.#db.map((x) => x.prefix));
    await this.#locatorsChanged();
    if (this.#closed) return;
    if (added) this.#addRegs(lm);
    for (const s of this.#regs) {
      if (s.mapping === lm || changed.includes(s.mapping)) this.#registerNow(s);
    }
    const smrs = changed.filter((x) => x !== lm || !added);
    if (smrs.length > 0) this.#sendSmrs(smrs);
    this.#deps.logger.info(added ? "database-mapping-added" : "database-mapping-replaced", {
      prefix: lm.text,
      rlocs: lm.locators.map((l) => addressToString(l.address)).join(",") || "none",
    });
  }

  async #removeDatabaseMapping(p: ConfigPrefix, iid: number): Promise<boolean> {
    const prefix = tablePrefix(p, iid);
    const lm = this.#dbTable.get(prefix);
    if (lm === undefined) return false;
    for (let i = this.#regs.length - 1; i >= 0; i--) {
      const s = this.#regs[i]!;
      if (s.mapping !== lm) continue;
      if (s.timer !== undefined) clearTimeout(s.timer);
      s.timer = undefined;
      if (s.sent > 0 && !s.withdrawn && lm.locators.length > 0) {
        try {
          this.#sendRegister(s, true);
        } catch (e) {
          this.#deps.logger.warn("withdraw-failed", { mapServer: s.ms.address, error: errText(e) });
        }
      }
      this.#regs.splice(i, 1);
    }
    for (const [n, v] of this.#regNonces) if (v.state.mapping === lm) this.#regNonces.delete(n);
    this.#db.splice(this.#db.indexOf(lm), 1);
    this.#dbTable.delete(prefix);
    this.#dp?.setLocal(this.#db.map((x) => x.prefix));
    if (!this.#hasInstance(iid)) this.#unrouteEid(textPrefix(p));
    this.#resolveAll(new HostSnapshot(this.#platform));
    await this.#locatorsChanged();
    this.#deps.logger.info("database-mapping-removed", { prefix: lm.text });
    return true;
  }

  /** Undoes the mode's routing for an EID prefix no mapping uses any more. */
  #unrouteEid(tp: TextPrefix): void {
    const tun = this.#tun;
    if (tun === undefined) return;
    const left = this.#db
      .filter((x) => !this.#hasInstance(x.config.iid))
      .map((x) => textPrefix(x.config.eidPrefix));
    const sameFamily = left.filter((x) => x.family === tp.family);
    const dests = this.#config.destinationPrefixes.map(textPrefix);
    if (this.mode === "xtr") {
      if (!left.some((x) => x.text === tp.text)) {
        this.#journal.undo(`eid-to ${tp.family} ${tp.text}`);
        this.#journal.undo(`eid-from ${tp.family} ${tp.text}`);
      }
      if (sameFamily.length === 0) {
        this.#journal.undo(`eid-default ${tp.family}`);
        for (const d of dests) this.#journal.undo(`eid-dest ${tp.family} ${d.text}`);
      }
      return;
    }
    // mn: the EID off the TUN; the half routes (their source may have been it) set up again.
    const address = tp.text.slice(0, tp.text.indexOf("/"));
    if (sameFamily.some((x) => x.text.slice(0, x.text.indexOf("/")) === address)) return;
    const halves = tp.family === "ipv4" ? ["0.0.0.0/1", "128.0.0.0/1"] : ["::/1", "8000::/1"];
    for (const dst of [...halves, ...dests.map((d) => d.text)]) {
      this.#journal.undo(`mn-half ${dst}`);
    }
    this.#journal.undo(`addr ${tun.index} ${address}/${tp.family === "ipv4" ? 32 : 128}`);
    try {
      this.#routing.setupMn(tun.index, sameFamily, dests);
    } catch (e) {
      this.#deps.logger.warn("mn-routes-failed", { error: errText(e) });
    }
  }

  // -------------------------------------------------------------------------
  // Shutdown

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const log = this.#deps.logger;
    // Withdraw first, while the control socket and the routes are there.
    if (!this.#closed) {
      for (const s of this.#regs) {
        if (s.timer !== undefined) clearTimeout(s.timer);
        s.timer = undefined;
        if (s.sent > 0 && !s.withdrawn && s.mapping.locators.length > 0) {
          try {
            this.#sendRegister(s, true);
          } catch (e) {
            log.warn("withdraw-failed", { mapServer: s.ms.address, error: errText(e) });
          }
        }
      }
    }
    this.#closed = true;
    this.#abort.abort();
    for (const t of this.#timers) clearInterval(t);
    for (const t of this.#syncTimers) clearTimeout(t);
    this.#syncTimers.clear();
    if (this.#eventTimer !== undefined) clearTimeout(this.#eventTimer);
    for (const s of this.#regs) if (s.timer !== undefined) clearTimeout(s.timer);
    for (const p of this.#natProbes) if (p.timer !== undefined) clearTimeout(p.timer);
    await this.#eventsDone;
    await this.#rlocCheck;
    if (this.#dp !== undefined) {
      try {
        await this.#dp.stop();
      } catch (e) {
        log.warn("dataplane-stop-failed", { error: errText(e) });
      }
    }
    for (const s of [this.#udp4, this.#udp6]) {
      try {
        s?.close();
      } catch (e) {
        log.warn("data-socket-close-failed", { error: errText(e) });
      }
    }
    const changes = this.#journal.size;
    this.#journal.undoAll();
    if (changes > 0) log.info("host-restored", { changes });
    // Let the withdrawals leave before the socket closes.
    if (this.#regs.length > 0 && this.#cp !== undefined) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    this.#cp?.close();
    if (this.#ownsPlatform) this.#platform.close();
  }
}

/** Negative-entry actions as the API names them. */
const VIEW_ACTIONS: Readonly<Record<DataAction, string>> = {
  "encapsulate": "drop",
  "native-forward": "natively-forward",
  "send-map-request": "send-map-request",
  "drop": "drop",
};

function kindOf(e: CacheEntry): "static" | "positive" | "negative" {
  return e.static ? "static" : e.locators.length > 0 ? "positive" : "negative";
}

/** The real data plane: a Worker (`_dataplane.ts`). */
function defaultStartDataPlane(
  opts: DataPlaneOptions,
  events: DataPlaneEvents,
): Promise<DataPlaneHandle> {
  return DataPlane.start(opts, events);
}

/**
 * Starts a tunnel router: resolves the local locators, runs the preflight,
 * binds the control socket, sets the host up for `mode` (TUN, rules,
 * routes, per-RLOC tables), starts the data plane and the routines
 * (registration, expiry, probing, netlink events). If any step fails,
 * what was set up is undone and the error thrown.
 */
export async function startTunnelRouter(
  mode: TunnelRouterMode,
  config: Config,
  deps: RoleDeps,
  options: TunnelRouterOptions = {},
): Promise<TunnelRouterHandle> {
  const tr = new TunnelRouter(mode, config, deps, options);
  try {
    await tr.start();
  } catch (e) {
    await tr.close().catch(() => {});
    throw e;
  }
  return tr;
}
