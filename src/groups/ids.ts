import { createHash } from 'node:crypto'

/**
 * A group message's id: the first 16 bytes of SHA-256 over the UTF-8 of
 * `<groupId>:<author>:<seq>` (group id in lowercase hex, the author's PeerId
 * in base58btc, seq in decimal; none of them contains a colon), as 32
 * lowercase hex digits. Every member computes the same id for a message, and
 * it has the shape of a direct message's id.
 */
export function groupMessageId (groupId: string, author: string, seq: number): string {
  return createHash('sha256').update(`${groupId}:${author}:${seq}`, 'utf8').digest().subarray(0, 16).toString('hex')
}
