// The page's state: what it loaded and what the event stream told, kept by id so that an
// event seen twice (a replay after reconnecting, a reload racing the stream) changes nothing
// the second time. Views subscribe and render from it.
import { api, eventsKept, openEvents, type Contact, type Conversation, type Group, type GroupMessage, type Message, type MessageStatus, type PageEvent } from './api.js'

export type Connection = 'connecting' | 'live' | 'offline' | 'login'

/** How far a status is along; a late event never moves a message back. */
const RANK: Record<MessageStatus, number> = { queued: 0, sent: 1, stored: 2, delivered: 3, read: 4, failed: 5 }
/** The newest messages loaded when a conversation opens; older ones on request. */
export const PAGE = 1000
/** Mark-read requests at once: a long unread conversation does not flood the daemon. */
const READERS = 4

export class Store {
  connection: Connection = 'connecting'
  myPeerId = ''
  conversations = new Map<string, Conversation>()
  /** per peer, by message id */
  messages = new Map<string, Map<string, Message>>()
  /** peers whose history is loaded, and whether older messages remain */
  loaded = new Map<string, { more: boolean }>()
  contacts = new Map<string, Contact>()
  groups = new Map<string, Group>()
  groupMessages = new Map<string, Map<string, GroupMessage>>()
  /** the newest event applied: where the stream resumes */
  lastEventId: number | undefined
  error: string | undefined

  private readonly listeners = new Set<() => void>()
  /** messages being marked read: each is asked for once, a few at a time */
  private readonly reading = new Set<string>()
  private readonly toRead: string[] = []
  private readers = 0
  private closeStream: (() => void) | undefined
  private refreshTimer: ReturnType<typeof setTimeout> | undefined
  private retryTimer: ReturnType<typeof setTimeout> | undefined

  subscribe (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  changed (): void {
    for (const listener of this.listeners) listener()
  }

  /**
   * Starts: the stream first (new events from now on, held in order), then the lists. An
   * event during the load is applied as well as the loaded state: by id, so nothing is
   * missed and nothing doubles.
   */
  async start (): Promise<void> {
    try {
      this.myPeerId = await api.myPeerId()
    } catch (err) {
      this.connection = (err as { status?: number }).status === 401 ? 'login' : 'offline'
      this.changed()
      if (this.connection === 'offline') this.retryLater()
      return
    }
    // events older than the daemon keeps are gone (410): the lists below are loaded anew
    // anyway, so the stream then starts from now
    if (this.lastEventId != null && !await eventsKept(this.lastEventId).catch(() => true)) this.lastEventId = undefined
    this.stream()
    await this.reload()
  }

  private stream (): void {
    this.closeStream?.()
    this.closeStream = openEvents(this.lastEventId, {
      onEvent: (id, event) => { this.apply(id, event) },
      onOpen: () => {
        const wasDown = this.connection === 'offline'
        this.connection = 'live'
        this.changed()
        // the stream was opened again after the last event applied, which covers everything
        // only once an event came: a stream that saw none yet does not know where it was. The
        // lists are loaded again as well, by id, so that is never a gap nor a double
        if (wasDown) void this.reload()
      },
      onDown: () => {
        this.connection = 'offline'
        this.changed()
        // dropped, refused (the daemon stopping) or silent for too long (frozen, asleep): opened
        // again after the last event applied, once the daemon answers
        this.retryLater()
      }
    })
  }

  private retryLater (): void {
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => { void this.start() }, 1000)
  }

  /** Loads the lists anew (start, and after the stream was down). */
  async reload (): Promise<void> {
    try {
      const [conversations, contacts, groups] = await Promise.all([api.conversations(), api.contacts(), api.groups().catch(() => [])])
      this.conversations = new Map(conversations.map(c => [c.peerId, c]))
      this.contacts = new Map(contacts.map(c => [c.peerId, c]))
      this.groups = new Map(groups.map(g => [g.id, g]))
      // the last message of each conversation, for the list
      await Promise.all(conversations.map(async c => {
        if (this.loaded.has(c.peerId)) return
        for (const m of await api.history(c.peerId, 1)) this.putMessage(m)
      }))
      for (const peerId of this.loaded.keys()) await this.loadHistory(peerId)
      this.error = undefined
    } catch (err) {
      this.error = (err as Error).message
    }
    this.changed()
  }

  /** The contact list anew (with each identity state, which events do not carry). */
  private reloadContacts (): void {
    void api.contacts().then(list => { this.contacts = new Map(list.map(c => [c.peerId, c])); this.changed() }, () => {})
  }

