/**
 * The lab topologies shared by `deno task lab` and the end-to-end tests:
 * their nodes, links, routes, and the `oor.toml` of every LISP process.
 *
 * ```ts
 * import { makeTopology, PLAN, upTopology } from "./scripts/lab/topologies.ts";
 * const { lab, started, skipped } = await upTopology(makeTopology("basic"), { name: "e2e" });
 * try {
 *   await lab.ping("hosta", PLAN.hostB4);
 * } finally {
 *   await lab.down();
 * }
 * ```
 *
 * ## Addressing plan (the same numbers in every topology)
 *
 * Underlay (RLOC space), one link per node to the `router` namespace:
 * link *n* is `100.64.n.0/24` and `2001:db8:64:n::/64`, the router `.1` /
 * `::1`, the node `.2` / `::2` (and `.3` / `::3` for a second address).
 *
 * | link | node (iface)        | IPv4            | IPv6                 |
 * | ---- | ------------------- | --------------- | -------------------- |
 * | 1    | xtr1 or mn (rloc0)  | 100.64.1.2      | 2001:db8:64:1::2     |
 * | 11   | xtr1 (rloc1)        | 100.64.11.2     | (multihoming)        |
 * | 2    | xtr2 (rloc0)        | 100.64.2.2      | 2001:db8:64:2::2     |
 * | 3    | rtr (rloc0)         | 100.64.3.2      |                      |
 * | 4    | nat (rloc0)  (nat)  | .2, .3 second   |                      |
 * | 5    | rtr2 (rloc0) (elp)  | 100.64.5.2      |                      |
 * | 100  | ms (eth0)           | .2 ms, .3 mr    | ::2 ms, ::3 mr       |
 * | 100  | ms1 (eth0) (two-ms) | .2 ms1, .3 mr1  |                      |
 * | 101  | ms2 (eth0) (two-ms) | .2 ms2, .3 mr2  |                      |
 * | 100  | ms1 (eth0)  (ddt)   | 100.64.100.2    |                      |
 * | 101  | ms2 (eth0)  (ddt)   | 100.64.101.2    |                      |
 * | 102  | mr (eth0)   (ddt)   | 100.64.102.2    |                      |
 * | 110  | ddtroot (eth0)      | 100.64.110.2    |                      |
 * | 111  | ddtchild (eth0)     | 100.64.111.2    |                      |
 *
 * The router's interfaces are `to-<node>` (`to-xtr1b` for xtr1's second
 * link). Every underlay node has a default route via its router address;
 * the router knows only the underlay, never an EID prefix, so EID traffic
 * crosses only through LISP. In `rtr`, xtr2 sits on a private link
 * `172.16.2.0/24` behind the rtr (rtr `to-xtr2` .1, xtr2 `rloc0` .2) that
 * the router has no route to. In `nat`, xtr1 sits on a private link
 * `192.168.1.0/24` behind the `nat` namespace (nat `to-xtr1` .1, xtr1
 * `rloc0` .2; no route to it anywhere else), which masquerades it out of
 * its uplink (link 4) with nftables (set up by the test or `lab`, not by
 * the topology); the rtr (link 3) is the RTR the map-server advertises,
 * sharing the key `lab-rtr-key` (HMAC-SHA-1) with it; `nat-mn` is the
 * same with the mobile node in xtr1's place. In `elp`, xtr2
 * registers site 2 with an explicit locator path rtr (link 3) → rtr2
 * (link 5) → xtr2: traffic to site 2 goes through both RTRs in that
 * order, traffic to site 1 goes straight to xtr1. {@link elpTopology}
 * makes its variants: hops with their L, P and S bits (an L hop named by
 * rtr2's EID `10.5.0.2`, which the map-server maps to rtr2's RLOC, or by
 * `10.5.0.99`, which nothing maps), and xtr2's own RLOC as a second
 * locator at priority 2.
 *
 * EID space: site 1 (hosta behind xtr1, iface `site0` / hosta `eth0`)
 * `10.1.0.0/24` and `fd00:1::/64`, xtr1 `.1`/`::1`, hosta `.10`/`::10`;
 * site 2 the same with 2 (hostb behind xtr2). The mobile node's EID is
 * `10.3.0.5/32` (site `10.3.0.0/24`, more specifics accepted). The
 * map-servers also hold a static registration, `10.9.0.0/24` and
 * `fd00:9::/64` (basic and friends; locator `100.64.99.1` /
 * `2001:db8:64:99::1`, which exists nowhere) so `oor lig` has an answer
 * before any xTR runs; in `ddt` these are `10.1.99.0/24` at ms1 and
 * `10.2.99.0/24` at ms2.
 *
 * In `two-ms`, two map-servers (ms1, ms2) serve the same sites with the
 * same keys, each beside a map-resolver that forwards to it first and to
 * the other when its ITR asks again (mr1: ms1 then ms2; mr2: ms2 then
 * ms1); each xTR registers with both (two `[[map-server]]` tables), xtr1
 * resolves through mr1 and xtr2 through mr2. Scale past one machine the
 * LISP way: either map-server alone answers for every site.
 *
 * In `tenants`, iid 1 and iid 2 both have `10.0.0.0/24` behind xtr1
 * (xtr1 ifaces `site1`/`site2` `.1`, hosts `t1a`/`t2a` `.10`) and
 * `10.0.1.0/24` behind xtr2 (hosts `t1b`/`t2b`): the same addresses once
 * per tenant, kept apart by each xTR's `[[instance]]` TUNs and tables.
 *
 * Keys: site 1 `lab-site1-key`, site 2 `lab-site2-key`, mobile node
 * `lab-mn-key`, all HMAC-SHA-256 (key-type 2). Each process's API listens
 * on 127.0.0.1 inside its namespace, from port 9942 up.
 *
 * @module
 */

import type { Role } from "../../config/mod.ts";
import {
  Lab,
  LabError,
  type LabOptions,
  type LabProcess,
  type LinkSpec,
  type NetworkSpec,
  type NodeSpec,
} from "./topology.ts";

/** The repository root (where main.ts is). */
export const REPO_ROOT: string = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

/** Every address and key of the plan, by name. */
export const PLAN = {
  // Underlay.
  routerXtr1: "100.64.1.1",
  xtr1Rloc4: "100.64.1.2",
  xtr1Rloc6: "2001:db8:64:1::2",
  routerXtr1b: "100.64.11.1",
  xtr1Rloc4b: "100.64.11.2",
  routerXtr2: "100.64.2.1",
  xtr2Rloc4: "100.64.2.2",
  xtr2Rloc6: "2001:db8:64:2::2",
  mnRloc4: "100.64.1.2",
  rtrRloc4: "100.64.3.2",
  rtr2Rloc4: "100.64.5.2",
  /** `elp` variants: an EID the map-server maps to rtr2's RLOC (an L hop). */
  rtr2Eid4: "10.5.0.2",
  /** `elp` variants: an EID nothing maps (an L hop that never resolves). */
  unmappedEid4: "10.5.0.99",
  rtrPrivate4: "172.16.2.1",
  xtr2Private4: "172.16.2.2",
  natPublic4: "100.64.4.2",
  natPublic4b: "100.64.4.3",
  natPrivate4: "192.168.1.1",
  xtr1Private4: "192.168.1.2",
  ms4: "100.64.100.2",
  ms6: "2001:db8:64:100::2",
  mr4: "100.64.100.3",
  mr6: "2001:db8:64:100::3",
  ms1: "100.64.100.2",
  ms2: "100.64.101.2",
  ddtMr: "100.64.102.2",
  ddtRoot: "100.64.110.2",
  ddtChild: "100.64.111.2",
  twoMsMr1: "100.64.100.3",
  twoMsMr2: "100.64.101.3",
  // EIDs.
  site1Eid4: "10.1.0.0/24",
  site1Eid6: "fd00:1::/64",
  site2Eid4: "10.2.0.0/24",
  site2Eid6: "fd00:2::/64",
  xtr1Eid4: "10.1.0.1",
  xtr1Eid6: "fd00:1::1",
  xtr2Eid4: "10.2.0.1",
  xtr2Eid6: "fd00:2::1",
  hostA4: "10.1.0.10",
  hostA6: "fd00:1::10",
  hostB4: "10.2.0.10",
  hostB6: "fd00:2::10",
  mnSite: "10.3.0.0/24",
  mnEid4: "10.3.0.5",
  staticSite4: "10.9.0.0/24",
  staticSite6: "fd00:9::/64",
  staticRloc4: "100.64.99.1",
  staticRloc6: "2001:db8:64:99::1",
  tenantSiteA: "10.0.0.0/24",
  tenantSiteB: "10.0.1.0/24",
  tenantHostA: "10.0.0.10",
  tenantHostB: "10.0.1.10",
  ddtStatic1: "10.1.99.0/24",
  ddtStatic2: "10.2.99.0/24",
  // Keys.
  site1Key: "lab-site1-key",
  site2Key: "lab-site2-key",
  mnKey: "lab-mn-key",
  rtrKey: "lab-rtr-key",
} as const;

