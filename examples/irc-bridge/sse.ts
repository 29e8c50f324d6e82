/**
 * Server-Sent Events read from a response body (the subset the daemon writes: `id:`,
 * `event:`, `data:` lines, `:` comments, a blank line ending each event). A body that
 * brings nothing, not even the daemon's keep-alive comment (every 15 s), for `idleMs` is
 * a dead connection: the read is aborted and the caller reconnects.
 */
export interface SseMessage {
  id?: string
  event: string
  data: string
}

export class SseIdleError extends Error {
  readonly code = 'SSE_IDLE'
  override readonly name = 'SseIdleError'
}

export async function * readSse (body: ReadableStream<Uint8Array>, idleMs: number): AsyncGenerator<SseMessage> {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  try {
    for (;;) {
      let timer: NodeJS.Timeout | undefined
      const idle = new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new SseIdleError(`no data for ${idleMs} ms`)) }, idleMs) })
      const chunk = await Promise.race([reader.read(), idle]).finally(() => { clearTimeout(timer) })
      if (chunk.done) return
      // CRLF and CR end lines too; a CR at the end of a chunk waits, its LF may come next
      buffer = (buffer + chunk.value).replace(/\r\n|\r(?!$)/g, '\n')
      let end: number
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        const message = parseBlock(block)
        if (message != null) yield message
      }
    }
  } finally {
    // a consumer that stops early, or an idle or failed read, lets go of the connection
    await reader.cancel().catch(() => {})
  }
}

function parseBlock (block: string): SseMessage | undefined {
  const message: SseMessage = { event: 'message', data: '' }
  const data: string[] = []
  for (const line of block.split('\n')) {
    if (line === '' || line.startsWith(':')) continue
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
    if (field === 'id') message.id = value
    else if (field === 'event') message.event = value
    else if (field === 'data') data.push(value)
  }
  if (data.length === 0) return undefined
  message.data = data.join('\n')
  return message
}
