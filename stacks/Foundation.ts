import { Annotations, type CustomResource, RemovalPolicy, type Stack } from "aws-cdk-lib";
import { AttributeType, BillingMode, Table } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { CfnDocument } from "aws-cdk-lib/aws-ssm";
import { NagSuppressions } from "cdk-nag";
import type { StackContext } from "sst/constructs";
import { type StageConfig, useStageConfig } from "./config.js";
import { agentPackagePreflight } from "./preflight.js";
import type { StackResources } from "./service-resources.js";
import { type DocumentWiring, describeService, type ServiceWiring } from "./wiring.js";

export interface FoundationOutputs {
  config: StageConfig;
  /** The functions, queues, event source, rules and hooks the other stacks build, from `config`. */
  wiring: ServiceWiring;
  leaseTable: Table;
  /** The stage's own SSM documents, by the name the functions and the association send. */
  documents: { install: CfnDocument };
  /** Where alarms notify; undefined when the stage configures neither an email nor a topic. */
  alarmTopic?: ITopic;
  /** A fresh record of the resources one path's stack creates, holding the shared lease table. */
  pathResources(): StackResources;
  /** The check that Distributor publishes agent.package and agent.version in the Region. */
  preflight: CustomResource;
}

/** What every path shares: the stage configuration and its wiring, the lease table and the alarm topic. */
export function Foundation({ app, stack }: StackContext): FoundationOutputs {
  const config = useStageConfig(app.stage);
  const wiring = describeService(config);
  // Allowed but worth a look (no association created, no reserved concurrency): shown by the synth.
  for (const warning of config.warnings) Annotations.of(stack).addWarning(warning);

  // Short leases keyed `agent#<instanceId>` / `deployment#<deploymentId>` (functions/core/common/lease.ts)
  // and the launch records of event completion, `launch#<instanceId>` (functions/core/launch/records.ts);
  // DynamoDB's TTL sweeps the lapsed rows.
  const leaseTable = new Table(stack, "LeaseTable", {
    partitionKey: { name: "pk", type: AttributeType.STRING },
    billingMode: BillingMode.PAY_PER_REQUEST,
    timeToLiveAttribute: "ttl",
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: config.leaseTable.pointInTimeRecovery },
    removalPolicy: RemovalPolicy.DESTROY,
  });
  if (!config.leaseTable.pointInTimeRecovery) {
    NagSuppressions.addResourceSuppressions(leaseTable, [
      {
        id: "AwsSolutions-DDB3",
        reason:
          "The table holds leases that lapse within minutes and launch records that expire after a day; there is nothing worth restoring. Enable leaseTable.pointInTimeRecovery to turn it on.",
      },
    ]);
  }

  // The only documents the functions may send: fixed scripts, parameters restricted to a package
  // name and version numbers (functions/core/agent/documents.ts).
  const documents = {
    install: agentDocument(stack, wiring.documents.install),
  };

  // Before anything acts: Distributor publishes the package and the pin in this Region.
  const preflight = agentPackagePreflight(stack, config);

  let alarmTopic: ITopic | undefined;
  if (config.alarms.topicArn) {
    alarmTopic = Topic.fromTopicArn(stack, "AlarmTopic", config.alarms.topicArn);
  } else if (config.alarms.email) {
    const topic = new Topic(stack, "AlarmTopic", {
      displayName: `agentfix ${app.stage} alarms`,
      enforceSSL: true,
    });
    topic.addSubscription(new EmailSubscription(config.alarms.email));
    // Only CloudWatch alarms of this account publish here.
    topic.addToResourcePolicy(
      new PolicyStatement({
        sid: "CloudWatchAlarmsPublish",
        effect: Effect.ALLOW,
        principals: [new ServicePrincipal("cloudwatch.amazonaws.com")],
        actions: ["sns:Publish"],
        resources: [topic.topicArn],
        conditions: { StringEquals: { "aws:SourceAccount": stack.account } },
      }),
    );
    NagSuppressions.addResourceSuppressions(topic, [
      {
        id: "AwsSolutions-SNS2",
        reason:
          "Alarm notifications carry no secrets, and CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key; a customer managed key would only add cost. Set alarms.topicArn to use an existing encrypted topic.",
      },
    ]);
    alarmTopic = topic;
  }

  stack.addOutputs({ LeaseTableName: leaseTable.tableName });
  const pathResources = (): StackResources => ({ config, wiring, leaseTable, queues: {}, functions: {} });
  return { config, wiring, leaseTable, documents, alarmTopic, pathResources, preflight };
}

function agentDocument(stack: Stack, document: DocumentWiring): CfnDocument {
  return new CfnDocument(stack, document.id, {
    name: document.name,
    documentType: "Command",
    documentFormat: "JSON",
    content: document.content,
    // A changed script is a new document version; the default version follows it.
    updateMethod: "NewVersion",
  });
}
