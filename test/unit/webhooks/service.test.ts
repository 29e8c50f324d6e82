import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { Counters, EventLog } from '../../../src/messaging/index.js'
import { CommitPipeline } from '../../../src/store/commit.js'
import { Store } from '../../../src/store/database.js'
import { WebhookService, type WebhookOptions } from '../../../src/webhooks/index.js'
import { Cleanup } from '../../helpers/daemon.js'
import { WebhookReceiver } from '../../helpers/webhook-receiver.js'

/**
 * The webhook service over a real store, commit pipeline and event log, delivering to a
 * real HTTP receiver: what the daemon-level tests cannot reach quickly (pruned events,
 * the stop's grace for a POST in flight, a delete aborting one).
 */

const SECRET = 'unit-test-secret-0123456789'
const cleanup = new Cleanup()
afterEach(async () => { await cleanup.run() })

interface Harness {
  store: Store
  pipeline: CommitPipeline
  events: EventLog
  service: WebhookService
  logs: Array<{ level: number, msg: string, [key: string]: unknown }>
  counters: Counters
  /** `count` events committed, one commit each */
  commit: (count: number) => Promise<void>
  stop: () => Promise<void>
}

async function start (dir: string, options: Partial<WebhookOptions> = {}): Promise<Harness> {
  const store = await Store.open(dir)
  const pipeline = new CommitPipeline(store)
  const events = await EventLog.open(pipeline)
  const logs: Harness['logs'] = []
  const log = pino({ level: 'debug' }, { write: (line: string) => { logs.push(JSON.parse(line)) } })
  const counters = new Counters()
  const service = new WebhookService({ pipeline, events, counters, log, userAgent: 'octet-test', options: { retryMin: 20, retryMax: 100, ...options } })
  await service.start()
  let stopped: Promise<void> | undefined
  const stop = async (): Promise<void> => {
    stopped ??= (async () => {
      await service.stop()
      await pipeline.close()
      await store.close()
    })()
    await stopped
  }
  cleanup.add(stop)
  const commit = async (count: number): Promise<void> => {
    for (let i = 0; i < count; i++) await events.commit([], [{ type: 'contact.request', data: { peerId: `peer-${i}` } }])
  }
  return { store, pipeline, events, service, logs, counters, commit, stop }
}

async function dataDir (): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'octet-webhooks-unit-'))
  cleanup.add(async () => { await rm(dir, { recursive: true, force: true }) })
  return dir
}