/** Names of the topologies. */
export const TOPOLOGY_NAMES = [
  "basic",
  "multihoming",
  "ipv6",
  "ipv6-rloc",
  "mn",
  "rtr",
  "ddt",
  "tenants",
  "nat",
  "nat-mn",
  "elp",
  "two-ms",
] as const;

/** Topologies that run with LISP encapsulation only (`--encapsulation VXLAN-GPE` is refused). */
export const LISP_ONLY_TOPOLOGIES: ReadonlySet<string> = new Set(["nat", "nat-mn"]);

/** A topology name. */
export type TopologyName = typeof TOPOLOGY_NAMES[number];

/** One line on each topology, for help texts. */
export const TOPOLOGY_DESCRIPTIONS: Readonly<Record<TopologyName, string>> = {
  basic: "hosta - xtr1 - router (+ ms/mr) - xtr2 - hostb; IPv4 EIDs over IPv4 RLOCs",
  multihoming: "basic, with xtr1 on two RLOC links (rloc0 priority 1, rloc1 priority 2)",
  ipv6: "basic with IPv6 EIDs (fd00:1::/64, fd00:2::/64) over IPv4 RLOCs",
  "ipv6-rloc": "basic with IPv4 EIDs over an IPv6-only underlay (2001:db8:64::/48)",
  mn: "a mobile node (EID 10.3.0.5/32) instead of xtr1 + hosta, site 2 as in basic",
  rtr: "site 2 behind an rtr on a private link; the rtr is its only locator",
  ddt: "DDT root and child, two map-servers, a DDT map-resolver, two sites",
  tenants: "two tenants with the same prefixes in iid 1 and iid 2 behind the same pair of xTRs",
  nat: "xtr1 + hosta behind a NAT namespace (nftables masquerade), an rtr on the underlay",
  "nat-mn": "nat with the mobile node (EID 10.3.0.5/32) behind the NAT instead of xtr1 + hosta",
  elp: "basic, with site 2 registered through an explicit locator path rtr -> rtr2 -> xtr2",
  "two-ms": "basic with two map-servers for the same sites, an mr beside each; xTRs register " +
    "with both",
};

/** Options that change the generated configs. */
export interface TopologyOptions {
  /** Data-plane header of the tunnel routers (default LISP). */
  readonly encapsulation?: "LISP" | "VXLAN-GPE";
  /** `rloc-probe-interval` of tunnel routers, seconds; 0 turns probing off (default 5). */
  readonly rlocProbeInterval?: number;
  /** `debug` of every process, 0..3 (default 0). */
  readonly debug?: number;
  /** MTU of every link (default: kernel default, 1500). */
  readonly mtu?: number;
}

/** One LISP process of a topology. */
export interface LispProcessSpec {
  /** Name, unique in the topology: its config is `<name>.toml`, its log `<name>.log`. */
  readonly name: string;
  /** Node it runs in. */
  readonly node: string;
  /** Role (the `oor` subcommand). */
  readonly role: Role;
  /** The `oor.toml` text. */
  readonly config: string;
  /** Address its control plane answers on (for `oor lig` and tests). */
  readonly controlAddress: string;
  /** `[api] listen`, inside its namespace. */
  readonly api: string;
}

/** A topology: the network plus its LISP processes. */
export interface Topology extends NetworkSpec {
  /** Its name. */
  readonly name: TopologyName;
  /** One line on it. */
  readonly description: string;
  /** The LISP processes, in start order. */
  readonly lisp: readonly LispProcessSpec[];
  /**
   * Commands run once the namespaces are up, before any LISP process
   * starts: `text` is written to the lab folder as `file` and the
   * command runs in `node` with that path as its last argument (the
   * `nat` topology's nftables rules).
   */
  readonly setup?: readonly {
    readonly node: string;
    readonly file: string;
    readonly text: string;
    readonly command: readonly string[];
  }[];
  /**
   * A lookup that gets a positive answer as soon as the mapping system
   * runs, before any xTR registers: `oor lig <eid> --mr <mr>` from `from`.
   */
  readonly staticLookup: {
    /** An EID inside a static registration. */
    readonly eid: string;
    /** The locator of that registration. */
    readonly rloc: string;
    /** Map-resolver to ask. */
    readonly mr: string;
    /** Map-server holding the registration (it answers lig directly too). */
    readonly ms: string;
    /** Node to run lig in. */
    readonly from: string;
  };
}

// ---------------------------------------------------------------------------
// TOML text.

type Scalar = string | number | boolean | readonly string[];

function tomlValue(v: Scalar): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return `[${v.map((s) => JSON.stringify(s)).join(", ")}]`;
}

function keys(o: Readonly<Record<string, Scalar | undefined>>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out.push(`${k} = ${tomlValue(v)}`);
  return out;
}

function table(header: string, o: Readonly<Record<string, Scalar | undefined>>): string[] {
  return ["", header, ...keys(o)];
}

/** A locator of a database-mapping: by interface or by address. */
type Locator =
  | { readonly iface: string; readonly ipVersion: 4 | 6; readonly priority?: number }
  | { readonly address: string; readonly priority?: number };

function databaseMapping(eid: string, locators: readonly Locator[], iid = 0): string[] {
  const lines = table("[[database-mapping]]", { "eid-prefix": eid, iid, ttl: 10 });
  for (const l of locators) {
    lines.push(
      ...("iface" in l
        ? table("[[database-mapping.rloc-iface]]", {
          interface: l.iface,
          ip_version: l.ipVersion,
          priority: l.priority ?? 1,
          weight: 100,
        })
        : table("[[database-mapping.rloc-address]]", {
          address: l.address,
          priority: l.priority ?? 1,
          weight: 100,
        })),
    );
  }
  return lines;
}

function rlocTable(header: string, eid: string, rloc: string, extra: Record<string, Scalar> = {}) {
  return [
    ...table(header, { "eid-prefix": eid, iid: 0, ...extra }),
    ...table(`[[${header.slice(2, -2)}.rloc-address]]`, {
      address: rloc,
      priority: 1,
      weight: 100,
    }),
  ];
}

function apiTable(api: string): string[] {
  return table("[api]", { listen: api });
}

function header(role: string, what: string): string[] {
  return [
    `# oor.toml of ${what}, generated by scripts/lab/topologies.ts.`,
    `operating-mode = ${JSON.stringify(role)}`,
  ];
}

