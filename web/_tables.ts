/**
 * Edit bodies checked by the config's own validation: a JSON object posted
 * to `/api/v1/lisp-sites` is the `[[lisp-site]]` table it adds, so it is
 * written as that TOML table and read by `parseConfig()` (config/validate.ts);
 * the first error becomes a {@link FieldError} naming the key
 * (`key-type: must be 1 (HMAC-SHA-1) or 2 (HMAC-SHA-256)`). The same rules
 * hold for a site in the file and a site added at run time.
 *
 * @module
 */

import { stringify } from "smol-toml";
import {
  type Config,
  type DdtDelegSite,
  formatPrefix as formatConfigPrefix,
  type LispSite,
  type MapServer,
  type MsStaticRegisteredSite,
  type ProxyEtr,
} from "../config/mod.ts";
import { parseConfig } from "../config/validate.ts";
import { FieldError } from "./_body.ts";
import { READ_ONLY_KEYS, READ_ONLY_LOCATOR_KEYS } from "./_views.ts";

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** `v` without the keys a GET adds (web/_views.ts), and without nulls TOML has no way to say. */
function stripReadOnly(v: Json, at: string): Json {
  const out: Json = {};
  for (const [k, x] of Object.entries(v)) {
    if (READ_ONLY_KEYS.includes(k)) continue;
    if (x === null) throw new FieldError(`${at}${k}`, "must not be null (leave the key out)");
    if (Array.isArray(x)) {
      out[k] = x.map((e, i) => {
        if (!isObject(e)) return e;
        const o: Json = {};
        for (const [ek, ev] of Object.entries(e)) {
          if (READ_ONLY_LOCATOR_KEYS.includes(ek)) continue;
          if (ev === null) throw new FieldError(`${at}${k}[${i}].${ek}`, "must not be null");
          o[ek] = ev;
        }
        return o;
      });
    } else out[k] = x;
  }
  return out;
}

/**
 * Reads `body` as one `[[table]]` of oor.toml with `parseConfig()` and
 * returns what `pick` finds in the result. `at` prefixes field names (the
 * state file's `lisp-site.added[0].`); `context` adds other tables the
 * check needs (the `[[ddt-auth-site]]`s a delegation must fall in). Throws
 * {@link FieldError}.
 */
