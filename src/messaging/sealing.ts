import { fromString as fromBase64 } from 'uint8arrays/from-string'
import type { SignalCrypto, VerifiedBundle } from '../crypto/index.js'
import { isOctetError } from '../errors.js'
import { Kind, ReceiptType, batchItemSize, encodeBatch, encodePlaintext, encodeReceipt, type BatchItem, type BatchItemKind, type Envelope } from '../wire/codec.js'
import { messageIdFromHex, newMessageId } from '../wire/ids.js'
import { MAX_BATCH_ITEMS, MAX_BATCH_PLAINTEXT_BYTES, WIRE_VERSION } from '../wire/limits.js'
import type { BundleSource } from './clients.js'
import type { OutboundEnvelope } from './dm-protocol.js'
import type { MessageRecord, MessagingStore, OutboxEntry } from './records.js'
import type { Counters } from './stats.js'

/*
 * From outbox entries to sealed envelopes, for the sender's windows and its
 * mailbox deposits alike: the Signal session they need (from the peer's
 * bundle, or the DHT's when it is offline), what each entry says (a text,
 * a receipt, a group delivery), and the sealing of one item or a BATCH of
 * them. It writes nothing: the session state it changes is written behind
 * (crypto/), and the sender decides when it must be on disk.
 */

export interface SealerInit {
  peerId: string
  db: MessagingStore
  crypto: SignalCrypto
  bundles: BundleSource
  counters: Counters
  now: () => number
  /** the sender's: aborts bundle fetches when it stops */
  signal: AbortSignal
}

/** One outbox entry, ready to seal; `message`: its text message, if it is one. */
export interface BuiltItem {
  item: BatchItem
  message?: MessageRecord
}

export class Sealer {
  constructor (private readonly init: SealerInit) {}

  /**
   * A session with the peer, from a bundle it serves itself (with a one-time
   * prekey) or, when `offline` and the peer does not answer, the one it
   * published in the DHT.
   */
  async ensureSession (peer: string, offline = false): Promise<void> {
    const { crypto, bundles } = this.init
    if (await crypto.hasSession(peer)) return
    let bundle: VerifiedBundle
    try {
      bundle = await bundles.fetchFromPeer(peer, this.init.signal)
    } catch (err) {
      if (!offline || !isOctetError(err, 'PEER_UNREACHABLE')) throw err
      bundle = await bundles.fetchFromDht(peer, this.init.signal)
    }
    await crypto.startSession(peer, bundle)
    this.init.counters.increment('dm.sessions.started')
  }

  /** A sealed envelope for one outbox entry; undefined when there is nothing left to send. */
  async buildEnvelope (entry: OutboxEntry): Promise<{ envelope: Envelope, message?: MessageRecord } | undefined> {
    const built = await this.buildItem(entry)
    if (built == null) return undefined
    return { envelope: (await this.seal(entry.peerId, [built.item])).envelope, message: built.message }
  }

  /** What one outbox entry says, before sealing; `record`: its message when the caller already read it. */
  async buildItem (entry: OutboxEntry, record?: MessageRecord): Promise<BuiltItem | undefined> {
    const { db, now } = this.init
    const id = messageIdFromHex(entry.id)
    if (id == null) return undefined
    let kind: BatchItemKind
    let seq = 0
    let timestamp = now()
    let plaintext: Uint8Array
    let message: MessageRecord | undefined
    if (entry.payload.kind === 'text') {
      message = record ?? await db.message(entry.payload.messageId)
      if (message == null || message.status === 'failed') return undefined
      kind = Kind.TEXT
      seq = message.seq
      timestamp = message.sentAt
      plaintext = encodePlaintext({ text: message.text, seq, sentAt: message.sentAt })
    } else if (entry.payload.kind === 'group') {
      kind = entry.payload.type === 'sender-key' ? Kind.SENDER_KEY : Kind.GROUP_CONTROL
      plaintext = fromBase64(entry.payload.body, 'base64')
    } else {
      kind = Kind.RECEIPT
      const type = entry.payload.receipt === 'read' ? ReceiptType.READ : ReceiptType.DELIVERED
      plaintext = encodeReceipt({ type, ids: entry.payload.ids.flatMap(h => messageIdFromHex(h) ?? []) })
    }
    return { item: { id, kind, seq, timestamp, plaintext }, message }
  }

  /**
   * Seals items for `peer`: one item as an envelope of its own, several as
   * one BATCH envelope — one Signal message, and so one ratchet step, for the
   * lot. The price is coarser forward secrecy: a leaked message key opens
   * every item sealed with it (items sealed within the same moment).
   */
  async seal (peer: string, items: BatchItem[]): Promise<OutboundEnvelope> {
    const { crypto, peerId, now } = this.init
    const only = items.length === 1 ? items[0] : undefined
    if (only != null) {
      const sealed = await crypto.encrypt(peer, only.plaintext)
      return {
        envelope: { version: WIRE_VERSION, id: only.id, recipient: peer, sender: peerId, timestamp: only.timestamp, seq: only.seq, kind: only.kind, cipherType: sealed.type, ciphertext: sealed.body }
      }
    }
    const sealed = await crypto.encrypt(peer, encodeBatch(items))
    return {
      envelope: { version: WIRE_VERSION, id: newMessageId(), recipient: peer, sender: peerId, timestamp: now(), seq: items.length, kind: Kind.BATCH, cipherType: sealed.type, ciphertext: sealed.body },
      items: items.map(item => item.id)
    }
  }
}

/** Consecutive items in groups that each fit one Batch (by item count and encoded size). */
export function packBatches (items: BatchItem[]): BatchItem[][] {
  const groups: BatchItem[][] = []
  let group: BatchItem[] = []
  let size = 0
  for (const item of items) {
    const itemSize = batchItemSize(item)
    if (group.length > 0 && (group.length === MAX_BATCH_ITEMS || size + itemSize > MAX_BATCH_PLAINTEXT_BYTES)) {
      groups.push(group)
      group = []
      size = 0
    }
    group.push(item)
    size += itemSize
  }
  if (group.length > 0) groups.push(group)
  return groups
}
