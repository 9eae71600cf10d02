/**
 * Parse and validate the text of an `oor.toml`, with no I/O.
 *
 * Every problem is collected (not just the first), each placed on its line:
 * `oor.toml:14: map-server[0].key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)`.
 *
 * @module
 */

import { parse, TomlError } from "smol-toml";
import { ConfigError } from "./errors.ts";
import {
  absentOrEmpty,
  checkKeys,
  checkLocatorCount,
  choices,
  Ctx,
  entryCount,
  own,
  type Path,
  readAddress,
  readAddressList,
  readBool,
  readEnum,
  readIid,
  readInt,
  readInterface,
  readIpVersion,
  readKeyType,
  readMaxRegistrations,
  readNameList,
  readPrefix,
  readPriority,
  readString,
  readTable,
  readTables,
  readTtl,
  readWeight,
  type Table,
  Uniq,
} from "./_read.ts";
import { formatPath, LineLocator } from "./_locate.ts";
import { checkOverlaps } from "./_overlap.ts";
import { readDataPlane } from "./_data_plane.ts";
import { isInterfaceName, isLoopback, parseAddress, parsePrefix, prefixCovers } from "./_ip.ts";
import {
  type ApiConfig,
  type Config,
  type DatabaseMapping,
  type DdtAuthSite,
  type DdtDelegSite,
  DEFAULTS,
  type ElpNode,
  type ExplicitLocatorPath,
  formatPrefix,
  type Instance,
  type LispSite,
  type MapServer,
  type MsRtrNode,
  type MsRtrsSet,
  type MsStaticRegisteredSite,
  OPERATING_MODE_NAMES,
  parseRole,
  type Prefix,
  type ProxyEtr,
  type RlocAddress,
  type RlocIface,
  type RlocProbing,
  type Role,
  type RtrIface,
  type RtrMsNode,
  type StaticMapCacheEntry,
} from "./schema.ts";

/** What {@link parseConfig} and `loadConfig` return. */
export type ConfigResult =
  | {
    /** The file is valid. */
    readonly ok: true;
    /** The typed config, defaults applied. */
    readonly config: Config;
    /** Things worth saying that do not stop the file from loading. */
    readonly warnings: readonly ConfigError[];
  }
  | {
    /** The file is not valid. */
    readonly ok: false;
    /** Every problem found, in line order. */
    readonly errors: readonly ConfigError[];
    /** Warnings found along the way. */
    readonly warnings: readonly ConfigError[];
  };

/** Options of {@link parseConfig}. */
export interface ParseConfigOptions {
  /** File name to show in errors; `"oor.toml"` if not given. */
  readonly file?: string;
  /**
   * Role to check the file against (the subcommand). When the file has an
   * `operating-mode` that disagrees, that is an error. When neither is
   * given, only the role-independent rules are checked.
   */
  readonly role?: Role;
}

// ---------------------------------------------------------------------------
// Key tables: which keys each table may hold.

/** Top-level keys, in the order a file usually has them. */
const TOP_KEYS = [
  "debug",
  "log-file",
  "map-request-retries",
  "ipv6-scope",
  "operating-mode",
  "encapsulation",
  "control-iface",
  "control-address",
  "control-port",
  "control-rate-limit",
  "data-port",
  "tun-name",
  "tun-mtu",
  "data-plane",
  "api",
  "rloc-probing",
  "map-resolver",
  "subscribe",
  "map-server",
  "proxy-etr-ipv4",
  "proxy-etr-ipv6",
  "proxy-itrs",
  "database-mapping",
  "static-map-cache",
  "instance",
  "destination-prefixes",
  "nat_traversal_support",
  "rtr-iface",
  "rtr-ms-node",
  "lisp-site",
  "ms-static-registered-site",
  "ms-rtr-node",
  "ms-rtrs-set",
  "ms-advertised-rtrs-set",
  "ddt-auth-site",
  "ddt-deleg-site",
  "ddt-root-addresses",
  "explicit-locator-path",
] as const;

const API_KEYS = [
  "enabled",
  "listen",
  "token",
  "state-file",
  "max-connections",
  "idle-timeout",
  "request-timeout",
] as const;
const PROBING_KEYS = [
  "rloc-probe-interval",
  "rloc-probe-retries",
  "rloc-probe-retries-interval",
] as const;
const MAP_SERVER_KEYS = ["address", "key-type", "key", "proxy-reply", "merge"] as const;
const PETR_KEYS = ["address", "priority", "weight"] as const;
const RLOC_ADDRESS_KEYS = ["address", "priority", "weight"] as const;
const RLOC_IFACE_KEYS = ["interface", "ip_version", "priority", "weight"];
const DB_MAPPING_KEYS = [
  "eid-prefix",
  "iid",
  "ttl",
  "rloc-address",
  "rloc-iface",
] as const;
const STATIC_MC_KEYS = ["eid-prefix", "iid", "rloc-address"] as const;
const INSTANCE_KEYS = ["iid", "tun-name", "site-interfaces"] as const;
const RTR_IFACE_KEYS = ["iface", "ip_version", "priority", "weight"] as const;
const RTR_MS_KEYS = ["address", "key", "key-type", "draft-version"] as const;
const LISP_SITE_KEYS = [
  "eid-prefix",
  "iid",
  "key-type",
  "key",
  "accept-more-specifics",
  "proxy-reply",
  "merge",
  "ddt-ms-peers-complete",
  "ddt-ms-peers",
  "max-registrations",
] as const;
const MS_STATIC_KEYS = ["eid-prefix", "iid", "ttl", "rloc-address"] as const;
const MS_RTR_NODE_KEYS = ["name", "address", "key"] as const;
const MS_RTRS_SET_KEYS = ["name", "ttl", "rtrs"] as const;
const DDT_AUTH_KEYS = ["eid-prefix", "iid"] as const;
const DDT_DELEG_KEYS = [
  "eid-prefix",
  "iid",
  "delegation-type",
  "deleg-nodes",
] as const;
const ELP_KEYS = ["elp-name", "elp-node"] as const;
const ELP_NODE_KEYS = ["address", "strict", "probe", "lookup"] as const;

