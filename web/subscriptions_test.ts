import assert from "node:assert/strict";
import type { StatusSource, SubscriptionView } from "../core/status.ts";
import { createApp } from "./app.ts";

const T0 = Date.UTC(2025, 0, 1);

const SUBSCRIBER: SubscriptionView = {
  prefix: "[5]10.3.0.5/32",
  iid: 5,
  xtrId: "0123456789abcdef0123456789abcdef",
  siteId: "0000000000000009",
  itrRlocs: ["192.0.2.2"],
  notify: "192.0.2.2:4342",
  site: "10.2.0.0/24",
  published: 3,
  acknowledged: 2,
  pending: true,
  subscribedAt: T0 - 60_000,
  expiresAt: T0 + 600_000,
};

/** A map-server's status source with one subscriber (RFC 9437). */
const source: StatusSource = {
  sites: () => ({ sites: [], registrations: [], rejections: [], subscriptions: [SUBSCRIBER] }),
};

function app() {
  return createApp(source, { version: "9.9.9", role: "ms", startedAt: T0, now: () => T0 });
}

Deno.test("GET /api/v1/sites lists a map-server's subscribers (RFC 9437) with kebab-case keys", async () => {
  const res = await app().request("/api/v1/sites");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.subscriptions, [{
    "eid-prefix": "10.3.0.5/32",
    iid: 5,
    "xtr-id": "0123456789abcdef0123456789abcdef",
    "site-id": "0000000000000009",
    "itr-rlocs": ["192.0.2.2"],
    notify: "192.0.2.2:4342",
    site: "10.2.0.0/24",
    published: 3,
    acknowledged: 2,
    pending: true,
    "subscribed-at": T0 - 60_000,
    "expires-at": T0 + 600_000,
  }]);
});

Deno.test("the status page shows a map-server's subscribers, and says when there is none", async () => {
  const page = await (await app().request("/")).text();
  assert.match(page, /id="subscriptions-h"/);
  assert.match(page, /0123456789abcdef0123456789abcdef/);
  assert.match(page, /192\.0\.2\.2:4342/);
  assert.match(page, /\(one pending\)/);
  const none = createApp(
    { sites: () => ({ sites: [], registrations: [], subscriptions: [] }) },
    { version: "9.9.9", role: "ms", startedAt: T0, now: () => T0 },
  );
  assert.match(await (await none.request("/")).text(), /No subscriber\./);
});
