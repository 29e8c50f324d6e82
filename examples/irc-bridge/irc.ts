/**
 * A minimal IRC client (RFC 2812 subset): register, join one channel, answer PINGs, say
 * lines, hear the channel's PRIVMSGs, and reconnect with backoff whenever the connection
 * goes (a server restart, a kick, a dead link). Hand-written rather than an npm library:
 * the bridge needs a dozen commands, and this way it adds no dependency to octet, and it
 * can confirm that what it said was taken — IRC has no acknowledgements, but a server
 * handles a client's lines in order, so the PONG to a PING sent after them says the lines
 * before it were processed. The bridge moves its cursor only then.
 */
import { connect, type Socket } from 'node:net'
import { Backoff, sleep } from './backoff.js'
import { errorText, type Log } from './log.js'

export interface IrcMessage {
  /** the nick of a `nick!user@host` prefix */
  nick?: string
  command: string
  params: string[]
}

/** One line of IRC (without CRLF): `[@tags] [:prefix] COMMAND params… [:trailing]`. */
export function parseLine (line: string): IrcMessage | undefined {
  let rest = line
  if (rest.startsWith('@')) rest = rest.slice(rest.indexOf(' ') + 1)
  let nick: string | undefined
  if (rest.startsWith(':')) {
    const space = rest.indexOf(' ')
    if (space < 0) return undefined
    nick = rest.slice(1, space).split('!')[0]
    rest = rest.slice(space + 1)
  }
  const trailingAt = rest.indexOf(' :')
  const head = trailingAt >= 0 ? rest.slice(0, trailingAt) : rest
  const params = head.split(' ').filter(p => p !== '')
  const command = params.shift()
  if (command == null) return undefined
  if (trailingAt >= 0) params.push(rest.slice(trailingAt + 2))
  return { ...(nick != null ? { nick } : {}), command: command.toUpperCase(), params }
}

export class IrcClosedError extends Error {
  readonly code = 'IRC_CLOSED'
  override readonly name = 'IrcClosedError'
}

const CONNECT_TIMEOUT = 10_000
/** From connecting to being in the channel. */
const JOIN_TIMEOUT = 30_000
/** A PING of ours after this long without a line from the server; the connection is dropped after three times as long. */
const KEEPALIVE = 30_000
const QUIT_GRACE = 2_000

export interface IrcInit {
  host: string
  port: number
  nick: string
  channel: string
  log: Log
  /** a line said in the channel by someone other than the bridge */
  onMessage: (nick: string, text: string) => void
}

/** One TCP connection to the server: registered, then in the channel. */
class Session {
  nick: string
  joined = false
  lastHeard = Date.now()
  private acks = new Map<string, { resolve: () => void, reject: (err: Error) => void }>()
  private ackCounter = 0

  constructor (readonly socket: Socket, nick: string) {
    this.nick = nick
  }

  async send (line: string): Promise<void> {
    if (this.socket.destroyed) throw new IrcClosedError('the IRC connection is closed')
    // never more than one line: a CR or LF inside would be a command of its own
    if (!this.socket.write(line.replace(/[\r\n]/g, ' ') + '\r\n')) await new Promise<void>(resolve => { this.socket.once('drain', resolve) })
  }

  /** Resolves once the server answered a PING sent now: it has processed every line before it. */
  async ack (signal: AbortSignal): Promise<void> {
    const token = `ack-${++this.ackCounter}`
    const answered = new Promise<void>((resolve, reject) => { this.acks.set(token, { resolve, reject }) })
    await this.send(`PING :${token}`)
    const timer = AbortSignal.any([signal, AbortSignal.timeout(3 * KEEPALIVE)])
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { this.acks.delete(token); reject(new IrcClosedError('no PONG from the IRC server')) }
      timer.addEventListener('abort', onAbort)
      answered.then(resolve, reject).finally(() => { timer.removeEventListener('abort', onAbort) })
    })
  }

  pong (token: string): void {
    this.acks.get(token)?.resolve()
    this.acks.delete(token)
  }

  closed (): void {
    for (const ack of this.acks.values()) ack.reject(new IrcClosedError('the IRC connection closed'))
    this.acks.clear()
  }
}

export class IrcClient {
  private session: Session | undefined
  private readonly waiters = new Set<() => void>()
  private readonly stopping = new AbortController()
  private loop: Promise<void> | undefined
  private readonly backoff = new Backoff()

  constructor (private readonly init: IrcInit) {}

  start (): void {
    this.loop ??= this.run()
  }

  /** Says goodbye (QUIT) and stops reconnecting. */
  async stop (): Promise<void> {
    this.stopping.abort()
    const session = this.session
    if (session != null && !session.socket.destroyed) {
      await session.send('QUIT :bridge stopping').catch(() => {})
      session.socket.end()
      const timer = setTimeout(() => { session.socket.destroy() }, QUIT_GRACE)
      await new Promise(resolve => session.socket.once('close', resolve))
      clearTimeout(timer)
    }
    await this.loop
  }

  /**
   * Says `lines` in the channel, waiting for the channel to be joined, and resolves once the
   * server processed them. Throws IrcClosedError when the connection goes first: said again
   * after the reconnect, a line may then show twice, never go missing.
   */
  async say (lines: string[], signal: AbortSignal): Promise<void> {
    const session = await this.joined(signal)
    for (const line of lines) await session.send(`PRIVMSG ${this.init.channel} :${line}`)
    await session.ack(signal)
  }

  private async joined (signal: AbortSignal): Promise<Session> {
    for (;;) {
      const session = this.session
      if (session?.joined === true && !session.socket.destroyed) return session
      if (signal.aborted) throw new IrcClosedError('stopped')
      await new Promise<void>(resolve => {
        const done = (): void => { this.waiters.delete(done); signal.removeEventListener('abort', done); resolve() }
        this.waiters.add(done)
        signal.addEventListener('abort', done)
      })
    }
  }

