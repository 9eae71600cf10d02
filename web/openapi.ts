/**
 * The API's routes as one table ({@link ROUTES}), and the OpenAPI 3.1
 * document built from it ({@link openApiDocument}), served at
 * `/api/v1/openapi.json`. web/app.ts answers `GET /api/v1` with the same
 * table and takes its `Allow` headers from it; web/openapi_test.ts checks
 * that every route the app serves is in the table and every route in the
 * table is served, answering as documented.
 *
 * Field names are the config's kebab-case keys both ways (web/_views.ts):
 * what a GET returns can be posted back.
 *
 * @module
 */

/** An HTTP method of a route. */
export type Method = "GET" | "POST" | "DELETE";

/** A query parameter of a route. */
export interface QueryParam {
  /** Its name. */
  readonly name: string;
  /** What it is. */
  readonly description: string;
  /** Whether it must be given. */
  readonly required?: boolean;
  /** `integer` or `string`. */
  readonly type: "integer" | "string";
}

/** One route of the API. */
export interface Route {
  /** The method. */
  readonly method: Method;
  /** The path (no parameters in it: they are all in the query). */
  readonly path: string;
  /** One line on what it does. */
  readonly summary: string;
  /** Roles that have it (`"all"`: every role). */
  readonly roles: string;
  /** Whether it changes the role: needs `Authorization: Bearer <token>`. */
  readonly write?: boolean;
  /** Query parameters (besides `limit` and `offset` when {@link paged}). */
  readonly query?: readonly QueryParam[];
  /** Whether the answer is a page of a list (`limit`, `offset`). */
  readonly paged?: boolean;
  /** The schema of the request body (in `components.schemas`), for writes that take one. */
  readonly body?: string;
  /** The answer on success: its status, and schema or media type. */
  readonly ok: {
    readonly status: 200 | 201;
    readonly schema?: string;
    readonly type?: "text/html" | "text/plain";
  };
  /** Error statuses it may answer besides 400 and 500 (404, 401, 403...). */
  readonly errors?: readonly number[];
}

const EID_KEY: readonly QueryParam[] = [
  {
    name: "eid-prefix",
    type: "string",
    required: true,
    description: "EID prefix, like 10.1.0.0/16",
  },
  { name: "iid", type: "integer", description: "instance id (default 0)" },
];

const WRITE_ERRORS = [401, 403, 404, 409, 413] as const;

const ADDRESS_KEY: readonly QueryParam[] = [
  { name: "address", type: "string", required: true, description: "the entry's address" },
];

/** GET, POST and DELETE of one peer list of tunnel routers (and an mr's map-servers). */
function peerRoutes(
  path: string,
  table: string,
  roles: string,
  body: string,
  page: string,
): Route[] {
  return [
    {
      method: "GET",
      path,
      summary: `the ${table} list in force (the config's with the API's edits)`,
      roles,
      paged: true,
      ok: { status: 200, schema: page },
      errors: [404],
    },
    {
      method: "POST",
      path,
      summary: `add ${table}, or replace the one of that address; applied at once`,
      roles,
      write: true,
      body,
      ok: { status: 201, schema: "PeerAdded" },
      errors: WRITE_ERRORS,
    },
    {
      method: "DELETE",
      path,
      summary: `remove the ${table} of that address (409 for the last one a role needs)`,
      roles,
      write: true,
      query: ADDRESS_KEY,
      ok: { status: 200, schema: "PeerRemoved" },
      errors: WRITE_ERRORS,
    },
  ];
}

