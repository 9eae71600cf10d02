/**
 * The JSON form of runtime edits, shared by the write routes and the state
 * file: checking a request body into the config's own types (with the
 * field at fault when it is wrong), and writing those types back as JSON.
 *
 * The keys are the oor.toml ones, so an edit reads like the config entry
 * it adds:
 *
 * ```json
 * {"eid-prefix": "10.2.0.0/16", "iid": 0,
 *  "rloc-address": [{"address": "192.0.2.7", "priority": 1, "weight": 100}]}
 * ```
 *
 * A database mapping may also have `"ttl"` (minutes) and `"rloc-iface"`
 * (`[{"interface": "eth0", "ip_version": 4, "priority": 1, "weight": 100}]`).
 *
 * What a GET answers can be posted back: the read-only keys it adds
 * (`state`, `origin`, `expires-at`..., web/_views.ts) are ignored.
 *
 * @module
 */

import {
  type DatabaseMapping,
  DEFAULTS,
  formatPrefix as formatConfigPrefix,
  MAX_IID,
  MAX_RECORD_LOCATORS,
  type Prefix,
  type RlocAddress,
  type RlocIface,
  type StaticMapCacheEntry,
} from "../config/mod.ts";
import { parsePrefix as parseTablePrefix } from "../core/prefix.ts";
import { canonicalIp, ipv4FromBytes, ipv6FromBytes, isIPv4 } from "../wire/ip_text.ts";
import { READ_ONLY_KEYS, READ_ONLY_LOCATOR_KEYS } from "./_views.ts";

/** A request value that is wrong, with the field it is in (`rloc-address[0].priority`). */
export class FieldError extends Error {
  /** The field at fault, dotted like config paths. */
  readonly field: string;

  /** `field` and what is wrong with it. */
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "FieldError";
    this.field = field;
  }
}

/** The identity of a map-cache entry or database mapping: its EID prefix and instance. */
export interface EidKey {
  /** EID prefix. */
  readonly eidPrefix: Prefix;
  /** Instance id. */
  readonly iid: number;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function kind(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  if (typeof v === "string") return `"${v.length > 60 ? v.slice(0, 60) + "..." : v}"`;
  return String(v);
}

function checkKeys(
  o: Json,
  allowed: readonly string[],
  at: string,
  ignored: readonly string[] = [],
): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k) && !ignored.includes(k)) {
      throw new FieldError(`${at}${k}`, `unknown key (expected one of ${allowed.join(", ")})`);
    }
  }
}

function int(v: unknown, field: string, min: number, max: number, dflt?: number): number {
  if (v === undefined && dflt !== undefined) return dflt;
  if (v === undefined) throw new FieldError(field, "is required");
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new FieldError(field, `must be an integer ${min}..${max} (got ${kind(v)})`);
  }
  return v;
}

/** An IPv4 or IPv6 address in canonical text, or undefined. */
export function canonicalAddress(text: string): { family: 4 | 6; text: string } | undefined {
  const ip = canonicalIp(text);
  return ip === undefined ? undefined : { family: isIPv4(ip) ? 4 : 6, text: ip };
}

/**
 * Parses an EID prefix `addr/len` (IPv4 or IPv6) with the host bits clear,
 * into the config's {@link Prefix}; throws {@link FieldError} naming `field`.
 */
export function parseEidPrefix(v: unknown, field: string): Prefix {
  if (v === undefined) throw new FieldError(field, "is required");
  const example = "like 10.1.0.0/16 or 2001:db8::/32";
  if (typeof v !== "string") {
    throw new FieldError(field, `must be a prefix ${example} (got ${kind(v)})`);
  }
  const slash = v.indexOf("/");
  const addr = canonicalAddress(slash < 0 ? v : v.slice(0, slash));
  if (addr === undefined) {
    throw new FieldError(field, `must be an IPv4 or IPv6 prefix ${example} (got ${kind(v)})`);
  }
  if (slash < 0) {
    const host = addr.family === 4 ? 32 : 128;
    throw new FieldError(field, `must be a prefix with a length, like ${addr.text}/${host}`);
  }
  const p = parseTablePrefix(v);
  if (p === undefined) {
    const max = addr.family === 4 ? 32 : 128;
    throw new FieldError(field, `prefix length must be 0..${max} (got ${kind(v)})`);
  }
  const network = p.family === "ipv4" ? ipv4FromBytes(p.bytes, 0) : ipv6FromBytes(p.bytes, 0);
  if (network !== addr.text) {
    throw new FieldError(field, `host bits set (did you mean ${network}/${p.len}?)`);
  }
  return { family: addr.family, address: network, length: p.len };
}

