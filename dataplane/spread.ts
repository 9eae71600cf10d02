/**
 * Which data-plane Worker a received datagram goes to, when a tunnel
 * router runs several (`[data-plane] workers`): each Worker has its own
 * data socket of each family, all bound to the data port with
 * SO_REUSEPORT, and {@link flowSpreadFilter} is the classic BPF program
 * the kernel runs on every datagram to pick the socket of the group.
 *
 * The outer header cannot tell flows apart (every datagram between two
 * RLOCs goes from and to the data port), so the program reads the inner
 * packet behind the 8-byte LISP (or VXLAN-GPE) header: the IPv4 addresses
 * (IPv6: the last 32 bits of each) and, for TCP and UDP that are not
 * fragments, the ports. They are XORed, so both directions of a flow give
 * the same value, mixed (MurmurHash3's finalizer), and taken modulo the number of Workers. So one
 * flow is always handled by one Worker, on both ends when both run as
 * many, and the TUN side follows: a multi-queue TUN hands a packet to the
 * queue that last wrote one of the same flow (ffi/tun.ts). A datagram that
 * is not an IP packet inside (a control message on the data port) is
 * left to the kernel's hash.
 *
 * {@link flowSpreadIndex} computes the same thing in TypeScript, for
 * tests and for reasoning about where a flow goes.
 *
 * @module
 */

/** A classic BPF instruction: opcode, jump if true, jump if false, k. */
type Insn = readonly [number, number | string, number | string, number];

/** The multipliers of the mixing steps (MurmurHash3's finalizer). */
const MIX1 = 0x85ebca6b;
const MIX2 = 0xc2b2ae35;

/** Returned for a datagram without an inner IP packet: out of range, so the kernel's hash decides. */
const TO_KERNEL_HASH = 0xffffffff;

/**
 * Assembles `code` (jump targets as labels: a string names the instruction
 * after the `label` entry with that name) into `struct sock_filter` bytes
 * in host order.
 */
function assemble(code: readonly (Insn | { readonly label: string })[]): Uint8Array {
  const at = new Map<string, number>();
  const insns: Insn[] = [];
  for (const c of code) {
    if ("label" in c) at.set(c.label, insns.length);
    else insns.push(c);
  }
  const b = new Uint8Array(insns.length * 8);
  const v = new DataView(b.buffer);
  const le = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
  insns.forEach(([op, jt, jf, k], i) => {
    const rel = (j: number | string, what: string): number => {
      if (typeof j === "number") return j;
      const t = at.get(j);
      if (t === undefined || t <= i || t - i - 1 > 255) throw new RangeError(`bad ${what} ${j}`);
      return t - i - 1;
    };
    // ja keeps its offset in k.
    const kk = op === 0x05 && typeof jt === "string" ? rel(jt, "ja") : k;
    v.setUint16(i * 8, op, le);
    b[i * 8 + 2] = op === 0x05 ? 0 : rel(jt, "jt");
    b[i * 8 + 3] = op === 0x05 ? 0 : rel(jf, "jf");
    v.setUint32(i * 8 + 4, kk >>> 0, le);
  });
  return b;
}

/**
 * The reuse-port BPF program for `n` Workers (see the module notes); it
 * runs on the UDP payload. Throws RangeError for `n` outside 1..65535.
 */
