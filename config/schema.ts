/**
 * The typed form of an `oor.toml` file, after validation and with every
 * default applied.
 *
 * The TOML keys are OOR's `oor.conf` names (hyphenated, and
 * `nat_traversal_support` / `ip_version` with underscores, as OOR spells
 * them); the fields here are their camelCase twins. Addresses are canonical
 * text (RFC 5952 for IPv6), prefixes are {@link Prefix} records with the
 * host bits already checked to be zero.
 *
 * @module
 */

/** The LISP roles, one per `oor` subcommand. */
export const ROLES = [
  "xtr",
  "mn",
  "rtr",
  "ms",
  "mr",
  "ddt",
  "ddt-mr",
] as const;

/** A LISP role: the subcommand `oor` runs as. */
export type Role = typeof ROLES[number];

/** How OOR's `operating-mode` spells each role (ours adds `MR`). */
export const OPERATING_MODE_NAMES: Readonly<Record<Role, string>> = {
  xtr: "xTR",
  mn: "MN",
  rtr: "RTR",
  ms: "MS",
  mr: "MR",
  ddt: "DDT",
  "ddt-mr": "DDT-MR",
};

/** The role named by `text` (any case: `xTR`, `xtr`, `DDT-MR`), or undefined. */
export function parseRole(text: string): Role | undefined {
  const lower = text.toLowerCase();
  return (ROLES as readonly string[]).includes(lower) ? lower as Role : undefined;
}

/** Defaults applied to keys a file leaves out. */
export const DEFAULTS = {
  /** `debug`: no debug output. */
  debug: 0,
  /** `map-request-retries`: OOR's DEFAULT_MAP_REQUEST_RETRIES. */
  mapRequestRetries: 3,
  /** `ipv6-scope`. */
  ipv6Scope: "GLOBAL",
  /** `encapsulation`. */
  encapsulation: "LISP",
  /** `control-port`: the LISP control port, RFC 9301 §5. */
  controlPort: 4342,
  /** `control-rate-limit`: requests per second accepted from one source address. */
  controlRateLimit: 1000,
  /** `data-port` with LISP encapsulation, RFC 9300 §5.3. */
  dataPortLisp: 4341,
  /** `data-port` with VXLAN-GPE encapsulation (IANA, draft-ietf-nvo3-vxlan-gpe). */
  dataPortVxlanGpe: 4790,
  /** `tun-name`: OOR's TUN device name. */
  tunName: "lispTun0",
  /** `tun-mtu`: OOR's TUN MTU. */
  tunMtu: 1440,
  /** `[data-plane] offloads`: on, as far as the kernel takes them. */
  dataPlaneOffloads: true,
  /** `[data-plane] udp-gso`: on (with offloads). */
  dataPlaneUdpGso: true,
  /** `[data-plane] workers`: the most it takes (the default is the number of cores). */
  dataPlaneMaxWorkers: 64,
  /** `[api] listen`: loopback only, unprivileged port. */
  apiListen: "127.0.0.1:9942",
  /** `[api] max-connections`: API connections served at once. */
  apiMaxConnections: 64,
  /** `[api] idle-timeout`, seconds a connection may stay silent before or between requests. */
  apiIdleTimeout: 5,
  /** `[api] request-timeout`, seconds to receive a whole request, and to send its answer. */
  apiRequestTimeout: 10,
  /** `rloc-probing.rloc-probe-interval`, seconds. */
  rlocProbeInterval: 30,
  /** `rloc-probing.rloc-probe-retries`. */
  rlocProbeRetries: 2,
  /** `rloc-probing.rloc-probe-retries-interval`, seconds. */
  rlocProbeRetriesInterval: 5,
  /** `key-type` of map-server, lisp-site and rtr-ms-node: HMAC-SHA-1-96. */
  keyType: 1,
  /** `priority` of a locator or proxy-ETR. */
  priority: 1,
  /** `weight` of a locator or proxy-ETR. */
  weight: 100,
  /** `ip_version` of rloc-iface and rtr-iface. */
  ipVersion: 4,
  /** `iid`: instance 0. */
  iid: 0,
  /** `ttl` of a database-mapping or ms-static-registered-site, minutes. */
  mappingTtl: 10,
  /** `ms-rtrs-set.ttl`, minutes (one day). */
  rtrsSetTtl: 1440,
  /** `rtr-ms-node.draft-version`. */
  draftVersion: "OLD",
  /** `lisp-site.max-registrations`: registrations (prefix and xTR) one site may hold. */
  maxRegistrations: 1024,
} as const;

