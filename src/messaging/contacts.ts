import type { SignalCrypto } from '../crypto/index.js'
import { OctetError } from '../errors.js'
import type { EventLog } from './events.js'
import type { ContactRecord, MessagingStore } from './records.js'

/*
 * The contact list: who the user accepted or blocked, by what name, and how
 * far each peer's identity key is trusted (crypto/ keeps the keys; this
 * joins them to the records). Peers come in canonical and checked: the
 * Messenger checks what the API hands it.
 *
 * Writes: a contact with its `contact.updated` event, one commit through the
 * event log, on disk before the call returns.
 */

export interface ContactView extends ContactRecord {
  identity: 'unknown' | 'trusted' | 'changed'
}

/** The numbers the user compares with the peer's; `pendingSafetyNumber` for a changed key not yet accepted. */
export interface SafetyNumbers {
  peerId: string
  safetyNumber: string
  identity: ContactView['identity']
  pendingSafetyNumber?: string
}

export interface ContactsInit {
  db: MessagingStore
  events: EventLog
  crypto: SignalCrypto
  now: () => number
}

export class Contacts {
  constructor (private readonly init: ContactsInit) {}

  async list (): Promise<ContactView[]> {
    const result: ContactView[] = []
    for await (const contact of this.init.db.contacts.values()) {
      result.push({ ...contact, identity: await this.init.crypto.identityStatus(contact.peerId) })
    }
    return result
  }

  async get (peer: string): Promise<ContactView> {
    const contact = await this.init.db.contact(peer)
    if (contact == null) throw new OctetError('NOT_FOUND', `${peer} is not a contact`)
    return { ...contact, identity: await this.init.crypto.identityStatus(peer) }
  }

  /** Adds (or renames) a contact; adding is accepting. */
  /** Adds (or renames) a contact; `created` when there was none before. */
  async add (peer: string, name?: string): Promise<{ contact: ContactView, created: boolean }> {
    return await this.update(peer, contact => ({ ...contact, ...(name != null ? { name } : {}), state: contact.state === 'blocked' ? 'blocked' : 'accepted' }))
  }

  async setState (peer: string, state: 'accepted' | 'blocked'): Promise<ContactView> {
    return (await this.update(peer, contact => ({ ...contact, state }))).contact
  }

  private async update (peer: string, change: (contact: ContactRecord) => ContactRecord): Promise<{ contact: ContactView, created: boolean }> {
    const { db, events, crypto, now } = this.init
    const { updated, created } = await db.peerLock.run(peer, async () => {
      const at = now()
      const known = await db.contact(peer)
      const existing = known ?? { peerId: peer, state: 'accepted' as const, createdAt: at, updatedAt: at }
      const updated = { ...change(existing), peerId: peer, updatedAt: at }
      await events.commit([db.putOp(db.contacts, peer, updated)], [{ type: 'contact.updated', data: { contact: updated } }], at)
      db.remember({ contact: updated })
      return { updated, created: known == null }
    })
    return { contact: { ...updated, identity: await crypto.identityStatus(peer) }, created }
  }

  async safetyNumber (peer: string): Promise<SafetyNumbers> {
    const { crypto } = this.init
    const identity = await crypto.identityStatus(peer)
    const safetyNumber = await crypto.safetyNumber(peer).catch((err: unknown) => {
      if (err instanceof OctetError && err.code === 'NO_SESSION') throw new OctetError('NOT_FOUND', `no identity key of ${peer} known yet: exchange a message first`)
      throw err
    })
    const pending = identity === 'changed' ? await crypto.safetyNumber(peer, { pending: true }) : undefined
    return { peerId: peer, safetyNumber, identity, ...(pending != null ? { pendingSafetyNumber: pending } : {}) }
  }
}
