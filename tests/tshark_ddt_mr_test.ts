/**
 * What a DDT map-resolver (roles/mr.ts, `ddt-mr`) sends a DDT Map-Server
 * of an MS-REFERRAL, checked by Wireshark's dissector: the ITR's own ECM
 * Map-Request with the D bit (RFC 8111 §7.3.1), from the walk (the first
 * request) and from the cached path (roles/map_resolver/ddt_fast_path.ts,
 * the next ones), each decoded with no malformed flag, no expert warning
 * and the inner IP and UDP checksums right, the D bit set, and the ITR's
 * nonce, ITR-RLOC, inner source and EID read back.
 */

import assert from "node:assert/strict";
import dgram from "node:dgram";
import { parseConfig } from "../config/mod.ts";
import { ControlPlane } from "../core/control.ts";
import { Counters } from "../core/counters.ts";
import { Logger } from "../core/log.ts";
import { parsePrefix, prefixEid } from "../core/prefix.ts";
import { referralLocators } from "../roles/ddt.ts";
import { mrStarter } from "../roles/mr.ts";
import { ipAddress } from "../wire/address.ts";
import { REFERRAL_ACTION } from "../wire/eid_record.ts";
import { emitMapRequest } from "../wire/map_request.ts";
import { testNeeding } from "./prereq.ts";
import { assertClean, dissect, fieldValues, tsharkMissing } from "./tshark.ts";

const ITR = "127.0.0.150";
const MR = "127.0.0.160";
const ROOT = "127.0.0.161";
const MS = "127.0.0.171";

function deps() {
  return {
    logger: new Logger({ role: "test", sink: { write: () => {} } }),
    counters: new Counters(),
    now: Date.now,
  };
}

async function freePort(): Promise<number> {
  const s = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", resolve));
  const port = s.address().port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

function msReferral(action: number, rloc: string) {
  const p = parsePrefix("10.0.0.0/8")!;
  return {
    ttl: 1440,
    maskLen: p.len,
    action,
    authoritative: true,
    incomplete: false,
    sigCount: 0,
    mapVersion: 0,
    eid: prefixEid(p),
    locators: referralLocators([rloc]),
  };
}

const missing = await tsharkMissing();

testNeeding(missing, {
  name: "the ddt-mr's D-bit ECM with the ITR's own request decodes cleanly in tshark",
  async fn() {
    const port = await freePort();
    const open: { close(): unknown }[] = [];
    try {
      const root = await ControlPlane.open({ ...deps(), address: ROOT, port });
      open.push(root);
      root.on("map-request", (m, r) =>
        root.send({
          type: "map-referral",
          msg: {
            nonce: m.nonce,
            records: [{ record: msReferral(REFERRAL_ACTION.MS_REFERRAL, MS), signatures: [] }],
          },
        }, r.from));
      const ms = await ControlPlane.open({ ...deps(), address: MS, port });
      open.push(ms);
      const sent: Uint8Array[] = [];
      ms.on("map-request", (m, r) => {
        sent.push(r.datagram!);
        ms.send({
          type: "map-referral",
          msg: {
            nonce: m.nonce,
            records: [{ record: msReferral(REFERRAL_ACTION.MS_ACK, MS), signatures: [] }],
          },
        }, r.from);
      });
      const parsed = parseConfig(
        `control-address = "${MR}"\ncontrol-port = ${port}\nddt-root-addresses = ["${ROOT}"]\n`,
        { role: "ddt-mr" },
      );
      if (!parsed.ok) throw new Error(parsed.errors.map(String).join("\n"));
      const mr = await mrStarter({ referralTimeoutMs: 500 })(parsed.config, deps());
      open.push(mr);
      const itr = await ControlPlane.open({ ...deps(), address: ITR, port: 0 });
      open.push(itr);
      const nonces = [0x1122334455667788n, 0x1122334455667789n];
      for (const [i, nonce] of nonces.entries()) {
        const req = emitMapRequest({
          authoritative: false,
          probe: false,
          smr: false,
          pitr: false,
          smrInvoked: false,
          localXtr: false,
          dontMapReply: false,
          nonce,
          sourceEid: { kind: "none" },
          itrRlocs: [ipAddress(ITR)],
          records: [{ maskLen: 32, eid: ipAddress(`10.0.0.${i + 1}`) }],
        });
        itr.sendEcm(req, { src: ITR, dst: `10.0.0.${i + 1}`, srcPort: itr.port, dstPort: 4342 }, {
          address: MR,
          port,
        });
        for (let k = 0; k < 200 && (sent.length <= i || mr.pendingCount > 0); k++) {
          await new Promise((r) => setTimeout(r, 5));
        }
      }
      assert.equal(sent.length, 2, "the map-server got both requests");
      const got = await dissect(sent.map((payload) => ({ payload, srcPort: 4342, dstPort: 4342 })));
      got.forEach((f, i) => {
        assertClean(f);
        assert.deepEqual(fieldValues(f, "lisp.type"), ["8", "1"], `frame ${i + 1}`);
        assert.deepEqual(fieldValues(f, "lisp.ecm.flags.ddt"), ["1"], `frame ${i + 1}: the D bit`);
        assert.equal(BigInt(fieldValues(f, "lisp.nonce")[0]!), nonces[i]);
        assert.deepEqual(fieldValues(f, "lisp.mreq.itr_rloc_ipv4"), [ITR]);
        assert.deepEqual(fieldValues(f, "ip.src").slice(-1), [ITR], "the ITR's inner header");
        assert.deepEqual(fieldValues(f, "udp.checksum.status").slice(-1), ["1"], "inner UDP: good");
        assert.deepEqual(fieldValues(f, "ip.ttl").slice(-1), ["63"]);
        assert.deepEqual(fieldValues(f, "lisp.mreq.record.prefix.ipv4"), [`10.0.0.${i + 1}`]);
      });
    } finally {
      for (const c of open.reverse()) await c.close();
    }
  },
});
