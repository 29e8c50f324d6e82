// Issue #13 benchmark: what a bridge gets from its daemon. Events per second pushed to one
// webhook and streamed to 100 SSE clients at once (a burst of committed events), and the delay
// a webhook adds from a message's `message.received` commit to the receiver's receipt, beside
// the same delay for SSE in the same run. Both daemons, the webhook receiver and the SSE
// clients share this one process (and its event loop): the figures compare the two ways out
// under the same load, they are not the floor of either.
import { once } from 'node:events'
import { createServer } from 'node:http'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { inProcessDaemon, MB, median, percentile, tempDir } from './lib.js'

export const name = 'bridge'
export const description = 'events pushed to a webhook vs streamed to 100 SSE clients: events/s, and added delay after message.received'

const SSE_CLIENTS = 100
/** events committed as fast as the daemon takes them, per round */
const BURST_EVENTS = 2000
const BURST_CONCURRENCY = 64
const ROUNDS = 3
/** messages sent one at a time, each waited for at the webhook and at every SSE client */
const LATENCY_SAMPLES = 300
const WARM_UP = 30
/** the most webhooks a daemon keeps (MAX_WEBHOOKS), each sent every event of a burst */
const MANY_WEBHOOKS = 100
const MANY_EVENTS = 500

/** Heap in use after a full collection, when the process allows one (--expose-gc). */
function heapAfterGc () {
  if (typeof globalThis.gc !== 'function') return undefined
  globalThis.gc()
  return process.memoryUsage().heapUsed
}

