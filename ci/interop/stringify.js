// Reference model of the 2020117 agent's message encoding, for
// core/tests/test_wire_node.c: reads NDJSON messages on stdin, rebuilds each
// as the reference builds it ({type, id, ...fields in the seed table's
// order}, plus our optional `seq` on chunk) and writes
// JSON.stringify(msg) + "\n" per input line to stdout. No npm packages.
'use strict';
const ORDER = {
  request: ['kind', 'input', 'budget'],
  offer: ['sats_per_chunk', 'chunks_per_payment'],
  payment: ['token'],
  payment_ack: ['amount'],
  accepted: [],
  chunk: ['data'],
  pay_required: ['earned', 'next'],
  result: ['output', 'total_sats'],
  stop: [],
  error: ['message'],
};
const parts = [];
process.stdin.on('data', (b) => parts.push(b));
process.stdin.on('end', () => {
  const text = Buffer.concat(parts).toString('utf8');
  let out = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const m = JSON.parse(line);
    const o = { type: m.type, id: m.id };
    for (const k of ORDER[m.type]) o[k] = m[k];
    if (m.type === 'chunk' && m.seq !== undefined) o.seq = m.seq;
    out += JSON.stringify(o) + '\n';
  }
  process.stdout.write(out);
});
