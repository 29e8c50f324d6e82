import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { MessageRecord } from '../../src/messaging/index.js'
import { Cleanup, DaemonProcess, runCli, waitFor } from '../helpers/daemon.js'
import { parseExposition, total, type Sample } from '../helpers/prometheus.js'
import { rawHttp, request } from '../helpers/raw-http.js'

// Two real daemon processes: A serves its metrics on the API (with the token) and on a
// separate address (--metrics, without); B bootstraps from A and writes to it.
const cleanup = new Cleanup()
let a: DaemonProcess
let b: DaemonProcess

beforeAll(async () => {
  a = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), extraArgs: ['--metrics', '127.0.0.1:0'] }, cleanup)
  b = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), bootstrap: [a.tcpAddress] }, cleanup)
}, 60_000)
afterAll(async () => { await cleanup.run() })

async function scrape (daemon: DaemonProcess, url = daemon.info.apiUrl, token: string | null = daemon.token): Promise<{ status: number, contentType: string, text: string }> {
  const res = await fetch(`${url}/metrics`, { headers: token === null ? {} : { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(10_000) })
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text: await res.text() }
}

async function samples (daemon: DaemonProcess): Promise<Sample[]> {
  const { status, text } = await scrape(daemon)
  expect(status).toBe(200)
  return parseExposition(text).samples
}