/** Every route of the API, in the order the README lists them. */
export const ROUTES: readonly Route[] = [
  {
    method: "GET",
    path: "/",
    summary: "status page (HTML, reloads itself; ?refresh=0 stops that)",
    roles: "all",
    query: [{ name: "refresh", type: "integer", description: "seconds between reloads, 0 none" }],
    ok: { status: 200, type: "text/html" },
  },
  {
    method: "GET",
    path: "/api/v1",
    summary: "this index: every route, and which ones this role has",
    roles: "all",
    ok: { status: 200, schema: "Index" },
  },
  {
    method: "GET",
    path: "/api/v1/openapi.json",
    summary: "the OpenAPI 3.1 document of this API",
    roles: "all",
    ok: { status: 200, schema: "OpenApi" },
  },
  {
    method: "GET",
    path: "/api/v1/status",
    summary: "role, version, uptime, RLOCs, map-servers and their state, remote RLOCs probed",
    roles: "all",
    ok: { status: 200, schema: "Status" },
  },
  {
    method: "GET",
    path: "/api/v1/map-cache",
    summary: "map-cache entries overlapping eid in iid",
    roles: "xtr, mn, rtr",
    paged: true,
    query: [
      { name: "eid", type: "string", description: "EID address or prefix the entries overlap" },
      { name: "iid", type: "integer", description: "instance id" },
    ],
    ok: { status: 200, schema: "MapCachePage" },
    errors: [404],
  },
  {
    method: "POST",
    path: "/api/v1/map-cache",
    summary: "add or replace a static map-cache entry ([[static-map-cache]])",
    roles: "xtr, mn, rtr",
    write: true,
    body: "StaticMapCache",
    ok: { status: 201, schema: "Added" },
    errors: WRITE_ERRORS,
  },
  {
    method: "DELETE",
    path: "/api/v1/map-cache",
    summary: "remove a static map-cache entry",
    roles: "xtr, mn, rtr",
    write: true,
    query: EID_KEY,
    ok: { status: 200, schema: "Removed" },
    errors: WRITE_ERRORS,
  },
  {
    method: "GET",
    path: "/api/v1/database",
    summary: "local EID prefixes ([[database-mapping]]) and their locators",
    roles: "xtr, mn, rtr",
    paged: true,
    ok: { status: 200, schema: "DatabasePage" },
    errors: [404],
  },
  {
    method: "POST",
    path: "/api/v1/database",
    summary: "add or replace a [[database-mapping]] (registered at once)",
    roles: "xtr, mn, rtr",
    write: true,
    body: "DatabaseMapping",
    ok: { status: 201, schema: "Added" },
    errors: WRITE_ERRORS,
  },
  {
    method: "DELETE",
    path: "/api/v1/database",
    summary: "remove a database mapping",
    roles: "xtr, mn, rtr",
    write: true,
    query: EID_KEY,
    ok: { status: 200, schema: "Removed" },
    errors: WRITE_ERRORS,
  },
  {
    method: "GET",
    path: "/api/v1/sites",
    summary:
      "configured sites, live registrations, recent rejections and RFC 9437 subscribers, side by side",
    roles: "ms",
    paged: true,
    ok: { status: 200, schema: "SitesPage" },
    errors: [404],
  },
  {
    method: "GET",
    path: "/api/v1/lisp-sites",
    summary: "the [[lisp-site]]s (without their keys) and their live registrations",
    roles: "ms",
    paged: true,
    ok: { status: 200, schema: "LispSitePage" },
    errors: [404],
  },
  {
    method: "POST",
    path: "/api/v1/lisp-sites",
    summary: "add or replace a [[lisp-site]]: it takes Map-Registers at once",
    roles: "ms",
    write: true,
    body: "LispSite",
    ok: { status: 201, schema: "Added" },
    errors: WRITE_ERRORS,
  },
  {
    method: "DELETE",
    path: "/api/v1/lisp-sites",
    summary: "remove a [[lisp-site]] and withdraw its registrations",
    roles: "ms",
    write: true,
    query: EID_KEY,
    ok: { status: 200, schema: "Removed" },
    errors: WRITE_ERRORS,
  },
  {
    method: "GET",
    path: "/api/v1/ms-static-registered-sites",
    summary: "the static registrations ([[ms-static-registered-site]])",
    roles: "ms",
    paged: true,
    ok: { status: 200, schema: "StaticSitePage" },
    errors: [404],
  },
  {
    method: "POST",
    path: "/api/v1/ms-static-registered-sites",
    summary: "add or replace a [[ms-static-registered-site]]",
    roles: "ms",
    write: true,
    body: "StaticSite",
    ok: { status: 201, schema: "Added" },
    errors: WRITE_ERRORS,
  },
  {
    method: "DELETE",
    path: "/api/v1/ms-static-registered-sites",
    summary: "remove a static registration",
    roles: "ms",
    write: true,
    query: EID_KEY,
    ok: { status: 200, schema: "Removed" },
    errors: WRITE_ERRORS,
  },
  ...peerRoutes(
    "/api/v1/map-servers",
    "a [[map-server]]",
    "xtr, mn (registration), mr (forwarding)",
    "MapServer",
    "MapServerPage",
  ),
  ...peerRoutes(
    "/api/v1/map-resolvers",
    "a map-resolver",
    "xtr, mn, rtr",
    "MapResolver",
    "MapResolverPage",
  ),
  ...peerRoutes(
    "/api/v1/proxy-etrs",
    "a [[proxy-etr-ipv4]] or [[proxy-etr-ipv6]] (by its address)",
    "xtr, mn",
    "ProxyEtr",
    "ProxyEtrPage",
  ),
  {
    method: "GET",
    path: "/api/v1/ddt-deleg-sites",
    summary: "the [[ddt-deleg-site]]s: the node's delegations",
    roles: "ddt",
    paged: true,
    ok: { status: 200, schema: "DelegSitePage" },
    errors: [404],
  },
  {
    method: "POST",
    path: "/api/v1/ddt-deleg-sites",
    summary: "add or replace a [[ddt-deleg-site]] (inside an auth-site); referrals follow at once",
    roles: "ddt",
    write: true,
    body: "DelegSite",
    ok: { status: 201, schema: "Added" },
    errors: WRITE_ERRORS,
  },
  {
    method: "DELETE",
    path: "/api/v1/ddt-deleg-sites",
    summary: "remove a [[ddt-deleg-site]]",
    roles: "ddt",
    write: true,
    query: EID_KEY,
    ok: { status: 200, schema: "Removed" },
    errors: WRITE_ERRORS,
  },
  {
    method: "GET",
    path: "/api/v1/referrals",
    summary: "referral cache (mr, ddt-mr) or delegations (ddt)",
    roles: "mr, ddt-mr, ddt",
    paged: true,
    ok: { status: 200, schema: "ReferralPage" },
    errors: [404],
  },
  {
    method: "GET",
    path: "/api/v1/stats",
    summary: "counters and gauges",
    roles: "all",
    ok: { status: 200, schema: "Stats" },
    errors: [404],
  },
  {
    method: "GET",
    path: "/metrics",
    summary: "Prometheus text format",
    roles: "all",
    ok: { status: 200, type: "text/plain" },
  },
  {
    method: "POST",
    path: "/api/v1/reload",
    summary: "read the config file again and apply what changed (as SIGHUP does)",
    roles: "all",
    write: true,
    ok: { status: 200, schema: "Reloaded" },
    // 400: the file was refused (its errors, the changes made before one failed).
    errors: [400, 401, 403, 404],
  },
];

