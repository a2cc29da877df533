import { Annotations, CfnOutput, type CustomResource, RemovalPolicy, Stack } from "aws-cdk-lib";
import { AttributeType, BillingMode, Table } from "aws-cdk-lib/aws-dynamodb";
import { Effect, PolicyStatement, ServicePrincipal } from "aws-cdk-lib/aws-iam";
import { type ITopic, Topic } from "aws-cdk-lib/aws-sns";
import { EmailSubscription } from "aws-cdk-lib/aws-sns-subscriptions";
import { CfnDocument } from "aws-cdk-lib/aws-ssm";
import { NagSuppressions } from "cdk-nag";
import { Construct } from "constructs";
import type { StageConfig } from "../stacks/config.js";
import { agentPackagePreflight } from "../stacks/preflight.js";
import type { FunctionCode, StackResources } from "../stacks/service-resources.js";
import { type DocumentWiring, describeService, type ServiceWiring } from "../stacks/wiring.js";

export interface FoundationProps {
  config: StageConfig;
  code: FunctionCode;
  /** An existing topic for the alarms (wins over config.alarms). */
  alarmTopic?: ITopic;
}

/** What every path shares: the stage configuration and its wiring, the lease table and the alarm topic. */
export class AgentFixFoundation extends Construct {
  readonly config: StageConfig;
  /** The functions, queues, event source, rules and hooks the paths build, from `config`. */
  readonly wiring: ServiceWiring;
  readonly leaseTable: Table;
  /** The stage's own SSM documents, by the name the functions and the association send. */
  readonly documents: { install: CfnDocument };
  /** Where alarms notify; undefined when the stage configures neither an email nor a topic. */
  readonly alarmTopic?: ITopic;
  /** The check that Distributor publishes agent.package and agent.version in the Region. */
  readonly preflight: CustomResource;
  readonly code: FunctionCode;

  constructor(scope: Construct, id: string, { config, code, alarmTopic }: FoundationProps) {
    super(scope, id);
    this.config = config;
    this.code = code;
    const wiring = describeService(config);
    this.wiring = wiring;
    // Allowed but worth a look (no association created, no reserved concurrency): shown by the synth.
    for (const warning of config.warnings) Annotations.of(this).addWarning(warning);

    // Short leases keyed `agent#<instanceId>` / `deployment#<deploymentId>` (functions/core/common/lease.ts)
    // and the launch records of event completion, `launch#<instanceId>` (functions/core/launch/records.ts);
    // DynamoDB's TTL sweeps the lapsed rows.
    const leaseTable = new Table(this, "LeaseTable", {
      partitionKey: { name: "pk", type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      timeToLiveAttribute: "ttl",
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: config.leaseTable.pointInTimeRecovery },
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.leaseTable = leaseTable;
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
    this.documents = { install: agentDocument(this, wiring.documents.install) };

    // Before anything acts: Distributor publishes the package and the pin in this Region.
    this.preflight = agentPackagePreflight(this, config, code);

    if (alarmTopic) {
      this.alarmTopic = alarmTopic;
    } else if (config.alarms.topicArn) {
      this.alarmTopic = Topic.fromTopicArn(this, "AlarmTopic", config.alarms.topicArn);
    } else if (config.alarms.email) {
      const topic = new Topic(this, "AlarmTopic", {
        displayName: `agentfix ${config.stage} alarms`,
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
          conditions: { StringEquals: { "aws:SourceAccount": Stack.of(this).account } },
        }),
      );
      NagSuppressions.addResourceSuppressions(topic, [
        {
          id: "AwsSolutions-SNS2",
          reason:
            "Alarm notifications carry no secrets, and CloudWatch cannot publish to a topic encrypted with the AWS managed SNS key; a customer managed key would only add cost. Set alarms.topicArn to use an existing encrypted topic.",
        },
      ]);
      this.alarmTopic = topic;
    }

    new CfnOutput(this, "LeaseTableName", { value: leaseTable.tableName });
  }

  /** A fresh record of the resources one path creates, holding the shared lease table. */
  pathResources(): StackResources {
    return {
      config: this.config,
      wiring: this.wiring,
      leaseTable: this.leaseTable,
      queues: {},
      functions: {},
      code: this.code,
    };
  }
}

function agentDocument(scope: Construct, document: DocumentWiring): CfnDocument {
  return new CfnDocument(scope, document.id, {
    name: document.name,
    documentType: "Command",
    documentFormat: "JSON",
    content: document.content,
    // A changed script is a new document version; the default version follows it.
    updateMethod: "NewVersion",
  });
}
