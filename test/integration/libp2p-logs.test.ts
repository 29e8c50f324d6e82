import { createServer, type Server } from 'node:net'
import { once } from 'node:events'
import { afterAll, describe, expect, it } from 'vitest'
import { Cleanup, DaemonProcess, runCli, until } from '../helpers/daemon.js'

// libp2p's own log lines come out of a real daemon as JSON lines of its pino log
// (src/node/libp2p-logger.ts): its errors by default, the debug lines of the components asked for.
const cleanup = new Cleanup()
afterAll(async () => { await cleanup.run() })

function jsonLines (output: string): Array<Record<string, unknown>> {
  return output.split('\n').filter(line => line.startsWith('{')).map(line => JSON.parse(line) as Record<string, unknown>)
}

describe("libp2p's logs in the daemon's log", () => {
  it('a libp2p error (a listen address in use) is a debug line naming its component', async () => {
    const busy: Server = createServer()
    busy.listen(0, '127.0.0.1')
    await once(busy, 'listening')
    cleanup.add(async () => { await new Promise(resolve => busy.close(resolve)) })
    const port = (busy.address() as { port: number }).port
    const dir = await cleanup.tempDir()
    const result = await runCli(['daemon', '--data-dir', dir, '--listen', `/ip4/127.0.0.1/tcp/${port}`, '--api', '127.0.0.1:0', '--no-mdns', '--log-level', 'debug'])
    expect(result.code).not.toBe(0)
    const line = jsonLines(result.stdout).find(l => l.module === 'libp2p')
    expect(line).toMatchObject({ level: 20, module: 'libp2p', component: 'libp2p:transports' })
    expect(line?.msg).toMatch(new RegExp(`could not listen on address /ip4/127.0.0.1/tcp/${port} - .*EADDRINUSE`))
    // what the operator reads without debug is octet's own line, with what to do
    expect(result.stderr + result.stdout).toMatch(/in use/)
  })

  it('OCTET_LIBP2P_LOG adds the debug lines of the components named, at debug, under --log-level info', async () => {
    const daemon = await DaemonProcess.start({ dataDir: await cleanup.tempDir(), env: { OCTET_LIBP2P_LOG: 'kad-dht' } }, cleanup)
    await until('a kad-dht debug line', () => jsonLines(daemon.output.join('')).some(l => l.module === 'libp2p' && l.level === 20))
    const libp2p = jsonLines(daemon.output.join('')).filter(l => l.module === 'libp2p' && l.level === 20)
    expect(libp2p.every(l => typeof l.component === 'string' && l.component.startsWith('libp2p:kad-dht'))).toBe(true)
    // the daemon's own debug lines stay off
    expect(jsonLines(daemon.output.join('')).filter(l => l.module !== 'libp2p' && l.level === 20)).toEqual([])
  })
})
