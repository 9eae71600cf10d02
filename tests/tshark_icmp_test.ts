/**
 * Wireshark's dissector as an independent check of the ICMP too-big
 * errors the data plane writes back to the TUN (dataplane/engine.ts,
 * wire/icmp.ts): an engine with a path MTU of 1400 answers a 1500-byte
 * IPv4 packet with DF and a 1500-byte IPv6 packet; the answers, as raw IP
 * packets in a pcap, must dissect with no malformed or warning flags, a
 * good ICMP checksum, the right type, code and MTU, and the quoted packet.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Engine, HEADROOM, SLOT_SIZE } from "../dataplane/engine.ts";
import { parsePrefix, type Prefix } from "../core/prefix.ts";
import { PacketBatch } from "../ffi/batch.ts";
import { LINKTYPE_RAW, writePcap } from "../tools/pcap.ts";
import { emitIpUdp } from "../wire/udp.ts";
import { assertClean, dissectPcap, fieldValues, tsharkMissing } from "./tshark.ts";
import { testNeeding } from "./prereq.ts";

function prefix(text: string): Prefix {
  return parsePrefix(text, 0)!;
}

const missing = await tsharkMissing();

testNeeding(missing, {
  name: "tshark decodes the ICMP fragmentation-needed and packet-too-big errors the engine writes",
  fn: async () => {
    const e = new Engine({
      mode: "xtr",
      encapsulation: "LISP",
      slots: 4,
      post: () => {},
      seed: 1,
      pathMtu: { ipv4: 1400, ipv6: 1400 },
    });
    e.setLocal([prefix("10.1.0.0/24"), prefix("fd00:1::/64")]);
    for (const p of ["10.2.0.0/24", "fd00:2::/64"]) {
      e.setMapping({
        prefix: prefix(p),
        action: "encapsulate",
        locators: [{ address: "192.0.2.2", priority: 1, weight: 1, up: true }],
      });
    }
    const b = new PacketBatch({ slots: 4, slotSize: SLOT_SIZE, headroom: HEADROOM });
    const sends: [string, string][] = [["10.1.0.10", "10.2.0.10"], ["fd00:1::10", "fd00:2::10"]];
    sends.forEach(([src, dst], i) => {
      const p = emitIpUdp({
        src,
        dst,
        srcPort: 40000,
        dstPort: 7777,
        payload: new Uint8Array(1500 - (src.includes(":") ? 48 : 28)).fill(0x5a),
      });
      b.reset(i);
      b.bytes.set(p, b.offset[i]!);
      b.length[i] = p.length;
    });
    b.count = 2;
    e.fromTun(b);
    assert.equal(e.nIcmp, 2);
    const packets = [0, 1].map((k) => ({ ts: 1_704_067_200_000_000 + k, data: b.packet(k) }));
    const frames = await dissectPcap(writePcap(packets, { linktype: LINKTYPE_RAW }));
    assert.equal(frames.length, 2);
    const byVersion = new Map(frames.map((f) => [f.protocols.includes("ipv6") ? 6 : 4, f]));
    const v4 = byVersion.get(4)!;
    assertClean(v4);
    assert.deepEqual(fieldValues(v4, "icmp.type"), ["3"]);
    assert.deepEqual(fieldValues(v4, "icmp.code"), ["4"]);
    assert.deepEqual(fieldValues(v4, "icmp.mtu"), ["1364"]);
    assert.deepEqual(fieldValues(v4, "icmp.checksum.status"), ["1"]);
    assert.deepEqual(fieldValues(v4, "ip.src"), ["10.2.0.10", "10.1.0.10"], "error, then quote");
    const v6 = byVersion.get(6)!;
    assertClean(v6);
    assert.deepEqual(fieldValues(v6, "icmpv6.type"), ["2"]);
    assert.deepEqual(fieldValues(v6, "icmpv6.mtu"), ["1364"], "1400 - 36: an IPv4 RLOC");
    assert.deepEqual(fieldValues(v6, "icmpv6.checksum.status"), ["1"]);
    assert.deepEqual(fieldValues(v6, "ipv6.src"), ["fd00:2::10", "fd00:1::10"]);
  },
});
