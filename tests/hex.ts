/**
 * Hex fixtures for tests: {@link hex} turns hex text into bytes,
 * {@link toHex} bytes into hex text.
 *
 * @module
 */

/**
 * The bytes of hex text. Whitespace and `_` are ignored, and `#` or `//`
 * starts a comment to the end of the line, so a fixture can be written
 * one commented field per line. Throws on an odd number of digits or a
 * character that is not a hex digit.
 */
export function hex(text: string): Uint8Array {
  const t = text.replace(/(#|\/\/)[^\n]*/g, "").replace(/[\s_]/g, "");
  if (t.length % 2 !== 0 || /[^0-9a-fA-F]/.test(t)) throw new Error(`bad hex fixture: ${text}`);
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(t.slice(i * 2, i * 2 + 2), 16);
  return out;
}

/** Lowercase hex of `bytes`, two digits a byte, no separators. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}
