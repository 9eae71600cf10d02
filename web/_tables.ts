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
  formatPrefix as formatConfigPrefix,
  type LispSite,
  type MsStaticRegisteredSite,
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
 * state file's `lisp-site.added[0].`). Throws {@link FieldError}.
 */
export function parseConfigTable<T>(
  table: string,
  body: unknown,
  pick: (c: Config) => readonly T[],
  at = "",
): T {
  if (!isObject(body)) {
    throw new FieldError(at === "" ? "body" : at.slice(0, -1), "must be a JSON object");
  }
  let text: string;
  try {
    text = stringify({ [table]: [stripReadOnly(body, at)] });
  } catch (e) {
    throw new FieldError(
      at === "" ? "body" : at.slice(0, -1),
      `cannot be a [[${table}]] table: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  const r = parseConfig(text, { file: "body" });
  if (!r.ok) {
    const e = r.errors[0]!;
    const field = e.keyPath.replace(/^[^.]*\[0\]\.?/, "");
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
