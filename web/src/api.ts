// Every access to the daemon's API and to the fields of its answers and events is in this
// module: the rest of the page works on the shapes below. When the API renames a field, this
// is the one file to change.

import type { Answer, ApiEvent } from '../../src/client/answers.js'
import { readEventStream } from './event-stream.js'

export type MessageStatus = 'queued' | 'sent' | 'stored' | 'delivered' | 'read' | 'failed'

export interface Message {
  id: string
  peerId: string
  out: boolean
  seq: number
  text: string
  sentAt: number
  /** when it arrived or was written: the order shown */
  at: number
  status: MessageStatus
  mailboxes?: number
  reason?: string
}

export interface Conversation {
  peerId: string
  name?: string
  contactState?: ContactState
  lastMessageAt: number
  unread: number
  gaps: number[]
}

export type ContactState = 'accepted' | 'pending' | 'blocked'

export interface Contact {
  peerId: string
  name?: string
  state: ContactState
  identity: 'unknown' | 'trusted' | 'changed'
}

export interface SafetyNumbers {
  safetyNumber: string
  identity: string
  pendingSafetyNumber?: string
}

export type GroupState = 'invited' | 'accepted' | 'joined' | 'declined' | 'left' | 'removed'

export interface Group {
  id: string
  name: string
  state: GroupState
  members: string[]
  admins: string[]
  isAdmin: boolean
  invites: string[]
  invitedBy?: string
}

export interface GroupMessage {
  groupId: string
  id: string
  out: boolean
  author: string
  seq: number
  text: string
  at: number
}

export interface NodeInfo {
  peerId: string
  reachability: string
  listenAddresses: string[]
  announceAddresses: string[]
  relayAddresses: string[]
  relayOffered: boolean
  peers: Array<{ peerId: string, addresses: string[], direction: string }>
  routingTableSize: number
  mailbox?: { envelopes: number, bytes: number, recipients: number }
}

/** What the stream tells, in the page's own words. */
export type PageEvent =
  | { kind: 'message', message: Message }
  | { kind: 'status', id: string, peerId: string, status: MessageStatus, mailboxes?: number, reason?: string }
  /** the event tells no identity state: that stays as the list says */
  | { kind: 'contact', contact: Omit<Contact, 'identity'> }
  | { kind: 'contact.request', peerId: string }
  | { kind: 'identity.changed', peerId: string }
  | { kind: 'group', groupId: string }
  | { kind: 'group.message', message: GroupMessage }
  | { kind: 'closed', resumeAfter: number }

export class ApiError extends Error {
  override readonly name = 'ApiError'
  constructor (readonly status: number, readonly code: string, message: string) {
    super(message)
  }
}

const TIMEOUT = 15_000

/** One API call with the session cookie (same origin); throws ApiError with the API's code. */
async function call<T> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
  let res: Response
  try {
    res = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: { ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : null,
      signal: AbortSignal.timeout(TIMEOUT)
    })
  } catch (err) {
    throw new ApiError(0, 'OFFLINE', `the daemon cannot be reached (${err instanceof Error ? err.message : String(err)})`)
  }
  if (res.status === 204) return undefined as T
  const text = await res.text()
  const json = text === '' ? undefined : JSON.parse(text) as unknown
  if (!res.ok) {
    const error = (json as { error?: { code?: string, message?: string } } | undefined)?.error
    throw new ApiError(res.status, error?.code ?? 'HTTP_' + String(res.status), error?.message ?? res.statusText)
  }
  return json as T
}

const enc = encodeURIComponent

// The API's own shapes, from the types generated from its OpenAPI document (type-only: nothing
// of the client is bundled), so that a renamed field fails the page's type check.
type RawMessage = Answer<'getMessage'>['message']
type RawGroupMessage = Answer<'listGroupMessages'>['messages'][number]
type RawConversation = Answer<'listConversations'>['conversations'][number]

function message (m: RawMessage): Message {
  return {
    id: m.id, peerId: m.peerId, out: m.direction === 'out', seq: m.seq, text: m.text, sentAt: m.sentAt,
    at: m.receivedAt ?? m.sentAt, status: m.status,
    ...(m.mailboxes != null ? { mailboxes: m.mailboxes } : {}),
    ...(m.reason != null ? { reason: m.reason } : {})
  }
}

function groupMessage (m: RawGroupMessage): GroupMessage {
  return { groupId: m.groupId, id: m.id, out: m.direction === 'out', author: m.author, seq: m.seq, text: m.text, at: m.receivedAt ?? m.sentAt }
}

