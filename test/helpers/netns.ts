import { spawnSync, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { netnsUnavailableReason } from '../../src/testnet/netns-host.js'
import type { NetHost, Topology } from '../../src/testnet/netns.js'

let reason: string | undefined | null = null

/**
 * Why the network-namespace tests cannot run here (not Linux, not root, no iproute2 or
 * iptables, namespaces refused), in one line; undefined when they can. For
 * `describe.skipIf(skipUnlessNetns() != null)`. Probed once per test file.
 */
export function skipUnlessNetns (): string | undefined {
  if (reason === null) reason = netnsUnavailableReason()
  return reason
}

/** A TCP server inside a namespace that reports each connection's remote address on stdout. */
export class ProbeServer {
  readonly accepted: string[] = []
  private constructor (readonly child: ChildProcess) {}

  static async start (topology: Topology, host: NetHost | string, port: number): Promise<ProbeServer> {
    const address = typeof host === 'string' ? topology.host(host).address : host.address
    const script = `
      const server = require('node:net').createServer(socket => { console.log('accepted ' + socket.remoteAddress); socket.end() })
      server.listen(${port}, '${address}', () => console.log('listening'))
      process.on('disconnect', () => process.exit(0))`
    const child = topology.spawn(host, process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] })
    const server = new ProbeServer(child)
    let buffer = ''
    const listening = new Promise<void>((resolve, reject) => {
      child.stdout?.on('data', (c: Buffer) => {
        buffer += c.toString()
        const parts = buffer.split('\n')
        buffer = parts.pop() ?? ''
        for (const line of parts) {
          if (line === 'listening') resolve()
          else if (line.startsWith('accepted ')) server.accepted.push(line.slice('accepted '.length))
        }
      })
      child.once('exit', code => { reject(new Error(`probe server in ${typeof host === 'string' ? host : host.name} exited with ${code}`)) })
    })
    await listening
    return server
  }

  async stop (): Promise<void> {
    if (this.child.exitCode != null || this.child.signalCode != null) return
    const exited = once(this.child, 'exit')
    this.child.kill('SIGTERM')
    await exited
  }
}

/** The outcome of one TCP connection attempt made from inside a namespace. */
export type ConnectOutcome = 'connected' | 'timeout' | `error ${string}`

/** Opens a TCP connection from `host` to `address:port`, giving up after `timeoutMs`. */
export async function connectFrom (topology: Topology, host: NetHost | string, address: string, port: number, timeoutMs: number): Promise<ConnectOutcome> {
  const script = `
    const socket = require('node:net').connect(${port}, '${address}')
    const timer = setTimeout(() => { console.log('timeout'); process.exit(0) }, ${timeoutMs})
    socket.once('connect', () => { console.log('connected'); clearTimeout(timer); socket.destroy() })
    socket.once('error', err => { console.log('error ' + err.code); clearTimeout(timer) })`
  const result = await topology.exec(host, process.execPath, ['-e', script], { timeoutMs: timeoutMs + 10_000 })
  return result.stdout.trim() as ConnectOutcome
}

/** Network namespaces as `ip netns list` shows them: checked apart from the code under test. */
export function listedNamespaces (): string[] {
  return spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').map(l => l.split(' ')[0] ?? '').filter(l => l !== '')
}
