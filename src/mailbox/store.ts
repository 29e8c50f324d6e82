import { createHash } from 'node:crypto'
import type { BytesSublevel, RecordSublevel, Store, StoreOp } from '../store/database.js'
import {
  DEFAULT_TTL,
  ENTRY_OVERHEAD_BYTES,
  MAX_BYTES_PER_RECIPIENT,
  MAX_ENVELOPES_PER_RECIPIENT,
  MAX_TOTAL_BYTES,
  STORED_ENVELOPE_OVERHEAD_BYTES,
  SWEEP_BATCH
} from './constants.js'

/*
 * Sealed envelopes held for other peers, in four sublevels of the Store:
 *
 *   mailbox-env     <recipient>!<seq>                → the sealed bytes
 *   mailbox-meta    <recipient>!<seq>                → { id, storedAt, expiresAt, size }
 *   mailbox-ids     <recipient>!<id hex>             → <seq>
 *   mailbox-expiry  <expiresAt>!<recipient>!<seq>    → 1
 *
 * <seq> is a node-wide counter in fixed-width hex, so a recipient's entries
 * list in the order they arrived (oldest first); <expiresAt> is fixed-width
 * decimal, so the sweep reads only what has expired. An entry's four records
 * are written and deleted in one batch. Nothing records who stored an
 * envelope: the storing peer is not an input of any function here.
 */

/** An envelope held for a recipient. `id` is the sha-256 of `sealed`. */
export interface HeldEnvelope {
  id: Uint8Array
  sealed: Uint8Array
  /** ms since the Unix epoch */
  storedAt: number
  expiresAt: number
}

export interface MailboxStoreOptions {
  /** how long an envelope is kept, in ms */
  ttl: number
  maxEnvelopesPerRecipient: number
  /** bytes charged (chargedBytes) per recipient */
  maxBytesPerRecipient: number
  /** bytes charged for all recipients together */
  maxTotalBytes: number
  now: () => number
}

export const DEFAULT_STORE_OPTIONS: Readonly<MailboxStoreOptions> = {
  ttl: DEFAULT_TTL,
  maxEnvelopesPerRecipient: MAX_ENVELOPES_PER_RECIPIENT,
  maxBytesPerRecipient: MAX_BYTES_PER_RECIPIENT,
  maxTotalBytes: MAX_TOTAL_BYTES,
  now: Date.now
}

export type QuotaName = 'recipient-count' | 'recipient-bytes' | 'disk'

export type PutResult =
  /** held now (`stored`) or already held (`duplicate`: kept once); `count` is what is held for the recipient */
  | { status: 'stored' | 'duplicate', id: Uint8Array, count: number }
  | { status: 'quota', quota: QuotaName, reason: string }

export interface MailboxUsage {
  envelopes: number
  /** bytes charged: sealed sizes plus ENTRY_OVERHEAD_BYTES per envelope */
  bytes: number
  recipients: number
}

export interface Page {
  envelopes: HeldEnvelope[]
  /** more envelopes follow: pass `cursor` as `after` for the next page */
  more: boolean
  cursor: string | undefined
}

interface Meta {
  id: string
  storedAt: number
  expiresAt: number
  size: number
}

interface Usage {
  count: number
  bytes: number
}

/** What an envelope costs against the byte quotas. */
export function chargedBytes (sealedBytes: number): number {
  return sealedBytes + ENTRY_OVERHEAD_BYTES
}

/** The content address of a sealed envelope. */
export function envelopeId (sealed: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(sealed).digest())
}

const SEQ_DIGITS = 16
const TIME_DIGITS = 16
/** Sorts after every character of a PeerId or a hex number: the end of a prefix range. */
const RANGE_END = '~'

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, 'hex'))

export class MailboxStore {
  private readonly env: BytesSublevel
  private readonly meta: RecordSublevel<Meta>
  private readonly ids: RecordSublevel<string>
  private readonly expiry: RecordSublevel<number>
  private readonly usage = new Map<string, Usage>()
  private totalCount = 0
  private totalBytes = 0
  private nextSeq = 0
  private tail: Promise<unknown> = Promise.resolve()
  readonly options: Readonly<MailboxStoreOptions>

  private constructor (private readonly store: Store, options: Partial<MailboxStoreOptions>) {
    this.options = { ...DEFAULT_STORE_OPTIONS, ...withoutUndefined(options) }
    this.env = store.bytes('mailbox-env')
    this.meta = store.records<Meta>('mailbox-meta')
    this.ids = store.records<string>('mailbox-ids')
    this.expiry = store.records<number>('mailbox-expiry')
  }

  /** Opens the mailbox sublevels and rebuilds the counters from a scan of what is held. */
  static async open (store: Store, options: Partial<MailboxStoreOptions> = {}): Promise<MailboxStore> {
    const mailbox = new MailboxStore(store, options)
    await mailbox.rebuild()
    return mailbox
  }

