/**
 * The HTTP surface of a role, as a Hono app over a {@link StatusSource}:
 *
 * The routes are the table of web/openapi.ts (`ROUTES`): `GET /api/v1`
 * lists them, `GET /api/v1/openapi.json` is their OpenAPI 3.1 document.
 * The status page (`GET /`), reads under `/api/v1/` (status, map-cache,
 * database, sites, lisp-sites, ms-static-registered-sites, referrals,
 * stats), `/metrics`, and edits named after the config's tables (`POST`
 * a table as JSON, `DELETE ?eid-prefix=&iid=`): map-cache
 * (`[[static-map-cache]]`), database, lisp-sites,
 * ms-static-registered-sites. JSON field names are the config's kebab-case
 * keys (web/_views.ts), so what a GET answers can be posted back.
 *
 * Lists come a page at a time: `?limit=` entries (default
 * {@link DEFAULT_PAGE_SIZE}, at most {@link MAX_PAGE_SIZE}) from `?offset=`
 * (default 0), in the role's order; the answer says `total`, `count` (on
 * this page), `offset`, `limit` and `next` (the offset of the next page, or
 * null). `/api/v1/sites` pages its two lists side by side, with
 * `sitesTotal` and `registrationsTotal`.
 *
 * Errors are JSON: `{"error": "...", "field": "..."}` (`field` when one
 * request field is at fault). An internal error answers 500 with a generic
 * message and an `id`; the details go to {@link AppOptions.onError}, once
 * per minute for the same error and place, and the same id is given
 * meanwhile. With {@link AppOptions.allowedHosts} (an API on loopback), a
 * request whose Host header names another host is refused with 403: a web
 * page that rebinds its own DNS name to 127.0.0.1 cannot read the API. A
 * provider the role does not have answers
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
  canonicalAddress,
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
import {
  databaseJson,
  mapCacheJson,
  referralJson,
  registrationJson,
  roleStatusJson,
  siteJson,
  sitesJson,
} from "./_views.ts";
import {
  delegSiteJson,
  lispSiteJson,
  mapServerJson,
  parseDelegSite,
  parseLispSite,
  parseMapResolver,
  parseMapServer,
  parseProxyEtr,
  parseStaticSite,
  proxyEtrJson,
  staticSiteJson,
} from "./_tables.ts";
import { allowedMethods, openApiDocument, ROUTES } from "./openapi.ts";
import { errorId } from "./server.ts";
import { type PageModel, type Part, renderPage } from "./_page.ts";
import {
  type MapCacheQuery,
  type MapCacheView,
  type PeerLists,
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
  /**
   * Called with what a provider threw (answered 500 with `id`), for the
   * log; once a minute for the same error and place (the answers of that
   * minute carry the same id).
   */
  readonly onError?: (error: unknown, where: string, id: string) => void;
  /**
   * Host names a request's Host header may give (lower case, IPv6 without
   * brackets, the port not compared): the listen address and `localhost`
   * for an API on loopback. Absent: any Host is taken.
   */
  readonly allowedHosts?: readonly string[];
}

/** Largest request body accepted, bytes. */
export const MAX_BODY = 64 * 1024;

/** Seconds between reloads of the status page. */
export const PAGE_REFRESH = 2;

/** Entries on a page of a list when `limit` is not given. */
export const DEFAULT_PAGE_SIZE = 100;

/** Largest `limit` of a page. */
export const MAX_PAGE_SIZE = 1000;

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
  addLispSite: "lisp-sites to edit (only a map-server has)",
  removeLispSite: "lisp-sites to edit (only a map-server has)",
  addStaticSite: "static registrations to edit (only a map-server has)",
  removeStaticSite: "static registrations to edit (only a map-server has)",
  addDelegSite: "delegations to edit (only a DDT node has)",
  removeDelegSite: "delegations to edit (only a DDT node has)",
  peerLists: "map-servers, map-resolvers or proxy-ETRs (tunnel routers; an mr's map-servers)",
  setPeers:
    "map-servers, map-resolvers or proxy-ETRs to edit (tunnel routers; an mr's map-servers)",
};

