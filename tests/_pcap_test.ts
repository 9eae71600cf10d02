/**
 * Tests of the test harness itself: the pcap writer/reader in `_pcap.ts`
 * and the tshark runner in `_tshark.ts`.
 *
 * The LISP messages below are written by hand from the RFC layouts (one
 * comment per field), not produced by our codec: they show that tshark
 * reads well-formed messages back field by field without complaint, and
 * that it does flag a broken one, so a clean result means something.
 *
 * Tests that need tshark are skipped (with the reason printed) when it is
 * not installed.
 */

import assert from "node:assert/strict";
import {
  LINKTYPE_ETHERNET,
  LINKTYPE_LINUX_SLL,
  LINKTYPE_RAW,
  PcapError,
  readPcap,
  readPcapUdp,
  udpFromFrame,
  writePcap,
} from "../tools/pcap.ts";
import {
  formatIPv6,
  internetChecksum,
  ipv4Packet,
  parseIPv4,
  parseIPv6,
  transportChecksum,
  udpFrame,
} from "./pcap_frames.ts";
import {
  assertClean,
  describeFrame,
  dissect,
  type DissectedFrame,
  dissectPcap,
  fieldsUnder,
  fieldValue,
  fieldValues,
  type Frame,
  framesToPcap,
  LISP_CONTROL_PORT,
  LISP_DATA_PORT,
  parsePdml,
  PCAP_BASE_TS,
  problems,
  tsharkMissing,
  VXLAN_GPE_PORT,
} from "./tshark.ts";
import { hex } from "./hex.ts";
import { testNeeding } from "./prereq.ts";

const missing = await tsharkMissing();

// ---------------------------------------------------------------------------
// Hand-written fixtures (RFC 9301 / RFC 9300 / RFC 8060 layouts)
// ---------------------------------------------------------------------------

/** Map-Request, RFC 9301 §5.2: one ITR-RLOC, one IPv4 EID record. */
const MAP_REQUEST = hex(`
  10 00 00 01                 // Type=1, A M P S p s R I = 0, Rsvd 0, L D = 0, IRC=0 (one ITR-RLOC), Record Count=1
  11 22 33 44 55 66 77 88     // Nonce
  00 01                       // Source-EID-AFI = 1 (IPv4)
  c6 33 64 01                 // Source EID = 198.51.100.1
  00 01                       // ITR-RLOC-AFI 1 = 1 (IPv4)
  c0 00 02 01                 // ITR-RLOC Address 1 = 192.0.2.1
  00                          // Record: Reserved
  20                          // Record: EID mask-len = 32
  00 01                       // Record: EID-Prefix-AFI = 1 (IPv4)
  c6 33 64 0a                 // Record: EID-Prefix = 198.51.100.10
`);

/** Map-Register, RFC 9301 §5.6: key id 1, 20 zero auth bytes, one record with one locator. */
const MAP_REGISTER = hex(`
  30 00 01 01                 // Type=3, P S I = 0, Reserved, E T a R = 0, M=1 (want Map-Notify), Record Count=1
  01 23 45 67 89 ab cd ef     // Nonce
  00 01                       // Key ID = 1 (HMAC-SHA-1-96)
  00 14                       // Authentication Data Length = 20
  00 00 00 00 00 00 00 00 00 00
  00 00 00 00 00 00 00 00 00 00 // Authentication Data (zeroed)
  00 00 05 a0                 // Record TTL = 1440 minutes
  01                          // Locator Count = 1
  18                          // EID mask-len = 24
  10 00                       // ACT=0 (No-Action), A=1, Reserved
  00 00                       // Rsvd, Map-Version Number = 0
  00 01                       // EID-Prefix-AFI = 1 (IPv4)
  c6 33 64 00                 // EID-Prefix = 198.51.100.0
  01                          // Locator: Priority = 1
  64                          // Locator: Weight = 100
  ff                          // Locator: M Priority = 255
  00                          // Locator: M Weight = 0
  00 05                       // Locator: Unused Flags, L=1, p=0, R=1
  00 01                       // Locator: Loc-AFI = 1 (IPv4)
  c0 00 02 01                 // Locator = 192.0.2.1
`);

