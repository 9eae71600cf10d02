/**
 * The status page (`GET /`): one server-rendered HTML document with no
 * script and no external asset. It reloads itself every 2 seconds with a
 * `<meta http-equiv="refresh">` (a link turns that off, for reading or for
 * screen readers), and uses plain headings, tables with captions and
 * header cells, and up/down states written as words, not only colours.
 *
 * What it shows, where the role has it: local RLOCs; the map-servers and
 * the registration state with each; the remote RLOCs probing watches,
 * with their round-trip times; the map-cache with each entry's origin,
 * age, and the packets and bytes the data plane encapsulated by it; the
 * database; a map-server's registrations, sites and recent rejections;
 * referrals; and the counters, one group per metric (its type and help
 * text from core/metrics.ts) with a row per label set.
 *
 * @module
 */

import type {
  DatabaseView,
  LocatorView,
  MapCacheView,
  ReferralView,
  RegistrationState,
  RoleStatus,
  SitesView,
} from "../core/status.ts";
import { metricByName } from "../core/metrics.ts";
import { parseSeriesKey } from "./_metrics.ts";

/** Most rows a table shows; the JSON API has the rest. */
export const PAGE_ROWS = 500;

/** How to page through the JSON API, for the note under a table cut short. */
const PAGE_ROWS_API_NOTE = "a page at a time (<code>?limit=1000&amp;offset=1000</code>)";

/** A provider's answer for the page: absent, its value, or why it failed. */
export type Part<T> = { readonly value: T } | { readonly error: string } | undefined;

/** Everything the page shows. */
export interface PageModel {
  /** Role name. */
  readonly role: string;
  /** oor version. */
  readonly version: string;
  /** Start time, ms since the epoch. */
  readonly startedAt: number;
  /** Now, ms since the epoch. */
  readonly now: number;
  /** Seconds between reloads; 0 for none. */
  readonly refresh: number;
  /** Runtime edits: the role takes none, they need a token, or they are enabled. */
  readonly edits: "none" | "no-token" | "enabled";
  /** `status()`. */
  readonly status: Part<RoleStatus>;
  /** `mapCache({})`. */
  readonly mapCache: Part<readonly MapCacheView[]>;
  /** `database()`. */
  readonly database: Part<readonly DatabaseView[]>;
  /** `sites()`. */
  readonly sites: Part<SitesView>;
  /** `referrals()`. */
  readonly referrals: Part<readonly ReferralView[]>;
  /** `counters()`. */
  readonly counters: Part<Readonly<Record<string, number>>>;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) =>
      c === "&"
        ? "&amp;"
        : c === "<"
        ? "&lt;"
        : c === ">"
        ? "&gt;"
        : c === '"'
        ? "&quot;"
        : "&#39;",
  );
}

const e = escapeHtml;

