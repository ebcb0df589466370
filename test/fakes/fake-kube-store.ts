import { randomBytes, randomUUID } from "node:crypto";
import { FakePod, type FakeKubelet, type PullFailure } from "./fake-kube-pod.js";
import { failureStatus, jobCauses, matches, secretCauses, successStatus, type JobBody, type KubeStatus, type SecretBody } from "./fake-kube-objects.js";

type Reply = { status: number; body: KubeStatus | Record<string, unknown> | string };
type Requirements = Parameters<typeof matches>[0];

/** One Job in the fake: the object as created (plus server defaults) and the pod its controller made. */
export class FakeJob {
  readonly uid = randomUUID();
  readonly createdAt = new Date();
  pod: FakePod | undefined;
  deletionTimestamp: Date | undefined;
  /** For fixtures with no pod: a terminal condition to report. */
  fixedCondition: "Complete" | "Failed" | undefined;

  constructor(
    readonly namespace: string,
    readonly name: string,
    readonly body: JobBody,
    private readonly resourceVersion: () => string,
  ) {}

  get labels(): Record<string, string> {
    return this.body.metadata.labels ?? {};
  }

  /** The Job as GET/LIST answer it, its status derived from its pod. */
  resource(): Record<string, unknown> {
    const phase = this.pod?.phase;
    const at = new Date().toISOString();
    const terminal = this.fixedCondition ?? (phase === "Succeeded" ? "Complete" : phase === "Failed" ? "Failed" : undefined);
    const status: Record<string, unknown> = { startTime: this.createdAt.toISOString() };
    if (phase === "Pending" || phase === "Running") Object.assign(status, { active: 1, ready: phase === "Running" ? 1 : 0 });
    if (terminal === "Complete") Object.assign(status, { succeeded: 1, completionTime: at, conditions: [{ type: "Complete", status: "True", lastTransitionTime: at }] });
    if (terminal === "Failed") {
      Object.assign(status, {
        failed: 1,
        conditions: [
          { type: "FailureTarget", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: at },
          { type: "Failed", status: "True", reason: "BackoffLimitExceeded", message: "Job has reached the specified backoff limit", lastTransitionTime: at },
        ],
      });
    }
    return {
      apiVersion: "batch/v1",
      kind: "Job",
      metadata: {
        ...this.body.metadata,
        namespace: this.namespace,
        uid: this.uid,
        resourceVersion: this.resourceVersion(),
        generation: 1,
        creationTimestamp: this.createdAt.toISOString(),
        ...(this.deletionTimestamp ? { deletionTimestamp: this.deletionTimestamp.toISOString(), finalizers: ["foregroundDeletion"] } : {}),
      },
      spec: this.body.spec,
      status,
    };
  }
}

export interface StoredSecret {
  namespace: string;
  name: string;
  uid: string;
  body: SecretBody;
  data: Record<string, Buffer>;
}

/**
 * The fake API server's objects, its job controller (one pod per Job, or a
 * FailedCreate event) and its garbage collector (a Job's pod and owned
 * Secrets go with it; a Secret whose owner does not exist is collected too).
 */
export class FakeKubeStore {
  readonly jobs = new Map<string, FakeJob>();
  readonly secrets = new Map<string, StoredSecret>();
  readonly events: Record<string, unknown>[] = [];
  readonly pullFailures: PullFailure[] = [];
  readonly podRefusals: string[] = [];
  /** Scheduler messages for the next pods, which then stay Pending (Unschedulable). */
  readonly unschedulable: string[] = [];
  /** Commands the next pods' containers run instead of the worker. */
  readonly containerOverrides: (readonly string[])[] = [];
  /** Every Job deletion with its propagation policy, and every Secret deleted (by the API or the GC). */
  readonly deletedJobs: { name: string; propagationPolicy: string }[] = [];
  readonly deletedSecrets: { name: string; by: "api" | "gc" }[] = [];
  private readonly orphanedPods = new Set<FakePod>();
  private readonly terminating = new Set<Promise<void>>();
  private readonly waiters = new Set<() => void>();
  private version = 1;
  private readonly kubelet: FakeKubelet;

  constructor(
    readonly namespaces: ReadonlySet<string>,
    kubelet: Omit<FakeKubelet, "secretData" | "changed">,
    private readonly onChange: () => void,
  ) {
    this.kubelet = { ...kubelet, secretData: (name, cancelled) => this.whenSecret(name, cancelled), changed: () => this.changed() };
  }

  resourceVersion(): string {
    return String(this.version);
  }

  jobNamed(name: string): FakeJob | undefined {
    return [...this.jobs.values()].find((job) => job.name === name);
  }

  secretNamed(name: string): StoredSecret | undefined {
    return [...this.secrets.values()].find((secret) => secret.name === name);
  }

