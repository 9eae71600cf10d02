/**
 * A tunnel router's status page model (the shape of web/_page.ts's `PageModel`) with
 * something in every section: map-servers in each registration state,
 * remote RLOCs with and without a probe RTT, map-cache entries with their
 * origin, age and traffic, and counters with labels. For the page tests.
 *
 * @module
 */

import type { DatabaseView, MapCacheView, RoleStatus } from "../core/status.ts";

/** The shape of web/_page.ts's `PageModel` this model fills (that module is private to web/). */
export interface TunnelRouterPageModel {
  readonly role: string;
  readonly version: string;
  readonly startedAt: number;
  readonly now: number;
  readonly refresh: number;
  readonly edits: "none" | "no-token" | "enabled";
  readonly status: { readonly value: RoleStatus };
  readonly mapCache: { readonly value: readonly MapCacheView[] };
  readonly database: { readonly value: readonly DatabaseView[] };
  readonly sites: undefined;
  readonly referrals: undefined;
  readonly counters: { readonly value: Readonly<Record<string, number>> };
}

/** The model; `now` is the page's clock (ms since the epoch). */
export function tunnelRouterPage(now = Date.UTC(2025, 5, 1, 12, 0, 0)): TunnelRouterPageModel {
  const ago = (ms: number) => now - ms;
  return {
    role: "xtr",
    version: "0.0.0-test",
    startedAt: ago(3 * 86_400_000),
    now,
    refresh: 0,
    edits: "no-token",
    status: {
      value: {
        rlocs: [{ address: "192.0.2.1", state: "up", priority: 1, weight: 100 }],
        mapServers: [
          {
            address: "192.0.2.10",
            lastMapNotify: ago(20_000),
            lastMapRegister: ago(20_050),
            registered: true,
            state: "registered",
            failures: 0,
          },
          {
            address: "192.0.2.11",
            lastMapNotify: null,
            lastMapRegister: ago(4000),
            registered: false,
            state: "failing",
            failures: 7,
          },
          {
            address: "192.0.2.12",
            lastMapNotify: null,
            lastMapRegister: ago(500),
            registered: false,
            state: "registering",
            failures: 0,
          },
        ],
        remoteRlocs: [
          {
            address: "198.51.100.1",
            state: "up",
            rttMs: 12.5,
            sent: 9,
            answered: 9,
            lastAnswer: ago(3000),
          },
          {
            address: "198.51.100.2",
            state: "down",
            rttMs: null,
            sent: 6,
            answered: 0,
            lastAnswer: null,
          },
        ],
        details: { mode: "xtr" },
      },
    },
    mapCache: {
      value: [
        {
          eidPrefix: "10.2.0.0/24",
          iid: 0,
          kind: "positive",
          static: false,
          origin: "map-reply",
          ttl: 1440,
          expiresAt: now + 3_600_000,
          since: ago(3_660_000),
          packets: 1_234_567,
          bytes: 1_288_490_189,
          rlocs: [{ address: "198.51.100.1", priority: 1, weight: 100, state: "up" }],
        },
        {
          eidPrefix: "10.9.0.0/16",
          iid: 0,
          kind: "positive",
          static: true,
          origin: "config",
          expiresAt: null,
          since: ago(2 * 86_400_000),
          packets: 0,
          bytes: 0,
          rlocs: [{ address: "198.51.100.2", priority: 1, weight: 100, state: "down" }],
        },
      ],
    },
    database: { value: [] },
    sites: undefined,
    referrals: undefined,
    counters: {
      value: {
        'oor_dataplane_dropped_packets_total{reason="miss"}': 3,
        'oor_dataplane_dropped_packets_total{reason="too-big"}': 1,
        "oor_dataplane_encapsulated_packets_total": 1_234_567,
        'oor_tr_rloc_probe_rtt_seconds{rloc="198.51.100.1"}': 0.0125,
      },
    },
  };
}