function contact (c: Contact): Contact {
  return { peerId: c.peerId, state: c.state, identity: c.identity, ...(c.name != null ? { name: c.name } : {}) }
}

function group (g: Group): Group {
  return { id: g.id, name: g.name, state: g.state, members: g.members, admins: g.admins, isAdmin: g.isAdmin, invites: g.invites, ...(g.invitedBy != null ? { invitedBy: g.invitedBy } : {}) }
}

export const api = {
  /** Exchanges the one-time code from `octet ui` for the session cookie. */
  login: async (code: string): Promise<void> => { await call('POST', '/v1/ui/session', { code }) },
  logout: async (): Promise<void> => { await call('DELETE', '/v1/ui/session') },
  myPeerId: async (): Promise<string> => (await call<{ peerId: string }>('GET', '/v1/identity')).peerId,

  conversations: async (): Promise<Conversation[]> =>
    (await call<{ conversations: RawConversation[] }>('GET', '/v1/conversations')).conversations.map(c => ({
      peerId: c.peerId, lastMessageAt: c.lastMessageAt, unread: c.unread, gaps: c.gaps,
      ...(c.name != null ? { name: c.name } : {}), ...(c.contactState != null ? { contactState: c.contactState } : {})
    })),
  /** The newest `limit` messages before `before` (a message id), oldest first. */
  history: async (peerId: string, limit: number, before?: string): Promise<Message[]> =>
    (await call<{ messages: RawMessage[] }>('GET', `/v1/conversations/${enc(peerId)}/messages?limit=${limit}${before != null ? `&before=${before}` : ''}`)).messages.map(message),
  send: async (peerId: string, text: string, idempotencyKey: string): Promise<Message> =>
    message((await call<{ message: RawMessage }>('POST', '/v1/messages', { to: peerId, text }, { 'idempotency-key': idempotencyKey })).message),
  markRead: async (id: string): Promise<Message> => message((await call<{ message: RawMessage }>('POST', `/v1/messages/${id}/read`)).message),

  contacts: async (): Promise<Contact[]> => (await call<{ contacts: Contact[] }>('GET', '/v1/contacts')).contacts.map(contact),
  addContact: async (peerId: string, name?: string): Promise<Contact> =>
    contact((await call<{ contact: Contact }>('POST', '/v1/contacts', { peerId, ...(name != null && name !== '' ? { name } : {}) })).contact),
  acceptContact: async (peerId: string): Promise<Contact> => contact((await call<{ contact: Contact }>('POST', `/v1/contacts/${enc(peerId)}/accept`)).contact),
  blockContact: async (peerId: string): Promise<Contact> => contact((await call<{ contact: Contact }>('POST', `/v1/contacts/${enc(peerId)}/block`)).contact),
  safetyNumber: async (peerId: string): Promise<SafetyNumbers> => {
    const s = await call<{ safetyNumber: string, identity: string, pendingSafetyNumber?: string }>('GET', `/v1/contacts/${enc(peerId)}/safety-number`)
    return { safetyNumber: s.safetyNumber, identity: s.identity, ...(s.pendingSafetyNumber != null ? { pendingSafetyNumber: s.pendingSafetyNumber } : {}) }
  },
  acceptIdentity: async (peerId: string): Promise<Contact> => contact((await call<{ contact: Contact }>('POST', `/v1/contacts/${enc(peerId)}/accept-identity`)).contact),

  groups: async (): Promise<Group[]> => (await call<{ groups: Group[] }>('GET', '/v1/groups')).groups.map(group),
  group: async (id: string): Promise<Group> => group((await call<{ group: Group }>('GET', `/v1/groups/${id}`)).group),
  createGroup: async (name: string): Promise<Group> => group((await call<{ group: Group }>('POST', '/v1/groups', { name })).group),
  invite: async (id: string, peerId: string): Promise<void> => { await call('POST', `/v1/groups/${id}/invites`, { peerId }) },
  acceptGroup: async (id: string): Promise<void> => { await call('POST', `/v1/groups/${id}/accept`) },
  declineGroup: async (id: string): Promise<void> => { await call('POST', `/v1/groups/${id}/decline`) },
  leaveGroup: async (id: string): Promise<void> => { await call('POST', `/v1/groups/${id}/leave`) },
  removeMember: async (id: string, peerId: string): Promise<void> => { await call('DELETE', `/v1/groups/${id}/members/${enc(peerId)}`) },
  groupMessages: async (id: string, limit: number): Promise<GroupMessage[]> =>
    (await call<{ messages: RawGroupMessage[] }>('GET', `/v1/groups/${id}/messages?limit=${limit}`)).messages.map(groupMessage),
  sendGroup: async (id: string, text: string): Promise<GroupMessage> =>
    groupMessage((await call<{ message: RawGroupMessage }>('POST', `/v1/groups/${id}/messages`, { text })).message),

  node: async (): Promise<NodeInfo> => {
    const [identity, status, peers, mailbox] = await Promise.all([
      call<{ peerId: string, reachability: string, listenAddresses: string[], announceAddresses: string[], relayAddresses: string[], relayService: { offered: boolean } }>('GET', '/v1/identity'),
      call<{ routingTableSize: number }>('GET', '/v1/status'),
      call<{ peers: Array<{ peerId: string, addresses: string[], direction: string }> }>('GET', '/v1/peers'),
      call<{ holding: { envelopes: number, bytes: number, recipients: number } }>('GET', '/v1/mailbox').catch(() => undefined)
    ])
    return {
      peerId: identity.peerId, reachability: identity.reachability, listenAddresses: identity.listenAddresses,
      announceAddresses: identity.announceAddresses, relayAddresses: identity.relayAddresses, relayOffered: identity.relayService.offered,
      peers: peers.peers.map(p => ({ peerId: p.peerId, addresses: p.addresses, direction: p.direction })),
      routingTableSize: status.routingTableSize,
      ...(mailbox != null ? { mailbox: mailbox.holding } : {})
    }
  }
}

