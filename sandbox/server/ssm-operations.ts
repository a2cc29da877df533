import type { Instance } from "../world/instances.js";
import { AwsServiceError, constraintViolation } from "../world/service-error.js";
import type { DocumentInfo } from "../world/ssm/document-store.js";
import type { Command, Invocation, PluginResult, SendCommandInput } from "../world/ssm/records.js";
import type { World } from "../world/world.js";
import { asBoolean, asNumber, asRecords, asString, asStrings, type Operation } from "./operation.js";
import { paginate } from "./paginate.js";

const INSTANCE_FILTER_KEYS = [
  "InstanceIds",
  "AgentVersion",
  "PingStatus",
  "PlatformTypes",
  "ActivationIds",
  "IamRole",
  "ResourceType",
  "AssociationStatus",
  "SourceIds",
  "SourceTypes",
];

function checkRange(member: string, value: number | undefined, min: number, max: number): void {
  if (value === undefined) return;
  if (value < min)
    throw constraintViolation(member, value, `Member must have value greater than or equal to ${min}`);
  if (value > max)
    throw constraintViolation(member, value, `Member must have value less than or equal to ${max}`);
}

function instanceInformation(world: World, instance: Instance) {
  const windows = instance.platform === "Windows";
  return {
    InstanceId: instance.id,
    PingStatus: instance.lifecycleState.startsWith("Terminating") ? "ConnectionLost" : "Online",
    LastPingDateTime: new Date(world.now()),
    AgentVersion: instance.ssm.agentVersion,
    IsLatestVersion: true,
    PlatformType: instance.platform,
    PlatformName: windows ? "Microsoft Windows Server 2022 Datacenter" : "Amazon Linux",
    PlatformVersion: windows ? "10.0.20348" : "2023",
    ResourceType: "EC2Instance",
    IPAddress: `10.0.${Number.parseInt(instance.id.slice(-4, -2), 16)}.${Number.parseInt(instance.id.slice(-2), 16)}`,
    ComputerName: windows
      ? `EC2AMAZ-${instance.id.slice(2, 9).toUpperCase()}`
      : `ip-10-0-0-1.${world.region}.compute.internal`,
    SourceId: instance.id,
    SourceType: "AWS::EC2::Instance",
  };
}

function commandOutput(world: World, command: Command) {
  const status = world.ssm.commandStatus(command);
  return {
    CommandId: command.commandId,
    DocumentName: command.documentName,
    DocumentVersion: "$DEFAULT",
    Comment: command.comment,
    ExpiresAfter: new Date(command.requestedAt + command.timeoutSeconds * 1000),
    Parameters: command.parameters,
    InstanceIds: command.targets.length > 0 ? [] : command.instanceIds,
    Targets: command.targets,
    RequestedDateTime: new Date(command.requestedAt),
    Status: status.status,
    StatusDetails: status.details,
    OutputS3Region: world.region,
    OutputS3BucketName: "",
    OutputS3KeyPrefix: "",
    MaxConcurrency: command.maxConcurrency,
    MaxErrors: command.maxErrors,
    TargetCount: command.invocations.length,
    CompletedCount: status.completed,
    ErrorCount: status.errors,
    DeliveryTimedOutCount: status.timedOut,
    ServiceRole: "",
    NotificationConfig: { NotificationArn: "", NotificationEvents: [], NotificationType: "" },
    CloudWatchOutputConfig: { CloudWatchLogGroupName: "", CloudWatchOutputEnabled: false },
    TimeoutSeconds: command.timeoutSeconds,
    TriggeredAlarms: [],
  };
}

/**
 * Plugin output as ListCommandInvocations shows it: what SSM Agent reported when the plugin ended (a
 * document's step), else stdout, then stderr after a marker, 2500 chars at most.
 */
function pluginOutput(result: PluginResult): string {
  if (result.pluginOutput !== undefined) return result.pluginOutput;
  const text = result.errorOutput
    ? `${result.output}\n----------ERROR-------\n${result.errorOutput}`
    : result.output;
  return text.slice(0, 2500);
}

