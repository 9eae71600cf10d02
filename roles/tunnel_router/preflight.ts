/**
 * {@link preflight}: the rp_filter and forwarding checks a tunnel router
 * runs at start, each finding saying exactly which sysctl to change.
 *
 * @module
 */

import type { IpFamily } from "../../ffi/mod.ts";

/** One sysctl that should be changed. */
export interface PreflightFinding {
  /** The sysctl key, e.g. `net.ipv4.ip_forward`. */
  readonly key: string;
  /** Its current value. */
  readonly value: string;
  /** What it should be. */
  readonly want: string;
  /** Why. */
  readonly why: string;
  /** The command that fixes it. */
  readonly fix: string;
}

/** What {@link preflight} checks. */
export interface PreflightInput {
  /** Whether the role forwards between interfaces (xtr, rtr). */
  readonly forwarding: boolean;
  /** Families whose forwarding matters. */
  readonly families: ReadonlySet<IpFamily>;
  /** Names of the RLOC interfaces (their rp_filter is checked). */
  readonly rlocIfaces: readonly string[];
}

/**
 * Checks the sysctls a tunnel router depends on (OOR README: "Make sure
 * that rp_filter kernel network parameter is disabled ... Make sure too
 * that IP forwarding is enabled"): reverse-path filtering must be off (0)
 * or loose (2) for `all` and each RLOC interface, since encapsulated
 * traffic may arrive on an interface that is not the route back to its
 * source; and forwarding must be on for xtr and rtr. Returns what to
 * change; reads only.
 */
export function preflight(
  read: (path: readonly string[]) => string | undefined,
  input: PreflightInput,
): PreflightFinding[] {
  const out: PreflightFinding[] = [];
  const check = (path: string[], ok: (v: string) => boolean, want: string, why: string) => {
    const v = read(path);
    if (v === undefined || ok(v)) return;
    const key = path.join(".");
    out.push({ key, value: v, want, why, fix: `sysctl -w ${key}=${want}` });
  };
  const rpWhy = "strict reverse-path filtering drops encapsulated packets that arrive on " +
    "another interface than the route back to their source; use 0 (off) or 2 (loose)";
  if (input.families.has("ipv4") || input.rlocIfaces.length > 0) {
    check(["net", "ipv4", "conf", "all", "rp_filter"], (v) => v !== "1", "0", rpWhy);
    for (const iface of new Set(input.rlocIfaces)) {
      check(["net", "ipv4", "conf", iface, "rp_filter"], (v) => v !== "1", "0", rpWhy);
    }
  }
  if (input.forwarding) {
    const why = "the router forwards packets between its interfaces and the TUN";
    if (input.families.has("ipv4")) {
      check(["net", "ipv4", "ip_forward"], (v) => v === "1", "1", why);
    }
    if (input.families.has("ipv6")) {
      check(["net", "ipv6", "conf", "all", "forwarding"], (v) => v === "1", "1", why);
    }
  }
  return out;
}
