/**
 * The status page names since when a map-server's registrations fail and
 * their likely cause (roles/tunnel_router/registration_alarm.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { renderPage } from "./_page.ts";
import { tunnelRouterPage } from "../tests/page_model.ts";

Deno.test("renderPage() shows a failing map-server as failing since when, with its likely cause", () => {
  const page = tunnelRouterPage();
  const servers = page.status.value.mapServers!.map((m) =>
    m.state === "failing"
      ? { ...m, failingSince: page.now - 90_000, cause: "wrong key or key-type, <unreachable>" }
      : m
  );
  const html = renderPage({
    ...page,
    status: { value: { ...page.status.value, mapServers: servers } },
  });
  const t = /<table id="map-server-table">([\s\S]*?)<\/table>/.exec(html)?.[1] ?? "";
  assert.match(
    t,
    /<th scope="row">192\.0\.2\.11<\/th><td><span class="state down">failing<\/span> since <time [^>]*>1 min 30 s ago<\/time>: wrong key or key-type, &lt;unreachable&gt;<\/td>/,
  );
  assert.match(
    t,
    /<th scope="row">192\.0\.2\.10<\/th><td><span class="state up">registered<\/span><\/td>/,
  );
});
