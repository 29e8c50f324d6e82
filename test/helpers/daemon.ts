import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { ReadyMessage } from '../../src/daemon.js'
import { socketFetch, urlFetch, type ApiFetch } from '../../src/api-socket.js'
import type { NetHost, Topology } from '../../src/testnet/netns.js'

export const ROOT = resolve(import.meta.dirname, '../..')
export const CLI = join(ROOT, 'bin', 'octet.js')

/** Temp directories removed by `cleanup()`; tests register it in afterEach/afterAll. */
export class Cleanup {
  private readonly tasks: Array<() => Promise<void>> = []

  add (task: () => Promise<void>): void {
    this.tasks.push(task)
  }

  async tempDir (prefix = 'octet-test-'): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), prefix))
    this.add(async () => { await rm(dir, { recursive: true, force: true }) })
    return dir
  }

  async run (): Promise<void> {
    const tasks = this.tasks.splice(0).reverse()
    for (const task of tasks) await task()
  }
}

export interface CliResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs the real CLI as a process (on this Node, or `node`; as another user with uid/gid) and collects its output. */
export async function runCli (args: string[], options: { env?: NodeJS.ProcessEnv, timeoutMs?: number, uid?: number, gid?: number, node?: string } = {}): Promise<CliResult> {
  const child = spawn(options.node ?? process.execPath, [CLI, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
    timeout: options.timeoutMs ?? 30_000,
    ...(options.uid != null ? { uid: options.uid } : {}),
    ...(options.gid != null ? { gid: options.gid } : {})
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (c: Buffer) => { stdout += c.toString() })
  child.stderr.on('data', (c: Buffer) => { stderr += c.toString() })
  const [code] = await once(child, 'close') as [number | null]
  return { code, stdout, stderr }
}

export interface DaemonOptions {
  dataDir: string
  bootstrap?: string[]
  listen?: string[]
  api?: string
  extraArgs?: string[]
  env?: NodeJS.ProcessEnv
  /**
   * Runs the daemon inside a host of a network-namespace topology: it listens on the host's
   * address (unless `listen` says otherwise) and api() goes through its api.sock, since its
   * API URL is the namespace's own 127.0.0.1.
   */
  netns?: { topology: Topology, host: NetHost | string }
}

/** A real `octet daemon` process on 127.0.0.1, ready when it says so over IPC. */
export class DaemonProcess {
  readonly output: string[] = []
  info!: ReadyMessage
  token = ''

  private constructor (readonly child: ChildProcess, readonly options: DaemonOptions) {}

  static async start (options: DaemonOptions, cleanup?: Cleanup): Promise<DaemonProcess> {
    const host = options.netns == null ? undefined : typeof options.netns.host === 'string' ? options.netns.topology.host(options.netns.host) : options.netns.host
    const args = [
      CLI, 'daemon',
      '--data-dir', options.dataDir,
      ...(options.listen ?? [`/ip4/${host?.address ?? '127.0.0.1'}/tcp/0`]).flatMap(l => ['--listen', l]),
      '--api', options.api ?? '127.0.0.1:0',
      '--no-mdns',
      '--log-level', 'info',
      ...(options.bootstrap ?? []).flatMap(b => ['--bootstrap', b]),
      ...(options.extraArgs ?? [])
    ]
    const spawnOptions = { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] as Array<'ignore' | 'pipe' | 'ipc'>, env: { ...process.env, ...options.env } }
    const child = options.netns != null && host != null
      ? options.netns.topology.spawn(host, process.execPath, args, spawnOptions)
      : spawn(process.execPath, args, spawnOptions)
    const daemon = new DaemonProcess(child, options)
    cleanup?.add(async () => { await daemon.stop() })
    child.stdout?.on('data', (c: Buffer) => daemon.output.push(c.toString()))
    child.stderr?.on('data', (c: Buffer) => daemon.output.push(c.toString()))
    const ready = await new Promise<ReadyMessage>((resolveReady, reject) => {
      const timer = setTimeout(() => { reject(new Error(`daemon did not start in 30 s:\n${daemon.output.join('')}`)) }, 30_000)
      child.on('message', (m: ReadyMessage) => { if (m.type === 'ready') { clearTimeout(timer); resolveReady(m) } })
      child.once('exit', code => { clearTimeout(timer); reject(new Error(`daemon exited with ${code} before ready:\n${daemon.output.join('')}`)) })
    })
    daemon.info = ready
    daemon.token = (await readFile(join(options.dataDir, 'api.token'), 'utf8')).trim()
    return daemon
  }

  get exited (): boolean {
    return this.child.exitCode != null || this.child.signalCode != null
  }

  get peerId (): string {
    return this.info.peerId
  }

  /** Stops (SIGTERM, a clean exit) and starts a new process on the same data directory and options. */
  async restart (cleanup?: Cleanup, changes: Partial<DaemonOptions> = {}): Promise<DaemonProcess> {
    await this.stop()
    return await DaemonProcess.start({ ...this.options, ...changes }, cleanup)
  }

  /** The first TCP address with /p2p/, for other daemons to bootstrap from: announced, or bound (a public address AutoNAT has not confirmed yet). */
  get tcpAddress (): string {
    const tcp = (a: string): boolean => a.includes('/tcp/') && !a.includes('/ws') && !a.includes('/p2p-circuit')
    const addr = this.info.addresses.find(tcp) ?? this.info.listenAddresses.find(tcp)
    if (addr == null) throw new Error('daemon has no TCP address')
    return addr
  }

  /** How this test reaches the daemon's API: its socket when it runs in a namespace, else its URL. */
  get apiFetch (): ApiFetch {
    if (this.options.netns == null) return urlFetch(this.info.apiUrl)
    if (this.info.apiSocket == null) throw new Error('daemon in a namespace without api.sock: its data directory path is too long for a socket')
    return socketFetch(this.info.apiSocket)
  }

  async api<T = unknown> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: T }> {
    const res = await this.apiFetch(path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T }
  }

  /** SIGTERM and wait for a clean exit (SIGKILL after 10 s). Idempotent. */
  async stop (): Promise<number | null> {
    if (this.exited) return this.child.exitCode
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000)
    const [code] = await exited as [number | null]
    clearTimeout(timer)
    return code
  }

  /** SIGKILL: a crash, no shutdown code runs. */
  async kill (): Promise<void> {
    if (this.exited) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGKILL')
    await exited
  }
}

/** Polls `check` until it returns a value other than undefined (event-free outcomes across processes). */
export async function waitFor<T> (check: () => Promise<T | undefined>, { timeoutMs = 20_000, intervalMs = 100, what = 'condition' } = {}): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, intervalMs))
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError != null ? `: ${String(lastError)}` : ''}`)
}

/** waitFor for a condition that is simply true or false. */
export async function until (what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  await waitFor(async () => await check() ? true : undefined, { what, timeoutMs, intervalMs: 25 })
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function isAlive (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