/** Settings of a tunnel router (xtr, mn). */
interface TrSettings {
  readonly what: string;
  readonly mode: "xTR" | "MN";
  readonly controlAddress?: string;
  readonly mapResolver: string;
  readonly mapServer: string;
  /** More map-servers it registers with, with the same key. */
  readonly moreMapServers?: readonly string[];
  readonly key: string;
  readonly mappings: readonly { eid: string; locators: readonly Locator[]; iid?: number }[];
  /** `[[instance]]` tables: an iid with its TUN and site interfaces. */
  readonly instances?: readonly { iid: number; siteInterfaces: readonly string[] }[];
  readonly staticMapCache?: readonly { eid: string; rloc: string }[];
  readonly api: string;
  /** `nat_traversal_support` (default false). */
  readonly nat?: boolean;
  /** `merge` of its `[[map-server]]`: send the xTR-ID (default false). */
  readonly merge?: boolean;
  /** `[[explicit-locator-path]]` tables: a name and its hops, in order. */
  readonly elps?: readonly { name: string; hops: readonly (string | ElpLabHop)[] }[];
}

/** One hop of an explicit locator path in a lab, with its bits (RFC 8060 §4.9). */
export interface ElpLabHop {
  /** The hop's address (an EID with `lookup`). */
  readonly address: string;
  /** L: an EID, resolved through the mapping system. */
  readonly lookup?: boolean;
  /** P: RLOC-probed. */
  readonly probe?: boolean;
  /** S: strict, never skipped. */
  readonly strict?: boolean;
}

function trConfig(s: TrSettings, o: TopologyOptions): string {
  const interval = o.rlocProbeInterval ?? 5;
  return [
    ...header(s.mode, s.what),
    ...keys({
      debug: o.debug ?? 0,
      encapsulation: o.encapsulation ?? "LISP",
      "control-address": s.controlAddress,
      "tun-name": "lispTun0",
      "map-resolver": [s.mapResolver],
      "nat_traversal_support": s.nat ?? false,
    }),
    ...apiTable(s.api),
    ...table("[rloc-probing]", {
      "rloc-probe-interval": interval,
      "rloc-probe-retries": interval === 0 ? undefined : 2,
      "rloc-probe-retries-interval": interval === 0 ? undefined : Math.max(1, interval >> 2),
    }),
    ...[s.mapServer, ...(s.moreMapServers ?? [])].flatMap((address) =>
      table("[[map-server]]", {
        address,
        "key-type": 2,
        key: s.key,
        "proxy-reply": false,
        merge: s.merge,
      })
    ),
    ...(s.elps ?? []).flatMap((e) => [
      ...table("[[explicit-locator-path]]", { "elp-name": e.name }),
      ...e.hops.flatMap((h) =>
        table(
          "[[explicit-locator-path.elp-node]]",
          typeof h === "string" ? { address: h } : {
            address: h.address,
            lookup: h.lookup,
            probe: h.probe,
            strict: h.strict,
          },
        )
      ),
    ]),
    ...s.mappings.flatMap((m) => databaseMapping(m.eid, m.locators, m.iid)),
    ...(s.instances ?? []).flatMap((i) =>
      table("[[instance]]", { iid: i.iid, "site-interfaces": i.siteInterfaces })
    ),
    ...(s.staticMapCache ?? []).flatMap((m) => rlocTable("[[static-map-cache]]", m.eid, m.rloc)),
    "",
  ].join("\n");
}

/** Settings of a map-server. */
interface MsSettings {
  readonly what: string;
  readonly controlAddress: string;
  readonly sites: readonly { eid: string; key: string; moreSpecifics?: boolean; iid?: number }[];
  readonly statics: readonly { eid: string; rloc: string }[];
  readonly api: string;
  /** Extra top-level keys and tables (NAT traversal: the advertised set, RTR nodes and sets). */
  readonly extra?: { readonly keys: Record<string, Scalar>; readonly tables: readonly string[] };
}

function msConfig(s: MsSettings, o: TopologyOptions): string {
  return [
    ...header("MS", s.what),
    ...keys({ debug: o.debug ?? 0, "control-address": s.controlAddress, ...s.extra?.keys }),
    ...apiTable(s.api),
    ...s.sites.flatMap((site) =>
      table("[[lisp-site]]", {
        "eid-prefix": site.eid,
        iid: site.iid ?? 0,
        "key-type": 2,
        key: site.key,
        "accept-more-specifics": site.moreSpecifics ?? false,
      })
    ),
    ...s.statics.flatMap((m) =>
      rlocTable("[[ms-static-registered-site]]", m.eid, m.rloc, { ttl: 10 })
    ),
    ...(s.extra?.tables ?? []),
    "",
  ].join("\n");
}

// ---------------------------------------------------------------------------
// Building blocks.

interface Builder {
  nodes: NodeSpec[];
  links: LinkSpec[];
  lisp: LispProcessSpec[];
  opts: TopologyOptions;
}

function v4(n: number, host: number): string {
  return `100.64.${n}.${host}`;
}
function v6(n: number, host: number): string {
  return `2001:db8:64:${n}::${host}`;
}

/** The address families of the underlay. */
type Underlay = { readonly v4: boolean; readonly v6: boolean };

/** Links `node` to the router as link number `n`; returns the node's routes to add. */
function uplink(
  b: Builder,
  n: number,
  node: string,
  iface: string,
  routerIface: string,
  u: Underlay,
  extraHosts: readonly number[] = [],
): { to: string; via: string }[] {
  const nodeAddrs: string[] = [];
  const routerAddrs: string[] = [];
  const routes: { to: string; via: string }[] = [];
  if (u.v4) {
    for (const h of [2, ...extraHosts]) nodeAddrs.push(`${v4(n, h)}/24`);
    routerAddrs.push(`${v4(n, 1)}/24`);
    routes.push({ to: "default", via: v4(n, 1) });
  }
  if (u.v6) {
    for (const h of [2, ...extraHosts]) nodeAddrs.push(`${v6(n, h)}/64`);
    routerAddrs.push(`${v6(n, 1)}/64`);
    routes.push({ to: "default", via: v6(n, 1) });
  }
  b.links.push({
    a: { node, iface, addresses: nodeAddrs },
    b: { node: "router", iface: routerIface, addresses: routerAddrs },
    ...(b.opts.mtu !== undefined ? { mtu: b.opts.mtu } : {}),
  });
  return routes;
}

/** A site: host `host` behind `xtr` on `site0`, with IPv4 and/or IPv6 EIDs. */
function site(b: Builder, site: 1 | 2, xtr: string, host: string, eids: Underlay): void {
  const xtrAddrs: string[] = [];
  const hostAddrs: string[] = [];
  const routes: { to: string; via: string }[] = [];
  if (eids.v4) {
    xtrAddrs.push(`10.${site}.0.1/24`);
    hostAddrs.push(`10.${site}.0.10/24`);
    routes.push({ to: "default", via: `10.${site}.0.1` });
  }
  if (eids.v6) {
    xtrAddrs.push(`fd00:${site}::1/64`);
    hostAddrs.push(`fd00:${site}::10/64`);
    routes.push({ to: "default", via: `fd00:${site}::1` });
  }
  b.nodes.push({ name: host, routes });
  b.links.push({
    a: { node: xtr, iface: "site0", addresses: xtrAddrs },
    b: { node: host, iface: "eth0", addresses: hostAddrs },
    ...(b.opts.mtu !== undefined ? { mtu: b.opts.mtu } : {}),
  });
}

const API = (port = 9942) => `127.0.0.1:${port}`;