/** Parses an instance id (JSON number, or decimal text from a query string). */
export function parseIid(v: unknown, field: string, fromText = false): number {
  if (v === undefined) return DEFAULTS.iid;
  if (fromText && typeof v === "string") {
    if (!/^(0|[1-9][0-9]{0,9})$/.test(v)) {
      throw new FieldError(field, `must be an integer 0..${MAX_IID} (got ${kind(v)})`);
    }
    v = Number(v);
  }
  return int(v, field, 0, MAX_IID);
}

function rlocAddresses(v: unknown, field: string): RlocAddress[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    throw new FieldError(
      field,
      `must be an array of {address, priority, weight} (got ${kind(v)})`,
    );
  }
  const out: RlocAddress[] = [];
  const seen = new Set<string>();
  v.forEach((r: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(r)) throw new FieldError(at, `must be an object (got ${kind(r)})`);
    checkKeys(r, ["address", "priority", "weight"], `${at}.`, READ_ONLY_LOCATOR_KEYS);
    const raw = r["address"];
    if (raw === undefined) throw new FieldError(`${at}.address`, "is required");
    const a = typeof raw === "string" ? canonicalAddress(raw) : undefined;
    if (a === undefined) {
      throw new FieldError(`${at}.address`, `must be an IPv4 or IPv6 address (got ${kind(raw)})`);
    }
    if (seen.has(a.text)) {
      throw new FieldError(`${at}.address`, `${a.text} is listed twice`);
    }
    seen.add(a.text);
    const priority = int(r["priority"], `${at}.priority`, 0, 255, DEFAULTS.priority);
    const weight = int(r["weight"], `${at}.weight`, 0, 255, DEFAULTS.weight);
    out.push({ kind: "address", address: a.text, priority, weight });
  });
  return out;
}

const IFNAME_BAD = /[\s/:]/;

function rlocIfaces(v: unknown, field: string): RlocIface[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) {
    throw new FieldError(
      field,
      `must be an array of {interface, ip_version, priority, weight} (got ${kind(v)})`,
    );
  }
  const out: RlocIface[] = [];
  const seen = new Set<string>();
  v.forEach((r: unknown, i) => {
    const at = `${field}[${i}]`;
    if (!isObject(r)) throw new FieldError(at, `must be an object (got ${kind(r)})`);
    checkKeys(r, ["interface", "ip_version", "priority", "weight"], `${at}.`, [
      "address",
      ...READ_ONLY_LOCATOR_KEYS,
    ]);
    const name = r["interface"];
    if (name === undefined) throw new FieldError(`${at}.interface`, "is required");
    if (
      typeof name !== "string" || name.length === 0 ||
      new TextEncoder().encode(name).length > 15 || IFNAME_BAD.test(name) ||
      name === "." || name === ".."
    ) {
      throw new FieldError(
        `${at}.interface`,
        `must be a Linux interface name (1..15 bytes, no space, '/' or ':') (got ${kind(name)})`,
      );
    }
    const ipv = r["ip_version"] ?? DEFAULTS.ipVersion;
    if (ipv !== 4 && ipv !== 6) {
      throw new FieldError(`${at}.ip_version`, `must be 4 or 6 (got ${kind(ipv)})`);
    }
    if (seen.has(`${name}/${ipv}`)) {
      throw new FieldError(`${at}.interface`, `${name} with ip_version ${ipv} is listed twice`);
    }
    seen.add(`${name}/${ipv}`);
    const priority = int(r["priority"], `${at}.priority`, 0, 255, DEFAULTS.priority);
    const weight = int(r["weight"], `${at}.weight`, 0, 255, DEFAULTS.weight);
    out.push({ interface: name, ipVersion: ipv, priority, weight });
  });
  return out;
}

/**
 * Refuses more locators than one EID record holds (its Locator Count is 8
 * bits, RFC 9301 §5.4), before any of them is read: `keys` are the lists
 * that become that one record.
 */
function checkLocatorCount(o: Json, keys: readonly string[], at: string): void {
  let n = 0;
  for (const k of keys) {
    const v = o[k];
    if (Array.isArray(v)) n += v.length;
  }
  if (n <= MAX_RECORD_LOCATORS) return;
  const listed = keys.filter((k) => Array.isArray(o[k]) && (o[k] as unknown[]).length > 0);
  throw new FieldError(
    `${at}${listed[0] ?? keys[0]}`,
    `${n} locators (${listed.join(" and ")}), at most ${MAX_RECORD_LOCATORS} fit in one EID ` +
      "record (8-bit Locator Count, RFC 9301 §5.4)",
  );
}

