import { describe, expect, it } from 'vitest'
import { abortable } from '../../src/abort.js'

/** A promise and the function that rejects it, later. */
function pending (): { promise: Promise<number>, fail: (err: Error) => void } {
  let fail = (_err: Error): void => {}
  const promise = new Promise<number>((_resolve, reject) => { fail = reject })
  return { promise, fail }
}

const aTurn = async (): Promise<void> => { await new Promise(resolve => setImmediate(resolve)) }

describe('abortable', () => {
  it('settles each as its promise does while the signal stays quiet', async () => {
    const [ok, failed] = abortable([Promise.resolve(7), Promise.reject(new Error('no'))], new AbortController().signal)
    await expect(ok).resolves.toBe(7)
    await expect(failed).rejects.toThrow('no')
  })

  it('rejects those still waiting with the reason at the abort; the work\'s own later rejection is not left unhandled', async () => {
    const controller = new AbortController()
    const work = pending()
    const [done, waiting] = abortable([Promise.resolve(1), work.promise], controller.signal)
    await expect(done).resolves.toBe(1)
    const reason = new Error('stop')
    controller.abort(reason)
    await expect(waiting).rejects.toBe(reason)
    // vitest fails the run on an unhandled rejection: this one must be taken care of
    work.fail(new Error('the work failed later'))
    await aTurn()
  })

  it('rejects at once when the signal was aborted before, and leaves no rejection of the work unhandled', async () => {
    const controller = new AbortController()
    controller.abort(new Error('already'))
    const work = pending()
    const [waiting] = abortable([work.promise], controller.signal)
    await expect(waiting).rejects.toThrow('already')
    work.fail(new Error('the work failed later'))
    await aTurn()
  })
})