/** The ms namespace of the flat topologies: an ms (.2) and an mr (.3) forwarding to it. */
function msNode(
  b: Builder,
  u: Underlay,
  sites: MsSettings["sites"],
  statics: MsSettings["statics"] = [],
  extra?: MsSettings["extra"],
): { ms: string; mr: string } {
  const routes = uplink(b, 100, "ms", "eth0", "to-ms", u, [3]);
  b.nodes.push({ name: "ms", routes });
  const ms = u.v4 ? PLAN.ms4 : PLAN.ms6;
  const mr = u.v4 ? PLAN.mr4 : PLAN.mr6;
  b.lisp.push({
    name: "ms",
    node: "ms",
    role: "ms",
    controlAddress: ms,
    api: API(9942),
    config: msConfig({
      what: "the map-server",
      controlAddress: ms,
      sites,
      statics: [
        ...statics,
        { eid: PLAN.staticSite4, rloc: u.v4 ? PLAN.staticRloc4 : PLAN.staticRloc6 },
        { eid: PLAN.staticSite6, rloc: u.v4 ? PLAN.staticRloc4 : PLAN.staticRloc6 },
      ],
      api: API(9942),
      ...(extra !== undefined ? { extra } : {}),
    }, b.opts),
  });
  b.lisp.push({
    name: "mr",
    node: "ms",
    role: "mr",
    controlAddress: mr,
    api: API(9943),
    config: [
      ...header("MR", "the map-resolver (forwards to the map-server)"),
      ...keys({ debug: b.opts.debug ?? 0, "control-address": mr }),
      ...apiTable(API(9943)),
      ...table("[[map-server]]", { address: ms }),
      "",
    ].join("\n"),
  });
  return { ms, mr };
}

function routerNode(b: Builder): void {
  b.nodes.unshift({ name: "router", forwarding: true });
}

/** An rtr on underlay link `n` (one rtr-iface, `rloc0`). */
function rtrNode(
  b: Builder,
  name: string,
  n: number,
  address: string,
  what: string,
  cp: { ms: string; mr: string },
  extra: readonly string[] = [],
): void {
  b.nodes.push({
    name,
    forwarding: true,
    routes: uplink(b, n, name, "rloc0", `to-${name}`, { v4: true, v6: false }),
  });
  const interval = b.opts.rlocProbeInterval ?? 5;
  b.lisp.push({
    name,
    node: name,
    role: "rtr",
    controlAddress: address,
    api: API(),
    config: [
      ...header("RTR", what),
      ...keys({
        debug: b.opts.debug ?? 0,
        encapsulation: b.opts.encapsulation ?? "LISP",
        "map-resolver": [cp.mr],
      }),
      ...apiTable(API()),
      ...table("[rloc-probing]", {
        "rloc-probe-interval": interval,
        "rloc-probe-retries": interval === 0 ? undefined : 2,
        "rloc-probe-retries-interval": interval === 0 ? undefined : Math.max(1, interval >> 2),
      }),
      ...table("[[rtr-iface]]", { iface: "rloc0", ip_version: 4, priority: 1, weight: 100 }),
      ...extra,
      "",
    ].join("\n"),
  });
}

/** An xTR with its site, single-homed on link `n`. */
function xtr(
  b: Builder,
  which: 1 | 2,
  u: Underlay,
  eids: Underlay,
  cp: { ms: string; mr: string },
  locatorBy: "iface" | "address",
): void {
  const name = `xtr${which}`;
  const routes = uplink(b, which, name, "rloc0", `to-${name}`, u);
  b.nodes.push({ name, forwarding: true, routes });
  site(b, which, name, which === 1 ? "hosta" : "hostb", eids);
  // IPv6 EIDs ride IPv4 RLOCs when there are any, IPv4 EIDs ride IPv6 RLOCs
  // on an IPv6-only underlay: whichever family the underlay has.
  const family: 4 | 6 = u.v4 ? 4 : 6;
  const rloc = family === 4 ? v4(which, 2) : v6(which, 2);
  const loc: Locator = locatorBy === "iface"
    ? { iface: "rloc0", ipVersion: family }
    : { address: rloc };
  const mappings = [];
  if (eids.v4) mappings.push({ eid: `10.${which}.0.0/24`, locators: [loc] });
  if (eids.v6) mappings.push({ eid: `fd00:${which}::/64`, locators: [loc] });
  b.lisp.push({
    name,
    node: name,
    role: "xtr",
    controlAddress: rloc,
    api: API(),
    config: trConfig({
      what: `${name} (site ${which})`,
      mode: "xTR",
      controlAddress: rloc,
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: which === 1 ? PLAN.site1Key : PLAN.site2Key,
      mappings,
      api: API(),
    }, b.opts),
  });
}

function siteList(eids: Underlay, which: readonly (1 | 2)[]): MsSettings["sites"] {
  const out: { eid: string; key: string }[] = [];
  for (const w of which) {
    const key = w === 1 ? PLAN.site1Key : PLAN.site2Key;
    if (eids.v4) out.push({ eid: `10.${w}.0.0/24`, key });
    if (eids.v6) out.push({ eid: `fd00:${w}::/64`, key });
  }
  return out;
}

function finish(b: Builder, name: TopologyName, lookup: Topology["staticLookup"]): Topology {
  return {
    name,
    description: TOPOLOGY_DESCRIPTIONS[name],
    nodes: b.nodes,
    links: b.links,
    lisp: b.lisp,
    staticLookup: lookup,
  };
}

/** The static lookup of the flat topologies (one ms namespace). */
function flatLookup(u: Underlay, from: string): Topology["staticLookup"] {
  return {
    eid: "10.9.0.1",
    rloc: u.v4 ? PLAN.staticRloc4 : PLAN.staticRloc6,
    mr: u.v4 ? PLAN.mr4 : PLAN.mr6,
    ms: u.v4 ? PLAN.ms4 : PLAN.ms6,
    from,
  };
}

// ---------------------------------------------------------------------------
// The topologies.

function flat(name: "basic" | "ipv6" | "ipv6-rloc", opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = name === "ipv6-rloc" ? { v4: false, v6: true } : { v4: true, v6: false };
  const eids: Underlay = name === "ipv6" ? { v4: false, v6: true } : { v4: true, v6: false };
  const cp = msNode(b, u, siteList(eids, [1, 2]));
  xtr(b, 1, u, eids, cp, "iface");
  xtr(b, 2, u, eids, cp, "address");
  return finish(b, name, flatLookup(u, "xtr1"));
}

function multihoming(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts: { rlocProbeInterval: 2, ...opts } };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const cp = msNode(b, u, siteList(eids, [1, 2]));
  // xtr1: two uplinks; the default route via rloc1 is the backup (metric 200).
  uplink(b, 1, "xtr1", "rloc0", "to-xtr1", u);
  uplink(b, 11, "xtr1", "rloc1", "to-xtr1b", u);
  b.nodes.push({
    name: "xtr1",
    forwarding: true,
    routes: [
      { to: "default", via: PLAN.routerXtr1, metric: 100 },
      { to: "default", via: PLAN.routerXtr1b, metric: 200 },
    ],
  });
  site(b, 1, "xtr1", "hosta", eids);
  b.lisp.push({
    name: "xtr1",
    node: "xtr1",
    role: "xtr",
    controlAddress: PLAN.xtr1Rloc4,
    api: API(),
    config: trConfig({
      // No control-address: probes and Map-Requests arrive on both RLOCs.
      what: "xtr1 (site 1, multihomed: rloc0 primary, rloc1 backup)",
      mode: "xTR",
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: PLAN.site1Key,
      mappings: [{
        eid: PLAN.site1Eid4,
        locators: [
          { iface: "rloc0", ipVersion: 4, priority: 1 },
          { iface: "rloc1", ipVersion: 4, priority: 2 },
        ],
      }],
      api: API(),
    }, b.opts),
  });
  xtr(b, 2, u, eids, cp, "address");
  return finish(b, "multihoming", flatLookup(u, "xtr1"));
}