function object(body: unknown, at: string): Json {
  if (!isObject(body)) {
    throw new FieldError(at === "" ? "body" : at.slice(0, -1), `must be a JSON object`);
  }
  return body;
}

/**
 * Checks a static map-cache entry: `eid-prefix` (required), `iid`
 * (default 0), `rloc-address` (1 to 255). `at` prefixes field names
 * (`"static-map-cache.added[0]."`).
 */
export function parseStaticMapping(body: unknown, at = ""): StaticMapCacheEntry {
  const o = object(body, at);
  checkKeys(o, ["eid-prefix", "iid", "rloc-address"], at, [...READ_ONLY_KEYS, "ttl"]);
  checkLocatorCount(o, ["rloc-address"], at);
  const eidPrefix = parseEidPrefix(o["eid-prefix"], `${at}eid-prefix`);
  const iid = parseIid(o["iid"], `${at}iid`);
  const rlocs = rlocAddresses(o["rloc-address"], `${at}rloc-address`);
  if (rlocs.length === 0) throw new FieldError(`${at}rloc-address`, "needs at least one locator");
  return { eidPrefix, iid, rlocAddresses: rlocs };
}

/**
 * Checks a database mapping: `eid-prefix` (required), `iid` (default 0),
 * `ttl` (minutes, default 10), `rloc-address` and `rloc-iface` (at least
 * one locator between them, at most 255).
 */
export function parseDatabaseMapping(body: unknown, at = ""): DatabaseMapping {
  const o = object(body, at);
  checkKeys(o, ["eid-prefix", "iid", "ttl", "rloc-address", "rloc-iface"], at, READ_ONLY_KEYS);
  checkLocatorCount(o, ["rloc-address", "rloc-iface"], at);
  const eidPrefix = parseEidPrefix(o["eid-prefix"], `${at}eid-prefix`);
  const iid = parseIid(o["iid"], `${at}iid`);
  const ttl = int(o["ttl"], `${at}ttl`, 0, 0xffffffff, DEFAULTS.mappingTtl);
  const rlocAddressList = rlocAddresses(o["rloc-address"], `${at}rloc-address`);
  const rlocIfaceList = rlocIfaces(o["rloc-iface"], `${at}rloc-iface`);
  if (rlocAddressList.length === 0 && rlocIfaceList.length === 0) {
    throw new FieldError(`${at}rloc-address`, "needs at least one rloc-address or rloc-iface");
  }
  return { eidPrefix, iid, ttl, rlocAddresses: rlocAddressList, rlocIfaces: rlocIfaceList };
}

/** Checks an `{eid-prefix, iid}` pair (a removal); `fromText` for query-string values. */
export function parseEidKey(
  o: Readonly<Record<string, unknown>>,
  at = "",
  fromText = false,
): EidKey {
  return {
    eidPrefix: parseEidPrefix(o["eid-prefix"], `${at}eid-prefix`),
    iid: parseIid(o["iid"], `${at}iid`, fromText),
  };
}

/** Whether two keys name the same entry. */
export function sameKey(a: EidKey, b: EidKey): boolean {
  return a.iid === b.iid && a.eidPrefix.family === b.eidPrefix.family &&
    a.eidPrefix.address === b.eidPrefix.address && a.eidPrefix.length === b.eidPrefix.length;
}

function rlocAddressJson(r: RlocAddress): Json {
  return r.kind === "address"
    ? { address: r.address, priority: r.priority, weight: r.weight }
    : { address: r.elpName, priority: r.priority, weight: r.weight };
}

/** The JSON form of an {@link EidKey}. */
export function eidKeyJson(k: EidKey): Json {
  return { "eid-prefix": formatConfigPrefix(k.eidPrefix), iid: k.iid };
}

/** The JSON form of a static map-cache entry (what {@link parseStaticMapping} reads). */
export function staticMappingJson(e: StaticMapCacheEntry): Json {
  return { ...eidKeyJson(e), "rloc-address": e.rlocAddresses.map(rlocAddressJson) };
}

/** The JSON form of a database mapping (what {@link parseDatabaseMapping} reads). */
export function databaseMappingJson(m: DatabaseMapping): Json {
  const out: Json = { ...eidKeyJson(m), ttl: m.ttl };
  if (m.rlocAddresses.length > 0) out["rloc-address"] = m.rlocAddresses.map(rlocAddressJson);
  if (m.rlocIfaces.length > 0) {
    out["rloc-iface"] = m.rlocIfaces.map((r) => ({
      interface: r.interface,
      ip_version: r.ipVersion,
      priority: r.priority,
      weight: r.weight,
    }));
  }
  return out;
}
