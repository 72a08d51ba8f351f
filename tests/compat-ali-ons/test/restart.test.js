'use strict';

// Offsets committed by a clustering consumer are kept by the broker: after the consumer closes
// (committing its offsets) and the broker restarts, a new consumer of the same group resumes
// where the first stopped — it receives exactly the messages sent after that point.

const test = require('node:test');
const assert = require('node:assert/strict');
const { Cluster, waitFor } = require('../lib/cluster');
const { sendAll, recordingConsumer, assertNoFailures, newProducer, waitForAssignment, total, teardown } =
  require('../lib/workload');

const QUEUES = 4;

for (const signal of [ 'SIGTERM', 'SIGKILL' ]) {
  test(`a consumer resumes from its committed offsets after a broker restart (${signal})`, async t => {
    await resumesAfterRestart(t, signal);
  });
}

async function resumesAfterRestart(t, signal) {
  const TOPIC = `CompatRestartTopic${signal}`;
  const RUN_ID = `restart-${signal}-${process.pid}`;
  const cluster = new Cluster(`restart-${signal.toLowerCase()}`);
  const closers = [];
  t.after(() => teardown(closers, cluster));
  await cluster.start({ shards: 2 });
  await cluster.createTopic(TOPIC, QUEUES);
  const group = `cg-compat-restart-${signal.toLowerCase()}`;

  const before = recordingConsumer(cluster, { consumerGroup: group, instanceName: 'before-restart' }, TOPIC, RUN_ID);
  await before.consumer.ready();
  await waitForAssignment([ before.consumer ], TOPIC, QUEUES);
  let producer = await newProducer(cluster, 'pg-compat-restart');
  const firstHalf = [ ...Array(20).keys() ];
  await sendAll(producer, TOPIC, RUN_ID, firstHalf);
  await waitFor('the first consumer to receive the first half', () => before.received.size === firstHalf.length,
    { timeoutMs: 60000, check: () => assertNoFailures(before) });
  // close() commits the consumer's offsets to the broker before it unregisters.
  await before.consumer.close();
  await producer.close();
  // A crash loses what the broker had not written yet: wait (bounded) for the offsets on disk,
  // as a Java broker's would be after flushConsumerOffsetInterval.
  await waitFor('the committed offsets on disk',
    () => cluster.offsetsOnDisk(TOPIC, group) === firstHalf.length, { timeoutMs: 30000 });

  await cluster.restartBroker(signal);

  producer = await newProducer(cluster, 'pg-compat-restart-2');
  closers.push(() => producer.close());
  const secondHalf = [ ...Array(20).keys() ].map(i => i + 20);
  const after = recordingConsumer(cluster, { consumerGroup: group, instanceName: 'after-restart' }, TOPIC, RUN_ID);
  closers.push(() => after.consumer.close());
  await after.consumer.ready();
  await waitForAssignment([ after.consumer ], TOPIC, QUEUES);
  await sendAll(producer, TOPIC, RUN_ID, secondHalf);
  await waitFor('the second consumer to receive the second half',
    () => secondHalf.every(i => after.received.has(i)), { timeoutMs: 60000, check: () => assertNoFailures(after) });
  await new Promise(r => setTimeout(r, 1000));

  assert.deepEqual([ ...before.received.keys() ].sort((a, b) => a - b), firstHalf);
  assert.deepEqual([ ...after.received.keys() ].sort((a, b) => a - b), secondHalf,
    'the resumed consumer starts at the committed offsets: nothing from before the restart again');
  assert.equal(total(after.received), secondHalf.length);
  assert.deepEqual([ ...before.errors, ...after.errors ].map(e => e.message), []);
}
