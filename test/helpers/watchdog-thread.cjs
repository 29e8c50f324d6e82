/*
 * The watchdog's thread (see watchdog.ts), plain CommonJS because it runs
 * outside vitest's transform. When the main thread's beat is older than
 * stuckMs, it pauses the main thread through the inspector a few times to read
 * its stack, writes the test's name and those stacks to stderr with a
 * synchronous write (the main thread cannot print), and kills the process.
 */
'use strict'
const { workerData, parentPort } = require('node:worker_threads')
const { writeSync } = require('node:fs')
const inspector = require('node:inspector')

const beat = new Float64Array(workerData.beat)
let test = '(before the first test)'
parentPort.on('message', name => { test = name })

const SAMPLES = 5

function frame (f) {
  return `    at ${f.functionName || '<anonymous>'} (${f.url}:${f.location.lineNumber + 1}:${f.location.columnNumber + 1})`
}

/** Calls done with the distinct stacks of a few pauses, resumed between: one pause may land in the microtask runner only. */
function stacksOfMainThread (done) {
  const session = new inspector.Session()
  try {
    session.connectToMainThread()
  } catch (err) {
    done(`    (no stack: ${err.message})`)
    return
  }
  const stacks = new Set()
  let samples = 0
  const finish = () => {
    clearTimeout(timer)
    done([...stacks].join('\n    --\n') || '    (no stack: the main thread did not pause)')
  }
  const timer = setTimeout(finish, 5000)
  session.on('Debugger.paused', ({ params }) => {
    const lines = params.callFrames.slice(0, 20).map(frame)
    for (let async = params.asyncStackTrace; async != null && lines.length < 40; async = async.parent) {
      const frames = async.callFrames.filter(f => !f.url.startsWith('node:internal/'))
      if (frames.length > 0) lines.push(`    (async ${async.description ?? ''})`, ...frames.slice(0, 10).map(f => frame({ ...f, location: f })))
    }
    stacks.add(lines.join('\n'))
    session.post('Debugger.resume', () => {
      if (++samples === SAMPLES) finish()
      else setTimeout(() => session.post('Debugger.pause'), 20)
    })
  })
  // async stacks are recorded only from now on: a stuck loop of promises makes new ones at once
  session.post('Debugger.enable', () => session.post('Debugger.setAsyncCallStackDepth', { maxDepth: 16 }, () => {
    setTimeout(() => session.post('Debugger.pause'), 200)
  }))
}

const check = setInterval(() => {
  const still = Date.now() - beat[0]
  if (still < workerData.stuckMs) return
  clearInterval(check)
  stacksOfMainThread(stacks => {
    writeSync(2, `\n[watchdog] the event loop of test worker ${process.pid} has not turned for ${Math.round(still / 1000)} s, in: ${test}\n${stacks}\n[watchdog] ending the worker so that the run goes on\n`)
    process.kill(process.pid, 'SIGKILL')
  })
}, 1000)