/**
 * A skipped step: SSM Agent reports it "Skipped", a form of success (amazon-ssm-agent
 * agent/contracts/aggregator.go); the API's CommandPluginStatus has no such value
 * (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html), so Status
 * says Success and StatusDetails Skipped. Which words the service itself shows is not documented.
 */
function pluginStatus(result: PluginResult): string {
  return result.status === "Skipped" ? "Success" : result.status;
}

function commandPlugin(name: string, result: PluginResult) {
  return {
    Name: name,
    Status: pluginStatus(result),
    StatusDetails: result.statusDetails,
    ResponseCode: result.responseCode,
    ResponseStartDateTime: result.startedAt ? new Date(result.startedAt) : undefined,
    ResponseFinishDateTime: result.endedAt ? new Date(result.endedAt) : undefined,
    Output: pluginOutput(result),
    StandardOutputUrl: "",
    StandardErrorUrl: "",
    OutputS3Region: "",
    OutputS3BucketName: "",
    OutputS3KeyPrefix: "",
  };
}

function invocationOutput(invocation: Invocation, details: boolean) {
  const plugins = invocation.steps
    ? invocation.steps.map((step) => commandPlugin(step.name, step))
    : [commandPlugin(invocation.pluginName, invocation)];
  return {
    CommandId: invocation.commandId,
    InstanceId: invocation.instanceId,
    InstanceName: "",
    Comment: invocation.comment,
    DocumentName: invocation.documentName,
    DocumentVersion: "$DEFAULT",
    RequestedDateTime: new Date(invocation.requestedAt),
    Status: invocation.status,
    StatusDetails: invocation.statusDetails,
    TraceOutput: "",
    StandardOutputUrl: "",
    StandardErrorUrl: "",
    CommandPlugins: details ? plugins : [],
    ServiceRole: "",
    NotificationConfig: { NotificationArn: "", NotificationEvents: [], NotificationType: "" },
    CloudWatchOutputConfig: { CloudWatchLogGroupName: "", CloudWatchOutputEnabled: false },
  };
}

/**
 * The plugin GetCommandInvocation answers for. "If the document contains more than one step, you must
 * specify the name of the step"
 * (https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_GetCommandInvocation.html);
 * without it SSM answers InvalidPluginName with an empty message (aws/amazon-eks-ami#541,
 * boto/boto3#1811).
 */
function pluginOf(
  invocation: Invocation,
  pluginName: string | undefined,
): { name: string; result: PluginResult } {
  if (!invocation.steps) {
    if (pluginName && pluginName !== invocation.pluginName) {
      throw new AwsServiceError("InvalidPluginName", "The plugin name isn't valid.");
    }
    return { name: invocation.pluginName, result: invocation };
  }
  const step = pluginName
    ? invocation.steps.find((candidate) => candidate.name === pluginName)
    : invocation.steps.length === 1
      ? invocation.steps[0]
      : undefined;
  if (!step) throw new AwsServiceError("InvalidPluginName", pluginName ? "The plugin name isn't valid." : "");
  return { name: step.name, result: step };
}

/** DescribeDocument's DocumentDescription (also CreateDocument's). */
function documentDescription(info: DocumentInfo) {
  return {
    Hash: info.hash,
    HashType: "Sha256",
    Name: info.name,
    VersionName: info.versionName,
    Owner: info.owner,
    CreatedDate: new Date(info.createdAt),
    Status: "Active",
    DocumentVersion: info.documentVersion,
    Description: info.description,
    Parameters: info.parameters.map((parameter) => ({
      Name: parameter.name,
      Type: parameter.type,
      Description: parameter.description,
      DefaultValue: parameter.defaultValue,
    })),
    PlatformTypes: info.platformTypes,
    DocumentType: info.documentType,
    SchemaVersion: info.schemaVersion,
    LatestVersion: info.documentVersion,
    DefaultVersion: info.documentVersion,
    DocumentFormat: "JSON",
    Tags: [],
    AttachmentsInformation: [],
    Requires: [],
  };
}

