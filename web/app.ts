/**
 * The HTTP surface of a role, as a Hono app over a {@link StatusSource}:
 *
 * | Route | What |
 * | --- | --- |
 * | `GET /` | status page (HTML, reloads itself; `?refresh=0` stops that) |
 * | `GET /api/v1/status` | role, version, uptime, RLOCs, map-servers, details |
 * | `GET /api/v1/map-cache?eid=&iid=` | map-cache entries overlapping `eid`, in `iid` |
 * | `GET /api/v1/database` | local EID prefixes |
 * | `GET /api/v1/sites` | sites and registrations (map-server) |
 * | `GET /api/v1/referrals` | referral cache (mr) or delegations (ddt) |
 * | `GET /api/v1/stats` | counters and gauges, as `Counters.snapshot()` |
 * | `GET /metrics` | Prometheus text format |
 * | `POST /api/v1/map-cache` | add or replace a static map-cache entry |
 * | `DELETE /api/v1/map-cache?eid-prefix=&iid=` | remove one |
 * | `POST /api/v1/database` | add or replace a database mapping |
 * | `DELETE /api/v1/database?eid-prefix=&iid=` | remove one |
 *
 * Errors are JSON: `{"error": "...", "field": "..."}` (`field` when one
 * request field is at fault). A provider the role does not have answers
 * 404 saying so (before any token check: what a role has is no secret).
 * Writes need `Authorization: Bearer <token>`: with no token configured
 * they are refused with 403, with a missing or wrong one 401; the token is compared in constant time (SHA-256 of both, then every
 * byte). Bodies are the JSON form of web/_body.ts; a bad one gets 400
 * naming the field.
 *
 * @module
 */

import { Hono } from "hono";
import { formatPrefix as formatConfigPrefix } from "../config/mod.ts";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import {
  parsePrefix as parseTablePrefix,
  type Prefix as TablePrefix,
  prefixAddress,
  prefixContains,
} from "../core/prefix.ts";
import {
  databaseMappingJson,
  eidKeyJson,
  FieldError,
  parseDatabaseMapping,
  parseEidKey,
  parseIid,
  parseStaticMapping,
  staticMappingJson,
} from "./_body.ts";
import { renderMetrics } from "./_metrics.ts";
import { type PageModel, type Part, renderPage } from "./_page.ts";
import {
  type MapCacheQuery,
  type MapCacheView,
  SourceError,
  type StatusSource,
} from "../core/status.ts";

/** What {@link createApp} needs besides the source. */
export interface AppOptions {
  /** Bearer token for writes (`[api] token`, else `OOR_API_TOKEN`); none: writes refused. */
  readonly token?: string;
  /** oor version. */
  readonly version: string;
  /** Role name (`ms`, `xtr`...). */
  readonly role: string;
  /** When the role started, ms since the epoch. */
  readonly startedAt: number;
  /** Clock, ms since the epoch. */
  readonly now: () => number;
  /** Called with what a provider threw (answered 500); for logging. */
  readonly onError?: (error: unknown, where: string) => void;
}

/** Largest request body accepted, bytes. */
export const MAX_BODY = 64 * 1024;

/** Seconds between reloads of the status page. */
export const PAGE_REFRESH = 2;

const PATHS = {
  status: "/api/v1/status",
  mapCache: "/api/v1/map-cache",
  database: "/api/v1/database",
  sites: "/api/v1/sites",
  referrals: "/api/v1/referrals",
  stats: "/api/v1/stats",
  metrics: "/metrics",
} as const;

/** What each provider is, for "this role has no ..." answers. */
const WHAT: Readonly<Record<string, string>> = {
  mapCache: "map-cache",
  database: "database (local EID prefixes)",
  sites: "sites or registrations (only a map-server has)",
  referrals: "referrals (only a map-resolver or a DDT node has)",
  counters: "counters",
  addStaticMapping: "map-cache to edit",
  removeStaticMapping: "map-cache to edit",
  addDatabaseMapping: "database to edit",
  removeDatabaseMapping: "database to edit",
};

const enc = new TextEncoder();

async function sha256(text: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", enc.encode(text)));
}

