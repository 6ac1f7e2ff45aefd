import type { IncomingMessage } from 'node:http';
import type { ContainerInfo, DockerOptions } from 'dockerode';
import { loadDockerode } from './docker-client.js';
import type { DockerEndpoint } from './docker-engine.js';

/** The two Engine API calls discovery makes: list the running containers, follow the events. */
export interface DockerApi {
  listContainers(filters: string, signal: AbortSignal): Promise<ContainerInfo[]>;
  /** The event stream; the caller reads it until it ends. */
  events(filters: string, signal: AbortSignal): Promise<IncomingMessage>;
  /** Closes idle and open connections. */
  close(): void;
}

/**
 * dockerode on the endpoint's connection. It loads only when a docker entry
 * is configured, and without the parts discovery never calls (docker-client.ts).
 */
export async function createDockerApi(endpoint: DockerEndpoint): Promise<DockerApi> {
  const Docker = loadDockerode();
  const o = endpoint.options;
  // docker-modem takes the http(s) Agent to use; its types leave `agent` out
  const options: DockerOptions & { agent: DockerEndpoint['options']['agent'] } =
    o.socketPath !== undefined
      ? { socketPath: o.socketPath, agent: o.agent }
      : { host: o.host, port: o.port, protocol: o.protocol, agent: o.agent, ...(o.ca ? { ca: o.ca } : {}), ...(o.cert ? { cert: o.cert } : {}), ...(o.key ? { key: o.key } : {}) };
  const docker = new Docker(options);
  return {
    listContainers: (filters, signal) => docker.listContainers({ filters, abortSignal: signal }),
    // docker-modem hands back the response itself: an IncomingMessage
    events: async (filters, signal) => (await docker.getEvents({ filters, abortSignal: signal })) as IncomingMessage,
    close() {
      o.agent.destroy();
    },
  };
}
