import assert from "node:assert/strict";
import {
  emitTcpHeader,
  parseTcpHeader,
  readU32,
  TCP_FLAG_ACK,
  TCP_FLAG_CWR,
  TCP_FLAG_FIN,
  TCP_FLAG_PSH,
  TCP_FLAG_SYN,
  tcpAck,
  tcpFlags,
  type TcpHeader,
  tcpHeaderBytes,
  tcpHeaderLength,
  tcpSeq,
  writeU32,
} from "./tcp.ts";
import { WireError } from "./errors.ts";
import { hex } from "../tests/hex.ts";

/** Hand-written from RFC 9293 §3.1. */
const fixtures: { name: string; bytes: string; header: TcpHeader }[] = [
  {
    name: "a SYN with MSS and window scale options",
    bytes: "c350 1451" + // ports 50000 -> 5201
      "01020304" + // seq
      "00000000" + // ack
      "70 02" + // data offset 7 (28 bytes), SYN
      "faf0" + // window 64240
      "1234 0000" + // checksum, urgent
      "020405b4 01030307", // MSS 1460, NOP, window scale 7
    header: {
      srcPort: 50000,
      dstPort: 5201,
      seq: 0x01020304,
      ack: 0,
      reserved: 0,
      flags: TCP_FLAG_SYN,
      window: 64240,
      checksum: 0x1234,
      urgent: 0,
      options: hex("020405b4 01030307"),
    },
  },
  {
    name: "a data segment, every control bit that splitting touches, reserved bits",
    bytes: "1451 c350" +
      "fffffffe" + // seq near the wrap
      "80000001" + // ack
      "5a 99" + // data offset 5, reserved 0xa, CWR ACK PSH FIN
      "0100" +
      "ffff 0007",
    header: {
      srcPort: 5201,
      dstPort: 50000,
      seq: 0xfffffffe,
      ack: 0x80000001,
      reserved: 0xa,
      flags: TCP_FLAG_CWR | TCP_FLAG_ACK | TCP_FLAG_PSH | TCP_FLAG_FIN,
      window: 256,
      checksum: 0xffff,
      urgent: 7,
      options: new Uint8Array(0),
    },
  },
];

Deno.test("parseTcpHeader() decodes hand-written RFC 9293 fixtures", () => {
  for (const f of fixtures) assert.deepEqual(parseTcpHeader(hex(f.bytes)), f.header, f.name);
});

Deno.test("emitTcpHeader() writes the fixtures into a 0xa5 buffer at an offset", () => {
  for (const f of fixtures) {
    const want = hex(f.bytes);
    const buf = new Uint8Array(want.length + 5).fill(0xa5);
    const out = emitTcpHeader(f.header, buf, 3);
    assert.deepEqual(out, want, f.name);
    assert.deepEqual(buf.subarray(0, 3), hex("a5a5a5"));
    assert.deepEqual(buf.subarray(3 + want.length), hex("a5a5"));
    assert.deepEqual(emitTcpHeader(f.header), want);
    assert.equal(tcpHeaderLength(f.header), want.length);
  }
});

Deno.test("emitTcpHeader() then parseTcpHeader() round-trips", () => {
  for (const f of fixtures) {
    const buf = new Uint8Array(80).fill(0xa5);
    emitTcpHeader(f.header, buf, 9);
    assert.deepEqual(parseTcpHeader(buf.subarray(9)), f.header);
  }
});

Deno.test("parseTcpHeader() throws WireError on truncation and a data offset below 5", () => {
  const full = hex(fixtures[0]!.bytes);
  for (let n = 0; n < full.length; n++) {
    assert.throws(() => parseTcpHeader(full.subarray(0, n)), WireError, `length ${n}`);
  }
  const bad = full.slice();
  bad[12] = 0x40; // data offset 4
  assert.throws(
    () => parseTcpHeader(bad),
    (e: unknown) => e instanceof WireError && e.field === "tcp.data-offset" && e.offset === 12,
  );
});

Deno.test("emitTcpHeader() rejects misuse with RangeError", () => {
  const h = fixtures[1]!.header;
  for (
    const bad of [
      { ...h, srcPort: 65536 },
      { ...h, seq: 2 ** 32 },
      { ...h, ack: -1 },
      { ...h, flags: 256 },
      { ...h, reserved: 16 },
      { ...h, options: new Uint8Array(3) },
      { ...h, options: new Uint8Array(44) },
    ]
  ) assert.throws(() => emitTcpHeader(bad), RangeError);
  assert.throws(() => emitTcpHeader(h, new Uint8Array(19)), RangeError);
});

Deno.test("data path accessors read and write fields in place", () => {
  const b = new Uint8Array(4).fill(0xa5);
  const pkt = new Uint8Array([...b, ...hex(fixtures[0]!.bytes)]);
  assert.equal(tcpHeaderBytes(pkt, 4), 28);
  assert.equal(tcpFlags(pkt, 4), TCP_FLAG_SYN);
  assert.equal(tcpSeq(pkt, 4), 0x01020304);
  assert.equal(tcpAck(pkt, 4), 0);
  writeU32(pkt, 8, 0x1_0000_0005); // modulo 2^32
  assert.equal(tcpSeq(pkt, 4), 5);
  writeU32(pkt, 8, 0xdeadbeef);
  assert.equal(readU32(pkt, 8), 0xdeadbeef);
  assert.equal(TCP_FLAG_PSH, 8);
});