function documentRequest(input: Record<string, unknown>) {
  const name = asString(input.Name);
  if (!name) throw constraintViolation("name", "null", "Member must not be null");
  return {
    name,
    versionName: asString(input.VersionName),
    documentVersion: asString(input.DocumentVersion),
  };
}

const COMMAND_FILTER_KEYS = ["InvokedAfter", "InvokedBefore", "Status", "ExecutionStage", "DocumentName"];
const STATUS_VALUES = ["Pending", "InProgress", "Success", "Cancelled", "Failed", "TimedOut", "Cancelling"];

/** Applies ListCommands / ListCommandInvocations filters to something with a requested time, status and document. */
function commandFilter(
  filters: Record<string, unknown>[],
  allowExecutionStage: boolean,
): (item: { requestedAt: number; status: string; documentName: string }) => boolean {
  const tests: ((item: { requestedAt: number; status: string; documentName: string }) => boolean)[] = [];
  for (const filter of filters) {
    const key = asString(filter.key);
    const value = asString(filter.value) ?? "";
    if (!key || !COMMAND_FILTER_KEYS.includes(key) || (key === "ExecutionStage" && !allowExecutionStage)) {
      throw new AwsServiceError("InvalidFilterKey", `The specified key ${key} isn't valid.`);
    }
    if (key === "InvokedAfter" || key === "InvokedBefore") {
      const at = Date.parse(value);
      if (Number.isNaN(at))
        throw new AwsServiceError(
          "InvalidFilterValue",
          `The filter value ${value} isn't valid for key ${key}.`,
        );
      tests.push(
        key === "InvokedAfter" ? (item) => item.requestedAt >= at : (item) => item.requestedAt <= at,
      );
    } else if (key === "Status") {
      if (!STATUS_VALUES.includes(value))
        throw new AwsServiceError(
          "InvalidFilterValue",
          `The filter value ${value} isn't valid for key Status.`,
        );
      tests.push((item) => item.status === value);
    } else if (key === "DocumentName") {
      tests.push((item) => item.documentName === value);
    } else {
      if (value !== "Executing" && value !== "Complete") {
        throw new AwsServiceError(
          "InvalidFilterValue",
          `The filter value ${value} isn't valid for key ExecutionStage.`,
        );
      }
      tests.push((item) =>
        value === "Executing"
          ? ["Pending", "InProgress", "Cancelling"].includes(item.status)
          : !["Pending", "InProgress", "Cancelling"].includes(item.status),
      );
    }
  }
  return (item) => tests.every((test) => test(item));
}

