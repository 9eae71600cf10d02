/**
 * The manual of each role, for `oor help ROLE` (and `oor ROLE --help`):
 * what the role needs in its oor.toml and on the host, which keys it
 * reads, how it runs and stops, its files, environment, API and exit
 * status. It takes the place of a man page: everything an operator needs
 * to run the role is on one screen.
 *
 * Which keys a role reads is asked of the validator, so the manual says
 * what check-config checks; tools/manual_test.ts checks that
 * {@link TOP_LEVEL_KEYS} names every top-level key the validator has.
 *
 * @module
 */

import type { Role } from "../config/schema.ts";
import { parseConfig } from "../config/validate.ts";

const TUNNEL: readonly Role[] = ["xtr", "mn", "rtr"];

/**
 * Every top-level oor.toml key, in the order the manual lists them. Which
 * role reads which is not written here but asked of the validator
 * ({@link roleKeys}), so the manual cannot disagree with check-config; a
 * key the validator does not know (yet) is left out.
 */
export const TOP_LEVEL_KEYS: readonly string[] = [
  "operating-mode",
  "debug",
  "log-file",
  "ipv6-scope",
  "control-iface",
  "control-address",
  "control-port",
  "control-rate-limit",
  "api",
  "map-request-retries",
  "encapsulation",
  "data-port",
  "tun-name",
  "tun-mtu",
  "data-plane",
  "rloc-probing",
  "map-resolver",
  "subscribe",
  "static-map-cache",
  "map-server",
  "proxy-etr-ipv4",
  "proxy-etr-ipv6",
  "proxy-itrs",
  "database-mapping",
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
];

/**
 * Whether `role` reads the top-level `key`, as the validator says: it is a
 * key, and a file holding it checked for the role draws no "ignored by
 * role" warning (any value will do: that warning looks at the key alone).
 */
export function readsKey(role: Role, key: string): boolean {
  const r = parseConfig(`"${key}" = 0\n`, { role, file: "k" });
  if (!r.ok && r.errors.some((e) => e.keyPath === key && e.reason.startsWith("unknown key"))) {
    return false;
  }
  return !r.warnings.some((w) => w.keyPath === key && w.reason === `ignored by role ${role}`);
}

/** What a role cannot start without, as check-config says it. */
const NEEDS: Readonly<Record<Role, readonly string[]>> = {
  xtr: ["[[database-mapping]]", "[[map-server]] with a key", "map-resolver"],
  mn: ["[[database-mapping]] (a /32 or /128 EID)", "[[map-server]] with a key", "map-resolver"],
  rtr: ["[[rtr-iface]]", "map-resolver"],
  ms: ["[[lisp-site]] or [[ms-static-registered-site]]"],
  mr: ["ddt-root-addresses or [[map-server]]"],
  ddt: ["[[ddt-auth-site]]"],
  "ddt-mr": ["ddt-root-addresses"],
};

/** The top-level keys a role reads (see {@link readsKey}). */
export function roleKeys(role: Role): string[] {
  return TOP_LEVEL_KEYS.filter((k) => readsKey(role, k));
}

/** Whether a role runs a TUN and data plane (xtr, mn, rtr). */
function isTunnelRouter(role: Role): boolean {
  return TUNNEL.includes(role);
}