/** A webhook receiver: calls `onEvent(id, at)` for each delivery, answers 204. */
async function receiver (onEvent) {
  const server = createServer((req, res) => {
    const chunks = []
    req.on('data', c => chunks.push(c))
    req.on('end', () => {
      onEvent(JSON.parse(Buffer.concat(chunks).toString('utf8')).id, performance.now())
      res.writeHead(204).end()
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { url: `http://127.0.0.1:${server.address().port}/hook`, close: () => { server.closeAllConnections(); server.close() } }
}

/** An SSE client on fetch that calls `onEvent(id, at)` for each event; resolves once connected. */
async function sseClient (url, token, onEvent, signal) {
  const res = await fetch(`${url}/v1/events`, { headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' }, signal })
  if (res.status !== 200) throw new Error(`/v1/events answered ${res.status}`)
  const reader = res.body.getReader()
  const decoder = new TextDecoder()
  void (async () => {
    let buffer = ''
    try {
      while (true) {
        const { value, done } = await reader.read()
        if (done) return
        buffer += decoder.decode(value, { stream: true })
        let end
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          const id = /^id: (\d+)$/m.exec(block)
          if (id != null) onEvent(Number(id[1]), performance.now())
        }
      }
    } catch {
      // aborted at the end of the run
    }
  })()
}

/** Resolves once `count()` reaches `target`: checked at each receipt (`wake`). */
function counter () {
  let waiting
  return {
    wake: () => waiting?.(),
    async until (check) {
      while (!check()) await new Promise(resolve => { waiting = resolve })
    }
  }
}

export async function run ({ log }) {
  const dirs = [await tempDir('octet-bench-bridge-'), await tempDir('octet-bench-bridge-')]
  const sender = await inProcessDaemon(dirs[0].dir, [])
  const bridge = await inProcessDaemon(dirs[1].dir, [sender.info().listenAddresses[0]])
  const controller = new AbortController()
  let hook
  let many
  try {
    const { apiUrl } = bridge.info()
    const token = (await readFile(join(dirs[1].dir, 'api.token'), 'utf8')).trim()
    // when each event landed (published once on disk), and when each way out got it
    const committed = new Map()
    const received = []
    const off = bridge.messenger.events.subscribe(event => {
      committed.set(event.id, performance.now())
      if (event.type === 'message.received') received.push(event.id)
    })
    const webhookAt = new Map()
    const sseAt = new Map()
    const sseCount = new Map()
    const progress = counter()
    hook = await receiver((id, at) => { if (!webhookAt.has(id)) webhookAt.set(id, at); progress.wake() })
    log(`${SSE_CLIENTS} SSE clients and one webhook on the bridge's daemon`)
    for (let i = 0; i < SSE_CLIENTS; i++) {
      await sseClient(apiUrl, token, (id, at) => {
        if (!sseAt.has(id)) sseAt.set(id, [])
        sseAt.get(id).push(at)
        sseCount.set(id, (sseCount.get(id) ?? 0) + 1)
        progress.wake()
      }, controller.signal)
    }
    await bridge.webhooks.create({ url: hook.url })

    // throughput: a burst of contact.updated events (one commit each, many at once), taken by both ways out at once
    const peers = await Promise.all(Array.from({ length: BURST_CONCURRENCY }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()))
    const webhookRates = []
    const sseRates = []
    const commitRates = []
    for (let round = 0; round < ROUNDS; round++) {
      log(`burst ${round + 1} of ${ROUNDS}: ${BURST_EVENTS} events`)
      const from = bridge.messenger.events.latestId + 1
      const last = from + BURST_EVENTS - 1
      const t0 = performance.now()
      let next = 0
      await Promise.all(peers.map(async peer => {
        while (next < BURST_EVENTS) await bridge.messenger.addContact(peer, `n${next++}`)
      }))
      commitRates.push(BURST_EVENTS / ((performance.now() - t0) / 1000))
      let webhookDone
      let sseDone
      await progress.until(() => {
        if (webhookDone == null && webhookAt.has(last)) webhookDone = performance.now()
        if (sseDone == null && (sseCount.get(last) ?? 0) >= SSE_CLIENTS) sseDone = performance.now()
        return webhookDone != null && sseDone != null
      })
      webhookRates.push(BURST_EVENTS / ((webhookDone - t0) / 1000))
      sseRates.push(BURST_EVENTS / ((sseDone - t0) / 1000))
    }

    // latency: one message at a time from the sender; its message.received commit on the
    // bridge's daemon to the receipt at the webhook and at each SSE client
    const webhookDelays = []
    const sseDelays = []
    const to = bridge.node.peerId
    // a contact: its messages land as messages, not as contact requests
    await bridge.messenger.addContact(sender.node.peerId, 'sender')
    for (let i = 0; i < WARM_UP + LATENCY_SAMPLES; i++) {
      if (i === WARM_UP) log(`${LATENCY_SAMPLES} messages one at a time`)
      const seen = received.length
      await sender.messenger.send({ to, text: `bridge ${i}` })
      let id
      await progress.until(() => {
        id ??= received[seen]
        return id != null && webhookAt.has(id) && (sseCount.get(id) ?? 0) >= SSE_CLIENTS
      })
      if (i < WARM_UP) continue
      const at = committed.get(id)
      webhookDelays.push(webhookAt.get(id) - at)
      for (const t of sseAt.get(id)) sseDelays.push(t - at)
    }
    off()
    const [webhook] = bridge.webhooks.list()

    // the most webhooks a daemon keeps, each taking every event of a burst: POSTs per second
    // over all of them, and the heap that stays once they are done (what deliveries hold on to)
    log(`${MANY_WEBHOOKS} webhooks, ${MANY_EVENTS} events each`)
    controller.abort() // the SSE clients are done
    let posts = 0
    many = await receiver(() => { posts++; progress.wake() })
    for (const w of bridge.webhooks.list()) await bridge.webhooks.remove(w.id)
    for (let i = 0; i < MANY_WEBHOOKS; i++) await bridge.webhooks.create({ url: many.url })
    const heapBefore = heapAfterGc()
    const m0 = performance.now()
    let made = 0
    await Promise.all(peers.map(async peer => {
      while (made < MANY_EVENTS) await bridge.messenger.addContact(peer, `m${made++}`)
    }))
    await progress.until(() => posts >= MANY_WEBHOOKS * MANY_EVENTS)
    const manyRate = MANY_WEBHOOKS * MANY_EVENTS / ((performance.now() - m0) / 1000)
    const heapAfter = heapAfterGc()
    const f = v => Number(v.toFixed(2))
    return {
      rows: [
        { metric: 'events committed/s (the baseline: the burst itself)', value: Math.round(median(commitRates)), unit: 'ev/s', note: `${commitRates.map(Math.round).join(', ')}; neither way out can go faster` },
        { metric: 'webhook events/s (one receiver)', value: Math.round(median(webhookRates)), unit: 'ev/s', note: `median of ${ROUNDS} bursts of ${BURST_EVENTS} commits, ${BURST_CONCURRENCY} at once: ${webhookRates.map(Math.round).join(', ')}; one POST in flight, its cursor written behind` },
        { metric: `SSE events/s (each of ${SSE_CLIENTS} clients)`, value: Math.round(median(sseRates)), unit: 'ev/s', note: `the same bursts, until the last client had the last event: ${sseRates.map(Math.round).join(', ')}` },
        { metric: 'webhook added delay p50 (message.received commit → receiver)', value: f(percentile(webhookDelays, 50)), unit: 'ms', note: `${LATENCY_SAMPLES} messages one at a time, ${SSE_CLIENTS} SSE clients connected` },
        { metric: 'webhook added delay p99', value: f(percentile(webhookDelays, 99)), unit: 'ms' },
        { metric: 'SSE added delay p50 (message.received commit → client)', value: f(percentile(sseDelays, 50)), unit: 'ms', note: `same messages, every client's receipt (${sseDelays.length})` },
        { metric: 'SSE added delay p99', value: f(percentile(sseDelays, 99)), unit: 'ms' },
        { metric: 'webhook failures during the run', value: webhook?.failures ?? -1, unit: '', note: `state ${webhook?.state}` },
        { metric: `POSTs/s over ${MANY_WEBHOOKS} webhooks at once`, value: Math.round(manyRate), unit: 'POST/s', note: `${MANY_EVENTS} events each; the single webhook above for comparison` },
        { metric: `heap kept after ${MANY_WEBHOOKS * MANY_EVENTS} POSTs`, value: heapAfter == null ? '-' : ((heapAfter - heapBefore) / MB).toFixed(1), unit: 'MB', note: heapAfter == null ? 'run node with --expose-gc to measure' : `after a full GC, against before the burst (${(heapBefore / MB).toFixed(0)} MB)` }
      ]
    }
  } finally {
    controller.abort()
    hook?.close()
    many?.close()
    await bridge.stop()
    await sender.stop()
    for (const d of dirs) await d.remove()
  }
}
