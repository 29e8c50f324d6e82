/**
 * `promise`, or a rejection with the signal's reason as soon as `signal` aborts,
 * whichever comes first. For waits on work that others share (a stream's acks):
 * the caller stops waiting; the work itself runs on, and a rejection it ends
 * with later is not reported as unhandled.
 */
export async function abortable<T> (promise: Promise<T>, signal: AbortSignal): Promise<T> {
  // the race below handles the promise's rejection; this covers the early return
  promise.catch(() => {})
  signal.throwIfAborted()
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
    signal.addEventListener('abort', onAbort, { once: true })
  })
  try {
    return await Promise.race([promise, aborted])
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
