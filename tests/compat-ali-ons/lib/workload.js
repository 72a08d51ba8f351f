'use strict';

// Messages the suite sends and the checks on what consumers receive. Every message carries a
// distinct body, a tag, two keys and user properties, so a consumer can verify each one arrived
// exactly as sent.

const assert = require('node:assert/strict');
const { Producer, Consumer, Message } = require('ali-ons');
const { waitFor } = require('./cluster');

// Bodies of three kinds: text; binary (every byte value, which must survive untouched); and text
// over 4 KiB, which ali-ons compresses (sysFlag COMPRESSED) and the consumer must inflate.
const LARGE_BODY_BYTES = 6000;

function bodyFor(runId, index) {
  const text = `body ${runId} #${index} ✓`;
  if (index % 8 === 3) {
    const bytes = Buffer.alloc(512);
    for (let i = 0; i < bytes.length; i++) bytes[i] = i % 256;
    return Buffer.concat([ bytes, Buffer.from(text) ]);
  }
  if (index % 8 === 5) return Buffer.from(text.padEnd(LARGE_BODY_BYTES, '.'));
  return Buffer.from(text);
}

function messageFor(topic, runId, index) {
  const tag = index % 2 === 0 ? 'TagA' : 'TagB';
  const msg = new Message(topic, tag, bodyFor(runId, index));
  msg.keys = [ `key-${runId}-${index}`, `order-${index}` ];
  msg.properties.runId = runId;
  msg.properties.index = String(index);
  msg.properties.note = 'spaces, ünïcödé and = signs';
  return msg;
}

async function sendAll(producer, topic, runId, indexes) {
  const results = [];
  for (const index of indexes) {
    const result = await producer.send(messageFor(topic, runId, index));
    assert.equal(result.sendStatus, 'SEND_OK', `send #${index}: ${JSON.stringify(result)}`);
    results.push(result);
  }
  return results;
}

// Checks one received message against what messageFor() built and returns its index.
function checkReceived(msg, topic, runId) {
  assert.equal(msg.topic, topic);
  const index = Number(msg.properties.index);
  assert.ok(Number.isInteger(index), `message without an index property: ${JSON.stringify(msg.properties)}`);
  assert.equal(msg.properties.runId, runId);
  assert.ok(Buffer.from(msg.body).equals(bodyFor(runId, index)), `body of #${index} differs`);
  assert.equal(msg.tags, index % 2 === 0 ? 'TagA' : 'TagB');
  assert.equal(msg.keys, `key-${runId}-${index} order-${index}`);
  assert.equal(msg.properties.note, 'spaces, ünïcödé and = signs');
  return index;
}

const NEW_GROUP_OFFSET = /READ_FROM_STORE Not found, V3_0_6_SNAPSHOT maybe this group consumer boot first/;

// A consumer that records, per index, how many times it received each message.
function recordingConsumer(cluster, options, topic, runId, expression = '*') {
  const consumer = new Consumer(cluster.clientOptions(options));
  const received = new Map();
  // The message id each index arrived with, to compare with the producer's send result.
  const msgIds = new Map();
  // A message that fails checkReceived is recorded here (throwing would only make ali-ons
  // redeliver it); tests pass `check: () => assertNoFailures(...)` to waitFor to fail at once.
  const failures = [];
  const errors = [];
  consumer.on('error', err => {
    // A group with no committed offset gets QUERY_NOT_FOUND (22) from QUERY_CONSUMER_OFFSET, as
    // on a Java broker; ali-ons handles it (starts from the queue's end) but still emits it as an
    // 'error' event. Every other error fails the test.
    if (!NEW_GROUP_OFFSET.test(err.message)) errors.push(err);
  });
  consumer.subscribe(topic, expression, async msg => {
    let index;
    try {
      index = checkReceived(msg, topic, runId);
    } catch (err) {
      failures.push(err);
      return;
    }
    received.set(index, (received.get(index) || 0) + 1);
    msgIds.set(index, msg.msgId);
  });
  return { consumer, received, msgIds, failures, errors };
}

// Throws the first message check that failed in any of `recorders`.
function assertNoFailures(...recorders) {
  for (const r of recorders) if (r.failures.length) throw r.failures[0];
}

async function newProducer(cluster, group) {
  const producer = new Producer(cluster.clientOptions({ producerGroup: group, instanceName: `${group}-producer` }));
  await producer.ready();
  return producer;
}

// Waits until the consumers between them own every queue of the topic, each at least one, so
// messages sent afterwards are neither missed (consume from last offset) nor moved mid-test.
async function waitForAssignment(consumers, topic, queueNums) {
  await waitFor(`consumers to split ${queueNums} queues of ${topic}`, () => {
    const owned = consumers.map(c => [ ...c.processQueueTable.values() ]
      .filter(item => item.messageQueue.topic === topic).length);
    return owned.every(n => n > 0) && owned.reduce((a, b) => a + b, 0) === queueNums;
  }, { timeoutMs: 60000, intervalMs: 200 });
}

function total(received) {
  let sum = 0;
  for (const n of received.values()) sum += n;
  return sum;
}

// ali-ons creates one process-wide inner producer (group CLIENT_INNER_PRODUCER) the first time a
// producer or consumer starts, and nothing closes it, so its timers would keep the test process
// alive after the cluster stops. Close it after every client of the test file has closed.
async function closeInnerProducer() {
  const MQProducer = require('ali-ons/lib/producer/mq_producer');
  const inner = MQProducer.defaultProducer;
  MQProducer.defaultProducer = null;
  if (inner) await inner.close();
}

// Closes clients newest first, then the inner producer, then stops the cluster. Errors from
// closing are collected and reported after everything has been stopped.
async function teardown(closers, cluster) {
  const errors = [];
  for (const close of closers.reverse()) await close().catch(err => errors.push(err));
  await closeInnerProducer().catch(err => errors.push(err));
  await cluster.stop();
  if (errors.length) throw new Error(`closing clients failed: ${errors.map(e => e.message).join('; ')}`);
}

module.exports = {
  teardown,
  messageFor, sendAll, checkReceived, recordingConsumer, assertNoFailures, newProducer, waitForAssignment, total,
  Consumer,
};