function mn(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const cp = msNode(b, u, [
    { eid: PLAN.mnSite, key: PLAN.mnKey, moreSpecifics: true },
    ...siteList(eids, [2]),
  ]);
  uplink(b, 1, "mn", "rloc0", "to-mn", u);
  // The mn role routes 0.0.0.0/1 and 128.0.0.0/1 into lispTun0; the more
  // specific underlay route keeps its encapsulated packets on rloc0.
  b.nodes.push({
    name: "mn",
    routes: [
      { to: "100.64.0.0/10", via: PLAN.routerXtr1 },
      { to: "default", via: PLAN.routerXtr1 },
    ],
  });
  b.lisp.push({
    name: "mn",
    node: "mn",
    role: "mn",
    controlAddress: PLAN.mnRloc4,
    api: API(),
    config: trConfig({
      what: "the mobile node",
      mode: "MN",
      // No control-address: the mobile node binds to its RLOC wherever it
      // moves (a pinned address would keep the socket on one that is gone).
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: PLAN.mnKey,
      // Its Map-Registers carry its xTR-ID, so when it moves the map-server
      // replaces its registration; keyed by source address, the old RLOC's
      // would stay (and be answered) until it expired.
      merge: true,
      mappings: [{ eid: `${PLAN.mnEid4}/32`, locators: [{ iface: "rloc0", ipVersion: 4 }] }],
      api: API(),
    }, b.opts),
  });
  xtr(b, 2, u, eids, cp, "address");
  return finish(b, "mn", flatLookup(u, "mn"));
}

function rtr(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  // Site 2 is not a lisp-site: its mapping is static, pointing at the rtr.
  // xtr2's own Map-Registers are refused (no-site) so the static one stands.
  const cp = msNode(b, u, siteList(eids, [1]), [{ eid: PLAN.site2Eid4, rloc: PLAN.rtrRloc4 }]);
  xtr(b, 1, u, eids, cp, "iface");
  // The rtr: rloc0 on the underlay (link 3), to-xtr2 on site 2's private link.
  const rtrRoutes = uplink(b, 3, "rtr", "rloc0", "to-rtr", u);
  b.nodes.push({ name: "rtr", forwarding: true, routes: rtrRoutes });
  b.links.push({
    a: { node: "rtr", iface: "to-xtr2", addresses: [`${PLAN.rtrPrivate4}/24`] },
    b: { node: "xtr2", iface: "rloc0", addresses: [`${PLAN.xtr2Private4}/24`] },
    ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
  });
  b.nodes.push({
    name: "xtr2",
    forwarding: true,
    routes: [{ to: "default", via: PLAN.rtrPrivate4 }],
  });
  site(b, 2, "xtr2", "hostb", eids);
  const interval = opts.rlocProbeInterval ?? 5;
  b.lisp.push({
    name: "rtr",
    node: "rtr",
    role: "rtr",
    controlAddress: PLAN.rtrRloc4,
    api: API(),
    config: [
      ...header("RTR", "the rtr (site 2's only locator)"),
      ...keys({
        debug: opts.debug ?? 0,
        encapsulation: opts.encapsulation ?? "LISP",
        "tun-name": "lispTun0",
        "map-resolver": [cp.mr],
      }),
      ...apiTable(API()),
      ...table("[rloc-probing]", {
        "rloc-probe-interval": interval,
        "rloc-probe-retries": interval === 0 ? undefined : 2,
        "rloc-probe-retries-interval": interval === 0 ? undefined : Math.max(1, interval >> 2),
      }),
      ...table("[[rtr-iface]]", { iface: "rloc0", ip_version: 4, priority: 1, weight: 100 }),
      ...table("[[rtr-iface]]", { iface: "to-xtr2", ip_version: 4, priority: 1, weight: 100 }),
      ...rlocTable("[[static-map-cache]]", PLAN.site2Eid4, PLAN.xtr2Private4),
      "",
    ].join("\n"),
  });
  b.lisp.push({
    name: "xtr2",
    node: "xtr2",
    role: "xtr",
    controlAddress: PLAN.xtr2Private4,
    api: API(),
    config: trConfig({
      what: "xtr2 (site 2, behind the rtr)",
      mode: "xTR",
      controlAddress: PLAN.xtr2Private4,
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: PLAN.site2Key,
      mappings: [{ eid: PLAN.site2Eid4, locators: [{ iface: "rloc0", ipVersion: 4 }] }],
      staticMapCache: [{ eid: PLAN.site1Eid4, rloc: PLAN.rtrPrivate4 }],
      api: API(),
    }, opts),
  });
  return finish(b, "rtr", flatLookup(u, "xtr1"));
}

/**
 * Two tenants, iid 1 and iid 2, each with a site behind xtr1
 * (10.0.0.0/24) and one behind xtr2 (10.0.1.0/24): the same prefixes in
 * both instances. Tenant n's hosts are `tna` (xtr1, iface `siten`) and
 * `tnb` (xtr2); each xTR gives each iid its own TUN with `[[instance]]`.
 */
function tenants(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const sites = [PLAN.tenantSiteA, PLAN.tenantSiteB];
  const cp = msNode(
    b,
    u,
    [1, 2].flatMap((iid) => [
      { eid: PLAN.tenantSiteA, key: PLAN.site1Key, iid },
      { eid: PLAN.tenantSiteB, key: PLAN.site2Key, iid },
    ]),
  );
  for (const which of [1, 2] as const) {
    const name = `xtr${which}`;
    b.nodes.push({
      name,
      forwarding: true,
      routes: uplink(b, which, name, "rloc0", `to-${name}`, u),
    });
    const net = sites[which - 1]!.replace(/\.0\/24$/, "");
    for (const iid of [1, 2]) {
      const host = `t${iid}${which === 1 ? "a" : "b"}`;
      b.nodes.push({ name: host, routes: [{ to: "default", via: `${net}.1` }] });
      b.links.push({
        a: { node: name, iface: `site${iid}`, addresses: [`${net}.1/24`] },
        b: { node: host, iface: "eth0", addresses: [`${net}.10/24`] },
        ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
      });
    }
    const rloc = v4(which, 2);
    b.lisp.push({
      name,
      node: name,
      role: "xtr",
      controlAddress: rloc,
      api: API(),
      config: trConfig({
        what: `${name} (both tenants)`,
        mode: "xTR",
        controlAddress: rloc,
        mapResolver: cp.mr,
        mapServer: cp.ms,
        key: which === 1 ? PLAN.site1Key : PLAN.site2Key,
        mappings: [1, 2].map((iid) => ({
          eid: sites[which - 1]!,
          iid,
          locators: [{ iface: "rloc0", ipVersion: 4 as const }],
        })),
        instances: [1, 2].map((iid) => ({ iid, siteInterfaces: [`site${iid}`] })),
        api: API(),
      }, b.opts),
    });
  }
  return finish(b, "tenants", flatLookup(u, "xtr1"));
}

