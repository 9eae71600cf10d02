/**
 * OOR's `oor.conf` keys: which are read, where each goes in `oor.toml`,
 * which OOR keys oor does not implement (and why), and the "did you mean"
 * of an unknown key. config/oor_conf.ts converts a file with these tables.
 *
 * Every key of OOR 1.3.0's parser (`oor_config_confuse.c`) and of its
 * `oor.conf.example` has a fate here:
 *
 * - it converts to the `oor.toml` key of the same name (most of them);
 * - it converts to a key of another name: OOR's `allowed-dst-eids` is
 *   oor's `destination-prefixes` ({@link OOR_CONF_RENAMED});
 * - it is dropped with a warning, because oor does what it asks without
 *   being told: `local` of an `rloc-address` ({@link OOR_CONF_DROPPED});
 * - or it is an error that names it and says why ({@link UNSUPPORTED_KEYS}).
 *
 * Pure: no file access.
 *
 * @module
 */

// ---------------------------------------------------------------------------
// OOR's keys, and where each goes in oor.toml.

/** What one key of an `oor.conf` is, and how it converts. */
export type Spec =
  /** A value; `as` names its oor.toml key when that differs from OOR's name. */
  | { readonly kind: "string" | "integer" | "boolean" | "list"; readonly as?: string }
  /** A section that may appear once: `[name]`. */
  | { readonly kind: "table"; readonly keys: Keys }
  /** A section that may repeat: `[[name]]`. */
  | { readonly kind: "array"; readonly keys: Keys }
  /** A section whose own sections go to the parent table (`rtr-ifaces`). */
  | { readonly kind: "wrapper"; readonly keys: Keys }
  /** An OOR key oor does not implement. */
  | { readonly kind: "unsupported"; readonly reason: string }
  /**
   * An OOR key oor reads and drops, saying `reason` once per file: oor
   * does what it asks without it. `value` is the type OOR gives it.
   */
  | {
    readonly kind: "dropped";
    readonly value: "string" | "integer" | "boolean";
    readonly reason: string;
  };

/** The keys of one section, in the order the TOML lists them. */
export type Keys = readonly (readonly [string, Spec])[];

/** Whether a spec is a section (its statements are `name { ... }`). */
export function isSection(
  spec: Spec,
): spec is Extract<Spec, { kind: "table" | "array" | "wrapper" }> {
  return spec.kind === "table" || spec.kind === "array" || spec.kind === "wrapper";
}

const STR = { kind: "string" } as const;
const INT = { kind: "integer" } as const;
const BOOL = { kind: "boolean" } as const;
const LIST = { kind: "list" } as const;

const array = (keys: Keys): Spec => ({ kind: "array", keys });
const unsupported = (reason: string): Spec => ({ kind: "unsupported", reason });

/**
 * Why `local` of an `rloc-address` is dropped. OOR 1.3.0 reads it (default
 * true) in database-mapping, and parses but ignores it elsewhere: with
 * true, the address must be on an interface of the host or OOR leaves the
 * locator out; with false, OOR registers it as a remote locator.
 */
const LOCAL_REASON = "dropped: oor needs no 'local': an rloc-address that is on this host is a " +
  "local locator (followed as its interface goes up and down), one that is not is registered " +
  "as written, as OOR does with local = false (OOR 1.3.0 would leave out a local = true " +
  "address that is not on the host)";

const LOCAL: Spec = { kind: "dropped", value: "boolean", reason: LOCAL_REASON };

