/**
 * A tunnel router's peers changed while it runs (a configuration reload,
 * runner/reload.ts): its `[[map-server]]`s, `map-resolver`s and
 * `[[proxy-etr-ipv4]]`/`[[proxy-etr-ipv6]]`s.
 *
 * {@link applyPeers} puts the new lists in the router's config (every part
 * reads them there when it acts: the resolver picks map-resolvers per
 * Map-Request, registration the map-servers), then tells the parts that
 * keep state of their own: registration withdraws from map-servers gone
 * or changed and registers at once with new ones (registration.ts
 * `mapServersChanged`), and the data-plane Workers get the new proxy-ETRs.
 * Traffic to cached EIDs goes on meanwhile: the map-cache is kept.
 *
 * Kept from the start: the ITR-RLOC preferred for the first map-resolver's
 * route, and behind a NAT the map-servers the Info-Requests go to.
 *
 * @module
 */

import type { Config, MapServer, ProxyEtr } from "../../config/mod.ts";
import type { PeerLists } from "../../core/status.ts";
import type { Env } from "./context.ts";

/** What the parts that keep state of the peers must do (see the module notes). */
export interface PeerParts {
  /** Reconciles the registrations with `env.config.mapServers`; what changed. */
  readonly mapServersChanged?: () => string[];
  /** Gives the data plane the new proxy-ETRs. */
  readonly setPetrs: (v4: readonly ProxyEtr[], v6: readonly ProxyEtr[]) => void;
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** The lines that say how `next` differs from `old`, one per list entry, by address. */
export function peerChanges(old: PeerLists, next: PeerLists): string[] {
  const out: string[] = [];
  const byAddress = <T>(
    what: string,
    a: readonly T[],
    b: readonly T[],
    address: (x: T) => string,
  ) => {
    const before = new Map(a.map((x) => [address(x), x] as const));
    const after = new Map(b.map((x) => [address(x), x] as const));
    for (const [k, x] of after) {
      const o = before.get(k);
      if (o === undefined) out.push(`${what} ${k} added`);
      else if (!same(o, x)) out.push(`${what} ${k} changed`);
    }
    for (const k of before.keys()) if (!after.has(k)) out.push(`${what} ${k} removed`);
  };
  byAddress<MapServer>("map-server", old.mapServers, next.mapServers, (m) => m.address);
  byAddress<string>("map-resolver", old.mapResolvers, next.mapResolvers, (m) => m);
  if (out.length === 0 && !same(old.mapResolvers, next.mapResolvers)) {
    out.push("map-resolver order changed");
  }
  byAddress<ProxyEtr>("proxy-etr-ipv4", old.proxyEtrsIpv4, next.proxyEtrsIpv4, (p) => p.address);
  byAddress<ProxyEtr>("proxy-etr-ipv6", old.proxyEtrsIpv6, next.proxyEtrsIpv6, (p) => p.address);
  return out;
}

/**
 * Takes `next` as the router's peers (see the module notes): logs one
 * `peer-changed` line per change and returns them; nothing when nothing
 * differs.
 */
export function applyPeers(env: Env, next: PeerLists, parts: PeerParts): string[] {
  const old = env.config;
  const changes = peerChanges(old, next);
  if (changes.length === 0) return [];
  // The one place the config of a running router changes: every part reads it from here.
  (env as { config: Config }).config = {
    ...old,
    mapServers: next.mapServers,
    mapResolvers: next.mapResolvers,
    proxyEtrsIpv4: next.proxyEtrsIpv4,
    proxyEtrsIpv6: next.proxyEtrsIpv6,
  };
  if (!same(old.mapServers, next.mapServers)) parts.mapServersChanged?.();
  if (
    !same(old.proxyEtrsIpv4, next.proxyEtrsIpv4) || !same(old.proxyEtrsIpv6, next.proxyEtrsIpv6)
  ) {
    parts.setPetrs(next.proxyEtrsIpv4, next.proxyEtrsIpv6);
  }
  for (const c of changes) env.log.info("peer-changed", { change: c });
  return changes;
}