  private async rebuild (): Promise<void> {
    this.usage.clear()
    this.totalCount = 0
    this.totalBytes = 0
    let maxSeq = -1
    for await (const [key, meta] of this.meta.iterator()) {
      const { recipient, seq } = splitKey(key)
      this.charge(recipient, 1, chargedBytes(meta.size))
      maxSeq = Math.max(maxSeq, parseInt(seq, 16))
    }
    this.nextSeq = maxSeq + 1
  }

  /** Totals over all recipients. */
  stats (): MailboxUsage {
    return { envelopes: this.totalCount, bytes: this.totalBytes, recipients: this.usage.size }
  }

  /** What is held for one recipient (counted until swept, expired or not). */
  usageOf (recipient: string): { count: number, bytes: number } {
    const usage = this.usage.get(recipient)
    return { count: usage?.count ?? 0, bytes: usage?.bytes ?? 0 }
  }

  /** Recipients we hold envelopes for. */
  recipients (): string[] {
    return [...this.usage.keys()]
  }

  /**
   * Keeps `sealed` for `recipient` until now + ttl, unless a quota is full.
   * The same bytes stored twice are kept once. `recipient` must be a
   * canonical PeerId string (the protocol layer checks it).
   */
  async put (recipient: string, sealed: Uint8Array): Promise<PutResult> {
    const id = envelopeId(sealed)
    const idHex = toHex(id)
    return await this.exclusive(async () => {
      const now = this.options.now()
      const ops: StoreOp[] = []
      let freedCount = 0
      let freedBytes = 0
      const existingSeq = await this.ids.get(idKey(recipient, idHex))
      if (existingSeq != null) {
        const key = entryKey(recipient, existingSeq)
        const meta = await this.meta.get(key)
        if (meta != null && meta.expiresAt > now) return { status: 'duplicate', id, count: this.usageOf(recipient).count }
        // an expired copy the sweep has not reached yet: replaced by the fresh one
        if (meta != null) {
          ops.push(...this.removalOps(recipient, existingSeq, meta))
          freedCount = 1
          freedBytes = chargedBytes(meta.size)
        }
      }

      const usage = this.usageOf(recipient)
      const cost = chargedBytes(sealed.byteLength)
      const { maxEnvelopesPerRecipient, maxBytesPerRecipient, maxTotalBytes } = this.options
      if (usage.count - freedCount + 1 > maxEnvelopesPerRecipient) {
        return { status: 'quota', quota: 'recipient-count', reason: `recipient envelope quota: ${usage.count - freedCount} of ${maxEnvelopesPerRecipient} envelopes held for this recipient` }
      }
      if (usage.bytes - freedBytes + cost > maxBytesPerRecipient) {
        return { status: 'quota', quota: 'recipient-bytes', reason: `recipient byte quota: ${usage.bytes - freedBytes} of ${maxBytesPerRecipient} bytes held for this recipient, this envelope needs ${cost}` }
      }
      if (this.totalBytes - freedBytes + cost > maxTotalBytes) {
        return { status: 'quota', quota: 'disk', reason: `mailbox disk budget: ${this.totalBytes - freedBytes} of ${maxTotalBytes} bytes held for all recipients, this envelope needs ${cost}` }
      }

      const seq = this.nextSeq.toString(16).padStart(SEQ_DIGITS, '0')
      const key = entryKey(recipient, seq)
      const meta: Meta = { id: idHex, storedAt: now, expiresAt: now + this.options.ttl, size: sealed.byteLength }
      ops.push(
        { type: 'put', sublevel: this.env, key, value: sealed },
        { type: 'put', sublevel: this.meta, key, value: meta },
        { type: 'put', sublevel: this.ids, key: idKey(recipient, idHex), value: seq },
        { type: 'put', sublevel: this.expiry, key: expiryKey(meta.expiresAt, recipient, seq), value: 1 }
      )
      await this.store.batch(ops)
      this.nextSeq++
      if (freedCount > 0) this.charge(recipient, -freedCount, -freedBytes)
      this.charge(recipient, 1, cost)
      return { status: 'stored', id, count: this.usageOf(recipient).count }
    })
  }

  /**
   * A recipient's unexpired envelopes, oldest first: after `after` (a cursor
   * of a previous page), at most `limit`, and at most `maxBytes` of sealed
   * bytes plus STORED_ENVELOPE_OVERHEAD_BYTES each — but always at least one.
   */
  async list (recipient: string, options: { after?: string, limit: number, maxBytes?: number }): Promise<Page> {
    const now = this.options.now()
    const maxBytes = options.maxBytes ?? Number.POSITIVE_INFINITY
    const picked: Array<{ key: string, meta: Meta }> = []
    let bytes = 0
    let more = false
    const lower = options.after != null && options.after.startsWith(`${recipient}!`) ? options.after : `${recipient}!`
    for await (const [key, meta] of this.meta.iterator({ gt: lower, lt: `${recipient}!${RANGE_END}` })) {
      if (meta.expiresAt <= now) continue
      const cost = meta.size + STORED_ENVELOPE_OVERHEAD_BYTES
      if (picked.length >= options.limit || (picked.length > 0 && bytes + cost > maxBytes)) {
        more = true
        break
      }
      picked.push({ key, meta })
      bytes += cost
    }
    const values = picked.length === 0 ? [] : await this.env.getMany(picked.map(p => p.key))
    const envelopes: HeldEnvelope[] = []
    picked.forEach(({ meta }, i) => {
      const sealed = values[i]
      // deleted since the scan: skip it
      if (sealed != null) envelopes.push({ id: fromHex(meta.id), sealed: plain(sealed), storedAt: meta.storedAt, expiresAt: meta.expiresAt })
    })
    return { envelopes, more, cursor: picked.at(-1)?.key ?? options.after }
  }