const RLOC_ADDRESS: Keys = [
  ["address", STR],
  ["priority", INT],
  ["weight", INT],
  ["local", LOCAL],
];
const RLOC_IFACE: Keys = [
  ["interface", STR],
  ["ip_version", INT],
  ["priority", INT],
  ["weight", INT],
];
const DATABASE_MAPPING: Keys = [
  ["eid-prefix", STR],
  ["iid", INT],
  ["ttl", INT],
  ["rloc-address", array(RLOC_ADDRESS)],
  ["rloc-iface", array(RLOC_IFACE)],
];
const MS_STATIC_SITE: Keys = [
  ["eid-prefix", STR],
  ["iid", INT],
  ["ttl", INT],
  ["rloc-address", array(RLOC_ADDRESS)],
  [
    "rloc-iface",
    unsupported(
      "a map-server's static site takes rloc-address locators only (OOR ignores rloc-iface here)",
    ),
  ],
];
const STATIC_MAP_CACHE: Keys = [
  ["eid-prefix", STR],
  ["iid", INT],
  ["rloc-address", array(RLOC_ADDRESS)],
];
const MAP_SERVER: Keys = [
  ["address", STR],
  ["key-type", INT],
  ["key", STR],
  ["proxy-reply", BOOL],
];
const PROXY_ETR: Keys = [["address", STR], ["priority", INT], ["weight", INT]];
const RTR_IFACE: Keys = [
  ["iface", STR],
  ["ip_version", INT],
  ["priority", INT],
  ["weight", INT],
];
const RLOC_PROBING: Keys = [
  ["rloc-probe-interval", INT],
  ["rloc-probe-retries", INT],
  ["rloc-probe-retries-interval", INT],
];
const ELP_NODE: Keys = [
  ["address", STR],
  ["strict", BOOL],
  ["probe", BOOL],
  ["lookup", BOOL],
];
const ELP: Keys = [["elp-name", STR], ["elp-node", array(ELP_NODE)]];
const LISP_SITE: Keys = [
  ["eid-prefix", STR],
  ["iid", INT],
  ["key-type", INT],
  ["key", STR],
  ["accept-more-specifics", BOOL],
  ["proxy-reply", BOOL],
  ["merge", BOOL],
  ["ddt-ms-peers-complete", BOOL],
  ["ddt-ms-peers", LIST],
];
const DDT_AUTH_SITE: Keys = [["eid-prefix", STR], ["iid", INT]];
const DDT_DELEG_SITE: Keys = [
  ["eid-prefix", STR],
  ["iid", INT],
  ["delegation-type", STR],
  ["deleg-nodes", LIST],
];
const MS_RTR_NODE: Keys = [["name", STR], ["address", STR], ["key", STR]];
const MS_RTRS_SET: Keys = [["name", STR], ["ttl", INT], ["rtrs", LIST]];
const RTR_MS_NODE: Keys = [
  ["address", STR],
  ["key", STR],
  ["key-type", INT], // oor's; OOR only has HMAC-SHA-1 here
  ["draft-version", STR],
];
const API: Keys = [["enabled", BOOL], ["listen", STR], ["token", STR], ["state-file", STR]];
const INSTANCE: Keys = [["iid", INT], ["tun-name", STR], ["site-interfaces", LIST]];

/**
 * OOR keys that oor does not implement, and why. Each is an error naming
 * the key when it appears in an `oor.conf`.
 */
export const UNSUPPORTED_KEYS: Readonly<Record<string, string>> = {
  "rtr-database-mapping":
    "RTR database mappings (OOR uses them for replication lists) are not supported",
  "replication-list": "replication lists (RLE, RFC 8060 §4.11) are not supported",
  "multicast-info": "multicast-info (multicast EIDs) is not supported",
  "rtr-data-iface":
    "rtr-data-iface is not supported; list the RTR's interfaces in rtr-ifaces { rtr-iface { ... } }",
  "rloc-probing-interval":
    "OOR's old rloc-probing-interval is not supported (OOR ignores it too); write rloc-probe-interval in rloc-probing { ... }",
  "override-dns": "the Android-only DNS override is not supported",
  "override-dns-primary": "the Android-only DNS override is not supported",
  "override-dns-secondary": "the Android-only DNS override is not supported",
};

/** The top level of an `oor.conf`. */
export const TOP: Keys = [
  ["operating-mode", STR],
  ["debug", INT],
  ["log-file", STR],
  ["map-request-retries", INT],
  ["ipv6-scope", STR],
  ["encapsulation", STR],
  ["control-iface", STR],
  ["control-address", STR], // oor's
  ["control-port", INT],
  ["control-rate-limit", INT], // oor's
  ["data-port", INT], // oor's
  ["tun-name", STR], // oor's
  ["tun-mtu", INT], // oor's
  ["nat_traversal_support", BOOL],
  ["map-resolver", LIST],
  ["proxy-itrs", LIST],
  ["ddt-root-addresses", LIST],
  ["ms-advertised-rtrs-set", STR],
  ["destination-prefixes", LIST], // oor's
  ["allowed-dst-eids", { kind: "list", as: "destination-prefixes" }],
  ["api", { kind: "table", keys: API }], // oor's
  ["rloc-probing", { kind: "table", keys: RLOC_PROBING }],
  ["explicit-locator-path", array(ELP)],
  ["map-server", array(MAP_SERVER)],
  ["proxy-etr-ipv4", array(PROXY_ETR)],
  ["proxy-etr-ipv6", array(PROXY_ETR)],
  ["database-mapping", array(DATABASE_MAPPING)],
  ["static-map-cache", array(STATIC_MAP_CACHE)],
  ["instance", array(INSTANCE)], // oor's
  ["rtr-ifaces", { kind: "wrapper", keys: [["rtr-iface", array(RTR_IFACE)]] }],
  ["rtr-ms-node", array(RTR_MS_NODE)],
  ["lisp-site", array(LISP_SITE)],
  ["ms-static-registered-site", array(MS_STATIC_SITE)],
  ["ms-rtr-node", array(MS_RTR_NODE)],
  ["ms-rtrs-set", array(MS_RTRS_SET)],
  ["ddt-auth-site", array(DDT_AUTH_SITE)],
  ["ddt-deleg-site", array(DDT_DELEG_SITE)],
  ...Object.entries(UNSUPPORTED_KEYS).map(([k, why]) => [k, unsupported(why)] as const),
];

