/**
 * Benchmarks of the Map-Register codec on an 88-byte message: key ID 2
 * (32 bytes of authentication data), one IPv4 EID record, two IPv4
 * locators. The goal is more than 1M parses and 1M emits a second.
 *
 * Run: `deno bench wire/map_register_bench.ts`
 *
 * @module
 */

import { locatorRecord } from "./locator.ts";
import {
  emitMapRegister,
  type MapRegister,
  mapRegisterLength,
  parseMapRegister,
} from "./map_register.ts";
import { emitMapNotify, type MapNotify, parseMapNotify } from "./map_notify.ts";

const msg: MapRegister = {
  proxyReply: false,
  securityCapable: false,
  xtrIdPresent: false,
  rtr: false,
  eidNotify: false,
  useTtlForTimeout: false,
  mergeRequest: false,
  mobileNode: false,
  wantMapNotify: true,
  nonce: 0x0123456789abcdefn,
  keyId: 2,
  authData: new Uint8Array(32).fill(0x5a),
  records: [{
    ttl: 1440,
    maskLen: 24,
    action: 0,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: { kind: "ipv4", ip: "192.0.2.0" },
    locators: [
      locatorRecord({ kind: "ipv4", ip: "203.0.113.1" }, 1, 100, { local: true }),
      locatorRecord({ kind: "ipv4", ip: "198.51.100.2" }, 2, 50),
    ],
  }],
};

const bytes = emitMapRegister(msg);
if (bytes.length !== 88) throw new Error(`expected 88 bytes, got ${bytes.length}`);
const buf = new Uint8Array(mapRegisterLength(msg));

const notify: MapNotify = {
  ack: false,
  xtrIdPresent: false,
  rtrAuthPresent: false,
  nonce: msg.nonce,
  keyId: msg.keyId,
  authData: msg.authData,
  records: msg.records,
};
const notifyBytes = emitMapNotify(notify);

let sink = 0;

Deno.bench("parseMapRegister() 88 bytes, 1 record, 2 IPv4 locators", { group: "parse" }, () => {
  sink ^= parseMapRegister(bytes).records.length;
});

Deno.bench("parseMapNotify() 88 bytes, 1 record, 2 IPv4 locators", { group: "parse" }, () => {
  sink ^= parseMapNotify(notifyBytes).records.length;
});

Deno.bench("emitMapRegister() into a new buffer", { group: "emit" }, () => {
  sink ^= emitMapRegister(msg).length;
});

Deno.bench("emitMapRegister() into a reused buffer", { group: "emit" }, () => {
  sink ^= emitMapRegister(msg, buf, 0).length;
});

Deno.bench("emitMapNotify() into a new buffer", { group: "emit" }, () => {
  sink ^= emitMapNotify(notify).length;
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