describe('WebhookService', () => {
  it('delivers every event once and in order, whether a webhook keeps up (events from memory) or falls behind (from the log)', async () => {
    const h = await start(await dataDir(), { pauseAfter: 1000 })
    const [fast, slow, flaky] = await Promise.all([0, 1, 2].map(async () => await WebhookReceiver.start(SECRET, cleanup))) as [WebhookReceiver, WebhookReceiver, WebhookReceiver]
    slow.delayMs = 1
    for (const receiver of [fast, slow, flaky]) await h.service.create({ url: receiver.url, secret: SECRET })
    let total = 0
    const single = async (): Promise<void> => {
      await h.events.commit([], [{ type: 'contact.request', data: { peerId: `peer-${++total}` } }])
    }
    // bursts of concurrent commits of several events each, more than a page (256) in all
    const burst = async (commits: number, perCommit: number): Promise<void> => {
      await Promise.all(Array.from({ length: commits }, async () => {
        await h.events.commit([], Array.from({ length: perCommit }, () => ({ type: 'contact.request' as const, data: { peerId: `peer-${++total}` } })))
      }))
    }
    // kept up with: each event delivered before the next is published
    for (let i = 0; i < 30; i++) {
      await single()
      await fast.until(`event ${total}`, () => fast.deliveries.length === total)
    }
    await burst(60, 10)
    await flaky.down()
    await burst(30, 10)
    for (let i = 0; i < 20; i++) await single()
    await flaky.up()
    await burst(5, 3)
    for (let i = 0; i < 30; i++) {
      await single()
      await fast.until(`event ${total}`, () => fast.deliveries.length === total)
    }
    const all = Array.from({ length: total }, (_, i) => i + 1)
    for (const receiver of [fast, slow, flaky]) await receiver.until('every event', () => receiver.ids.length === total)
    expect(fast.deliveries.map(d => d.id)).toEqual(all)
    expect(slow.deliveries.map(d => d.id)).toEqual(all)
    // the one that went down may get the POST whose answer it never sent again, and nothing else
    expect(flaky.ids).toEqual(all)
    const flakyIds = flaky.deliveries.map(d => d.id)
    expect(flakyIds.every((id, i) => i === 0 || id === flakyIds[i - 1] || id === flakyIds[i - 1]! + 1)).toBe(true)
    expect([fast, slow, flaky].every(r => r.deliveries.every(d => d.check.ok))).toBe(true)
  })

  it('a webhook paused halfway through what it read goes on from its cursor, not from the events published since', async () => {
    const h = await start(await dataDir(), { pauseAfter: 1 })
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.delayMs = 5
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET })
    // one commit: the worker reads all 100 at once, then delivers them one by one
    await h.events.commit([], Array.from({ length: 100 }, (_, i) => ({ type: 'contact.request' as const, data: { peerId: `peer-${i}` } })))
    await receiver.until('a few delivered', () => receiver.deliveries.length >= 10)
    await receiver.down()
    await until(() => h.service.get(webhook.id).state === 'paused')
    const cursor = h.service.get(webhook.id).lastDeliveredId
    expect(cursor).toBeLessThan(100)
    // published while it is paused: they follow on from what it read, not from its cursor
    await h.commit(20)
    await receiver.up()
    await h.service.resume(webhook.id)
    await receiver.until('all 120', () => receiver.ids.length === 120, 10_000)
    expect(receiver.ids).toEqual(Array.from({ length: 120 }, (_, i) => i + 1))
  })

  it('names the events pruned before a webhook got them, logs it, and goes on from the oldest kept', async () => {
    const h = await start(await dataDir(), { pauseAfter: 1 })
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.status = 500
    await h.commit(10)
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET, after: 0 })
    await receiver.until('one failed try', () => receiver.deliveries.length === 1)
    await until(() => h.service.get(webhook.id).state === 'paused')
    // the retention runs while the webhook is paused: only the newest 3 are kept
    expect(await h.events.prune(0, 3)).toBe(7)
    receiver.status = 200
    await h.service.resume(webhook.id)
    await receiver.until('the 3 kept', () => receiver.deliveries.filter(d => d.check.ok).length === 4)
    expect(receiver.deliveries.slice(1).map(d => d.id)).toEqual([8, 9, 10])
    // the receiver counts a delivery as it answers; the cursor moves once the answer is back
    await until(() => h.service.get(webhook.id).lag === 0)
    expect(h.service.get(webhook.id)).toMatchObject({ state: 'active', lastDeliveredId: 10, lag: 0, missed: { from: 1, to: 7 } })
    expect(h.logs.find(l => l.level === 40 && l.webhook === webhook.id && /pruned/.test(l.msg))).toMatchObject({ from: 1, to: 7 })
    expect(h.counters.snapshot()['webhooks.missed']).toBe(7)
  })

  it('passes over the types not asked for, and stores the cursor past them', async () => {
    const dir = await dataDir()
    const h = await start(dir)
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET, events: ['message.received'] })
    await h.commit(5)
    await until(() => h.service.get(webhook.id).lag === 0)
    expect(receiver.deliveries).toEqual([])
    await h.stop()
    const again = await start(dir)
    expect(again.service.get(webhook.id)).toMatchObject({ lastDeliveredId: 5, lag: 0 })
  })

  it('lets a POST in flight finish when it stops, and stores its cursor', async () => {
    const dir = await dataDir()
    const h = await start(dir, { stopGrace: 5000 })
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.delayMs = 300
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET })
    await h.commit(3)
    await receiver.until('the first in flight', () => receiver.arrived.length === 1)
    await h.stop()
    // the one in flight was answered and counted; the next was never sent
    expect(receiver.deliveries.map(d => d.id)).toEqual([1])
    expect(receiver.aborted).toEqual([])
    receiver.delayMs = 0
    const again = await start(dir)
    expect(again.service.get(webhook.id).lastDeliveredId).toBe(1)
    await receiver.until('the rest', () => receiver.deliveries.length === 3)
    expect(receiver.deliveries.map(d => d.id)).toEqual([1, 2, 3])
  })

  it('aborts a POST that outlasts the stop grace, and sends it again after', async () => {
    const dir = await dataDir()
    const h = await start(dir, { stopGrace: 100 })
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.delayMs = 60_000
    await h.service.create({ url: receiver.url, secret: SECRET })
    await h.commit(1)
    await receiver.until('in flight', () => receiver.arrived.length === 1)
    const t0 = Date.now()
    await h.stop()
    expect(Date.now() - t0).toBeLessThan(5000)
    await receiver.until('the abort seen', () => receiver.aborted.length === 1)
    receiver.delayMs = 0
    await start(dir)
    await receiver.until('sent again', () => receiver.deliveries.length === 1)
    expect(receiver.deliveries[0]?.id).toBe(1)
  })

  it('aborts the POST in flight to a webhook that is removed', async () => {
    const h = await start(await dataDir())
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.delayMs = 60_000
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET })
    await h.commit(1)
    await receiver.until('in flight', () => receiver.arrived.length === 1)
    await h.service.remove(webhook.id)
    await receiver.until('the abort seen', () => receiver.aborted.length === 1)
    expect(h.service.list()).toEqual([])
  })

  it('counts a receiver that does not answer in time as a failure, and delivers once it does', async () => {
    const h = await start(await dataDir(), { timeout: 200 })
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.delayMs = 60_000
    const { webhook } = await h.service.create({ url: receiver.url, secret: SECRET })
    await h.commit(1)
    await until(() => h.service.get(webhook.id).failures >= 2)
    expect(h.service.get(webhook.id)).toMatchObject({ state: 'active', lastError: 'no answer within 0.2 s', lag: 1 })
    receiver.delayMs = 0
    await receiver.until('delivered', () => receiver.deliveries.length > 0)
    await until(() => h.service.get(webhook.id).lag === 0)
    expect(h.service.get(webhook.id).failures).toBe(0)
  })

  it('counts a redirect as a failure and does not follow it', async () => {
    const h = await start(await dataDir(), { pauseAfter: 2 })
    const target = await WebhookReceiver.start(SECRET, cleanup)
    const { webhook } = await h.service.create({ url: `${target.url}?redirect`, secret: SECRET })
    target.status = 307
    await h.commit(1)
    await until(() => h.service.get(webhook.id).state === 'paused')
    expect(h.service.get(webhook.id).lastError).toMatch(/^HTTP 307: redirect .*not followed$/)
    expect(target.arrived).toEqual([1, 1])
  })
})

async function until (check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out')
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}
