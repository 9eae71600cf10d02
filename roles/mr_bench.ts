/**
 * What a map-resolver's own code costs per request, without sockets or a
 * kernel: an `mr` forwarding ECM'd Map-Requests to its map-server, and a
 * `ddt-mr` resolving each through DDT (its own DDT Map-Request to the
 * map-server a root referred it to, the MS-ACK and the map-server's answer
 * to its query back, then the ITR's request forwarded). The control port is
 * an in-memory {@link ControlTransport}: what the resolver sends is answered
 * from prebuilt messages (nonce copied in), delivered in one batch a task
 * later as the batched transport would. Each iteration is 64 ITR requests
 * taken in one batch, and ends when all 64 are forwarded; per request is
 * the figure divided by 64. On a machine other work shares, compare the two
 * groups' ratio, not their times.
 *
 * Run: `deno bench -A roles/mr_bench.ts`.
 *
 * @module
 */

import type { ControlTransport, Peer, TransportHooks } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parseConfig } from "../config/mod.ts";
import { ipAddress } from "../wire/address.ts";
import { ECM_FLAG_D, emitEcm } from "../wire/ecm.ts";
import { ACTION, REFERRAL_ACTION } from "../wire/eid_record.ts";
import { locatorRecord } from "../wire/locator.ts";
import { emitMapReferral } from "../wire/map_referral.ts";
import { emitMapReply } from "../wire/map_reply.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { type MrHandle, mrStarter } from "./mr.ts";

const SELF = "127.0.0.1";
const MS = "127.0.0.2";
const ROOT = "127.0.0.3";
const ITR = "192.0.2.9";
const BATCH = 64;
/** Offset of the nonce of the Map-Request inside an ECM over IPv4 (4 + 20 + 8 + 4). */
const ECM_NONCE = 36;

function referral(action: number, node: string): Uint8Array {
  return emitMapReferral({
    nonce: 0n,
    records: [{
      record: {
        ttl: 1440,
        maskLen: 8,
        action,
        authoritative: true,
        incomplete: false,
        sigCount: 0,
        mapVersion: 0,
        eid: { kind: "ipv4", ip: "10.0.0.0" },
        locators: [locatorRecord(ipAddress(node))],
      },
      signatures: [],
    }],
  });
}

/** The map-server's proxy Map-Reply to the ddt-mr's own query (which it counts and drops). */
const REPLY = emitMapReply({
  probe: false,
  echoNonce: false,
  security: false,
  nonce: 0n,
  records: [{
    ttl: 1440,
    maskLen: 8,
    action: ACTION.NO_ACTION,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: { kind: "ipv4", ip: "10.0.0.0" },
    locators: [locatorRecord(ipAddress("192.0.2.1"))],
  }],
});
const MS_REFERRAL = referral(REFERRAL_ACTION.MS_REFERRAL, MS);
const MS_ACK = referral(REFERRAL_ACTION.MS_ACK, MS);

/** The ms and the DDT root in memory: answers what the resolver sends, counts its forwards. */
class Network implements ControlTransport {
  readonly address = SELF;
  readonly port = 4342;
  hooks!: TransportHooks;
  forwarded = 0;
  #due: { bytes: Uint8Array; from: Peer }[] = [];
  #scheduled = false;
  #waiting: { count: number; done: () => void } | undefined;

  send(bytes: Uint8Array, to: Peer): boolean {
    if (to.address === MS && (bytes[0]! & ECM_FLAG_D) === 0) {
      this.forwarded++;
      if (this.#waiting !== undefined && this.forwarded >= this.#waiting.count) {
        const w = this.#waiting;
        this.#waiting = undefined;
        w.done();
      }
      return true;
    }
    const nonce = bytes.subarray(ECM_NONCE, ECM_NONCE + 8);
    const answer = (template: Uint8Array, from: string) => {
      const b = template.slice();
      b.set(nonce, 4);
      this.#due.push({ bytes: b, from: { address: from, port: 4342 } });
    };
    if (to.address === ROOT) answer(MS_REFERRAL, ROOT);
    else {
      answer(MS_ACK, MS);
      answer(REPLY, MS);
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.#deliver(), 0);
    }
    return true;
  }

  #deliver(): void {
    this.#scheduled = false;
    const due = this.#due;
    this.#due = [];
    for (const d of due) this.hooks.receive(d.bytes, d.from);
  }

  /** Hands `requests` to the resolver in one batch; resolves once all are forwarded. */
  run(requests: readonly Uint8Array[]): Promise<void> {
    const target = this.forwarded + requests.length;
    const done = new Promise<void>((resolve) => this.#waiting = { count: target, done: resolve });
    for (const r of requests) this.hooks.receive(r, { address: ITR, port: 40000 });
    return done;
  }

  rebind(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

let seq = 0;

/** `BATCH` ITR requests for distinct hosts of 10.0.0.0/8, nonces never used before. */
export function requests(): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < BATCH; i++) {
    const n = ++seq;
    const eid = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    out.push(emitEcm({
      security: false,
      ddtOriginated: false,
      forRtr: false,
      rtrRelayed: false,
      inner: { src: ITR, dst: eid, srcPort: 40000, dstPort: 4342, ttl: 64 },
      payload: emitMapRequest({
        authoritative: false,
        probe: false,
        smr: false,
        pitr: false,
        smrInvoked: false,
        localXtr: false,
        dontMapReply: false,
        nonce: BigInt(n) << 20n,
        sourceEid: { kind: "none" },
        itrRlocs: [{ kind: "ipv4", ip: ITR }],
        records: [{ maskLen: 32, eid: { kind: "ipv4", ip: eid } }],
      }),
    }));
  }
  return out;
}

export async function start(role: "mr" | "ddt-mr"): Promise<{ mr: MrHandle; net: Network }> {
  const toml = role === "mr"
    ? `control-address = "${SELF}"\ncontrol-rate-limit = 0\n[[map-server]]\naddress = "${MS}"\n`
    : `control-address = "${SELF}"\ncontrol-rate-limit = 0\nddt-root-addresses = ["${ROOT}"]\n`;
  const r = parseConfig(toml, { role, file: `${role}.toml` });
  if (!r.ok) throw new Error(r.errors.join("\n"));
  const net = new Network();
  const mr = await mrStarter({
    transport: (_a, _p, hooks) => {
      net.hooks = hooks;
      return Promise.resolve(net);
    },
  })(r.config, {
    logger: new Logger({ role, sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
  });
  return { mr, net };
}

const mr = await start("mr");
const ddtMr = await start("ddt-mr");
// The first request goes through the root; the MS-REFERRAL is cached after it.
await ddtMr.net.run(requests());

Deno.bench(`mr: ${BATCH} ECM Map-Requests forwarded to the map-server`, {
  group: "resolver",
  baseline: true,
}, async (b) => {
  const batch = requests();
  b.start();
  await mr.net.run(batch);
  b.end();
});

Deno.bench(`ddt-mr: ${BATCH} requests, each a DDT query, its MS-ACK and the forward`, {
  group: "resolver",
}, async (b) => {
  const batch = requests();
  b.start();
  await ddtMr.net.run(batch);
  b.end();
});

globalThis.addEventListener("unload", () => {
  void mr.mr.close();
  void ddtMr.mr.close();
});
