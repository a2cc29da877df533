import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { clock } from "../../functions/core/common/clock.js";
import { AwsServiceError } from "../world/service-error.js";
import type { World } from "../world/world.js";
import { AccessPolicies } from "./access.js";
import { autoScalingOperations } from "./auto-scaling-operations.js";
import { codeDeployOperations } from "./codedeploy-operations.js";
import { dynamoDbOperations } from "./dynamodb-operations.js";
import { jsonError, toJsonValue } from "./json-protocol.js";
import type { Operation } from "./operation.js";
import { parseQueryParameters, queryError, queryResponse } from "./query-protocol.js";
import { sqsOperations } from "./sqs-operations.js";
import { ssmOperations } from "./ssm-operations.js";
import { ApiCounters, Traffic, type TrafficOptions } from "./traffic.js";

/** Header the sandbox runtime adds to the handlers' requests, so calls are counted per function. */
export const CALLER_HEADER = "x-agentfix-sandbox-caller";

interface JsonService {
  name: string;
  contentType: string;
  operations: Record<string, Operation>;
  /** How the service spells an error type on the wire (DynamoDB and SQS prefix a namespace). */
  errorType(code: string): string;
  throttle: { code: string; message: string };
  serverError: string;
}

const JSON_SERVICES: Record<string, JsonService> = {
  AmazonSSM: {
    name: "SSM",
    contentType: "application/x-amz-json-1.1",
    operations: ssmOperations,
    errorType: (code) => code,
    throttle: { code: "ThrottlingException", message: "Rate exceeded" },
    serverError: "InternalServerError",
  },
  CodeDeploy_20141006: {
    name: "CodeDeploy",
    contentType: "application/x-amz-json-1.1",
    operations: codeDeployOperations,
    errorType: (code) => code,
    throttle: { code: "ThrottlingException", message: "Rate exceeded" },
    serverError: "InternalFailure",
  },
  DynamoDB_20120810: {
    name: "DynamoDB",
    contentType: "application/x-amz-json-1.0",
    operations: dynamoDbOperations,
    errorType: (code) => `com.amazonaws.dynamodb.v20120810#${code}`,
    throttle: { code: "ThrottlingException", message: "Rate of requests exceeds the allowed throughput." },
    serverError: "InternalServerError",
  },
  AmazonSQS: {
    name: "SQS",
    contentType: "application/x-amz-json-1.0",
    operations: sqsOperations,
    errorType: (code) => `com.amazonaws.sqs#${code}`,
    throttle: { code: "RequestThrottled", message: "Request is throttled." },
    serverError: "InternalError",
  },
};

/** SQS (JSON, query-compatible) also names its legacy error code in a header. */
const SQS_QUERY_ERRORS: Record<string, string> = {
  QueueDoesNotExist: "AWS.SimpleQueueService.NonExistentQueue",
  TooManyEntriesInBatchRequest: "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
  BatchEntryIdsNotDistinct: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
  EmptyBatchRequest: "AWS.SimpleQueueService.EmptyBatchRequest",
};

export interface ServerOptions {
  port?: number;
  host?: string;
}

/**
 * One HTTP endpoint on 127.0.0.1 for every emulated service, dispatching by `X-Amz-Target` (JSON
 * protocols) or by the form's `Action` (Auto Scaling's Query protocol). It serves whichever world is
 * attached; the handlers' SDK clients keep one endpoint for the life of the process, so a process
 * keeps one server and attaches each new world to it.
 */
export class SandboxServer {
  readonly counters = new ApiCounters();
  traffic = new Traffic();
  /** What the callers' roles would refuse them (reset with each world). */
  access = new AccessPolicies();
  world?: World;
  private constructor(
    private readonly server: Server,
    readonly endpoint: string,
  ) {}

  static async start(options: ServerOptions = {}): Promise<SandboxServer> {
    let instance: SandboxServer | undefined;
    const server = createServer((request, response) => {
      instance!.handle(request, response).catch((error: unknown) => {
        instance?.world?.errors.push(error);
        if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain" });
        response.end(String(error));
      });
    });
    // Idle keep-alive connections of the SDK clients end soon, so a finished run lets the process exit.
    server.keepAliveTimeout = 1000;
    const host = options.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port ?? 0, host, () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    instance = new SandboxServer(server, `http://${host}:${port}`);
    return instance;
  }

  /** Serves `world` from now on, with fresh counters and the given throttling and faults. */
  attach(world: World, traffic: TrafficOptions = {}): void {
    this.world = world;
    world.endpoint = this.endpoint;
    this.traffic = new Traffic({ seed: world.options.seed, ...traffic });
    this.access = new AccessPolicies();
    this.counters.reset();
  }

  detach(): void {
    this.world = undefined;
  }

