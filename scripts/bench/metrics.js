// Issue #13 benchmark: what a Prometheus scrape of GET /metrics costs a daemon that has carried
// some traffic, beside GET /v1/stats (the JSON counters) on the same daemon, the same HTTP
// client and the same run; and the registry alone (no HTTP), to show where the time goes.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { inProcessDaemon, median, percentile, tempDir } from './lib.js'

export const name = 'metrics'
export const description = 'GET /metrics scrape time on a daemon with traffic, beside GET /v1/stats'

/** B sends A `messages` texts, `concurrency` at once; A has `sseClients` event streams open; then `samples` of each request after `warmUp`. */
const RUN = { messages: 500, concurrency: 32, sseClients: 10, samples: 300, warmUp: 20 }

/** ms per request of `path`, one after another, with the response size. */
async function timeRequests (url, token, path, count) {
  const times = []
  let bytes = 0
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    const res = await fetch(url + path, { headers: { authorization: `Bearer ${token}` } })
    const text = await res.text()
    times.push(performance.now() - t0)
    if (res.status !== 200) throw new Error(`${path} answered ${res.status}: ${text.slice(0, 200)}`)
    bytes = Buffer.byteLength(text)
  }
  return { times, bytes }
}

export async function run ({ log }) {
  const dirs = [await tempDir('octet-bench-metrics-'), await tempDir('octet-bench-metrics-')]
  const a = await inProcessDaemon(dirs[0].dir, [])
  const b = await inProcessDaemon(dirs[1].dir, [a.info().listenAddresses[0]])
  const controllers = []
  try {
    const { apiUrl } = a.info()
    const token = (await readFile(join(dirs[0].dir, 'api.token'), 'utf8')).trim()
    // traffic: B writes to A; A answers receipts, counts, stores
    log(`sending ${RUN.messages} messages B → A`)
    const delivered = new Set()
    const allDelivered = new Promise(resolve => {
      const off = b.messenger.events.subscribe(event => {
        if (event.type === 'message.status' && event.data.status === 'delivered') delivered.add(event.data.id)
        if (delivered.size >= RUN.messages) { off(); resolve() }
      })
    })
    let next = 0
    await Promise.all(Array.from({ length: RUN.concurrency }, async () => {
      while (next < RUN.messages) {
        next++
        await b.messenger.send({ to: a.node.peerId, text: `bench ${next} ${'x'.repeat(200)}` })
      }
    }))
    await allDelivered
    // a few event stream clients on A, so the SSE gauges have something to walk
    for (let i = 0; i < RUN.sseClients; i++) {
      const controller = new AbortController()
      controllers.push(controller)
      const res = await fetch(`${apiUrl}/v1/events`, { headers: { authorization: `Bearer ${token}` }, signal: controller.signal })
      res.body?.cancel().catch(() => {})
    }

    // the first scrape walks the database directories (cached for 30 s afterwards)
    const cold = await timeRequests(apiUrl, token, '/metrics', 1)
    await timeRequests(apiUrl, token, '/metrics', RUN.warmUp)
    await timeRequests(apiUrl, token, '/v1/stats', RUN.warmUp)
    // interleaved in blocks so that a load change on the machine hits both alike
    const scrapes = []
    const stats = []
    let scrapeBytes = 0
    let statsBytes = 0
    for (let i = 0; i < RUN.samples / 10; i++) {
      const s = await timeRequests(apiUrl, token, '/metrics', 10)
      scrapes.push(...s.times)
      scrapeBytes = s.bytes
      const t = await timeRequests(apiUrl, token, '/v1/stats', 10)
      stats.push(...t.times)
      statsBytes = t.bytes
    }
    const registry = []
    for (let i = 0; i < RUN.samples / 3; i++) {
      const t0 = performance.now()
      await a.metrics.scrape()
      registry.push(performance.now() - t0)
    }
    const { text } = await a.metrics.scrape()
    const families = text.split('\n').filter(line => line.startsWith('# TYPE ')).length
    const series = text.split('\n').filter(line => line !== '' && !line.startsWith('#')).length
    const ms = v => Number(v.toFixed(2))
    return {
      rows: [
        { metric: 'GET /metrics p50', value: ms(median(scrapes)), unit: 'ms', note: `${RUN.samples} scrapes over HTTP with the token, after ${RUN.messages} messages and with ${RUN.sseClients} SSE clients` },
        { metric: 'GET /metrics p99', value: ms(percentile(scrapes, 99)), unit: 'ms' },
        { metric: 'GET /v1/stats p50 (baseline)', value: ms(median(stats)), unit: 'ms', note: 'same daemon, client and run, interleaved with the scrapes' },
        { metric: 'GET /v1/stats p99 (baseline)', value: ms(percentile(stats, 99)), unit: 'ms' },
        { metric: 'scrape without HTTP p50', value: ms(median(registry)), unit: 'ms', note: 'OctetMetrics.scrape(): collecting every family and writing the text' },
        { metric: 'first scrape (walks the DB directories)', value: ms(cold.times[0]), unit: 'ms' },
        { metric: 'scrape size', value: scrapeBytes, unit: 'bytes', note: `${families} families, ${series} series; /v1/stats is ${statsBytes} bytes` }
      ]
    }
  } finally {
    for (const c of controllers) c.abort()
    await b.stop()
    await a.stop()
    for (const d of dirs) await d.remove()
  }
}