/** Compares two equal-length digests touching every byte. */
function sameDigest(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

function jsonError(c: Context, status: number, error: string, field?: string): Response {
  const body = field !== undefined ? { error, field } : { error };
  return c.json(body, status as 400);
}

/** The EID of a map-cache filter as text without the instance (`"10.1.0.0/16"`). */
function prefixText(p: TablePrefix): string {
  const a = prefixAddress(p);
  return `${a.kind === "mac" ? a.mac : a.ip}/${p.len}`;
}

/** Entries of `list` matching the query: same instance, and overlapping the EID. */
export function filterMapCache(
  list: readonly MapCacheView[],
  query: MapCacheQuery,
): MapCacheView[] {
  return list.filter((x) => {
    if (query.iid !== undefined && x.iid !== query.iid) return false;
    if (query.eid === undefined) return true;
    const q = parseTablePrefix(query.eid, x.iid);
    const p = parseTablePrefix(x.eidPrefix, x.iid);
    if (q === undefined || p === undefined) return false;
    return prefixContains(p, q) || prefixContains(q, p);
  });
}

/** Parses the `eid` filter: an address (a host) or a prefix, IPv4, IPv6 or MAC. */
function parseEidFilter(text: string): string {
  const p = parseTablePrefix(text);
  if (p === undefined) {
    throw new FieldError(
      "eid",
      `must be an EID address or prefix like 10.1.2.3, 10.1.0.0/16 or 2001:db8::/32 (got "${
        text.slice(0, 60)
      }")`,
    );
  }
  return prefixText(p);
}

function checkQuery(c: Context, allowed: readonly string[]): void {
  for (const k of Object.keys(c.req.queries())) {
    if (!allowed.includes(k)) {
      throw new FieldError(
        k,
        allowed.length === 0
          ? "unknown query parameter (this route takes none)"
          : `unknown query parameter (expected ${allowed.join(", ")})`,
      );
    }
  }
}

/** Builds the app. See the module notes for the routes. */
export function createApp(source: StatusSource, opts: AppOptions): Hono {
  const app = new Hono();
  const token = opts.token !== undefined && opts.token !== "" ? opts.token : undefined;
  const tokenDigest = token !== undefined ? sha256(token) : undefined;
  const role = opts.role;
  const editable = source.addStaticMapping !== undefined ||
    source.removeStaticMapping !== undefined || source.addDatabaseMapping !== undefined ||
    source.removeDatabaseMapping !== undefined;
  const writable = editable && token !== undefined;

  const missing = (c: Context, provider: string): Response =>
    jsonError(c, 404, `this role (${role}) has no ${WHAT[provider] ?? provider}`);

  /** Undefined when the request may write; else the refusal. */
  const authorize = async (c: Context): Promise<Response | undefined> => {
    if (tokenDigest === undefined) {
      return jsonError(
        c,
        403,
        "runtime edits are disabled: no API token is configured (set [api] token or OOR_API_TOKEN)",
      );
    }
    const header = c.req.header("authorization") ?? "";
    const m = /^Bearer +(\S+) *$/i.exec(header);
    // Hash whatever was sent (or nothing) so the time taken does not depend on it.
    const sent = await sha256(m?.[1] ?? "");
    const ok = sameDigest(sent, await tokenDigest) && m !== null;
    if (ok) return undefined;
    c.header("WWW-Authenticate", 'Bearer realm="oor"');
    return jsonError(
      c,
      401,
      m === null
        ? "missing bearer token: send Authorization: Bearer <token>"
        : "wrong bearer token",
    );
  };

  app.use("*", async (c, next) => {
    await next();
    c.header("Cache-Control", "no-store");
    c.header("X-Content-Type-Options", "nosniff");
  });

  app.onError((err, c) => {
    if (err instanceof FieldError) return jsonError(c, 400, err.message, err.field);
    if (err instanceof SourceError) {
      const status = err.status >= 400 && err.status <= 599 ? err.status : 500;
      return jsonError(c, status, err.message, err.field);
    }
    opts.onError?.(err, `${c.req.method} ${c.req.path}`);
    return jsonError(c, 500, `internal error: ${err instanceof Error ? err.message : String(err)}`);
  });

  app.notFound((c) => jsonError(c, 404, `no route ${c.req.method} ${c.req.path}`));

  // -------------------------------------------------------------------------
  // Reads

  const statusBody = async () => {
    const now = opts.now();
    const s = source.status ? await source.status() : {};
    return {
      role,
      version: opts.version,
      startedAt: opts.startedAt,
      uptimeSeconds: Math.max(0, Math.floor((now - opts.startedAt) / 1000)),
      writable,
      ...s,
    };
  };

  app.get(PATHS.status, async (c) => c.json(await statusBody()));

  app.get(PATHS.mapCache, async (c) => {
    checkQuery(c, ["eid", "iid"]);
    if (!source.mapCache) return missing(c, "mapCache");
    const eidText = c.req.query("eid");
    const iidText = c.req.query("iid");
    const query: { eid?: string; iid?: number } = {};
    if (eidText !== undefined) query.eid = parseEidFilter(eidText);
    if (iidText !== undefined) query.iid = parseIid(iidText, "iid", true);
    const entries = filterMapCache(await source.mapCache(query), query);
    return c.json({ count: entries.length, entries });
  });

  app.get(PATHS.database, async (c) => {
    if (!source.database) return missing(c, "database");
    const entries = await source.database();
    return c.json({ count: entries.length, entries });
  });

  app.get(PATHS.sites, async (c) => {
    if (!source.sites) return missing(c, "sites");
    return c.json(await source.sites());
  });

  app.get(PATHS.referrals, async (c) => {
    if (!source.referrals) return missing(c, "referrals");
    const entries = await source.referrals();
    return c.json({ count: entries.length, entries });
  });

  app.get(PATHS.stats, async (c) => {
    if (!source.counters) return missing(c, "counters");
    const now = opts.now();
    return c.json({
      uptimeSeconds: Math.max(0, Math.floor((now - opts.startedAt) / 1000)),
      counters: await source.counters(),
    });
  });

  app.get(PATHS.metrics, async (c) => {
    const snapshot = source.counters ? await source.counters() : {};
    const rss = typeof Deno !== "undefined" ? Deno.memoryUsage().rss : undefined;
    const body = renderMetrics(snapshot, {
      role,
      version: opts.version,
      startedAt: opts.startedAt,
      now: opts.now(),
      ...(rss !== undefined ? { rssBytes: rss } : {}),
    });
    return c.body(body, 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" });
  });

  app.get("/", async (c) => {
    const r = c.req.query("refresh");
    const refresh = r !== undefined && /^[0-9]{1,4}$/.test(r) ? Number(r) : PAGE_REFRESH;
    const part = async <T>(
      f: (() => T | Promise<T>) | undefined,
      where: string,
    ): Promise<Part<T>> => {
      if (f === undefined) return undefined;
      try {
        return { value: await f() };
      } catch (e) {
        opts.onError?.(e, `GET / ${where}`);
        return { error: e instanceof Error ? e.message : String(e) };
      }
    };
    const [status, mapCache, database, sites, referrals, counters] = await Promise.all([
      part(source.status?.bind(source), "status"),
      part(source.mapCache ? () => source.mapCache!({}) : undefined, "map-cache"),
      part(source.database?.bind(source), "database"),
      part(source.sites?.bind(source), "sites"),
      part(source.referrals?.bind(source), "referrals"),
      part(source.counters?.bind(source), "counters"),
    ]);
    const model: PageModel = {
      role,
      version: opts.version,
      startedAt: opts.startedAt,
      now: opts.now(),
      refresh,
      edits: !editable ? "none" : writable ? "enabled" : "no-token",
      status,
      mapCache,
      database,
      sites,
      referrals,
      counters,
    };
    c.header("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'");
    return c.html(renderPage(model));
  });

  // -------------------------------------------------------------------------
  // Writes

  const limit = bodyLimit({
    maxSize: MAX_BODY,
    onError: (c) => jsonError(c, 413, `body larger than ${MAX_BODY} bytes`, "body"),
  });

  const readBody = async (c: Context): Promise<unknown> => {
    const text = await c.req.text();
    if (text.trim() === "") throw new FieldError("body", "is empty: send a JSON object");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new FieldError("body", `is not JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  app.post(PATHS.mapCache, limit, async (c) => {
    if (!source.addStaticMapping) return missing(c, "addStaticMapping");
    const denied = await authorize(c);
    if (denied) return denied;
    checkQuery(c, []);
    const entry = parseStaticMapping(await readBody(c));
    await source.addStaticMapping(entry);
    return c.json({ added: staticMappingJson(entry) }, 201);
  });

  app.delete(PATHS.mapCache, async (c) => {
    if (!source.removeStaticMapping) return missing(c, "removeStaticMapping");
    const denied = await authorize(c);
    if (denied) return denied;
    checkQuery(c, ["eid-prefix", "iid"]);
    const key = parseEidKey(c.req.query(), "", true);
    if (!await source.removeStaticMapping(key.eidPrefix, key.iid)) {
      return jsonError(
        c,
        404,
        `no static map-cache entry for ${formatConfigPrefix(key.eidPrefix)} in instance ${key.iid}`,
      );
    }
    return c.json({ removed: eidKeyJson(key) });
  });

  app.post(PATHS.database, limit, async (c) => {
    if (!source.addDatabaseMapping) return missing(c, "addDatabaseMapping");
    const denied = await authorize(c);
    if (denied) return denied;
    checkQuery(c, []);
    const mapping = parseDatabaseMapping(await readBody(c));
    await source.addDatabaseMapping(mapping);
    return c.json({ added: databaseMappingJson(mapping) }, 201);
  });

  app.delete(PATHS.database, async (c) => {
    if (!source.removeDatabaseMapping) return missing(c, "removeDatabaseMapping");
    const denied = await authorize(c);
    if (denied) return denied;
    checkQuery(c, ["eid-prefix", "iid"]);
    const key = parseEidKey(c.req.query(), "", true);
    if (!await source.removeDatabaseMapping(key.eidPrefix, key.iid)) {
      return jsonError(
        c,
        404,
        `no database mapping for ${formatConfigPrefix(key.eidPrefix)} in instance ${key.iid}`,
      );
    }
    return c.json({ removed: eidKeyJson(key) });
  });

  // Other methods on known paths.
  const allow: Readonly<Record<string, string>> = {
    [PATHS.mapCache]: "GET, HEAD, POST, DELETE",
    [PATHS.database]: "GET, HEAD, POST, DELETE",
  };
  for (const path of [...Object.values(PATHS), "/"]) {
    app.all(path, (c) => {
      const methods = allow[path] ?? "GET, HEAD";
      c.header("Allow", methods);
      return jsonError(c, 405, `${c.req.method} is not allowed on ${path} (use ${methods})`);
    });
  }

  return app;
}
