// Issue #3 benchmark: the full messaging path between two local nodes (Messenger.send →
// outbox on disk → Signal encrypt → pipelined DM stream → decrypt → store → ack →
// `delivered`), against raw libp2p on the same two nodes in the same process: 1 KiB
// length-prefixed frames pipelined on one stream, each answered by a small ack frame.
import { lpStream } from '@libp2p/utils'
import { peerIdFromString } from '@libp2p/peer-id'
import { pathFloor } from './floor.js'
import { inProcessDaemon, median, percentile, tempDir } from './lib.js'

export const name = 'messaging'
export const description = '1 KiB texts between two local nodes: full path vs raw pipelined libp2p frames'

const TEXT = 'x'.repeat(1024)
const THROUGHPUT_MESSAGES = 2000
const LATENCY_SAMPLES = 300
const ROUNDS = 3
const WARM_UP_MESSAGES = 300
const SEND_CONCURRENCY = 64
const RAW_PROTOCOL = '/octet-bench/raw/1.0.0'

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

/** Raw libp2p on the same two nodes: one stream, 1 KiB length-prefixed frames, each answered by a 16-byte ack frame. */
async function rawPath (a, c) {
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
  return {
    /** one frame, then wait for its answer */
    async roundTrip () {
      const t0 = performance.now()
      await lp.write(frame)
      await lp.read()
      return performance.now() - t0
    },
    /** `count` frames pipelined, then every answer: frames per second */
    async throughput (count) {
      const t0 = performance.now()
      const reading = (async () => { for (let i = 0; i < count; i++) await lp.read() })()
      for (let i = 0; i < count; i++) await lp.write(frame)
      await reading
      return count / ((performance.now() - t0) / 1000)
    },
    async close () {
      stream.abort(new Error('done'))
      await c.node.libp2p.unhandle(RAW_PROTOCOL)
    }
  }
}

/** The full octet path on the same two nodes: Messenger.send → … → `delivered` at the sender. */
function octetPath (a, c) {
  const tracker = deliveries(a)
  const to = c.node.peerId
  return {
    async roundTrip () {
      const t0 = performance.now()
      const { message } = await a.messenger.send({ to, text: TEXT })
      await tracker.delivered(message.id)
      return performance.now() - t0
    },
    /** like a bridge with many requests in flight (as the raw path pipelines): messages per second */
    async throughput (count) {
      const t0 = performance.now()
      const ids = []
      let next = 0
      await Promise.all(Array.from({ length: SEND_CONCURRENCY }, async () => {
        while (next < count) {
          next++
          ids.push((await a.messenger.send({ to, text: TEXT })).message.id)
        }
      }))
      await Promise.all(ids.map(id => tracker.delivered(id)))
      return count / ((performance.now() - t0) / 1000)
    },
    async close () { tracker.close() }
  }
}

/**
 * Both paths in turns (raw, octet, raw, octet …) after the same warm-up, so
 * that a noisy neighbour or a JIT pause hits both alike; each figure is the
 * median of its rounds.
 */
async function measure (paths, log) {
  const results = paths.map(() => ({ perSecond: [], latencies: [] }))
  for (const path of paths) {
    for (let i = 0; i < WARM_UP_MESSAGES; i++) await path.roundTrip()
    await path.throughput(WARM_UP_MESSAGES)
  }
  for (let round = 0; round < ROUNDS; round++) {
    log(`round ${round + 1} of ${ROUNDS} …`)
    for (const [i, path] of paths.entries()) {
      for (let k = 0; k < LATENCY_SAMPLES / ROUNDS; k++) results[i].latencies.push(await path.roundTrip())
      results[i].perSecond.push(await path.throughput(THROUGHPUT_MESSAGES))
    }
  }
  return results.map(r => ({ perSecond: median(r.perSecond), rounds: r.perSecond, p50: percentile(r.latencies, 50), p99: percentile(r.latencies, 99) }))
}

export async function run ({ log }) {
  const dirA = await tempDir('octet-bench-a-')
  const dirC = await tempDir('octet-bench-c-')
  const a = await inProcessDaemon(dirA.dir, [])
  const c = await inProcessDaemon(dirC.dir, [a.info().addresses[0]])
  try {
    const paths = [await rawPath(a, c), octetPath(a, c)]
    const [raw, octet] = await measure(paths, log)
    for (const path of paths) await path.close()
    const ratio = octet.perSecond / raw.perSecond
    const latencyRatio = octet.p50 / raw.p50
    log('the floor of the path …')
    const floor = await pathFloor()
    // encrypt + decrypt, one round trip (envelope out, ack back), four durable writes (outbox
    // before 202, session state before the envelope leaves, receiver's store before its ack,
    // the sender's `delivered` before its event)
    const floorMs = floor.crypto + raw.p50 + 4 * floor.write
    const rows = [
      { metric: 'octet messages/s (send → delivered)', value: Math.round(octet.perSecond), unit: 'msg/s', note: `median of ${ROUNDS} rounds of ${THROUGHPUT_MESSAGES} × 1 KiB, ${SEND_CONCURRENCY} sends in flight: ${octet.rounds.map(Math.round).join(', ')}` },
      { metric: 'raw libp2p frames/s (pipelined, acked)', value: Math.round(raw.perSecond), unit: 'msg/s', note: `same nodes, same process, rounds in turn with octet's: ${raw.rounds.map(Math.round).join(', ')}` },
      { metric: 'throughput ratio octet / raw', value: Number(ratio.toFixed(2)), unit: '×' },
      { metric: 'octet latency p50 (send → delivered)', value: Number(octet.p50.toFixed(2)), unit: 'ms', note: `${LATENCY_SAMPLES} sequential sends` },
      { metric: 'octet latency p99', value: Number(octet.p99.toFixed(2)), unit: 'ms' },
      { metric: 'raw round trip p50', value: Number(raw.p50.toFixed(2)), unit: 'ms' },
      { metric: 'raw round trip p99', value: Number(raw.p99.toFixed(2)), unit: 'ms' },
      { metric: 'latency ratio p50 octet / raw', value: Number(latencyRatio.toFixed(2)), unit: '×' },
      { metric: 'floor: libsignal encrypt + decrypt, 1 KiB', value: Number(floor.crypto.toFixed(3)), unit: 'ms', note: 'in-memory stores, no octet code' },
      { metric: 'floor: one awaited LevelDB batch', value: Number(floor.write.toFixed(3)), unit: 'ms', note: 'a 1 KiB record and a small one' },
      { metric: 'floor of the path (crypto + raw round trip + 4 writes)', value: Number(floorMs.toFixed(2)), unit: 'ms', note: `3 × raw round trip = ${(3 * raw.p50).toFixed(2)} ms` }
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
