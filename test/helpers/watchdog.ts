/*
 * A setup file for every test worker: a watchdog thread that notices when the
 * worker's event loop stops turning, prints where it is stuck, and ends the
 * worker.
 *
 * Why: vitest's test and hook timeouts are timers in the worker's own event
 * loop. A worker stuck in synchronous code (or in a loop of microtasks, which
 * starves timers just the same) never fires them, never reports, and the run
 * waits for it until CI's own limit kills everything, with no word of which
 * test it was. With this thread such a worker is named, its stack printed and
 * the worker ended after STUCK_MS; vitest reports the error and the run goes on.
 */
import { fileURLToPath } from 'node:url'
import { Worker } from 'node:worker_threads'
import { beforeEach } from 'vitest'

/** How long the event loop may stand still before the worker counts as stuck: far longer than any synchronous step of a test. */
const STUCK_MS = Number(process.env.OCTET_TEST_STUCK_MS ?? 90_000)
const BEAT_MS = 1_000

// [0]: the time of the last beat, in ms since the epoch
const beat = new Float64Array(new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT))
beat[0] = Date.now()
setInterval(() => { beat[0] = Date.now() }, BEAT_MS).unref()

const watchdog = new Worker(fileURLToPath(new URL('./watchdog-thread.cjs', import.meta.url)), {
  workerData: { beat: beat.buffer, stuckMs: STUCK_MS }
})
watchdog.unref()

beforeEach(ctx => {
  watchdog.postMessage(ctx.task.fullName)
})
