/**
 * An mr's `[[map-server]]`s changed while it runs (the API's
 * `/api/v1/map-servers`, through `StatusSource.setPeers`): the next
 * forwarded Map-Request goes to the new list. An mr has no map-resolvers or
 * proxy-ETRs: lists of those are refused.
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import { type PeerLists, SourceError } from "../../core/status.ts";

/**
 * `config` with the map-servers of `peers`, and what changed (one line
 * each). A ddt-mr (`ddt-root-addresses`) resolves through DDT and has none
 * to change.
 */
export function setMrMapServers(
  config: Config,
  peers: PeerLists,
): { config: Config; changes: string[] } {
  if (config.ddtRootAddresses.length > 0) {
    throw new SourceError(
      404,
      "this map-resolver resolves through DDT (ddt-root-addresses): it has no map-servers to edit",
    );
  }
  if (
    peers.mapResolvers.length > 0 || peers.proxyEtrsIpv4.length > 0 ||
    peers.proxyEtrsIpv6.length > 0
  ) {
    throw new SourceError(404, "this role (mr) has no map-resolvers or proxy-ETRs to edit");
  }
  const was = new Map(config.mapServers.map((m) => [m.address, JSON.stringify(m)]));
  const now = new Map(peers.mapServers.map((m) => [m.address, JSON.stringify(m)]));
  const changes: string[] = [];
  for (const [a, m] of now) {
    if (!was.has(a)) changes.push(`[[map-server]] ${a} added`);
    else if (was.get(a) !== m) changes.push(`[[map-server]] ${a} changed`);
  }
  for (const a of was.keys()) if (!now.has(a)) changes.push(`[[map-server]] ${a} removed`);
  return { config: { ...config, mapServers: peers.mapServers }, changes };
}
