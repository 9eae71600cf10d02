/**
 * The xTR role (`oor xtr`): a site's tunnel router. As an ITR it
 * encapsulates traffic from its EID prefixes to the locators of the
 * destination (resolved through the map-resolvers); as an ETR it
 * decapsulates traffic for its EID prefixes, registers them with the
 * map-servers and answers Map-Requests and RLOC-probes for them.
 *
 * The host is set up as OOR's README ("xTR mode") shows: the TUN
 * (`tun-name`, `tun-mtu`) up; `to <EID-prefix> lookup main` (priority 99)
 * and `from <EID-prefix> lookup 100` (priority 100) for each EID prefix; a
 * default route into the TUN in table 100; `from <RLOC> lookup x` with
 * table x holding the routes of the RLOC's interface. Everything is
 * removed on shutdown. See `_tunnel_router.ts` for the engine.
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import {
  startTunnelRouter,
  type TunnelRouterHandle,
  type TunnelRouterOptions,
} from "./tunnel_router/router.ts";

/** A running xTR. */
export type XtrHandle = TunnelRouterHandle;

/** Starts an xTR from `config` (options are for tests and embedding). */
export function startXtrWith(options: TunnelRouterOptions): RoleStart<XtrHandle> {
  return (config, deps) => startTunnelRouter("xtr", config, deps, options);
}

/** Starts an xTR from `config` on this host. */
export const startXtr: RoleStart<XtrHandle> = (config, deps) =>
  startTunnelRouter("xtr", config, deps);