/** OOR keys that oor.toml does not take, with what to do instead. */
const NOT_SUPPORTED: Readonly<Record<string, string>> = {
  "rloc-probing-interval":
    "OOR's old rloc-probing-interval is not supported; use rloc-probe-interval in [rloc-probing]",
  "rtr-ifaces":
    "write each interface as a top-level [[rtr-iface]] table instead of inside rtr-ifaces",
  "replication-list": "replication lists (RLE) are not supported yet",
  "multicast-info": "multicast-info is not supported yet",
  "rtr-database-mapping": "rtr-database-mapping is not supported",
  "rtr-data-iface": "rtr-data-iface is not supported; use [[rtr-iface]]",
  "override-dns": "override-dns is Android-only and not supported",
  "override-dns-primary": "override-dns is Android-only and not supported",
  "override-dns-secondary": "override-dns is Android-only and not supported",
};

/** Top-level keys that only some roles read; others warn that they are ignored. */
/** The hint for an unknown top-level key that is known elsewhere. */
function topLevelHint(key: string): string | undefined {
  if (NOT_SUPPORTED[key] !== undefined) return `: ${NOT_SUPPORTED[key]}`;
  if (PROBING_KEYS.some((k) => k === key)) return " (it belongs in [rloc-probing])";
  if (API_KEYS.some((k) => k === key)) return " (it belongs in [api])";
  return undefined;
}

const TR_ROLES: readonly Role[] = ["xtr", "mn", "rtr"];
const ROLE_KEYS: Readonly<Record<string, readonly Role[]>> = {
  "map-request-retries": ["xtr", "mn", "rtr", "mr", "ddt-mr"],
  "encapsulation": TR_ROLES,
  "data-port": TR_ROLES,
  "tun-name": TR_ROLES,
  "tun-mtu": TR_ROLES,
  "data-plane": TR_ROLES,
  "rloc-probing": TR_ROLES,
  "map-resolver": TR_ROLES,
  "static-map-cache": TR_ROLES,
  "map-server": ["xtr", "mn", "mr"],
  "proxy-etr-ipv4": ["xtr", "mn"],
  "proxy-etr-ipv6": ["xtr", "mn"],
  "proxy-itrs": ["xtr", "mn"],
  "database-mapping": ["xtr", "mn"],
  "instance": ["xtr"],
  "destination-prefixes": ["xtr", "mn"],
  "nat_traversal_support": ["xtr", "mn"],
  "subscribe": ["xtr", "mn"],
  "rtr-iface": ["rtr"],
  "rtr-ms-node": ["rtr"],
  "lisp-site": ["ms"],
  "ms-static-registered-site": ["ms"],
  "ms-rtr-node": ["ms"],
  "ms-rtrs-set": ["ms"],
  "ms-advertised-rtrs-set": ["ms"],
  "ddt-auth-site": ["ddt"],
  "ddt-deleg-site": ["ddt"],
  "ddt-root-addresses": ["mr", "ddt-mr"],
  "explicit-locator-path": ["xtr", "mn", "rtr", "ms"],
};

// ---------------------------------------------------------------------------
// The entry point.

/**
 * Parses and validates the text of an `oor.toml`. Pure: no file access.
 *
 * A TOML syntax error gives one error with line and column
 * (`oor.toml:3:9: invalid value`); otherwise every validation problem is
 * reported at once.
 */
export function parseConfig(
  text: string,
  options: ParseConfigOptions = {},
): ConfigResult {
  const file = options.file ?? "oor.toml";
  let raw: Table;
  try {
    raw = parse(text) as Table;
  } catch (e) {
    if (e instanceof TomlError) {
      const reason = (e.message.split("\n")[0] ?? "")
        .replace(/^Invalid TOML document: /, "");
      return {
        ok: false,
        errors: [new ConfigError(file, e.line, "", reason, e.column)],
        warnings: [],
      };
    }
    throw e;
  }
  const ctx = new Ctx(file, new LineLocator(text), topLevelHint);
  const config = readConfig(ctx, raw, options.role);
  const warnings = byLine(ctx.warnings);
  if (ctx.errors.length > 0) {
    return { ok: false, errors: byLine(ctx.errors), warnings };
  }
  return { ok: true, config, warnings };
}