/**
 * Most locators one EID record can carry: its Locator Count is 8 bits
 * (RFC 9301 §5.4). Every list of locators that becomes one record (a
 * database mapping, a static map-cache entry, a static registration, a
 * delegation's nodes, an rtr's interfaces) is held to it.
 */
export const MAX_RECORD_LOCATORS = 255;

/** Largest `lisp-site.max-registrations`. */
export const MAX_SITE_REGISTRATIONS = 10_000_000;

/**
 * Largest instance ID a mapping may have: 24 bits, so that it fits a
 * VXLAN-GPE VNI, less 0xFFFFFF, which marks a Data-Map-Notify (NAT
 * traversal) in a LISP data header.
 */
export const MAX_IID = 0xfffffe;

/** An IP prefix with zero host bits. */
export interface Prefix {
  /** Address family: 4 for IPv4, 6 for IPv6. */
  readonly family: 4 | 6;
  /** Network address in canonical text, e.g. `"10.1.0.0"` or `"2001:db8::"`. */
  readonly address: string;
  /** Prefix length: 0..32 for IPv4, 0..128 for IPv6. */
  readonly length: number;
}

/** `"10.1.0.0/16"` for a {@link Prefix}. */
export function formatPrefix(p: Pick<Prefix, "address" | "length">): string {
  return `${p.address}/${p.length}`;
}

/** HMAC used to authenticate Map-Register/Notify: 1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128. */
export type KeyType = 1 | 2;

/** `[rloc-probing]`: how locators of map-cache entries are probed. */
export interface RlocProbing {
  /** `rloc-probe-interval`: seconds between probes; 0 disables probing. */
  readonly interval: number;
  /** `rloc-probe-retries`: probes lost before a locator is marked down, 0..5. */
  readonly retries: number;
  /** `rloc-probe-retries-interval`: seconds between retries, 1..interval. */
  readonly retriesInterval: number;
}

/** `[data-plane]`: how a tunnel router's data plane moves packets. */
export interface DataPlaneConfig {
  /**
   * `offloads`: TUN offloads (checksum, TSO, USO: 64 KiB super-packets
   * cut into segments, in-order segments merged into one TUN write) and
   * UDP GSO/GRO on the data sockets, each as far as the kernel takes it
   * (default true); false: one plain packet per read, write and datagram.
   */
  readonly offloads: boolean;
  /**
   * `udp-gso`: with offloads, send a run of equal datagrams to one RLOC as
   * one UDP GSO send (default true). Such a send can cross virtual links
   * (veth, virtio) whole, up to a peer's host: a peer that reads its data
   * from a raw socket (OOR 1.3.0 does) then sees one datagram where there
   * are many. Turn it off when such a peer is reached over virtual links
   * only.
   */
  readonly udpGso: boolean;
  /**
   * `workers`: data-plane Workers, 1 to 64; absent: the number of cores.
   * Each has its own queue of a multi-queue TUN and its own data socket of
   * each family (SO_REUSEPORT); one flow is always handled by one Worker.
   * 1: one Worker, a single-queue TUN, one socket per family.
   */
  readonly workers?: number;
  /**
   * `cpus`: CPU numbers to pin the data-plane Workers to, Worker k to
   * `cpus[k % cpus.length]` (sched_setaffinity on its thread); a CPU the
   * kernel refuses (none such, outside the process's cpuset) stops the
   * start with that error. Absent: the kernel's scheduler places them.
   */
  readonly cpus?: readonly number[];
}

/** `[api]`: the local HTTP status page and JSON API. */
export interface ApiConfig {
  /** `enabled`: whether the API listens at all. */
  readonly enabled: boolean;
  /** `listen` host: an IPv4 or IPv6 address. */
  readonly host: string;
  /** `listen` port. */
  readonly port: number;
  /**
   * `token`: bearer token the API's edits need (else `OOR_API_TOKEN`); with
   * neither the API is read-only, on any address.
   */
  readonly token?: string;
  /**
   * `state-file`: where runtime edits made through the API are kept, as
   * written; a role resolves a relative path against the config file's
   * directory, and uses `<config>.state.json` when it is not set.
   */
  readonly stateFile?: string;
  /**
   * `max-connections`: API connections served at once (1..10000, default
   * 64); one more is answered 503 and closed.
   */
  readonly maxConnections?: number;
  /**
   * `idle-timeout`: seconds a connection may send nothing before its first
   * request or between two (1..3600, default 5); then it is closed.
   */
  readonly idleTimeout?: number;
  /**
   * `request-timeout`: seconds a client has to send a whole request from
   * its first byte, and to read the answer (1..3600, default 10); then
   * the connection is closed (with a 408 for a request not all received).
   */
  readonly requestTimeout?: number;
}

