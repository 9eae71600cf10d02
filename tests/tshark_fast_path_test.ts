/**
 * What the map-server's answering Workers put on the wire, checked by
 * Wireshark's dissector: the Map-Replies and Map-Notifies that
 * roles/map_server/fast_path.ts writes in place (wire/control_view.ts) for
 * requests and registrations of every shape it takes (IPv4, IPv6, an
 * instance id; proxy and negative answers; key types 1 and 2), and the
 * MS-ACK it writes beside the proxy answer to a DDT map-resolver's request, each
 * decoded with no malformed flag, no expert warning, and the nonce, EID
 * prefix, mask length, action and locators read back.
 */

import assert from "node:assert/strict";
import { ipAddress } from "../wire/address.ts";
import { HmacKey, verifyAuthenticated } from "../wire/auth.ts";
import { emitEcm } from "../wire/ecm.ts";
import { locatorRecord } from "../wire/locator.ts";
import { emitSignedMapRegister } from "../wire/map_register.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { AnswerTable } from "../roles/map_server/answers.ts";
import {
  FAST_ANSWERED,
  FAST_ANSWERED_DDT,
  FAST_REGISTER,
  FastPath,
  SiteIndex,
} from "../roles/map_server/fast_path.ts";
import { AnswerPublisher } from "../roles/map_server/publisher.ts";
import { Registrar } from "../roles/map_server/registrar.ts";
import { RegistrationStore } from "../roles/map_server/registrations.ts";
import { Sites } from "../roles/map_server/sites.ts";
import { testNeeding } from "./prereq.ts";
import { assertClean, dissect, fieldValues, type Frame, tsharkMissing } from "./tshark.ts";

const CONFIG = `
operating-mode = "MS"
control-address = "127.0.0.1"
control-rate-limit = 0
[[lisp-site]]
eid-prefix = "10.0.0.0/8"
key-type = 1
key = "k1"
accept-more-specifics = true
proxy-reply = true
[[lisp-site]]
eid-prefix = "fd00::/16"
iid = 5
key-type = 2
key = "k2"
accept-more-specifics = true
proxy-reply = true
`;

function request(eid: string, iid: number, nonce: bigint, ddt = false): Uint8Array {
  const ip = ipAddress(eid);
  const m = emitMapRequest({
    authoritative: false,
    probe: false,
    smr: false,
    pitr: false,
    smrInvoked: false,
    localXtr: false,
    dontMapReply: false,
    nonce,
    sourceEid: { kind: "none" },
    itrRlocs: [ipAddress("192.0.2.1")],
    records: [{
      maskLen: ip.kind === "ipv4" ? 32 : 128,
      eid: iid === 0 ? ip : { kind: "iid", iid, iidMaskLen: 32, address: ip },
    }],
  });
  return emitEcm({
    security: false,
    ddtOriginated: ddt,
    forRtr: false,
    rtrRelayed: false,
    inner: { src: "192.0.2.1", dst: "192.0.2.2", srcPort: 40000, dstPort: 4342, ttl: 64 },
    payload: m,
  });
}

function register(prefix: string, iid: number, key: HmacKey, nonce: bigint): Uint8Array {
  const p = parsePrefix(prefix, iid)!;
  return emitSignedMapRegister({
    proxyReply: true,
    securityCapable: false,
    xtrIdPresent: true,
    rtr: false,
    eidNotify: false,
    useTtlForTimeout: false,
    mergeRequest: false,
    mobileNode: false,
    wantMapNotify: true,
    nonce,
    keyId: key.keyId,
    authData: new Uint8Array(0),
    records: [{
      ttl: 10,
      maskLen: p.len,
      action: 0,
      authoritative: true,
      incomplete: false,
      sigCount: 0,
      mapVersion: 0,
      eid: prefixEid(p),
      locators: [locatorRecord(ipAddress(iid === 0 ? "192.0.2.7" : "2001:db8::7"))],
    }],
    xtrId: nonce,
    siteId: 1n,
  }, key);
}

const missing = await tsharkMissing();

