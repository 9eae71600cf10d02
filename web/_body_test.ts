import assert from "node:assert/strict";
import { FieldError, parseDatabaseMapping, parseStaticMapping } from "./_body.ts";

/** `n` distinct IPv4 locators. */
function rlocs(n: number): { address: string }[] {
  return Array.from({ length: n }, (_, i) => ({ address: `10.200.${i >> 8}.${i & 255}` }));
}

const LIMIT = "at most 255 fit in one EID record (8-bit Locator Count, RFC 9301 §5.4)";

function fieldError(f: () => unknown): FieldError {
  try {
    f();
  } catch (e) {
    if (e instanceof FieldError) return e;
    throw e;
  }
  throw new Error("no FieldError");
}

Deno.test("parseDatabaseMapping() refuses more than 255 locators, naming the field and the limit", () => {
  const e = fieldError(() =>
    parseDatabaseMapping({ "eid-prefix": "10.2.0.0/24", "rloc-address": rlocs(256) })
  );
  assert.equal(e.field, "rloc-address");
  assert.equal(e.message, `rloc-address: 256 locators (rloc-address), ${LIMIT}`);
  // rloc-address and rloc-iface become one record together.
  const both = fieldError(() =>
    parseDatabaseMapping(
      {
        "eid-prefix": "10.2.0.0/24",
        "rloc-address": rlocs(200),
        "rloc-iface": Array.from({ length: 56 }, (_, i) => ({ interface: `eth${i}` })),
      },
      "database-mapping.added[3].",
    )
  );
  assert.equal(both.field, "database-mapping.added[3].rloc-address");
  assert.equal(
    both.message,
    `database-mapping.added[3].rloc-address: 256 locators (rloc-address and rloc-iface), ${LIMIT}`,
  );
  const m = parseDatabaseMapping({ "eid-prefix": "10.2.0.0/24", "rloc-address": rlocs(255) });
  assert.equal(m.rlocAddresses.length, 255);
});

Deno.test("parseStaticMapping() refuses more than 255 locators, with the field's full path", () => {
  const e = fieldError(() =>
    parseStaticMapping(
      { "eid-prefix": "10.2.0.0/24", "rloc-address": rlocs(300) },
      "static-map-cache.added[0].",
    )
  );
  assert.equal(e.field, "static-map-cache.added[0].rloc-address");
  assert.equal(
    e.message,
    `static-map-cache.added[0].rloc-address: 300 locators (rloc-address), ${LIMIT}`,
  );
  const s = parseStaticMapping({ "eid-prefix": "10.2.0.0/24", "rloc-address": rlocs(255) });
  assert.equal(s.rlocAddresses.length, 255);
});
