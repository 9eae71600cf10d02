/**
 * What the map-server's message parts (answerer.ts, info.ts) are built
 * with: the role's logger, counters and clock, the control plane, the
 * configured sites, the registration store, who hears of the
 * registrations a lookup finds expired, and the checks before a
 * Map-Request is forwarded (core/forward_guard.ts).
 *
 * @module
 */

import type { ControlPlane, Received } from "../../core/control.ts";
import type { MapRequest } from "../../wire/map_request.ts";
import type { ForwardGuard } from "../../core/forward_guard.ts";
import type { RoleDeps } from "../../core/role.ts";
import type { Registration, RegistrationStore } from "./registrations.ts";
import type { Sites } from "./sites.ts";

/** The shared context of the map-server's parts. */
export interface MsContext {
  readonly deps: RoleDeps;
  readonly cp: ControlPlane;
  readonly sites: Sites;
  readonly store: RegistrationStore;
  /** Hears of each registration a lookup finds expired. */
  readonly expired: (r: Registration) => void;
  /** Not to ourselves, inner TTL left, not forwarded a moment ago. */
  readonly guard: ForwardGuard;
  /** Hears of each Map-Request once answered, to keep its subscription (RFC 9437). */
  readonly subscribe?: (r: Received, m: MapRequest) => void;
}