/** The section of `oor help ROLE` after its flags. */
export function roleManual(role: Role): string {
  const tr = isTunnelRouter(role);
  const lines: string[] = [];
  const section = (title: string, body: readonly string[]) => {
    lines.push("", `${title}:`, ...body.map((l) => `  ${l}`));
  };
  section(`Configuration (oor.toml; check it: oor check-config --role ${role} FILE)`, [
    ...wrapList("needs:    ", NEEDS[role]),
    ...wrapList("reads:    ", roleKeys(role)),
    `example:  examples/${role}.toml; an OOR oor.conf works too (convert-config)`,
  ]);
  section("Host", [
    ...(tr
      ? [
        "root, or CAP_NET_ADMIN and CAP_NET_RAW: TUN device, addresses, routes,",
        "  rules (rtnetlink), raw sockets. Without root, once per build:",
        "  sudo setcap cap_net_admin,cap_net_raw+ep /path/to/oor",
        "  (systemd: packaging/systemd/, AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW)",
        role === "rtr"
          ? "UDP 4342 (control) and 4341 (LISP data; 4790 VXLAN-GPE); no TUN"
          : "UDP 4342 (control) and 4341 (LISP data; 4790 with encapsulation VXLAN-GPE)",
        role === "mn"
          ? "its sockets follow the RLOC as it moves: leave control-address unset"
          : "control-address or control-iface pin the control socket, else it follows",
        "the RLOC; at start it warns of rp_filter or forwarding settings that would",
        "drop overlay traffic (preflight)",
      ]
      : [
        "no capability and no root: UDP 4342 (control-port) is not privileged",
        "control-address binds one address, which must be on this host; else all",
      ]),
  ]);
  section("Running", [
    "in the foreground; one log line per event to standard error (or log-file);",
    "--log-format json: one JSON object per line; debug = 1..3: more detail",
    "SIGHUP (or POST /api/v1/reload) reads the config again and applies what",
    "changed; a bad file is refused with its errors and the old config stays",
    "SIGINT, SIGTERM (any other terminating signal) stop it cleanly: the API",
    tr
      ? "closes within a second, then the TUN, routes and rules it added go; exit 0"
      : "closes within a second, then the role closes its sockets; exit 0",
    "a second signal skips the API's second of grace; SIGKILL skips the clean-up",
  ]);
  section("HTTP API ([api] listen, default 127.0.0.1:9942; enabled = false: none)", [
    "/ status page, /api/v1 (index), /api/v1/openapi.json (OpenAPI 3.1),",
    "/api/v1/status, /api/v1/stats, /metrics (Prometheus)",
    ...(tr
      ? [
        "/api/v1/map-cache, /api/v1/database, /api/v1/map-servers,",
        "/api/v1/map-resolvers, /api/v1/proxy-etrs: GET, and POST/DELETE with a token",
      ]
      : role === "ms"
      ? [
        "/api/v1/sites: configured sites and live registrations",
        "/api/v1/lisp-sites, /api/v1/ms-static-registered-sites: GET, POST/DELETE",
      ]
      : role === "ddt"
      ? ["/api/v1/referrals, /api/v1/ddt-deleg-sites: GET, POST/DELETE with a token"]
      : role === "mr"
      ? ["/api/v1/referrals, /api/v1/map-servers: GET, POST/DELETE with a token"]
      : ["/api/v1/referrals: the referral cache"]),
    "POST /api/v1/reload (token): as SIGHUP; writes need api.token or OOR_API_TOKEN",
  ]);
  section("Files", [
    "--config FILE: the oor.toml (or OOR oor.conf) it runs with",
    "--state-file, else [api] state-file, else FILE.state.json: API edits",
    ...(role === "ms"
      ? ["  and beside it (.registrations.json) the registrations across a restart"]
      : []),
    "log-file: log lines appended there instead of standard error",
  ]);
  section("Environment", [
    "OOR_API_TOKEN   the API's write token when [api] token is not set",
    "DENO_NO_UPDATE_CHECK=1   run from source: no update check (no DNS) at start",
  ]);
  section("Exit status", [
    "0  stopped by a signal, cleanly",
    "1  could not start (its start-failed log line says why and what to do),",
    "   an uncaught error, or a failed clean-up",
    "2  bad usage, or an invalid config (each error as file:line: key: reason)",
  ]);
  section("See also", [
    ...wrapList("", [
      `oor check-config --role ${role} FILE`,
      "oor lig",
      "oor completions",
      "README.md",
    ]),
  ]);
  return lines.join("\n") + "\n";
}

/** `head` then `items` joined by commas, wrapped under it at 76 columns. */
function wrapList(head: string, items: readonly string[]): string[] {
  const out: string[] = [];
  let line = head;
  for (const [i, item] of items.entries()) {
    const word = i < items.length - 1 ? `${item},` : item;
    if (line.length > head.length && line.length + 1 + word.length > 76) {
      out.push(line);
      line = " ".repeat(head.length) + word;
    } else {
      line = line.length > head.length ? `${line} ${word}` : line + word;
    }
  }
  out.push(line);
  return out;
}