/** Stable sort by line; problems with no line go last. */
function byLine(list: readonly ConfigError[]): ConfigError[] {
  return list
    .map((e, i) => ({ e, i }))
    .sort((a, b) => (a.e.line ?? Infinity) - (b.e.line ?? Infinity) || a.i - b.i)
    .map((x) => x.e);
}

// ---------------------------------------------------------------------------
// Sections.

function readConfig(ctx: Ctx, raw: Table, given: Role | undefined): Config {
  checkKeys(ctx, raw, [], TOP_KEYS);

  const debug = readInt(ctx, raw, [], "debug", 0, 3, DEFAULTS.debug);
  const logFile = readString(ctx, raw, [], "log-file");
  const mapRequestRetries = readInt(
    ctx,
    raw,
    [],
    "map-request-retries",
    0,
    5,
    DEFAULTS.mapRequestRetries,
  );
  const ipv6Scope = readEnum(
    ctx,
    raw,
    [],
    "ipv6-scope",
    ["GLOBAL", "SITE"] as const,
    DEFAULTS.ipv6Scope,
  );

  let operatingMode: Role | undefined;
  const modeText = readString(ctx, raw, [], "operating-mode");
  if (modeText !== undefined) {
    operatingMode = parseRole(modeText);
    if (operatingMode === undefined) {
      ctx.error(
        ["operating-mode"],
        `must be ${choices(Object.values(OPERATING_MODE_NAMES))} (got "${modeText}")`,
      );
    } else if (given !== undefined && given !== operatingMode) {
      ctx.error(
        ["operating-mode"],
        `is "${modeText}" but the role given on the command line is ${given}`,
      );
    }
  }
  const role = given ?? operatingMode;

  const encapsulation = readEnum(
    ctx,
    raw,
    [],
    "encapsulation",
    ["LISP", "VXLAN-GPE"] as const,
    DEFAULTS.encapsulation,
  );
  const controlIface = readInterface(ctx, raw, [], "control-iface", false);
  const controlAddress = readAddress(ctx, raw, [], "control-address");
  const controlPort = readInt(
    ctx,
    raw,
    [],
    "control-port",
    0,
    65535,
    DEFAULTS.controlPort,
  );
  const controlRateLimit = readInt(
    ctx,
    raw,
    [],
    "control-rate-limit",
    0,
    10_000_000,
    DEFAULTS.controlRateLimit,
  );
  const dataPort = readInt(
    ctx,
    raw,
    [],
    "data-port",
    1,
    65535,
    encapsulation === "VXLAN-GPE" ? DEFAULTS.dataPortVxlanGpe : DEFAULTS.dataPortLisp,
  );
  if (dataPort === controlPort && own(raw, "data-port") !== undefined) {
    ctx.error(["data-port"], `must differ from control-port (${controlPort})`);
  }
  const tunName = readInterface(ctx, raw, [], "tun-name", false) ??
    DEFAULTS.tunName;
  const tunMtu = readInt(ctx, raw, [], "tun-mtu", 576, 65535, DEFAULTS.tunMtu);
  const dataPlane = readDataPlane(ctx, raw);

  const api = readApi(ctx, raw);
  const rlocProbing = readRlocProbing(ctx, raw);
  const mapResolvers = readAddressList(ctx, raw, [], "map-resolver");
  const mapServers = readMapServers(ctx, raw, role);
  const proxyEtrsIpv4 = readProxyEtrs(ctx, raw, "proxy-etr-ipv4");
  const proxyEtrsIpv6 = readProxyEtrs(ctx, raw, "proxy-etr-ipv6");
  const proxyItrs = readAddressList(ctx, raw, [], "proxy-itrs");
  const explicitLocatorPaths = readElps(ctx, raw);
  const elpNames = new Set(explicitLocatorPaths.map((e) => e.name));
  const databaseMappings = readDatabaseMappings(
    ctx,
    raw,
    elpNames,
    role,
  );
  const staticMapCache = readStaticMapCache(ctx, raw, elpNames);
  const instances = readInstances(ctx, raw, tunName);
  checkOverlaps(ctx, databaseMappings, instances);
  if (tunMtu < 1280 && databaseMappings.some((m) => m.eidPrefix.family === 6)) {
    // Linux turns IPv6 off on a link whose MTU is below IPv6's minimum (RFC 8200 §5).
    ctx.error(["tun-mtu"], `must be at least 1280 with IPv6 EID prefixes (got ${tunMtu})`);
  }
  const destinationPrefixes = readPrefixList(ctx, raw, [], "destination-prefixes");
  const natTraversalSupport = readBool(
    ctx,
    raw,
    [],
    "nat_traversal_support",
    false,
  );
  const subscribe = readBool(ctx, raw, [], "subscribe", false);
  if (natTraversalSupport && encapsulation === "VXLAN-GPE") {
    // NAT traversal rides on the LISP data port (Info-Requests and the
    // registrations through the RTR share the xTR's NAT binding with data).
    ctx.error(["nat_traversal_support"], 'NAT traversal needs encapsulation = "LISP"');
  }
  const rtrIfaces = readRtrIfaces(ctx, raw);
  const rtrMsNodes = readRtrMsNodes(ctx, raw);
  const lispSites = readLispSites(ctx, raw, controlAddress);
  const msStaticRegisteredSites = readMsStaticSites(ctx, raw, elpNames);
  const msRtrNodes = readMsRtrNodes(ctx, raw);
  const msRtrsSets = readMsRtrsSets(ctx, raw, msRtrNodes);
  const msAdvertisedRtrsSet = readString(
    ctx,
    raw,
    [],
    "ms-advertised-rtrs-set",
  );
  if (
    msAdvertisedRtrsSet !== undefined &&
    !msRtrsSets.some((s) => s.name === msAdvertisedRtrsSet)
  ) {
    ctx.error(
      ["ms-advertised-rtrs-set"],
      `no [[ms-rtrs-set]] is named "${msAdvertisedRtrsSet}"`,
    );
  }
  const ddtAuthSites = readDdtAuthSites(ctx, raw);
  const ddtDelegSites = readDdtDelegSites(ctx, raw, ddtAuthSites);
  const ddtRootAddresses = readAddressList(ctx, raw, [], "ddt-root-addresses");

  const config: Config = {
    ...(role !== undefined ? { role } : {}),
    ...(operatingMode !== undefined ? { operatingMode } : {}),
    debug,
    ...(logFile !== undefined ? { logFile } : {}),
    mapRequestRetries,
    ipv6Scope,
    encapsulation,
    ...(controlIface !== undefined ? { controlIface } : {}),
    ...(controlAddress !== undefined ? { controlAddress } : {}),
    controlPort,
    controlRateLimit,
    dataPort,
    tunName,
    tunMtu,
    dataPlane,
    api,
    rlocProbing,
    mapResolvers,
    mapServers,
    proxyEtrsIpv4,
    proxyEtrsIpv6,
    proxyItrs,
    databaseMappings,
    staticMapCache,
    instances,
    destinationPrefixes,
    natTraversalSupport,
    subscribe,
    rtrIfaces,
    rtrMsNodes,
    lispSites,
    msStaticRegisteredSites,
    msRtrNodes,
    msRtrsSets,
    ...(msAdvertisedRtrsSet !== undefined ? { msAdvertisedRtrsSet } : {}),
    ddtAuthSites,
    ddtDelegSites,
    ddtRootAddresses,
    explicitLocatorPaths,
  };
  if (role !== undefined) checkRole(ctx, raw, config, role);
  return config;
}

