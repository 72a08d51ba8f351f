'use strict';

// Two broadcasting consumers (offsets kept client-side, never committed to the broker) each
// receive every message sent to a topic spread over both shards.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Cluster, waitFor } = require('../lib/cluster');
const { sendAll, recordingConsumer, assertNoFailures, newProducer, waitForAssignment, total, teardown } = require('../lib/workload');

const TOPIC = 'CompatBroadcastTopic';
const QUEUES = 4;
const MESSAGES = 40;
const RUN_ID = `bcast-${process.pid}`;

test('every broadcasting consumer receives every message', async t => {
  const cluster = new Cluster('broadcasting');
  const closers = [];
  t.after(() => teardown(closers, cluster));
  await cluster.start({ shards: 2 });
  await cluster.createTopic(TOPIC, QUEUES);

  const group = 'cg-compat-broadcast';
  const consumers = [ 'listener-1', 'listener-2' ].map(instanceName =>
    recordingConsumer(cluster, { consumerGroup: group, instanceName, isBroadcast: true }, TOPIC, RUN_ID));
  for (const c of consumers) closers.push(() => c.consumer.close());
  await Promise.all(consumers.map(c => c.consumer.ready()));
  // A broadcasting consumer owns every queue by itself.
  for (const c of consumers) await waitForAssignment([ c.consumer ], TOPIC, QUEUES);

  const producer = await newProducer(cluster, 'pg-compat-broadcast');
  closers.push(() => producer.close());
  const indexes = [ ...Array(MESSAGES).keys() ];
  await sendAll(producer, TOPIC, RUN_ID, indexes);

  for (const c of consumers) {
    await waitFor('a broadcasting consumer to receive every message', () => c.received.size === MESSAGES,
      { timeoutMs: 60000, check: () => assertNoFailures(...consumers) });
  }
  await new Promise(r => setTimeout(r, 1000));
  for (const c of consumers) {
    assert.deepEqual([ ...c.received.keys() ].sort((a, b) => a - b), indexes);
    assert.equal(total(c.received), MESSAGES, 'no message was delivered twice to one consumer');
    assert.deepEqual(c.errors.map(e => e.message), []);
  }
});
