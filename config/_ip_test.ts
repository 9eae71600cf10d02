import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { isInterfaceName, isLoopback, parseAddress, parsePrefix, prefixCovers } from "./_ip.ts";

Deno.test("parseAddress() canonicalizes IPv6 and rejects non-addresses", () => {
  strictEqual(parseAddress("2001:DB8:0:0::1")?.text, "2001:db8::1");
  strictEqual(parseAddress("192.0.2.1")?.family, 4);
  strictEqual(parseAddress("192.0.2"), undefined);
  strictEqual(parseAddress("example.net"), undefined);
});

Deno.test("parsePrefix() accepts network prefixes of both families", () => {
  deepStrictEqual(parsePrefix("10.1.0.0/16"), {
    ok: true,
    prefix: { family: 4, address: "10.1.0.0", length: 16 },
  });
  deepStrictEqual(parsePrefix("2001:DB8::/32"), {
    ok: true,
    prefix: { family: 6, address: "2001:db8::", length: 32 },
  });
  deepStrictEqual(parsePrefix("0.0.0.0/0"), {
    ok: true,
    prefix: { family: 4, address: "0.0.0.0", length: 0 },
  });
});

Deno.test("parsePrefix() rejects bad prefixes with a reason", () => {
  const bad: [string, string][] = [
    ["10.1.2.0/16", "host bits set (did you mean 10.1.0.0/16?)"],
    ["2001:db8::1/64", "host bits set (did you mean 2001:db8::/64?)"],
    ["10.0.0.0/33", "prefix length must be 0..32 for IPv4 (got 33)"],
    ["::/129", "prefix length must be 0..128 for IPv6 (got 129)"],
    ["10.0.0.1", "must be a prefix with a length, like 10.0.0.1/32"],
    [
      "10.0.0.0/08",
      'must be an IPv4 or IPv6 prefix like 10.0.0.0/24 or 2001:db8::/32 (got "10.0.0.0/08")',
    ],
    [
      "net/8",
      'must be an IPv4 or IPv6 prefix like 10.0.0.0/24 or 2001:db8::/32 (got "net/8")',
    ],
  ];
  for (const [text, reason] of bad) {
    deepStrictEqual(parsePrefix(text), { ok: false, reason }, text);
  }
});

Deno.test("prefixCovers() is true for equal and longer prefixes inside", () => {
  const p = (t: string) => {
    const r = parsePrefix(t);
    if (!r.ok) throw new Error(r.reason);
    return r.prefix;
  };
  strictEqual(prefixCovers(p("10.0.0.0/8"), p("10.1.0.0/16")), true);
  strictEqual(prefixCovers(p("10.0.0.0/8"), p("10.0.0.0/8")), true);
  strictEqual(prefixCovers(p("10.0.0.0/8"), p("11.0.0.0/16")), false);
  strictEqual(prefixCovers(p("10.1.0.0/16"), p("10.0.0.0/8")), false);
  strictEqual(prefixCovers(p("10.0.0.0/8"), p("fd00::/16")), false);
});

Deno.test("isLoopback() knows 127/8, ::1 and mapped 127/8", () => {
  strictEqual(isLoopback(parseAddress("127.1.2.3")!), true);
  strictEqual(isLoopback(parseAddress("::1")!), true);
  strictEqual(isLoopback(parseAddress("::ffff:127.0.0.1")!), true);
  strictEqual(isLoopback(parseAddress("192.0.2.1")!), false);
});

Deno.test("isInterfaceName() follows Linux's rules", () => {
  strictEqual(isInterfaceName("eth0"), true);
  strictEqual(isInterfaceName("a23456789012345"), true);
  strictEqual(isInterfaceName("a234567890123456"), false);
  strictEqual(isInterfaceName(""), false);
  strictEqual(isInterfaceName("eth0:1"), false);
  strictEqual(isInterfaceName("a/b"), false);
  strictEqual(isInterfaceName("a b"), false);
  strictEqual(isInterfaceName(".."), false);
});
