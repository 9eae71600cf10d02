/**
 * What every part of a tunnel router shares: the {@link Env} each part
 * is built with (config, logger, counters, clock, nonces, timing, and the
 * signal that says the router is stopping), the {@link TunnelRouterSpec}
 * a role file gives to say which parts it assembles and with what policy,
 * the options tests and embedders pass, and the views' record types.
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import type { Counters } from "../../core/counters.ts";
import type { Logger } from "../../core/log.ts";
import type { RoleHandle } from "../../core/role.ts";
import type { StatusSource } from "../../core/status.ts";
import type {
  DataAction,
  DataPlaneEvents,
  DataPlaneHandle,
  DataPlaneMode,
  ToWorker,
} from "../../dataplane/api.ts";
import type { HostSetup, HostSetupContext } from "./host.ts";
import type { Platform } from "./platform.ts";
import type { PreflightFinding } from "./preflight.ts";

/** Which tunnel router (for logs and views; parts take their policy from the spec). */
export type TunnelRouterMode = "xtr" | "mn" | "rtr";

/**
 * What a role file says about its tunnel router: the parts it assembles
 * and the policy of each. Parts read these fields; none asks which role
 * it is in.
 */
export interface TunnelRouterSpec {
  /** Its name, in logs and on the status page. */
  readonly mode: TunnelRouterMode;
  /** What the data plane does: TUN <-> UDP (`xtr`) or UDP -> UDP (`rtr`). */
  readonly dataPlane: DataPlaneMode;
  /** The host set-up: TUN(s), routes and rules of the mode. */
  readonly host: (ctx: HostSetupContext) => HostSetup;
  /**
   * Where its locators come from: `[[database-mapping]]`s, which it
   * registers and answers for (with the m bit for a mobile node), or its
   * `[[rtr-iface]]`s.
   */
  readonly locals:
    | { readonly kind: "database"; readonly mobileNode: boolean }
    | { readonly kind: "rtr-ifaces" };
  /** NAT traversal: the xTR side (with `nat_traversal_support`), or the RTR's relay. */
  readonly nat: "client" | "relay";
  /** Whether RLOC-probes for any EID are answered with its own locators (an RTR). */
  readonly probeAnyEid: boolean;
  /** Whether it forwards between interfaces (the preflight checks ip_forward). */
  readonly forwarding: boolean;
  /**
   * Whether its control and data sockets are bound to its own RLOC (a
   * mobile node: so that they escape the routes into its TUN), and bound
   * again when that RLOC moves.
   */
  readonly bindToRloc: boolean;
}

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
  /**
   * Quiet time after a netlink event before locators are resolved again
   * (5 ms: a mobile node's move reaches the map-server without waiting; a
   * burst, an address added then the old one removed, may take two checks,
   * each cheap, one at a time).
   */
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

/** Map-Register refresh period (RFC 9301 §8.2: 60 seconds). */
export const REGISTER_INTERVAL_MS = 60_000;
/** First quick retry of a Map-Register. */
export const REGISTER_RETRY_MS = 1_000;
/** Wait for each Map-Reply. */
export const MAP_REQUEST_TIMEOUT_MS = 1_000;
/** NAT traversal: Info-Request period (UDP NAT bindings often last 30 s without traffic). */
export const NAT_KEEPALIVE_MS = 10_000;
/** Never-expiring record TTL. */
export const TTL_FOREVER = 0xffffffff;

/** The timing a config asks for. */
export function defaultTiming(config: Config): Timing {
  const p = config.rlocProbing;
  return {
    registerIntervalMs: REGISTER_INTERVAL_MS,
    registerRetryMs: REGISTER_RETRY_MS,
    mapRequestTimeoutMs: MAP_REQUEST_TIMEOUT_MS,
    sweepMs: 1_000,
    probeIntervalMs: p.interval * 1000,
    probeRetryMs: Math.max(1, p.retriesInterval) * 1000,
    eventDebounceMs: 5,
    routeSyncMs: 30_000,
    unresolvedMs: 60_000,
    natKeepaliveMs: NAT_KEEPALIVE_MS,
    natRetryMs: 1_000,
  };
}

/** Options of a tunnel router beyond the config (tests, embedding). */
export interface TunnelRouterOptions {
  /** The host (default: the Linux platform of `platform.ts`). */
  readonly platform?: Platform;
  /** Starts the data plane (default: `DataPlane.start` of dataplane/). */
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

/** What every part is built with. */
export interface Env {
  /** The role's config. */
  readonly config: Config;
  /** Its logger. */
  readonly log: Logger;
  /** Its counters. */
  readonly counters: Counters;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** A fresh 64-bit nonce. */
  readonly nonce: () => bigint;
  /** The control port of a peer. */
  readonly peerPort: (address: string) => number;
  /** Intervals and timeouts. */
  readonly timing: Timing;
  /** Aborted when the router stops: parts check it before acting and stop their timers. */
  readonly signal: AbortSignal;
}

/** A random nonce, never 0. */
export function randomNonce(): bigint {
  const v = crypto.getRandomValues(new BigUint64Array(1))[0]!;
  return v === 0n ? 1n : v;
}

/** A random 128-bit xTR-ID. */
export function randomXtrId(): bigint {
  const w = crypto.getRandomValues(new BigUint64Array(2));
  return (w[0]! << 64n) | w[1]!;
}

/** An error's message. */
export function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

// ---------------------------------------------------------------------------
// Views

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
   * What the HTTP API shows and edits (core/status.ts): local RLOCs and
   * map-servers, the map-cache, the database, the counters, and the write
   * hooks (static map-cache entries; database mappings where the role has
   * a database, registered or withdrawn at once).
   */
  statusSource(): StatusSource;
}
