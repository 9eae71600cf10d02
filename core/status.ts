/**
 * What a running role shows through the HTTP API, the status page and
 * `/metrics`: a {@link StatusSource}. Every provider is optional; a role
 * implements the ones it has (a map-server has sites but no map-cache, a
 * tunnel router has a map-cache and a database but no sites) and the API
 * answers 404 for the others, naming what the role does not have.
 *
 * Views are plain JSON-friendly records (no bigint, no Uint8Array, times
 * in milliseconds since the epoch, `null` for "never"). Prefixes are text
 * without the instance id (`"10.1.0.0/24"`, `"2001:db8::/32"`), with the
 * instance id beside them, except in {@link RegistrationView.prefix} and
 * {@link SiteView.prefix} which keep the map-server's `"[iid]prefix"` form.
 *
 * Who implements it:
 * - ms, mr, ddt: `statusSource()` on their handles (roles/ms.ts, mr.ts, ddt.ts);
 * - xtr, mn, rtr (roles/tunnel_router/router.ts): `status()` with RLOCs and
 *   map-servers, `mapCache()`, `database()`, and the four write hooks.
 *   The hooks change the running role only; persisting the edit and
 *   replaying it at the next start is done around them by
 *   `RuntimeEdits` (web/state.ts), which `runRole()` puts in front of the
 *   source, so a role never touches the state file itself.
 *
 * @module
 */

import type {
  DatabaseMapping,
  DdtDelegSite,
  LispSite,
  MsStaticRegisteredSite,
  Prefix,
  StaticMapCacheEntry,
} from "../config/mod.ts";
import type { MapServer, ProxyEtr } from "../config/mod.ts";

/** Up/down state of a locator, as probing or the interface says. */
export type LocatorState = "up" | "down";

/** A local locator (RLOC) of a tunnel router. */
export interface RlocStatus {
  /** The locator address, canonical text (`"192.0.2.1"`, `"2001:db8::1"`). */
  readonly address: string;
  /** Whether the locator can be used now. */
  readonly state: LocatorState;
  /** The interface the address is on, when known. */
  readonly interface?: string;
  /** Unicast priority (lower is preferred; 255: do not use). */
  readonly priority?: number;
  /** Unicast weight. */
  readonly weight?: number;
  /** When `state` last changed, ms since the epoch. */
  readonly since?: number;
  /** Why the locator is down (`"link down"`, `"no address"`), free text. */
  readonly reason?: string;
}

/** A map-server a tunnel router registers with. */
export interface MapServerStatus {
  /** Map-server address. */
  readonly address: string;
  /** Last Map-Notify received from it, ms since the epoch; null if none yet. */
  readonly lastMapNotify: number | null;
  /** Last Map-Register sent to it, ms since the epoch; null if none yet. */
  readonly lastMapRegister?: number | null;
  /** Whether the registrations are acknowledged (a recent Map-Notify). */
  readonly registered?: boolean;
  /**
   * The registration state with it (absent when nothing registers with
   * it): `"registered"` every mapping acknowledged; `"registering"` not
   * yet, within the first retries; `"failing"` a Map-Register has had no
   * valid Map-Notify for ten retry periods (10 s by default).
   */
  readonly state?: RegistrationState;
  /** Map-Registers to it that got no valid Map-Notify, since start. */
  readonly failures?: number;
  /** While `state` is `"failing"`: the first unanswered Map-Register, ms since the epoch. */
  readonly failingSince?: number;
  /** While `state` is `"failing"`: its likely cause (wrong key, no route...), free text. */
  readonly cause?: string;
}

/** See {@link MapServerStatus.state}. */
export type RegistrationState = "registered" | "registering" | "failing";

/** A remote RLOC that RLOC probing watches (tunnel routers). */
export interface RemoteRlocStatus {
  /** The RLOC address. */
  readonly address: string;
  /** Up or down, as probing says. */
  readonly state: LocatorState;
  /** Round-trip time of the last answered probe, ms; null before the first answer. */
  readonly rttMs: number | null;
  /** Probes sent, retransmissions included. */
  readonly sent: number;
  /** Probes answered. */
  readonly answered: number;
  /** Last answer, ms since the epoch; null if none yet. */
  readonly lastAnswer: number | null;
}

/** Role-specific facts, shown as a list of `name: value` on the status page. */
export type StatusDetails = Readonly<Record<string, string | number | boolean | null>>;

/** What {@link StatusSource.status} adds to the role, version and uptime the API knows. */
export interface RoleStatus {
  /** Local locators and their state (tunnel routers). */
  readonly rlocs?: readonly RlocStatus[];
  /** Map-servers registered with, and their last Map-Notify (tunnel routers). */
  readonly mapServers?: readonly MapServerStatus[];
  /** Remote RLOCs that RLOC probing watches, with their round-trip times (tunnel routers). */
  readonly remoteRlocs?: readonly RemoteRlocStatus[];
  /** Anything else worth a line: control address and port, mode, sizes. */
  readonly details?: StatusDetails;
}