  /** Lets the process exit while the server listens (the shared server outlives each sandbox). */
  unref(): void {
    this.server.unref();
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of request) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString("utf8");
    const requestId = randomUUID();
    const caller = String(request.headers[CALLER_HEADER] ?? "external");
    const target = request.headers["x-amz-target"];
    if (typeof target === "string" && target.includes(".")) {
      const dot = target.lastIndexOf(".");
      const service = JSON_SERVICES[target.slice(0, dot)];
      const operationName = target.slice(dot + 1);
      if (!service) {
        this.sendJson(
          response,
          400,
          "application/x-amz-json-1.1",
          requestId,
          jsonError("UnknownOperationException", `Unknown target ${target}`),
        );
        return;
      }
      await this.handleJson(service, operationName, body, caller, requestId, response);
      return;
    }
    const { action, version, params } = parseQueryParameters(body);
    if (action && version === "2011-01-01") {
      await this.handleQuery(action, params, caller, requestId, response);
      return;
    }
    response.writeHead(400, { "content-type": "text/xml", "x-amzn-requestid": requestId });
    response.end(
      queryError(
        "Sender",
        "InvalidAction",
        `Could not find operation ${action || "(none)"} for version ${version || "(none)"}`,
        requestId,
      ),
    );
  }

  /** Applies latency, throttling and injected faults; returns the error to answer with, if any. */
  private async admit(operation: string, caller: string): Promise<"throttled" | "fault" | undefined> {
    this.counters.count(operation, caller);
    const latency = this.traffic.latencyMs(operation);
    if (latency > 0) await clock.sleep(latency);
    if (!this.traffic.admit(operation)) {
      this.counters.bump(this.counters.throttled, operation);
      return "throttled";
    }
    if (this.traffic.injectFault(operation)) {
      this.counters.bump(this.counters.faults, operation);
      return "fault";
    }
    return undefined;
  }

  private async handleJson(
    service: JsonService,
    operationName: string,
    body: string,
    caller: string,
    requestId: string,
    response: ServerResponse,
  ): Promise<void> {
    const operationKey = `${service.name}.${operationName}`;
    const send = (status: number, payload: string, headers: Record<string, string> = {}) =>
      this.sendJson(response, status, service.contentType, requestId, payload, headers);
    const operation = service.operations[operationName];
    const world = this.world;
    if (!operation || !world) {
      send(
        400,
        jsonError(
          service.errorType("UnknownOperationException"),
          `${operationKey} is not emulated by the sandbox`,
        ),
      );
      return;
    }
    const verdict = await this.admit(operationKey, caller);
    if (verdict === "throttled") {
      send(400, jsonError(service.errorType(service.throttle.code), service.throttle.message));
      return;
    }
    if (verdict === "fault") {
      send(
        500,
        jsonError(
          service.errorType(service.serverError),
          "An internal error occurred (injected by the sandbox).",
        ),
      );
      return;
    }
    let input: Record<string, unknown>;
    try {
      input = body.trim() === "" ? {} : (JSON.parse(body) as Record<string, unknown>);
    } catch {
      send(
        400,
        jsonError(
          service.errorType("SerializationException"),
          "Start of structure or map found where not expected.",
        ),
      );
      return;
    }
    try {
      const denied = this.access.check(caller, operationKey, input, world);
      if (denied) throw denied;
      const output = await operation(input, { world, requestId });
      send(200, JSON.stringify(toJsonValue(output ?? {})));
    } catch (error) {
      if (!(error instanceof AwsServiceError)) throw error;
      this.counters.bump(this.counters.errors, `${operationKey}:${error.code}`);
      const headers: Record<string, string> = {};
      const legacy = service.name === "SQS" ? SQS_QUERY_ERRORS[error.code] : undefined;
      if (legacy) headers["x-amzn-query-error"] = `${legacy};${error.fault}`;
      send(error.status, jsonError(service.errorType(error.code), error.message), headers);
    }
  }

  private async handleQuery(
    action: string,
    params: Record<string, unknown>,
    caller: string,
    requestId: string,
    response: ServerResponse,
  ): Promise<void> {
    const operationKey = `AutoScaling.${action}`;
    const send = (status: number, xml: string) => {
      response.writeHead(status, { "content-type": "text/xml", "x-amzn-requestid": requestId });
      response.end(xml);
    };
    const operation = autoScalingOperations[action];
    const world = this.world;
    if (!operation || !world) {
      send(
        400,
        queryError(
          "Sender",
          "InvalidAction",
          `Could not find operation ${action} for version 2011-01-01`,
          requestId,
        ),
      );
      return;
    }
    const verdict = await this.admit(operationKey, caller);
    if (verdict === "throttled") {
      send(400, queryError("Sender", "Throttling", "Rate exceeded", requestId));
      return;
    }
    if (verdict === "fault") {
      send(
        500,
        queryError(
          "Receiver",
          "InternalFailure",
          "An internal error occurred (injected by the sandbox).",
          requestId,
        ),
      );
      return;
    }
    try {
      const output = (await operation(params, { world, requestId })) as Record<string, unknown> | undefined;
      send(200, queryResponse(action, output, requestId));
    } catch (error) {
      if (!(error instanceof AwsServiceError)) throw error;
      this.counters.bump(this.counters.errors, `${operationKey}:${error.code}`);
      send(error.status, queryError(error.fault, error.code, error.message, requestId));
    }
  }

  private sendJson(
    response: ServerResponse,
    status: number,
    contentType: string,
    requestId: string,
    payload: string,
    headers: Record<string, string> = {},
  ): void {
    response.writeHead(status, {
      "content-type": contentType,
      "x-amzn-requestid": requestId,
      "content-length": Buffer.byteLength(payload),
      ...headers,
    });
    response.end(payload);
  }
}