/** `"3 d 4 h"`, `"2 h 5 min"`, `"4 min 10 s"`, `"12 s"`. */
export function formatDuration(ms: number): string {
  let s = Math.max(0, Math.floor(ms / 1000));
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (d > 0) return `${d} d ${h} h`;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

function when(at: number | null | undefined, now: number, never = "never"): string {
  if (at === null || at === undefined) return e(never);
  if (!Number.isFinite(at)) return "never";
  const iso = new Date(at).toISOString();
  const text = at <= now ? `${formatDuration(now - at)} ago` : `in ${formatDuration(at - now)}`;
  return `<time datetime="${iso}" title="${iso}">${e(text)}</time>`;
}

function state(s: "up" | "down"): string {
  return `<span class="state ${s}">${s}</span>`;
}

/** A registration state as a word, coloured like up (registered) and down (failing). */
function regState(s: RegistrationState): string {
  const cls = s === "registered" ? "up" : s === "failing" ? "down" : "pending";
  return `<span class="state ${cls}">${s}</span>`;
}

/** `1,234,567`. */
export function formatCount(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `512 B`, `1.5 KiB`, `20.0 MiB`, `3.2 GiB`; the exact count in a title. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  const text = u === 0 ? `${Math.round(v)} B` : `${v.toFixed(1)} ${units[u]}`;
  return `<span title="${formatCount(n)} bytes">${text}</span>`;
}

function locators(ls: readonly LocatorView[]): string {
  if (ls.length === 0) return "none";
  return `<ul class="locs">${
    ls.map((l) =>
      `<li>${e(l.address)}${l.interface !== undefined ? ` (${e(l.interface)})` : ""} ${
        state(l.state)
      } <span class="pw">p${l.priority}/w${l.weight}</span></li>`
    ).join("")
  }</ul>`;
}

interface Column {
  readonly head: string;
  readonly num?: boolean;
}

/**
 * A table: `rows` are cells already as HTML; the first cell of each row is
 * its header cell. Shows at most {@link PAGE_ROWS} rows and says so.
 */
function table(
  id: string,
  caption: string,
  cols: readonly Column[],
  rows: readonly (readonly string[])[],
  empty: string,
  api: string,
): string {
  if (rows.length === 0) return `<p class="empty" id="${id}-empty">${e(empty)}</p>`;
  const shown = rows.slice(0, PAGE_ROWS);
  const more = rows.length > shown.length
    ? `<p>Showing ${shown.length} of ${rows.length}; all of them are in <a href="${api}">${api}</a>, ${PAGE_ROWS_API_NOTE}.</p>`
    : "";
  const head = cols.map((c) => `<th scope="col"${c.num ? ' class="num"' : ""}>${e(c.head)}</th>`)
    .join("");
  const body = shown.map((r) =>
    `<tr>${
      r.map((cell, i) =>
        i === 0
          ? `<th scope="row">${cell}</th>`
          : `<td${cols[i]?.num ? ' class="num"' : ""}>${cell}</td>`
      ).join("")
    }</tr>`
  ).join("\n");
  return `<div class="scroll"><table id="${id}"><caption>${e(caption)} (${rows.length})</caption>
<thead><tr>${head}</tr></thead>
<tbody>
${body}
</tbody></table></div>${more}`;
}

function failed(what: string, error: string): string {
  return `<p class="error" role="alert">Could not read the ${e(what)}: ${e(error)}</p>`;
}

function section(id: string, title: string, body: string): string {
  return `<section aria-labelledby="${id}-h"><h2 id="${id}-h">${
    e(title)
  }</h2>\n${body}\n</section>`;
}

function statusSections(m: PageModel, nav: string[]): string[] {
  const out: string[] = [];
  const part = m.status;
  if (part === undefined) return out;
  if ("error" in part) {
    nav.push(`<a href="#rlocs-h">RLOCs</a>`);
    out.push(section("rlocs", "RLOCs", failed("status", part.error)));
    return out;
  }
  const s = part.value;
  if (s.rlocs !== undefined) {
    nav.push(`<a href="#rlocs-h">RLOCs</a>`);
    out.push(section(
      "rlocs",
      "RLOCs",
      table(
        "rloc-table",
        "Local locators",
        [
          { head: "Address" },
          { head: "State" },
          { head: "Interface" },
          {
            head: "Priority",
            num: true,
          },
          { head: "Weight", num: true },
          { head: "Since" },
        ],
        s.rlocs.map((r) => [
          e(r.address),
          state(r.state) + (r.reason !== undefined ? ` <small>${e(r.reason)}</small>` : ""),
          e(r.interface ?? ""),
          r.priority !== undefined ? String(r.priority) : "",
          r.weight !== undefined ? String(r.weight) : "",
          r.since !== undefined ? when(r.since, m.now) : "",
        ]),
        "No local locators.",
        "/api/v1/status",
      ),
    ));
  }
  if (s.mapServers !== undefined) {
    nav.push(`<a href="#map-servers-h">Map-servers</a>`);
    out.push(section(
      "map-servers",
      "Map-servers",
      table(
        "map-server-table",
        "Map-servers registered with",
        [
          { head: "Address" },
          { head: "State" },
          { head: "Registered" },
          { head: "Failures", num: true },
          { head: "Last Map-Register" },
          { head: "Last Map-Notify" },
        ],
        s.mapServers.map((x) => [
          e(x.address),
          x.state === undefined
            ? "nothing to register"
            : x.state === "failing" && x.failingSince !== undefined
            ? `${regState(x.state)} since ${when(x.failingSince, m.now)}${
              x.cause !== undefined ? `: ${e(x.cause)}` : ""
            }`
            : regState(x.state),
          x.registered === undefined ? "" : x.registered ? "yes" : "no",
          x.failures !== undefined ? formatCount(x.failures) : "",
          x.lastMapRegister !== undefined ? when(x.lastMapRegister, m.now) : "",
          when(x.lastMapNotify, m.now),
        ]),
        "No map-servers configured.",
        "/api/v1/status",
      ),
    ));
  }
  if (s.remoteRlocs !== undefined) {
    nav.push(`<a href="#remote-rlocs-h">Remote RLOCs</a>`);
    out.push(section(
      "remote-rlocs",
      "Remote RLOCs",
      table(
        "remote-rloc-table",
        "Remote RLOCs watched by RLOC probing",
        [
          { head: "Address" },
          { head: "State" },
          { head: "RTT (ms)", num: true },
          { head: "Answered", num: true },
          { head: "Probes sent", num: true },
          { head: "Last answer" },
        ],
        s.remoteRlocs.map((r) => [
          e(r.address),
          state(r.state),
          r.rttMs === null ? "none yet" : e(r.rttMs.toFixed(1)),
          formatCount(r.answered),
          formatCount(r.sent),
          when(r.lastAnswer, m.now),
        ]),
        "No remote RLOCs probed (none in the map-cache, or probing is off).",
        "/api/v1/status",
      ),
    ));
  }
  return out;
}

function details(m: PageModel): string {
  const items: [string, string][] = [
    ["Role", e(m.role)],
    ["Version", e(m.version)],
    ["Up for", `<span id="uptime">${e(formatDuration(m.now - m.startedAt))}</span>`],
    ["Started", when(m.startedAt, m.now)],
  ];
  const part = m.status;
  if (part !== undefined && "value" in part && part.value.details !== undefined) {
    for (const [k, v] of Object.entries(part.value.details)) {
      items.push([e(k), v === null ? "none" : e(String(v))]);
    }
  }
  if (m.edits !== "none") {
    items.push([
      "Runtime edits",
      m.edits === "enabled" ? "enabled (token set)" : "disabled (no API token configured)",
    ]);
  }
  return `<dl class="facts">${
    items.map(([k, v]) => `<div><dt>${k}</dt><dd>${v}</dd></div>`).join("")
  }</dl>`;
}

function mapCacheSection(m: PageModel, nav: string[]): string | undefined {
  const part = m.mapCache;
  if (part === undefined) return undefined;
  nav.push(`<a href="#map-cache-h">Map-cache</a>`);
  if ("error" in part) return section("map-cache", "Map-cache", failed("map-cache", part.error));
  return section(
    "map-cache",
    "Map-cache",
    table(
      "map-cache-table",
      "Map-cache entries",
      [
        { head: "EID prefix" },
        { head: "IID", num: true },
        { head: "Kind" },
        { head: "RLOCs" },
        { head: "Origin" },
        { head: "Age" },
        { head: "Packets", num: true },
        { head: "Bytes", num: true },
        { head: "Expires" },
      ],
      part.value.map((x) => [
        e(x.eidPrefix),
        String(x.iid),
        x.kind === "negative" ? `negative${x.action ? ` (${e(x.action)})` : ""}` : "positive",
        locators(x.rlocs),
        e(x.origin ?? (x.static ? "static" : "")),
        x.since !== undefined ? e(formatDuration(m.now - x.since)) : "",
        x.packets !== undefined ? formatCount(x.packets) : "",
        x.bytes !== undefined ? formatBytes(x.bytes) : "",
        x.static || x.expiresAt === null ? "never" : when(x.expiresAt, m.now),
      ]),
      "The map-cache is empty.",
      "/api/v1/map-cache",
    ),
  );
}

function databaseSection(m: PageModel, nav: string[]): string | undefined {
  const part = m.database;
  if (part === undefined) return undefined;
  nav.push(`<a href="#database-h">Database</a>`);
  if ("error" in part) return section("database", "Database", failed("database", part.error));
  return section(
    "database",
    "Database",
    table(
      "database-table",
      "Local EID prefixes",
      [{ head: "EID prefix" }, { head: "IID", num: true }, { head: "TTL (min)", num: true }, {
        head: "RLOCs",
      }, { head: "Origin" }],
      part.value.map((x) => [
        e(x.eidPrefix),
        String(x.iid),
        String(x.ttl),
        locators(x.rlocs),
        e(x.origin ?? ""),
      ]),
      "No local EID prefixes.",
      "/api/v1/database",
    ),
  );
}

function sitesSections(m: PageModel, nav: string[]): string[] {
  const part = m.sites;
  if (part === undefined) return [];
  nav.push(`<a href="#registrations-h">Registrations</a>`, `<a href="#sites-h">Sites</a>`);
  if ("error" in part) {
    return [section("registrations", "Registrations", failed("sites", part.error))];
  }
  const { sites, registrations } = part.value;
  const regs = table(
    "registration-table",
    "Live registrations",
    [
      { head: "EID prefix" },
      { head: "Site" },
      { head: "xTR-ID" },
      { head: "From" },
      {
        head: "RLOCs",
      },
      { head: "Last seen" },
      { head: "Expires" },
    ],
    registrations.map((r) => [
      e(r.prefix),
      e(r.site ?? r.source),
      r.xtrId !== undefined ? `<code>${e(r.xtrId)}</code>` : "",
      e(r.from ?? ""),
      r.rlocs.length === 0
        ? "none"
        : `<ul class="locs">${
          r.rlocs.map((l) =>
            `<li>${e(l.address)} ${
              state(l.reachable ? "up" : "down")
            } <span class="pw">p${l.priority}/w${l.weight}</span></li>`
          ).join("")
        }</ul>`,
      when(r.lastSeen, m.now),
      r.expiresAt === null ? "never (static)" : when(r.expiresAt, m.now),
    ]),
    "No registrations.",
    "/api/v1/sites",
  );
  const siteTable = table(
    "site-table",
    "Configured sites",
    [{ head: "EID prefix" }, { head: "Key" }, { head: "More specifics" }, {
      head: "Proxy-reply",
    }, { head: "Registrations", num: true }],
    sites.map((s) => [
      e(s.prefix),
      s.keyType === 1
        ? "HMAC-SHA-1-96"
        : s.keyType === 2
        ? "HMAC-SHA-256-128"
        : `key id ${s.keyType}`,
      s.acceptMoreSpecifics ? "accepted" : "no",
      s.proxyReply ? "yes" : "no",
      String(s.registrations),
    ]),
    "No sites configured.",
    "/api/v1/sites",
  );
  const out = [
    section("registrations", "Registrations", regs),
    section("sites", "Sites", siteTable),
  ];
  const rejections = part.value.rejections;
  if (rejections !== undefined) {
    nav.push(`<a href="#rejections-h">Rejections</a>`);
    out.push(section(
      "rejections",
      "Rejected Map-Registers",
      table(
        "rejection-table",
        "Recent rejections, by source and reason, newest first",
        [
          { head: "From" },
          { head: "Reason" },
          { head: "Detail (last)" },
          { head: "Count", num: true },
          { head: "First" },
          { head: "Last" },
        ],
        rejections.map((r) => [
          e(r.from),
          e(r.reason),
          e(r.detail),
          formatCount(r.count),
          when(r.firstAt, m.now),
          when(r.lastAt, m.now),
        ]),
        "No Map-Register rejected lately.",
        "/metrics",
      ),
    ));
  }
  const subscriptions = part.value.subscriptions;
  if (subscriptions !== undefined) {
    nav.push(`<a href="#subscriptions-h">Subscribers</a>`);
    out.push(section(
      "subscriptions",
      "Subscribers",
      table(
        "subscription-table",
        "ITRs subscribed to mappings (RFC 9437): each change is published to them",
        [
          { head: "EID prefix" },
          { head: "xTR-ID" },
          { head: "Notified at" },
          { head: "Signed with site" },
          { head: "Published", num: true },
          { head: "Acknowledged", num: true },
          { head: "Expires" },
        ],
        subscriptions.map((s) => [
          e(s.prefix),
          `<code>${e(s.xtrId)}</code>`,
          e(s.notify),
          e(s.site),
          formatCount(s.published),
          `${formatCount(s.acknowledged)}${s.pending ? " (one pending)" : ""}`,
          when(s.expiresAt, m.now),
        ]),
        "No subscriber.",
        "/api/v1/sites",
      ),
    ));
  }
  return out;
}

function referralsSection(m: PageModel, nav: string[]): string | undefined {
  const part = m.referrals;
  if (part === undefined) return undefined;
  nav.push(`<a href="#referrals-h">Referrals</a>`);
  if ("error" in part) return section("referrals", "Referrals", failed("referrals", part.error));
  return section(
    "referrals",
    "Referrals",
    table(
      "referral-table",
      "Referrals",
      [
        { head: "EID prefix" },
        { head: "IID", num: true },
        { head: "Action" },
        {
          head: "Referred to",
        },
        { head: "Origin" },
        { head: "Expires" },
      ],
      part.value.map((r) => [
        e(r.eidPrefix),
        String(r.iid),
        e(r.action),
        r.rlocs.length === 0 ? "none" : e(r.rlocs.join(", ")),
        e(r.origin),
        r.expiresAt === null ? "never" : when(r.expiresAt, m.now),
      ]),
      "No referrals.",
      "/api/v1/referrals",
    ),
  );
}

/** One metric family of the counters: its series' labels and values, in key order. */
interface CounterFamily {
  readonly name: string;
  readonly series: { readonly labels: string; readonly value: number }[];
}

/** The counters by metric name (`name{labels}` keys grouped under `name`), names sorted. */
export function groupCounters(values: Readonly<Record<string, number>>): CounterFamily[] {
  const byName = new Map<string, CounterFamily>();
  for (const [key, value] of Object.entries(values)) {
    const s = parseSeriesKey(key);
    let f = byName.get(s.name);
    if (f === undefined) {
      f = { name: s.name, series: [] };
      byName.set(s.name, f);
    }
    f.series.push({ labels: s.labels.map(([k, v]) => `${k}="${v}"`).join(", "), value });
  }
  return [...byName.values()].sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function formatValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  return Number.isInteger(v) ? formatCount(v) : String(Number(v.toPrecision(6)));
}

function countersSection(m: PageModel, nav: string[]): string | undefined {
  const part = m.counters;
  if (part === undefined) return undefined;
  nav.push(`<a href="#counters-h">Counters</a>`);
  if ("error" in part) return section("counters", "Counters", failed("counters", part.error));
  const families = groupCounters(part.value);
  if (families.length === 0) {
    const empty = `<p class="empty" id="counter-table-empty">No counters yet.</p>`;
    return section("counters", "Counters", empty);
  }
  const body = families.map((f) => {
    const declared = metricByName(f.name);
    const about = declared !== undefined
      ? `<br><small><span class="type">${declared.type}</span> ${e(declared.help)}</small>`
      : "";
    const rows = f.series.map((x, i) =>
      `<tr>${
        i === 0
          ? `<th scope="rowgroup" rowspan="${f.series.length}"><code>${
            e(f.name)
          }</code>${about}</th>`
          : ""
      }<td>${x.labels === "" ? "" : `<code>${e(x.labels)}</code>`}</td><td class="num">${
        formatValue(x.value)
      }</td></tr>`
    ).join("\n");
    return `<tbody class="family" data-metric="${e(f.name)}">\n${rows}\n</tbody>`;
  }).join("\n");
  const series = families.reduce((n, f) => n + f.series.length, 0);
  return section(
    "counters",
    "Counters",
    `<div class="scroll"><table id="counter-table"><caption>Counters and gauges (${families.length} metrics, ${series} series; <a href="/metrics">Prometheus text</a>)</caption>
<thead><tr><th scope="col">Metric</th><th scope="col">Labels</th><th scope="col" class="num">Value</th></tr></thead>
${body}
</table></div>`,
  );
}

const STYLE = `
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#fff;--muted:#57606a;--line:#d0d7de;--head:#f6f8fa;
--up:#116329;--upbg:#dafbe1;--down:#a40e26;--downbg:#ffebe9;--link:#0550ae}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--muted:#9da7b3;--line:#30363d;
--head:#161b22;--up:#7ee787;--upbg:#033a16;--down:#ffa198;--downbg:#5d0f12;--link:#79c0ff}}
*{box-sizing:border-box}
body{margin:0 auto;max-width:80rem;padding:1rem 1.5rem 3rem;font:15px/1.5 system-ui,sans-serif;color:var(--fg);background:var(--bg)}
a{color:var(--link)}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:.5rem 1.5rem;border-bottom:1px solid var(--line);padding-bottom:.5rem}
h1{font-size:1.5rem;margin:0}
h2{font-size:1.15rem;margin:1.75rem 0 .5rem}
nav ul{display:flex;flex-wrap:wrap;gap:.25rem 1rem;list-style:none;margin:0;padding:0}
.refresh{margin-left:auto;color:var(--muted)}
.facts{display:flex;flex-wrap:wrap;gap:.5rem 2rem;margin:1rem 0}
.facts div{display:flex;gap:.4rem}
.facts dt{color:var(--muted)}
.facts dt::after{content:":"}
.facts dd{margin:0;font-weight:600}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}
caption{text-align:left;color:var(--muted);padding:.25rem 0}
th,td{border:1px solid var(--line);padding:.3rem .55rem;text-align:left;vertical-align:top}
thead th{background:var(--head)}
tbody th{font-weight:600;white-space:nowrap}
.num{text-align:right}
.locs{list-style:none;margin:0;padding:0}
.state{display:inline-block;min-width:3.2em;text-align:center;border-radius:.6em;padding:0 .45em;font-weight:600;font-size:.9em}
.state.up{color:var(--up);background:var(--upbg)}
.state.down{color:var(--down);background:var(--downbg)}
.state.pending{color:var(--muted);background:var(--head)}
tbody.family{border-top:2px solid var(--line)}
tbody.family th small{font-weight:400;color:var(--muted)}
.type{font-style:italic}
.pw{color:var(--muted);font-size:.9em}
.empty{color:var(--muted)}
.error{color:var(--down)}
code{font:13px ui-monospace,monospace}
footer{margin-top:2rem;color:var(--muted);border-top:1px solid var(--line);padding-top:.5rem}
`;

/** The status page for `m`. */
export function renderPage(m: PageModel): string {
  const nav: string[] = [];
  const main = [
    ...statusSections(m, nav),
    mapCacheSection(m, nav),
    databaseSection(m, nav),
    ...sitesSections(m, nav),
    referralsSection(m, nav),
    countersSection(m, nav),
  ].filter((x): x is string => x !== undefined);
  const refresh = m.refresh > 0
    ? `<p class="refresh">Reloads every ${m.refresh} s · <a href="/?refresh=0">Stop reloading</a></p>`
    : `<p class="refresh">Not reloading · <a href="/">Reload every 2 s</a></p>`;
  const title = `oor ${m.role}`;
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${m.refresh > 0 ? `<meta http-equiv="refresh" content="${m.refresh}">\n` : ""}<title>${
    e(title)
  } status</title>
<style>${STYLE}</style>
</head>
<body>
<header>
<h1>${e(title)}</h1>
<nav aria-label="Sections"><ul>${nav.map((n) => `<li>${n}</li>`).join("")}</ul></nav>
${refresh}
</header>
<main>
${details(m)}
${main.join("\n")}
</main>
<footer>
<p>JSON: <a href="/api/v1/status">status</a> · <a href="/api/v1/map-cache">map-cache</a> ·
<a href="/api/v1/database">database</a> · <a href="/api/v1/sites">sites</a> ·
<a href="/api/v1/referrals">referrals</a> · <a href="/api/v1/stats">stats</a> ·
<a href="/metrics">Prometheus metrics</a>. Page generated at ${
    e(new Date(m.now).toISOString())
  }.</p>
</footer>
</body>
</html>
`;
}