/** A locator of a map-cache entry or a database mapping. */
export interface LocatorView {
  /** Address text; `"elp{...}"` style for an explicit locator path. */
  readonly address: string;
  /** Unicast priority. */
  readonly priority: number;
  /** Unicast weight. */
  readonly weight: number;
  /** Up/down state (probing, or the interface for local locators). */
  readonly state: LocatorState;
  /** For a database locator taken from an interface (`rloc-iface`): its name. */
  readonly interface?: string;
}

/** Where an entry came from: the config file, a runtime edit, or the protocol. */
export type Origin = "config" | "api" | "map-reply" | "map-notify";

/** One map-cache entry. */
export interface MapCacheView {
  /** EID prefix without the instance id, e.g. `"10.1.0.0/24"`. */
  readonly eidPrefix: string;
  /** Instance id. */
  readonly iid: number;
  /** A positive entry has locators; a negative one an action. */
  readonly kind: "positive" | "negative";
  /** Action of a negative entry (`"natively-forward"`, `"send-map-request"`, `"drop"`). */
  readonly action?: string;
  /** Whether the entry never expires (`[[static-map-cache]]` or an API edit). */
  readonly static: boolean;
  /** Where it came from; `runRole()` fills `"api"` for runtime edits. */
  readonly origin?: Origin;
  /** Record TTL in minutes, as received. */
  readonly ttl?: number;
  /** Expiry, ms since the epoch; null for static entries. */
  readonly expiresAt: number | null;
  /** When an entry for this prefix was installed (kept when it is refreshed), ms since the epoch. */
  readonly since?: number;
  /** Packets the data plane encapsulated by this entry (since it was installed there). */
  readonly packets?: number;
  /** Their bytes: the inner packets, without the outer headers. */
  readonly bytes?: number;
  /** The locators. */
  readonly rlocs: readonly LocatorView[];
}

/** One local EID prefix (a `[[database-mapping]]`). */
export interface DatabaseView {
  /** EID prefix without the instance id. */
  readonly eidPrefix: string;
  /** Instance id. */
  readonly iid: number;
  /** TTL of Map-Replies for it, minutes. */
  readonly ttl: number;
  /** Where it came from; `runRole()` fills `"api"` for runtime edits. */
  readonly origin?: Origin;
  /** The locators, with their state. */
  readonly rlocs: readonly LocatorView[];
}

/** A locator of a registration, as the ETR registered it. */
export interface RegisteredLocatorView {
  /** Locator address text. */
  readonly address: string;
  /** Unicast priority. */
  readonly priority: number;
  /** Unicast weight. */
  readonly weight: number;
  /** R bit: reachable, as the ETR sees it. */
  readonly reachable: boolean;
}

/** One registration on a map-server (the shape of `MsHandle.registrations()`). */
export interface RegistrationView {
  /** `"[iid]prefix"` (the `[iid]` only when non-zero). */
  readonly prefix: string;
  /** Instance id. */
  readonly iid: number;
  /** The `[[lisp-site]]` it was accepted under (absent for static entries). */
  readonly site?: string;
  /** `"map-register"`, or `"static"` for `[[ms-static-registered-site]]`. */
  readonly source: string;
  /** Source address and port of the last Map-Register. */
  readonly from?: string;
  /** xTR-ID, 32 hex digits, when the Map-Register carried one. */
  readonly xtrId?: string;
  /** site-ID, 16 hex digits, when the Map-Register carried one. */
  readonly siteId?: string;
  /** The registered locators. */
  readonly rlocs: readonly RegisteredLocatorView[];
  /** Record TTL, minutes. */
  readonly ttl: number;
  /** The ETR asked the map-server to proxy-reply. */
  readonly proxyReply: boolean;
  /** First registration, ms since the epoch. */
  readonly firstSeen: number;
  /** Last refresh, ms since the epoch. */
  readonly lastSeen: number;
  /** Expiry, ms since the epoch; null for static entries. */
  readonly expiresAt: number | null;
}

/** One configured `[[lisp-site]]` (the shape of `MsHandle.sites()`). */
export interface SiteView {
  /** `"[iid]prefix"`. */
  readonly prefix: string;
  /** Instance id. */
  readonly iid: number;
  /** Key ID registrations must use. */
  readonly keyType: number;
  /** Whether more specific prefixes may register. */
  readonly acceptMoreSpecifics: boolean;
  /** Whether Map-Requests are always answered by the map-server. */
  readonly proxyReply: boolean;
  /** Other DDT map-servers of the site. */
  readonly ddtMsPeers: readonly string[];
  /** Live registrations of the site. */
  readonly registrations: number;
}