  /** Drops the named envelopes of a recipient; returns how many were held. */
  async delete (recipient: string, ids: Uint8Array[]): Promise<number> {
    return await this.exclusive(async () => {
      const wanted = [...new Set(ids.map(toHex))]
      if (wanted.length === 0) return 0
      const seqs = await this.ids.getMany(wanted.map(id => idKey(recipient, id)))
      const found = seqs.filter((s): s is string => s != null)
      const metas = found.length === 0 ? [] : await this.meta.getMany(found.map(seq => entryKey(recipient, seq)))
      const ops: StoreOp[] = []
      let count = 0
      let bytes = 0
      found.forEach((seq, i) => {
        const meta = metas[i]
        if (meta == null) return
        ops.push(...this.removalOps(recipient, seq, meta))
        count++
        bytes += chargedBytes(meta.size)
      })
      await this.store.batch(ops)
      this.charge(recipient, -count, -bytes)
      return count
    })
  }

  /** Removes every envelope whose time is up; returns how many. */
  async sweep (): Promise<number> {
    return await this.exclusive(async () => {
      const now = this.options.now()
      let removed = 0
      while (true) {
        const due: Array<{ key: string, recipient: string, seq: string }> = []
        for await (const key of this.expiry.keys({ lt: timeKey(now + 1), limit: SWEEP_BATCH })) {
          const [, recipient = '', seq = ''] = key.split('!')
          due.push({ key, recipient, seq })
        }
        if (due.length === 0) return removed
        const metas = await this.meta.getMany(due.map(d => entryKey(d.recipient, d.seq)))
        const ops: StoreOp[] = []
        const freed: Array<{ recipient: string, bytes: number }> = []
        due.forEach(({ key, recipient, seq }, i) => {
          const meta = metas[i]
          if (meta == null) {
            // an index entry without its envelope (cannot happen with atomic batches): drop it
            ops.push({ type: 'del', sublevel: this.expiry, key })
            return
          }
          ops.push(...this.removalOps(recipient, seq, meta))
          freed.push({ recipient, bytes: chargedBytes(meta.size) })
        })
        await this.store.batch(ops)
        for (const { recipient, bytes } of freed) this.charge(recipient, -1, -bytes)
        removed += freed.length
        if (due.length < SWEEP_BATCH) return removed
      }
    })
  }

  private removalOps (recipient: string, seq: string, meta: Meta): StoreOp[] {
    const key = entryKey(recipient, seq)
    return [
      { type: 'del', sublevel: this.env, key },
      { type: 'del', sublevel: this.meta, key },
      { type: 'del', sublevel: this.ids, key: idKey(recipient, meta.id) },
      { type: 'del', sublevel: this.expiry, key: expiryKey(meta.expiresAt, recipient, seq) }
    ]
  }

  private charge (recipient: string, count: number, bytes: number): void {
    const usage = this.usage.get(recipient) ?? { count: 0, bytes: 0 }
    usage.count += count
    usage.bytes += bytes
    if (usage.count <= 0) this.usage.delete(recipient)
    else this.usage.set(recipient, usage)
    this.totalCount += count
    this.totalBytes += bytes
  }

  /** Writes run one at a time, so quota checks and counters see every earlier write. */
  private async exclusive<T> (step: () => Promise<T>): Promise<T> {
    const run = this.tail.then(step)
    this.tail = run.catch(() => {})
    return await run
  }
}

function entryKey (recipient: string, seq: string): string {
  return `${recipient}!${seq}`
}

function idKey (recipient: string, idHex: string): string {
  return `${recipient}!${idHex}`
}

function timeKey (ms: number): string {
  return Math.max(0, Math.floor(ms)).toString().padStart(TIME_DIGITS, '0')
}

function expiryKey (expiresAt: number, recipient: string, seq: string): string {
  return `${timeKey(expiresAt)}!${recipient}!${seq}`
}

function splitKey (key: string): { recipient: string, seq: string } {
  const at = key.lastIndexOf('!')
  return { recipient: key.slice(0, at), seq: key.slice(at + 1) }
}

/** A plain Uint8Array view of what level returns (a Buffer), for callers that compare or encode it. */
function plain (bytes: Uint8Array): Uint8Array {
  return Buffer.isBuffer(bytes) ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes
}

function withoutUndefined<T extends object> (options: Partial<T>): Partial<T> {
  return Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as Partial<T>
}