/** Map-Reply, RFC 9301 §5.4, with an Instance-ID LCAF EID (RFC 8060 §4.1) and an IPv6 locator. */
const MAP_REPLY_IID = hex(`
  20 00 00 01                 // Type=2, P E S = 0, Reserved, Record Count=1
  aa bb cc dd ee ff 00 11     // Nonce
  00 00 00 3c                 // Record TTL = 60 minutes
  01                          // Locator Count = 1
  30                          // EID mask-len = 48
  10 00                       // ACT=0, A=1, Reserved
  00 00                       // Rsvd, Map-Version Number = 0
  40 03                       // EID-Prefix-AFI = 16387 (LCAF)
  00                          // LCAF Rsvd1
  00                          // LCAF Flags
  02                          // LCAF Type = 2 (Instance ID)
  00                          // LCAF IID mask-len = 0
  00 16                       // LCAF Length = 22 (4 IID + 2 AFI + 16 address)
  00 00 00 7b                 // Instance ID = 123
  00 02                       // AFI = 2 (IPv6)
  20 01 0d b8 00 01 00 00 00 00 00 00 00 00 00 00 // Address = 2001:db8:1::
  01                          // Locator: Priority = 1
  64                          // Locator: Weight = 100
  ff                          // Locator: M Priority = 255
  00                          // Locator: M Weight = 0
  00 01                       // Locator: Unused Flags, L=0, p=0, R=1
  00 02                       // Locator: Loc-AFI = 2 (IPv6)
  20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 01 // Locator = 2001:db8::1
`);

/** An inner IPv4 ICMP echo request, RFC 791 + RFC 792 (checksums worked out by hand). */
const INNER_ICMP = `
  45                          // IPv4: version 4, IHL 5
  00                          // IPv4: DSCP/ECN
  00 24                       // IPv4: Total Length = 36
  00 01                       // IPv4: Identification = 1
  00 00                       // IPv4: Flags, Fragment Offset = 0
  40                          // IPv4: TTL = 64
  01                          // IPv4: Protocol = 1 (ICMP)
  25 5d                       // IPv4: Header Checksum
  c6 33 64 0a                 // IPv4: Source = 198.51.100.10
  c6 33 65 0a                 // IPv4: Destination = 198.51.101.10
  08                          // ICMP: Type = 8 (echo request)
  00                          // ICMP: Code = 0
  2e 87                       // ICMP: Checksum
  00 01                       // ICMP: Identifier = 1
  00 01                       // ICMP: Sequence = 1
  6f 6f 72 2d 74 65 73 74     // ICMP: Data = "oor-test"
`;

/** LISP data packet, RFC 9300 §5.3: N, L and I bits, nonce, instance id 123, LSBs; then the inner packet. */
const LISP_DATA = hex(`
  c8                          // Flags: N=1, L=1, E=0, V=0, I=1, R=0, KK=00
  ab cd ef                    // Nonce = 0xabcdef
  00 00 7b                    // Instance ID = 123
  01                          // Locator-Status-Bits (8 bits with I set) = 0x01
  ${INNER_ICMP}
`);

/** VXLAN-GPE, draft-ietf-nvo3-vxlan-gpe §3.3: I and P bits, next protocol IPv4, VNI 12345. */
const VXLAN_GPE = hex(`
  0c                          // Flags: R R Ver=0, I=1, P=1, B=0, O=0
  00 00                       // Reserved
  01                          // Next Protocol = 1 (IPv4)
  00 30 39                    // VNI = 12345
  00                          // Reserved
  ${INNER_ICMP}
`);

/** The Map-Register cut in the middle of its locator address: tshark must call it malformed. */
const MAP_REGISTER_TRUNCATED = MAP_REGISTER.subarray(0, MAP_REGISTER.length - 2);

