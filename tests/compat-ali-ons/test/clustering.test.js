'use strict';

// ali-ons producer and two push consumers of one group against a two-shard broker: the
// consumers share the queues (client-side rebalance) and together receive every message exactly
// once with body, tag, keys and properties intact. A third group subscribes to one tag only, a
// fourth with an SQL92 expression over a user property (ali-ons' { expressionType, subString }).

const test = require('node:test');
const assert = require('node:assert/strict');
const { Cluster, waitFor } = require('../lib/cluster');
const { sendAll, recordingConsumer, assertNoFailures, newProducer, waitForAssignment, total, teardown } =
  require('../lib/workload');

const TOPIC = 'CompatClusterTopic';
const QUEUES = 8;
const MESSAGES = 64;
const RUN_ID = `run-${process.pid}`;
// The SQL92 group takes the messages whose `index` property is below this.
const SQL_BELOW = 16;

test('two consumers in one group share the queues and receive every message once', async t => {
  const cluster = new Cluster('clustering');
  const closers = [];
  t.after(() => teardown(closers, cluster));
  await cluster.start({ shards: 2 });
  await cluster.createTopic(TOPIC, QUEUES);

  const group = 'cg-compat-cluster';
  const first = recordingConsumer(cluster, { consumerGroup: group, instanceName: 'consumer-1' }, TOPIC, RUN_ID);
  const second = recordingConsumer(cluster, { consumerGroup: group, instanceName: 'consumer-2' }, TOPIC, RUN_ID);
  const tagOnly = recordingConsumer(cluster, { consumerGroup: 'cg-compat-tag', instanceName: 'consumer-tag' },
    TOPIC, RUN_ID, 'TagA');
  const sqlOnly = recordingConsumer(cluster, { consumerGroup: 'cg-compat-sql', instanceName: 'consumer-sql' },
    TOPIC, RUN_ID, { expressionType: 'SQL92', subString: `index < ${SQL_BELOW}` });
  for (const c of [ first, second, tagOnly, sqlOnly ]) closers.push(() => c.consumer.close());
  await Promise.all([ first, second, tagOnly, sqlOnly ].map(c => c.consumer.ready()));
  await waitForAssignment([ first.consumer, second.consumer ], TOPIC, QUEUES);
  await waitForAssignment([ tagOnly.consumer ], TOPIC, QUEUES);
  await waitForAssignment([ sqlOnly.consumer ], TOPIC, QUEUES);

  const producer = await newProducer(cluster, 'pg-compat-cluster');
  closers.push(() => producer.close());
  const indexes = [ ...Array(MESSAGES).keys() ];
  const results = await sendAll(producer, TOPIC, RUN_ID, indexes);
  const queuesUsed = new Set(results.map(r => r.messageQueue.queueId));
  assert.equal(queuesUsed.size, QUEUES, 'the producer spreads messages over every queue');

  const together = () => {
    const merged = new Map(first.received);
    for (const [ index, n ] of second.received) merged.set(index, (merged.get(index) || 0) + n);
    return merged;
  };
  const check = () => assertNoFailures(first, second, tagOnly, sqlOnly);
  await waitFor('both consumers to receive every message', () => together().size === MESSAGES,
    { timeoutMs: 60000, check });
  await waitFor('the tag-filtered consumer to receive every TagA message',
    () => tagOnly.received.size === MESSAGES / 2, { timeoutMs: 60000, check });
  await waitFor('the SQL92 consumer to receive every message its expression selects',
    () => sqlOnly.received.size === SQL_BELOW, { timeoutMs: 60000, check });

  // Anything delivered twice shows up as a count above 1; give stragglers a moment to arrive.
  await new Promise(r => setTimeout(r, 1500));
  const merged = together();
  assert.deepEqual([ ...merged.keys() ].sort((a, b) => a - b), indexes);
  assert.equal(total(merged), MESSAGES, 'no message was delivered twice');
  assert.ok(first.received.size > 0 && second.received.size > 0, 'both consumers took part');
  assert.deepEqual([ ...tagOnly.received.keys() ].sort((a, b) => a - b), indexes.filter(i => i % 2 === 0));
  assert.equal(total(tagOnly.received), MESSAGES / 2);
  assert.deepEqual([ ...sqlOnly.received.keys() ].sort((a, b) => a - b), indexes.filter(i => i < SQL_BELOW));
  assert.equal(total(sqlOnly.received), SQL_BELOW, 'the SQL92 group got each selected message once');
  assert.deepEqual([ ...first.errors, ...second.errors, ...tagOnly.errors, ...sqlOnly.errors ].map(e => e.message), []);
  check();
  // Each message arrives with the id its send result named.
  const receivedIds = new Map([ ...first.msgIds, ...second.msgIds ]);
  results.forEach((result, index) =>
    assert.equal(receivedIds.get(index), result.msgId, `message id of #${index}`));
});