export function parseConfigTable<T>(
  table: string,
  body: unknown,
  pick: (c: Config) => readonly T[],
  at = "",
  context: Record<string, unknown> = {},
): T {
  if (!isObject(body)) {
    throw new FieldError(at === "" ? "body" : at.slice(0, -1), "must be a JSON object");
  }
  let text: string;
  try {
    text = stringify({ ...context, [table]: [stripReadOnly(body, at)] });
  } catch (e) {
    throw new FieldError(
      at === "" ? "body" : at.slice(0, -1),
      `cannot be a [[${table}]] table: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const r = parseConfig(text, { file: "body" });
  if (!r.ok) {
    const e = r.errors[0]!;
    const field = e.keyPath.replace(/^[^.[]*(\[0\])?\.?/, "");
    throw new FieldError(`${at}${field === "" ? table : field}`, e.reason);
  }
  const found = pick(r.config)[0];
  if (found === undefined) throw new FieldError(at === "" ? "body" : at.slice(0, -1), "is empty");
  return found;
}

/** A `[[lisp-site]]` table as JSON (`eid-prefix`, `iid`, `key-type`, `key`, ...). */
export function parseLispSite(body: unknown, at = ""): LispSite {
  return parseConfigTable("lisp-site", body, (c) => c.lispSites, at);
}

/** A `[[ms-static-registered-site]]` table as JSON (`eid-prefix`, `iid`, `ttl`, `rloc-address`). */
export function parseStaticSite(body: unknown, at = ""): MsStaticRegisteredSite {
  return parseConfigTable(
    "ms-static-registered-site",
    body,
    (c) => c.msStaticRegisteredSites,
    at,
  );
}

/** The JSON form of a `[[lisp-site]]` (what {@link parseLispSite} reads), key included. */
export function lispSiteJson(s: LispSite): Json {
  return {
    "eid-prefix": formatConfigPrefix(s.eidPrefix),
    iid: s.iid,
    "key-type": s.keyType,
    key: s.key,
    "accept-more-specifics": s.acceptMoreSpecifics,
    "proxy-reply": s.proxyReply,
    merge: s.merge,
    "ddt-ms-peers-complete": s.ddtMsPeersComplete,
    "ddt-ms-peers": [...s.ddtMsPeers],
    "max-registrations": s.maxRegistrations,
  };
}

/** The JSON form of a `[[ms-static-registered-site]]` (what {@link parseStaticSite} reads). */
export function staticSiteJson(s: MsStaticRegisteredSite): Json {
  return {
    "eid-prefix": formatConfigPrefix(s.eidPrefix),
    iid: s.iid,
    ttl: s.ttl,
    "rloc-address": s.rlocAddresses.map((r) => ({
      address: r.kind === "address" ? r.address : r.elpName,
      priority: r.priority,
      weight: r.weight,
    })),
  };
}

/** A `[[map-server]]` table as JSON (`address`, `key-type`, `key`, `proxy-reply`, `merge`). */
export function parseMapServer(body: unknown, at = ""): MapServer {
  return parseConfigTable("map-server", body, (c) => c.mapServers, at);
}

/** The JSON form of a `[[map-server]]`; the key only when `withKey` (the state file). */
export function mapServerJson(m: MapServer, withKey = false): Json {
  return {
    address: m.address,
    "key-type": m.keyType,
    ...(withKey && m.key !== undefined ? { key: m.key } : {}),
    "proxy-reply": m.proxyReply,
    merge: m.merge,
  };
}

/** A `[[proxy-etr-ipv4]]` or `[[proxy-etr-ipv6]]` table as JSON (the family by its address). */
export function parseProxyEtr(body: unknown, at = ""): { family: 4 | 6; petr: ProxyEtr } {
  const a = isObject(body) ? body["address"] : undefined;
  const family = typeof a === "string" && a.includes(":") ? 6 : 4;
  const petr = parseConfigTable(
    `proxy-etr-ipv${family}`,
    body,
    (c) => family === 4 ? c.proxyEtrsIpv4 : c.proxyEtrsIpv6,
    at,
  );
  return { family, petr };
}

/** The JSON form of a proxy-ETR. */
export function proxyEtrJson(p: ProxyEtr): Json {
  return { address: p.address, priority: p.priority, weight: p.weight };
}

/** A `map-resolver` address (`{"address": "192.0.2.1"}`), as the config reads it. */
export function parseMapResolver(body: unknown, at = ""): string {
  if (!isObject(body)) {
    throw new FieldError(at === "" ? "body" : at.slice(0, -1), "must be a JSON object {address}");
  }
  for (const k of Object.keys(body)) {
    if (k !== "address") throw new FieldError(`${at}${k}`, "unknown key (expected address)");
  }
  const address = body["address"];
  if (address === undefined) throw new FieldError(`${at}address`, "is required");
  const r = parseConfig(stringify({ "map-resolver": [address] } as Record<string, unknown>), {
    file: "body",
  });
  if (!r.ok) throw new FieldError(`${at}address`, r.errors[0]!.reason);
  return r.config.mapResolvers[0]!;
}

/** A `[[ddt-deleg-site]]` table as JSON, checked against the node's `[[ddt-auth-site]]`s. */
export function parseDelegSite(
  body: unknown,
  authSites: readonly { readonly "eid-prefix": string; readonly iid: number }[],
  at = "",
): DdtDelegSite {
  return parseConfigTable(
    "ddt-deleg-site",
    body,
    (c) => c.ddtDelegSites,
    at,
    { "ddt-auth-site": authSites.map((a) => ({ ...a })) },
  );
}

/** The JSON form of a `[[ddt-deleg-site]]`. */
export function delegSiteJson(d: DdtDelegSite): Json {
  return {
    "eid-prefix": formatConfigPrefix(d.eidPrefix),
    iid: d.iid,
    "delegation-type": d.delegationType,
    "deleg-nodes": [...d.delegNodes],
  };
}
