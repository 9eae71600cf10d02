/**
 * The readers of config/validate.ts: a {@link Ctx} that collects errors
 * with file:line, and one reader per kind of value (strings, integers,
 * booleans, enums, addresses, prefixes, tables of tables), each adding a
 * precise error instead of throwing.
 *
 * @module
 */

import { ConfigError } from "./errors.ts";
import { formatPath, LineLocator, type PathSegment } from "./_locate.ts";
import { isInterfaceName, parseAddress, parsePrefix } from "./_ip.ts";
import {
  DEFAULTS,
  type KeyType,
  MAX_IID,
  MAX_RECORD_LOCATORS,
  MAX_SITE_REGISTRATIONS,
  type Prefix,
} from "./schema.ts";

export type Table = Record<string, unknown>;
export type Path = readonly PathSegment[];

/** Where errors and warnings of one file are collected, with their lines. */
export class Ctx {
  readonly errors: ConfigError[] = [];
  readonly warnings: ConfigError[] = [];
  readonly file: string;
  readonly loc: LineLocator;
  /** What to say of an unknown top-level key that is known elsewhere (a hint), if anything. */
  readonly topLevelHint: (key: string) => string | undefined;

  constructor(file: string, loc: LineLocator, topLevelHint: (key: string) => string | undefined) {
    this.file = file;
    this.loc = loc;
    this.topLevelHint = topLevelHint;
  }

  error(path: Path, reason: string): void {
    this.errors.push(
      new ConfigError(this.file, this.loc.lineOf(path), formatPath(path), reason),
    );
  }

  warn(path: Path, reason: string): void {
    this.warnings.push(
      new ConfigError(this.file, this.loc.lineOf(path), formatPath(path), reason),
    );
  }
}

function isTable(v: unknown): v is Table {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    !(v instanceof Date);
}

/** "a string", "an integer", ... for error messages. */
export function typeName(v: unknown): string {
  if (typeof v === "string") return "a string";
  if (typeof v === "number") {
    return Number.isInteger(v) ? "an integer" : "a float";
  }
  if (typeof v === "bigint") return "an integer";
  if (typeof v === "boolean") return "a boolean";
  if (Array.isArray(v)) return "an array";
  if (v instanceof Date) return "a date";
  return "a table";
}

export function own(t: Table, key: string): unknown {
  return Object.hasOwn(t, key) ? t[key] : undefined;
}

/** True if `key` is absent or an empty array. */
export function absentOrEmpty(t: Table, key: string): boolean {
  const v = own(t, key);
  return v === undefined || (Array.isArray(v) && v.length === 0);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(
        up + 1,
        prev[j - 1]! + 1,
        diag + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
      diag = up;
    }
  }
  return prev[b.length]!;
}

/** The allowed key `key` was probably meant to be, if any. */
function nearMiss(key: string, allowed: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replaceAll("_", "-");
  const k = norm(key);
  let best: string | undefined;
  let bestDist = key.length >= 5 ? 2 : 1;
  for (const a of allowed) {
    if (norm(a) === k) return a;
    const d = distance(k, norm(a));
    if (d <= bestDist && (best === undefined || d < bestDist)) {
      best = a;
      bestDist = d;
    }
  }
  return best;
}

/** Reports keys of `t` not in `allowed`. */
export function checkKeys(
  ctx: Ctx,
  t: Table,
  path: Path,
  allowed: readonly string[],
): void {
  for (const key of Object.keys(t)) {
    if (allowed.includes(key)) continue;
    const p = [...path, key];
    const guess = nearMiss(key, allowed);
    if (guess !== undefined) {
      ctx.error(p, `unknown key (did you mean "${guess}"?)`);
    } else if (path.length === 0 && ctx.topLevelHint(key) !== undefined) {
      ctx.error(p, `unknown key${ctx.topLevelHint(key)}`);
    } else {
      ctx.error(p, "unknown key");
    }
  }
}

/** The `[[name]]` spelling of an array-of-tables path, for messages. */
function tableName(path: Path, key: string): string {
  return [...path.filter((s) => typeof s === "string"), key].join(".");
}

export function readString(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  required = false,
): string | undefined {
  const v = own(t, key);
  const p = [...path, key];
  if (v === undefined) {
    if (required) ctx.error(p, "required key is missing");
    return undefined;
  }
  if (typeof v !== "string") {
    ctx.error(p, `must be a string, not ${typeName(v)}`);
    return undefined;
  }
  if (v.length === 0) {
    ctx.error(p, "must not be empty");
    return undefined;
  }
  return v;
}