const FRAMES: readonly Frame[] = [
  { payload: MAP_REQUEST, srcPort: 61001, dstPort: LISP_CONTROL_PORT },
  { payload: MAP_REGISTER, srcPort: LISP_CONTROL_PORT, dstPort: LISP_CONTROL_PORT },
  { payload: MAP_REPLY_IID, srcPort: LISP_CONTROL_PORT, dstPort: 61001, v6: true },
  { payload: LISP_DATA, srcPort: 61002, dstPort: LISP_DATA_PORT },
  { payload: VXLAN_GPE, srcPort: 61003, dstPort: VXLAN_GPE_PORT, v6: true },
  { payload: MAP_REGISTER_TRUNCATED, srcPort: LISP_CONTROL_PORT, dstPort: LISP_CONTROL_PORT },
];

let dissected: Promise<DissectedFrame[]> | undefined;
/** The fixtures dissected once, shared by the tshark tests. */
function fixtures(): Promise<DissectedFrame[]> {
  dissected ??= dissect(FRAMES);
  return dissected;
}

async function frameAt(i: number): Promise<DissectedFrame> {
  return (await fixtures())[i]!;
}

// ---------------------------------------------------------------------------
// _pcap.ts: checksums and addresses
// ---------------------------------------------------------------------------

Deno.test("internetChecksum() matches the RFC 1071 §3 worked example", () => {
  // RFC 1071 §3: the bytes 00 01 f2 03 f4 f5 f6 f7 sum to 0xddf2; the checksum is its complement.
  assert.equal(internetChecksum(hex("00 01 f2 03 f4 f5 f6 f7")), 0x220d);
  // Split across parts, including an odd-length first part, the result is the same.
  assert.equal(internetChecksum(hex("00 01 f2"), hex("03 f4 f5 f6 f7")), 0x220d);
});

Deno.test("ipv4Packet() writes a known header with its checksum", () => {
  // A well-known header: 192.168.0.1 -> 192.168.0.199, UDP, TTL 64, DF, total length 0x73.
  const p = ipv4Packet({
    src: "192.168.0.1",
    dst: "192.168.0.199",
    protocol: 17,
    ttl: 64,
    dontFragment: true,
    payload: new Uint8Array(0x73 - 20),
  });
  assert.deepEqual(
    p.subarray(0, 20),
    hex(`45 00 00 73  00 00 40 00  40 11 b8 61  c0 a8 00 01  c0 a8 00 c7`),
  );
  assert.equal(internetChecksum(p.subarray(0, 20)), 0, "a header with its checksum sums to zero");
});

Deno.test("udpFrame() writes UDP checksums that verify over the pseudo-header (v4 and v6)", () => {
  for (const [src, dst] of [["192.0.2.1", "192.0.2.2"], ["2001:db8::1", "2001:db8::2"]] as const) {
    for (const payload of [MAP_REQUEST, MAP_REGISTER_TRUNCATED.subarray(0, 7), new Uint8Array(0)]) {
      const f = udpFrame({
        src,
        dst,
        srcPort: 4342,
        dstPort: 4342,
        payload,
        linktype: LINKTYPE_RAW,
      });
      const ipLen = src.includes(":") ? 40 : 20;
      const udp = f.subarray(ipLen);
      assert.notEqual(udp[6]! | udp[7]!, 0, "checksum field is set");
      // Summing the segment with its checksum in place over the pseudo-header gives 0.
      assert.equal(transportChecksum(src, dst, 17, udp), 0, `${src} payload ${payload.length}`);
    }
  }
});