function readApi(ctx: Ctx, raw: Table): ApiConfig {
  const t = readTable(ctx, raw, "api", API_KEYS);
  const enabled = readBool(ctx, t, ["api"], "enabled", true);
  const token = readString(ctx, t, ["api"], "token");
  const stateFile = readString(ctx, t, ["api"], "state-file");
  const limits: { maxConnections?: number; idleTimeout?: number; requestTimeout?: number } = {};
  for (
    const [key, field, max] of [
      ["max-connections", "maxConnections", 10_000],
      ["idle-timeout", "idleTimeout", 3600],
      ["request-timeout", "requestTimeout", 3600],
    ] as const
  ) {
    if (Object.hasOwn(t, key)) limits[field] = readInt(ctx, t, ["api"], key, 1, max, 1);
  }
  const listen = readString(ctx, t, ["api"], "listen") ?? DEFAULTS.apiListen;
  const m = /^(?:\[([^\]]+)\]|([^:]+)):([0-9]{1,5})$/.exec(listen);
  const addr = m ? parseAddress(m[1] ?? m[2] ?? "") : undefined;
  const port = m ? Number(m[3]) : 0;
  // An IPv6 host must be bracketed, an IPv4 one must not.
  const shapeOk = addr !== undefined &&
    (addr.family === 6) === (m?.[1] !== undefined);
  if (!shapeOk || port < 1 || port > 65535) {
    ctx.error(
      ["api", "listen"],
      `must be ADDRESS:PORT like 127.0.0.1:9942 or [::1]:9942 (got "${listen}")`,
    );
    return { enabled, host: "127.0.0.1", port: 9942 };
  }
  if (enabled && !isLoopback(addr) && token === undefined) {
    // Reads are served anywhere; writes need a token, here or in OOR_API_TOKEN.
    ctx.warn(
      ["api", "listen"],
      "not a loopback address and no api.token: anyone who can reach it may read the API; " +
        "edits are refused unless OOR_API_TOKEN is set in the role's environment",
    );
  }
  return {
    enabled,
    host: addr.text,
    port,
    ...(token !== undefined ? { token } : {}),
    ...(stateFile !== undefined ? { stateFile } : {}),
    ...limits,
  };
}

function readRlocProbing(ctx: Ctx, raw: Table): RlocProbing {
  const t = readTable(ctx, raw, "rloc-probing", PROBING_KEYS);
  const p = ["rloc-probing"];
  const interval = readInt(
    ctx,
    t,
    p,
    "rloc-probe-interval",
    0,
    86400,
    DEFAULTS.rlocProbeInterval,
  );
  const retries = readInt(
    ctx,
    t,
    p,
    "rloc-probe-retries",
    0,
    5,
    DEFAULTS.rlocProbeRetries,
  );
  let retriesInterval = readInt(
    ctx,
    t,
    p,
    "rloc-probe-retries-interval",
    1,
    86400,
    DEFAULTS.rlocProbeRetriesInterval,
  );
  if (interval > 0 && retries > 0 && retriesInterval > interval) {
    if (own(t, "rloc-probe-retries-interval") !== undefined) {
      ctx.error(
        [...p, "rloc-probe-retries-interval"],
        `must not exceed rloc-probe-interval (${interval})`,
      );
    } else {
      // Only the default is too long for a short interval: shorten it.
      retriesInterval = interval;
    }
  }
  return { interval, retries, retriesInterval };
}