/** The methods served on `path`, for `Allow` headers (`GET, HEAD, POST`). */
export function allowedMethods(path: string, routes: readonly Route[] = ROUTES): string {
  const methods = routes.filter((r) => r.path === path).map((r) => r.method);
  const out: string[] = [];
  for (const m of methods) {
    out.push(m);
    if (m === "GET") out.push("HEAD");
  }
  return out.join(", ");
}

// ---------------------------------------------------------------------------
// Schemas (JSON Schema 2020-12, as OpenAPI 3.1 takes them)

type Schema = Record<string, unknown>;

const str = (description?: string): Schema => ({
  type: "string",
  ...(description ? { description } : {}),
});
const int = (min?: number, max?: number, description?: string): Schema => ({
  type: "integer",
  ...(min !== undefined ? { minimum: min } : {}),
  ...(max !== undefined ? { maximum: max } : {}),
  ...(description ? { description } : {}),
});
const bool = (description?: string): Schema => ({
  type: "boolean",
  ...(description ? { description } : {}),
});
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const arrayOf = (items: Schema): Schema => ({ type: "array", items });
const nullable = (s: Schema): Schema => ({ ...s, type: [s["type"] as string, "null"] });
const obj = (properties: Record<string, Schema>, required: string[] = []): Schema => ({
  type: "object",
  properties,
  ...(required.length > 0 ? { required } : {}),
});
const page = (item: string): Schema =>
  obj({
    total: int(0),
    count: int(0),
    offset: int(0),
    limit: int(1),
    next: nullable(int(0)),
    entries: arrayOf(ref(item)),
  }, ["total", "count", "offset", "limit", "next", "entries"]);