Deno.test("parseIPv6() and formatIPv6() follow RFC 5952", () => {
  const cases: [string, string][] = [
    ["2001:db8::1", "2001:db8::1"],
    ["2001:0DB8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["::1", "::1"],
    ["::", "::"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // a single zero group is not compressed
    ["2001:0:0:1:0:0:0:1", "2001:0:0:1::1"], // the longest run is compressed
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of equal runs
    ["::ffff:192.0.2.1", "::ffff:c000:201"],
  ];
  for (const [text, canonical] of cases) assert.equal(formatIPv6(parseIPv6(text)), canonical, text);
  for (
    const bad of ["1::2::3", "2001:db8", "12345::", "::g", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8"]
  ) {
    assert.throws(() => parseIPv6(bad), TypeError, bad);
  }
  for (const bad of ["1.2.3", "256.0.0.1", "01.2.3.4", "a.b.c.d"]) {
    assert.throws(() => parseIPv4(bad), TypeError, bad);
  }
});

// ---------------------------------------------------------------------------
// _pcap.ts: file format
// ---------------------------------------------------------------------------

Deno.test("writePcap() writes the classic header and record headers", () => {
  const data = hex("de ad be ef");
  const file = writePcap([{ ts: 1_000_000 * 7 + 42, data }], { linktype: LINKTYPE_RAW });
  assert.deepEqual(
    file,
    hex(`
      d4 c3 b2 a1                 // magic 0xa1b2c3d4, little-endian
      02 00 04 00                 // version 2.4
      00 00 00 00                 // thiszone
      00 00 00 00                 // sigfigs
      ff ff 00 00                 // snaplen 65535
      65 00 00 00                 // linktype 101 (raw IP)
      07 00 00 00                 // ts_sec 7
      2a 00 00 00                 // ts_usec 42
      04 00 00 00                 // incl_len 4
      04 00 00 00                 // orig_len 4
      de ad be ef                 // data
    `),
  );
  const be = writePcap([], { littleEndian: false });
  assert.deepEqual(be.subarray(0, 4), hex("a1 b2 c3 d4"));
  assert.deepEqual(be.subarray(20, 24), hex("00 00 00 01"), "Ethernet is the default link type");
});

Deno.test("writePcap() cuts packets at snaplen and keeps the original length", () => {
  const file = readPcap(writePcap([{ ts: 0, data: new Uint8Array(100) }], { snaplen: 60 }));
  assert.equal(file.snaplen, 60);
  assert.equal(file.packets[0]!.data.length, 60);
  assert.equal(file.packets[0]!.origLen, 100);
});

Deno.test("writePcap() rejects timestamps and lengths pcap cannot hold", () => {
  assert.throws(() => writePcap([{ ts: -1, data: new Uint8Array(1) }]), RangeError);
  assert.throws(() => writePcap([{ ts: 1.5, data: new Uint8Array(1) }]), RangeError);
  assert.throws(() => writePcap([{ ts: 0, data: new Uint8Array(4), origLen: 3 }]), RangeError);
});

Deno.test("readPcapUdp() reads back every UDP payload, address, port and timestamp written", () => {
  const pcap = framesToPcap(FRAMES);
  const got = readPcapUdp(pcap);
  assert.equal(got.length, FRAMES.length);
  got.forEach((d, i) => {
    const f = FRAMES[i]!;
    assert.deepEqual(d.payload, f.payload, `payload ${i}`);
    assert.equal(d.srcPort, f.srcPort);
    assert.equal(d.dstPort, f.dstPort);
    assert.equal(d.ipVersion, f.v6 ? 6 : 4);
    assert.equal(d.src, f.v6 ? "2001:db8::1" : "192.0.2.1");
    assert.equal(d.dst, f.v6 ? "2001:db8::2" : "192.0.2.2");
    assert.equal(d.ts, PCAP_BASE_TS + i);
    assert.equal(d.index, i);
    assert.equal(d.truncated, false);
  });
  // The same through raw IP framing.
  const raw = readPcap(framesToPcap(FRAMES, LINKTYPE_RAW));
  assert.equal(raw.linktype, LINKTYPE_RAW);
  assert.deepEqual(udpFromFrame(raw.linktype, raw.packets[2]!.data)?.payload, MAP_REPLY_IID);
});

Deno.test("readPcap() reads big-endian and nanosecond files", () => {
  const file = hex(`
    a1 b2 3c 4d                 // magic, nanosecond, big-endian
    00 02 00 04                 // version 2.4
    00 00 00 00 00 00 00 00     // thiszone, sigfigs
    00 00 ff ff                 // snaplen
    00 00 00 65                 // linktype 101
    00 00 00 02                 // ts_sec 2
    00 00 07 d1                 // ts_nsec 2001
    00 00 00 02 00 00 00 05     // incl_len 2, orig_len 5
    ab cd                       // data
  `);
  const got = readPcap(file);
  assert.equal(got.littleEndian, false);
  assert.equal(got.nanosecond, true);
  assert.equal(got.linktype, LINKTYPE_RAW);
  assert.equal(got.packets.length, 1);
  assert.equal(got.packets[0]!.ts, 2_000_002, "nanoseconds are truncated to microseconds");
  assert.deepEqual(got.packets[0]!.data, hex("ab cd"));
  assert.equal(got.packets[0]!.origLen, 5);
});

Deno.test("readPcap() rejects a bad magic, pcapng and a record running past the end", () => {
  const good = writePcap([{ ts: 0, data: hex("01 02 03") }]);
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, 10), "pcap.header"],
    [hex("00 11 22 33" + " 00".repeat(20)), "pcap.magic"],
    [hex("0a 0d 0d 0a" + " 00".repeat(20)), "pcap.magic"],
    [good.subarray(0, 30), "pcap.record"],
    [good.subarray(0, good.length - 1), "pcap.record.incl_len"],
  ];
  for (const [bytes, field] of cases) {
    assert.throws(
      () => readPcap(bytes),
      (e: unknown) => e instanceof PcapError && e.field === field,
      field,
    );
  }
});

