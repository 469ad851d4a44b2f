import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { MemoryTransport, type Delivery } from '../../src/index.js';
import { waitUntil } from '../support/wait.js';

describe('memory transport: what a published message keeps', () => {
  test('a Buffer body is copied, not viewed: the publisher reusing it changes nothing delivered', async () => {
    const transport = new MemoryTransport();
    const seen: Delivery[] = [];
    await transport.subscribe('t.events', { group: 'g', prefetch: 4 }, (d) => void seen.push(d));
    const body = Buffer.from('{"n":1}');
    await transport.publish('t.events', [{ id: 'm-1', headers: { h: 'v' }, body }]);
    body.write('{"n":2}');
    await waitUntil(() => seen.length === 1, 'the delivery');
    const delivered = seen[0]!.message.body;
    assert.equal(Buffer.from(delivered).toString(), '{"n":1}');
    // A plain Uint8Array with an ArrayBuffer of its own, not a view of the publisher's memory.
    assert.equal(Object.getPrototypeOf(delivered), Uint8Array.prototype);
    assert.notEqual(delivered.buffer, body.buffer);
    assert.equal(delivered.byteLength, delivered.buffer.byteLength);
    await seen[0]!.ack();
    await transport.close();
  });
});
