'use strict';

// Starts a real ringmq name server and broker on 127.0.0.1 for one test file and stops them by
// PID. Binaries come from RINGMQ_BIN_DIR (default: the workspace's target/debug), which
// scripts/test.sh fills with `cargo build --workspace --bins` before this suite runs.

const fs = require('node:fs');
const os = require('node:os');
const net = require('node:net');
const path = require('node:path');
const { spawn } = require('node:child_process');

const HOST = '127.0.0.1';
const BIN_DIR = process.env.RINGMQ_BIN_DIR ||
  path.resolve(__dirname, '..', '..', '..', 'target', 'debug');

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, HOST, () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function portIsFree(port) {
  return new Promise(resolve => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

// The broker also listens on listenPort - 2 (RocketMQ's VIP port) and, per shard k, on its HA
// port listenPort + 1 + k, so all of them must be free.
async function freeBrokerPort(shards) {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await freePort();
    if (port <= 1026 || port + shards > 65535) continue;
    const others = [ port - 2 ];
    for (let k = 0; k < shards; k++) others.push(port + 1 + k);
    let free = true;
    for (const other of others) free = free && await portIsFree(other);
    if (free) return port;
  }
  throw new Error('no free ports for the broker (port, port - 2 and its HA ports)');
}

// Starts of a new broker on fresh ports: a port found free can be taken by another process (an
// outgoing connection's ephemeral port, say) before the broker binds it.
const BROKER_START_ATTEMPTS = 3;

// Polls `predicate` until it holds or `timeoutMs` passes. `check`, if given, runs first on every
// round and its error fails the wait at once (a wrong message fails the test with its own
// assertion, not after the timeout).
async function waitFor(description, predicate, { timeoutMs = 30000, intervalMs = 100, check } = {}) {
  const deadline = Date.now() + timeoutMs;
  let lastError;
  while (Date.now() < deadline) {
    if (check) check();
    try {
      if (await predicate()) return;
    } catch (err) {
      lastError = err;
    }
    await new Promise(r => setTimeout(r, intervalMs));
  }
  throw new Error(`gave up waiting for ${description}` + (lastError ? `: ${lastError.message}` : ''));
}

function startProcess(name, binary, args, logFile) {
  const out = fs.openSync(logFile, 'a');
  const child = spawn(path.join(BIN_DIR, binary), args, { stdio: [ 'ignore', out, out ] });
  fs.closeSync(out);
  child.on('error', err => { child.spawnError = err; });
  child.exitPromise = new Promise(resolve => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.label = name;
  return child;
}

async function stopProcess(child, signal = 'SIGTERM') {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  process.kill(child.pid, signal);
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, 10000);
  await child.exitPromise;
  clearTimeout(timer);
}

// One remoting request over a fresh socket, JSON-serialised as ali-ons itself would send it.
function remotingCall(port, code, extFields, body = Buffer.alloc(0)) {
  return new Promise((resolve, reject) => {
    const header = Buffer.from(JSON.stringify({
      code, extFields, flag: 0, language: 'JAVA', opaque: 1, serializeTypeCurrentRPC: 'JSON', version: 401,
    }));
    const frame = Buffer.alloc(8);
    frame.writeInt32BE(4 + header.length + body.length, 0);
    frame.writeInt32BE(header.length, 4);
    const socket = net.connect(port, HOST);
    let received = Buffer.alloc(0);
    socket.setTimeout(5000, () => socket.destroy(new Error(`request ${code} to port ${port} timed out`)));
    socket.on('error', reject);
    socket.on('data', chunk => {
      received = Buffer.concat([ received, chunk ]);
      if (received.length < 4) return;
      const length = received.readInt32BE(0);
      if (received.length < 4 + length) return;
      const headerLength = received.readInt32BE(4) & 0xffffff;
      const response = JSON.parse(received.subarray(8, 8 + headerLength).toString());
      response.body = received.subarray(8 + headerLength, 4 + length);
      socket.end();
      resolve(response);
    });
    socket.write(Buffer.concat([ frame, header, body ]));
  });
}

class Cluster {
  constructor(name) {
    this.name = name;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), `ringmq-compat-${name}-`));
    this.storeDir = path.join(this.dir, 'store');
    this.brokerName = 'broker-compat';
  }

  async start({ shards = 2 } = {}) {
    this.namesrvPort = await freePort();
    this.shards = shards;
    fs.writeFileSync(path.join(this.dir, 'namesrv.conf'), `listenPort=${this.namesrvPort}\n`);
    this.namesrv = startProcess('namesrv', 'ringmq-namesrv',
      [ '-c', path.join(this.dir, 'namesrv.conf') ], path.join(this.dir, 'namesrv.log'));
    await waitFor('the name server to answer', async () =>
      (await remotingCall(this.namesrvPort, 206, {})).code === 0);
    for (let attempt = 1; ; attempt++) {
      this.brokerPort = await freeBrokerPort(shards);
      this.writeBrokerConfig();
      try {
        await this.startBroker();
        return;
      } catch (err) {
        if (attempt >= BROKER_START_ATTEMPTS || !err.message.includes('already in use')) throw err;
        fs.rmSync(path.join(this.dir, 'broker.log'), { force: true });
      }
    }
  }

  writeBrokerConfig() {
    fs.writeFileSync(path.join(this.dir, 'broker.conf'), [
      'brokerClusterName=DefaultCluster',
      `brokerName=${this.brokerName}`,
      'brokerId=0',
      `namesrvAddr=${HOST}:${this.namesrvPort}`,
      `listenPort=${this.brokerPort}`,
      `brokerIP1=${HOST}`,
      `storePathRootDir=${this.storeDir}`,
      'flushDiskType=ASYNC_FLUSH',
      `ringmqCpus=${this.shards}`,
      // Small segments keep the test's disk footprint small.
      'mappedFileSizeCommitLog=67108864',
      // Offsets reach the disk quickly, so a kill -9 test can wait for them.
      'flushConsumerOffsetInterval=200',
      // SQL92 subscriptions, as a Java broker needs for them.
      'enablePropertyFilter=true',
      '',
    ].join('\n'));
  }

  // A broker that exits fails the wait at once; any failure carries both processes' logs (the
  // directory is removed with the cluster, so they would be lost otherwise).
  async startBroker() {
    const broker = startProcess('broker', 'ringmq-broker',
      [ '-c', path.join(this.dir, 'broker.conf') ], path.join(this.dir, 'broker.log'));
    this.broker = broker;
    const check = () => {
      if (broker.spawnError) throw broker.spawnError;
      if (broker.exitCode !== null || broker.signalCode !== null) {
        throw new Error(`the broker exited (code ${broker.exitCode}, signal ${broker.signalCode})`);
      }
    };
    try {
      await waitFor('the broker to register with the name server', async () => {
        const info = await remotingCall(this.namesrvPort, 106, {});
        return info.code === 0 && info.body.toString().includes(`${HOST}:${this.brokerPort}`);
      }, { check });
    } catch (err) {
      err.message += `\n${this.logs()}`;
      throw err;
    }
  }

  // SIGTERM stops the broker cleanly; SIGKILL is a crash (the store recovers at start).
  async restartBroker(signal = 'SIGTERM') {
    await stopProcess(this.broker, signal);
    await this.startBroker();
  }

  // The sum of `group`'s committed offsets on `topic` in the broker's offset files on disk (written
  // every flushConsumerOffsetInterval, which this cluster sets to 200 ms; one file per shard).
  offsetsOnDisk(topic, group) {
    const dir = path.join(this.storeDir, 'config');
    if (!fs.existsSync(dir)) return 0;
    let sum = 0;
    for (const name of fs.readdirSync(dir)) {
      if (!name.startsWith('consumerOffset') || !name.endsWith('.json')) continue;
      const table = JSON.parse(fs.readFileSync(path.join(dir, name), 'utf8')).offsetTable || {};
      for (const offset of Object.values(table[`${topic}@${group}`] || {})) sum += Number(offset);
    }
    return sum;
  }

  // ali-ons does not auto-create topics, so tests create them through the admin path
  // (UPDATE_AND_CREATE_TOPIC on the broker), then wait until the name server routes them.
  async createTopic(topic, queueNums) {
    const response = await remotingCall(this.brokerPort, 17, {
      topic, defaultTopic: 'TBW102', readQueueNums: String(queueNums), writeQueueNums: String(queueNums),
      perm: '6', topicFilterType: 'SINGLE_TAG', topicSysFlag: '0', order: 'false',
    });
    if (response.code !== 0) throw new Error(`create topic ${topic} failed: ${response.code} ${response.remark}`);
    await waitFor(`a route for ${topic}`, async () =>
      (await remotingCall(this.namesrvPort, 105, { topic })).code === 0);
  }

  clientOptions(extra) {
    return Object.assign({
      nameSrv: `${HOST}:${this.namesrvPort}`,
      // ali-ons asserts an http client exists; with nameSrv set it never uses it. This one
      // throws, so a test fails loudly if the client ever tries to reach the internet.
      httpclient: { request() { throw new Error('the compat suite never fetches name servers over HTTP'); } },
      clientIP: HOST,
    }, extra);
  }

  async stop() {
    await stopProcess(this.broker, 'SIGTERM');
    await stopProcess(this.namesrv, 'SIGTERM');
    if (process.env.RINGMQ_KEEP_COMPAT_DIRS) return;
    fs.rmSync(this.dir, { recursive: true, force: true });
  }

  logs() {
    const read = f => { try { return fs.readFileSync(path.join(this.dir, f), 'utf8'); } catch { return ''; } };
    return `--- namesrv.log\n${read('namesrv.log')}\n--- broker.log\n${read('broker.log')}`;
  }
}

module.exports = { Cluster, waitFor, remotingCall, HOST };
