// A JavaScript @hyperswarm/secret-stream peer over plain TCP, driven by the
// C interop tests (tools/tests/test_interop_secretstream.c). Test use only.
//
//   node secretstream_peer.mjs responder HOST PORT MODE [SEEDHEX]
//   node secretstream_peer.mjs initiator HOST PORT MODE [SEEDHEX]
// MODE: echo    send every message back unchanged
//       garbage after the handshake, write bytes that are not a valid frame
//               straight to the socket
// Events, one JSON object per line on stdout:
//   {"event":"listening","port":N,"publicKey":HEX}      (responder)
//   {"event":"open","publicKey":HEX,"remotePublicKey":HEX,"handshakeHash":HEX}
//   {"event":"closed","messages":N,"error":STRING|null}
// Exits when the connection closes, when stdin closes (the test died), or
// after 120 s, whichever comes first.
import { createRequire } from 'node:module'
import net from 'node:net'

const require = createRequire(import.meta.url)
const SecretStream = require('@hyperswarm/secret-stream')

const [role, host, portText, mode, seedHex] = process.argv.slice(2)
if (!['initiator', 'responder'].includes(role) || !host || !portText || !['echo', 'garbage'].includes(mode)) {
  console.error('usage: secretstream_peer.mjs initiator|responder HOST PORT echo|garbage [SEEDHEX]')
  process.exit(2)
}
const keyPair = SecretStream.keyPair(seedHex ? Buffer.from(seedHex, 'hex') : undefined)
const hex = (b) => (b ? Buffer.from(b).toString('hex') : null)
const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n')

setTimeout(() => { emit({ event: 'timeout' }); process.exit(3) }, 120000).unref()
process.stdin.on('end', () => process.exit(4))
process.stdin.on('error', () => process.exit(4))
process.stdin.resume()

function run(socket) {
  const s = new SecretStream(role === 'initiator', socket, { keyPair })
  let messages = 0
  let error = null
  s.on('connect', () => {
    emit({ event: 'open', publicKey: hex(s.publicKey), remotePublicKey: hex(s.remotePublicKey), handshakeHash: hex(s.handshakeHash) })
    if (mode === 'garbage') {
      // A frame claiming 100 bytes whose content is not authentic.
      const junk = Buffer.alloc(103, 0xa5)
      junk[0] = 100; junk[1] = 0; junk[2] = 0
      socket.write(junk)
    }
  })
  s.on('data', (d) => {
    messages++
    if (mode === 'echo') s.write(d)
  })
  s.on('error', (e) => { error = e.message })
  s.on('end', () => s.end())
  s.on('close', () => {
    emit({ event: 'closed', messages, error })
    process.exit(0)
  })
}

if (role === 'responder') {
  const server = net.createServer((socket) => { server.close(); run(socket) })
  server.listen(Number(portText), host, () => {
    emit({ event: 'listening', port: server.address().port, publicKey: hex(keyPair.publicKey) })
  })
} else {
  const socket = net.connect(Number(portText), host)
  socket.on('error', (e) => { emit({ event: 'closed', messages: 0, error: e.message }); process.exit(1) })
  run(socket)
}
