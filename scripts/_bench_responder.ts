/**
 * The transport ceiling of `deno task bench:control --servers transport`:
 * a process with the ms's ControlPlane (core/control.ts) and codecs but no
 * map-server logic beyond an exact-match Map of the registered /24s. It
 * checks the HMAC of a Map-Register (key type 1 or 2, with the key of that
 * type), keeps its records, answers with a signed Map-Notify; it answers an
 * ECM'd Map-Request with the record of the host's /24, or negatively. What
 * the ms does on top of this costs the difference.
 *
 * Prints `responder-listening port=N` on standard error once bound; stops on
 * SIGINT or SIGTERM.
 *
 * ```
 * deno run -A scripts/_bench_responder.ts [--address 127.0.0.1] [--port 4342]
 *   [--kt1-key K] [--kt2-key K]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { authStatus, HmacKey, KEY_ID_HMAC_SHA1_96, KEY_ID_HMAC_SHA256_128 } from "../wire/auth.ts";
import type { EidRecord } from "../wire/eid_record.ts";
import { emitMapReply } from "../wire/map_reply.ts";
import { emitSignedMapNotify } from "../wire/map_notify.ts";

/** Starts the responder; resolves to its port and a close function. */
export async function startResponder(opts: {
  readonly address: string;
  readonly port: number;
  readonly kt1Key: string;
  readonly kt2Key: string;
}): Promise<{ readonly port: number; close(): void }> {
  const counters = new Counters();
  const logger = new Logger({ role: "bench-responder", level: "error" });
  const cp = await ControlPlane.open({
    logger,
    counters,
    address: opts.address,
    port: opts.port,
  });
  const keys = new Map<number, HmacKey>([
    [KEY_ID_HMAC_SHA1_96, new HmacKey(KEY_ID_HMAC_SHA1_96, opts.kt1Key)],
    [KEY_ID_HMAC_SHA256_128, new HmacKey(KEY_ID_HMAC_SHA256_128, opts.kt2Key)],
  ]);
  const table = new Map<string, EidRecord>();
  cp.on("map-register", (m, r) => {
    const key = keys.get(m.keyId);
    if (key === undefined || authStatus(r.bytes, key) !== "ok") return;
    for (const rec of m.records) {
      if (rec.eid.kind === "ipv4") table.set(`${rec.eid.ip}/${rec.maskLen}`, rec);
    }
    if (!m.wantMapNotify) return;
    cp.send(
      emitSignedMapNotify({
        ack: false,
        xtrIdPresent: m.xtrIdPresent,
        rtrAuthPresent: false,
        nonce: m.nonce,
        keyId: m.keyId,
        authData: new Uint8Array(0),
        records: m.records,
        ...(m.xtrIdPresent ? { xtrId: m.xtrId!, siteId: m.siteId! } : {}),
      }, key),
      r.from,
    );
  });
  cp.on("map-request", (m, r) => {
    if (r.ecm === undefined) return;
    const q = m.records[0];
    const itr = m.itrRlocs[0];
    if (q === undefined || itr === undefined || itr.kind !== "ipv4") return;
    const ip = q.eid.kind === "ipv4" ? q.eid.ip : "";
    const rec = table.get(`${ip.slice(0, ip.lastIndexOf("."))}.0/24`);
    const records: EidRecord[] = rec !== undefined ? [rec] : [{
      ttl: 1,
      maskLen: 32,
      action: 1,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: q.eid,
      locators: [],
    }];
    cp.send(
      emitMapReply({ probe: false, echoNonce: false, security: false, nonce: m.nonce, records }),
      { address: itr.ip, port: r.ecm.inner.srcPort },
    );
  });
  return { port: cp.port, close: () => cp.close() };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      address: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "4342" },
      "kt1-key": { type: "string", default: "bench-key-1" },
      "kt2-key": { type: "string", default: "bench-key-2" },
    },
  });
  const r = await startResponder({
    address: values.address,
    port: Number(values.port),
    kt1Key: values["kt1-key"],
    kt2Key: values["kt2-key"],
  });
  console.error(`responder-listening port=${r.port}`);
  const stop = () => {
    r.close();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
}

if (import.meta.main) await main();
