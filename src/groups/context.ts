/**
 * What every part of the group service shares: its dependencies, the group
 * records (GroupStore), the one lock per group that orders every change of a
 * group's state, counting and refusing, and the few reads that all of them
 * do (a group by id, the admin check, the API view). One GroupContext is
 * made by GroupService (index.ts) and handed to each part, so the parts
 * share state by this object and not by reaching into each other.
 */
import { createHash } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import type { SignalCrypto } from '../crypto/index.js'
import { OctetError } from '../errors.js'
import { KeyedLock } from '../lock.js'
import type { Logger } from '../logger.js'
import type { Messenger } from '../messaging/index.js'
import type { OctetLibp2p, Pubsub } from '../node/index.js'
import type { Refusal } from '../refusals.js'
import type { Store } from '../store/database.js'
import { TOPIC_PREFIX } from './constants.js'
import { isGroupId, type MembershipDoc } from './membership.js'
import { GroupStore, type GroupRecord, type GroupState } from './store.js'

/**
 * What groups use of the messenger: pairwise delivery through the outbox,
 * the event log, the counters and the refusals.
 */
export type GroupMessenger = Pick<Messenger, 'commitPairwise' | 'events' | 'counters' | 'refusals'>

export interface GroupServiceInit {
  peerId: string
  /** the node's libp2p key: signs the membership versions we author */
  privateKey: PrivateKey
  store: Store
  crypto: SignalCrypto
  /** pairwise delivery (outbox), the event log and the counters */
  messenger: GroupMessenger
  pubsub: Pubsub
  /** serves and calls /octet/group-history/1.0.0 */
  libp2p: OctetLibp2p
  log: Logger
  now?: () => number
}

/** A group as the API shows it. */
export interface GroupView {
  id: string
  name: string
  state: GroupState
  version: number
  keyEpoch: number
  members: string[]
  admins: string[]
  isAdmin: boolean
  /** as an admin: peers invited that have not answered */
  invites: string[]
  invitedBy?: string
  topic: string
  createdAt: number
  updatedAt: number
}

/** The gossipsub topic of a group: a hash of its id, so the topic names no group. */
export function groupTopic (groupId: string): string {
  return TOPIC_PREFIX + createHash('sha256').update(Buffer.from(groupId, 'hex')).digest('hex')
}

/** The name under which libsignal keeps the sender keys of one key epoch of a group. */
export function senderKeyName (groupId: string, epoch: number): string {
  return `${groupId}/${epoch}`
}

/** The members but us. */
export function others (doc: MembershipDoc, self: string): string[] {
  return doc.members.filter(m => m !== self)
}

/** What happened, for a NOT_A_MEMBER answer. */
function notAMember (record: GroupRecord): string {
  switch (record.state) {
    case 'removed': return `you were removed from group ${record.id}; an admin can invite you again`
    case 'left': return `you left group ${record.id}`
    case 'declined': return `you declined the invite to group ${record.id}`
    case 'invited': return `you are invited to group ${record.id} and not a member yet: accept the invite first`
    case 'accepted': return `you accepted the invite to group ${record.id}; you are a member once its admin adds you`
    default: return `not a member of group ${record.id} (state ${record.state})`
  }
}

export class GroupContext {
  readonly self: string
  readonly db: GroupStore
  /** per group: every read-change-write of a group's record runs under it */
  readonly lock = new KeyedLock()
  readonly log: Logger
  readonly now: () => number
  readonly privateKey: PrivateKey
  readonly crypto: SignalCrypto
  readonly messenger: GroupMessenger
  readonly pubsub: Pubsub
  readonly libp2p: OctetLibp2p
  readonly store: Store

  constructor (init: GroupServiceInit) {
    this.self = init.peerId
    this.db = new GroupStore(init.store)
    this.log = init.log.child({ module: 'groups' })
    this.now = init.now ?? Date.now
    this.privateKey = init.privateKey
    this.crypto = init.crypto
    this.messenger = init.messenger
    this.pubsub = init.pubsub
    this.libp2p = init.libp2p
    this.store = init.store
  }

  count (name: string, by = 1): void {
    this.messenger.counters.increment(name, by)
  }

  /** Counts and logs a refusal of a peer's input (see Refusals: a flood is a few lines with counts). */
  refuse (refusal: Refusal): void {
    this.messenger.refusals.refuse(refusal)
  }

  async requireGroup (groupId: string): Promise<GroupRecord> {
    const record = isGroupId(groupId) ? await this.db.group(groupId) : undefined
    if (record == null) throw new OctetError('NOT_FOUND', `no group ${groupId}`)
    return record
  }

  /** Throws NOT_A_MEMBER (403) unless we are a member of the group now, saying why not. */
  requireMember (record: GroupRecord): MembershipDoc {
    if (record.state !== 'joined') throw new OctetError('NOT_A_MEMBER', notAMember(record))
    return this.db.doc(record)
  }

  /** Throws NOT_A_MEMBER or NOT_AN_ADMIN (403) unless we are an admin of the group now. */
  requireAdmin (record: GroupRecord): MembershipDoc {
    const doc = this.requireMember(record)
    if (!doc.admins.includes(this.self)) throw new OctetError('NOT_AN_ADMIN', `only an admin of group ${record.id} can do this; its admins are ${doc.admins.join(', ')}`)
    return doc
  }

  view (record: GroupRecord): GroupView {
    const doc = this.db.doc(record)
    return {
      id: record.id,
      name: doc.name,
      state: record.state,
      version: doc.version,
      keyEpoch: doc.keyEpoch,
      members: [...doc.members],
      admins: [...doc.admins],
      isAdmin: record.state === 'joined' && doc.admins.includes(this.self),
      invites: Object.keys(record.invites),
      ...(record.invitedBy != null ? { invitedBy: record.invitedBy } : {}),
      topic: groupTopic(record.id),
      createdAt: record.createdAt,
      updatedAt: record.updatedAt
    }
  }
}
