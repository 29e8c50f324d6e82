// The page's shell: navigation, the connection banner, and the view the URL names
// (#/chats/<peerId>, #/groups/<id>, #/contacts, #/node), so a reload comes back to it.
import { useEffect, useState } from 'preact/hooks'
import { ChatView, ConversationList } from './chats.js'
import { ContactsView } from './contacts.js'
import { GroupList, GroupView } from './groups.js'
import { NodeView } from './node.js'
import { useStore } from './ui.js'

function useRoute (): string[] {
  const [hash, setHash] = useState(location.hash)
  useEffect(() => {
    const on = (): void => { setHash(location.hash) }
    window.addEventListener('hashchange', on)
    return () => { window.removeEventListener('hashchange', on) }
  }, [])
  return hash.replace(/^#\/?/, '').split('/').filter(p => p !== '')
}

function Banner () {
  const s = useStore()
  if (s.connection === 'live' && s.error == null) return null
  const text = s.connection === 'login'
    ? 'Not logged in. Run `octet ui` on the machine of the daemon and open the URL it prints.'
    : s.connection === 'offline'
      ? 'The daemon cannot be reached: what you see may be out of date. Reconnecting…'
      : s.connection === 'connecting' ? 'Connecting to the daemon…' : s.error
  return <p class={`banner ${s.connection}`} role="status" data-connection={s.connection}>{text}</p>
}

// GroupView is keyed by the group's id: another group opens with its own state (members folded),
// not with the last group's
export function App () {
  const [section = 'chats', id] = useRoute()
  const s = useStore()
  const unread = [...s.conversations.values()].reduce((n, c) => n + c.unread, 0)
  const requests = [...s.contacts.values()].filter(c => c.state === 'pending').length
  const invites = [...s.groups.values()].filter(g => g.state === 'invited').length
  const tab = (name: string, label: string, count: number) => (
    <a href={`#/${name}`} aria-current={section === name ? 'page' : undefined}>{label}{count > 0 && <span class="unread" aria-label={`${count} new`}>{count}</span>}</a>
  )
  return (
    <div class={`shell ${id != null ? 'has-detail' : ''}`} data-connection={s.connection}>
      <header class="top">
        <h1>octet</h1>
        <nav aria-label="Sections" class="tabs">
          {tab('chats', 'Chats', unread)}{tab('groups', 'Groups', invites)}{tab('contacts', 'Contacts', requests)}{tab('node', 'Node', 0)}
        </nav>
      </header>
      <Banner />
      {section === 'chats' && <><ConversationList selected={id} /><main class="detail">{id != null ? <ChatView peerId={id} /> : <p class="hint">Pick a conversation, or open one with a PeerId.</p>}</main></>}
      {section === 'groups' && <><GroupList selected={id} /><main class="detail">{id != null ? <GroupView key={id} id={id} /> : <p class="hint">Pick a group, or create one.</p>}</main></>}
      {section === 'contacts' && <main class="detail wide"><ContactsView /></main>}
      {section === 'node' && <main class="detail wide"><NodeView /></main>}
    </div>
  )
}
