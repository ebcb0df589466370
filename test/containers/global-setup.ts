import Docker from "dockerode";
import { CONTAINER_RUN_ENV, DOCKER_SOCKET, IMAGES, leftoverContainers, removeContainers } from "./docker-helpers.js";

/**
 * Checks that an engine answers and the images exist, gives this run an id
 * (test orchestrators label their containers `tether.orchestrator=it-<run id>-...`),
 * and at the end fails the run if any container of it is left.
 */
export default async function setup(): Promise<() => Promise<void>> {
  const docker = new Docker({ socketPath: DOCKER_SOCKET });
  try {
    await docker.ping();
  } catch (error) {
    throw new Error(`No Docker engine answers on ${DOCKER_SOCKET} (${(error as Error).message}): run infra/dev/container-engine.sh first.`);
  }
  for (const image of Object.values(IMAGES)) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      throw new Error(`Image ${image} is missing: run infra/dev/build-images.sh (npm run test:containers does).`);
    }
  }
  const runId = Date.now().toString(36);
  process.env[CONTAINER_RUN_ENV] = runId;

  return async () => {
    const left = await leftoverContainers(docker, runId);
    if (left.length > 0) {
      await removeContainers(docker, left);
      process.exitCode = 1;
      throw new Error(`${left.length} container(s) of this test run were still there after the last test (removed now): ${left.map((c) => `${c.Names.join(",")} ${JSON.stringify(c.Labels)}`).join("; ")}`);
    }
  };
}
