/**
 * The `promises`, each settling as it would, or rejecting with the signal's
 * reason as soon as `signal` aborts, whichever comes first. For waits on work
 * that others share (a stream's acks): the caller stops waiting, the work runs
 * on, and a rejection it ends with later is not reported as unhandled. One
 * listener for them all, removed once all have settled: a window of acks can
 * hold thousands, and every removal scans the signal's listeners.
 */
export function abortable<T> (promises: Array<Promise<T>>, signal: AbortSignal): Array<Promise<T>> {
  let onAbort = (): void => {}
  const aborted = new Promise<never>((_resolve, reject) => {
    onAbort = () => { reject(signal.reason) }
  })
  // raced below against each promise, which handles their rejections too; this covers none
  aborted.catch(() => {})
  if (signal.aborted) onAbort()
  else {
    signal.addEventListener('abort', onAbort, { once: true })
    void Promise.allSettled(promises).then(() => { signal.removeEventListener('abort', onAbort) })
  }
  return promises.map(async promise => await Promise.race([promise, aborted]))
}
