import { deepStrictEqual, strictEqual } from "node:assert/strict";
import { formatPath, LineLocator } from "./_locate.ts";

const TEXT = [
  /* 1 */ "# comment",
  /* 2 */ "debug = 1",
  /* 3 */ 'map-resolver = ["192.0.2.1",',
  /* 4 */ '  "192.0.2.2"] # trailing',
  /* 5 */ "[rloc-probing]",
  /* 6 */ "rloc-probe-interval = 30",
  /* 7 */ "[[database-mapping]]",
  /* 8 */ 'eid-prefix = "10.0.0.0/24"',
  /* 9 */ "[[database-mapping.rloc-address]]",
  /* 10 */ 'address = "192.0.2.9"',
  /* 11 */ "[[database-mapping]]",
  /* 12 */ "rloc-address = [",
  /* 13 */ '  { address = "192.0.2.10", priority = 1 },',
  /* 14 */ "  { address = '192.0.2.11',",
  /* 15 */ "    weight = 5 },",
  /* 16 */ "]",
  /* 17 */ '"quoted.key" = """',
  /* 18 */ 'multi "line" [not an array]',
  /* 19 */ '"""',
  /* 20 */ "a.b.c = 1",
  /* 21 */ "[[database-mapping.rloc-address]]",
  /* 22 */ "priority = 2",
].join("\n");

Deno.test("formatPath() writes keys with dots and indexes in brackets", () => {
  strictEqual(formatPath(["map-server", 0, "key-type"]), "map-server[0].key-type");
  strictEqual(formatPath([]), "");
});

Deno.test("LineLocator finds top-level keys and array elements across lines", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(loc.exactLineOf(["debug"]), 2);
  strictEqual(loc.exactLineOf(["map-resolver"]), 3);
  strictEqual(loc.exactLineOf(["map-resolver", 0]), 3);
  strictEqual(loc.exactLineOf(["map-resolver", 1]), 4);
});

Deno.test("LineLocator finds keys under [table] headers", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(loc.exactLineOf(["rloc-probing"]), 5);
  strictEqual(loc.exactLineOf(["rloc-probing", "rloc-probe-interval"]), 6);
});

Deno.test("LineLocator counts [[array]] occurrences, nested ones per parent", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(loc.exactLineOf(["database-mapping", 0]), 7);
  strictEqual(loc.exactLineOf(["database-mapping", 0, "eid-prefix"]), 8);
  strictEqual(loc.exactLineOf(["database-mapping", 0, "rloc-address", 0]), 9);
  strictEqual(
    loc.exactLineOf(["database-mapping", 0, "rloc-address", 0, "address"]),
    10,
  );
  strictEqual(loc.exactLineOf(["database-mapping", 1]), 11);
  // database-mapping[1] has an inline rloc-address array, then a header
  // that appends to it: smol-toml would reject that, but the locator only
  // has to stay on its feet.
  strictEqual(loc.exactLineOf(["database-mapping", 1, "rloc-address", 0]), 13);
});

Deno.test("LineLocator finds keys of inline tables spread over lines", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(
    loc.exactLineOf(["database-mapping", 1, "rloc-address", 0, "priority"]),
    13,
  );
  strictEqual(
    loc.exactLineOf(["database-mapping", 1, "rloc-address", 1, "address"]),
    14,
  );
  strictEqual(
    loc.exactLineOf(["database-mapping", 1, "rloc-address", 1, "weight"]),
    15,
  );
});

Deno.test("LineLocator skips multi-line strings and records dotted keys", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(loc.exactLineOf(["database-mapping", 1, "quoted.key"]), 17);
  strictEqual(loc.exactLineOf(["database-mapping", 1, "a"]), 20);
  strictEqual(loc.exactLineOf(["database-mapping", 1, "a", "b", "c"]), 20);
});

Deno.test("LineLocator.lineOf() falls back to the nearest recorded parent", () => {
  const loc = new LineLocator(TEXT);
  strictEqual(loc.lineOf(["database-mapping", 0, "key"]), 7);
  strictEqual(loc.lineOf(["rloc-probing", "missing"]), 5);
  strictEqual(loc.lineOf(["nowhere"]), undefined);
  deepStrictEqual(loc.exactLineOf(["database-mapping", 0, "key"]), undefined);
});

Deno.test("LineLocator counts CRLF line ends like LF", () => {
  const loc = new LineLocator("a = 1\r\n[t]\r\nb = 2\r\n");
  strictEqual(loc.exactLineOf(["t", "b"]), 3);
});

Deno.test("LineLocator keeps what it found before text it cannot read", () => {
  const loc = new LineLocator('a = 1\nb = "open\nc = 3\n');
  strictEqual(loc.exactLineOf(["a"]), 1);
  strictEqual(loc.exactLineOf(["c"]), undefined);
});
