// Issue #3 benchmark: the full messaging path between two local nodes (Messenger.send →
// outbox on disk → Signal encrypt → pipelined DM stream → decrypt → store → ack →
// `delivered`), against raw libp2p on the same two nodes in the same process: 1 KiB
// length-prefixed frames pipelined on one stream, each answered by a small ack frame.
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { loadDaemonConfig } from '../../dist/config.js'
import { Daemon } from '../../dist/daemon.js'
import { createLogger } from '../../dist/logger.js'
import { tempDir } from './lib.js'

export const name = 'messaging'
export const description = '1 KiB texts between two local nodes: full path vs raw pipelined libp2p frames'

const TEXT = 'x'.repeat(1024)
const THROUGHPUT_MESSAGES = 2000
const LATENCY_SAMPLES = 300
const SEND_CONCURRENCY = 64
const RAW_PROTOCOL = '/octet-bench/raw/1.0.0'

function percentile (values, p) {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(p / 100 * sorted.length))]
}

async function startDaemon (dataDir, bootstrap) {
  const config = loadDaemonConfig({ dataDir, listen: ['/ip4/127.0.0.1/tcp/0'], api: '127.0.0.1:0', mdns: false, bootstrap, logLevel: 'silent' }, {})
  return await Daemon.start(config, createLogger('silent'))
}

/** Resolves with each message id once the sender's event log says it was delivered. */
function deliveries (daemon) {
  const waiting = new Map()
  const done = new Set()
  const unsubscribe = daemon.messenger.events.subscribe(event => {
    if (event.type !== 'message.status' || event.data.status !== 'delivered') return
    const id = event.data.id
    done.add(id)
    waiting.get(id)?.()
  })
  return {
    delivered: id => done.has(id) ? Promise.resolve() : new Promise(resolve => waiting.set(id, resolve)),
    close: unsubscribe
  }
}

async function rawBaseline (a, c) {
  await c.node.libp2p.handle(RAW_PROTOCOL, async stream => {
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
    try {
      while (true) {
        const frame = await lp.read()
        await lp.write(frame.subarray(0, 16))
      }
    } catch {
      stream.abort(new Error('done'))
    }
  })
  const stream = await a.node.libp2p.dialProtocol(peerIdFromString(c.node.peerId), RAW_PROTOCOL)
  const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
  const frame = new TextEncoder().encode(TEXT)
  // latency: one frame, wait for its answer
  const rtts = []
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t0 = performance.now()
    await lp.write(frame)
    await lp.read()
    rtts.push(performance.now() - t0)
  }
  // throughput: all frames pipelined, then every answer
  const t0 = performance.now()
  const reading = (async () => { for (let i = 0; i < THROUGHPUT_MESSAGES; i++) await lp.read() })()
  for (let i = 0; i < THROUGHPUT_MESSAGES; i++) await lp.write(frame)
  await reading
  const seconds = (performance.now() - t0) / 1000
  stream.abort(new Error('done'))
  await c.node.libp2p.unhandle(RAW_PROTOCOL)
  return { perSecond: THROUGHPUT_MESSAGES / seconds, p50: percentile(rtts, 50), p99: percentile(rtts, 99) }
}

async function octetPath (a, c) {
  const tracker = deliveries(a)
  const to = c.node.peerId
  // warm-up: session set-up, first DHT lookup, JIT
  for (let i = 0; i < 50; i++) await tracker.delivered((await a.messenger.send({ to, text: TEXT })).message.id)

  const latencies = []
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const t0 = performance.now()
    const { message } = await a.messenger.send({ to, text: TEXT })
    await tracker.delivered(message.id)
    latencies.push(performance.now() - t0)
  }

  // throughput: like a bridge with many requests in flight (as the raw baseline pipelines)
  const t0 = performance.now()
  const ids = []
  let next = 0
  await Promise.all(Array.from({ length: SEND_CONCURRENCY }, async () => {
    while (next < THROUGHPUT_MESSAGES) {
      next++
      ids.push((await a.messenger.send({ to, text: TEXT })).message.id)
    }
  }))
  await Promise.all(ids.map(id => tracker.delivered(id)))
  const seconds = (performance.now() - t0) / 1000
  tracker.close()
  return { perSecond: THROUGHPUT_MESSAGES / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) }
}

export async function run ({ log }) {
  const dirA = await tempDir('octet-bench-a-')
  const dirC = await tempDir('octet-bench-c-')
  const a = await startDaemon(dirA.dir, [])
  const c = await startDaemon(dirC.dir, [a.info().addresses[0]])
  try {
    log('raw baseline …')
    const raw = await rawBaseline(a, c)
    log('octet full path …')
    const octet = await octetPath(a, c)
    const ratio = octet.perSecond / raw.perSecond
    const latencyRatio = octet.p50 / raw.p50
    const rows = [
      { metric: 'octet messages/s (send → delivered)', value: Math.round(octet.perSecond), unit: 'msg/s', note: `${THROUGHPUT_MESSAGES} × 1 KiB, ${SEND_CONCURRENCY} sends in flight` },
      { metric: 'raw libp2p frames/s (pipelined, acked)', value: Math.round(raw.perSecond), unit: 'msg/s', note: 'same nodes, same process' },
      { metric: 'throughput ratio octet / raw', value: Number(ratio.toFixed(2)), unit: '×' },
      { metric: 'octet latency p50 (send → delivered)', value: Number(octet.p50.toFixed(2)), unit: 'ms', note: `${LATENCY_SAMPLES} sequential sends` },
      { metric: 'octet latency p99', value: Number(octet.p99.toFixed(2)), unit: 'ms' },
      { metric: 'raw round trip p50', value: Number(raw.p50.toFixed(2)), unit: 'ms' },
      { metric: 'raw round trip p99', value: Number(raw.p99.toFixed(2)), unit: 'ms' },
      { metric: 'latency ratio p50 octet / raw', value: Number(latencyRatio.toFixed(2)), unit: '×' }
    ]
    return {
      rows,
      targets: [
        { target: 'throughput ≥ 50% of raw pipelined', value: `${Math.round(ratio * 100)}%`, pass: ratio >= 0.5 },
        { target: 'p50 latency ≤ 3 × raw round trip', value: `${latencyRatio.toFixed(1)}×`, pass: latencyRatio <= 3 }
      ]
    }
  } finally {
    await c.stop()
    await a.stop()
    await dirA.remove()
    await dirC.remove()
  }
}
