import { once } from 'node:events'
import { describe, expect, it } from 'vitest'
import { isOctetError } from '../../src/errors.js'
import { ServiceRun } from '../../src/service-run.js'

describe('ServiceRun: a service between start() and stop()', () => {
  it('runs start and stop steps one at a time, in call order', async () => {
    const run = new ServiceRun('the test service')
    const order: string[] = []
    const step = (name: string, ms: number) => async () => {
      order.push(`${name} begins`)
      await new Promise(resolve => setTimeout(resolve, ms))
      order.push(`${name} ends`)
    }
    await Promise.all([run.serially(step('start', 20)), run.serially(step('stop', 0))])
    expect(order).toEqual(['start begins', 'start ends', 'stop begins', 'stop ends'])
  })

  it('a failed step does not stop the next one', async () => {
    const run = new ServiceRun('the test service')
    await expect(run.serially(async () => { throw new Error('boom') })).rejects.toThrow('boom')
    let ran = false
    await run.serially(async () => { ran = true })
    expect(ran).toBe(true)
  })

  it('ends a run by aborting its operations with UNAVAILABLE; a new run gets a fresh signal', () => {
    const run = new ServiceRun('the test service')
    expect(() => { run.assertRunning() }).toThrow('the test service is not running')
    run.begin()
    run.assertRunning()
    const operation = run.signalFor(AbortSignal.timeout(60_000))
    const stopped = run.end()
    expect(run.running).toBe(false)
    expect(operation.aborted).toBe(true)
    expect(operation.reason).toBe(stopped)
    expect(isOctetError(stopped, 'UNAVAILABLE')).toBe(true)
    run.begin()
    expect(run.signal.aborted).toBe(false)
  })

  it('says why an operation was cut short: the caller first, then the stop, then the timeout', async () => {
    const run = new ServiceRun('the test service')
    run.begin()
    const caller = new AbortController()
    const timeout = AbortSignal.timeout(1)
    await once(timeout, 'abort')
    expect(run.abortError(caller.signal, timeout, 'dialling')).toMatchObject({ code: 'TIMEOUT', message: 'dialling timed out' })
    run.end()
    expect(run.abortError(caller.signal, timeout, 'dialling')).toMatchObject({ code: 'UNAVAILABLE', message: 'dialling: the test service stopped' })
    caller.abort(new Error('the caller gave up'))
    expect(run.abortError(caller.signal, timeout, 'dialling')).toMatchObject({ message: 'the caller gave up' })
    expect(new ServiceRun('x').abortError(undefined, AbortSignal.timeout(60_000), 'dialling')).toBeUndefined()
  })
})