export const ssmOperations: Record<string, Operation> = {
  DescribeInstanceInformation(input, { world }) {
    const maxResults = asNumber(input.MaxResults);
    checkRange("maxResults", maxResults, 5, 50);
    const filters = asRecords(input.Filters);
    const legacy = asRecords(input.InstanceInformationFilterList);
    if (filters.length > 0 && legacy.length > 0) {
      throw new AwsServiceError(
        "InvalidInstanceInformationFilterValue",
        "You can't specify both Filters and InstanceInformationFilterList.",
      );
    }
    const conditions = [
      ...filters.map((filter) => ({
        key: asString(filter.Key) ?? "",
        values: asStrings(filter.Values) ?? [],
      })),
      ...legacy.map((filter) => ({
        key: asString(filter.key) ?? "",
        values: asStrings(filter.valueSet) ?? [],
      })),
    ];
    for (const condition of conditions) {
      if (!INSTANCE_FILTER_KEYS.includes(condition.key) && !condition.key.startsWith("tag")) {
        throw new AwsServiceError("InvalidFilterKey", `The specified key ${condition.key} isn't valid.`);
      }
      if (condition.values.length === 0) {
        throw new AwsServiceError(
          "InvalidInstanceInformationFilterValue",
          `The filter ${condition.key} needs at least one value.`,
        );
      }
    }
    const rows = world.ssm.managedInstances().map((instance) => instanceInformation(world, instance));
    const matching = rows.filter((row) =>
      conditions.every(({ key, values }) => {
        if (key === "InstanceIds") return values.includes(row.InstanceId);
        if (key === "PingStatus") return values.includes(row.PingStatus);
        if (key === "PlatformTypes") return values.includes(row.PlatformType);
        if (key === "ResourceType") return values.includes(row.ResourceType);
        if (key === "AgentVersion") return values.includes(row.AgentVersion);
        if (key === "tag:aws:autoscaling:groupName")
          return values.includes(world.instances.get(row.InstanceId)?.groupName ?? "");
        return false;
      }),
    );
    const { page, nextToken } = paginate(
      matching,
      maxResults ?? 10,
      asString(input.NextToken),
      "InvalidNextToken",
    );
    return { InstanceInformationList: page, NextToken: nextToken };
  },

  SendCommand(input, { world }) {
    const command = world.ssm.sendCommand({
      DocumentName: asString(input.DocumentName),
      DocumentVersion: asString(input.DocumentVersion),
      InstanceIds: asStrings(input.InstanceIds),
      Targets: asRecords(input.Targets).map((target) => ({
        Key: asString(target.Key),
        Values: asStrings(target.Values),
      })),
      Parameters: input.Parameters as SendCommandInput["Parameters"],
      Comment: asString(input.Comment),
      TimeoutSeconds: asNumber(input.TimeoutSeconds),
      MaxConcurrency: asString(input.MaxConcurrency),
      MaxErrors: asString(input.MaxErrors),
    });
    return { Command: commandOutput(world, command) };
  },

  ListCommandInvocations(input, { world }) {
    const maxResults = asNumber(input.MaxResults);
    checkRange("maxResults", maxResults, 1, 50);
    const commandId = asString(input.CommandId);
    if (commandId !== undefined && commandId.length !== 36) {
      throw constraintViolation(
        "commandId",
        commandId,
        "Member must have length greater than or equal to 36",
      );
    }
    const instanceId = asString(input.InstanceId);
    const filter = commandFilter(asRecords(input.Filters), false);
    const now = world.now();
    const source = commandId
      ? (world.ssm.commands.get(commandId)?.invocations ?? [])
      : instanceId
        ? world.ssm.invocationsOf(instanceId)
        : world.ssm.invocations;
    const rows = source
      .filter((invocation) => invocation.source === "api" && invocation.visibleAt <= now)
      .filter((invocation) => !commandId || invocation.commandId === commandId)
      .filter((invocation) => !instanceId || invocation.instanceId === instanceId)
      .filter((invocation) =>
        filter({
          requestedAt: invocation.requestedAt,
          status: invocation.status,
          documentName: invocation.documentName,
        }),
      )
      .sort((a, b) => b.requestedAt - a.requestedAt);
    const { page, nextToken } = paginate(
      rows,
      maxResults ?? 50,
      asString(input.NextToken),
      "InvalidNextToken",
    );
    const details = asBoolean(input.Details) ?? false;
    return {
      CommandInvocations: page.map((invocation) => invocationOutput(invocation, details)),
      NextToken: nextToken,
    };
  },

  GetCommandInvocation(input, { world }) {
    const commandId = asString(input.CommandId);
    const instanceId = asString(input.InstanceId);
    if (!commandId) throw constraintViolation("commandId", "null", "Member must not be null");
    if (!instanceId) throw constraintViolation("instanceId", "null", "Member must not be null");
    const requestedPlugin = asString(input.PluginName);
    if (requestedPlugin !== undefined && requestedPlugin.length < 4) {
      throw constraintViolation(
        "pluginName",
        requestedPlugin,
        "Member must have length greater than or equal to 4",
      );
    }
    const invocation = world.ssm
      .invocationsOf(instanceId)
      .find(
        (candidate) =>
          candidate.source === "api" &&
          candidate.commandId === commandId &&
          candidate.visibleAt <= world.now(),
      );
    if (!invocation) throw new AwsServiceError("InvocationDoesNotExist", "");
    const { name, result } = pluginOf(invocation, asString(input.PluginName));
    const started = result.startedAt;
    const ended = result.endedAt;
    return {
      CommandId: invocation.commandId,
      InstanceId: invocation.instanceId,
      Comment: invocation.comment,
      DocumentName: invocation.documentName,
      DocumentVersion: "$DEFAULT",
      PluginName: name,
      ResponseCode: result.responseCode,
      ExecutionStartDateTime: started ? new Date(started).toISOString() : "",
      ExecutionElapsedTime: started ? `PT${(((ended ?? world.now()) - started) / 1000).toFixed(3)}S` : "",
      ExecutionEndDateTime: ended ? new Date(ended).toISOString() : "",
      Status: pluginStatus(result),
      StatusDetails: result.statusDetails,
      StandardOutputContent: result.output.slice(0, 24_000),
      StandardOutputUrl: "",
      StandardErrorContent: result.errorOutput.slice(0, 8_000),
      StandardErrorUrl: "",
      CloudWatchOutputConfig: { CloudWatchLogGroupName: "", CloudWatchOutputEnabled: false },
    };
  },

  ListCommands(input, { world }) {
    const maxResults = asNumber(input.MaxResults);
    checkRange("maxResults", maxResults, 1, 50);
    const commandId = asString(input.CommandId);
    const instanceId = asString(input.InstanceId);
    const filter = commandFilter(asRecords(input.Filters), true);
    if (commandId && !world.ssm.commands.has(commandId)) throw new AwsServiceError("InvalidCommandId", "");
    const rows = [...world.ssm.commands.values()]
      .filter((command) => !commandId || command.commandId === commandId)
      .filter((command) => !instanceId || command.instanceIds.includes(instanceId))
      .filter((command) =>
        filter({
          requestedAt: command.requestedAt,
          status: world.ssm.commandStatus(command).status,
          documentName: command.documentName,
        }),
      )
      .sort((a, b) => b.requestedAt - a.requestedAt);
    const { page, nextToken } = paginate(
      rows,
      maxResults ?? 50,
      asString(input.NextToken),
      "InvalidNextToken",
    );
    return { Commands: page.map((command) => commandOutput(world, command)), NextToken: nextToken };
  },

  CreateDocument(input, { world }) {
    const content = asString(input.Content);
    if (content === undefined) throw constraintViolation("content", "null", "Member must not be null");
    const info = world.ssm.createDocument({
      name: asString(input.Name),
      content,
      documentType: asString(input.DocumentType),
      documentFormat: asString(input.DocumentFormat),
    });
    return { DocumentDescription: documentDescription(info) };
  },

  DescribeDocument(input, { world }) {
    const { name, ...version } = documentRequest(input);
    return { Document: documentDescription(world.ssm.describeDocument(name, version)) };
  },

  GetDocument(input, { world }) {
    const { name, ...version } = documentRequest(input);
    const format = asString(input.DocumentFormat) ?? "JSON";
    if (format !== "JSON") {
      throw new AwsServiceError(
        "ValidationException",
        `Format ${format}: this sandbox keeps documents in JSON only.`,
      );
    }
    const info = world.ssm.describeDocument(name, version);
    return {
      Name: info.name,
      CreatedDate: new Date(info.createdAt),
      VersionName: info.versionName,
      DocumentVersion: info.documentVersion,
      Status: "Active",
      Content: info.content,
      DocumentType: info.documentType,
      DocumentFormat: "JSON",
      Requires: [],
      AttachmentsContent: [],
    };
  },

  CancelCommand(input, { world }) {
    const commandId = asString(input.CommandId);
    if (!commandId) throw constraintViolation("commandId", "null", "Member must not be null");
    world.ssm.cancelCommand(commandId, asStrings(input.InstanceIds));
    return {};
  },
};
