/**
 * Benchmarks of the Map-Request codec: parse and emit of the common case,
 * an IPv4 Map-Request with one ITR-RLOC and one record (32 bytes).
 *
 * Run: `deno bench wire/map_request_bench.ts`.
 *
 * @module
 */

import { Reader } from "./cursor.ts";
import { readAddress } from "./address.ts";
import {
  emitMapRequest,
  type MapRequest,
  mapRequestLength,
  parseMapRequest,
} from "./map_request.ts";

const message: MapRequest = {
  authoritative: false,
  probe: false,
  smr: false,
  pitr: false,
  smrInvoked: false,
  localXtr: false,
  dontMapReply: false,
  nonce: 0x0123456789abcdefn,
  sourceEid: { kind: "ipv4", ip: "10.0.0.1" },
  itrRlocs: [{ kind: "ipv4", ip: "198.51.100.1" }],
  records: [{ maskLen: 24, eid: { kind: "ipv4", ip: "10.2.0.0" } }],
};

const bytes = emitMapRequest(message);
const out = new Uint8Array(1500);
let sink = 0;

Deno.bench(
  "parseMapRequest() IPv4, 1 ITR-RLOC, 1 record",
  { group: "parse", baseline: true },
  () => {
    sink ^= parseMapRequest(bytes).records.length;
  },
);

Deno.bench("emitMapRequest() IPv4 into a reused buffer", { group: "emit", baseline: true }, () => {
  sink ^= emitMapRequest(message, out, 0).length;
});

Deno.bench("emitMapRequest() IPv4 into a new buffer", { group: "emit" }, () => {
  sink ^= emitMapRequest(message).length;
});

Deno.bench("mapRequestLength() IPv4", { group: "emit" }, () => {
  sink ^= mapRequestLength(message);
});

// For comparison: the three readAddress() calls the parse makes, alone, with
// a constant field name and with a field name built per call.
const addrs = bytes.subarray(12);
Deno.bench("3 x readAddress() IPv4, constant field", { group: "address" }, () => {
  const r = new Reader(addrs);
  sink ^= readAddress(r, "f").kind.length;
  sink ^= readAddress(r, "f").kind.length;
  r.pos += 2;
  sink ^= readAddress(r, "f").kind.length;
});

let i = 0;
Deno.bench("3 x readAddress() IPv4, template-literal field", { group: "address" }, () => {
  const r = new Reader(addrs);
  i = (i + 1) & 7;
  sink ^= readAddress(r, `map-request.x[${i}]`).kind.length;
  sink ^= readAddress(r, `map-request.y[${i}]`).kind.length;
  r.pos += 2;
  sink ^= readAddress(r, `map-request.z[${i}]`).kind.length;
});

globalThis.addEventListener("unload", () => {
  if (sink === 0x7fffffff) console.log(sink);
});
