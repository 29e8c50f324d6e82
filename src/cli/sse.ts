export interface SseMessage {
  id?: string
  event?: string
  data: string
}

/**
 * Parses a text/event-stream body into messages (the subset octet sends:
 * id, event, data lines; comments ignored).
 */
export async function * parseSse (body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder()
  let buffer = ''
  let current: SseMessage = { data: '' }
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true })
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline).replace(/\r$/, '')
      buffer = buffer.slice(newline + 1)
      if (line === '') {
        if (current.data !== '' || current.id != null) yield current
        current = { data: '' }
        continue
      }
      if (line.startsWith(':')) continue
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'id') current.id = value
      else if (field === 'event') current.event = value
      else if (field === 'data') current.data = current.data === '' ? value : `${current.data}\n${value}`
    }
  }
}