/** The provider of the role each route needs (absent: every role has it). */
const PROVIDER: Readonly<Record<string, keyof StatusSource>> = {
  "GET /api/v1/map-cache": "mapCache",
  "POST /api/v1/map-cache": "addStaticMapping",
  "DELETE /api/v1/map-cache": "removeStaticMapping",
  "GET /api/v1/database": "database",
  "POST /api/v1/database": "addDatabaseMapping",
  "DELETE /api/v1/database": "removeDatabaseMapping",
  "GET /api/v1/sites": "sites",
  "GET /api/v1/lisp-sites": "sites",
  "POST /api/v1/lisp-sites": "addLispSite",
  "DELETE /api/v1/lisp-sites": "removeLispSite",
  "GET /api/v1/ms-static-registered-sites": "sites",
  "POST /api/v1/ms-static-registered-sites": "addStaticSite",
  "DELETE /api/v1/ms-static-registered-sites": "removeStaticSite",
  "GET /api/v1/referrals": "referrals",
  "GET /api/v1/ddt-deleg-sites": "addDelegSite",
  "POST /api/v1/ddt-deleg-sites": "addDelegSite",
  "DELETE /api/v1/ddt-deleg-sites": "removeDelegSite",
  "GET /api/v1/map-servers": "peerLists",
  "POST /api/v1/map-servers": "setPeers",
  "DELETE /api/v1/map-servers": "setPeers",
  "GET /api/v1/map-resolvers": "peerLists",
  "POST /api/v1/map-resolvers": "setPeers",
  "DELETE /api/v1/map-resolvers": "setPeers",
  "GET /api/v1/proxy-etrs": "peerLists",
  "POST /api/v1/proxy-etrs": "setPeers",
  "DELETE /api/v1/proxy-etrs": "setPeers",
  "POST /api/v1/reload": "reload",
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

/** Where a page starts and how long it is. */
interface PageQuery {
  readonly offset: number;
  readonly limit: number;
}

/** `limit` and `offset` of a list request; 400 naming the one that is bad. */
function readPage(c: Context): PageQuery {
  const limitText = c.req.query("limit");
  const offsetText = c.req.query("offset");
  let limit = DEFAULT_PAGE_SIZE;
  let offset = 0;
  if (limitText !== undefined) {
    limit = /^[0-9]{1,7}$/.test(limitText) ? Number(limitText) : NaN;
    if (!(limit >= 1 && limit <= MAX_PAGE_SIZE)) {
      throw new FieldError(
        "limit",
        `must be an integer from 1 to ${MAX_PAGE_SIZE} (got "${limitText.slice(0, 20)}")`,
      );
    }
  }
  if (offsetText !== undefined) {
    offset = /^[0-9]{1,10}$/.test(offsetText) ? Number(offsetText) : NaN;
    if (!(offset >= 0 && offset <= 0xffffffff)) {
      throw new FieldError(
        "offset",
        `must be an integer of 0 or more (got "${offsetText.slice(0, 20)}")`,
      );
    }
  }
  return { offset, limit };
}

/** A page of `list`: its entries and where the next page starts (null: none). */
function pageOf<T>(list: readonly T[], q: PageQuery): { entries: T[]; next: number | null } {
  const entries = list.slice(q.offset, q.offset + q.limit);
  return { entries, next: q.offset + q.limit < list.length ? q.offset + q.limit : null };
}

/** The JSON of one paged list. */
function pagedList<T>(list: readonly T[], q: PageQuery) {
  const { entries, next } = pageOf(list, q);
  return {
    total: list.length,
    count: entries.length,
    offset: q.offset,
    limit: q.limit,
    next,
    entries,
  };
}

/** Page query parameters, allowed on every list route. */
const PAGE_PARAMS = ["limit", "offset"] as const;

/** The host name of a Host header value: lower case, no port, IPv6 without brackets. */
export function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const v6 = /^\[([^\]]*)\](?::[0-9]*)?$/.exec(h);
  if (v6) return v6[1]!;
  const name = h.replace(/:[0-9]*$/, "");
  return name.endsWith(".") ? name.slice(0, -1) : name;
}

/**
 * Ids of internal errors: the same id for the same error at the same
 * place for a minute, so that each id a client gets is in the log once.
 */
class ErrorIds {
  readonly #ids = new Map<string, { id: string; until: number }>();