/** The stream's events, as the page understands them; undefined for those it does not show. */
function pageEvent (event: ApiEvent): PageEvent | undefined {
  switch (event.type) {
    case 'message.received':
    case 'message.sent':
      return { kind: 'message', message: message(event.data.message) }
    case 'message.status': {
      const s = event.data
      return { kind: 'status', id: s.id, peerId: s.peerId, status: s.status, ...(s.mailboxes != null ? { mailboxes: s.mailboxes } : {}), ...(s.reason != null ? { reason: s.reason } : {}) }
    }
    case 'contact.updated': {
      const c = event.data.contact
      return { kind: 'contact', contact: { peerId: c.peerId, state: c.state, ...(c.name != null ? { name: c.name } : {}) } }
    }
    case 'contact.request': return { kind: 'contact.request', peerId: event.data.peerId }
    case 'identity.changed': return { kind: 'identity.changed', peerId: event.data.peerId }
    case 'group.message': return { kind: 'group.message', message: groupMessage(event.data.message) }
    case 'group.invite':
    case 'group.joined':
    case 'group.member.added':
    case 'group.member.removed':
      return { kind: 'group', groupId: event.data.groupId }
    default: return undefined
  }
}

/** Whether the stream still keeps the events after `after` (false: pruned, 410, resume from now). */
export async function eventsKept (after: number): Promise<boolean> {
  const abort = new AbortController()
  const timer = setTimeout(() => { abort.abort() }, TIMEOUT)
  try {
    const res = await fetch(`/v1/events?after=${after}`, { credentials: 'same-origin', signal: abort.signal })
    return res.status !== 410
  } finally {
    clearTimeout(timer)
    abort.abort()
  }
}

export interface EventStreamHandlers {
  onEvent: (id: number, event: PageEvent) => void
  onOpen: () => void
  /** the stream dropped, was refused or stalled (event-stream.ts): it is the caller's to open again */
  onDown: () => void
}

/**
 * The event stream after event `after` (undefined: new events only). Once down it stays down:
 * the caller opens it again after the last id it saw.
 */
export function openEvents (after: number | undefined, handlers: EventStreamHandlers): () => void {
  return readEventStream(after != null ? `/v1/events?after=${after}` : '/v1/events', {
    onOpen: handlers.onOpen,
    onDown: handlers.onDown,
    onEvent: ({ event: name, data }) => {
      if (name === 'stream.closed') {
        const goodbye = JSON.parse(data) as { resumeAfter: number }
        handlers.onEvent(goodbye.resumeAfter, { kind: 'closed', resumeAfter: goodbye.resumeAfter })
        return
      }
      const event = JSON.parse(data) as ApiEvent
      const page = pageEvent(event)
      if (page != null) handlers.onEvent(event.id, page)
    }
  })
}
