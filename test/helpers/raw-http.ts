import { connect } from 'node:net'

export interface RawAnswer {
  status: number
  headers: Record<string, string>
  /** the body parsed as JSON, or the text when it is not JSON */
  body: any
}

/**
 * Sends bytes as they are to an HTTP server (TCP port or Unix socket) and reads the answer
 * until the server closes: for what fetch refuses to send (a foreign or missing Host header,
 * oversized headers, a malformed request line). Requests should say `Connection: close`.
 */
export async function rawHttp (to: { port: number } | { path: string }, request: string): Promise<RawAnswer> {
  const socket = 'port' in to ? connect(to.port, '127.0.0.1') : connect(to.path)
  const chunks: Buffer[] = []
  socket.on('data', (chunk: Buffer) => chunks.push(chunk))
  socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')))
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => { socket.write(request) })
    socket.once('close', () => { resolve() })
    // the server may answer and close before it read all we sent (EPIPE / ECONNRESET): the answer counts
    socket.once('error', err => { if (chunks.length === 0) reject(err) })
  })
  const text = Buffer.concat(chunks).toString('utf8')
  const [head = '', ...rest] = text.split('\r\n\r\n')
  const [statusLine = '', ...headerLines] = head.split('\r\n')
  const headers = Object.fromEntries(headerLines.map(line => [line.slice(0, line.indexOf(':')).toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]))
  let body: any = rest.join('\r\n\r\n')
  try { body = JSON.parse(body) } catch { /* not JSON: kept as text */ }
  return { status: Number(statusLine.split(' ')[1]), headers, body }
}

/** A GET (or other) request line with headers, ending the connection after the answer. */
export function request (method: string, path: string, headers: Record<string, string>, body?: string): string {
  const lines = [`${method} ${path} HTTP/1.1`, ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`), 'connection: close']
  if (body != null) lines.push(`content-length: ${Buffer.byteLength(body)}`)
  return `${lines.join('\r\n')}\r\n\r\n${body ?? ''}`
}