/**
 * Map-Registers a map-server rejected lately, one line per source address
 * and reason (the shape of `SitesView.rejections`).
 */
export interface RejectionView {
  /** Source address of the Map-Registers (without the port). */
  readonly from: string;
  /** The `reason` label of the rejection counter (`"auth"`, `"no-site"`, ...). */
  readonly reason: string;
  /** What the last of them said (the prefix, the site, the key id...). */
  readonly detail: string;
  /** How many were rejected for that reason since `firstAt`. */
  readonly count: number;
  /** The first of them, ms since the epoch. */
  readonly firstAt: number;
  /** The last of them, ms since the epoch. */
  readonly lastAt: number;
}

/** What {@link StatusSource.sites} returns. */
export interface SitesView {
  /** The configured sites. */
  readonly sites: readonly SiteView[];
  /** The live registrations. */
  readonly registrations: readonly RegistrationView[];
  /** The map-server's recent rejections of Map-Registers, newest first. */
  readonly rejections?: readonly RejectionView[];
  /** The map-server's subscribers of mappings (RFC 9437), by prefix. */
  readonly subscriptions?: readonly SubscriptionView[];
}

/** A subscriber of a mapping on a map-server (RFC 9437 publish/subscribe). */
export interface SubscriptionView {
  /** The subscribed prefix with its instance id (`[iid]` only when non-zero). */
  readonly prefix: string;
  /** Instance id. */
  readonly iid: number;
  /** The subscriber's xTR-ID (32 hex digits). */
  readonly xtrId: string;
  /** Its Site-ID (16 hex digits). */
  readonly siteId: string;
  /** Its ITR-RLOCs. */
  readonly itrRlocs: readonly string[];
  /** Where publications go: address and port. */
  readonly notify: string;
  /** The `[[lisp-site]]` whose key signs the publications. */
  readonly site: string;
  /** Publications sent. */
  readonly published: number;
  /** Publications acknowledged. */
  readonly acknowledged: number;
  /** Whether a publication awaits its Map-Notify-Ack. */
  readonly pending: boolean;
  /** When it last subscribed, ms since the epoch. */
  readonly subscribedAt: number;
  /** When it expires without a new subscription, ms since the epoch. */
  readonly expiresAt: number;
}

/** A referral: a cached Map-Referral (mr) or a configured authority or delegation (ddt). */
export interface ReferralView {
  /** EID prefix without the instance id. */
  readonly eidPrefix: string;
  /** Instance id. */
  readonly iid: number;
  /** `"node-referral"`, `"ms-referral"`, `"ms-ack"`, `"delegation-hole"`, `"authoritative"`... */
  readonly action: string;
  /** Addresses referred to (DDT nodes or map-servers); empty for negative referrals. */
  readonly rlocs: readonly string[];
  /** TTL, minutes (absent for configured entries). */
  readonly ttl?: number;
  /** Expiry, ms since the epoch; null for configured entries. */
  readonly expiresAt: number | null;
  /** `"cache"` (learned by an mr), `"auth-site"` or `"deleg-site"` (a ddt's config). */
  readonly origin: "cache" | "auth-site" | "deleg-site";
}

/** What the map-cache listing is asked for; both parts are optional filters. */
export interface MapCacheQuery {
  /** EID address or prefix (canonical text, with `/len`): entries overlapping it. */
  readonly eid?: string;
  /** Instance id: entries of that instance only. */
  readonly iid?: number;
}

/** A value or a promise of it: providers may answer synchronously. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * What a role exposes over HTTP. Every member is optional; see the module
 * notes for who implements what.
 *
 * Write hooks get entries already validated (canonical addresses, host bits
 * clear, priorities and weights in range) in the config's own types, so a
 * tunnel router installs them the way it installs `[[static-map-cache]]`
 * and `[[database-mapping]]` entries. An entry for an (EID prefix, iid)
 * that exists is replaced. A database edit should re-register at once.
 * A hook may throw {@link SourceError} to refuse an edit with a status
 * and a message (for example 409 when an EID is not the role's to map).
 */
