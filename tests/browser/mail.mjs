// Reads a message consentd wrote to the development mail folder: the
// decoded text/plain part of a multipart/alternative message (base64,
// UTF-8), as the person's mail client would show it.
import { readFileSync } from 'node:fs';

export function mailText(path) {
  const raw = readFileSync(path, 'latin1');
  const parts = raw.split(/\r\n--[^\r\n]+\r\n/);
  for (const part of parts) {
    const [head, ...rest] = part.split('\r\n\r\n');
    if (!/Content-Type: text\/plain/i.test(head)) continue;
    const body = rest.join('\r\n\r\n').split(/\r\n--/)[0];
    if (/Content-Transfer-Encoding: base64/i.test(head)) {
      return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
    }
    return Buffer.from(body, 'latin1').toString('utf8');
  }
  throw new Error(`no text part in ${path}`);
}
