// Small pieces shared by the views.
import { useEffect, useState } from 'preact/hooks'
import type { MessageStatus } from './api.js'
import { store } from './store.js'

/** Renders again whenever the store changes. */
export function useStore (): typeof store {
  const [, setVersion] = useState(0)
  useEffect(() => store.subscribe(() => { setVersion(v => v + 1) }), [])
  return store
}

/** A PeerId shortened for lists; the full one in the title and for screen readers. */
export function Peer ({ peerId, name }: { peerId: string, name?: string | undefined }) {
  const short = `${peerId.slice(0, 8)}…${peerId.slice(-6)}`
  return <span class="peer" title={peerId} aria-label={name ?? peerId}>{name ?? short}</span>
}

export function statusText (status: MessageStatus, mailboxes?: number, reason?: string): string {
  if (status === 'stored') return `stored at ${mailboxes ?? 0} mailbox${mailboxes === 1 ? '' : 'es'}`
  if (status === 'failed') return `failed${reason != null ? `: ${reason}` : ''}`
  return status
}

export function time (at: number): string {
  return new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' })
}

/** A button that runs an API call, shows it running, and shows its error. */
export function Action ({ label, run, class: cls }: { label: string, run: () => Promise<unknown>, class?: string }) {
  const [busy, setBusy] = useState(false)
  const [error, setError] = useState<string>()
  return (
    <>
      <button type="button" class={cls} disabled={busy} onClick={() => {
        setBusy(true)
        setError(undefined)
        run().then(() => { setBusy(false) }, (err: Error) => { setBusy(false); setError(err.message) })
      }}>{label}</button>
      {error != null && <span role="alert" class="error">{error}</span>}
    </>
  )
}

export function Copy ({ text, label }: { text: string, label: string }) {
  const [done, setDone] = useState(false)
  return <button type="button" onClick={() => { void navigator.clipboard?.writeText(text).then(() => { setDone(true) }) }}>{done ? 'Copied' : label}</button>
}

/**
 * A one-field form: a label, an input, a button; the input is emptied once `run` succeeds,
 * unless something else was typed meanwhile (the next PeerId to invite is not wiped out by the
 * answer to the previous one).
 */
export function OneField ({ label, button, run, placeholder }: { label: string, button: string, run: (value: string) => Promise<unknown>, placeholder?: string }) {
  const [value, setValue] = useState('')
  const [error, setError] = useState<string>()
  const id = `f-${label.replace(/\W+/g, '-').toLowerCase()}`
  return (
    <form class="one-field" onSubmit={e => {
      e.preventDefault()
      const v = value.trim()
      if (v === '') return
      setError(undefined)
      run(v).then(() => { setValue(now => now.trim() === v ? '' : now) }, (err: Error) => { setError(err.message) })
    }}>
      <label for={id}>{label}</label>
      <input id={id} value={value} placeholder={placeholder} autocomplete="off" onInput={e => { setValue(e.currentTarget.value) }} />
      <button type="submit">{button}</button>
      {error != null && <p role="alert" class="error">{error}</p>}
    </form>
  )
}