Deno.test("udpFromFrame() steps over VLAN tags and Linux cooked headers, and skips non-UDP", () => {
  const eth = udpFrame({
    src: "192.0.2.1",
    dst: "192.0.2.2",
    srcPort: 1,
    dstPort: 2,
    payload: hex("aa"),
  });
  // Insert an 802.1Q tag (TPID 0x8100, VLAN 10) before the EtherType.
  const tagged = new Uint8Array(eth.length + 4);
  tagged.set(eth.subarray(0, 12), 0);
  tagged.set(hex("81 00 00 0a"), 12);
  tagged.set(eth.subarray(12), 16);
  assert.deepEqual(udpFromFrame(LINKTYPE_ETHERNET, tagged)?.payload, hex("aa"));
  // Linux cooked v1: packet type 0, ARPHRD 1, address length 6, address (8), protocol 0x0800.
  const sll = new Uint8Array(16 + eth.length - 14);
  sll.set(hex("00 00 00 01 00 06 02 00 00 00 00 01 00 00 08 00"), 0);
  sll.set(eth.subarray(14), 16);
  assert.equal(udpFromFrame(LINKTYPE_LINUX_SLL, sll)?.dstPort, 2);
  // ICMP inside IPv4 is not UDP; ARP is not IP.
  assert.equal(udpFromFrame(LINKTYPE_RAW, hex(INNER_ICMP)), undefined);
  const arp = eth.slice();
  arp[12] = 0x08;
  arp[13] = 0x06;
  assert.equal(udpFromFrame(LINKTYPE_ETHERNET, arp), undefined);
  // A frame cut inside the UDP header is an error, a frame cut in the payload is marked truncated.
  assert.throws(() => udpFromFrame(LINKTYPE_ETHERNET, eth.subarray(0, 14 + 20 + 4)), PcapError);
  const cut = udpFromFrame(
    LINKTYPE_ETHERNET,
    udpFrame({
      src: "192.0.2.1",
      dst: "192.0.2.2",
      srcPort: 1,
      dstPort: 2,
      payload: hex("aa bb cc"),
    })
      .subarray(0, 14 + 20 + 8 + 1),
  );
  assert.equal(cut?.truncated, true);
  assert.deepEqual(cut?.payload, hex("aa"));
});

// ---------------------------------------------------------------------------
// _tshark.ts: PDML parsing (no tshark needed)
// ---------------------------------------------------------------------------

