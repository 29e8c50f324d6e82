/**
 * One daemon of a testnet as a child process: its command line, its log file and the tail
 * of its stderr, waiting for its "ready" message, and stopping it. Which daemons run, where,
 * and when they start and stop is the testnet's (index.ts).
 */
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createWriteStream, type WriteStream } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ReadyMessage } from '../daemon.js'
import { OctetError } from '../errors.js'
import { SECOND } from '../units.js'
import type { TestnetNode } from './types.js'

/**
 * How long one daemon may take from spawn to ready. Normally 1–2 s; measured while starting
 * 50 on the 2-core machine with other work on it (load average above 30), the last ones took
 * more than 30 s: loading Node and the module graph is slow on a starved CPU.
 */
export const NODE_START_TIMEOUT = 60 * SECOND
const STOP_TIMEOUT = 10 * SECOND

/**
 * Node.js flags of the daemons a testnet starts. V8 lets a process's young generation grow
 * to two 16 MB semi-spaces; a daemon allocates little that lives long, and with 4 MB
 * semi-spaces each one holds about 20 MB less RSS (10 nodes: median 164 → 143 MB) at no
 * measured CPU cost (`npm run bench -- testnet`). Many daemons share one machine here.
 */
export const DAEMON_NODE_FLAGS = ['--max-semi-space-size=4']

// src/testnet and dist/testnet both sit two levels below the package root
const CLI_ENTRY = fileURLToPath(new URL('../../bin/octet.js', import.meta.url))

/** One launch of a node's daemon; a restart replaces it. */
export interface Running {
  name: string
  index: number
  child: ChildProcess
  log: WriteStream
  stderrTail: string[]
  info?: TestnetNode
  /** stopNode() asked it to exit: not an unexpected exit */
  stoppedOnPurpose: boolean
}

export interface DaemonCommand {
  dataDir: string
  /** the address it listens on */
  ip: string
  /** TCP, WebSockets and API ports; 0: picked by the OS */
  ports: [tcp: number, ws: number, api: number]
  logLevel: string
  /** says it is publicly reachable instead of letting AutoNAT find out */
  publicReach: boolean
  bootstrap: string[]
}

/** The arguments of `node` (process.execPath) that run one testnet daemon. */
export function daemonArgs ({ dataDir, ip, ports: [tcp, ws, api], logLevel, publicReach, bootstrap }: DaemonCommand): string[] {
  return [
    ...DAEMON_NODE_FLAGS,
    CLI_ENTRY, 'daemon',
    '--data-dir', dataDir,
    '--listen', `/ip4/${ip}/tcp/${tcp}`,
    '--listen', `/ip4/${ip}/tcp/${ws}/ws`,
    '--api', `127.0.0.1:${api}`,
    '--no-mdns',
    '--log-level', logLevel,
    // the lab's "internet" uses a private range, which AutoNAT by design never tests: its
    // public hosts say what they are, and then relay for the homes
    ...(publicReach ? ['--reachability', 'public'] : []),
    ...bootstrap.flatMap(b => ['--bootstrap', b])
  ]
}

/** The table entry of a daemon just spawned: its stdout and stderr go to `logFile` (appended), the last lines of stderr are kept for errors. */
export function supervise (name: string, index: number, child: ChildProcess, logFile: string): Running {
  const log = createWriteStream(logFile, { flags: 'a' })
  const entry: Running = { name, index, child, log, stderrTail: [], stoppedOnPurpose: false }
  child.stdout?.pipe(log, { end: false })
  child.stderr?.on('data', (chunk: Buffer) => {
    log.write(chunk)
    entry.stderrTail.push(...chunk.toString('utf8').split('\n').filter(l => l.trim() !== ''))
    entry.stderrTail.splice(0, Math.max(0, entry.stderrTail.length - 5))
  })
  return entry
}

/** The daemon's "ready" message; TESTNET_NODE_FAILED when it exits first, takes over NODE_START_TIMEOUT, or `signal` aborts. */
export async function waitForReady ({ name, child, stderrTail }: Running, logFile: string, signal?: AbortSignal): Promise<ReadyMessage> {
  return await new Promise<ReadyMessage>((resolveReady, reject) => {
    const timer = setTimeout(() => { fail(new OctetError('TESTNET_NODE_FAILED', `${name} did not start within ${NODE_START_TIMEOUT / SECOND} s; see ${logFile}`)) }, NODE_START_TIMEOUT)
    const onAbort = (): void => { fail(new OctetError('TESTNET_NODE_FAILED', `${name}: start aborted`)) }
    const onMessage = (message: unknown): void => {
      if ((message as ReadyMessage | undefined)?.type === 'ready') { cleanup(); resolveReady(message as ReadyMessage) }
    }
    const onExit = (code: number | null): void => {
      // stderr may still hold the daemon's last words: let it drain first
      setImmediate(() => {
        const why = stderrTail.at(-1) ?? `exited with code ${code}`
        fail(new OctetError('TESTNET_NODE_FAILED', `${name} failed to start: ${why.replace(/^octet: /, '')}`))
      })
    }
    const cleanup = (): void => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      child.off('message', onMessage)
      child.off('exit', onExit)
    }
    const fail = (err: Error): void => { cleanup(); reject(err) }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.on('message', onMessage)
    child.once('exit', onExit)
  })
}

export function isAlive (child: ChildProcess): boolean {
  return child.exitCode == null && child.signalCode == null
}

/** SIGTERM, SIGKILL after STOP_TIMEOUT; resolves once the daemon exited and its log is closed. */
export async function terminate ({ child, log }: Running): Promise<void> {
  if (isAlive(child)) {
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT)
    await exited
    clearTimeout(timer)
  }
  if (!log.writableEnded) log.end()
}