const EID_PREFIX = str("EID prefix, like 10.1.0.0/16 or 2001:db8::/32");
const IID = int(0, 0xffffff, "instance id (default 0)");
const MS_TIME = nullable(int(0, undefined, "ms since the epoch; null: never"));
const STATE = { type: "string", enum: ["up", "down"] };

const SCHEMAS: Record<string, Schema> = {
  Error: obj({
    error: str("what is wrong"),
    field: str("the request field at fault"),
    id: str("an internal error's id, as the role's log has it"),
  }, ["error"]),
  RlocAddress: obj({
    address: str("IPv4 or IPv6 address"),
    priority: int(0, 255),
    weight: int(0, 255),
    state: { ...STATE, readOnly: true },
    reachable: { ...bool(), readOnly: true },
  }, ["address"]),
  RlocIface: obj({
    interface: str("Linux interface name"),
    ip_version: { type: "integer", enum: [4, 6] },
    priority: int(0, 255),
    weight: int(0, 255),
    address: { ...str("its address now"), readOnly: true },
    state: { ...STATE, readOnly: true },
  }, ["interface"]),
  StaticMapCache: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    "rloc-address": arrayOf(ref("RlocAddress")),
  }, ["eid-prefix", "rloc-address"]),
  MapCacheEntry: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    kind: { type: "string", enum: ["positive", "negative"], readOnly: true },
    action: { ...str(), readOnly: true },
    static: { ...bool(), readOnly: true },
    origin: { type: "string", enum: ["config", "api", "map-reply", "map-notify"], readOnly: true },
    ttl: int(0),
    "expires-at": { ...MS_TIME, readOnly: true },
    since: { ...int(0), readOnly: true },
    packets: { ...int(0), readOnly: true },
    bytes: { ...int(0), readOnly: true },
    "rloc-address": arrayOf(ref("RlocAddress")),
  }, ["eid-prefix", "iid", "rloc-address"]),
  DatabaseMapping: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    ttl: int(0, 0xffffffff, "minutes"),
    origin: { ...str(), readOnly: true },
    "rloc-address": arrayOf(ref("RlocAddress")),
    "rloc-iface": arrayOf(ref("RlocIface")),
  }, ["eid-prefix"]),
  LispSite: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    "key-type": {
      type: "integer",
      enum: [1, 2],
      description: "1 HMAC-SHA-1-96, 2 HMAC-SHA-256-128",
    },
    key: { ...str("shared secret (never shown by a GET)"), writeOnly: true },
    "accept-more-specifics": bool(),
    "proxy-reply": bool(),
    merge: bool(),
    "ddt-ms-peers-complete": bool(),
    "ddt-ms-peers": arrayOf(str("address")),
    "max-registrations": int(1),
    registrations: { ...int(0, undefined, "live registrations"), readOnly: true },
  }, ["eid-prefix", "key"]),
  StaticSite: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    ttl: int(0, undefined, "minutes"),
    "rloc-address": arrayOf(ref("RlocAddress")),
  }, ["eid-prefix", "rloc-address"]),
  Registration: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    site: { ...str("the [[lisp-site]] it was accepted under"), readOnly: true },
    source: { type: "string", enum: ["map-register", "static"], readOnly: true },
    from: { ...str("address and port"), readOnly: true },
    "xtr-id": { ...str("32 hex digits"), readOnly: true },
    "site-id": { ...str("16 hex digits"), readOnly: true },
    ttl: int(0),
    "proxy-reply": bool(),
    "first-seen": { ...int(0), readOnly: true },
    "last-seen": { ...int(0), readOnly: true },
    "expires-at": { ...MS_TIME, readOnly: true },
    "rloc-address": arrayOf(ref("RlocAddress")),
  }, ["eid-prefix", "iid", "rloc-address"]),
  MapServer: obj({
    address: str("IPv4 or IPv6 address"),
    "key-type": { type: "integer", enum: [1, 2] },
    key: {
      ...str("shared secret (never shown by a GET); required on an xtr and mn"),
      writeOnly: true,
    },
    "proxy-reply": bool(),
    merge: bool(),
  }, ["address"]),
  MapResolver: obj({ address: str("IPv4 or IPv6 address") }, ["address"]),
  ProxyEtr: obj({
    address: str("IPv4 or IPv6 address"),
    priority: int(0, 255),
    weight: int(0, 255),
  }, [
    "address",
  ]),
  DelegSite: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    "delegation-type": { type: "string", enum: ["CHILD_DDT_NODE", "MAP_SERVER_DDT_NODE"] },
    "deleg-nodes": arrayOf(str("address")),
  }, ["eid-prefix", "delegation-type", "deleg-nodes"]),
  PeerAdded: obj({
    added: { type: "object" },
    changes: arrayOf(str("what the role did, one line each")),
  }, ["added"]),
  PeerRemoved: obj({
    removed: obj({ address: str() }),
    changes: arrayOf(str()),
  }, ["removed"]),
  Referral: obj({
    "eid-prefix": EID_PREFIX,
    iid: IID,
    action: str(),
    "deleg-nodes": arrayOf(str("address")),
    ttl: int(0),
    "expires-at": MS_TIME,
    origin: { type: "string", enum: ["cache", "auth-site", "deleg-site"] },
  }, ["eid-prefix", "iid", "action", "deleg-nodes"]),
  Status: {
    ...obj({
      role: str(),
      version: str(),
      "started-at": int(0),
      "uptime-seconds": int(0),
      writable: bool("whether edits are allowed (a write token is set)"),
      rlocs: arrayOf({ type: "object" }),
      "map-servers": arrayOf({ type: "object" }),
      "remote-rlocs": arrayOf({ type: "object" }),
      details: { type: "object" },
    }, ["role", "version", "started-at", "uptime-seconds", "writable"]),
  },
  Stats: obj({
    "uptime-seconds": int(0),
    counters: { type: "object", additionalProperties: { type: "number" } },
  }, ["uptime-seconds", "counters"]),
  MapCachePage: page("MapCacheEntry"),
  DatabasePage: page("DatabaseMapping"),
  LispSitePage: page("LispSite"),
  StaticSitePage: page("StaticSite"),
  ReferralPage: page("Referral"),
  MapServerPage: page("MapServer"),
  MapResolverPage: page("MapResolver"),
  ProxyEtrPage: page("ProxyEtr"),
  DelegSitePage: page("DelegSite"),
  SitesPage: obj({
    offset: int(0),
    limit: int(1),
    next: nullable(int(0)),
    "sites-total": int(0),
    "registrations-total": int(0),
    sites: arrayOf(ref("LispSite")),
    registrations: arrayOf(ref("Registration")),
    rejections: arrayOf({ type: "object" }),
    subscriptions: arrayOf({ type: "object" }),
  }, ["offset", "limit", "next", "sites-total", "registrations-total", "sites", "registrations"]),
  Added: obj({ added: { type: "object" } }, ["added"]),
  Removed: obj({ removed: obj({ "eid-prefix": EID_PREFIX, iid: IID }) }, ["removed"]),
  Reloaded: { type: "object" },
  Index: obj({
    role: str(),
    version: str(),
    openapi: str("where the OpenAPI document is"),
    routes: arrayOf(obj({
      method: str(),
      path: str(),
      summary: str(),
      write: bool(),
      available: bool("whether this role has it"),
    })),
  }, ["role", "routes"]),
  OpenApi: { type: "object", description: "an OpenAPI 3.1 document" },
};