  /** The conversation list anew, a moment after events that change unread counts. */
  refreshSoon (): void {
    clearTimeout(this.refreshTimer)
    this.refreshTimer = setTimeout(() => {
      void api.conversations().then(list => {
        this.conversations = new Map(list.map(c => [c.peerId, c]))
        this.changed()
      }, () => {})
    }, 150)
  }

  async loadHistory (peerId: string, before?: string): Promise<void> {
    const page = await api.history(peerId, PAGE, before)
    for (const m of page) this.putMessage(m)
    this.loaded.set(peerId, { more: page.length === PAGE })
    this.changed()
  }

  async loadGroup (id: string): Promise<void> {
    const [group, messages] = await Promise.all([api.group(id), api.groupMessages(id, 200)])
    this.groups.set(id, group)
    for (const m of messages) this.putGroupMessage(m)
    this.changed()
  }

  /** Marks received messages read (the ones shown): each once, at most READERS requests at a time. */
  markRead (ids: string[]): void {
    for (const id of ids) {
      if (this.reading.has(id)) continue
      this.reading.add(id)
      this.toRead.push(id)
    }
    while (this.readers < READERS && this.toRead.length > 0) {
      this.readers++
      void this.readNext()
    }
  }

  private async readNext (): Promise<void> {
    let id: string | undefined
    while ((id = this.toRead.shift()) != null) {
      try {
        this.putMessage(await api.markRead(id))
      } catch {
        // not read after all (offline): asked again the next time it is shown
      }
      this.reading.delete(id)
      this.changed()
    }
    this.readers--
    this.refreshSoon()
  }

  putMessage (m: Message): void {
    let conversation = this.messages.get(m.peerId)
    if (conversation == null) this.messages.set(m.peerId, conversation = new Map())
    const known = conversation.get(m.id)
    conversation.set(m.id, known == null || advances(known.status, m.status) ? m : { ...m, status: known.status })
  }

  putGroupMessage (m: GroupMessage): void {
    let messages = this.groupMessages.get(m.groupId)
    if (messages == null) this.groupMessages.set(m.groupId, messages = new Map())
    messages.set(m.id, m)
  }

  /** Messages of a conversation in the order shown. */
  conversation (peerId: string): Message[] {
    return [...(this.messages.get(peerId)?.values() ?? [])].sort((a, b) => a.at - b.at || a.seq - b.seq)
  }

  lastMessage (peerId: string): Message | undefined {
    let last: Message | undefined
    for (const m of this.messages.get(peerId)?.values() ?? []) if (last == null || m.at >= last.at) last = m
    return last
  }

  groupConversation (id: string): GroupMessage[] {
    return [...(this.groupMessages.get(id)?.values() ?? [])].sort((a, b) => a.at - b.at)
  }

  private apply (id: number, event: PageEvent): void {
    if (event.kind !== 'closed') this.lastEventId = Math.max(this.lastEventId ?? 0, id)
    switch (event.kind) {
      case 'message':
        this.putMessage(event.message)
        this.refreshSoon()
        break
      case 'status': {
        const m = this.messages.get(event.peerId)?.get(event.id)
        if (m != null && advances(m.status, event.status)) {
          this.putMessage({ ...m, status: event.status, ...(event.mailboxes != null ? { mailboxes: event.mailboxes } : {}), ...(event.reason != null ? { reason: event.reason } : {}) })
        }
        if (m == null) void api.history(event.peerId, 1).then(page => { for (const x of page) this.putMessage(x); this.changed() }, () => {})
        break
      }
      case 'contact': {
        const known = this.contacts.get(event.contact.peerId)
        if (known != null) this.contacts.set(event.contact.peerId, { ...event.contact, identity: known.identity })
        else this.reloadContacts()
        this.refreshSoon()
        break
      }
      case 'contact.request':
      case 'identity.changed':
        this.reloadContacts()
        this.refreshSoon()
        break
      case 'group':
        void this.loadGroup(event.groupId).catch(() => {})
        break
      case 'group.message':
        this.putGroupMessage(event.message)
        break
      case 'closed':
        // let go for falling behind: resume right after what was applied
        this.lastEventId = event.resumeAfter
        this.stream()
        break
    }
    this.changed()
  }
}

function advances (from: MessageStatus, to: MessageStatus): boolean {
  // a failed message may be queued again (reset-session); otherwise only forward
  return from === 'failed' || RANK[to] >= RANK[from]
}

export const store = new Store()
