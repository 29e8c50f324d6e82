import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { formatLibp2pMessage, libp2pLogEnabled, pinoComponentLogger } from '../../../src/node/libp2p-logger.js'
import { until } from '../../helpers/daemon.js'

function capture (level = 'info'): { log: pino.Logger, lines: () => Array<Record<string, unknown>> } {
  const out: string[] = []
  const log = pino({ level }, { write: (line: string) => { out.push(line) } })
  return { log, lines: () => out.map(line => JSON.parse(line) as Record<string, unknown>) }
}

describe('libp2p logs through pino', () => {
  it("by default forwards libp2p's errors only, at debug, with module and component", () => {
    const { log, lines } = capture('debug')
    const bootstrap = pinoComponentLogger(log).forComponent('libp2p:bootstrap')
    bootstrap('dialling %s', 'someone')
    bootstrap.trace('details')
    bootstrap.error('could not dial bootstrap peer %p - %e', '12D3KooWExample', new Error('connect ECONNREFUSED'))
    expect(bootstrap.enabled).toBe(false)
    expect(lines()).toEqual([expect.objectContaining({
      level: 20,
      module: 'libp2p',
      component: 'libp2p:bootstrap',
      msg: 'could not dial bootstrap peer 12D3KooWExample - connect ECONNREFUSED'
    })])
  })

  it('forwards the debug lines of the components asked for, whatever the daemon\'s level', () => {
    const { log, lines } = capture('info')
    const logger = pinoComponentLogger(log, ['kad-dht', 'yamux'])
    const routing = logger.forComponent('libp2p:kad-dht').newScope('routing-table')
    const tcp = logger.forComponent('libp2p:tcp')
    expect(routing.enabled).toBe(true)
    expect(tcp.enabled).toBe(false)
    routing('added %s', 'a peer')
    routing.trace('not asked for')
    tcp('not asked for')
    logger.forComponent('libp2p:yamux')('a stream')
    // the daemon's own lines keep its level
    log.debug('not shown')
    expect(lines().map(l => [l.level, l.component, l.msg])).toEqual([
      [20, 'libp2p:kad-dht:routing-table', 'added a peer'],
      [20, 'libp2p:yamux', 'a stream']
    ])
  })

  it('logs a flood of one libp2p error as its first line and then a count, not a line each', async () => {
    const { log, lines } = capture('debug')
    const logger = pinoComponentLogger(log, [], 100)
    for (let i = 0; i < 1000; i++) {
      logger.forComponent(`libp2p:circuit-relay:transport:${i}`).error('abort with error - %e', new Error(`reset ${i}`))
    }
    logger.forComponent('libp2p:transports').error('could not listen on %a', '/ip4/127.0.0.1/tcp/1')
    expect(lines().map(l => l.msg)).toEqual(['abort with error - reset 0', 'could not listen on /ip4/127.0.0.1/tcp/1'])
    await until('the count of the rest', () => lines().length === 3, 2_000)
    expect(lines()[2]).toMatchObject({ level: 20, module: 'libp2p', repeats: 999, msg: 'abort with error - reset 999: 999 more like it in 0.1 s, not logged one by one' })
    // a new interval logs the next one in full again
    logger.forComponent('libp2p:x').error('abort with error - %e', new Error('later'))
    expect(lines()[3]?.msg).toBe('abort with error - later')
  })

  it("keeps libp2p's errors out of a daemon's log at info, its default", () => {
    const { log, lines } = capture('info')
    const logger = pinoComponentLogger(log)
    logger.forComponent('libp2p:tcp:connection:inbound:abc').newScope('yamux').error('closed after reading 0/1 bytes')
    logger.forComponent('libp2p:connection-manager:dial-queue').error('dial failed to %a - %e', '/ip4/127.0.0.1/tcp/1', new Error('connect ECONNREFUSED'))
    log.info('the daemon\'s own line')
    expect(lines().map(l => l.msg)).toEqual(['the daemon\'s own line'])
  })

  it('silences a component excluded with -name, its errors too', () => {
    const { log, lines } = capture('debug')
    const logger = pinoComponentLogger(log, ['-tcp:connection'])
    logger.forComponent('libp2p:tcp:connection:inbound:abc').newScope('yamux').error('abort with error - %e', new Error('reset'))
    logger.forComponent('libp2p:tcp:listener').error('could not listen')
    expect(lines().map(l => l.component)).toEqual(['libp2p:tcp:listener'])
  })

  it('forwards nothing to a silent logger', () => {
    const { log, lines } = capture('silent')
    pinoComponentLogger(log).forComponent('libp2p:tcp').error('gone %e', new Error('x'))
    expect(lines()).toEqual([])
  })

  it.each([
    { enable: [], component: 'libp2p:kad-dht', trace: false, on: false },
    { enable: ['kad-dht'], component: 'libp2p:kad-dht', trace: false, on: true },
    { enable: ['libp2p:kad-dht'], component: 'libp2p:kad-dht:network', trace: false, on: true },
    { enable: ['kad-dht'], component: 'libp2p:kad-dht-other', trace: false, on: false },
    { enable: ['kad-dht'], component: 'libp2p:kad-dht', trace: true, on: false },
    { enable: ['kad-dht:trace'], component: 'libp2p:kad-dht:network', trace: true, on: true },
    { enable: ['kad-dht:trace'], component: 'libp2p:kad-dht', trace: false, on: true },
    { enable: ['*'], component: 'libp2p:anything', trace: false, on: true },
    { enable: ['*', '-yamux'], component: 'libp2p:yamux:stream', trace: false, on: false },
    { enable: ['circuit-relay:*'], component: 'libp2p:circuit-relay:transport', trace: false, on: true },
    { enable: [' tcp ', ''], component: 'libp2p:tcp:listener', trace: false, on: true }
  ])('$enable enables $component (trace: $trace): $on', ({ enable, component, trace, on }) => {
    expect(libp2pLogEnabled(enable, component, trace)).toBe(on)
  })

  it.each([
    { formatter: 'peer %p at %a', args: ['12D3KooWX', '/ip4/127.0.0.1/tcp/1'], text: 'peer 12D3KooWX at /ip4/127.0.0.1/tcp/1' },
    { formatter: '%d peers, %s', args: ['3', 'ok'], text: '3 peers, ok' },
    { formatter: 'key %b / %t / %m', args: [Uint8Array.from([0, 1]), Uint8Array.from([0xff]), Uint8Array.from([1, 2, 3])], text: 'key 12 / 74 / AQID' },
    { formatter: '100%% of %j', args: [{ a: 1 }], text: '100% of {"a":1}' },
    { formatter: 'missing %s', args: [], text: 'missing %s' },
    { formatter: 'extra', args: ['one', 2], text: 'extra one 2' },
    { formatter: 'failed - %e', args: [new AggregateError([new Error('one'), new TypeError('two')], 'all dials failed')], text: 'failed - AggregateError: all dials failed (one; TypeError: two)' },
    { formatter: new Error('bare error'), args: [], text: 'bare error' },
    { formatter: { an: 'object' }, args: [], text: "{ an: 'object' }" }
  ])('formats $formatter as libp2p does', ({ formatter, args, text }) => {
    expect(formatLibp2pMessage(formatter, args)).toBe(text)
  })
})
