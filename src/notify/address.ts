/**
 * The one e-mail address check, in a module of its own: `--to` parsing (every upload) needs it without loading
 * the notify stage and its SMTP client.
 */

const EMAIL_RE = /^[^\s@<>(),;:"[\]\\]+@[^\s@<>(),;:"[\]\\]+\.[^\s@<>(),;:"[\]\\]+$|^[^\s@<>(),;:"[\]\\]+@(localhost|\[[0-9a-fA-F:.]+\])$/;

/** Check an e-mail address well enough to catch typos and header injection (no spaces, commas or angle brackets). */
export function isEmailAddress(s: string): boolean {
  return EMAIL_RE.test(s);
}