function readMapServers(
  ctx: Ctx,
  raw: Table,
  role: Role | undefined,
): MapServer[] {
  const out: MapServer[] = [];
  const uniq = new Uniq();
  for (const [t, p] of readTables(ctx, raw, [], "map-server", MAP_SERVER_KEYS)) {
    const address = readAddress(ctx, t, p, "address", true);
    const keyType = readKeyType(ctx, t, p);
    // Only xtr and mn sign Map-Registers with it; an MR forwards Map-Requests,
    // which carry no authentication. With no role known, it is not demanded.
    const key = readString(ctx, t, p, "key", role === "xtr" || role === "mn");
    const proxyReply = readBool(ctx, t, p, "proxy-reply", false);
    const merge = readBool(ctx, t, p, "merge", false);
    if (address === undefined) continue;
    uniq.check(ctx, address, p, [...p, "address"], "address");
    out.push({
      address,
      keyType,
      ...(key !== undefined ? { key } : {}),
      proxyReply,
      merge,
    });
  }
  return out;
}

function readProxyEtrs(ctx: Ctx, raw: Table, key: string): ProxyEtr[] {
  const out: ProxyEtr[] = [];
  const uniq = new Uniq();
  for (const [t, p] of readTables(ctx, raw, [], key, PETR_KEYS)) {
    const address = readAddress(ctx, t, p, "address", true);
    const priority = readPriority(ctx, t, p);
    const weight = readWeight(ctx, t, p);
    if (address === undefined) continue;
    uniq.check(ctx, address, p, [...p, "address"], "address");
    out.push({ address, priority, weight });
  }
  return out;
}

function readElps(ctx: Ctx, raw: Table): ExplicitLocatorPath[] {
  const out: ExplicitLocatorPath[] = [];
  const uniq = new Uniq();
  for (
    const [t, p] of readTables(ctx, raw, [], "explicit-locator-path", ELP_KEYS)
  ) {
    const name = readString(ctx, t, p, "elp-name", true);
    if (name !== undefined && parseAddress(name) !== undefined) {
      ctx.error([...p, "elp-name"], "must be a name, not an address");
    }
    const nodes: ElpNode[] = [];
    for (const [n, np] of readTables(ctx, t, p, "elp-node", ELP_NODE_KEYS)) {
      const address = readAddress(ctx, n, np, "address", true);
      const strict = readBool(ctx, n, np, "strict", false);
      const probe = readBool(ctx, n, np, "probe", false);
      const lookup = readBool(ctx, n, np, "lookup", false);
      if (address !== undefined) {
        nodes.push({ address, strict, probe, lookup });
      }
    }
    if (absentOrEmpty(t, "elp-node")) {
      ctx.error(p, "needs at least one elp-node");
    }
    if (name === undefined) continue;
    uniq.check(ctx, name, p, [...p, "elp-name"], "elp-name");
    out.push({ name, nodes });
  }
  return out;
}

function readRlocAddresses(
  ctx: Ctx,
  t: Table,
  path: Path,
  elpNames: ReadonlySet<string>,
): RlocAddress[] {
  const out: RlocAddress[] = [];
  const uniq = new Uniq();
  for (
    const [r, p] of readTables(ctx, t, path, "rloc-address", RLOC_ADDRESS_KEYS)
  ) {
    const text = readString(ctx, r, p, "address", true);
    const priority = readPriority(ctx, r, p);
    const weight = readWeight(ctx, r, p);
    if (text === undefined) continue;
    const a = parseAddress(text);
    if (a !== undefined) {
      uniq.check(ctx, a.text, p, [...p, "address"], "address");
      out.push({ kind: "address", address: a.text, priority, weight });
    } else if (elpNames.has(text)) {
      uniq.check(ctx, text, p, [...p, "address"], "address");
      out.push({ kind: "elp", elpName: text, priority, weight });
    } else {
      ctx.error(
        [...p, "address"],
        `must be an IPv4 or IPv6 address or the elp-name of an [[explicit-locator-path]] (got "${text}")`,
      );
    }
  }
  return out;
}

function readRlocIfaces(ctx: Ctx, t: Table, path: Path): RlocIface[] {
  const out: RlocIface[] = [];
  const uniq = new Uniq();
  for (const [r, p] of readTables(ctx, t, path, "rloc-iface", RLOC_IFACE_KEYS)) {
    const iface = readInterface(ctx, r, p, "interface", true);
    const ipVersion = readIpVersion(ctx, r, p);
    const priority = readPriority(ctx, r, p);
    const weight = readWeight(ctx, r, p);
    if (iface === undefined) continue;
    uniq.check(
      ctx,
      `${iface}/${ipVersion}`,
      p,
      [...p, "interface"],
      "interface and ip_version",
    );
    out.push({ interface: iface, ipVersion, priority, weight });
  }
  return out;
}