Deno.test("parsePdml() keeps fields in order with their parents, and collects expert infos", () => {
  const xml = `<?xml version="1.0" encoding="utf-8"?>
<pdml version="0" creator="wireshark/4.0.17">
<packet>
  <proto name="frame" showname="Frame 1" size="50" pos="0">
    <field name="frame.protocols" showname="Protocols in frame: eth:ethertype:ip:udp:lisp" size="0" pos="0" show="eth:ethertype:ip:udp:lisp"/>
  </proto>
  <proto name="lisp" showname="Locator/ID Separation Protocol" size="8" pos="42">
    <field name="lisp.type" showname="Type: Map-Reply (2)" size="3" pos="42" show="2" value="2"/>
    <field name="lisp.mapping" showname="Mapping Record 1" size="4" pos="46" show="" value="">
      <field name="lisp.mapping.ttl" showname="Record TTL: 1" size="4" pos="46" show="1" value="00000001"/>
      <field name="lisp.loc" showname="Locator Record 1" size="4" pos="50" show="" value="">
        <field name="lisp.loc.locator" showname="Locator: a&amp;b &quot;c&quot;" size="4" pos="50" show="a&amp;b &quot;c&quot;"/>
      </field>
    </field>
    <field name="_ws.expert" showname="Expert Info (Error/Protocol): Unexpected EID prefix AFI (7), cannot decode" size="0" pos="50">
      <field name="lisp.unexpected_field" showname="Unexpected EID prefix AFI (7), cannot decode" size="0" pos="0" show="" value=""/>
      <field name="_ws.expert.message" showname="Message: Unexpected" hide="yes" size="0" pos="0" show="Unexpected EID prefix AFI (7), cannot decode"/>
      <field name="_ws.expert.severity" showname="Severity level: Error" size="0" pos="0" show="8388608"/>
      <field name="_ws.expert.group" showname="Group: Protocol" size="0" pos="0" show="150994944"/>
    </field>
    <field name="lisp.records" showname="Record Count: 1" size="1" pos="45" show="1" value="01"/>
  </proto>
</packet>
<packet>
  <proto name="frame" showname="Frame 2" size="50" pos="0"></proto>
</packet>
</pdml>`;
  const frames = parsePdml(xml);
  assert.equal(frames.length, 2);
  const f = frames[0]!;
  assert.deepEqual(f.protocols, ["eth", "ethertype", "ip", "udp", "lisp"]);
  assert.deepEqual(fieldValues(f, "lisp.loc.locator"), ['a&b "c"']);
  assert.equal(fieldValue(f, "lisp.type"), "2");
  assert.equal(
    fieldValue(f, "lisp.records"),
    "1",
    "fields after a closed subtree are top level again",
  );
  const mapping = f.fields.findIndex((x) => x.name === "lisp.mapping");
  assert.deepEqual(fieldsUnder(f, mapping).map((x) => x.name), [
    "lisp.mapping.ttl",
    "lisp.loc",
    "lisp.loc.locator",
  ]);
  assert.equal(f.fields.find((x) => x.name === "lisp.records")!.parent, -1);
  assert.deepEqual(f.experts, [{
    name: "lisp.unexpected_field",
    message: "Unexpected EID prefix AFI (7), cannot decode",
    severity: "error",
    group: "protocol",
    proto: "lisp",
  }]);
  assert.equal(f.malformed, false);
  assert.deepEqual(problems(f), [
    "expert error/protocol in lisp: Unexpected EID prefix AFI (7), cannot decode (lisp.unexpected_field)",
  ]);
  assert.throws(() => assertClean(f), /lisp\.unexpected_field/);
  assert.doesNotThrow(() => assertClean(f, { allowExperts: ["lisp.unexpected_field"] }));
  assert.throws(() => fieldValue(f, "lisp.nonce"), /expected one lisp\.nonce, found 0/);
  assert.equal(frames[1]!.fields.length, 0);
});

// ---------------------------------------------------------------------------
// _tshark.ts against tshark
// ---------------------------------------------------------------------------

const tsharkTest = (name: string, fn: () => Promise<void>) => testNeeding(missing, { name, fn });