function ddt(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const debug = opts.debug ?? 0;
  const control = (name: string, n: number) => {
    b.nodes.push({ name, routes: uplink(b, n, name, "eth0", `to-${name}`, u) });
    return v4(n, 2);
  };
  const ms1 = control("ms1", 100);
  const ms2 = control("ms2", 101);
  const mr = control("mr", 102);
  const root = control("ddtroot", 110);
  const child = control("ddtchild", 111);
  const deleg = (eid: string, type: string, nodes: readonly string[]) =>
    table("[[ddt-deleg-site]]", {
      "eid-prefix": eid,
      iid: 0,
      "delegation-type": type,
      "deleg-nodes": nodes,
    });
  b.lisp.push({
    name: "ddtroot",
    node: "ddtroot",
    role: "ddt",
    controlAddress: root,
    api: API(),
    config: [
      ...header("DDT", "the DDT root"),
      ...keys({ debug, "control-address": root }),
      ...apiTable(API()),
      ...table("[[ddt-auth-site]]", { "eid-prefix": "10.0.0.0/8", iid: 0 }),
      ...deleg("10.1.0.0/16", "MAP_SERVER_DDT_NODE", [ms1]),
      ...deleg("10.2.0.0/16", "CHILD_DDT_NODE", [child]),
      "",
    ].join("\n"),
  });
  b.lisp.push({
    name: "ddtchild",
    node: "ddtchild",
    role: "ddt",
    controlAddress: child,
    api: API(),
    config: [
      ...header("DDT", "the DDT child (10.2.0.0/16)"),
      ...keys({ debug, "control-address": child }),
      ...apiTable(API()),
      ...table("[[ddt-auth-site]]", { "eid-prefix": "10.2.0.0/16", iid: 0 }),
      // More specific than the root's referral, or the resolver sees a loop.
      ...deleg(PLAN.site2Eid4, "MAP_SERVER_DDT_NODE", [ms2]),
      ...deleg(PLAN.ddtStatic2, "MAP_SERVER_DDT_NODE", [ms2]),
      "",
    ].join("\n"),
  });
  b.lisp.push({
    name: "ms1",
    node: "ms1",
    role: "ms",
    controlAddress: ms1,
    api: API(),
    config: msConfig({
      what: "map-server 1 (site 1)",
      controlAddress: ms1,
      sites: siteList(eids, [1]),
      statics: [{ eid: PLAN.ddtStatic1, rloc: PLAN.staticRloc4 }],
      api: API(),
    }, opts),
  });
  b.lisp.push({
    name: "ms2",
    node: "ms2",
    role: "ms",
    controlAddress: ms2,
    api: API(),
    config: msConfig({
      what: "map-server 2 (site 2)",
      controlAddress: ms2,
      sites: siteList(eids, [2]),
      statics: [{ eid: PLAN.ddtStatic2, rloc: PLAN.staticRloc4 }],
      api: API(),
    }, opts),
  });
  b.lisp.push({
    name: "mr",
    node: "mr",
    role: "ddt-mr",
    controlAddress: mr,
    api: API(),
    config: [
      ...header("DDT-MR", "the DDT map-resolver"),
      ...keys({ debug, "control-address": mr, "ddt-root-addresses": [root] }),
      ...apiTable(API()),
      "",
    ].join("\n"),
  });
  xtr(b, 1, u, eids, { ms: ms1, mr }, "iface");
  xtr(b, 2, u, eids, { ms: ms2, mr }, "address");
  return finish(b, "ddt", {
    eid: "10.2.99.1",
    rloc: PLAN.staticRloc4,
    mr,
    ms: ms2,
    from: "xtr1",
  });
}

/**
 * NAT traversal: xtr1 (with hosta) behind the `nat` namespace, which
 * masquerades `192.168.1.0/24` out of its uplink once the nftables rules
 * are in (see {@link natRules}); the rtr on the underlay is the RTR the
 * map-server advertises; xtr2 with hostb as in basic.
 */
function nat(opts: TopologyOptions, mobile: boolean): Topology {
  const name = mobile ? "nat-mn" : "nat";
  if ((opts.encapsulation ?? "LISP") !== "LISP") {
    throw new LabError(
      `topology "${name}" runs LISP encapsulation only (NAT traversal needs the LISP data port)`,
    );
  }
  // The node behind the NAT: xtr1 with hosta, or the mobile node.
  const inside = mobile ? "mn" : "xtr1";
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const sites = mobile
    ? [{ eid: PLAN.mnSite, key: PLAN.mnKey, moreSpecifics: true }, ...siteList(eids, [2])]
    : siteList(eids, [1, 2]);
  const cp = msNode(b, u, sites, [], {
    keys: { "ms-advertised-rtrs-set": "rtrs" },
    tables: [
      ...table("[[ms-rtr-node]]", { name: "rtr1", address: PLAN.rtrRloc4, key: PLAN.rtrKey }),
      ...table("[[ms-rtrs-set]]", { name: "rtrs", ttl: 10, rtrs: ["rtr1"] }),
    ],
  });
  // The NAT box: uplink on link 4 (a second address for a changed mapping), xtr1 behind it.
  const natRoutes = uplink(b, 4, "nat", "rloc0", "to-nat", u, [3]);
  b.nodes.push({ name: "nat", forwarding: true, routes: natRoutes });
  b.links.push({
    a: { node: "nat", iface: "to-xtr1", addresses: [`${PLAN.natPrivate4}/24`] },
    b: { node: inside, iface: "rloc0", addresses: [`${PLAN.xtr1Private4}/24`] },
    ...(opts.mtu !== undefined ? { mtu: opts.mtu } : {}),
  });
  b.nodes.push({
    name: inside,
    forwarding: !mobile,
    // The mn routes 0.0.0.0/1 and 128.0.0.0/1 into its TUN: the more
    // specific underlay route keeps its encapsulated packets on rloc0.
    routes: [
      ...(mobile ? [{ to: "100.64.0.0/10", via: PLAN.natPrivate4 }] : []),
      { to: "default", via: PLAN.natPrivate4 },
    ],
  });
  if (!mobile) site(b, 1, "xtr1", "hosta", eids);
  b.lisp.push({
    name: inside,
    node: inside,
    role: mobile ? "mn" : "xtr",
    controlAddress: PLAN.xtr1Private4,
    api: API(),
    config: trConfig({
      what: mobile ? "the mobile node (behind the NAT)" : "xtr1 (site 1, behind the NAT)",
      mode: mobile ? "MN" : "xTR",
      controlAddress: PLAN.xtr1Private4,
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: mobile ? PLAN.mnKey : PLAN.site1Key,
      mappings: [{
        eid: mobile ? `${PLAN.mnEid4}/32` : PLAN.site1Eid4,
        locators: [{ iface: "rloc0", ipVersion: 4 }],
      }],
      api: API(),
      nat: true,
    }, b.opts),
  });
  // The rtr: one underlay link; relays registrations to the ms.
  b.nodes.push({
    name: "rtr",
    forwarding: true,
    routes: uplink(b, 3, "rtr", "rloc0", "to-rtr", u),
  });
  const interval = opts.rlocProbeInterval ?? 5;
  b.lisp.push({
    name: "rtr",
    node: "rtr",
    role: "rtr",
    controlAddress: PLAN.rtrRloc4,
    api: API(),
    config: [
      ...header("RTR", `the rtr (NAT traversal for ${mobile ? "the mobile node" : "site 1"})`),
      ...keys({
        debug: opts.debug ?? 0,
        encapsulation: "LISP",
        "map-resolver": [cp.mr],
      }),
      ...apiTable(API()),
      ...table("[rloc-probing]", {
        "rloc-probe-interval": interval,
        "rloc-probe-retries": interval === 0 ? undefined : 2,
        "rloc-probe-retries-interval": interval === 0 ? undefined : Math.max(1, interval >> 2),
      }),
      ...table("[[rtr-iface]]", { iface: "rloc0", ip_version: 4, priority: 1, weight: 100 }),
      ...table("[[rtr-ms-node]]", {
        address: cp.ms,
        key: PLAN.rtrKey,
        "key-type": 1,
        "draft-version": "NEW",
      }),
      "",
    ].join("\n"),
  });
  xtr(b, 2, u, eids, cp, "address");
  return {
    ...finish(b, name, flatLookup(u, "xtr2")),
    setup: [{ node: "nat", file: "nat.nft", text: natRules(), command: ["nft", "-f"] }],
  };
}

