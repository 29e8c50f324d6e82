import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { accessSync, constants } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { connect, createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import { type Cleanup, until } from './daemon.js'

/**
 * A real IRC server for tests: ngircd (Debian's `ngircd` package) in the foreground on
 * 127.0.0.1 and a free port, with a config of its own in a temp directory; and a test
 * user speaking raw IRC over a socket. `.ci/run` installs ngircd when it runs as root;
 * elsewhere a test without it skips, saying why (ngircdUnavailable()).
 */

const CANDIDATES = ['/usr/sbin/ngircd', '/usr/bin/ngircd', '/usr/local/sbin/ngircd', '/usr/local/bin/ngircd']

export function findNgircd (): string | undefined {
  for (const path of [...CANDIDATES, ...(process.env.PATH ?? '').split(':').filter(Boolean).map(dir => join(dir, 'ngircd'))]) {
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {}
  }
  return undefined
}

/** Why the IRC tests cannot run here, or undefined when they can. */
export function ngircdUnavailable (): string | undefined {
  return findNgircd() == null ? 'ngircd is not installed (apt-get install ngircd; .ci/run does it as root)' : undefined
}

/** A port free on 127.0.0.1 right now (the server binds it a moment later). */
export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address == null || typeof address === 'string') throw new Error('no port')
  return address.port
}

export class IrcServer {
  readonly output: string[] = []
  private child: ChildProcess | undefined

  private constructor (readonly port: number, private readonly config: string) {}

  static async start (cleanup: Cleanup): Promise<IrcServer> {
    const binary = findNgircd()
    if (binary == null) throw new Error(ngircdUnavailable())
    const dir = await cleanup.tempDir('octet-ngircd-')
    const port = await freePort()
    const config = join(dir, 'ngircd.conf')
    const user = process.getuid?.() ?? 0
    const group = process.getgid?.() ?? 0
    await writeFile(config, [
      '[Global]',
      'Name = irc.octet.test',
      'Info = octet IRC bridge test',
      'AdminInfo1 = octet tests', 'AdminInfo2 = 127.0.0.1', 'AdminEMail = nobody@octet.test',
      'Listen = 127.0.0.1',
      `Ports = ${port}`,
      'MotdPhrase = octet test server',
      `PidFile = ${join(dir, 'ngircd.pid')}`,
      `ServerUID = ${user}`,
      `ServerGID = ${group}`,
      '[Limits]',
      'MaxConnectionsIP = 0',
      // the bridge's nick is octet-bridge; ngircd allows 9 characters by default (RFC 2812)
      'MaxNickLength = 30',
      'PingTimeout = 120',
      'PongTimeout = 20',
      '[Options]',
      'PAM = no', 'Ident = no', 'DNS = no',
      ''
    ].join('\n'))
    const server = new IrcServer(port, config)
    cleanup.add(async () => { await server.stop() })
    await server.run()
    return server
  }

  /** Starts ngircd (again) on the same port; resolves once it accepts connections. */
  async run (): Promise<void> {
    const binary = findNgircd() as string
    const child = spawn(binary, ['-n', '-f', this.config], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child
    child.stdout?.on('data', (c: Buffer) => this.output.push(c.toString()))
    child.stderr?.on('data', (c: Buffer) => this.output.push(c.toString()))
    await until(`ngircd listening on ${this.port}`, async () => {
      if (child.exitCode != null) throw new Error(`ngircd exited with ${child.exitCode}:\n${this.output.join('')}`)
      return await new Promise<boolean>(resolve => {
        const probe = connect({ host: '127.0.0.1', port: this.port })
        probe.once('connect', () => { probe.destroy(); resolve(true) })
        probe.once('error', () => { resolve(false) })
      })
    }, 15_000)
  }

  /** SIGTERM and wait for it to exit (SIGKILL after 5 s). Idempotent. */
  async stop (): Promise<void> {
    const child = this.child
    if (child == null || child.exitCode != null || child.signalCode != null) return
    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
}

export interface Heard {
  nick: string
  text: string
}

/** A person on IRC, as raw protocol: registers, joins a channel, says lines and keeps what the channel says. */
export class IrcUser {
  /** PRIVMSGs heard in the channel, in order */
  readonly heard: Heard[] = []
  private socket: Socket | undefined
  private joined = false

  constructor (readonly nick: string, readonly channel: string) {}

  /** Connects, registers and joins; resolves once in the channel. */
  async connect (port: number): Promise<void> {
    this.joined = false
    const socket = connect({ host: '127.0.0.1', port })
    this.socket = socket
    socket.setEncoding('utf8')
    let buffer = ''
    socket.on('data', (chunk: string) => {
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\r\n')) >= 0) {
        this.onLine(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
      }
    })
    socket.on('error', () => {})
    await once(socket, 'connect')
    socket.write(`NICK ${this.nick}\r\nUSER ${this.nick} 0 * :octet test user\r\n`)
    await until(`${this.nick} in ${this.channel}`, () => this.joined, 15_000)
  }

  private onLine (line: string): void {
    const match = /^(?::(\S+) )?(\S+)(?: (.*))?$/.exec(line)
    if (match == null) return
    const [, prefix, command, rest = ''] = match
    const nick = prefix?.split('!')[0] ?? ''
    const trailing = rest.includes(' :') ? rest.slice(rest.indexOf(' :') + 2) : rest.startsWith(':') ? rest.slice(1) : ''
    if (command === 'PING') this.socket?.write(`PONG :${trailing}\r\n`)
    else if (command === '001') this.socket?.write(`JOIN ${this.channel}\r\n`)
    else if (command === '366') this.joined = true
    else if (command === 'PRIVMSG' && rest.startsWith(`${this.channel} `)) this.heard.push({ nick, text: trailing })
  }

  say (text: string): void {
    this.socket?.write(`PRIVMSG ${this.channel} :${text}\r\n`)
  }

  close (): void {
    this.socket?.destroy()
  }
}
