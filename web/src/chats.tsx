// Conversations: the list (unread counts, last message) and one conversation with live states.
import { useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks'
import { api, type Message } from './api.js'
import { IdentityWarning, SafetyNumberPanel } from './identity.js'
import { Peer, OneField, statusText, time, useStore } from './ui.js'

export function ConversationList ({ selected }: { selected?: string | undefined }) {
  const s = useStore()
  const list = [...s.conversations.values()].sort((a, b) => b.lastMessageAt - a.lastMessageAt)
  return (
    <nav aria-label="Conversations" class="list">
      <OneField label="New chat with (PeerId)" button="Open" placeholder="12D3KooW…" run={async peerId => {
        await api.addContact(peerId)
        location.hash = `#/chats/${peerId}`
      }} />
      {list.length === 0 && <p class="empty">No conversations yet.</p>}
      <ul>
        {list.map(c => {
          const last = s.lastMessage(c.peerId)
          const name = s.contacts.get(c.peerId)?.name ?? c.name
          return (
            <li key={c.peerId}>
              <a href={`#/chats/${c.peerId}`} class="item" aria-current={selected === c.peerId ? 'page' : undefined} data-peer={c.peerId}>
                <span class="item-head"><Peer peerId={c.peerId} name={name} />{c.contactState === 'pending' && <span class="badge">request</span>}
                  {c.unread > 0 && <span class="unread" aria-label={`${c.unread} unread`}>{c.unread}</span>}</span>
                {last != null && <span class="last" dir="auto">{last.out ? 'You: ' : ''}{last.text}</span>}
              </a>
            </li>
          )
        })}
      </ul>
    </nav>
  )
}

function Bubble ({ m }: { m: Message }) {
  return (
    <li class={`msg ${m.out ? 'out' : 'in'}`} data-id={m.id} data-status={m.status}>
      <p class="text" dir="auto">{m.text}</p>
      <p class="meta">
        <time dateTime={new Date(m.at).toISOString()}>{time(m.at)}</time>
        {m.out && <span class="status" aria-label={`status: ${statusText(m.status, m.mailboxes, m.reason)}`}>{statusText(m.status, m.mailboxes, m.reason)}</span>}
      </p>
    </li>
  )
}

export function ChatView ({ peerId }: { peerId: string }) {
  const s = useStore()
  const [error, setError] = useState<string>()
  const list = useRef<HTMLDivElement>(null)
  const stick = useRef(true)
  useEffect(() => {
    stick.current = true
    if (!s.loaded.has(peerId)) s.loadHistory(peerId).catch((err: Error) => { setError(err.message) })
  }, [peerId])
  const messages = s.conversation(peerId)
  const contact = s.contacts.get(peerId)
  const conversation = s.conversations.get(peerId)

  // what this page shows is read: mark it, while the page is in view
  useEffect(() => {
    if (document.visibilityState !== 'visible') return
    s.markRead(messages.filter(m => !m.out && m.status !== 'read').map(m => m.id))
  })
  useEffect(() => {
    const onVisible = (): void => { s.changed() }
    document.addEventListener('visibilitychange', onVisible)
    return () => { document.removeEventListener('visibilitychange', onVisible) }
  }, [])
  // keep the newest message in view, unless the reader scrolled up
  useLayoutEffect(() => {
    const el = list.current
    if (el != null && stick.current) el.scrollTop = el.scrollHeight
  })

  const first = messages[0]
  return (
    <section class="chat" aria-labelledby="chat-title">
      <header class="chat-head">
        <a href="#/chats" class="back">Back<span class="sr"> to conversations</span></a>
        <h2 id="chat-title"><Peer peerId={peerId} name={contact?.name} /></h2>
        {contact?.state === 'pending' && <ContactRequestButtons peerId={peerId} />}
        {contact?.state === 'blocked' && <span class="badge">blocked</span>}
      </header>
      {contact?.identity === 'changed' ? <IdentityWarning peerId={peerId} /> : contact?.state === 'accepted' && <SafetyNumberPanel peerId={peerId} />}
      {conversation != null && conversation.gaps.length > 0 && <p class="warn" role="status">Missing messages from this peer: numbers {conversation.gaps.join(', ')}.</p>}
      {error != null && <p role="alert" class="error">{error}</p>}
      <div class="messages" ref={list} role="log" aria-live="polite" aria-label="Messages" tabIndex={0}
        onScroll={e => { const el = e.currentTarget; stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40 }}><ol>
        {s.loaded.get(peerId)?.more === true && first != null && (
          <li class="more"><button type="button" onClick={() => { void s.loadHistory(peerId, first.id) }}>Earlier messages</button></li>
        )}
        {messages.map(m => <Bubble key={m.id} m={m} />)}
      </ol></div>
      <Composer send={async text => {
        stick.current = true
        s.putMessage(await api.send(peerId, text, crypto.randomUUID()))
        s.refreshSoon()
        s.changed()
      }} />
    </section>
  )
}

export function ContactRequestButtons ({ peerId }: { peerId: string }) {
  const s = useStore()
  const done = (c: Awaited<ReturnType<typeof api.acceptContact>>): void => { s.contacts.set(c.peerId, c); s.refreshSoon(); s.changed() }
  return (
    <span class="request" role="group" aria-label="Contact request">
      <button type="button" onClick={() => { void api.acceptContact(peerId).then(done) }}>Accept</button>
      <button type="button" class="danger" onClick={() => { void api.blockContact(peerId).then(done) }}>Block</button>
    </span>
  )
}

/**
 * The message box: Enter sends, Shift+Enter starts a new line. The box empties at once, so
 * the next message can be typed and sent while the last is on its way; sends go one after
 * another, in the order written. A send that fails puts its text back if the box is empty.
 */
export function Composer ({ send }: { send: (text: string) => Promise<void> }) {
  const [text, setText] = useState('')
  const [error, setError] = useState<string>()
  const sending = useRef<Promise<void>>(Promise.resolve())
  const submit = (): void => {
    const value = text.trim()
    if (value === '') return
    setText('')
    setError(undefined)
    sending.current = sending.current.then(async () => { await send(value) }).catch((err: Error) => {
      setError(err.message)
      setText(now => now === '' ? value : now)
    })
  }
  return (
    <form class="composer" onSubmit={e => { e.preventDefault(); submit() }}>
      <label for="composer-text" class="sr">Message</label>
      <textarea id="composer-text" rows={2} dir="auto" value={text} placeholder="Write a message (Enter sends, Shift+Enter: new line)"
        onInput={e => { setText(e.currentTarget.value) }}
        onKeyDown={e => { if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) { e.preventDefault(); submit() } }} />
      <button type="submit">Send</button>
      {error != null && <p role="alert" class="error">{error}</p>}
    </form>
  )
}