/**
 * basic, plus two RTRs: xtr2 registers site 2 with the explicit locator
 * path rtr → rtr2 → xtr2, so traffic to site 2 crosses rtr then rtr2 and
 * traffic back to site 1 goes straight from xtr2 to xtr1.
 */
/**
 * Two map-servers for the same sites (see the module notes): ms1 and mr1
 * on node ms1 (link 100), ms2 and mr2 on node ms2 (link 101); xtr1 and
 * xtr2 register with both, and resolve through mr1 and mr2.
 */
function twoMs(opts: TopologyOptions): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const debug = opts.debug ?? 0;
  const ms = [PLAN.ms1, PLAN.ms2];
  const mr = [PLAN.twoMsMr1, PLAN.twoMsMr2];
  for (const i of [0, 1]) {
    const node = `ms${i + 1}`;
    b.nodes.push({ name: node, routes: uplink(b, 100 + i, node, "eth0", `to-${node}`, u, [3]) });
    b.lisp.push({
      name: node,
      node,
      role: "ms",
      controlAddress: ms[i]!,
      api: API(9942),
      config: msConfig({
        what: `map-server ${i + 1} of 2 (the same sites as the other)`,
        controlAddress: ms[i]!,
        sites: siteList(eids, [1, 2]),
        statics: [{ eid: PLAN.staticSite4, rloc: PLAN.staticRloc4 }],
        api: API(9942),
      }, opts),
    });
    b.lisp.push({
      name: `mr${i + 1}`,
      node,
      role: "mr",
      controlAddress: mr[i]!,
      api: API(9943),
      config: [
        ...header("MR", `map-resolver ${i + 1} (its map-server first, the other on a retry)`),
        ...keys({ debug, "control-address": mr[i]! }),
        ...apiTable(API(9943)),
        ...table("[[map-server]]", { address: ms[i]! }),
        ...table("[[map-server]]", { address: ms[1 - i]! }),
        "",
      ].join("\n"),
    });
  }
  for (const which of [1, 2] as const) {
    const name = `xtr${which}`;
    b.nodes.push({
      name,
      forwarding: true,
      routes: uplink(b, which, name, "rloc0", `to-${name}`, u),
    });
    site(b, which, name, which === 1 ? "hosta" : "hostb", eids);
    const rloc = v4(which, 2);
    b.lisp.push({
      name,
      node: name,
      role: "xtr",
      controlAddress: rloc,
      api: API(),
      config: trConfig({
        what: `${name} (site ${which}, registered with both map-servers)`,
        mode: "xTR",
        controlAddress: rloc,
        mapResolver: mr[which - 1]!,
        mapServer: ms[0]!,
        moreMapServers: [ms[1]!],
        key: which === 1 ? PLAN.site1Key : PLAN.site2Key,
        mappings: [{ eid: `10.${which}.0.0/24`, locators: [{ iface: "rloc0", ipVersion: 4 }] }],
        api: API(),
      }, opts),
    });
  }
  return finish(b, "two-ms", {
    eid: "10.9.0.1",
    rloc: PLAN.staticRloc4,
    mr: mr[0]!,
    ms: ms[1]!,
    from: "xtr1",
  });
}

/** A variant of the `elp` topology (see {@link elpTopology}). */
export interface ElpVariant {
  /** Site 2's path, first hop to last (default rtr, rtr2, xtr2, no bits). */
  readonly hops?: readonly ElpLabHop[];
  /** xtr2 registers its own RLOC too, at priority 2 (the path has 1). */
  readonly direct?: boolean;
}

/**
 * The `elp` topology, or a variant of it: site 2's path with other hops or
 * bits, xtr2's own RLOC beside it. The map-server always maps
 * `PLAN.rtr2Eid4` to rtr2's RLOC.
 */
export function elpTopology(opts: TopologyOptions = {}, variant: ElpVariant = {}): Topology {
  const b: Builder = { nodes: [], links: [], lisp: [], opts };
  routerNode(b);
  const u: Underlay = { v4: true, v6: false };
  const eids: Underlay = { v4: true, v6: false };
  const cp = msNode(b, u, siteList(eids, [1, 2]), [
    { eid: `${PLAN.rtr2Eid4}/32`, rloc: PLAN.rtr2Rloc4 },
  ]);
  const hops = variant.hops ??
    [PLAN.rtrRloc4, PLAN.rtr2Rloc4, PLAN.xtr2Rloc4].map((address) => ({ address }));
  xtr(b, 1, u, eids, cp, "iface");
  rtrNode(b, "rtr", 3, PLAN.rtrRloc4, "the rtr (first hop of site 2's path)", cp);
  rtrNode(b, "rtr2", 5, PLAN.rtr2Rloc4, "rtr2 (second hop of site 2's path)", cp);
  b.nodes.push({
    name: "xtr2",
    forwarding: true,
    routes: uplink(b, 2, "xtr2", "rloc0", "to-xtr2", u),
  });
  site(b, 2, "xtr2", "hostb", eids);
  b.lisp.push({
    name: "xtr2",
    node: "xtr2",
    role: "xtr",
    controlAddress: PLAN.xtr2Rloc4,
    api: API(),
    config: trConfig({
      what: "xtr2 (site 2, reached through rtr and rtr2)",
      mode: "xTR",
      controlAddress: PLAN.xtr2Rloc4,
      mapResolver: cp.mr,
      mapServer: cp.ms,
      key: PLAN.site2Key,
      elps: [{ name: "via-rtrs", hops }],
      mappings: [{
        eid: PLAN.site2Eid4,
        locators: [
          { address: "via-rtrs" },
          ...(variant.direct === true
            ? [{ iface: "rloc0", ipVersion: 4 as const, priority: 2 }]
            : []),
        ],
      }],
      api: API(),
    }, opts),
  });
  return finish(b, "elp", flatLookup(u, "xtr1"));
}

/**
 * The nftables script of the `nat` topology's NAT box: source NAT of the
 * private link out of `rloc0`, to the uplink's address (`masquerade`) or,
 * with `to`, to that address and port range (a changed mapping).
 */
export function natRules(to?: string): string {
  const match = `ip saddr 192.168.1.0/24 oifname "rloc0"`;
  const rules = to === undefined
    ? [`${match} masquerade`]
    : [`${match} meta l4proto udp snat to ${to}`, `${match} snat to ${to.replace(/:.*$/, "")}`];
  return [
    "table ip oor_lab_nat {",
    "  chain post {",
    "    type nat hook postrouting priority srcnat; policy accept;",
    ...rules.map((r) => `    ${r}`),
    "  }",
    "}",
    "",
  ].join("\n");
}

/** Whether `name` is a topology name. */
export function isTopologyName(name: string): name is TopologyName {
  return (TOPOLOGY_NAMES as readonly string[]).includes(name);
}

/** Builds the declaration of a topology (pure: nothing is created). */
export function makeTopology(name: string, opts: TopologyOptions = {}): Topology {
  if (!isTopologyName(name)) {
    throw new LabError(`no topology "${name}" (have: ${TOPOLOGY_NAMES.join(", ")})`);
  }
  switch (name) {
    case "basic":
    case "ipv6":
    case "ipv6-rloc":
      return flat(name, opts);
    case "multihoming":
      return multihoming(opts);
    case "mn":
      return mn(opts);
    case "rtr":
      return rtr(opts);
    case "ddt":
      return ddt(opts);
    case "tenants":
      return tenants(opts);
    case "nat":
      return nat(opts, false);
    case "nat-mn":
      return nat(opts, true);
    case "elp":
      return elpTopology(opts);
    case "two-ms":
      return twoMs(opts);
  }
}

