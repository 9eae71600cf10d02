/**
 * An mr's `[[map-server]]`s changed while it runs (the API's
 * `/api/v1/map-servers`, through `StatusSource.setPeers`): the next
 * forwarded Map-Request goes to the new list. An mr has no map-resolvers or
 * proxy-ETRs: lists of those are refused.
 *
 * @module
 */

import type { Config } from "../../config/mod.ts";
import type { Peer } from "../../core/control.ts";
import type { OwnAddresses } from "../../core/forward_guard.ts";
import type { Logger } from "../../core/log.ts";
import { type PeerLists, SourceError } from "../../core/status.ts";

/**
 * The `[[map-server]]`s that are not this resolver itself, worked out
 * again when the list changes or a second has passed (the host's
 * addresses are read again every 30 s), not per request.
 */
export class MapServerTargets {
  readonly #own: OwnAddresses;
  readonly #logger: Logger;
  #cache:
    | { readonly list: Config["mapServers"]; readonly at: number; readonly targets: Peer[] }
    | undefined;

  /** Targets that `own` says are not ourselves; a map-server that is ourselves is logged. */
  constructor(own: OwnAddresses, logger: Logger) {
    this.#own = own;
    this.#logger = logger;
  }

  /** The map-servers of `all` (on `port`) that are not ourselves, as of `now` (ms). */
  get(all: Config["mapServers"], port: number, now: number): readonly Peer[] {
    const t = this.#cache;
    if (t !== undefined && t.list === all && now - t.at < 1000) return t.targets;
    const own = this.#own;
    const targets = all.map((m) => ({ address: m.address, port })).filter((p) => !own.isSelf(p));
    if (targets.length < all.length) {
      this.#logger.limited("mr-map-server-is-self", 600_000, "warn", "mr-map-server-is-self", {
        "map-servers": all.map((m) => m.address).join(","),
        port,
      });
    }
    this.#cache = { list: all, at: now, targets };
    return targets;
  }
}

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
