// The connection to the NATS server and the JetStream pieces both sides use: a work-queue stream of
// jobs (one durable pull consumer per role, explicit ack, ack_wait = job_timeout_s, max_deliver),
// a stream of results (file storage, dedupe by job id), an object store of policies and a KV bucket
// holding the current policy version. Publishing retries while the server is away (a restart).
import { createHash } from 'node:crypto';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { UserError } from '../errors.ts';
import { connectOptions, redactUrl, type ClusterSettings } from './config.ts';
import { JOBS_STREAM, POLICY_BUCKET, RESULTS_STREAM, ROLES, STATE_BUCKET, subjects, type Role } from './protocol.ts';

export type Bus = { nc: NatsConnection; js: JetStreamClient; jsm: JetStreamManager; kv: KV; os: ObjectStore; settings: ClusterSettings };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nanos = (s: number) => Math.round(s * 1e9);

export const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Connects and makes sure the streams, consumers and buckets exist (idempotent). The trainer
 * (`owner`) sets the consumers' ack_wait and max_deliver from its settings; a worker only creates
 * them when missing. */
export async function openBus(settings: ClusterSettings, name: string, owner = false): Promise<Bus> {
  let nc: NatsConnection;
  try {
    nc = await connect(connectOptions(settings, name));
  } catch (err) {
    throw new UserError(`cannot reach the cluster at ${redactUrl(settings.url)}: ${(err as Error).message}`, 1);
  }
  const jsm = await retry(() => jetstreamManager(nc), 'JetStream');
  const js = jetstream(nc);
  await ensureStream(jsm, {
    name: JOBS_STREAM,
    subjects: ['r1.jobs.>'],
    retention: RetentionPolicy.Workqueue,
    storage: StorageType.File,
    duplicate_window: nanos(120),
  });
  await ensureStream(jsm, {
    name: RESULTS_STREAM,
    subjects: ['r1.results.>'],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(3600),
    duplicate_window: nanos(600),
  });
  for (const role of ROLES) {
    const config = {
      durable_name: role,
      filter_subject: subjects.job(role),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(settings.jobTimeoutS),
      max_deliver: settings.maxDeliver,
      deliver_policy: DeliverPolicy.All,
      max_ack_pending: 1000,
    };
    const exists = await jsm.consumers.info(JOBS_STREAM, role).then(
      () => true,
      () => false,
    );
    // Only the trainer sets a consumer's timings (before 2.10 the server updates a durable on add).
    if (!exists) await jsm.consumers.add(JOBS_STREAM, config);
    else if (owner) await jsm.consumers.update(JOBS_STREAM, role, { ack_wait: config.ack_wait, max_deliver: config.max_deliver });
  }
  const kv = await new Kvm(js).create(STATE_BUCKET, { history: 1, storage: StorageType.File });
  const os = await new Objm(js).create(POLICY_BUCKET, { storage: StorageType.File });
  return { nc, js, jsm, kv, os, settings };
}

async function ensureStream(jsm: JetStreamManager, cfg: Parameters<JetStreamManager['streams']['add']>[0]): Promise<void> {
  try {
    await jsm.streams.info(cfg.name!);
  } catch {
    await jsm.streams.add(cfg);
  }
}

/** Retries `f` while the server is away (every 250 ms, up to `seconds`), then throws its last error. */
export async function retry<T>(f: () => Promise<T>, what: string, seconds = 120): Promise<T> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`${what}: ${(err as Error).message} (retried for ${seconds} s)`, { cause: err });
      await sleep(250);
    }
  }
}

/** Publishes into a stream with a message id (the stream drops a repeat), retrying through a restart. */
export async function publishDurable(bus: Bus, subject: string, data: Uint8Array, msgID: string): Promise<void> {
  await retry(() => bus.js.publish(subject, data, { msgID, timeout: 5000 }), `publish ${subject}`);
}

export type { Role };
