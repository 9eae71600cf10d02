/**
 * What the map-server's message parts (answerer.ts, info.ts) are built
 * with: the role's logger, counters and clock, the control plane, the
 * configured sites, the registration store, and who hears of the
 * registrations a lookup finds expired.
 *
 * @module
 */

import type { ControlPlane } from "../../core/control.ts";
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
}