/** The (prefix, iid) identity of a site, for duplicate checks. */
function siteId(prefix: Prefix, iid: number): string {
  return `${iid} ${formatPrefix(prefix)}`;
}

function readDatabaseMappings(
  ctx: Ctx,
  raw: Table,
  elpNames: ReadonlySet<string>,
  role: Role | undefined,
): DatabaseMapping[] {
  const out: DatabaseMapping[] = [];
  const uniq = new Uniq();
  for (
    const [t, p] of readTables(ctx, raw, [], "database-mapping", DB_MAPPING_KEYS)
  ) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    const ttl = readTtl(ctx, t, p, DEFAULTS.mappingTtl);
    const rlocAddresses = readRlocAddresses(ctx, t, p, elpNames);
    const rlocIfaces = readRlocIfaces(ctx, t, p);
    const count = entryCount(t, "rloc-address") + entryCount(t, "rloc-iface");
    checkLocatorCount(ctx, p, count, "rloc-address and rloc-iface");
    if (absentOrEmpty(t, "rloc-address") && absentOrEmpty(t, "rloc-iface")) {
      ctx.error(p, "needs at least one rloc-address or rloc-iface");
    }
    if (eidPrefix === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    const host = eidPrefix.family === 4 ? 32 : 128;
    if (role === "mn" && eidPrefix.length !== host) {
      ctx.error(
        [...p, "eid-prefix"],
        `a mobile node's EID must be a host prefix (/${host})`,
      );
    }
    out.push({ eidPrefix, iid, ttl, rlocAddresses, rlocIfaces });
  }
  return out;
}

function readStaticMapCache(
  ctx: Ctx,
  raw: Table,
  elpNames: ReadonlySet<string>,
): StaticMapCacheEntry[] {
  const out: StaticMapCacheEntry[] = [];
  const uniq = new Uniq();
  for (
    const [t, p] of readTables(ctx, raw, [], "static-map-cache", STATIC_MC_KEYS)
  ) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    const rlocAddresses = readRlocAddresses(ctx, t, p, elpNames);
    checkLocatorCount(ctx, p, entryCount(t, "rloc-address"), "rloc-address");
    if (absentOrEmpty(t, "rloc-address")) {
      ctx.error(p, "needs at least one rloc-address");
    }
    if (eidPrefix === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    out.push({ eidPrefix, iid, rlocAddresses });
  }
  return out;
}

/** `[[instance]]`: one per iid, TUN names and site interfaces used once. */
function readInstances(ctx: Ctx, raw: Table, mainTun: string): Instance[] {
  const out: Instance[] = [];
  const uniq = new Uniq();
  const tuns = new Map<string, Path>([[mainTun, ["tun-name"]]]);
  const ifaces = new Map<string, Path>();
  for (const [t, p] of readTables(ctx, raw, [], "instance", INSTANCE_KEYS)) {
    if (own(t, "iid") === undefined) ctx.error([...p, "iid"], "is required");
    const iid = readIid(ctx, t, p);
    uniq.check(ctx, String(iid), p, [...p, "iid"], "iid");
    const dflt = `${mainTun}-${iid}`;
    let tunName = readInterface(ctx, t, p, "tun-name", false);
    if (tunName === undefined && own(t, "tun-name") === undefined) {
      if (isInterfaceName(dflt)) tunName = dflt;
      else ctx.error([...p, "tun-name"], `is required: the default "${dflt}" is too long`);
    }
    if (tunName !== undefined) {
      const first = tuns.get(tunName);
      if (first !== undefined) {
        ctx.error([...p, "tun-name"], `"${tunName}" is already used by ${formatPath(first)}`);
      } else tuns.set(tunName, [...p, "tun-name"]);
    }
    const siteInterfaces: string[] = [];
    const names = readNameList(ctx, t, p, "site-interfaces");
    const written = own(t, "site-interfaces");
    if (written === undefined || (Array.isArray(written) && written.length === 0)) {
      ctx.error([...p, "site-interfaces"], "needs at least one interface");
    }
    for (const [name, i] of names) {
      const at = [...p, "site-interfaces", i];
      if (!isInterfaceName(name)) {
        ctx.error(at, `must be an interface name (1 to 15 bytes, no "/", ":" or spaces)`);
        continue;
      }
      const first = ifaces.get(name);
      if (first !== undefined) {
        ctx.error(at, `"${name}" already belongs to ${formatPath(first)}`);
        continue;
      }
      ifaces.set(name, at);
      siteInterfaces.push(name);
    }
    if (tunName !== undefined) out.push({ iid, tunName, siteInterfaces });
  }
  return out;
}

/** An array of prefixes like `["10.2.0.0/16"]`, without duplicates. */
function readPrefixList(ctx: Ctx, t: Table, path: Path, key: string): Prefix[] {
  const out: Prefix[] = [];
  const seen = new Map<string, number>();
  for (const [text, i] of readNameList(ctx, t, path, key)) {
    const at = [...path, key, i];
    const r = parsePrefix(text);
    if (!r.ok) {
      ctx.error(at, r.reason);
      continue;
    }
    const k = formatPrefix(r.prefix);
    const first = seen.get(k);
    if (first !== undefined) {
      ctx.error(at, `duplicate of ${formatPath([...path, key, first])}`);
      continue;
    }
    seen.set(k, i);
    out.push(r.prefix);
  }
  return out;
}

