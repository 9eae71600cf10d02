/**
 * `deno task lab status` draws each lab: its nodes, the links between them
 * and the addresses on both ends, as they are now (read from the
 * namespaces with `ip -j`, so an address that moved shows where it went),
 * with the LISP processes of each node.
 *
 * ```
 * router
 * ├── to-mn 100.64.1.1/24 ─── rloc0 100.64.1.3/24  mn  [mn: mn, running]
 * │     lispTun0 10.3.0.5/32
 * └── to-ms 100.64.100.1/24 ─── eth0 100.64.100.2/24 100.64.100.3/24  ms  [ms: ms, running]
 * ```
 *
 * @module
 */

import { labNamespaces, run } from "./topology.ts";

/** One interface of a node. */
export interface NetIface {
  /** Its name. */
  readonly name: string;
  /** Addresses with their prefix length (no IPv6 link-local ones). */
  readonly addresses: readonly string[];
  /** Whether it is up. */
  readonly up: boolean;
  /** `veth`, `tun`, ... when the kernel says. */
  readonly kind?: string;
}

/** One node (namespace) of a lab. */
export interface NetNode {
  /** The node's name (`router`, `xtr1`). */
  readonly name: string;
  /** Its interfaces but loopback. */
  readonly ifaces: readonly NetIface[];
}

/** A veth pair between two nodes. */
export interface NetLink {
  /** One end: node and interface. */
  readonly a: { readonly node: string; readonly iface: string };
  /** The other end. */
  readonly b: { readonly node: string; readonly iface: string };
}

/** A lab's network as it is. */
export interface NetModel {
  /** Its nodes, by name. */
  readonly nodes: readonly NetNode[];
  /** The links between them. */
  readonly links: readonly NetLink[];
}

interface IpLink {
  ifindex: number;
  ifname: string;
  link_index?: number;
  link_netnsid?: number;
  operstate?: string;
  flags?: string[];
  linkinfo?: { info_kind?: string };
  addr_info?: { family: string; local: string; prefixlen: number; scope?: string }[];
}

/** Reads the network of `lab` from its namespaces (needs root). */
export async function readNetwork(lab: string): Promise<NetModel> {
  const spaces = await labNamespaces(lab);
  const byNs = new Map(spaces.map((s) => [s.ns, s.node]));
  const ifaces = new Map<string, IpLink[]>();
  const nsids = new Map<string, Map<number, string>>();
  for (const { ns, node } of spaces) {
    const addr = await run(["ip", "-n", ns, "-j", "-d", "addr", "show"]);
    ifaces.set(node, addr.code === 0 ? JSON.parse(addr.stdout || "[]") as IpLink[] : []);
    const ids = await run(["ip", "-n", ns, "-j", "netns", "list-id"]);
    const m = new Map<number, string>();
    if (ids.code === 0) {
      for (const x of JSON.parse(ids.stdout || "[]") as { nsid: number; name?: string }[]) {
        if (x.name !== undefined) m.set(x.nsid, x.name);
      }
    }
    nsids.set(node, m);
  }
  const nodes: NetNode[] = [];
  const links: NetLink[] = [];
  const seen = new Set<string>();
  for (const { node } of spaces) {
    const list = ifaces.get(node) ?? [];
    const out: NetIface[] = [];
    for (const l of list) {
      if (l.ifname === "lo") continue;
      const addresses = (l.addr_info ?? [])
        .filter((a) => !(a.family === "inet6" && a.scope === "link"))
        .map((a) => `${a.local}/${a.prefixlen}`);
      const kind = l.linkinfo?.info_kind;
      const up = l.operstate === "UP" ||
        l.operstate === "UNKNOWN" && (l.flags ?? []).includes("UP");
      out.push({ name: l.ifname, addresses, up, ...(kind !== undefined ? { kind } : {}) });
      // The other end of a veth: an interface of another node of the lab.
      if (kind !== "veth" || l.link_netnsid === undefined || l.link_index === undefined) continue;
      const peerNs = nsids.get(node)?.get(l.link_netnsid);
      const peer = peerNs !== undefined ? byNs.get(peerNs) : undefined;
      if (peer === undefined) continue;
      const peerIf = (ifaces.get(peer) ?? []).find((p) => p.ifindex === l.link_index);
      if (peerIf === undefined) continue;
      const key = [`${node}/${l.ifname}`, `${peer}/${peerIf.ifname}`].sort().join(" ");
      if (seen.has(key)) continue;
      seen.add(key);
      links.push({ a: { node, iface: l.ifname }, b: { node: peer, iface: peerIf.ifname } });
    }
    nodes.push({ name: node, ifaces: out });
  }
  return { nodes, links };
}

