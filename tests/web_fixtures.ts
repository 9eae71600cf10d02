/**
 * Test harness shared by the web tests: a real map-server (startMs) on
 * loopback with its HTTP API (startRoleApi, as runRole starts it), and an
 * xTR stand-in that sends it a signed Map-Register.
 *
 * @module
 */

import dgram from "node:dgram";
import { ipAddress } from "../wire/address.ts";
import { HmacKey } from "../wire/auth.ts";
import { ACTION, type EidRecord } from "../wire/eid_record.ts";
import { emitSignedMapRegister, type MapRegister } from "../wire/map_register.ts";
import { locatorRecord } from "../wire/locator.ts";
import { parseConfig } from "../config/mod.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { type RoleDeps } from "../core/role.ts";
import { startRoleApi } from "../runner/run_role.ts";
import { type MsHandle, startMs } from "../roles/ms.ts";
import type { ApiServer } from "../web/server.ts";

/** The site key of the test map-server. */
export const SITE_KEY = "web-test-key";

/** A running ms with its API. */
export interface MsWithApi {
  /** The map-server. */
  readonly ms: MsHandle;
  /** Its API server (port chosen by the system). */
  readonly api: ApiServer;
  /** Its deps (counters, logger). */
  readonly deps: RoleDeps;
  /** Log lines written. */
  readonly lines: string[];
  /** Sends a Map-Register of `prefix` with `rlocs` (and an xTR-ID) and waits until it is registered. */
  register(prefix: string, rlocs: string[], xtrId: bigint): Promise<void>;
  /** Stops the API and the ms. */
  close(): Promise<void>;
}

/** Starts an ms with two sites and a static registration, and its API on 127.0.0.1:0. */
export async function startMsWithApi(extraApi: string[] = []): Promise<MsWithApi> {
  const toml = [
    'operating-mode = "MS"',
    'control-address = "127.0.0.1"',
    "control-port = 0",
    "control-rate-limit = 0",
    "[api]",
    'listen = "127.0.0.1:9942"',
    ...extraApi,
    "[[lisp-site]]",
    'eid-prefix = "10.1.0.0/16"',
    "key-type = 1",
    `key = "${SITE_KEY}"`,
    "accept-more-specifics = true",
    "[[lisp-site]]",
    'eid-prefix = "fd00:1::/48"',
    "iid = 7",
    "key-type = 2",
    `key = "${SITE_KEY}"`,
    "[[ms-static-registered-site]]",
    'eid-prefix = "10.9.0.0/16"',
    "[[ms-static-registered-site.rloc-address]]",
    'address = "192.0.2.50"',
  ].join("\n");
  const r = parseConfig(toml, { role: "ms" });
  if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
  // Port 0 is not a valid `listen` in a file; tests ask for any free port.
  const config = { ...r.config, api: { ...r.config.api, port: 0 } };
  const lines: string[] = [];
  const deps: RoleDeps = {
    logger: new Logger({ role: "ms", level: "debug", sink: { write: (l) => lines.push(l) } }),
    counters: new Counters(),
    now: Date.now,
  };
  const ms = await startMs(config, deps);
  const api = await startRoleApi("ms", config, ms, deps);
  if (api === undefined) {
    await ms.close();
    throw new Error(`the API did not start:\n${lines.join("")}`);
  }
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => sock.bind(0, "127.0.0.1", resolve));
  let nonce = 1n;
  return {
    ms,
    api,
    deps,
    lines,
    async register(prefix, rlocs, xtrId) {
      const p = parsePrefix(prefix)!;
      const record: EidRecord = {
        ttl: 10,
        maskLen: p.len,
        action: ACTION.NO_ACTION,
        authoritative: true,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0,
        eid: prefixEid(p),
        locators: rlocs.map((a) => locatorRecord(ipAddress(a), 1, 100, { local: true })),
      };
      const m: MapRegister = {
        proxyReply: true,
        securityCapable: false,
        rtr: false,
        eidNotify: false,
        useTtlForTimeout: false,
        mergeRequest: false,
        mobileNode: false,
        wantMapNotify: false,
        nonce: nonce++,
        keyId: 1,
        authData: new Uint8Array(0),
        records: [record],
        xtrIdPresent: true,
        xtrId,
        siteId: 0x5en,
      };
      const bytes = emitSignedMapRegister(m, new HmacKey(1, SITE_KEY));
      sock.send(bytes, ms.port, "127.0.0.1");
      const end = Date.now() + 3000;
      while (!ms.registrations().some((x) => x.prefix === prefix && x.source === "map-register")) {
        if (Date.now() > end) throw new Error(`${prefix} was not registered:\n${lines.join("")}`);
        await new Promise((r) => setTimeout(r, 5));
      }
    },
    async close() {
      await new Promise<void>((resolve) => sock.close(() => resolve()));
      await api.close();
      await ms.close();
      deps.logger.close();
    },
  };
}
