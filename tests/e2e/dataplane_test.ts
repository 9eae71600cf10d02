/**
 * The data plane with real traffic between network namespaces, as root
 * (tests/dataplane_netns.ts, run in a fresh namespace; ignored with the
 * reason elsewhere). The packet logic has its unit tests beside it
 * (dataplane/engine_test.ts, mod_test.ts).
 *
 * @module
 */

import assert from "node:assert/strict";
import { netnsTest, runInNetns } from "../netns.ts";

netnsTest(
  "data plane: LISP and VXLAN-GPE between namespaces, misses, priorities, rtr (in a netns)",
  async () => {
    const out = await runInNetns(new URL("./dataplane_netns.ts", import.meta.url));
    console.log(out.split("\n").filter((l) => / \.\.\. ok|=>/.test(l)).join("\n"));
    assert.match(out, /ok \| [1-9]\d* passed( \(\d+ steps?\))? \| 0 failed/);
  },
);