  /** The id for `key` now, and whether it is new (to be logged). */
  take(key: string, now: number): { id: string; fresh: boolean } {
    const known = this.#ids.get(key);
    if (known !== undefined && now < known.until) return { id: known.id, fresh: false };
    if (this.#ids.size >= 256) {
      for (const [k, v] of this.#ids) if (now >= v.until) this.#ids.delete(k);
      if (this.#ids.size >= 256) this.#ids.clear();
    }
    const id = errorId();
    this.#ids.set(key, { id, until: now + 60_000 });
    return { id, fresh: true };
  }
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
    source.removeDatabaseMapping !== undefined || source.addLispSite !== undefined ||
    source.addStaticSite !== undefined || source.addDelegSite !== undefined ||
    source.setPeers !== undefined;
  const writable = editable && token !== undefined;

  const ids = new ErrorIds();
  /** The id of an internal error; reports it (once a minute per error and place). */
  const internalError = (error: unknown, where: string): string => {
    const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    const { id, fresh } = ids.take(`${where}\n${message}`, opts.now());
    if (fresh) opts.onError?.(error, where, id);
    return id;
  };
  const allowedHosts = opts.allowedHosts?.map((h) => h.toLowerCase());

  const missing = (c: Context, provider: string): Response =>
    jsonError(c, 404, `this role (${role}) has no ${WHAT[provider] ?? provider}`);

  /** Undefined when the request may write; else the refusal. */
  const authorize = async (c: Context): Promise<Response | undefined> => {
    if (tokenDigest === undefined) {
      return jsonError(
        c,
        403,
        "runtime edits are disabled: no API token is configured, so this API is read-only " +
          "(set [api] token, or OOR_API_TOKEN in the role's environment)",
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
    if (allowedHosts !== undefined) {
      const host = c.req.header("host");
      if (host === undefined || !allowedHosts.includes(hostName(host))) {
        c.header("Cache-Control", "no-store");
        return jsonError(
          c,
          403,
          host === undefined
            ? "no Host header: this API answers requests for " + allowedHosts.join(" or ")
            : `Host "${host.slice(0, 100)}" is not this API's: it answers requests for ${
              allowedHosts.map((h) => h.includes(":") ? `[${h}]` : h).join(" or ")
            } only`,
          "host",
        );
      }
    }
    await next();
    c.header("Cache-Control", "no-store");
    c.header("X-Content-Type-Options", "nosniff");
    return undefined;
  });

  app.onError((err, c) => {
    if (err instanceof FieldError) return jsonError(c, 400, err.message, err.field);
    const where = `${c.req.method} ${c.req.path}`;
    if (err instanceof SourceError) {
      const status = err.status >= 400 && err.status <= 599 ? err.status : 500;
      if (status < 500) return jsonError(c, status, err.message, err.field);
      // The role's own words for the client; what caused it goes to the log.
      const id = internalError(err.cause ?? err, where);
      return c.json(
        {
          error: `${err.message} (error id ${id})`,
          id,
          ...(err.field ? { field: err.field } : {}),
        },
        status as 500,
      );
    }
    const id = internalError(err, where);
    return c.json(
      { error: `internal error (id ${id}; the role's log has the details)`, id },
      500,
    );
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
      "started-at": opts.startedAt,
      "uptime-seconds": Math.max(0, Math.floor((now - opts.startedAt) / 1000)),
      writable,
      ...roleStatusJson(s),
    };
  };

  app.get("/api/v1", (c) => {
    checkQuery(c, []);
    return c.json({
      role,
      version: opts.version,
      openapi: "/api/v1/openapi.json",
      routes: ROUTES.map((r) => {
        const provider = PROVIDER[`${r.method} ${r.path}`];
        return {
          method: r.method,
          path: r.path,
          summary: r.summary,
          write: r.write === true,
          available: provider === undefined || source[provider] !== undefined,
        };
      }),
    });
  });

  app.get("/api/v1/openapi.json", (c) => {
    checkQuery(c, []);
    return c.json(openApiDocument({ version: opts.version, role }));
  });

  app.get(PATHS.status, async (c) => c.json(await statusBody()));

  app.get(PATHS.mapCache, async (c) => {
    checkQuery(c, ["eid", "iid", ...PAGE_PARAMS]);
    if (!source.mapCache) return missing(c, "mapCache");
    const page = readPage(c);
    const eidText = c.req.query("eid");
    const iidText = c.req.query("iid");
    const query: { eid?: string; iid?: number } = {};
    if (eidText !== undefined) query.eid = parseEidFilter(eidText);
    if (iidText !== undefined) query.iid = parseIid(iidText, "iid", true);
    const entries = filterMapCache(await source.mapCache(query), query);
    return c.json(pagedList(entries.map(mapCacheJson), page));
  });

  app.get(PATHS.database, async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.database) return missing(c, "database");
    const page = readPage(c);
    return c.json(pagedList((await source.database()).map(databaseJson), page));
  });

  app.get(PATHS.sites, async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.sites) return missing(c, "sites");
    const page = readPage(c);
    const all = await source.sites();
    const sites = pageOf(all.sites, page);
    const registrations = pageOf(all.registrations, page);
    return c.json({
      offset: page.offset,
      limit: page.limit,
      next: sites.next ?? registrations.next,
      "sites-total": all.sites.length,
      "registrations-total": all.registrations.length,
      ...sitesJson({
        sites: sites.entries,
        registrations: registrations.entries,
        ...(all.rejections !== undefined ? { rejections: all.rejections } : {}),
        ...(all.subscriptions !== undefined ? { subscriptions: all.subscriptions } : {}),
      }),
    });
  });

  app.get("/api/v1/lisp-sites", async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.sites) return missing(c, "sites");
    const page = readPage(c);
    const all = await source.sites();
    const regs = all.registrations.map(registrationJson);
    return c.json(pagedList(
      all.sites.map((s) => {
        const j = siteJson(s);
        const mine = regs.filter((r) => r["site"] === s.prefix);
        return { ...j, "live-registrations": mine };
      }),
      page,
    ));
  });

  app.get("/api/v1/ms-static-registered-sites", async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.sites) return missing(c, "sites");
    const page = readPage(c);
    const all = await source.sites();
    const list = all.registrations.filter((r) => r.source === "static").map((r) => {
      const j = registrationJson(r);
      return {
        "eid-prefix": j["eid-prefix"],
        iid: j["iid"],
        ttl: j["ttl"],
        "rloc-address": (j["rloc-address"] as Record<string, unknown>[]).map((l) => ({
          address: l["address"],
          priority: l["priority"],
          weight: l["weight"],
        })),
      };
    });
    return c.json(pagedList(list, page));
  });

  app.get(PATHS.referrals, async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.referrals) return missing(c, "referrals");
    const page = readPage(c);
    return c.json(pagedList((await source.referrals()).map(referralJson), page));
  });

  app.get(PATHS.stats, async (c) => {
    if (!source.counters) return missing(c, "counters");
    const now = opts.now();
    return c.json({
      "uptime-seconds": Math.max(0, Math.floor((now - opts.startedAt) / 1000)),
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
        const id = internalError(e, `GET / ${where}`);
        return { error: `internal error (id ${id}; the role's log has the details)` };
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

  /** A table edit: `POST` the table as JSON, `DELETE ?eid-prefix=&iid=`. */
  const tableEdit = <T>(
    path: string,
    what: string,
    add: "addLispSite" | "addStaticSite" | "addDelegSite",
    remove: "removeLispSite" | "removeStaticSite" | "removeDelegSite",
    parse: (body: unknown) => T | Promise<T>,
    json: (t: T) => Record<string, unknown>,
  ) => {
    app.post(path, limit, async (c) => {
      const hook = source[add] as ((t: T) => unknown) | undefined;
      if (!hook) return missing(c, add);
      const denied = await authorize(c);
      if (denied) return denied;
      checkQuery(c, []);
      const entry = await parse(await readBody(c));
      await hook.call(source, entry);
      const out = json(entry);
      delete out["key"];
      return c.json({ added: out }, 201);
    });
    app.delete(path, async (c) => {
      if (!source[remove]) return missing(c, remove);
      const denied = await authorize(c);
      if (denied) return denied;
      checkQuery(c, ["eid-prefix", "iid"]);
      const key = parseEidKey(c.req.query(), "", true);
      if (!await source[remove]!(key.eidPrefix, key.iid)) {
        return jsonError(
          c,
          404,
          `no ${what} for ${formatConfigPrefix(key.eidPrefix)} in instance ${key.iid}`,
        );
      }
      return c.json({ removed: eidKeyJson(key) });
    });
  };
  tableEdit(
    "/api/v1/lisp-sites",
    "[[lisp-site]]",
    "addLispSite",
    "removeLispSite",
    (b) => parseLispSite(b),
    lispSiteJson,
  );
  tableEdit(
    "/api/v1/ms-static-registered-sites",
    "[[ms-static-registered-site]]",
    "addStaticSite",
    "removeStaticSite",
    (b) => parseStaticSite(b),
    staticSiteJson,
  );

  tableEdit(
    "/api/v1/ddt-deleg-sites",
    "[[ddt-deleg-site]]",
    "addDelegSite",
    "removeDelegSite",
    async (b) => parseDelegSite(b, await authSites()),
    delegSiteJson,
  );

  /** The node's `[[ddt-auth-site]]`s, as a delegation's check needs them. */
  const authSites = async () =>
    (await source.referrals?.() ?? []).filter((r) => r.origin === "auth-site").map((r) => ({
      "eid-prefix": r.eidPrefix,
      iid: r.iid,
    }));

  app.get("/api/v1/ddt-deleg-sites", async (c) => {
    checkQuery(c, PAGE_PARAMS);
    if (!source.referrals || !source.addDelegSite) return missing(c, "addDelegSite");
    const page = readPage(c);
    const list = (await source.referrals()).filter((r) => r.origin === "deleg-site").map((r) => ({
      "eid-prefix": r.eidPrefix,
      iid: r.iid,
      "delegation-type": r.action === "ms-referral" ? "MAP_SERVER_DDT_NODE" : "CHILD_DDT_NODE",
      "deleg-nodes": r.rlocs,
    }));
    return c.json(pagedList(list, page));
  });

  // -------------------------------------------------------------------------
  // Peer lists (tunnel routers; an mr's map-servers): read, changed whole through setPeers.

  /** Peer edits one at a time: each reads the lists in force and sets new ones. */
  let peerQueue: Promise<unknown> = Promise.resolve();
  const peerEdit = <R>(f: () => Promise<R>): Promise<R> => {
    const p = peerQueue.then(f);
    peerQueue = p.catch(() => {});
    return p;
  };
  /** The lists a role of this kind must keep one entry in (config/validate.ts checkRole). */
  const needsOne: Readonly<Record<string, readonly string[]>> = {
    mapServers: ["xtr", "mn"],
    mapResolvers: ["xtr", "mn", "rtr"],
  };
  type PeerField = "mapServers" | "mapResolvers" | "proxyEtrs";
  const peerRoutes = (
    path: string,
    what: string,
    field: PeerField,
    entries: (l: PeerLists) => Record<string, unknown>[],
    change: (l: PeerLists, body: unknown) => { lists: PeerLists; added: Record<string, unknown> },
    remove: (l: PeerLists, address: string) => PeerLists | undefined,
  ) => {
    app.get(path, async (c) => {
      checkQuery(c, PAGE_PARAMS);
      if (!source.peerLists) return missing(c, "peerLists");
      const page = readPage(c);
      return c.json(pagedList(entries(await source.peerLists()), page));
    });
    app.post(path, limit, async (c) => {
      if (!source.setPeers || !source.peerLists) return missing(c, "setPeers");
      const denied = await authorize(c);
      if (denied) return denied;
      checkQuery(c, []);
      const body = await readBody(c);
      return await peerEdit(async () => {
        const { lists, added } = change(await source.peerLists!(), body);
        const changes = await source.setPeers!(lists);
        return c.json({ added, changes }, 201);
      });
    });
    app.delete(path, async (c) => {
      if (!source.setPeers || !source.peerLists) return missing(c, "setPeers");
      const denied = await authorize(c);
      if (denied) return denied;
      checkQuery(c, ["address"]);
      const text = c.req.query("address");
      const a = text !== undefined ? canonicalAddress(text) : undefined;
      if (a === undefined) {
        throw new FieldError("address", "must be the IPv4 or IPv6 address of the entry");
      }
      return await peerEdit(async () => {
        const lists = remove(await source.peerLists!(), a.text);
        if (lists === undefined) return jsonError(c, 404, `no ${what} ${a.text}`);
        const left = field === "proxyEtrs" ? 1 : lists[field].length;
        if (left === 0 && needsOne[field]?.includes(role)) {
          return jsonError(
            c,
            409,
            `${a.text} is the last ${what}, and role ${role} needs at least one`,
            "address",
          );
        }
        const changes = await source.setPeers!(lists);
        return c.json({ removed: { address: a.text }, changes });
      });
    });
  };
  const without = <T>(list: readonly T[], address: string, addr: (t: T) => string) =>
    list.some((x) => addr(x) === address) ? list.filter((x) => addr(x) !== address) : undefined;
  const upsert = <T>(list: readonly T[], entry: T, addr: (t: T) => string): T[] => {
    const i = list.findIndex((x) => addr(x) === addr(entry));
    return i < 0 ? [...list, entry] : list.map((x, j) => j === i ? entry : x);
  };

  peerRoutes(
    "/api/v1/map-servers",
    "map-server",
    "mapServers",
    (l) => l.mapServers.map((m) => mapServerJson(m)),
    (l, body) => {
      const m = parseMapServer(body);
      if (m.key === undefined && (role === "xtr" || role === "mn")) {
        throw new FieldError("key", `is required: a ${role} signs its Map-Registers with it`);
      }
      return {
        lists: { ...l, mapServers: upsert(l.mapServers, m, (x) => x.address) },
        added: mapServerJson(m),
      };
    },
    (l, address) => {
      const mapServers = without(l.mapServers, address, (x) => x.address);
      return mapServers && { ...l, mapServers };
    },
  );
  peerRoutes(
    "/api/v1/map-resolvers",
    "map-resolver",
    "mapResolvers",
    (l) => l.mapResolvers.map((address) => ({ address })),
    (l, body) => {
      const address = parseMapResolver(body);
      return {
        lists: { ...l, mapResolvers: upsert(l.mapResolvers, address, (x) => x) },
        added: { address },
      };
    },
    (l, address) => {
      const mapResolvers = without(l.mapResolvers, address, (x) => x);
      return mapResolvers && { ...l, mapResolvers };
    },
  );
  peerRoutes(
    "/api/v1/proxy-etrs",
    "proxy-ETR",
    "proxyEtrs",
    (l) => [...l.proxyEtrsIpv4, ...l.proxyEtrsIpv6].map(proxyEtrJson),
    (l, body) => {
      const { family, petr } = parseProxyEtr(body);
      const key = family === 4 ? "proxyEtrsIpv4" : "proxyEtrsIpv6";
      return {
        lists: { ...l, [key]: upsert(l[key], petr, (x) => x.address) },
        added: proxyEtrJson(petr),
      };
    },
    (l, address) => {
      const v4 = without(l.proxyEtrsIpv4, address, (x) => x.address);
      const v6 = without(l.proxyEtrsIpv6, address, (x) => x.address);
      if (v4 === undefined && v6 === undefined) return undefined;
      return { ...l, proxyEtrsIpv4: v4 ?? l.proxyEtrsIpv4, proxyEtrsIpv6: v6 ?? l.proxyEtrsIpv6 };
    },
  );

  // Other methods on known paths (a documented method passes on, to a route added after this).
  for (const path of new Set(ROUTES.map((r) => r.path))) {
    const methods = allowedMethods(path);
    const listed = methods.split(", ");
    app.all(path, async (c, next) => {
      if (listed.includes(c.req.method)) return await next();
      c.header("Allow", methods);
      return jsonError(c, 405, `${c.req.method} is not allowed on ${path} (use ${methods})`);
    });
  }

  // Configuration reload (runner/reload.ts), as SIGHUP does: 200 with the
  // changes applied, 400 with the errors when the file is refused.
  app.post("/api/v1/reload", async (c) => {
    if (!source.reload) return jsonError(c, 404, `this role (${role}) cannot reload here`);
    const denied = await authorize(c);
    if (denied) return denied;
    const r = await source.reload();
    if (r.ok) return c.json({ reloaded: true, changes: r.changes });
    return c.json({
      error: `reload refused or incomplete: ${r.errors.join("; ")}`,
      errors: r.errors,
      changes: r.changes,
    }, 400);
  });

  return app;
}