function statusText(status: number): string {
  const text: Record<number, string> = {
    200: "OK",
    201: "created",
    400: "bad request: the field at fault is named",
    401: "missing or wrong bearer token",
    403: "writes are off (no token configured), or a Host not this API's",
    404: "this role has no such thing, or no entry of that key",
    409: "the edit conflicts with the role's state",
    413: "body too large",
    500: "internal error (with an id the log has)",
  };
  return text[status] ?? "error";
}

/** What {@link openApiDocument} says of the running role. */
export interface DocumentInfo {
  /** oor version. */
  readonly version: string;
  /** The role. */
  readonly role: string;
}

/** The OpenAPI 3.1 document of `routes`. */
export function openApiDocument(
  info: DocumentInfo,
  routes: readonly Route[] = ROUTES,
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    const params: Schema[] = [];
    for (
      const q of [
        ...(r.query ?? []),
        ...(r.paged
          ? [
            { name: "limit", type: "integer", description: "entries on a page (1..1000, 100)" },
            { name: "offset", type: "integer", description: "first entry (0)" },
          ] as const
          : []),
      ]
    ) {
      params.push({
        name: q.name,
        in: "query",
        required: "required" in q && q.required === true,
        description: q.description,
        schema: { type: q.type },
      });
    }
    const responses: Record<string, unknown> = {};
    responses[String(r.ok.status)] = {
      description: statusText(r.ok.status),
      content: r.ok.type !== undefined
        ? { [r.ok.type]: { schema: { type: "string" } } }
        : { "application/json": { schema: ref(r.ok.schema ?? "OpenApi") } },
    };
    const errors = new Set<number>([...(r.errors ?? []), 500]);
    if (r.body !== undefined || (r.query?.length ?? 0) > 0 || r.paged) errors.add(400);
    for (const e of [...errors].sort()) {
      responses[String(e)] = {
        description: statusText(e),
        content: { "application/json": { schema: ref("Error") } },
      };
    }
    const op: Record<string, unknown> = {
      operationId: `${r.method.toLowerCase()}${
        r.path.replace(/\.json$/, "").split(/[/-]/).map((w) =>
          w === "" ? "" : w[0]!.toUpperCase() + w.slice(1)
        ).join("") || "Page"
      }`,
      summary: r.summary,
      description: `Roles: ${r.roles}.${r.write ? " Needs a bearer token." : ""}`,
      ...(params.length > 0 ? { parameters: params } : {}),
      ...(r.body !== undefined
        ? {
          requestBody: {
            required: true,
            content: { "application/json": { schema: ref(r.body) } },
          },
        }
        : {}),
      responses,
      ...(r.write ? { security: [{ bearer: [] }] } : {}),
    };
    (paths[r.path] ??= {})[r.method.toLowerCase()] = op;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: `oor ${info.role} API`,
      version: info.version,
      description: "The HTTP API of an oor role. Field names are oor.toml's keys; " +
        "what a GET answers can be posted back (read-only keys are ignored).",
    },
    paths,
    components: {
      schemas: SCHEMAS,
      securitySchemes: { bearer: { type: "http", scheme: "bearer" } },
    },
  };
}