  createJob(namespace: string, raw: unknown): Reply {
    const body = raw as JobBody;
    if (typeof raw !== "object" || raw === null || typeof body.metadata !== "object") return { status: 400, body: failureStatus(400, "BadRequest", "the body of the request was in an unknown format") };
    if (body.metadata.namespace && body.metadata.namespace !== namespace) {
      return { status: 400, body: failureStatus(400, "BadRequest", "the namespace of the provided object does not match the namespace sent on the request") };
    }
    const causes = jobCauses(body);
    if (causes.length > 0) {
      return { status: 422, body: failureStatus(422, "Invalid", `Job.batch "${body.metadata.name ?? ""}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`, { name: body.metadata.name, group: "batch", kind: "Job", causes }) };
    }
    const name = body.metadata.name ?? "";
    if (this.jobs.has(`${namespace}/${name}`)) return { status: 409, body: failureStatus(409, "AlreadyExists", `jobs.batch "${name}" already exists`, { name, group: "batch", kind: "jobs" }) };
    const job = new FakeJob(namespace, name, structuredClone(body), () => this.resourceVersion());
    // Server defaults (1.27+): the pod template carries the Job's name and uid.
    const defaults = { "batch.kubernetes.io/controller-uid": job.uid, "batch.kubernetes.io/job-name": name, "controller-uid": job.uid, "job-name": name };
    const template = (job.body.spec ??= {}).template ?? {};
    template.metadata = { ...template.metadata, labels: { ...template.metadata?.labels, ...defaults } };
    job.body.spec.selector = { matchLabels: { "batch.kubernetes.io/controller-uid": job.uid } };
    this.jobs.set(`${namespace}/${name}`, job);
    setImmediate(() => this.runJobController(job));
    this.changed();
    return { status: 201, body: job.resource() };
  }

  /** A Job this fake's API did not create (a previous orchestrator's orphan): no pod. */
  addJob(namespace: string, name: string, labels: Record<string, string>, condition?: "Complete" | "Failed"): FakeJob {
    const job = new FakeJob(namespace, name, { apiVersion: "batch/v1", kind: "Job", metadata: { name, labels }, spec: {} }, () => this.resourceVersion());
    job.fixedCondition = condition;
    this.jobs.set(`${namespace}/${name}`, job);
    return job;
  }

  getJob(namespace: string, name: string): Reply {
    const job = this.jobs.get(`${namespace}/${name}`);
    return job ? { status: 200, body: job.resource() } : notFound("jobs.batch", name, "batch", "jobs");
  }

  listJobs(namespace: string, labels: Requirements): FakeJob[] {
    return [...this.jobs.values()].filter((job) => job.namespace === namespace && matches(labels, job.labels));
  }

  deleteJob(namespace: string, name: string, propagationPolicy: string): Reply {
    const job = this.jobs.get(`${namespace}/${name}`);
    if (!job) return notFound("jobs.batch", name, "batch", "jobs");
    this.deletedJobs.push({ name, propagationPolicy });
    const pod = job.pod;
    if (propagationPolicy === "Orphan") {
      if (pod) this.orphanedPods.add(pod);
      this.removeJob(job);
      return { status: 200, body: successStatus(name, "batch", "jobs", job.uid) };
    }
    const podGone = this.track(pod ? pod.delete() : Promise.resolve());
    if (propagationPolicy === "Foreground") {
      job.deletionTimestamp = new Date();
      void podGone.then(() => this.removeJob(job));
      this.changed();
      return { status: 200, body: job.resource() };
    }
    this.removeJob(job);
    return { status: 200, body: successStatus(name, "batch", "jobs", job.uid) };
  }

  listPods(namespace: string, labels: Requirements): FakePod[] {
    return this.allPods().filter((pod) => pod.namespace === namespace && matches(labels, pod.labels));
  }

  podLog(namespace: string, name: string, tailLines: number): Reply {
    const pod = this.allPods().find((candidate) => candidate.namespace === namespace && candidate.name === name);
    if (!pod) return notFound("pods", name, "", "pods");
    if (!pod.startedAt) return { status: 400, body: failureStatus(400, "BadRequest", `container "${pod.spec.containers?.[0]?.name ?? ""}" in pod "${name}" is waiting to start: ${pod.waiting?.reason ?? "ContainerCreating"}`) };
    const lines = tailLines > 0 ? pod.log.slice(-tailLines) : pod.log;
    return { status: 200, body: lines.map((line) => `${line}\n`).join("") };
  }

  createSecret(namespace: string, raw: unknown): Reply {
    const body = raw as SecretBody;
    if (typeof raw !== "object" || raw === null || typeof body.metadata !== "object") return { status: 400, body: failureStatus(400, "BadRequest", "the body of the request was in an unknown format") };
    const causes = secretCauses(body);
    const name = body.metadata.name ?? "";
    if (causes.length > 0) return { status: 422, body: failureStatus(422, "Invalid", `Secret "${name}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(", ")}`, { name, kind: "Secret", causes }) };
    if (this.secrets.has(`${namespace}/${name}`)) return { status: 409, body: failureStatus(409, "AlreadyExists", `secrets "${name}" already exists`, { name, kind: "secrets" }) };
    const data: Record<string, Buffer> = {};
    for (const [key, value] of Object.entries(body.data ?? {})) data[key] = Buffer.from(value, "base64");
    for (const [key, value] of Object.entries(body.stringData ?? {})) data[key] = Buffer.from(value, "utf8");
    const secret: StoredSecret = { namespace, name, uid: randomUUID(), body: structuredClone(body), data };
    this.secrets.set(`${namespace}/${name}`, secret);
    // The garbage collector removes a dependent whose owner does not exist (a wrong uid, say).
    const owners = body.metadata.ownerReferences ?? [];
    if (owners.length > 0 && !owners.some((owner) => [...this.jobs.values()].some((job) => job.uid === owner.uid && job.name === owner.name))) {
      setTimeout(() => this.collectSecret(secret), 100).unref();
    }
    this.changed();
    return { status: 201, body: { apiVersion: "v1", kind: "Secret", ...secret.body, metadata: { ...secret.body.metadata, namespace, uid: secret.uid } } };
  }

