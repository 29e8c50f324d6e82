import type { VerifiedBundle } from '../crypto/index.js'

/*
 * What messaging needs from the services below it that it does not import:
 * prekey bundles (prekeys/) and mailboxes (mailbox/). daemon.ts hands the
 * real ones in; tests hand in their own. The sender (and its mailbox
 * deposit) and the mailbox collector use them.
 */

/** Where a first session's prekey bundle comes from: the peer itself, or the DHT when it is offline. */
export interface BundleSource {
  fetchFromPeer: (peerId: string, signal?: AbortSignal) => Promise<VerifiedBundle>
  fetchFromDht: (peerId: string, signal?: AbortSignal) => Promise<VerifiedBundle>
}

/** The mailbox operations the messenger needs (src/mailbox provides them). */
export interface MailboxClient {
  closestPeers: (recipient: string, count: number, signal?: AbortSignal) => Promise<string[]>
  store: (mailboxPeer: string, recipient: string, sealed: Uint8Array, signal?: AbortSignal) => Promise<{ accepted: boolean, reason?: string }>
  fetch: (mailboxPeer: string, signal?: AbortSignal) => Promise<Array<{ id: Uint8Array, sealed: Uint8Array, storedAt: number }>>
  delete: (mailboxPeer: string, ids: Uint8Array[], signal?: AbortSignal) => Promise<number>
  /**
   * Keep a watch at exactly these mailbox peers (none: end them all);
   * `onNotify` hears when one stored something for us. Optional: without it
   * the collector polls only.
   */
  watch?: (mailboxPeers: string[], onNotify: (mailboxPeer: string) => void) => void
}