describe('GET /metrics', () => {
  it('is the Prometheus text format, with octet\'s, libp2p\'s and the process\'s families', async () => {
    const { status, contentType, text } = await scrape(a)
    expect(status).toBe(200)
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/)
    const { types, samples } = parseExposition(text)
    for (const [name, type] of Object.entries({
      octet_info: 'gauge',
      octet_messages_total: 'counter',
      octet_counter_total: 'counter',
      octet_refusals_total: 'counter',
      octet_outbox_entries: 'gauge',
      octet_mailbox_bytes: 'gauge',
      octet_mailbox_envelopes: 'gauge',
      octet_group_members: 'gauge',
      octet_groups: 'gauge',
      octet_sse_clients: 'gauge',
      octet_sse_lag_events: 'gauge',
      octet_webhooks: 'gauge',
      octet_webhook_lag_events: 'gauge',
      octet_peers: 'gauge',
      octet_relay_service_circuits: 'gauge',
      octet_db_bytes: 'gauge',
      nodejs_eventloop_lag_p99_seconds: 'gauge',
      process_cpu_seconds_total: 'counter',
      libp2p_connection_manager_connections: 'gauge',
      libp2p_protocol_streams_total: 'gauge',
      libp2p_kad_dht_operations_total: 'gauge',
      libp2p_data_transfer_bytes_total: 'counter'
    })) expect(types.get(name), name).toBe(type)
    expect(total(samples, 'octet_db_bytes', { db: 'state' })).toBeGreaterThan(0)
    expect(total(samples, 'octet_db_bytes', { db: 'libp2p' })).toBeGreaterThan(0)
    expect(total(samples, 'nodejs_eventloop_lag_p99_seconds')).toBeGreaterThan(0)
  })

  it('needs the token on the API: 401 in octet\'s error shape without it', async () => {
    const { status, text } = await scrape(a, a.info.apiUrl, null)
    expect(status).toBe(401)
    expect(JSON.parse(text)).toMatchObject({ error: { code: 'UNAUTHORIZED' } })
    expect((await scrape(a, a.info.apiUrl, 'wrong-token')).status).toBe(401)
  })

  it('is served without the token on the --metrics address, which serves nothing else', async () => {
    const url = a.info.metricsUrl
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(url).not.toBe(a.info.apiUrl)
    const open = await scrape(a, url, null)
    expect(open.status).toBe(200)
    expect(parseExposition(open.text).types.get('octet_messages_total')).toBe('counter')
    const other = await fetch(`${url}/v1/identity`)
    expect(other.status).toBe(404)
    expect(await other.json()).toMatchObject({ error: { code: 'NOT_FOUND' } })
    // the Host check holds there too (DNS rebinding)
    const rebound = await rawHttp({ port: Number(new URL(url ?? '').port) }, request('GET', '/metrics', { host: 'evil.example' }))
    expect(rebound.status).toBe(403)
    expect(rebound.body).toMatchObject({ error: { code: 'HOST_NOT_ALLOWED' } })
    // and the API's own /metrics still needs the token
    expect((await scrape(a, a.info.apiUrl, null)).status).toBe(401)
    // a daemon without --metrics has no such address
    expect(b.info.metricsUrl).toBeUndefined()
  })

  it('moves when messages flow: delivered and received messages, the counters, connections, bytes', async () => {
    const before = { a: await samples(a), b: await samples(b) }
    const sent: string[] = []
    for (let i = 0; i < 3; i++) {
      const res = await b.api<{ message: MessageRecord }>('POST', '/v1/messages', { to: a.info.peerId, text: `metrics ${i}` })
      expect(res.status).toBe(202)
      sent.push(res.body.message.id)
    }
    for (const id of sent) {
      await waitFor(async () => (await b.api<{ message: MessageRecord }>('GET', `/v1/messages/${id}`)).body.message.status === 'delivered' ? true : undefined, { what: `message ${id} delivered` })
    }
    const after = await waitFor(async () => {
      const now = { a: await samples(a), b: await samples(b) }
      return total(now.a, 'octet_messages_total', { kind: 'direct', status: 'received' }) >= 3 ? now : undefined
    }, { what: 'A counting what it received' })

    const grew = (name: string, labels: Record<string, string>, who: 'a' | 'b'): number =>
      total(after[who], name, labels) - total(before[who], name, labels)
    expect(grew('octet_messages_total', { kind: 'direct', status: 'queued' }, 'b')).toBe(3)
    expect(grew('octet_messages_total', { kind: 'direct', status: 'delivered' }, 'b')).toBe(3)
    expect(grew('octet_messages_total', { kind: 'direct', status: 'received' }, 'a')).toBe(3)
    // the counters /v1/stats shows, the same figures
    expect(grew('octet_counter_total', { counter: 'dm.delivered' }, 'b')).toBeGreaterThanOrEqual(3)
    const stats = await b.api<{ counters: Record<string, number> }>('GET', '/v1/stats')
    expect(total(after.b, 'octet_counter_total', { counter: 'dm.delivered' })).toBeLessThanOrEqual(stats.body.counters['dm.delivered'] ?? 0)
    // libp2p's: each has a connection to the other, and bytes went over the DM protocol
    for (const who of ['a', 'b'] as const) {
      expect(total(after[who], 'libp2p_connection_manager_connections'), who).toBeGreaterThanOrEqual(1)
      expect(total(after[who], 'octet_peers'), who).toBeGreaterThanOrEqual(1)
    }
    expect(grew('libp2p_data_transfer_bytes_total', { protocol: '/octet/dm/1.0.0 sent' }, 'b')).toBeGreaterThan(0)
    expect(grew('libp2p_data_transfer_bytes_total', { protocol: '/octet/dm/1.0.0 received' }, 'a')).toBeGreaterThan(0)
    expect(total(after.b, 'octet_outbox_entries')).toBe(0)
  }, 60_000)

  it('counts event stream clients', async () => {
    const controller = new AbortController()
    const res = await fetch(`${a.info.apiUrl}/v1/events`, { headers: { authorization: `Bearer ${a.token}` }, signal: controller.signal })
    expect(res.status).toBe(200)
    try {
      await waitFor(async () => total(await samples(a), 'octet_sse_clients') === 1 ? true : undefined, { what: 'one SSE client counted' })
    } finally {
      controller.abort()
    }
    await waitFor(async () => total(await samples(a), 'octet_sse_clients') === 0 ? true : undefined, { what: 'no SSE client left' })
  })
})

describe('--metrics', () => {
  it.each([
    ['no port', 'localhost'],
    ['a URL', 'http://127.0.0.1:9100'],
    ['a port out of range', '127.0.0.1:70000']
  ])('refuses %s with one clear line', async (_, value) => {
    const result = await runCli(['daemon', '--data-dir', await cleanup.tempDir(), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--metrics', value])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toBe(`octet: invalid metrics address "${value}": expected host:port with a port from 0 to 65535, e.g. 127.0.0.1:4781 (port 0 picks a free one)`)
  })

  it('refuses an address in use, naming the flag', async () => {
    const busy = new URL(a.info.apiUrl).port
    const result = await runCli(['daemon', '--data-dir', await cleanup.tempDir(), '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--no-mdns', '--metrics', `127.0.0.1:${busy}`])
    expect(result.code).toBe(1)
    expect(result.stderr.trim()).toMatch(/^octet: metrics address 127\.0\.0\.1:\d+ is already in use; .* --metrics host:port/)
  })
})
