import { rm } from 'node:fs/promises'
import { multiaddr } from '@multiformats/multiaddr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { ContactView, MessageRecord, OctetEvent } from '../../src/messaging/index.js'
import { databasePaths } from '../../src/store/database.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'

interface SafetyNumberView {
  peerId: string
  safetyNumber: string
  identity: string
  pendingSafetyNumber?: string
}

/**
 * Reads `GET /v1/events?after=<after>` over HTTP until an event matches;
 * fails when none does within `timeoutMs`.
 */
async function findEvent (node: DaemonProcess, matches: (event: OctetEvent) => boolean, { after = 0, timeoutMs = 10_000 } = {}): Promise<OctetEvent> {
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, timeoutMs)
  try {
    const res = await fetch(`${node.info.apiUrl}/v1/events?after=${after}`, {
      headers: { authorization: `Bearer ${node.token}` },
      signal: controller.signal
    })
    if (res.status !== 200 || res.body == null) throw new Error(`GET /v1/events answered ${res.status}`)
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk, { stream: true })
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const data = buffer.slice(0, end).split('\n').filter(l => l.startsWith('data: ')).map(l => l.slice(6)).join('\n')
        buffer = buffer.slice(end + 2)
        if (data === '') continue
        const event = JSON.parse(data) as OctetEvent
        if (matches(event)) return event
      }
    }
    throw new Error('the event stream ended')
  } catch (err) {
    if (controller.signal.aborted) throw new Error(`no matching event within ${timeoutMs} ms`)
    throw err
  } finally {
    clearTimeout(timer)
    controller.abort()
  }
}

/**
 * A contact reinstalls octet but keeps its PeerId (identity.key survives,
 * the Signal state does not): a new Signal identity key under a known
 * PeerId. Its contacts must notice, show the new safety number, and hold
 * traffic both ways until the user accepts the change; nothing is lost or
 * silently accepted. A and C are `octet daemon` processes over real TCP: the
 * reinstall is C's process stopped, its state deleted, `octet doctor --repair`,
 * and a new process on the same data directory.
 */