/**
 * The network drawn as a tree from its busiest node (the router), one
 * line per link with the interfaces and addresses of both ends, then the
 * other interfaces of each node (a TUN and its EID). `notes` adds text
 * after a node's name (its processes). A second link to a node already
 * drawn (multihoming) is drawn as a link to it, without its subtree again.
 */
export function drawNetwork(
  model: NetModel,
  notes: ReadonlyMap<string, string> = new Map(),
): string[] {
  const nodes = new Map(model.nodes.map((n) => [n.name, n]));
  const linksOf = (name: string) =>
    model.links.flatMap((l) =>
      l.a.node === name
        ? [{ local: l.a.iface, peer: l.b.node, peerIface: l.b.iface }]
        : l.b.node === name
        ? [{ local: l.b.iface, peer: l.a.node, peerIface: l.a.iface }]
        : []
    );
  const iface = (node: string, name: string) => {
    const i = nodes.get(node)?.ifaces.find((x) => x.name === name);
    if (i === undefined) return name;
    return [name, ...i.addresses, ...(i.up ? [] : ["(down)"])].join(" ");
  };
  const linked = new Set(
    model.links.flatMap((l) => [`${l.a.node}/${l.a.iface}`, `${l.b.node}/${l.b.iface}`]),
  );
  const label = (name: string) => {
    const note = notes.get(name);
    return note !== undefined ? `${name}  ${note}` : name;
  };
  const out: string[] = [];
  const drawn = new Set<string>();
  const usedLinks = new Set<string>();
  const extras = (name: string, prefix: string) => {
    for (const i of nodes.get(name)?.ifaces ?? []) {
      if (linked.has(`${name}/${i.name}`)) continue;
      out.push(`${prefix}  ${iface(name, i.name)}`);
    }
  };
  const walk = (name: string, prefix: string) => {
    const children = linksOf(name).filter((c) =>
      !usedLinks.has(linkKey(name, c.local, c.peer, c.peerIface))
    );
    for (const c of children) usedLinks.add(linkKey(name, c.local, c.peer, c.peerIface));
    children.forEach((c, i) => {
      const last = i === children.length - 1;
      const again = drawn.has(c.peer);
      out.push(
        `${prefix}${last ? "└── " : "├── "}${iface(name, c.local)} ─── ` +
          `${iface(c.peer, c.peerIface)}  ${again ? `${c.peer} (again)` : label(c.peer)}`,
      );
      if (again) return;
      drawn.add(c.peer);
      const inner = `${prefix}${last ? "    " : "│   "}`;
      extras(c.peer, inner);
      walk(c.peer, inner);
    });
  };
  const order = [...nodes.keys()].sort((x, y) =>
    linksOf(y).length - linksOf(x).length || x.localeCompare(y)
  );
  for (const root of order) {
    if (drawn.has(root)) continue;
    drawn.add(root);
    out.push(label(root));
    extras(root, "");
    walk(root, "");
  }
  return out;
}

function linkKey(a: string, ai: string, b: string, bi: string): string {
  return [`${a}/${ai}`, `${b}/${bi}`].sort().join(" ");
}