function readRtrIfaces(ctx: Ctx, raw: Table): RtrIface[] {
  const out: RtrIface[] = [];
  const uniq = new Uniq();
  checkLocatorCount(ctx, ["rtr-iface"], entryCount(raw, "rtr-iface"), "[[rtr-iface]]");
  for (const [t, p] of readTables(ctx, raw, [], "rtr-iface", RTR_IFACE_KEYS)) {
    const iface = readInterface(ctx, t, p, "iface", true);
    const ipVersion = readIpVersion(ctx, t, p);
    const priority = readPriority(ctx, t, p);
    const weight = readWeight(ctx, t, p);
    if (iface === undefined) continue;
    uniq.check(
      ctx,
      `${iface}/${ipVersion}`,
      p,
      [...p, "iface"],
      "iface and ip_version",
    );
    out.push({ iface, ipVersion, priority, weight });
  }
  return out;
}

function readRtrMsNodes(ctx: Ctx, raw: Table): RtrMsNode[] {
  const out: RtrMsNode[] = [];
  const uniq = new Uniq();
  for (const [t, p] of readTables(ctx, raw, [], "rtr-ms-node", RTR_MS_KEYS)) {
    const address = readAddress(ctx, t, p, "address", true);
    const key = readString(ctx, t, p, "key", true);
    const keyType = readKeyType(ctx, t, p);
    const draftVersion = readEnum(
      ctx,
      t,
      p,
      "draft-version",
      ["OLD", "NEW"] as const,
      DEFAULTS.draftVersion,
    );
    if (address === undefined || key === undefined) continue;
    uniq.check(ctx, address, p, [...p, "address"], "address");
    out.push({ address, key, keyType, draftVersion });
  }
  return out;
}

function readLispSites(ctx: Ctx, raw: Table, self: string | undefined): LispSite[] {
  const out: LispSite[] = [];
  const uniq = new Uniq();
  for (const [t, p] of readTables(ctx, raw, [], "lisp-site", LISP_SITE_KEYS)) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    const keyType = readKeyType(ctx, t, p);
    const key = readString(ctx, t, p, "key", true);
    const acceptMoreSpecifics = readBool(
      ctx,
      t,
      p,
      "accept-more-specifics",
      false,
    );
    const proxyReply = readBool(ctx, t, p, "proxy-reply", false);
    const merge = readBool(ctx, t, p, "merge", false);
    const ddtMsPeersComplete = readBool(
      ctx,
      t,
      p,
      "ddt-ms-peers-complete",
      true,
    );
    const ddtMsPeers = readAddressList(ctx, t, p, "ddt-ms-peers");
    // An MS-ACK referral lists this map-server (control-address) and its peers.
    const peers = entryCount(t, "ddt-ms-peers") + (self !== undefined ? 1 : 0);
    checkLocatorCount(ctx, p, peers, "ddt-ms-peers and control-address");
    const maxRegistrations = readMaxRegistrations(ctx, t, p);
    if (eidPrefix === undefined || key === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    out.push({
      eidPrefix,
      iid,
      keyType,
      key,
      acceptMoreSpecifics,
      proxyReply,
      merge,
      ddtMsPeersComplete,
      ddtMsPeers,
      maxRegistrations,
    });
  }
  return out;
}

function readMsStaticSites(
  ctx: Ctx,
  raw: Table,
  elpNames: ReadonlySet<string>,
): MsStaticRegisteredSite[] {
  const out: MsStaticRegisteredSite[] = [];
  const uniq = new Uniq();
  const tables = readTables(
    ctx,
    raw,
    [],
    "ms-static-registered-site",
    MS_STATIC_KEYS,
  );
  for (const [t, p] of tables) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    const ttl = readTtl(ctx, t, p, DEFAULTS.mappingTtl);
    const rlocAddresses = readRlocAddresses(ctx, t, p, elpNames);
    checkLocatorCount(ctx, p, entryCount(t, "rloc-address"), "rloc-address");
    if (absentOrEmpty(t, "rloc-address")) {
      ctx.error(p, "needs at least one rloc-address");
    }
    if (eidPrefix === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    out.push({ eidPrefix, iid, ttl, rlocAddresses });
  }
  return out;
}

function readMsRtrNodes(ctx: Ctx, raw: Table): MsRtrNode[] {
  const out: MsRtrNode[] = [];
  const uniq = new Uniq();
  for (
    const [t, p] of readTables(ctx, raw, [], "ms-rtr-node", MS_RTR_NODE_KEYS)
  ) {
    const name = readString(ctx, t, p, "name", true);
    const address = readAddress(ctx, t, p, "address", true);
    const key = readString(ctx, t, p, "key", true);
    if (name !== undefined) uniq.check(ctx, name, p, [...p, "name"], "name");
    if (name === undefined || address === undefined || key === undefined) {
      continue;
    }
    out.push({ name, address, key });
  }
  return out;
}