export function flowSpreadFilter(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new RangeError(`bad worker count ${n}`);
  return assemble([
    [0x30, 0, 0, 8], // ldb [8]: the inner packet's version
    [0x74, 0, 0, 4], // rsh #4
    [0x15, "v4", 0, 4], // jeq #4
    [0x15, "v6", "kernel", 6], // jeq #6
    { label: "v4" },
    [0x20, 0, 0, 20], // ld [20]: source address
    [0x07, 0, 0, 0], // tax
    [0x20, 0, 0, 24], // ld [24]: destination address
    [0xac, 0, 0, 0], // xor x
    [0x02, 0, 0, 0], // st M[0]
    [0x28, 0, 0, 14], // ldh [14]: flags and fragment offset
    [0x45, "noports", 0, 0x3fff], // jset #0x3fff: MF or an offset, a fragment
    [0x30, 0, 0, 17], // ldb [17]: protocol
    [0x15, "ports4", 0, 6], // jeq #6 (TCP)
    [0x15, "ports4", "noports", 17], // jeq #17 (UDP)
    { label: "ports4" },
    [0xb1, 0, 0, 8], // ldxb 4*([8]&0xf): the header's length
    [0x40, 0, 0, 8], // ld [x+8]: source and destination ports
    [0x05, "ports", 0, 0], // ja ports
    { label: "v6" },
    [0x20, 0, 0, 28], // ld [28]: the source address's last 32 bits
    [0x07, 0, 0, 0], // tax
    [0x20, 0, 0, 44], // ld [44]: the destination's
    [0xac, 0, 0, 0], // xor x
    [0x02, 0, 0, 0], // st M[0]
    [0x30, 0, 0, 14], // ldb [14]: next header
    [0x15, "ports6", 0, 6], // jeq #6
    [0x15, "ports6", "noports", 17], // jeq #17
    { label: "ports6" },
    [0x20, 0, 0, 48], // ld [48]: ports behind the fixed header
    { label: "ports" },
    [0x07, 0, 0, 0], // tax
    [0x74, 0, 0, 16], // rsh #16
    [0xac, 0, 0, 0], // xor x: low half = source port ^ destination port
    [0x54, 0, 0, 0xffff], // and #0xffff
    [0x07, 0, 0, 0], // tax
    [0x60, 0, 0, 0], // ld M[0]
    [0xac, 0, 0, 0], // xor x
    [0x05, "mix", 0, 0], // ja mix
    { label: "noports" },
    [0x60, 0, 0, 0], // ld M[0]
    { label: "mix" },
    [0x07, 0, 0, 0], // tax
    [0x74, 0, 0, 16], // rsh #16
    [0xac, 0, 0, 0], // xor x
    [0x24, 0, 0, MIX1], // mul #MIX1
    [0x07, 0, 0, 0], // tax
    [0x74, 0, 0, 13], // rsh #13
    [0xac, 0, 0, 0], // xor x
    [0x24, 0, 0, MIX2], // mul #MIX2
    [0x07, 0, 0, 0], // tax
    [0x74, 0, 0, 16], // rsh #16
    [0xac, 0, 0, 0], // xor x
    [0x94, 0, 0, n], // mod #n
    [0x16, 0, 0, 0], // ret a: the socket's index in the group
    { label: "kernel" },
    [0x06, 0, 0, TO_KERNEL_HASH], // ret #-1: the kernel's own hash
  ]);
}

function be32(p: Uint8Array, o: number, end: number): number {
  return o + 4 > end
    ? -1
    : ((p[o]! << 24) | (p[o + 1]! << 16) | (p[o + 2]! << 8) | p[o + 3]!) >>> 0;
}

/** {@link flowSpreadHash}'s answer for a datagram without an inner IP packet. */
export const NOT_IP = -1;
/** {@link flowSpreadHash}'s answer where the program would read past the end (index 0). */
export const TOO_SHORT = -2;

/**
 * The 32-bit flow hash {@link flowSpreadFilter} computes (before the
 * modulo) for the UDP payload at `p[o, o+len)` (LISP or VXLAN-GPE header,
 * then the inner packet); {@link NOT_IP} or {@link TOO_SHORT} otherwise.
 * Allocates nothing: the data plane keys its UDP GSO runs by it.
 */
export function flowSpreadHash(p: Uint8Array, o: number, len: number): number {
  const end = o + len;
  if (len < 9) return TOO_SHORT;
  const version = p[o + 8]! >> 4;
  let a: number;
  let ports = -1;
  if (version === 4) {
    const s = be32(p, o + 20, end);
    const d = be32(p, o + 24, end);
    if (s < 0 || d < 0) return TOO_SHORT;
    a = (s ^ d) >>> 0;
    const frag = ((p[o + 14]! << 8) | p[o + 15]!) & 0x3fff;
    const proto = p[o + 17];
    if (frag === 0 && (proto === 6 || proto === 17)) {
      ports = be32(p, o + 8 + 4 * (p[o + 8]! & 0xf), end);
      if (ports < 0) return TOO_SHORT;
    }
  } else if (version === 6) {
    const s = be32(p, o + 28, end);
    const d = be32(p, o + 44, end);
    if (s < 0 || d < 0) return TOO_SHORT;
    a = (s ^ d) >>> 0;
    const next = p[o + 14];
    if (next === 6 || next === 17) {
      ports = be32(p, o + 48, end);
      if (ports < 0) return TOO_SHORT;
    }
  } else return NOT_IP;
  if (ports >= 0) a = (a ^ ((ports ^ (ports >>> 16)) & 0xffff)) >>> 0;
  a = (a ^ (a >>> 16)) >>> 0;
  a = Math.imul(a, MIX1) >>> 0;
  a = (a ^ (a >>> 13)) >>> 0;
  a = Math.imul(a, MIX2) >>> 0;
  return (a ^ (a >>> 16)) >>> 0;
}

/**
 * The Worker {@link flowSpreadFilter} gives the UDP payload `payload`
 * (LISP header and inner packet) among `n`; -1 when it leaves it to the
 * kernel's hash, and 0 where the program would read past the end (the
 * kernel then ends it with 0).
 */
export function flowSpreadIndex(payload: Uint8Array, n: number): number {
  const h = flowSpreadHash(payload, 0, payload.length);
  return h === NOT_IP ? -1 : h === TOO_SHORT ? 0 : h % n;
}
