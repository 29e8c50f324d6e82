/**
 * The events of GET /v1/events, described for the OpenAPI document: one
 * schema per type of OctetEventDataMap (keyed by it, so a new event type does
 * not compile until it is described here). Each is what one SSE `data:` line
 * holds, JSON: `{ id, type, at, data }`.
 */
import { EARLY_HOLD_MAX } from '../groups/constants.js'
import { EVENT_HOLD_MAX } from '../messaging/constants.js'
import type { OctetEventType } from '../messaging/index.js'
import { SECOND } from '../units.js'
import { contactSchema } from './routes/contacts.js'
import { groupMessageSchema } from './routes/groups.js'
import { messageSchema } from './routes/messages.js'

const peerId = { type: 'string', description: 'a PeerId' } as const
const groupId = { type: 'string', description: '32 hex digits' } as const
const version = { type: 'integer', description: 'the membership version' } as const

/**
 * What message.received and group.message may add: they come per conversation (per sender in
 * a group) in the sender's seq order (src/messaging/ordering.ts).
 */
const orderMarks = {
  gap: {
    type: 'object',
    required: ['from', 'to'],
    description: `this event waited for earlier messages of its sender, at most ${EVENT_HOLD_MAX / SECOND} s (direct) or ${EARLY_HOLD_MAX / SECOND} s (group), and went out without them: seqs from..to (inclusive) are missing right before it`,
    properties: { from: { type: 'integer', minimum: 1 }, to: { type: 'integer', minimum: 1 } }
  },
  late: { type: 'boolean', const: true, description: 'the message fills a gap an earlier event named: it comes after messages with higher seqs' }
} as const

const object = (properties: Record<string, unknown>, required = Object.keys(properties)): Record<string, unknown> => ({ type: 'object', required, properties })

/** A contact as stored: the contact view without its identity status. */
const { identity: _identity, ...contactRecordProperties } = contactSchema.properties
const contactRecordSchema = object(contactRecordProperties, contactSchema.required.filter(name => name !== 'identity'))

const EVENT_DATA: Record<OctetEventType, { description: string, data: Record<string, unknown> }> = {
  'message.received': { description: 'a direct message arrived', data: object({ message: messageSchema, ...orderMarks }, ['message']) },
  'message.sent': { description: 'a direct message we sent, as queued (its status then moves by message.status)', data: object({ message: messageSchema }) },
  'message.status': {
    description: 'a message of ours changed status',
    data: object({
      id: { type: 'string', description: 'the message id' },
      peerId,
      status: messageSchema.properties.status,
      reason: { type: 'string', description: 'why it failed, or why it waits' },
      mailboxes: { type: 'integer', description: 'mailbox peers holding a sealed copy (status stored)' }
    }, ['id', 'peerId', 'status'])
  },
  'contact.request': { description: 'a peer that is not a contact wrote to us: accept or block it', data: object({ peerId }) },
  'contact.updated': { description: 'a contact was added or changed (also by writing to a peer, which accepts it)', data: object({ contact: contactRecordSchema }) },
  'identity.changed': { description: "a peer's identity key changed: its messages wait until accept-identity", data: object({ peerId }) },
  'group.invite': { description: 'an admin invited us to a group', data: object({ groupId, name: { type: 'string' }, invitedBy: { ...peerId, description: 'the admin who invited us' }, version }) },
  'group.joined': { description: 'we became a member of a group', data: object({ groupId, name: { type: 'string' }, version }) },
  'group.message': { description: "a group message, ours included (author is our PeerId then)", data: object({ groupId, message: groupMessageSchema, ...orderMarks }, ['groupId', 'message']) },
  'group.member.added': { description: 'a member joined a group', data: object({ groupId, peerId, version }) },
  'group.member.removed': { description: 'a member left or was removed', data: object({ groupId, peerId, version }) }
}

/** The JSON of one event, whichever its type. */
export const eventSchema = {
  oneOf: Object.entries(EVENT_DATA).map(([type, { description, data }]) => ({
    type: 'object',
    description,
    required: ['id', 'type', 'at', 'data'],
    properties: {
      id: { type: 'integer', description: 'increases by one per event; resume after it with Last-Event-ID' },
      type: { type: 'string', const: type },
      at: { type: 'number', description: 'when it was committed, ms since the epoch' },
      data
    }
  }))
}
