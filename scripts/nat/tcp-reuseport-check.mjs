// Does Node let an outgoing TCP socket bind to the port a listener holds (SO_REUSEPORT)?
// Run: node_modules/.bin/node scripts/nat/tcp-reuseport-check.mjs   (loopback only)
import net from 'node:net'

const log = (...a) => console.log(...a)
log('node', process.version)

const listen = (opts) => new Promise((resolve, reject) => {
  const s = net.createServer(c => c.end())
  s.once('error', reject)
  s.listen(opts, () => resolve(s))
})
const connect = (opts) => new Promise((resolve) => {
  const c = net.connect(opts)
  c.once('connect', () => { resolve('connected from local port ' + c.localPort); c.destroy() })
  c.once('error', (e) => resolve(`${e.code} (${e.syscall ?? ''})`))
})

// a peer to dial
const target = await listen({ host: '127.0.0.1', port: 0 })
const targetPort = target.address().port

// 1. listener with reusePort, second listener on the same port with reusePort
const a = await listen({ host: '127.0.0.1', port: 0, reusePort: true })
const p = a.address().port
try { const b = await listen({ host: '127.0.0.1', port: p, reusePort: true }); log(`1. second listener with reusePort on ${p}: OK`); b.close() } catch (e) { log(`1. second listener with reusePort: ${e.code}`) }

// 2. outgoing connect from the listener's port
log(`2. net.connect({ localPort: ${p} }) while a reusePort listener holds it:`, await connect({ host: '127.0.0.1', port: targetPort, localAddress: '127.0.0.1', localPort: p }))
// 3. does net.connect accept reusePort / reuseAddress? (it ignores unknown options)
log(`3. net.connect({ localPort, reusePort: true }):`, await connect({ host: '127.0.0.1', port: targetPort, localAddress: '127.0.0.1', localPort: p, reusePort: true }))
// 4. net.Socket options documented for connect on this version
log('4. net.Socket has setReusePort?', typeof net.Socket.prototype.setReusePort, '| net.connect options with "reuse" in Node docs: none (only listen() has reusePort)')
// 5. control: connect from a free local port works
log('5. net.connect from a free explicit localPort:', await connect({ host: '127.0.0.1', port: targetPort, localAddress: '127.0.0.1', localPort: p + 1 }))

// 6. UDP: dgram sockets can send and receive on one socket (what QUIC/WebRTC use)
import dgram from 'node:dgram'
const u = dgram.createSocket({ type: 'udp4', reuseAddr: true })
await new Promise(r => u.bind(0, '127.0.0.1', r))
const v = dgram.createSocket('udp4')
await new Promise(r => v.bind(0, '127.0.0.1', r))
const got = new Promise(r => v.once('message', (m, rinfo) => r(rinfo.port)))
u.send('x', v.address().port, '127.0.0.1')
log(`6. UDP: one bound socket (port ${u.address().port}) sends; peer sees source port`, await got, '(same socket listens and dials)')
u.close(); v.close(); a.close(); target.close()