export function readInt(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  min: number,
  max: number,
  dflt: number,
): number {
  const v = own(t, key);
  if (v === undefined) return dflt;
  const p = [...path, key];
  if (typeof v !== "number" || !Number.isInteger(v)) {
    let reason = `must be an integer, not ${typeName(v)}`;
    if (typeof v === "string" && /^-?[0-9]+$/.test(v.trim())) {
      reason += ` (write ${v.trim()} without quotes)`;
    }
    ctx.error(p, reason);
    return dflt;
  }
  if (v < min || v > max) {
    ctx.error(p, `must be from ${min} to ${max} (got ${v})`);
    return dflt;
  }
  return v;
}

const TRUE_WORDS = ["true", "on", "yes"];
const FALSE_WORDS = ["false", "off", "no"];

export function readBool(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  dflt: boolean,
): boolean {
  const v = own(t, key);
  if (v === undefined) return dflt;
  if (typeof v === "boolean") return v;
  let reason = `must be true or false, not ${typeName(v)}`;
  if (typeof v === "string") {
    const w = v.trim().toLowerCase();
    if (TRUE_WORDS.includes(w)) reason += " (write true without quotes)";
    else if (FALSE_WORDS.includes(w)) reason += " (write false without quotes)";
  }
  ctx.error([...path, key], reason);
  return dflt;
}

/** "\"A\" or \"B\"", or "one of \"A\", \"B\", \"C\"". */
export function choices(values: readonly string[]): string {
  const q = values.map((v) => `"${v}"`);
  if (q.length === 2) return `${q[0]} or ${q[1]}`;
  return `one of ${q.join(", ")}`;
}

/** A string from `values`, matched without regard to case; returns the canonical spelling. */
export function readEnum<T extends string>(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  values: readonly T[],
  dflt: T,
  required = false,
): T {
  const v = readString(ctx, t, path, key, required);
  if (v === undefined) return dflt;
  const found = values.find((x) => x.toLowerCase() === v.toLowerCase());
  if (found === undefined) {
    ctx.error([...path, key], `must be ${choices(values)} (got "${v}")`);
    return dflt;
  }
  return found;
}

export function readKeyType(ctx: Ctx, t: Table, path: Path): KeyType {
  const v = own(t, "key-type");
  if (v === undefined) return DEFAULTS.keyType;
  if (v === 1 || v === 2) return v;
  ctx.error(
    [...path, "key-type"],
    "must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)",
  );
  return DEFAULTS.keyType;
}

export function readIpVersion(ctx: Ctx, t: Table, path: Path): 4 | 6 {
  const v = own(t, "ip_version");
  if (v === undefined) return DEFAULTS.ipVersion;
  if (v === 4 || v === 6) return v;
  ctx.error([...path, "ip_version"], "must be 4 or 6");
  return DEFAULTS.ipVersion;
}

const HOSTNAME = /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/;

function addressReason(v: string): string {
  if (HOSTNAME.test(v) && /[A-Za-z]/.test(v) && !/^[0-9a-fA-F]+$/.test(v)) {
    return `must be an IPv4 or IPv6 address; host names are not supported (got "${v}")`;
  }
  return `must be an IPv4 or IPv6 address (got "${v}")`;
}

export function readAddress(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  required = false,
): string | undefined {
  const v = readString(ctx, t, path, key, required);
  if (v === undefined) return undefined;
  const a = parseAddress(v);
  if (a === undefined) {
    ctx.error([...path, key], addressReason(v));
    return undefined;
  }
  return a.text;
}

export function readAddressList(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
): string[] {
  const v = own(t, key);
  if (v === undefined) return [];
  const p = [...path, key];
  if (!Array.isArray(v)) {
    ctx.error(
      p,
      `must be an array of addresses like ["192.0.2.1"], not ${typeName(v)}`,
    );
    return [];
  }
  const out: string[] = [];
  const seen = new Map<string, number>();
  v.forEach((item: unknown, i: number) => {
    const ip = [...p, i];
    if (typeof item !== "string") {
      ctx.error(ip, `must be a string, not ${typeName(item)}`);
      return;
    }
    const a = parseAddress(item);
    if (a === undefined) {
      ctx.error(ip, addressReason(item));
      return;
    }
    const first = seen.get(a.text);
    if (first !== undefined) {
      ctx.error(ip, `duplicate of ${formatPath([...p, first])}`);
      return;
    }
    seen.set(a.text, i);
    out.push(a.text);
  });
  return out;
}