/**
 * Every key an `oor.conf` may hold, as dotted paths of OOR's section names
 * (`database-mapping.rloc-address.priority`, `rtr-ifaces.rtr-iface.iface`),
 * sections included, each of which converts to the `oor.toml` key of the
 * same name. Not listed: the keys in {@link UNSUPPORTED_KEYS}, those
 * converted under another name ({@link OOR_CONF_RENAMED}) and those dropped
 * ({@link OOR_CONF_DROPPED}).
 */
export const OOR_CONF_KEYS: readonly string[] = (() => {
  const out: string[] = [];
  const walk = (keys: Keys, path: string) => {
    for (const [name, spec] of keys) {
      if (spec.kind === "unsupported" || spec.kind === "dropped") continue;
      if ("as" in spec && spec.as !== undefined) continue;
      out.push(join(path, name));
      if (isSection(spec)) walk(spec.keys, join(path, name));
    }
  };
  walk(TOP, "");
  return out;
})();

/**
 * OOR's keys that convert to an `oor.toml` key of another name, as dotted
 * paths: `allowed-dst-eids` -> `destination-prefixes`.
 */
export const OOR_CONF_RENAMED: Readonly<Record<string, string>> = (() => {
  const out: Record<string, string> = {};
  walkKeys(TOP, (path, spec) => {
    if ("as" in spec && spec.as !== undefined) out[path] = spec.as;
  });
  return out;
})();

/** OOR's keys that are read and dropped with a warning, as dotted paths, with the reason. */
export const OOR_CONF_DROPPED: Readonly<Record<string, string>> = (() => {
  const out: Record<string, string> = {};
  walkKeys(TOP, (path, spec) => {
    if (spec.kind === "dropped") out[path] = spec.reason;
  });
  return out;
})();

/** Calls `f` with the dotted path and spec of every key under `keys`, sections first. */
function walkKeys(keys: Keys, f: (path: string, spec: Spec) => void, path = ""): void {
  for (const [name, spec] of keys) {
    f(join(path, name), spec);
    if (isSection(spec)) walkKeys(spec.keys, f, join(path, name));
  }
}

/** For each key name, the sections (by path) where it is valid. */
const HOMES: ReadonlyMap<string, readonly string[]> = (() => {
  const homes = new Map<string, string[]>();
  const walk = (keys: Keys, path: string) => {
    for (const [name, spec] of keys) {
      if (spec.kind === "unsupported") continue;
      const list = homes.get(name) ?? [];
      list.push(path);
      homes.set(name, list);
      if (isSection(spec)) walk(spec.keys, join(path, name));
    }
  };
  walk(TOP, "");
  return homes;
})();

/** `path.name`, or `name` at the top level. */
export function join(path: string, name: string): string {
  return path === "" ? name : `${path}.${name}`;
}

/**
 * Edit distance counting a swap of two neighbours as one edit (optimal
 * string alignment), for "did you mean": `kye` is one edit from `key`.
 * The command line's suggestions (tools/suggest.ts) use it too.
 */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    const row: number[] = [i];
    for (let j = 1; j <= b.length; j++) {
      if (i === 0) {
        row.push(j);
        continue;
      }
      const up = rows[i - 1]!;
      let d = Math.min(up[j]! + 1, row[j - 1]! + 1, up[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      row.push(d);
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/** Why `name` is not a key of the section at `path`, with a hint. */
export function unknownKey(name: string, keys: Keys, path: string): string {
  const norm = (s: string) => s.toLowerCase().replaceAll("_", "-");
  const n = norm(name);
  for (const [k, spec] of keys) {
    if (spec.kind !== "unsupported" && norm(k) === n) {
      return `unknown key '${name}' (did you mean '${k}'?)`;
    }
  }
  // A key of exactly one other section: say which.
  const homes = (HOMES.get(name.toLowerCase()) ?? []).filter((h) => h !== path);
  if (homes.length === 1) {
    const home = homes[0]!;
    return home === ""
      ? `unknown key '${name}' (it goes at the top level, outside any section)`
      : `unknown key '${name}' (it goes inside ${home.split(".").at(-1)} { ... })`;
  }
  let best: string | undefined;
  let bestDist = name.length >= 5 ? 2 : 1;
  for (const [k, spec] of keys) {
    if (spec.kind === "unsupported") continue;
    const d = editDistance(n, norm(k));
    if (d <= bestDist && (best === undefined || d < bestDist)) {
      best = k;
      bestDist = d;
    }
  }
  if (best !== undefined) return `unknown key '${name}' (did you mean '${best}'?)`;
  return `unknown key '${name}'`;
}