tsharkTest(
  "dissect() decodes ports 4342, 4341 and 4790 as LISP control, LISP data, VXLAN-GPE",
  async () => {
    const f = await fixtures();
    assert.deepEqual(f.map((x) => x.protocols.join(":")), [
      "eth:ethertype:ip:udp:lisp",
      "eth:ethertype:ip:udp:lisp",
      "eth:ethertype:ipv6:udp:lisp",
      "eth:ethertype:ip:udp:lisp-data:ip:icmp:data",
      "eth:ethertype:ipv6:udp:ip:icmp:data", // tshark 4.0 leaves VXLAN-GPE out of frame.protocols

      "eth:ethertype:ip:udp:lisp",
    ]);
    assert.deepEqual(f[4]!.layers, ["frame", "eth", "ipv6", "udp", "vxlan", "ip", "icmp"]);
    assert.deepEqual(f[0]!.layers, ["frame", "eth", "ip", "udp", "lisp"]);
    assert.deepEqual(f[5]!.layers, ["frame", "eth", "ip", "udp", "lisp", "_ws.malformed"]);
    // Our IPv4 header and UDP checksums were verified by tshark (status 1 = good).
    for (const x of f) {
      assert.deepEqual(
        fieldValues(x, "udp.checksum.status").slice(0, 1),
        ["1"],
        `frame ${x.number}`,
      );
    }
    assert.deepEqual(fieldValues(f[0]!, "ip.checksum.status"), ["1"]);
  },
);

tsharkTest("tshark reads the hand-written Map-Request back and flags nothing", async () => {
  const f = await frameAt(0);
  assertClean(f);
  assert.equal(fieldValue(f, "lisp.type"), "1");
  assert.equal(fieldValue(f, "lisp.nonce"), "0x1122334455667788");
  assert.equal(fieldValue(f, "lisp.irc"), "0");
  assert.equal(fieldValue(f, "lisp.records"), "1");
  assert.equal(fieldValue(f, "lisp.mreq.srceid.ipv4"), "198.51.100.1");
  assert.equal(fieldValue(f, "lisp.mreq.itr_rloc_ipv4"), "192.0.2.1");
  assert.equal(fieldValue(f, "lisp.mreq.record.prefix.length"), "32");
  assert.equal(fieldValue(f, "lisp.mreq.record.prefix.ipv4"), "198.51.100.10");
});

tsharkTest("tshark reads the hand-written Map-Register back and flags nothing", async () => {
  const f = await frameAt(1);
  assertClean(f);
  assert.equal(fieldValue(f, "lisp.type"), "3");
  assert.equal(fieldValue(f, "lisp.mreg.flags.wmn"), "1");
  assert.equal(fieldValue(f, "lisp.nonce"), "0x0123456789abcdef");
  assert.equal(fieldValue(f, "lisp.records"), "1");
  assert.equal(fieldValue(f, "lisp.keyid"), "0x0001");
  assert.equal(fieldValue(f, "lisp.authlen"), "20");
  assert.equal(fieldValue(f, "lisp.auth"), Array(20).fill("00").join(":"));
  assert.equal(fieldValue(f, "lisp.mapping.ttl"), "1440");
  assert.equal(fieldValue(f, "lisp.mapping.loccnt"), "1");
  assert.equal(fieldValue(f, "lisp.mapping.eid.masklen"), "24");
  assert.equal(fieldValue(f, "lisp.mapping.auth"), "1");
  assert.equal(fieldValue(f, "lisp.mapping.eid.ipv4"), "198.51.100.0");
  assert.equal(fieldValue(f, "lisp.loc.priority"), "1");
  assert.equal(fieldValue(f, "lisp.loc.weight"), "100");
  assert.equal(fieldValue(f, "lisp.loc.flags.local"), "1");
  assert.equal(fieldValue(f, "lisp.loc.flags.reach"), "1");
  assert.equal(fieldValue(f, "lisp.loc.locator"), "192.0.2.1");
  // The locator sits inside the mapping record in the tree.
  const mapping = f.fields.findIndex((x) => x.name === "lisp.mapping");
  assert.ok(fieldsUnder(f, mapping).some((x) => x.name === "lisp.loc.locator"));
});

