// Groups: create, invite, accept, members, remove, leave, and live messages.
import { useEffect, useLayoutEffect, useRef } from 'preact/hooks'
import { api } from './api.js'
import { Composer } from './chats.js'
import { Action, OneField, Peer, time, useStore } from './ui.js'

export function GroupList ({ selected }: { selected?: string | undefined }) {
  const s = useStore()
  return (
    <nav aria-label="Groups" class="list">
      <OneField label="New group (name)" button="Create" run={async name => {
        const g = await api.createGroup(name)
        s.groups.set(g.id, g)
        location.hash = `#/groups/${g.id}`
      }} />
      <ul>
        {[...s.groups.values()].map(g => (
          <li key={g.id}>
            <a href={`#/groups/${g.id}`} class="item" aria-current={selected === g.id ? 'page' : undefined} data-group={g.id}>
              <span class="item-head"><span dir="auto">{g.name}</span>{g.state !== 'joined' && <span class="badge">{g.state}</span>}</span>
              <span class="last">{g.members.length} member{g.members.length === 1 ? '' : 's'}</span>
            </a>
          </li>
        ))}
      </ul>
    </nav>
  )
}

export function GroupView ({ id }: { id: string }) {
  const s = useStore()
  const list = useRef<HTMLDivElement>(null)
  useEffect(() => { void s.loadGroup(id).catch(() => {}) }, [id])
  useLayoutEffect(() => { if (list.current != null) list.current.scrollTop = list.current.scrollHeight })
  const g = s.groups.get(id)
  if (g == null) return <p class="page">Loading the group…</p>
  const reload = async (): Promise<void> => { await s.loadGroup(id) }
  const name = (peerId: string): string | undefined => peerId === s.myPeerId ? 'you' : s.contacts.get(peerId)?.name
  return (
    <section class="chat" aria-labelledby="group-title">
      <header class="chat-head">
        <a href="#/groups" class="back">Back<span class="sr"> to groups</span></a>
        <h2 id="group-title" dir="auto">{g.name}</h2>
        <span class="badge" data-testid="group-state">{g.state}</span>
      </header>
      {g.state === 'invited' && (
        <p class="notice">
          {g.invitedBy != null ? <>Invited by <Peer peerId={g.invitedBy} name={name(g.invitedBy)} />. </> : null}
          <Action label="Accept invite" run={async () => { await api.acceptGroup(id); await reload() }} />
          <Action label="Decline" class="danger" run={async () => { await api.declineGroup(id); await reload() }} />
        </p>
      )}
      {g.state === 'accepted' && <p class="notice" role="status">Accepted: waiting for an admin to add you.</p>}
      <details class="members">
        <summary>Members ({g.members.length})</summary>
        <ul class="rows">
          {g.members.map(m => (
            <li key={m} data-member={m}><Peer peerId={m} name={name(m)} />{g.admins.includes(m) && <span class="badge">admin</span>}
              {g.isAdmin && m !== s.myPeerId && <Action label="Remove" class="danger" run={async () => { await api.removeMember(id, m); await reload() }} />}</li>
          ))}
          {g.invites.map(m => <li key={m}><Peer peerId={m} name={name(m)} /> <span class="badge">invited</span></li>)}
        </ul>
        {g.isAdmin && g.state === 'joined' && <OneField label="Invite (PeerId)" button="Invite" run={async peerId => { await api.invite(id, peerId); await reload() }} />}
        {g.state === 'joined' && <Action label="Leave the group" class="danger" run={async () => { await api.leaveGroup(id); await reload() }} />}
      </details>
      <div class="messages" ref={list} role="log" aria-live="polite" aria-label="Group messages" tabIndex={0}><ol>
        {s.groupConversation(id).map(m => (
          <li key={m.id} class={`msg ${m.out ? 'out' : 'in'}`} data-id={m.id}>
            {!m.out && <p class="author"><Peer peerId={m.author} name={name(m.author)} /></p>}
            <p class="text" dir="auto">{m.text}</p>
            <p class="meta"><time dateTime={new Date(m.at).toISOString()}>{time(m.at)}</time></p>
          </li>
        ))}
      </ol></div>
      {g.state === 'joined' && <Composer send={async text => { s.putGroupMessage(await api.sendGroup(id, text)); s.changed() }} />}
    </section>
  )
}
