// Contacts: requests to accept or block, and everyone known.
import { api } from './api.js'
import { ContactRequestButtons } from './chats.js'
import { OneField, Peer, useStore } from './ui.js'

export function ContactsView () {
  const s = useStore()
  const contacts = [...s.contacts.values()]
  const requests = contacts.filter(c => c.state === 'pending')
  const others = contacts.filter(c => c.state !== 'pending')
  return (
    <section class="page" aria-labelledby="contacts-title">
      <h2 id="contacts-title">Contacts</h2>
      <h3>Contact requests</h3>
      {requests.length === 0 && <p class="empty">No requests.</p>}
      <ul class="rows">
        {requests.map(c => (
          <li key={c.peerId} data-peer={c.peerId}><a href={`#/chats/${c.peerId}`}><Peer peerId={c.peerId} name={c.name} /></a> <ContactRequestButtons peerId={c.peerId} /></li>
        ))}
      </ul>
      <h3>Everyone</h3>
      <ul class="rows">
        {others.map(c => (
          <li key={c.peerId} data-peer={c.peerId}>
            <a href={`#/chats/${c.peerId}`}><Peer peerId={c.peerId} name={c.name} /></a>
            {c.state === 'blocked' && <span class="badge">blocked</span>}
            {c.identity === 'changed' && <span class="badge warn">safety number changed</span>}
          </li>
        ))}
      </ul>
      <OneField label="Add a contact (PeerId)" button="Add" run={async peerId => { const c = await api.addContact(peerId); s.contacts.set(c.peerId, c); s.changed() }} />
    </section>
  )
}