/** `[[map-server]]`: where Map-Registers go (xTR, MN), or where an MR forwards requests. */
export interface MapServer {
  /** `address`: IPv4 or IPv6 address. */
  readonly address: string;
  /** `key-type`: the HMAC algorithm. */
  readonly keyType: KeyType;
  /** `key`: shared secret; required for xtr and mn, optional for mr. */
  readonly key?: string;
  /** `proxy-reply`: ask the map-server to answer Map-Requests for us. */
  readonly proxyReply: boolean;
  /**
   * `merge`: send the I bit and this router's xTR-ID in Map-Registers to
   * this map-server, so that it keeps the registrations of a site's several
   * xTRs apart and merges their locators (RFC 9301 §8.2). Off by default:
   * OOR 1.3.0's map-server takes any Map-Register with the I bit for one an
   * RTR relayed. Behind a NAT the xTR-ID is always sent.
   */
  readonly merge: boolean;
}

/** `[[proxy-etr-ipv4]]` / `[[proxy-etr-ipv6]]`: a Proxy-ETR for non-LISP destinations. */
export interface ProxyEtr {
  /** `address`: IPv4 or IPv6 address of the PETR. */
  readonly address: string;
  /** `priority`: lower is preferred; 255 means do not use. */
  readonly priority: number;
  /** `weight`: share among PETRs of equal priority. */
  readonly weight: number;
}

/** A locator given by address in `rloc-address`: an IP or the name of an ELP. */
export type RlocAddress =
  | {
    /** The locator is an IP address. */
    readonly kind: "address";
    /** `address`: IPv4 or IPv6 address. */
    readonly address: string;
    /** `priority`: lower is preferred; 255 means do not use. */
    readonly priority: number;
    /** `weight`: share among locators of equal priority. */
    readonly weight: number;
  }
  | {
    /** The locator is an explicit locator path. */
    readonly kind: "elp";
    /** `address`: the `elp-name` of an `[[explicit-locator-path]]`. */
    readonly elpName: string;
    /** `priority`: lower is preferred; 255 means do not use. */
    readonly priority: number;
    /** `weight`: share among locators of equal priority. */
    readonly weight: number;
  };

/** `rloc-iface`: a locator taken from an interface's address. */
export interface RlocIface {
  /** `interface`: Linux interface name. */
  readonly interface: string;
  /** `ip_version`: which of the interface's addresses to use. */
  readonly ipVersion: 4 | 6;
  /** `priority`: lower is preferred; 255 means do not use. */
  readonly priority: number;
  /** `weight`: share among locators of equal priority. */
  readonly weight: number;
}

/** `[[database-mapping]]`: an EID prefix this xTR/MN is authoritative for. */
export interface DatabaseMapping {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID (VNI with VXLAN-GPE). */
  readonly iid: number;
  /** `ttl`: minutes a Map-Reply for this mapping may be cached. */
  readonly ttl: number;
  /** `rloc-address` entries, in file order. */
  readonly rlocAddresses: readonly RlocAddress[];
  /** `rloc-iface` entries, in file order. */
  readonly rlocIfaces: readonly RlocIface[];
}

/**
 * `[[instance]]`: an instance ID with its own TUN and routing table, so
 * that its EID prefixes may overlap those of other instance IDs (xtr).
 * Traffic arriving on `site-interfaces` enters this instance; traffic
 * decapsulated with this instance ID leaves through those interfaces.
 */
export interface Instance {
  /** `iid`: the instance ID. */
  readonly iid: number;
  /** `tun-name`: its TUN device (default `<tun-name>-<iid>`). */
  readonly tunName: string;
  /** `site-interfaces`: the interfaces of this instance's sites. */
  readonly siteInterfaces: readonly string[];
}

/** `[[static-map-cache]]`: a map-cache entry that never expires. */
export interface StaticMapCacheEntry {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID. */
  readonly iid: number;
  /** `rloc-address` entries. */
  readonly rlocAddresses: readonly RlocAddress[];
}

/** `[[rtr-iface]]`: an interface whose address an RTR sends from. */
export interface RtrIface {
  /** `iface`: Linux interface name. */
  readonly iface: string;
  /** `ip_version`: which of its addresses to use. */
  readonly ipVersion: 4 | 6;
  /** `priority`: lower is preferred. */
  readonly priority: number;
  /** `weight`: share among interfaces of equal priority. */
  readonly weight: number;
}

