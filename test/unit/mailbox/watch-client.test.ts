import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import { pino } from 'pino'
import { beforeAll, describe, expect, it } from 'vitest'
import { OctetError } from '../../../src/errors.js'
import { serveMailbox, type MailboxBackend } from '../../../src/mailbox/protocol-serve.js'
import { WatchClient, type WatchClientInit } from '../../../src/mailbox/watch-client.js'
import { WatcherRegistry, type WatchLimits } from '../../../src/mailbox/watchers.js'
import { MailboxStatus } from '../../../src/wire/mailbox.pb.js'
import { until } from '../../helpers/daemon.js'

let me: string
let mailboxPeer: string

beforeAll(async () => {
  me = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
  mailboxPeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
})

/** A mailbox on the far end of in-memory streams: WATCH only, with its own registry. */
function fakeMailbox (limits: Partial<WatchLimits> = {}): { registry: WatcherRegistry, open: WatchClientInit['openStream'], refuse: (yes: boolean) => void, down: (yes: boolean) => void, opened: () => number } {
  const registry = new WatcherRegistry({ perPeer: 2, total: 10, ttl: 60_000, ...limits })
  let refusing = false
  let unreachable = false
  let opened = 0
  const backend: MailboxBackend = {
    self: mailboxPeer,
    remotePeer: me,
    admit: () => true,
    store: async () => ({ status: MailboxStatus.OK }),
    page: async () => ({ envelopes: [], more: false, cursor: undefined }),
    delete: async () => 0,
    watch: (recipient, notify) => {
      if (refusing) return { accepted: false, status: MailboxStatus.QUOTA_EXCEEDED, reason: 'full' }
      const registration = registry.register(recipient, notify)
      return registration.accepted ? { accepted: true, watch: registration.watch, count: 0 } : { accepted: false, status: MailboxStatus.QUOTA_EXCEEDED, reason: registration.reason }
    }
  }
  return {
    registry,
    open: async (): Promise<Stream> => {
      opened++
      if (unreachable) throw new OctetError('PEER_UNREACHABLE', 'down')
      const [caller, server] = await streamPair()
      void serveMailbox(server, backend, { timeout: 1_000 }).catch(() => {})
      return caller
    },
    refuse: yes => { refusing = yes },
    down: yes => { unreachable = yes },
    opened: () => opened
  }
}

function client (open: WatchClientInit['openStream'], overrides: Partial<WatchClientInit> = {}): WatchClient {
  return new WatchClient({
    self: me,
    openStream: open,
    log: pino({ level: 'silent' }),
    responseTimeout: 1_000,
    renewInterval: 60_000,
    retryFirstDelay: 50,
    retryMaxDelay: 60_000,
    minLifetime: 100,
    ...overrides
  })
}

describe('WatchClient', () => {
  it('registers, hears notifies, registers again when the mailbox ends a watch, and stop() ends it', async () => {
    const mailbox = fakeMailbox({ ttl: 300 })
    const heard: number[] = []
    const watches = client(mailbox.open)
    watches.set([mailboxPeer], (_, count) => { heard.push(count) })
    await until('the watch to be registered', () => watches.active().length === 1 && mailbox.registry.size === 1)
    mailbox.registry.notify(me, 7)
    await until('the notify', () => heard.includes(7))
    // the mailbox's time to live ends the watch; the client registers again by itself
    await until('a second registration', () => watches.counters.registered >= 2, 3_000)
    expect(mailbox.registry.size).toBeLessThanOrEqual(1)
    await watches.stop()
    expect(watches.active()).toEqual([])
    await until('the mailbox to let the watch go', () => mailbox.registry.size === 0)
  })

  it('renews on its own schedule, never holding more than the mailbox allows', async () => {
    const mailbox = fakeMailbox()
    const watches = client(mailbox.open, { renewInterval: 150 })
    watches.set([mailboxPeer], () => {})
    await until('three registrations', () => watches.counters.registered >= 3, 3_000)
    expect(mailbox.registry.size).toBeLessThanOrEqual(2)
    await watches.stop()
  })

  it('backs off after a refusal, and tries again at once when the peer reconnects', async () => {
    const mailbox = fakeMailbox()
    mailbox.refuse(true)
    const watches = client(mailbox.open, { retryMaxDelay: 60_000 })
    watches.set([mailboxPeer], () => {})
    await until('the refusal', () => watches.counters.refused === 1)
    mailbox.refuse(false)
    // a refusal waits retryMaxDelay (a minute here)…
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(watches.active()).toEqual([])
    // …unless the peer connects again
    watches.reconnected(mailboxPeer)
    await until('the watch after the reconnect', () => watches.active().length === 1, 2_000)
    await watches.stop()
  })

  it('retries an unreachable mailbox with a doubling backoff; set([]) ends the attempts', async () => {
    const mailbox = fakeMailbox()
    mailbox.down(true)
    const watches = client(mailbox.open, { retryFirstDelay: 50, retryMaxDelay: 400 })
    watches.set([mailboxPeer], () => {})
    await new Promise(resolve => setTimeout(resolve, 700))
    // 0, 50, 150, 350, (750): doubling, not a tight loop
    expect(mailbox.opened()).toBeGreaterThanOrEqual(3)
    expect(mailbox.opened()).toBeLessThanOrEqual(5)
    expect(watches.counters.failed).toBe(mailbox.opened())
    watches.set([], () => {})
    const tries = mailbox.opened()
    await new Promise(resolve => setTimeout(resolve, 500))
    expect(mailbox.opened()).toBe(tries)
    expect(watches.targets()).toEqual([])
    await watches.stop()
  })
})