describe('a contact whose Signal identity changed (reinstall, same PeerId)', () => {
  const cleanup = new Cleanup()
  let a: DaemonProcess
  let c: DaemonProcess
  let cPort: number
  /** the safety number of A and C before any reinstall */
  let original: string
  /** the identity.changed event A raised in the first scenario */
  let firstChange: OctetEvent
  /** the one it raised in the second */
  let secondChange: OctetEvent

  beforeAll(async () => {
    // two daemons, C bootstrapping from A: a third one to introduce them would be one more
    // process start and nothing this test is about
    a = await DaemonProcess.start({ dataDir: await cleanup.tempDir() }, cleanup)
    c = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
    cPort = Number(multiaddr(c.tcpAddress).getComponents().find(x => x.name === 'tcp')?.value)
  })
  afterAll(async () => { await cleanup.run() })

  const send = async (from: DaemonProcess, to: DaemonProcess, text: string): Promise<MessageRecord> => {
    const { status, body } = await from.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: to.peerId, text })
    expect(status).toBe(202)
    return body.message
  }
  const message = async (node: DaemonProcess, id: string): Promise<MessageRecord> =>
    (await node.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message
  const delivered = async (node: DaemonProcess, id: string): Promise<MessageRecord> => await waitFor(async () => {
    const m = await message(node, id)
    return m.status === 'delivered' ? m : undefined
  }, { what: `message ${id} delivered` })
  const history = async (node: DaemonProcess, peer: DaemonProcess): Promise<MessageRecord[]> =>
    (await node.api<{ messages: MessageRecord[] }>('GET', `/v1/conversations/${peer.peerId}/messages?limit=100`)).body.messages
  const contact = async (node: DaemonProcess, peer: DaemonProcess): Promise<ContactView> =>
    (await node.api<{ contact: ContactView }>('GET', `/v1/contacts/${peer.peerId}`)).body.contact
  const safetyNumber = async (node: DaemonProcess, peer: DaemonProcess): Promise<SafetyNumberView> => {
    const { status, body } = await node.api<SafetyNumberView>('GET', `/v1/contacts/${peer.peerId}/safety-number`)
    expect(status).toBe(200)
    return body
  }
  const stat = async (node: DaemonProcess, name: string): Promise<number> =>
    (await node.api<{ counters: Record<string, number> }>('GET', '/v1/stats')).body.counters[name] ?? 0

  /**
   * Stops C, deletes its state database (Signal keys, sessions, messages), starts it again: same
   * PeerId, same port. A state gone next to its identity is refused at start (it was not made new),
   * so C's operator says so with `octet doctor --repair`, which starts the state over empty.
   */
  const reinstallC = async (): Promise<void> => {
    const peerId = c.peerId
    expect(await c.stop()).toBe(0)
    await rm(databasePaths(c.options.dataDir).state, { recursive: true, force: true })
    expect((await runCli(['doctor', '--repair', '--data-dir', c.options.dataDir])).code).toBe(0)
    c = await DaemonProcess.start({ ...c.options, listen: [`/ip4/127.0.0.1/tcp/${cPort}`] }, cleanup)
    expect(c.peerId).toBe(peerId)
    // nothing of the old state is left
    expect((await c.api<{ contacts: unknown[] }>('GET', '/v1/contacts')).body.contacts).toEqual([])
  }

  it('before: A and C exchange messages, trust each other\'s keys and agree on the safety number', async () => {
    const hello = await send(a, c, 'hello C')
    await delivered(a, hello.id)
    const reply = await send(c, a, 'hello A')
    await delivered(c, reply.id)
    expect((await history(a, c)).map(m => m.text)).toEqual(['hello C', 'hello A'])

    expect(await contact(a, c)).toMatchObject({ state: 'accepted', identity: 'trusted' })
    // C accepted A by replying
    expect(await contact(c, a)).toMatchObject({ state: 'accepted', identity: 'trusted' })
    const fromA = await safetyNumber(a, c)
    const fromC = await safetyNumber(c, a)
    expect(fromA.safetyNumber).toMatch(/^\d{60}$/)
    expect(fromA.safetyNumber).toBe(fromC.safetyNumber)
    expect(fromA.pendingSafetyNumber).toBeUndefined()
    original = fromA.safetyNumber
  })

  /**
   * (ii) A → reinstalled C. A still holds its old session, so its envelope is
   * an ordinary Double Ratchet message that C cannot decrypt: C answers
   * NO_SESSION. A's sender forgets the session and fetches C's new bundle,
   * whose identity key differs from the trusted one: the message is held
   * (not delivered, reason names the identity change, no timer) and
   * identity.changed is raised. Accepting the new key sends it.
   */
  it('(ii) A writes to the reinstalled C: C answers NO_SESSION, A fetches the new bundle and holds the message until the new key is accepted', async () => {
    await reinstallC()
    const noSessionBefore = await stat(a, 'dm.retry.NO_SESSION')

    const sent = await send(a, c, 'are you there after the reinstall?')
    const held = await waitFor(async () => {
      const m = await message(a, sent.id)
      return m.status === 'failed' || m.reason?.includes('identity') === true ? m : undefined
    }, { what: 'the message held for the identity change' })
    // still to be delivered ('sent': it went out once, under the old session)
    expect(['queued', 'sent']).toContain(held.status)
    expect(held.reason).toMatch(/identity key changed/)

    // C refused the old session's envelope as NO_SESSION; A reset the session and retried
    expect(await stat(c, 'dm.rejected.NO_SESSION')).toBeGreaterThanOrEqual(1)
    expect(await stat(a, 'dm.retry.NO_SESSION')).toBeGreaterThan(noSessionBefore)
    expect(await stat(a, 'dm.retry.IDENTITY_CHANGED')).toBeGreaterThanOrEqual(1)
    expect(await history(c, a)).toEqual([])

    expect(await contact(a, c)).toMatchObject({ state: 'accepted', identity: 'changed' })
    firstChange = await findEvent(a, e => e.type === 'identity.changed' && e.data.peerId === c.peerId)
    const pending = await safetyNumber(a, c)
    expect(pending.identity).toBe('changed')
    // the trusted number is still the old one; the new one is offered for comparison
    expect(pending.safetyNumber).toBe(original)
    expect(pending.pendingSafetyNumber).toMatch(/^\d{60}$/)
    expect(pending.pendingSafetyNumber).not.toBe(original)

    const accepted = await a.api<{ contact: ContactView }>('POST', `/v1/contacts/${c.peerId}/accept-identity`)
    expect(accepted.status).toBe(200)
    expect(accepted.body.contact.identity).toBe('trusted')
    const done = await delivered(a, sent.id)
    expect(done.reason).toBeUndefined()
    const atC = await history(c, a)
    expect(atC.map(m => [m.id, m.text])).toEqual([[sent.id, 'are you there after the reinstall?']])

    // both sides now compute the same number, for the new key
    const fromA = await safetyNumber(a, c)
    const fromC = await safetyNumber(c, a)
    expect(fromA.safetyNumber).toBe(pending.pendingSafetyNumber)
    expect(fromA.safetyNumber).toBe(fromC.safetyNumber)
    expect(fromA.pendingSafetyNumber).toBeUndefined()
    // accepting twice is a conflict: nothing is pending any more
    expect((await a.api('POST', `/v1/contacts/${c.peerId}/accept-identity`)).status).toBe(409)
  })

  /**
   * (i) Reinstalled C → A. C starts a new session from A's bundle; its first
   * message carries the new identity key. A acks it (C sees delivered) but
   * keeps it sealed: not in A's history, contact flagged changed, an
   * identity.changed event, a pending safety number. Accepting the key
   * decrypts it into the history, once; then A can answer.
   */
  it('(i) the reinstalled C writes to A: A holds the message sealed until the new key is accepted, then shows it once', async () => {
    await reinstallC()
    const heldBefore = await stat(a, 'dm.held.IDENTITY_CHANGED')
    const trustedBefore = (await safetyNumber(a, c)).safetyNumber

    const sent = await send(c, a, 'it is me, reinstalled')
    // the envelope reached A and was acked: held, not refused
    await delivered(c, sent.id)
    expect(await stat(a, 'dm.held.IDENTITY_CHANGED')).toBe(heldBefore + 1)
    expect((await history(a, c)).map(m => m.id)).not.toContain(sent.id)
    expect(await contact(a, c)).toMatchObject({ identity: 'changed' })
    const change = await findEvent(a, e => e.type === 'identity.changed' && e.data.peerId === c.peerId, { after: firstChange.id })
    expect(change.id).toBeGreaterThan(firstChange.id)
    const pending = await safetyNumber(a, c)
    expect(pending.safetyNumber).toBe(trustedBefore)
    expect(pending.pendingSafetyNumber).toMatch(/^\d{60}$/)
    expect(pending.pendingSafetyNumber).not.toBe(trustedBefore)

    const accepted = await a.api<{ contact: ContactView }>('POST', `/v1/contacts/${c.peerId}/accept-identity`)
    expect(accepted.status).toBe(200)
    const received = (await history(a, c)).filter(m => m.id === sent.id)
    expect(received).toHaveLength(1)
    expect(received[0]).toMatchObject({ direction: 'in', text: 'it is me, reinstalled', status: 'delivered' })
    expect(await contact(a, c)).toMatchObject({ identity: 'trusted' })
    // a new installation numbers from 1 again: its first message is no late one of the old
    const event = await findEvent(a, e => e.type === 'message.received' && e.data.message.id === sent.id, { after: change.id })
    expect(event.data).not.toHaveProperty('late')
    expect(event.data).not.toHaveProperty('gap')

    // and the conversation goes on both ways on the new session
    const answer = await send(a, c, 'welcome back')
    await delivered(a, answer.id)
    expect((await history(c, a)).map(m => m.text)).toEqual(['it is me, reinstalled', 'welcome back'])
    const fromA = await safetyNumber(a, c)
    const fromC = await safetyNumber(c, a)
    expect(fromA.safetyNumber).toBe(pending.pendingSafetyNumber)
    expect(fromA.safetyNumber).toBe(fromC.safetyNumber)
    // the held copy is not replayed a second time
    expect((await history(a, c)).filter(m => m.id === sent.id)).toHaveLength(1)
    secondChange = change
  })

  /**
   * (iii) Both at once: the reinstalled C writes first (A holds it), then A
   * writes before accepting. A's envelope, sealed under the old session, meets
   * C's new session and does not decrypt (DECRYPT_FAILED, not NO_SESSION:
   * C has a session with A, just not A's). That must not fail A's message for
   * good: A starts over from C's bundle, meets the changed key, holds the
   * message, and delivers it once the change is accepted.
   */
  it('(iii) both write at once after the reinstall: A\'s message is held, not lost, and delivered after accepting', async () => {
    await reinstallC()
    const fromC = await send(c, a, 'reinstalled once more')
    await delivered(c, fromC.id)
    await findEvent(a, e => e.type === 'identity.changed' && e.data.peerId === c.peerId, { after: secondChange.id })
    const decryptFailedBefore = await stat(c, 'dm.rejected.DECRYPT_FAILED')

    const fromA = await send(a, c, 'written before accepting')
    const held = await waitFor(async () => {
      const m = await message(a, fromA.id)
      return m.status === 'failed' || m.reason?.includes('identity') === true ? m : undefined
    }, { what: 'A\'s message held for the identity change' })
    expect(held).toMatchObject({ status: expect.not.stringMatching(/^(failed|delivered)$/), reason: expect.stringMatching(/identity key changed/) })
    // C could not decrypt the old session's envelope
    expect(await stat(c, 'dm.rejected.DECRYPT_FAILED')).toBeGreaterThan(decryptFailedBefore)
    expect(await history(c, a)).toEqual([expect.objectContaining({ id: fromC.id })])

    expect((await a.api('POST', `/v1/contacts/${c.peerId}/accept-identity`)).status).toBe(200)
    await delivered(a, fromA.id)
    expect((await history(c, a)).map(m => [m.id, m.text])).toEqual([[fromC.id, 'reinstalled once more'], [fromA.id, 'written before accepting']])
    expect((await history(a, c)).filter(m => m.id === fromC.id || m.id === fromA.id).map(m => m.text))
      .toEqual(['reinstalled once more', 'written before accepting'])
    expect((await safetyNumber(a, c)).safetyNumber).toBe((await safetyNumber(c, a)).safetyNumber)
  })
})
