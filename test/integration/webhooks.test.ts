import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { signature, verifyDelivery, type WebhookView } from '../../src/webhooks/index.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'
import { parseExposition } from '../helpers/prometheus.js'
import { WebhookReceiver, type Delivery } from '../helpers/webhook-receiver.js'

const SECRET = 'test-secret-0123456789abcdef'
/** Short waits so that backoff and pausing happen within a test: 100 ms doubling to 800 ms, paused after 6 failures. */
const CONFIG = { webhookRetryMinMs: 100, webhookRetryMaxMs: 800, webhookPauseAfter: 6, webhookTimeoutMs: 5000 }

interface Created { webhook: WebhookView, secret: string }

/** What a receiver keeps that drops every id up to the last it took (the README's dedupe rule). */
function taken (deliveries: Delivery[]): number[] {
  const kept: number[] = []
  for (const { id } of deliveries) if (id > (kept.at(-1) ?? -1)) kept.push(id)
  return kept
}

/** Every id that arrives for the first time is above all before it (none overtook one not yet sent), and signed. */
function expectInOrder (deliveries: Delivery[]): void {
  const seen = new Set<number>()
  let highest = 0
  for (const d of deliveries) {
    if (!seen.has(d.id)) {
      expect(d.id).toBeGreaterThan(highest)
      seen.add(d.id)
      highest = d.id
    }
    expect(d.check).toEqual({ ok: true, eventId: d.id })
  }
}