// ---------------------------------------------------------------------------
// Running.

/** Writes every process's `<name>.toml` into the lab folder; returns name → path. */
export async function writeConfigs(lab: Lab, topo: Topology): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of topo.lisp) out.set(p.name, await lab.writeFile(`${p.name}.toml`, p.config));
  return out;
}

/** Options of {@link startLisp}. */
export interface StartOptions {
  /** Start only these processes (by name); default all whose role is runnable. */
  readonly only?: readonly string[];
  /** Let this process exit while they run (the CLI). */
  readonly detach?: boolean;
  /** `--log-format` (default text). */
  readonly logFormat?: "text" | "json";
  /** Wait for each process's `started` log line, ms (default 15000; 0: don't wait). */
  readonly startTimeoutMs?: number;
}

/** What {@link startLisp} did. */
export interface StartResult {
  /** Processes started, in topology order. */
  readonly started: readonly LabProcess[];
  /** Processes not started, with why. */
  readonly skipped: readonly { readonly spec: LispProcessSpec; readonly reason: string }[];
}

/** The command line that runs a LISP process of a topology. */
export function lispArgv(configPath: string, role: Role, logFormat = "text"): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    `${REPO_ROOT}/main.ts`,
    role,
    "--config",
    configPath,
    "--log-format",
    logFormat,
  ];
}

/**
 * Starts the LISP processes of a topology in its lab (configs must have
 * been written, see {@link writeConfigs}) with `deno run -A main.ts <role>
 * --config <name>.toml`, and waits until each logs `started`: the mapping
 * system (ms, mr, ddt, ddt-mr) first, then the tunnel routers (with
 * `startTimeoutMs` 0, all at once without waiting). Processes not asked
 * for (`only`) are skipped and reported.
 */
export async function startLisp(
  lab: Lab,
  topo: Topology,
  opts: StartOptions = {},
): Promise<StartResult> {
  const skipped: { spec: LispProcessSpec; reason: string }[] = [];
  const todo: LispProcessSpec[] = [];
  for (const p of topo.lisp) {
    if (opts.only !== undefined && !opts.only.includes(p.name)) {
      skipped.push({ spec: p, reason: "not asked for" });
    } else {
      todo.push(p);
    }
  }
  const wait = opts.startTimeoutMs ?? 15_000;
  const spawn = (specs: readonly LispProcessSpec[]) =>
    Promise.all(
      specs.map((p) =>
        lab.spawn(p.node, p.name, lispArgv(lab.path(`${p.name}.toml`), p.role, opts.logFormat), {
          cwd: REPO_ROOT,
          ...(opts.detach !== undefined ? { detach: opts.detach } : {}),
        })
      ),
    );
  const up = async (ps: readonly LabProcess[]) => {
    if (wait <= 0) return;
    await Promise.all(
      ps.map((p) =>
        p.waitForLog(opts.logFormat === "json" ? /"event":"started"/ : / started( |$)/m, wait)
      ),
    );
  };
  // The mapping system first, as an operator would start it: a tunnel
  // router's first Map-Register to a map-server not yet listening is lost
  // (a port unreachable) and resent only a second later, and meanwhile a
  // request for its EIDs gets a negative reply cached for a minute.
  const first = wait > 0 ? todo.filter((p) => MAPPING_SYSTEM.has(p.role)) : [];
  const firstUp = await spawn(first);
  await up(firstUp);
  const rest = await spawn(todo.filter((p) => !first.includes(p)));
  await up(rest);
  const byName = new Map([...firstUp, ...rest].map((p) => [p.name, p]));
  return { started: todo.map((p) => byName.get(p.name)!), skipped };
}

/** Roles {@link startLisp} starts (and waits for) before the tunnel routers. */
const MAPPING_SYSTEM: ReadonlySet<Role> = new Set(["ms", "mr", "ddt", "ddt-mr"]);

/** Options of {@link upTopology}: the lab's, plus what to start. */
export interface UpOptions extends Partial<LabOptions>, StartOptions {
  /** Build the network and write configs but start nothing. */
  readonly noStart?: boolean;
}

/**
 * Builds a topology as a lab (named `opts.name`, default the topology
 * name): tears down a lab of that name first, creates the network, writes
 * the configs and starts the runnable LISP processes. On failure the lab is
 * torn down before the error is thrown.
 */
export async function upTopology(
  topo: Topology,
  opts: UpOptions = {},
): Promise<StartResult & { lab: Lab }> {
  const lab = new Lab(topo, {
    name: opts.name ?? topo.name,
    ...(opts.dir !== undefined ? { dir: opts.dir } : {}),
    ...(opts.stateDir !== undefined ? { stateDir: opts.stateDir } : {}),
    ...(opts.stopTimeoutMs !== undefined ? { stopTimeoutMs: opts.stopTimeoutMs } : {}),
    ...(opts.log !== undefined ? { log: opts.log } : {}),
    topology: topo.name,
  });
  await lab.up();
  try {
    await writeConfigs(lab, topo);
    for (const s of topo.setup ?? []) {
      await lab.execOk(s.node, [...s.command, await lab.writeFile(s.file, s.text)]);
    }
    if (opts.noStart === true) {
      return { lab, started: [], skipped: topo.lisp.map((spec) => ({ spec, reason: "noStart" })) };
    }
    return { lab, ...(await startLisp(lab, topo, opts)) };
  } catch (e) {
    await lab.down().catch(() => {});
    throw e;
  }
}

/** What {@link lig} got back. */
export interface LigAnswer {
  /** Exit code of `oor lig` (0 reply, 1 no reply, 2 usage). */
  readonly code: number;
  /** Who replied (`address:port`), when someone did. */
  readonly replier?: string;
  /** Whether the reply was negative. */
  readonly negative?: boolean;
  /** EID prefix of the first record. */
  readonly eidPrefix?: string;
  /** Locator addresses of the first record. */
  readonly locators: readonly string[];
  /** The whole `--json` object, or undefined when the output was not JSON. */
  readonly json?: Record<string, unknown>;
  /** Standard error (diagnostics). */
  readonly stderr: string;
}

/**
 * Runs `oor lig <eid> --mr <mr> --json` inside `node` and parses what it
 * printed.
 */
export async function lig(
  lab: Lab,
  node: string,
  eid: string,
  mr: string,
  opts: { count?: number; timeoutS?: number } = {},
): Promise<LigAnswer> {
  const count = opts.count ?? 2;
  const timeoutS = opts.timeoutS ?? 1;
  const r = await lab.exec(node, [
    Deno.execPath(),
    "run",
    "-A",
    `${REPO_ROOT}/main.ts`,
    "lig",
    eid,
    "--mr",
    mr,
    "--count",
    String(count),
    "--timeout",
    String(timeoutS),
    "--json",
  ], { timeoutMs: (count * timeoutS + 15) * 1000 });
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(r.stdout) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  const records = (json?.["records"] ?? []) as {
    eidPrefix?: string;
    locators?: { address: string }[];
  }[];
  const first = records[0];
  return {
    code: r.code,
    ...(typeof json?.["replier"] === "string" ? { replier: json["replier"] } : {}),
    ...(typeof json?.["negative"] === "boolean" ? { negative: json["negative"] } : {}),
    ...(first?.eidPrefix !== undefined ? { eidPrefix: first.eidPrefix } : {}),
    locators: (first?.locators ?? []).map((l) => l.address),
    ...(json !== undefined ? { json } : {}),
    stderr: r.stderr,
  };
}