testNeeding(missing, {
  name:
    "the Workers' Map-Replies, MS-ACKs and Map-Notifies decode cleanly in tshark with the fields we wrote",
  async fn() {
    const r = parseConfig(CONFIG, { role: "ms" });
    if (!r.ok) throw new Error(r.errors.map(String).join("\n"));
    const logger = new Logger({ role: "ms", sink: { write: () => {} } });
    const cp = await ControlPlane.open({
      logger,
      counters: new Counters(),
      address: "127.0.0.1",
      port: 0,
      transport: (address, port) =>
        Promise.resolve({
          address,
          port: port || 4342,
          send: () => true,
          rebind: () => Promise.resolve(),
          close: () => Promise.resolve(),
        }),
    });
    try {
      const sites = new Sites(r.config);
      const store = new RegistrationStore();
      new Registrar({ logger, counters: new Counters(), now: Date.now }, cp, sites, store);
      const table = new AnswerTable();
      new AnswerPublisher(table, store, sites, Date.now);
      const fast = new FastPath(new SiteIndex(sites), table, undefined);
      const out = new Uint8Array(2048);
      const frames: Frame[] = [];
      const expect: { type: string; nonce: bigint; prefix?: string; locators?: number }[] = [];
      const k1 = new HmacKey(1, "k1");
      const k2 = new HmacKey(2, "k2");
      // Registrations: verified, their Map-Notify written by the Worker; then applied.
      for (
        const [prefix, iid, key, nonce] of [
          ["10.1.0.0/24", 0, k1, 11n],
          ["fd00:1::/48", 5, k2, 12n],
        ] as const
      ) {
        const b = register(prefix, iid, key, nonce);
        assert.equal(
          fast.handle(b, 0, b.length, 0x7f000001, -1, Date.now(), out, 0, 2048),
          FAST_REGISTER,
        );
        const notify = out.slice(0, fast.outLength);
        assert.ok(verifyAuthenticated(notify, key));
        frames.push({ payload: notify, srcPort: 4342, dstPort: 4342 });
        expect.push({ type: "4", nonce });
        cp.receive(b, { address: "127.0.0.1", port: 4342 });
      }
      // Requests: proxy answers (IPv4; IPv6 in iid 5), negative in a site, negative outside.
      for (
        const [eid, iid, nonce, prefix, locators] of [
          ["10.1.0.9", 0, 21n, "10.1.0.0/24", 1],
          ["fd00:1::9", 5, 22n, "fd00:1::/48", 1],
          ["10.200.0.9", 0, 23n, "10.128.0.0/9", 0],
          ["fd00:2::9", 5, 24n, "fd00:2::/31", 0],
          ["11.0.0.9", 0, 25n, "11.0.0.0/8", 0],
        ] as const
      ) {
        const b = request(eid, iid, nonce);
        assert.equal(
          fast.handle(b, 0, b.length, 0x7f000001, -1, Date.now(), out, 0, 2048),
          FAST_ANSWERED,
        );
        frames.push({ payload: out.slice(0, fast.outLength), srcPort: 4342, dstPort: 40000 });
        expect.push({ type: "2", nonce, prefix, locators });
      }
      // A DDT map-resolver's request (D bit): the proxy reply, then the MS-ACK (RFC 8111 §7.2).
      const ddt = request("10.1.0.9", 0, 26n, true);
      assert.equal(
        fast.handle(ddt, 0, ddt.length, 0x7f000001, -1, Date.now(), out, 0, 2048),
        FAST_ANSWERED_DDT,
      );
      frames.push({ payload: out.slice(0, fast.outLength), srcPort: 4342, dstPort: 40000 });
      expect.push({ type: "2", nonce: 26n, prefix: "10.1.0.0/24", locators: 1 });
      const ack = out.slice(fast.referralAt, fast.referralAt + fast.referralLength);
      frames.push({ payload: ack, srcPort: 4342, dstPort: 4342 });
      expect.push({ type: "6", nonce: 26n, prefix: "10.1.0.0/24", locators: 1 });
      const got = await dissect(frames);
      got.forEach((f, i) => {
        assertClean(f);
        const e = expect[i]!;
        assert.deepEqual(fieldValues(f, "lisp.type"), [e.type], `frame ${i + 1}`);
        assert.equal(BigInt(fieldValues(f, "lisp.nonce")[0]!), e.nonce);
        if (e.prefix !== undefined) {
          const [addr, len] = e.prefix.split("/");
          assert.deepEqual(fieldValues(f, "lisp.mapping.eid.masklen"), [len], `frame ${i + 1}`);
          const eids = [
            ...fieldValues(f, "lisp.mapping.eid.ipv4"),
            ...fieldValues(f, "lisp.mapping.eid.ipv6"),
            ...fieldValues(f, "lisp.lcaf.iid.ipv6"),
          ];
          assert.deepEqual(eids, [addr], `frame ${i + 1}`);
          if (addr!.includes(":")) assert.deepEqual(fieldValues(f, "lisp.lcaf.iid"), ["5"]);
          assert.deepEqual(fieldValues(f, "lisp.mapping.loccnt"), [String(e.locators)]);
        }
      });
    } finally {
      await cp.close();
    }
  },
});
