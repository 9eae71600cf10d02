/**
 * `systemctl reload oor@ROLE` is the role's SIGHUP, which reloads its
 * config (runner/reload.ts), and the unit's notes say so.
 *
 * @module
 */

import assert from "node:assert/strict";

const UNIT = new URL("../packaging/systemd/oor@.service", import.meta.url);

Deno.test("oor@.service reloads with SIGHUP to the main process, and says what a reload does", () => {
  const text = Deno.readTextFileSync(UNIT);
  assert.match(text, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(text, /^# \(journalctl -u oor@ms\)\. systemctl reload oor@ms sends SIGHUP/m);
  assert.doesNotMatch(text, /Reload nothing/);
});
