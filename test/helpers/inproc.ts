import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadDaemonConfig, type LogLevel } from '../../src/config.js'
import { Daemon, type DaemonOverrides } from '../../src/daemon.js'
import { createLogger } from '../../src/logger.js'
import type { Cleanup } from './daemon.js'

export interface InProcessOptions {
  dataDir: string
  bootstrap?: string[]
  listen?: string[]
  overrides?: DaemonOverrides
}

/**
 * A whole daemon (store, node, crypto, messenger, HTTP API) inside the test
 * process: real TCP on 127.0.0.1 and real HTTP, without the cost of a process
 * per node. Tests about the process itself (signals, SIGKILL) use DaemonProcess.
 */
export class InProcessDaemon {
  private constructor (readonly daemon: Daemon, readonly options: InProcessOptions, readonly token: string) {}

  static async start (options: InProcessOptions, cleanup?: Cleanup): Promise<InProcessDaemon> {
    const config = loadDaemonConfig({
      dataDir: options.dataDir,
      listen: options.listen ?? ['/ip4/127.0.0.1/tcp/0'],
      api: '127.0.0.1:0',
      mdns: false,
      bootstrap: options.bootstrap ?? [],
      logLevel: (process.env.OCTET_TEST_LOG_LEVEL ?? 'silent') as LogLevel
    }, {})
    const daemon = await Daemon.start(config, createLogger(config.logLevel, process.stderr), options.overrides)
    const token = (await readFile(join(options.dataDir, 'api.token'), 'utf8')).trim()
    const started = new InProcessDaemon(daemon, options, token)
    cleanup?.add(async () => { await started.stop() })
    return started
  }

  get peerId (): string {
    return this.daemon.info().peerId
  }

  get tcpAddress (): string {
    const addr = this.daemon.info().addresses.find(a => a.includes('/tcp/') && !a.includes('/ws'))
    if (addr == null) throw new Error('no TCP address')
    return addr
  }

  get messenger (): NonNullable<Daemon['messenger']> {
    return this.daemon.messenger
  }

  async api<T = any> (method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: T, headers: Headers }> {
    const res = await fetch(this.daemon.info().apiUrl + path, {
      method,
      headers: {
        authorization: `Bearer ${this.token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...headers
      },
      body: body !== undefined ? (typeof body === 'string' ? body : JSON.stringify(body)) : undefined,
      signal: AbortSignal.timeout(30_000)
    })
    const text = await res.text()
    return { status: res.status, body: (text === '' ? undefined : JSON.parse(text)) as T, headers: res.headers }
  }

  async stop (): Promise<void> {
    await this.daemon.stop()
  }

  /** Stops and starts again on the same data directory (same identity, same state). */
  async restart (cleanup?: Cleanup): Promise<InProcessDaemon> {
    await this.stop()
    return await InProcessDaemon.start(this.options, cleanup)
  }
}
