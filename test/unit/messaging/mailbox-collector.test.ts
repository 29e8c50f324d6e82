import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import type { SignalCrypto } from '../../../src/crypto/index.js'
import { MailboxCollector } from '../../../src/messaging/mailbox-collector.js'
import type { Receiver } from '../../../src/messaging/receiver.js'
import type { BundleSource, MailboxClient } from '../../../src/messaging/clients.js'
import { Counters } from '../../../src/messaging/stats.js'
import { until } from '../../helpers/daemon.js'

/**
 * The collector's notify path against a fake mailbox client: what it fetches
 * and when. Nothing is ever held, so crypto and the receiver are never reached.
 */
function collector (options: { notify?: boolean } = {}): { c: MailboxCollector, fetches: string[], watched: string[][], notify: (mailbox: string) => void, counters: Counters } {
  const fetches: string[] = []
  const watched: string[][] = []
  let listener: (mailbox: string) => void = () => {}
  const client: MailboxClient = {
    closestPeers: async () => ['m1', 'm2', 'm3'],
    store: async () => ({ accepted: true }),
    fetch: async mailbox => {
      fetches.push(mailbox)
      // a fetch takes a moment: notifies keep coming meanwhile
      await new Promise(resolve => setTimeout(resolve, 20))
      return []
    },
    delete: async () => 0,
    watch: (mailboxes, onNotify) => {
      watched.push(mailboxes)
      listener = onNotify
    }
  }
  const counters = new Counters()
  const c = new MailboxCollector({
    peerId: 'me',
    client,
    bundles: {} as unknown as BundleSource,
    replicas: 3,
    crypto: {} as unknown as SignalCrypto,
    receiver: {} as unknown as Receiver,
    counters,
    log: pino({ level: 'silent' }),
    interval: 60 * 60_000,
    ...options
  })
  return { c, fetches, watched, notify: mailbox => { listener(mailbox) }, counters }
}

describe('MailboxCollector with watches', () => {
  it('watches the mailboxes a full round asks', async () => {
    const { c, watched } = collector()
    await c.collect()
    expect(watched).toEqual([['m1', 'm2', 'm3']])
    await c.stop()
    // stop ends the watches
    expect(watched.at(-1)).toEqual([])
  })

  it('a burst of 1,000 notifies from one mailbox is a fetch or two there, soon, and none elsewhere', async () => {
    const { c, fetches, notify, counters } = collector()
    await c.collect()
    fetches.length = 0
    const started = Date.now()
    for (let i = 0; i < 1000; i++) {
      notify('m2')
      // spread over the time a fetch takes, so some arrive while one runs
      if (i % 100 === 0) await new Promise(resolve => setTimeout(resolve, 5))
    }
    await until('a fetch at m2', () => fetches.length > 0, 2_000)
    expect(Date.now() - started).toBeLessThan(1_000)
    await new Promise(resolve => setTimeout(resolve, 300))
    expect(fetches.every(m => m === 'm2')).toBe(true)
    expect(fetches.length).toBeGreaterThanOrEqual(1)
    expect(fetches.length).toBeLessThanOrEqual(3)
    expect(counters.get('mailbox.notified')).toBe(1000)
    await c.stop()
  })

  it('stays under the mailbox\'s fetch limit however often it notifies', async () => {
    const { c, fetches, notify } = collector()
    await c.collect()
    fetches.length = 0
    // one notify every 30 ms for 1.5 s: far more than the rate allows once the burst is spent
    for (let i = 0; i < 50; i++) {
      notify('m1')
      await new Promise(resolve => setTimeout(resolve, 30))
    }
    // the burst (10 rounds) and what refilled (0.4 a second)
    expect(fetches.length).toBeLessThanOrEqual(10 + 2)
    await c.stop()
  })

  it('without notify, nothing is watched and notifies cannot arrive', async () => {
    const { c, watched } = collector({ notify: false })
    await c.collect()
    expect(watched).toEqual([])
    await c.stop()
  })

  it('stop() waits for the round under way and refuses new ones', async () => {
    const { c, fetches } = collector()
    const round = c.collect()
    await until('the round to fetch', () => fetches.length > 0)
    await c.stop()
    await expect(round).resolves.toMatchObject({ mailboxes: 3 })
    await expect(c.collect()).rejects.toMatchObject({ code: 'UNAVAILABLE' })
  })
})
