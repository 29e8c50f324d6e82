import { OctetError } from '../errors.js'
import { MAX_PAGE_SIZE } from './constants.js'
import type { ContactState, MessageRecord, MessagingStore } from './records.js'

/*
 * The read side of direct conversations, for the API: the list of
 * conversations with their unread counts and gaps, a conversation's
 * messages page by page, and one message by id. It only reads the
 * messaging store; peers come in canonical and checked (by the Messenger).
 */

export interface ConversationSummary {
  peerId: string
  name?: string
  contactState?: ContactState
  lastMessageAt: number
  unread: number
  highestReceivedSeq: number
  /** sequence numbers of the peer's messages that have not arrived while later ones did */
  gaps: number[]
}

export interface HistoryQuery {
  before?: string
  after?: string
  limit: number
}

export class History {
  constructor (private readonly db: MessagingStore) {}

  async message (id: string): Promise<MessageRecord> {
    const message = /^[0-9a-f]{32}$/.test(id) ? await this.db.message(id) : undefined
    if (message == null) throw new OctetError('NOT_FOUND', `no message ${id}`)
    return message
  }

  async conversations (): Promise<ConversationSummary[]> {
    const result: ConversationSummary[] = []
    for await (const conversation of this.db.conversations.values()) {
      const contact = await this.db.contact(conversation.peerId)
      result.push({
        peerId: conversation.peerId,
        ...(contact?.name != null ? { name: contact.name } : {}),
        ...(contact != null ? { contactState: contact.state } : {}),
        lastMessageAt: conversation.lastMessageAt,
        unread: conversation.unread,
        highestReceivedSeq: conversation.highestSeq,
        gaps: conversation.missing
      })
    }
    return result.sort((a, b) => b.lastMessageAt - a.lastMessageAt)
  }

  /** A conversation's messages in order; `before`/`after` are message ids (cursors). */
  async page (peer: string, query: HistoryQuery): Promise<MessageRecord[]> {
    const limit = Math.min(Math.max(1, query.limit), MAX_PAGE_SIZE)
    const range: { gt: string, lt: string } = { gt: `${peer}!`, lt: `${peer}!\xff` }
    if (query.after != null) range.gt = this.db.timelineKey(await this.cursor(peer, query.after))
    if (query.before != null) range.lt = this.db.timelineKey(await this.cursor(peer, query.before))
    // newest page when only `before` (or nothing) is given; oldest-first after `after`
    const reverse = query.after == null
    const ids: string[] = []
    for await (const id of this.db.timeline.values({ ...range, reverse, limit })) ids.push(id)
    if (reverse) ids.reverse()
    const messages = await this.db.messagesById(ids)
    return messages.filter((m): m is MessageRecord => m != null)
  }

  private async cursor (peer: string, id: string): Promise<MessageRecord> {
    const message = await this.message(id)
    if (message.peerId !== peer) throw new OctetError('BAD_REQUEST', `message ${id} is not in this conversation`)
    return message
  }
}
