/**
 * One-line description of a loaded config, for `oor check-config`.
 *
 * @module
 */

import type { Config } from "./schema.ts";

function count(n: number, one: string, many: string): string | undefined {
  if (n === 0) return undefined;
  return `${n} ${n === 1 ? one : many}`;
}

/**
 * `role xtr: 2 database mappings, 1 map-server, 1 map-resolver` — the role
 * and the number of entries in each non-empty section.
 */
export function describeConfig(c: Config): string {
  const parts = [
    count(c.databaseMappings.length, "database mapping", "database mappings"),
    count(c.staticMapCache.length, "static map-cache entry", "static map-cache entries"),
    count(c.instances.length, "instance", "instances"),
    count(c.destinationPrefixes.length, "destination prefix", "destination prefixes"),
    count(c.mapServers.length, "map-server", "map-servers"),
    count(c.mapResolvers.length, "map-resolver", "map-resolvers"),
    count(c.proxyEtrsIpv4.length, "IPv4 proxy-ETR", "IPv4 proxy-ETRs"),
    count(c.proxyEtrsIpv6.length, "IPv6 proxy-ETR", "IPv6 proxy-ETRs"),
    count(c.proxyItrs.length, "proxy-ITR", "proxy-ITRs"),
    count(c.rtrIfaces.length, "RTR interface", "RTR interfaces"),
    count(c.rtrMsNodes.length, "RTR map-server node", "RTR map-server nodes"),
    count(c.lispSites.length, "lisp-site", "lisp-sites"),
    count(c.msStaticRegisteredSites.length, "static registered site", "static registered sites"),
    count(c.msRtrNodes.length, "RTR node", "RTR nodes"),
    count(c.msRtrsSets.length, "RTR set", "RTR sets"),
    count(c.ddtAuthSites.length, "DDT authoritative site", "DDT authoritative sites"),
    count(c.ddtDelegSites.length, "DDT delegation", "DDT delegations"),
    count(c.ddtRootAddresses.length, "DDT root", "DDT roots"),
    count(c.explicitLocatorPaths.length, "explicit locator path", "explicit locator paths"),
  ].filter((p): p is string => p !== undefined);
  if (c.natTraversalSupport) parts.push("NAT traversal on");
  const head = c.role !== undefined ? `role ${c.role}` : "no role given";
  return parts.length > 0 ? `${head}: ${parts.join(", ")}` : head;
}
