/**
 * What the map-server's main thread costs per verified Map-Register, without
 * sockets, Workers or a kernel: the Map-Register parsed (as roles/ms.ts does
 * with what a Worker hands over), checked and applied by the registrar
 * (limits, store), the answer table republished for its prefix, and the
 * Map-Notify let go (the Worker's callback). The messages are the load
 * generator's (scripts/_loadgen_worker.ts: P and M bits, an xTR-ID, one /24
 * with one RLOC, key type 2) for 16,384 prefixes of a site with
 * `accept-more-specifics`; each iteration applies the next 64 of them,
 * after a first pass at load, so every one is a refresh that changes
 * nothing, as in `deno task bench:control`'s register phases: the
 * registrar's cheap path (`Registrar.refreshVerified`), tried first as
 * roles/ms.ts does. Per Map-Register is the figure divided by 64. On a
 * machine other work shares, compare the ratio of two trees run back to
 * back, not the times.
 *
 * Run: `deno bench -A roles/map_server/register_bench.ts`.
 *
 * @module
 */

import type { ControlPlane, Peer, Received } from "../../core/control.ts";
import { Counters } from "../../core/counters.ts";
import { Logger } from "../../core/log.ts";
import { parseConfig } from "../../config/mod.ts";
import { ipAddress } from "../../wire/address.ts";
import { HmacKey } from "../../wire/auth.ts";
import { locatorRecord } from "../../wire/locator.ts";
import { emitSignedMapRegister, parseMapRegister } from "../../wire/map_register.ts";
import { AnswerTable } from "./answers.ts";
import { AnswerPublisher } from "./publisher.ts";
import { Registrar } from "./registrar.ts";
import { RegistrationStore } from "./registrations.ts";
import { Sites } from "./sites.ts";

const PREFIXES = 16_384;
const BATCH = 64;

const text = [
  'operating-mode = "MS"',
  'control-address = "127.0.0.1"',
  "control-port = 0",
  "[[lisp-site]]",
  'eid-prefix = "10.0.0.0/8"',
  "key-type = 2",
  'key = "bench-key"',
  "accept-more-specifics = true",
  `max-registrations = ${PREFIXES * 2}`,
].join("\n");
const parsed = parseConfig(text, { role: "ms" });
if (!parsed.ok) throw new Error(parsed.errors.map(String).join("\n"));
const config = parsed.config;
const key = new HmacKey(2, "bench-key");

const messages: Uint8Array[] = [];
for (let i = 0; i < PREFIXES; i++) {
  messages.push(emitSignedMapRegister({
    proxyReply: true,
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce: (1n << 32n) | BigInt(i),
    keyId: 2,
    authData: new Uint8Array(0),
    records: [{
      ttl: 1440,
      maskLen: 24,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: ipAddress(`10.${i >> 8}.${i & 255}.0`),
      locators: [
        locatorRecord(ipAddress(`127.0.1.${(i % 250) + 1}`), 1, 100, { local: true }),
      ],
    }],
    xtrId: 0x0123456789abcdefn,
    siteId: 1n,
  }, key));
}

const deps = {
  logger: new Logger({ role: "ms", sink: { write: () => {} } }),
  counters: new Counters(),
  now: () => Date.now(),
};
const cp = { on: () => {}, send: () => {} } as unknown as ControlPlane;
const sites = new Sites(config);
const store = new RegistrationStore();
const registrar = new Registrar(deps, cp, sites, store);
new AnswerPublisher(new AnswerTable(), store, sites, deps.now);

let notified = 0;
const notify = () => void notified++;
let next = 0;

/** As roles/ms.ts's #registerVerified: a refresh that changes nothing, or parse, then the registrar. */
function apply(bytes: Uint8Array, from: Peer): void {
  if (registrar.refreshVerified(bytes, from, notify)) return;
  const m = parseMapRegister(bytes);
  const r: Received = {
    message: { type: "map-register", msg: m },
    bytes,
    from,
    via: "control",
  } as Received;
  registrar.registerVerified(r, m, notify);
}

const peers: Peer[] = [];
for (let i = 0; i < 250; i++) peers.push({ address: `192.0.2.${i + 1}`, port: 4342 });

/** One iteration: the next {@link BATCH} Map-Registers applied. */
export function applyBatch(): void {
  for (let k = 0; k < BATCH; k++) {
    const i = next;
    next = (next + 1) % PREFIXES;
    apply(messages[i]!, peers[i % 250]!);
  }
  if (notified === 0) throw new Error("no Map-Notify let go");
}

// The first pass (each prefix registered) before the bench: its iterations are refreshes.
for (let i = 0; i < PREFIXES / BATCH; i++) applyBatch();

Deno.bench({
  name: `ms main thread: ${BATCH} verified Map-Registers (refreshes of ${PREFIXES} /24s)`,
  fn: applyBatch,
});