/** `[[rtr-ms-node]]`: a map-server the RTR works with for NAT traversal. */
export interface RtrMsNode {
  /** `address`: IPv4 or IPv6 address of the map-server. */
  readonly address: string;
  /** `key`: shared secret with that map-server. */
  readonly key: string;
  /** `key-type`: the HMAC algorithm (ours; OOR only has SHA-1). */
  readonly keyType: KeyType;
  /** `draft-version`: NAT-traversal draft the MS speaks, OLD (< 04) or NEW. */
  readonly draftVersion: "OLD" | "NEW";
}

/** `[[lisp-site]]`: an EID prefix a map-server accepts registrations for. */
export interface LispSite {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID. */
  readonly iid: number;
  /** `key-type`: the HMAC algorithm registrations must use. */
  readonly keyType: KeyType;
  /** `key`: shared secret of the site. */
  readonly key: string;
  /** `accept-more-specifics`: accept registrations of longer prefixes. */
  readonly acceptMoreSpecifics: boolean;
  /** `proxy-reply`: always answer Map-Requests for this site ourselves. */
  readonly proxyReply: boolean;
  /** `merge`: merge the locators of registrations from several xTRs. */
  readonly merge: boolean;
  /** `ddt-ms-peers-complete`: `ddt-ms-peers` lists every peer. */
  readonly ddtMsPeersComplete: boolean;
  /** `ddt-ms-peers`: other map-servers serving the same prefix (DDT). */
  readonly ddtMsPeers: readonly string[];
  /**
   * `max-registrations`: how many registrations (one per prefix and
   * registering xTR) the site may hold; past it Map-Registers adding more
   * are refused.
   */
  readonly maxRegistrations: number;
}

/** `[[ms-static-registered-site]]`: a mapping registered from the config. */
export interface MsStaticRegisteredSite {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID. */
  readonly iid: number;
  /** `ttl`: minutes a Map-Reply for it may be cached. */
  readonly ttl: number;
  /** `rloc-address` entries. */
  readonly rlocAddresses: readonly RlocAddress[];
}

/** `[[ms-rtr-node]]`: an RTR a map-server offers to NATed xTRs. */
export interface MsRtrNode {
  /** `name`: how `ms-rtrs-set.rtrs` refers to it. */
  readonly name: string;
  /** `address`: IPv4 or IPv6 address of the RTR. */
  readonly address: string;
  /** `key`: shared secret with the RTR. */
  readonly key: string;
}

/** `[[ms-rtrs-set]]`: a named group of RTRs. */
export interface MsRtrsSet {
  /** `name`: how `ms-advertised-rtrs-set` refers to it. */
  readonly name: string;
  /** `ttl`: minutes the receiver of an Info-Reply keeps the list. */
  readonly ttl: number;
  /** `rtrs`: names of `[[ms-rtr-node]]` entries. */
  readonly rtrs: readonly string[];
}

/** `[[ddt-auth-site]]`: a prefix this DDT node is authoritative for. */
export interface DdtAuthSite {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID. */
  readonly iid: number;
}

/** `[[ddt-deleg-site]]`: a more specific prefix delegated to other nodes. */
export interface DdtDelegSite {
  /** `eid-prefix`. */
  readonly eidPrefix: Prefix;
  /** `iid`: instance ID. */
  readonly iid: number;
  /** `delegation-type`: children are DDT nodes, or map-servers. */
  readonly delegationType: "CHILD_DDT_NODE" | "MAP_SERVER_DDT_NODE";
  /** `deleg-nodes`: addresses of the nodes the prefix is delegated to. */
  readonly delegNodes: readonly string[];
}

/** `elp-node`: one hop of an explicit locator path. */
export interface ElpNode {
  /** `address`: IPv4 or IPv6 address of the hop. */
  readonly address: string;
  /** `strict`: the S bit. */
  readonly strict: boolean;
  /** `probe`: the P bit. */
  readonly probe: boolean;
  /** `lookup`: the L bit. */
  readonly lookup: boolean;
}

/** `[[explicit-locator-path]]`: a named ELP (RFC 8060 §4.9) usable as a locator. */
export interface ExplicitLocatorPath {
  /** `elp-name`. */
  readonly name: string;
  /** `elp-node` hops, in path order. */
  readonly nodes: readonly ElpNode[];
}

