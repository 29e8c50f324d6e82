import type { FastifyReply } from 'fastify'

/** Aborts when the client goes away before the answer is sent, so network waits stop early. */
export function clientGone (reply: FastifyReply): AbortSignal {
  const abort = new AbortController()
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) abort.abort()
  })
  return abort.signal
}