/** The valid names of a string array, each with its index in the file. */
export function readNameList(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
): [string, number][] {
  const v = own(t, key);
  if (v === undefined) return [];
  const p = [...path, key];
  if (!Array.isArray(v)) {
    ctx.error(p, `must be an array of strings, not ${typeName(v)}`);
    return [];
  }
  const out: [string, number][] = [];
  v.forEach((item: unknown, i: number) => {
    if (typeof item !== "string" || item.length === 0) {
      ctx.error(
        [...p, i],
        typeof item === "string" ? "must not be empty" : `must be a string, not ${typeName(item)}`,
      );
      return;
    }
    out.push([item, i]);
  });
  return out;
}

export function readPrefix(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
): Prefix | undefined {
  const v = readString(ctx, t, path, key, true);
  if (v === undefined) return undefined;
  const r = parsePrefix(v);
  if (!r.ok) {
    ctx.error([...path, key], r.reason);
    return undefined;
  }
  return r.prefix;
}

export function readIid(ctx: Ctx, t: Table, path: Path): number {
  return readInt(ctx, t, path, "iid", 0, MAX_IID, DEFAULTS.iid);
}

export function readTtl(ctx: Ctx, t: Table, path: Path, dflt: number): number {
  return readInt(ctx, t, path, "ttl", 0, 0xffffffff, dflt);
}

/** `max-registrations` of a `[[lisp-site]]`. */
export function readMaxRegistrations(ctx: Ctx, t: Table, path: Path): number {
  const max = MAX_SITE_REGISTRATIONS;
  return readInt(ctx, t, path, "max-registrations", 1, max, DEFAULTS.maxRegistrations);
}

export function readPriority(ctx: Ctx, t: Table, path: Path): number {
  return readInt(ctx, t, path, "priority", 0, 255, DEFAULTS.priority);
}

export function readWeight(ctx: Ctx, t: Table, path: Path): number {
  return readInt(ctx, t, path, "weight", 0, 255, DEFAULTS.weight);
}

export function readInterface(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  required: boolean,
): string | undefined {
  const v = readString(ctx, t, path, key, required);
  if (v === undefined) return undefined;
  if (!isInterfaceName(v)) {
    ctx.error(
      [...path, key],
      `must be an interface name (1 to 15 bytes, no "/", ":" or spaces; got "${v}")`,
    );
    return undefined;
  }
  return v;
}

/** The elements of an array of tables, each with its path. */
export function readTables(
  ctx: Ctx,
  t: Table,
  path: Path,
  key: string,
  allowed: readonly string[],
): [Table, Path][] {
  const v = own(t, key);
  if (v === undefined) return [];
  const p = [...path, key];
  const name = tableName(path, key);
  if (!Array.isArray(v)) {
    ctx.error(
      p,
      isTable(v)
        ? `must be an array of tables (write [[${name}]], not [${name}])`
        : `must be an array of tables like [[${name}]], not ${typeName(v)}`,
    );
    return [];
  }
  const out: [Table, Path][] = [];
  v.forEach((item: unknown, i: number) => {
    const ip = [...p, i];
    if (!isTable(item)) {
      ctx.error(ip, `must be a table, not ${typeName(item)}`);
      return;
    }
    checkKeys(ctx, item, ip, allowed);
    out.push([item, ip]);
  });
  return out;
}

export function readTable(
  ctx: Ctx,
  t: Table,
  key: string,
  allowed: readonly string[],
): Table {
  const v = own(t, key);
  if (v === undefined) return {};
  if (!isTable(v)) {
    ctx.error(
      [key],
      Array.isArray(v)
        ? `must be a table (write [${key}], not [[${key}]])`
        : `must be a table like [${key}], not ${typeName(v)}`,
    );
    return {};
  }
  checkKeys(ctx, v, [key], allowed);
  return v;
}

/** Reports a second entry with the same key, pointing at the first. */
export class Uniq {
  readonly #seen = new Map<string, Path>();

  check(ctx: Ctx, id: string, path: Path, at: Path, what: string): void {
    const first = this.#seen.get(id);
    if (first !== undefined) {
      ctx.error(at, `duplicate of ${formatPath(first)} (same ${what})`);
    } else {
      this.#seen.set(id, path);
    }
  }
}

/** How many entries the array at `key` of `t` has (0 when it is absent or not an array). */
export function entryCount(t: Table, key: string): number {
  const v = own(t, key);
  return Array.isArray(v) ? v.length : 0;
}

/**
 * Refuses a list of `count` locators (`what` says which keys) that cannot
 * be one EID record: at most {@link MAX_RECORD_LOCATORS}.
 */
export function checkLocatorCount(ctx: Ctx, path: Path, count: number, what: string): void {
  if (count <= MAX_RECORD_LOCATORS) return;
  ctx.error(
    path,
    `${count} locators (${what}), at most ${MAX_RECORD_LOCATORS} fit in one EID record ` +
      "(8-bit Locator Count, RFC 9301 §5.4)",
  );
}