/** A whole validated `oor.toml`. */
export interface Config {
  /** The role checked against: from the command line, else `operating-mode`. */
  readonly role?: Role;
  /** `operating-mode`, if the file names one. */
  readonly operatingMode?: Role;
  /** `debug`: 0..3. */
  readonly debug: number;
  /** `log-file`: where logs go when set; else stderr. */
  readonly logFile?: string;
  /** `map-request-retries`: extra Map-Requests per map-cache miss, 0..5. */
  readonly mapRequestRetries: number;
  /** `ipv6-scope`: which IPv6 addresses are usable locators. */
  readonly ipv6Scope: "GLOBAL" | "SITE";
  /** `encapsulation`: data-plane header. */
  readonly encapsulation: "LISP" | "VXLAN-GPE";
  /** `control-iface`: interface whose addresses the control plane uses. */
  readonly controlIface?: string;
  /** `control-address`: address the control socket binds; unset means all. */
  readonly controlAddress?: string;
  /** `control-port`: UDP port of the control plane; 0 picks a free port (for tests). */
  readonly controlPort: number;
  /**
   * `control-rate-limit`: Map-Requests, Map-Registers and Info-Requests
   * accepted per second from one source address (a burst of twice as many
   * passes); 0 means unlimited.
   */
  readonly controlRateLimit: number;
  /** `data-port`: UDP port of the data plane (4341 LISP, 4790 VXLAN-GPE). */
  readonly dataPort: number;
  /** `tun-name`: TUN device name. */
  readonly tunName: string;
  /** `tun-mtu`: TUN device MTU. */
  readonly tunMtu: number;
  /** `[data-plane]`. */
  readonly dataPlane: DataPlaneConfig;
  /** `[api]`. */
  readonly api: ApiConfig;
  /** `[rloc-probing]`. */
  readonly rlocProbing: RlocProbing;
  /** `map-resolver`: addresses Map-Requests are sent to. */
  readonly mapResolvers: readonly string[];
  /** `[[map-server]]`. */
  readonly mapServers: readonly MapServer[];
  /** `[[proxy-etr-ipv4]]`: PETRs for IPv4 EIDs. */
  readonly proxyEtrsIpv4: readonly ProxyEtr[];
  /** `[[proxy-etr-ipv6]]`: PETRs for IPv6 EIDs. */
  readonly proxyEtrsIpv6: readonly ProxyEtr[];
  /** `proxy-itrs`: PITR addresses allowed to send us Map-Requests for our EIDs. */
  readonly proxyItrs: readonly string[];
  /** `[[database-mapping]]`. */
  readonly databaseMappings: readonly DatabaseMapping[];
  /** `[[static-map-cache]]`. */
  readonly staticMapCache: readonly StaticMapCacheEntry[];
  /** `[[instance]]`: instance IDs with their own TUN and routing table (xtr). */
  readonly instances: readonly Instance[];
  /**
   * `destination-prefixes`: when not empty, only traffic to these EID
   * prefixes enters the overlay (xtr, mn); the rest is routed natively.
   */
  readonly destinationPrefixes: readonly Prefix[];
  /** `nat_traversal_support`: discover NATs and go through RTRs. */
  readonly natTraversalSupport: boolean;
  /**
   * `subscribe`: subscribe to the mappings this router resolves (RFC 9437
   * publish/subscribe: the N and I bits and the xTR-ID in its Map-Requests),
   * so the map-server pushes every change at once. A map-server that does
   * not support it answers as usual, and SMRs and TTLs keep working.
   */
  readonly subscribe: boolean;
  /** `[[rtr-iface]]`. */
  readonly rtrIfaces: readonly RtrIface[];
  /** `[[rtr-ms-node]]`. */
  readonly rtrMsNodes: readonly RtrMsNode[];
  /** `[[lisp-site]]`. */
  readonly lispSites: readonly LispSite[];
  /** `[[ms-static-registered-site]]`. */
  readonly msStaticRegisteredSites: readonly MsStaticRegisteredSite[];
  /** `[[ms-rtr-node]]`. */
  readonly msRtrNodes: readonly MsRtrNode[];
  /** `[[ms-rtrs-set]]`. */
  readonly msRtrsSets: readonly MsRtrsSet[];
  /** `ms-advertised-rtrs-set`: name of the set sent in Info-Replies. */
  readonly msAdvertisedRtrsSet?: string;
  /** `[[ddt-auth-site]]`. */
  readonly ddtAuthSites: readonly DdtAuthSite[];
  /** `[[ddt-deleg-site]]`. */
  readonly ddtDelegSites: readonly DdtDelegSite[];
  /** `ddt-root-addresses`: DDT root nodes an MR starts from. */
  readonly ddtRootAddresses: readonly string[];
  /** `[[explicit-locator-path]]`. */
  readonly explicitLocatorPaths: readonly ExplicitLocatorPath[];
}