export interface StatusSource {
  /** RLOCs, map-servers and role details (role, version and uptime are added by the API). */
  status?(): MaybePromise<RoleStatus>;
  /**
   * Reads the config file again and applies what changed (runner/reload.ts);
   * `runRole()` adds it to the source it gives the API, roles do not.
   */
  reload?(): Promise<ReloadOutcome>;
  /**
   * Takes new map-servers, map-resolvers and proxy-ETRs (tunnel routers,
   * on a reload); resolves to what changed, one line each.
   */
  setPeers?(peers: PeerLists): MaybePromise<readonly string[]>;
  /**
   * The peer lists in force (what the last {@link setPeers} or the config
   * gave); `RuntimeEdits` (web/state.ts) provides it beside `setPeers`.
   */
  peerLists?(): MaybePromise<PeerLists>;
  /**
   * Map-cache entries. The API filters the result by `query` again, so a
   * provider may ignore it or use it to avoid listing a large cache.
   */
  mapCache?(query: MapCacheQuery): MaybePromise<readonly MapCacheView[]>;
  /** Local EID prefixes and their locators. */
  database?(): MaybePromise<readonly DatabaseView[]>;
  /** Configured sites and live registrations (map-server). */
  sites?(): MaybePromise<SitesView>;
  /** Referral cache (mr) or configured delegations (ddt). */
  referrals?(): MaybePromise<readonly ReferralView[]>;
  /** Counter and gauge values: `Counters.snapshot()` (`name{label="v"}` → number). */
  counters?(): MaybePromise<Readonly<Record<string, number>>>;
  /** Adds or replaces a static map-cache entry. */
  addStaticMapping?(entry: StaticMapCacheEntry): MaybePromise<void>;
  /** Removes a static map-cache entry; resolves false if there was none. */
  removeStaticMapping?(eidPrefix: Prefix, iid: number): MaybePromise<boolean>;
  /** Adds or replaces a local database mapping (and re-registers it). */
  addDatabaseMapping?(mapping: DatabaseMapping): MaybePromise<void>;
  /** Removes a local database mapping; resolves false if there was none. */
  removeDatabaseMapping?(eidPrefix: Prefix, iid: number): MaybePromise<boolean>;
  /** Adds or replaces a `[[lisp-site]]` (map-server): it takes Map-Registers at once. */
  addLispSite?(site: LispSite): MaybePromise<void>;
  /** Removes a `[[lisp-site]]` and withdraws its registrations; false if there was none. */
  removeLispSite?(eidPrefix: Prefix, iid: number): MaybePromise<boolean>;
  /** Adds or replaces a `[[ms-static-registered-site]]` (map-server). */
  addStaticSite?(site: MsStaticRegisteredSite): MaybePromise<void>;
  /** Removes a static registration; false if there was none. */
  removeStaticSite?(eidPrefix: Prefix, iid: number): MaybePromise<boolean>;
  /** Adds or replaces a `[[ddt-deleg-site]]` (ddt): referrals follow it at once. */
  addDelegSite?(site: DdtDelegSite): MaybePromise<void>;
  /** Removes a `[[ddt-deleg-site]]`; false if there was none. */
  removeDelegSite?(eidPrefix: Prefix, iid: number): MaybePromise<boolean>;
}

/** A tunnel router's peers as its config lists them (what {@link StatusSource.setPeers} takes). */
export interface PeerLists {
  /** `[[map-server]]`. */
  readonly mapServers: readonly MapServer[];
  /** `map-resolver`. */
  readonly mapResolvers: readonly string[];
  /** `[[proxy-etr-ipv4]]`. */
  readonly proxyEtrsIpv4: readonly ProxyEtr[];
  /** `[[proxy-etr-ipv6]]`. */
  readonly proxyEtrsIpv6: readonly ProxyEtr[];
}

/** What a configuration reload did (runner/reload.ts): `POST /api/v1/reload`'s answer. */
export interface ReloadOutcome {
  /** Whether the file was taken and every change applied. */
  readonly ok: boolean;
  /** Why not: the file's errors (file:line), the keys that cannot change, changes that failed. */
  readonly errors: readonly string[];
  /** The changes applied (`"[[database-mapping]] 10.1.0.0/24 added"`). */
  readonly changes: readonly string[];
}

/** An error a provider or hook throws to answer with a given HTTP status and message. */
export class SourceError extends Error {
  /** HTTP status to answer with (400..599). */
  readonly status: number;
  /** The request field at fault, if one is. */
  readonly field?: string;

  /** `status` and a message for the JSON error body. */
  constructor(status: number, message: string, field?: string) {
    super(message);
    this.name = "SourceError";
    this.status = status;
    if (field !== undefined) this.field = field;
  }
}

/**
 * Splits the roles' `"[iid]prefix"` text (`"[5]10.1.0.0/16"`, or
 * `"10.1.0.0/16"` for instance 0) into the views' `eidPrefix` and `iid`.
 */
export function splitIidPrefix(text: string): { eidPrefix: string; iid: number } {
  const m = /^\[(\d+)\](.*)$/.exec(text);
  return m ? { eidPrefix: m[2]!, iid: Number(m[1]) } : { eidPrefix: text, iid: 0 };
}