describe('webhooks', () => {
  const cleanup = new Cleanup()
  let daemon: DaemonProcess
  let peers: string[]

  /** `count` contact.updated events: one contact renamed `label-0`, `label-1` … (one commit each). */
  async function makeEvents (label: string, count: number): Promise<void> {
    for (let i = 0; i < count; i++) {
      const res = await daemon.api('POST', '/v1/contacts', { peerId: peers[i % peers.length], name: `${label}-${i}` })
      expect([200, 201]).toContain(res.status) // 201 the first time a peer becomes a contact
    }
  }

  async function create (body: Record<string, unknown>): Promise<Created> {
    const res = await daemon.api<Created>('POST', '/v1/webhooks', body)
    expect(res.status).toBe(201)
    return res.body
  }

  async function get (id: string): Promise<WebhookView> {
    const res = await daemon.api<{ webhook: WebhookView }>('GET', `/v1/webhooks/${id}`)
    expect(res.status).toBe(200)
    return res.body.webhook
  }

  async function latestEventId (): Promise<number> {
    // a webhook from now on starts at the newest id: that is what it says
    const { webhook } = await create({ url: 'http://127.0.0.1:9/unused' })
    expect((await daemon.api('DELETE', `/v1/webhooks/${webhook.id}`)).status).toBe(204)
    return webhook.lastDeliveredId
  }

  beforeAll(async () => {
    const dataDir = await cleanup.tempDir('octet-webhooks-')
    await writeFile(join(dataDir, 'config.json'), JSON.stringify(CONFIG))
    daemon = await DaemonProcess.start({ dataDir }, cleanup)
    peers = await Promise.all([1, 2, 3].map(async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
  })
  afterAll(async () => { await cleanup.run() })

  it('delivers every event once, in order, signed, across a daemon restart', async () => {
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    const { webhook } = await create({ url: receiver.url, secret: SECRET, events: ['contact.updated'] })
    expect(webhook).toMatchObject({ state: 'active', failures: 0, lag: 0, events: ['contact.updated'] })

    await makeEvents('a', 20)
    await receiver.until('20 events', () => receiver.ids.length === 20)
    expect(receiver.deliveries.map(d => d.data.contact.name)).toEqual(Array.from({ length: 20 }, (_, i) => `a-${i}`))
    expect(receiver.deliveries.every(d => d.type === 'contact.updated')).toBe(true)
    expect(receiver.deliveries.length).toBe(20)
    expectInOrder(receiver.deliveries)
    const delivered = receiver.deliveries.at(-1)?.id
    await waitFor(async () => (await get(webhook.id)).lastDeliveredId === delivered ? true : undefined, { what: 'the cursor at the last delivery' })

    // a slow receiver: the daemon stops with events waiting and one POST in flight
    receiver.delayMs = 150
    await makeEvents('b', 10)
    await receiver.until('the first of the second batch', () => receiver.ids.length > 20)
    daemon = await daemon.restart(cleanup)
    receiver.delayMs = 0
    await receiver.until('30 events', () => receiver.ids.length === 30)
    expect(receiver.ids.map(id => receiver.deliveries.find(d => d.id === id)?.data.contact.name)).toEqual([
      ...Array.from({ length: 20 }, (_, i) => `a-${i}`), ...Array.from({ length: 10 }, (_, i) => `b-${i}`)
    ])
    expectInOrder(receiver.deliveries)
    // at least once: only the POST in flight at the stop may come twice
    expect(receiver.deliveries.length - receiver.ids.length).toBeLessThanOrEqual(1)
    await waitFor(async () => (await get(webhook.id)).lag === 0 ? true : undefined, { what: 'no lag' })
  })

  it('loses nothing when the daemon crashes mid-stream (SIGKILL): it goes on in order from the last cursor on disk', async () => {
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    // 200 events first, then a webhook that starts before them: they go out as fast as the
    // receiver takes them, the cursor written behind the deliveries
    const before = await latestEventId()
    await makeEvents('k', 200)
    const ids = Array.from({ length: 200 }, (_, i) => before + 1 + i)
    await create({ url: receiver.url, secret: SECRET, events: ['contact.updated'], after: before })
    await receiver.until('a third delivered', () => receiver.ids.length >= 60)
    await daemon.kill()
    const beforeCrash = receiver.deliveries.length
    const highestBeforeCrash = Math.max(...receiver.ids)
    daemon = await DaemonProcess.start(daemon.options, cleanup)
    await receiver.until('all 200', () => receiver.ids.length === 200)

    expect(taken(receiver.deliveries)).toEqual(ids)
    expectInOrder(receiver.deliveries)
    // the restarted daemon sends from its stored cursor on, one after another: what came
    // twice is a run just below where the crash stopped it, nothing older
    const afterCrash = receiver.deliveries.slice(beforeCrash).map(d => d.id)
    const from = afterCrash[0] ?? 0
    expect(from).toBeLessThanOrEqual(highestBeforeCrash + 1)
    // written behind, not never: 59 deliveries came after the first cursor write was made
    expect(from).toBeGreaterThan(before + 1)
    expect(afterCrash).toEqual(Array.from({ length: before + 200 - from + 1 }, (_, i) => from + i))
  })

  it('backs off while the receiver is down, then catches up in order', async () => {
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    const { webhook } = await create({ url: receiver.url, secret: SECRET })
    const first = webhook.lastDeliveredId + 1
    await receiver.down()
    await makeEvents('c', 5)
    const failing = await waitFor(async () => { const w = await get(webhook.id); return w.failures >= 2 ? w : undefined }, { what: 'two failed attempts' })
    expect(failing).toMatchObject({ state: 'active', lastError: 'ECONNREFUSED', lastDeliveredId: webhook.lastDeliveredId })
    expect(failing.lag).toBeGreaterThanOrEqual(5)
    await receiver.up()
    await makeEvents('d', 5)
    await receiver.until('10 events', () => receiver.ids.length === 10)
    expect(receiver.ids).toEqual(Array.from({ length: 10 }, (_, i) => first + i))
    expect(receiver.deliveries.map(d => d.data.contact.name)).toEqual([...['0', '1', '2', '3', '4'].map(i => `c-${i}`), ...['0', '1', '2', '3', '4'].map(i => `d-${i}`)])
    expectInOrder(receiver.deliveries)
    expect(await get(webhook.id)).toMatchObject({ state: 'active', failures: 0, lag: 0 })
  })

  it('pauses after repeated failures, shows it (API, CLI, metrics), and resumes by the route', async () => {
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    receiver.status = 500
    const { webhook } = await create({ url: receiver.url, secret: SECRET })
    await makeEvents('e', 3)
    const paused = await waitFor(async () => { const w = await get(webhook.id); return w.state === 'paused' ? w : undefined }, { what: 'paused' })
    expect(paused).toMatchObject({ failures: CONFIG.webhookPauseAfter, lastError: 'HTTP 500', lag: 3, lastDeliveredId: webhook.lastDeliveredId })
    expect(paused.pausedAt).toBeTypeOf('number')
    // each attempt was the first event, and none came after the pause
    expect(receiver.deliveries.map(d => d.id)).toEqual(Array(CONFIG.webhookPauseAfter).fill(webhook.lastDeliveredId + 1))
    // backoff: the k-th wait is jittered to between half and all of min(100 ms × 2^(k−1), 800 ms)
    const waits = receiver.arrivedAt.slice(1).map((t, k) => t - (receiver.arrivedAt[k] ?? 0))
    waits.forEach((wait, k) => { expect(wait).toBeGreaterThanOrEqual(Math.min(CONFIG.webhookRetryMinMs * 2 ** k, CONFIG.webhookRetryMaxMs) / 2 - 5) })

    const env = { OCTET_DATA_DIR: daemon.options.dataDir }
    const listed = await runCli(['webhooks', 'list', '--json'], { env })
    expect(listed.code).toBe(0)
    expect((JSON.parse(listed.stdout) as WebhookView[]).find(w => w.id === webhook.id)).toMatchObject({ state: 'paused', lag: 3 })
    const metrics = await fetch(`${daemon.info.apiUrl}/metrics`, { headers: { authorization: `Bearer ${daemon.token}` } })
    const { samples } = parseExposition(await metrics.text())
    expect(samples.find(s => s.name === 'octet_webhooks' && s.labels.state === 'paused')?.value).toBe(1)
    expect(samples.find(s => s.name === 'octet_webhook_lag_events' && s.labels.webhook === webhook.id)?.value).toBe(3)

    receiver.status = 200
    const resumed = await runCli(['webhooks', 'resume', webhook.id, '--json'], { env })
    expect(resumed.code).toBe(0)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ id: webhook.id, state: 'active', failures: 0 })
    await receiver.until('the 3 events', () => receiver.deliveries.filter(d => d.check.ok).length === CONFIG.webhookPauseAfter + 3)
    expect(taken(receiver.deliveries)).toEqual([1, 2, 3].map(i => webhook.lastDeliveredId + i))
    await waitFor(async () => { const w = await get(webhook.id); return w.lag === 0 && w.state === 'active' ? true : undefined }, { what: 'caught up' })

    const removed = await runCli(['webhooks', 'remove', webhook.id], { env })
    expect(removed.code).toBe(0)
    expect((await daemon.api('GET', `/v1/webhooks/${webhook.id}`)).status).toBe(404)
  })

  it('lets a receiver detect forged and replayed deliveries with the documented check', async () => {
    const receiver = await WebhookReceiver.start(SECRET, cleanup)
    await create({ url: receiver.url, secret: SECRET, events: ['contact.updated'] })
    await makeEvents('f', 1)
    await receiver.until('one event', () => receiver.deliveries.length === 1)
    const [genuine] = receiver.deliveries
    if (genuine == null) throw new Error('no delivery')
    const headers = genuine.headers as Record<string, string>
    const seen = new Set<number>()
    expect(verifyDelivery({ secret: SECRET, body: genuine.body, headers, seen })).toEqual({ ok: true, eventId: genuine.id })
    // the same delivery again (a replay, or the one in flight sent twice): taken already
    expect(verifyDelivery({ secret: SECRET, body: genuine.body, headers, seen })).toEqual({ ok: false, reason: 'REPLAYED' })
    // recorded and replayed 6 minutes later, to a receiver that forgot its seen ids
    const later = Number(headers['x-octet-timestamp']) * 1000 + 6 * 60_000
    expect(verifyDelivery({ secret: SECRET, body: genuine.body, headers, now: later })).toEqual({ ok: false, reason: 'STALE' })
    // a forger without the secret: the body changed, or signed with a key of its own
    const forgedBody = genuine.body.replace('f-0', 'pwned')
    expect(verifyDelivery({ secret: SECRET, body: forgedBody, headers })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' })
    const ts = Math.floor(Date.now() / 1000)
    const forgedHeaders = { ...headers, 'x-octet-timestamp': String(ts), 'x-octet-signature': signature('not-the-secret-at-all', ts, forgedBody) }
    expect(verifyDelivery({ secret: SECRET, body: forgedBody, headers: forgedHeaders })).toEqual({ ok: false, reason: 'BAD_SIGNATURE' })
  })

  it('answers 201 with a Location and the secret once; never shows it again', async () => {
    const raw = await daemon.apiFetch('/v1/webhooks', { method: 'POST', headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' }, body: JSON.stringify({ url: 'https://bridge.example/octet' }), signal: AbortSignal.timeout(10_000) })
    const res = { status: raw.status, body: await raw.json() as Created }
    expect(res.status).toBe(201)
    expect(raw.headers.get('location')).toBe(`/v1/webhooks/${res.body.webhook.id}`)
    expect(res.body.secret).toMatch(/^[A-Za-z0-9_-]{43}$/)
    const list = await daemon.api<{ webhooks: WebhookView[] }>('GET', '/v1/webhooks')
    const shown = await daemon.api<{ webhook: WebhookView }>('GET', `/v1/webhooks/${res.body.webhook.id}`)
    expect(JSON.stringify([list.body, shown.body])).not.toContain(res.body.secret)
    expect(shown.body.webhook).toMatchObject({ url: 'https://bridge.example/octet', events: [], state: 'active' })
    expect((await daemon.api('DELETE', `/v1/webhooks/${res.body.webhook.id}`)).status).toBe(204)
    expect((await daemon.api('DELETE', `/v1/webhooks/${res.body.webhook.id}`)).status).toBe(404)

    const env = { OCTET_DATA_DIR: daemon.options.dataDir }
    const added = await runCli(['webhooks', 'add', 'http://127.0.0.1:9/cli', '--events', 'message.received, group.message', '--secret', SECRET, '--json'], { env })
    expect(added.code).toBe(0)
    const cli = JSON.parse(added.stdout) as Created
    expect(cli).toMatchObject({ secret: SECRET, webhook: { url: 'http://127.0.0.1:9/cli', events: ['message.received', 'group.message'], state: 'active' } })
    const refused = await runCli(['webhooks', 'add', 'gopher://127.0.0.1/'], { env })
    expect(refused.code).toBe(1)
    expect(refused.stderr).toMatch(/only http: and https: URLs.*\(BAD_REQUEST\)/)
    expect((await runCli(['webhooks', 'remove', cli.webhook.id], { env })).code).toBe(0)
  })

  it('refuses bad input with 400 and a code, and goes on serving', async () => {
    const before = (await daemon.api<{ webhooks: WebhookView[] }>('GET', '/v1/webhooks')).body.webhooks.length
    const latest = await latestEventId()
    const url = 'http://127.0.0.1:9/hook'
    const cases: Array<[string, unknown, number]> = [
      ['an ftp URL', { url: 'ftp://127.0.0.1/hook' }, 400],
      ['a javascript: URL', { url: 'javascript:alert(1)' }, 400],
      ['a file: URL', { url: 'file:///etc/passwd' }, 400],
      ['no URL at all', { url: 'not a url' }, 400],
      ['credentials in the URL', { url: 'http://user:pass@127.0.0.1/hook' }, 400],
      ['a huge URL', { url: `http://127.0.0.1/${'a'.repeat(5000)}` }, 400],
      ['an unknown event type', { url, events: ['message.nope'] }, 400],
      ['an event type twice', { url, events: ['message.status', 'message.status'] }, 400],
      ['a huge secret', { url, secret: 's'.repeat(10_000) }, 400],
      ['a short secret', { url, secret: 'short' }, 400],
      ['a negative after', { url, after: -1 }, 400],
      ['an after beyond the newest event', { url, after: latest + 1000 }, 400],
      ['an unknown field', { url, retries: 3 }, 400],
      ['no body fields', {}, 400]
    ]
    for (const [what, body, status] of cases) {
      const res = await daemon.api<{ error: { code: string } }>('POST', '/v1/webhooks', body)
      expect({ what, status: res.status, code: res.body.error.code }).toEqual({ what, status, code: 'BAD_REQUEST' })
    }
    const badJson = await daemon.apiFetch('/v1/webhooks', { method: 'POST', headers: { authorization: `Bearer ${daemon.token}`, 'content-type': 'application/json' }, body: '{"url": "http://127.0.0.1/', signal: AbortSignal.timeout(10_000) })
    expect(badJson.status).toBe(400)
    expect(((await badJson.json()) as { error: { code: string } }).error.code).toBe('BAD_REQUEST')
    expect((await daemon.api<{ error: { code: string } }>('GET', '/v1/webhooks/not-an-id')).status).toBe(400)
    expect((await daemon.api<{ error: { code: string } }>('GET', '/v1/webhooks/0123456789abcdef')).body.error.code).toBe('NOT_FOUND')
    expect((await daemon.api('POST', '/v1/webhooks/0123456789abcdef/resume')).status).toBe(404)

    expect((await daemon.api<{ webhooks: WebhookView[] }>('GET', '/v1/webhooks')).body.webhooks.length).toBe(before)
    expect((await daemon.api('GET', '/v1/health')).status).toBe(200)
    expect(daemon.exited).toBe(false)
  })
})
