/**
 * The RTR role (`oor rtr`): a re-encapsulating tunnel router. It
 * decapsulates LISP (or VXLAN-GPE) traffic sent to its locators, looks the
 * inner destination up in its own map-cache (filled by Map-Requests on
 * misses, and by `[[static-map-cache]]`) and encapsulates it again towards
 * that destination's locators. It has no TUN and no EID prefixes of its
 * own; its locators are the addresses of its `[[rtr-iface]]` interfaces,
 * and it answers RLOC-probes with them.
 *
 * The host gets the per-RLOC rules of OOR's README ("RTR mode"): `from
 * <RLOC> lookup x`, table x holding the routes of that interface; removed
 * on shutdown. See `_tunnel_router.ts` for the engine.
 *
 * @module
 */

import type { RoleStart } from "../core/role.ts";
import {
  startTunnelRouter,
  type TunnelRouterHandle,
  type TunnelRouterOptions,
} from "./tunnel_router/router.ts";

/** A running RTR. */
export type RtrHandle = TunnelRouterHandle;

/** Starts an RTR from `config` (options are for tests and embedding). */
export function startRtrWith(options: TunnelRouterOptions): RoleStart<RtrHandle> {
  return (config, deps) => startTunnelRouter("rtr", config, deps, options);
}

/** Starts an RTR from `config` on this host. */
export const startRtr: RoleStart<RtrHandle> = (config, deps) =>
  startTunnelRouter("rtr", config, deps);