  deleteSecret(namespace: string, name: string): Reply {
    const secret = this.secrets.get(`${namespace}/${name}`);
    if (!secret) return notFound("secrets", name, "", "secrets");
    this.secrets.delete(`${namespace}/${name}`);
    this.deletedSecrets.push({ name, by: "api" });
    this.changed();
    return { status: 200, body: successStatus(name, "", "secrets", secret.uid) };
  }

  listEvents(namespace: string, fields: Requirements): Record<string, unknown>[] {
    return this.events.filter((event) => {
      const involved = event.involvedObject as { kind: string; name: string };
      return (event.metadata as { namespace: string }).namespace === namespace && matches(fields, { "involvedObject.kind": involved.kind, "involvedObject.name": involved.name, reason: String(event.reason) });
    });
  }

  /** Every pod's processes gone (fake shutdown). */
  async deleteAllPods(): Promise<void> {
    const deletions = this.allPods().map((pod) => pod.delete());
    this.changed(); // wakes pods still waiting for a Secret
    await Promise.all([...deletions, ...this.terminating]);
  }

  private allPods(): FakePod[] {
    const pods = [...this.jobs.values()].map((job) => job.pod).filter((pod): pod is FakePod => pod !== undefined);
    return [...pods, ...this.orphanedPods];
  }

  private runJobController(job: FakeJob): void {
    if (this.jobs.get(`${job.namespace}/${job.name}`) !== job) return;
    const podName = `${job.name}-${randomBytes(4).toString("hex").slice(0, 5)}`;
    const refusal = this.podRefusals.shift();
    if (refusal !== undefined) {
      this.event(job, "Warning", "FailedCreate", `Error creating: pods "${podName}" is forbidden: ${refusal}`);
      return;
    }
    const template = job.body.spec?.template;
    job.pod = new FakePod(podName, job.namespace, template?.metadata?.labels ?? {}, template?.spec ?? {}, { name: job.name, uid: job.uid }, this.kubelet);
    this.event(job, "Normal", "SuccessfulCreate", `Created pod: ${podName}`);
    const unschedulable = this.unschedulable.shift();
    if (unschedulable !== undefined) job.pod.unschedulable = unschedulable;
    else void job.pod.run(this.pullFailures.shift(), this.containerOverrides.shift());
  }

  private event(job: FakeJob, type: string, reason: string, message: string): void {
    const at = new Date().toISOString();
    this.events.push({
      metadata: { name: `${job.name}.${randomBytes(8).toString("hex")}`, namespace: job.namespace },
      involvedObject: { kind: "Job", namespace: job.namespace, name: job.name, uid: job.uid, apiVersion: "batch/v1" },
      type,
      reason,
      message,
      source: { component: "job-controller" },
      firstTimestamp: at,
      lastTimestamp: at,
      count: 1,
    });
    this.changed();
  }

  private removeJob(job: FakeJob): void {
    this.jobs.delete(`${job.namespace}/${job.name}`);
    for (const secret of [...this.secrets.values()]) {
      if (secret.body.metadata.ownerReferences?.some((owner) => owner.uid === job.uid)) this.collectSecret(secret);
    }
    this.changed();
  }

  private collectSecret(secret: StoredSecret): void {
    if (this.secrets.get(`${secret.namespace}/${secret.name}`) !== secret) return;
    this.secrets.delete(`${secret.namespace}/${secret.name}`);
    this.deletedSecrets.push({ name: secret.name, by: "gc" });
    this.changed();
  }

  private whenSecret(name: string, cancelled: () => boolean): Promise<Record<string, Buffer> | undefined> {
    return new Promise((resolve) => {
      const check = (): void => {
        const secret = this.secretNamed(name);
        if (!secret && !cancelled()) return;
        this.waiters.delete(check);
        resolve(cancelled() ? undefined : secret?.data);
      };
      this.waiters.add(check);
      check();
    });
  }

  private track(promise: Promise<void>): Promise<void> {
    this.terminating.add(promise);
    void promise.finally(() => this.terminating.delete(promise));
    return promise;
  }

  private changed(): void {
    this.version += 1;
    for (const waiter of [...this.waiters]) waiter();
    this.onChange();
  }
}

function notFound(what: string, name: string, group: string, kind: string): Reply {
  return { status: 404, body: failureStatus(404, "NotFound", `${what} "${name}" not found`, { name, group, kind }) };
}
