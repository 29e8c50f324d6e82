// Entry: log in with the one-time code `octet ui` put in the URL fragment (never sent to a
// server, removed from the address bar and history at once), then start the page.
import { render } from 'preact'
import { api } from './api.js'
import { App } from './app.js'
import { store } from './store.js'

async function main (): Promise<void> {
  const code = /^#login=([A-Za-z0-9_-]+)$/.exec(location.hash)?.[1]
  if (code != null) {
    history.replaceState(null, '', `${location.pathname}#/chats`)
    try {
      await api.login(code)
    } catch (err) {
      store.error = `Login failed: ${(err as Error).message}`
    }
  }
  const root = document.getElementById('app')
  if (root == null) return
  root.textContent = ''
  render(<App />, root)
  await store.start()
}

void main()
