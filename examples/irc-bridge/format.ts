/**
 * Text between the two sides. An octet message becomes IRC lines `<name> text`: one per
 * line of the text, each cut to what fits in an IRC line (512 bytes with the prefix the
 * server adds when it relays it), at a space when there is one, never inside a character.
 * An IRC line becomes the octet text `<nick> text` (`* nick text` for a /me action).
 */

/** IRC's line limit, CRLF included (RFC 2812 §2.3). */
const IRC_LINE_BYTES = 512
/**
 * What the server puts before our PRIVMSG when it relays it: `:nick!user@host ` — up to 30
 * + 10 + 63 bytes and punctuation on common servers.
 */
const RELAY_PREFIX_BYTES = 110

/** How many bytes of text fit after `PRIVMSG <channel> :` in one line as the channel receives it. */
export function ircTextBytes (channel: string): number {
  return IRC_LINE_BYTES - 2 - Buffer.byteLength(`PRIVMSG ${channel} :`) - RELAY_PREFIX_BYTES
}

/** The IRC lines for an octet message of `name`: `<name> …` each, at most `maxBytes` long. */
export function toIrcLines (name: string, text: string, maxBytes: number): string[] {
  const prefix = `<${name.replace(/[\s\x00-\x1f]+/g, '_')}> `
  const room = maxBytes - Buffer.byteLength(prefix)
  const lines: string[] = []
  for (const line of text.split(/\r\n|\r|\n/)) {
    // C0 controls other than IRC's formatting codes (bold, colour, reset, reverse, italics, underline) go
    const clean = line.replace(/[\x00-\x01\x04-\x0e\x10-\x15\x17-\x1c\x1e\x7f]/g, '').trimEnd()
    if (clean.trim() === '') continue
    for (const part of splitBytes(clean, room)) lines.push(prefix + part)
  }
  return lines
}

/** Cuts `text` into parts of at most `maxBytes` UTF-8 bytes, at the last space that fits (which goes), else between characters. */
export function splitBytes (text: string, maxBytes: number): string[] {
  const parts: string[] = []
  let rest = text
  while (Buffer.byteLength(rest) > maxBytes) {
    let bytes = 0
    let end = 0
    for (const char of rest) {
      const size = Buffer.byteLength(char)
      if (bytes + size > maxBytes) break
      bytes += size
      end += char.length
    }
    const space = rest.lastIndexOf(' ', end)
    const cut = space > 0 ? space : end
    parts.push(rest.slice(0, cut))
    rest = rest.slice(space > 0 ? cut + 1 : cut)
  }
  if (rest !== '') parts.push(rest)
  return parts
}

/** The octet text for a line said on IRC. */
export function toOctetText (nick: string, text: string): string {
  const action = /^\x01ACTION ([^\x01]*)\x01?$/.exec(text)
  if (action != null) return `* ${nick} ${action[1] ?? ''}`
  return `<${nick}> ${text}`
}

/** CTCP requests other than ACTION (VERSION, PING …) are for the bridge's client, not the group. */
export function isCtcp (text: string): boolean {
  return text.startsWith('\x01') && !text.startsWith('\x01ACTION ')
}
