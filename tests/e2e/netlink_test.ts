/**
 * Runs the rtnetlink tests (ffi/_netlink_netns.ts) in a fresh network
 * namespace, as root; ignored, with the reason in the test name, elsewhere.
 *
 * @module
 */

import assert from "node:assert/strict";
import { netnsTest, runInNetns } from "../netns.ts";

netnsTest("rtnetlink: addresses, routes, rules, dumps, errors, events (in a netns)", async () => {
  const out = await runInNetns(new URL("./netlink_netns.ts", import.meta.url));
  console.log(out.split("\n").filter((l) => / \.\.\. ok/.test(l)).join("\n"));
  assert.match(out, /ok \| \d+ passed \| 0 failed/);
});
