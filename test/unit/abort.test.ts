import { describe, expect, it } from 'vitest'
import { abortable } from '../../src/abort.js'

describe('abortable', () => {
  it('settles as the promise does while the signal stays quiet', async () => {
    const signal = new AbortController().signal
    await expect(abortable(Promise.resolve(7), signal)).resolves.toBe(7)
    await expect(abortable(Promise.reject(new Error('no')), signal)).rejects.toThrow('no')
  })

  it('rejects with the reason at the abort; the promise\'s own later rejection is not left unhandled', async () => {
    const controller = new AbortController()
    let fail = (_err: Error): void => {}
    const work = new Promise<number>((_resolve, reject) => { fail = reject })
    const waiting = abortable(work, controller.signal)
    const reason = new Error('stop')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    // vitest fails the run on an unhandled rejection: this one must be taken care of
    fail(new Error('the work failed later'))
    await new Promise(resolve => setImmediate(resolve))
  })

  it('rejects at once when the signal was aborted before, and leaves no rejection of the work unhandled', async () => {
    const controller = new AbortController()
    controller.abort(new Error('already'))
    let fail = (_err: Error): void => {}
    const work = new Promise<number>((_resolve, reject) => { fail = reject })
    await expect(abortable(work, controller.signal)).rejects.toThrow('already')
    fail(new Error('the work failed later'))
    await new Promise(resolve => setImmediate(resolve))
  })
})