  private async run (): Promise<void> {
    const { log, host, port } = this.init
    const signal = this.stopping.signal
    while (!signal.aborted) {
      try {
        await this.connection()
      } catch (err) {
        if (!signal.aborted) log.warn('irc: connection failed', { server: `${host}:${port}`, error: errorText(err) })
      }
      if (signal.aborted) break
      const delay = this.backoff.next()
      log.info('irc: reconnecting', { server: `${host}:${port}`, inMs: delay })
      await sleep(delay, signal)
    }
  }

  /** One connection, from connect to close; resolves when it closes, rejects when it could not be made. */
  private async connection (): Promise<void> {
    const { host, port, nick, channel, log } = this.init
    const socket = connect({ host, port })
    socket.setNoDelay(true)
    // one listener for the socket's whole life: an error at any point ends in 'close'
    let failed: Error | undefined
    socket.on('error', err => { failed = err })
    const closed = new Promise<void>(resolve => { socket.once('close', () => { resolve() }) })
    const timer = setTimeout(() => { socket.destroy(new Error(`no connection in ${CONNECT_TIMEOUT} ms`)) }, CONNECT_TIMEOUT)
    const connected = await Promise.race([new Promise<boolean>(resolve => { socket.once('connect', () => { resolve(true) }) }), closed.then(() => false)])
    clearTimeout(timer)
    if (!connected) throw failed ?? new IrcClosedError('the connection closed before it was made')
    const session = new Session(socket, nick)
    this.session = session
    log.info('irc: connected', { server: `${host}:${port}` })
    const registering = setTimeout(() => { if (!session.joined) socket.destroy(new Error(`not in ${channel} after ${JOIN_TIMEOUT} ms`)) }, JOIN_TIMEOUT)
    const keepalive = setInterval(() => {
      const quiet = Date.now() - session.lastHeard
      if (quiet > 3 * KEEPALIVE) socket.destroy(new Error(`nothing from the server for ${quiet} ms`))
      else if (quiet > KEEPALIVE) void session.send('PING :keepalive').catch(() => {})
    }, KEEPALIVE / 3)
    let buffer = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => {
      session.lastHeard = Date.now()
      buffer += chunk
      let end: number
      while ((end = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, end).replace(/\r$/, '')
        buffer = buffer.slice(end + 1)
        const message = parseLine(line)
        if (message != null) this.handle(session, message)
      }
    })
    await session.send(`NICK ${nick}`)
    await session.send(`USER ${nick.slice(0, 9)} 0 * :octet group bridge`)
    await closed
    const error = failed
    clearTimeout(registering)
    clearInterval(keepalive)
    session.closed()
    if (this.session === session) this.session = undefined
    if (!this.stopping.signal.aborted) log.warn('irc: disconnected', { server: `${host}:${port}`, ...(error != null ? { error: errorText(error) } : {}) })
  }

  private handle (session: Session, { nick: from, command, params }: IrcMessage): void {
    const { channel, log } = this.init
    const same = (a: string | undefined, b: string): boolean => a?.toLowerCase() === b.toLowerCase()
    switch (command) {
      case 'PING':
        void session.send(`PONG :${params.at(-1) ?? ''}`).catch(() => {})
        break
      case 'PONG':
        session.pong(params.at(-1) ?? '')
        break
      case '001':
        session.nick = params[0] ?? session.nick
        void session.send(`JOIN ${channel}`).catch(() => {})
        break
      case '433':
        // the nick is taken (often by our own previous connection, not timed out yet): try another
        if (!session.joined) {
          session.nick = `${session.nick.slice(0, 29)}_`
          log.warn('irc: nick in use, trying another', { nick: session.nick })
          void session.send(`NICK ${session.nick}`).catch(() => {})
        }
        break
      case '432':
        // an erroneous nick: most often too long for this server (RFC 2812 says 9); a shorter one may pass
        if (!session.joined && session.nick.length > 9) {
          log.warn('irc: nick refused, trying a shorter one', { nick: session.nick, reason: params.at(-1) ?? '' })
          session.nick = session.nick.slice(0, 9)
          void session.send(`NICK ${session.nick}`).catch(() => {})
        } else {
          log.error('irc: nick refused', { nick: session.nick, reason: params.at(-1) ?? '' })
          session.socket.destroy()
        }
        break
      case 'NICK':
        if (same(from, session.nick) && params[0] != null) session.nick = params[0]
        break
      case 'JOIN':
        if (same(from, session.nick) && same(params[0], channel)) {
          session.joined = true
          this.backoff.reset()
          log.info('irc: joined', { channel, nick: session.nick })
          for (const wake of [...this.waiters]) wake()
        }
        break
      case 'KICK':
        if (same(params[0], channel) && same(params[1], session.nick)) {
          session.joined = false
          log.warn('irc: kicked, joining again', { channel, by: from ?? '' })
          void sleep(1_000, this.stopping.signal).then(async () => { await session.send(`JOIN ${channel}`) }).catch(() => {})
        }
        break
      case '471': case '473': case '474': case '475': case '403':
        log.error('irc: cannot join', { channel, reason: params.at(-1) ?? command })
        session.socket.destroy()
        break
      case 'ERROR':
        // the server's goodbye; after our QUIT it is just the echo of it
        if (!this.stopping.signal.aborted) log.warn('irc: server said', { error: params.at(-1) ?? '' })
        break
      case 'PRIVMSG': {
        const [target, text] = params
        if (from == null || text == null || !same(target, channel) || same(from, session.nick)) break
        this.init.onMessage(from, text)
        break
      }
    }
  }
}