function readMsRtrsSets(
  ctx: Ctx,
  raw: Table,
  nodes: readonly MsRtrNode[],
): MsRtrsSet[] {
  const out: MsRtrsSet[] = [];
  const uniq = new Uniq();
  const names = new Set(nodes.map((n) => n.name));
  for (
    const [t, p] of readTables(ctx, raw, [], "ms-rtrs-set", MS_RTRS_SET_KEYS)
  ) {
    const name = readString(ctx, t, p, "name", true);
    const ttl = readTtl(ctx, t, p, DEFAULTS.rtrsSetTtl);
    const rtrs = readNameList(ctx, t, p, "rtrs");
    if (own(t, "rtrs") === undefined) {
      ctx.error([...p, "rtrs"], "required key is missing");
    } else if (absentOrEmpty(t, "rtrs")) {
      ctx.error([...p, "rtrs"], "needs at least one name");
    }
    for (const [r, i] of rtrs) {
      if (!names.has(r)) {
        ctx.error([...p, "rtrs", i], `no [[ms-rtr-node]] is named "${r}"`);
      }
    }
    if (name === undefined) continue;
    uniq.check(ctx, name, p, [...p, "name"], "name");
    out.push({ name, ttl, rtrs: rtrs.map(([r]) => r) });
  }
  return out;
}

function readDdtAuthSites(ctx: Ctx, raw: Table): DdtAuthSite[] {
  const out: DdtAuthSite[] = [];
  const uniq = new Uniq();
  for (const [t, p] of readTables(ctx, raw, [], "ddt-auth-site", DDT_AUTH_KEYS)) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    if (eidPrefix === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    out.push({ eidPrefix, iid });
  }
  return out;
}

function readDdtDelegSites(
  ctx: Ctx,
  raw: Table,
  auth: readonly DdtAuthSite[],
): DdtDelegSite[] {
  const out: DdtDelegSite[] = [];
  const uniq = new Uniq();
  for (
    const [t, p] of readTables(ctx, raw, [], "ddt-deleg-site", DDT_DELEG_KEYS)
  ) {
    const eidPrefix = readPrefix(ctx, t, p, "eid-prefix");
    const iid = readIid(ctx, t, p);
    const delegationType = readEnum(
      ctx,
      t,
      p,
      "delegation-type",
      ["CHILD_DDT_NODE", "MAP_SERVER_DDT_NODE"] as const,
      "CHILD_DDT_NODE",
      true,
    );
    const delegNodes = readAddressList(ctx, t, p, "deleg-nodes");
    checkLocatorCount(ctx, p, entryCount(t, "deleg-nodes"), "deleg-nodes");
    if (own(t, "deleg-nodes") === undefined) {
      ctx.error([...p, "deleg-nodes"], "required key is missing");
    } else if (absentOrEmpty(t, "deleg-nodes")) {
      ctx.error([...p, "deleg-nodes"], "needs at least one address");
    }
    if (eidPrefix === undefined) continue;
    uniq.check(
      ctx,
      siteId(eidPrefix, iid),
      p,
      [...p, "eid-prefix"],
      "eid-prefix and iid",
    );
    if (
      !auth.some((a) => a.iid === iid && prefixCovers(a.eidPrefix, eidPrefix))
    ) {
      ctx.error(
        [...p, "eid-prefix"],
        `not inside any [[ddt-auth-site]] with iid ${iid}`,
      );
    }
    out.push({ eidPrefix, iid, delegationType, delegNodes });
  }
  return out;
}

// ---------------------------------------------------------------------------
// Role rules.

function checkRole(ctx: Ctx, raw: Table, c: Config, role: Role): void {
  const need = (ok: boolean, key: string, what: string) => {
    if (!ok) ctx.error([key], `role ${role} needs at least one ${what}`);
  };
  switch (role) {
    case "xtr":
    case "mn":
      need(
        c.databaseMappings.length > 0,
        "database-mapping",
        "[[database-mapping]]",
      );
      need(c.mapServers.length > 0, "map-server", "[[map-server]]");
      need(c.mapResolvers.length > 0, "map-resolver", "map-resolver address");
      break;
    case "rtr":
      need(c.rtrIfaces.length > 0, "rtr-iface", "[[rtr-iface]]");
      need(c.mapResolvers.length > 0, "map-resolver", "map-resolver address");
      break;
    case "ms":
      need(
        c.lispSites.length + c.msStaticRegisteredSites.length > 0,
        "lisp-site",
        "[[lisp-site]] or [[ms-static-registered-site]]",
      );
      break;
    case "mr":
      need(
        c.ddtRootAddresses.length + c.mapServers.length > 0,
        "ddt-root-addresses",
        "ddt-root-addresses address or [[map-server]]",
      );
      break;
    case "ddt":
      need(c.ddtAuthSites.length > 0, "ddt-auth-site", "[[ddt-auth-site]]");
      break;
    case "ddt-mr":
      need(
        c.ddtRootAddresses.length > 0,
        "ddt-root-addresses",
        "ddt-root-addresses address",
      );
      break;
  }
  for (const key of Object.keys(raw)) {
    const roles = ROLE_KEYS[key];
    if (roles !== undefined && !roles.includes(role)) {
      ctx.warn([key], `ignored by role ${role}`);
    }
  }
}