tsharkTest("tshark reads an Instance-ID LCAF EID and an IPv6 locator over IPv6", async () => {
  const f = await frameAt(2);
  assertClean(f);
  assert.equal(fieldValue(f, "lisp.type"), "2");
  assert.equal(fieldValue(f, "lisp.nonce"), "0xaabbccddeeff0011");
  assert.equal(fieldValue(f, "lisp.mapping.ttl"), "60");
  assert.equal(fieldValue(f, "lisp.mapping.eid.afi"), "16387");
  assert.equal(fieldValue(f, "lisp.mapping.eid.masklen"), "48");
  assert.equal(fieldValue(f, "lisp.lcaf.type"), "2");
  assert.equal(fieldValue(f, "lisp.lcaf.length"), "22");
  assert.equal(fieldValue(f, "lisp.lcaf.iid"), "123");
  assert.equal(fieldValue(f, "lisp.lcaf.iid.ipv6"), "2001:db8:1::");
  assert.equal(fieldValue(f, "lisp.loc.afi"), "2");
  assert.equal(fieldValue(f, "lisp.loc.locator"), "2001:db8::1");
  assert.equal(fieldValue(f, "ipv6.src"), "2001:db8::1");
});

tsharkTest("tshark reads the LISP data header and the inner ICMP packet", async () => {
  const f = await frameAt(3);
  assertClean(f);
  assert.equal(fieldValue(f, "lisp-data.flags.nonce"), "1");
  assert.equal(fieldValue(f, "lisp-data.flags.lsb"), "1");
  assert.equal(fieldValue(f, "lisp-data.flags.iid"), "1");
  assert.equal(fieldValue(f, "lisp-data.nonce"), "11259375");
  assert.equal(fieldValue(f, "lisp-data.iid"), "123");
  assert.equal(fieldValue(f, "lisp-data.lsb8"), "0x01");
  // The inner header: outer and inner IPv4 both decoded, inner checksums good.
  assert.deepEqual(fieldValues(f, "ip.dst"), ["192.0.2.2", "198.51.101.10"]);
  assert.deepEqual(fieldValues(f, "ip.checksum.status"), ["1", "1"]);
  assert.equal(fieldValue(f, "icmp.type"), "8");
  assert.equal(fieldValue(f, "icmp.checksum.status"), "1");
});

tsharkTest("tshark reads the VXLAN-GPE header and its VNI", async () => {
  const f = await frameAt(4);
  assertClean(f);
  assert.equal(fieldValue(f, "vxlan.i_bit"), "1");
  assert.equal(fieldValue(f, "vxlan.p_bit"), "1");
  assert.equal(fieldValue(f, "vxlan.next_proto"), "1");
  assert.equal(fieldValue(f, "vxlan.vni"), "12345");
  assert.equal(fieldValue(f, "icmp.checksum.status"), "1");
});

tsharkTest(
  "tshark flags a Map-Register cut inside its locator as malformed, and assertClean() fails",
  async () => {
    const f = await frameAt(5);
    assert.equal(f.malformed, true);
    assert.ok(
      f.experts.some((e) => e.severity === "error" && e.group === "malformed"),
      describeFrame(f),
    );
    assert.throws(() => assertClean(f), /malformed/);
    // It still got as far as the mapping record.
    assert.equal(fieldValue(f, "lisp.mapping.eid.ipv4"), "198.51.100.0");
  },
);

tsharkTest(
  "assertClean() fails on bytes left after the LISP message and on a bad UDP checksum",
  async () => {
    const trailing = new Uint8Array(MAP_REQUEST.length + 3);
    trailing.set(MAP_REQUEST);
    const [withTrailing] = await dissect([
      { payload: trailing, srcPort: 61001, dstPort: LISP_CONTROL_PORT },
    ]);
    assert.throws(() => assertClean(withTrailing!), /lisp left 3 bytes undissected/);
    assert.doesNotThrow(() => assertClean(withTrailing!, { allowTrailingData: true }));

    // Break the UDP checksum of an otherwise good frame.
    const pcap = framesToPcap([{
      payload: MAP_REQUEST,
      srcPort: 61001,
      dstPort: LISP_CONTROL_PORT,
    }]);
    const file = readPcap(pcap);
    const frameStart = pcap.length - file.packets[0]!.data.length;
    pcap[frameStart + 14 + 20 + 6]! ^= 0xff; // Ethernet 14 + IPv4 20, UDP checksum at 6
    const [bad] = await dissectPcap(pcap);
    assert.throws(() => assertClean(bad!), /checksum/i);
  },
);
