import { CfnOutput, Duration, Stack } from "aws-cdk-lib";
import {
  Alarm,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  Metric,
  TextWidget,
  TreatMissingData,
} from "aws-cdk-lib/aws-cloudwatch";
import { SnsAction } from "aws-cdk-lib/aws-cloudwatch-actions";
import type { IFunction } from "aws-cdk-lib/aws-lambda";
import type { IQueue } from "aws-cdk-lib/aws-sqs";
import { Construct } from "constructs";
import { METRIC, METRICS_NAMESPACE, type MetricName, SERVICE_NAME } from "../functions/core/contract.js";
import type { AgentFixFoundation } from "./foundation.js";
import type { AgentFixFailurePath, AgentFixLaunchPath, AgentFixSweep } from "./paths.js";

const PERIOD = Duration.minutes(5);

/**
 * A metric of this stage's functions: every function sets `stage` as a default dimension
 * (functions/core/common/powertools.ts, from STAGE), so the stage's alarms and widgets read its own
 * datapoints only, never another stage's in the same account.
 */
function stageMetric(stage: string) {
  return (name: MetricName, statistic = "Sum", label?: string): Metric =>
    new Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      dimensionsMap: { service: SERVICE_NAME, stage },
      statistic,
      period: PERIOD,
      ...(label ? { label } : {}),
    });
}

export interface MonitoringProps {
  foundation: AgentFixFoundation;
  launch?: AgentFixLaunchPath;
  failure?: AgentFixFailurePath;
  sweep?: AgentFixSweep;
}

/**
 * Alarms on every dead-letter queue, every function's errors and the give-up metrics; a dashboard.
 * Only for the paths the stage deploys, and only on the stage's own signals: its queues and
 * functions, and its metrics by their `stage` dimension.
 */
export class AgentFixMonitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly dashboard: Dashboard;

  constructor(scope: Construct, id: string, { foundation, launch, failure, sweep }: MonitoringProps) {
    super(scope, id);
    const { alarmTopic, config } = foundation;
    const serviceMetric = stageMetric(config.stage);
    const alarms = this.alarms;
    const alarmWhenPositive = (id: string, metric: IMetric, description: string) => {
      const alarm = new Alarm(this, id, {
        alarmDescription: description,
        metric,
        threshold: 0,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 1,
        datapointsToAlarm: 1,
        treatMissingData: TreatMissingData.NOT_BREACHING,
      });
      if (alarmTopic) {
        alarm.addAlarmAction(new SnsAction(alarmTopic));
        alarm.addOkAction(new SnsAction(alarmTopic));
      }
      alarms.push(alarm);
      return alarm;
    };

    const deadLetterQueues: [string, IQueue, string][] = [
      ...(launch
        ? [
            [
              "LaunchDeadLetterQueueAlarm",
              launch.deadLetterQueue,
              "Launch events the launch function could not process",
            ] as [string, IQueue, string],
          ]
        : []),
      ...(failure
        ? [
            [
              "FailureDeadLetterQueueAlarm",
              failure.deadLetterQueue,
              "Deployment failures the failure function could not process",
            ] as [string, IQueue, string],
          ]
        : []),
    ];
    for (const [id, queue, what] of deadLetterQueues) {
      alarmWhenPositive(
        id,
        queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(1), statistic: "Maximum" }),
        `${what} are waiting in ${queue.queueName}: inspect them and redrive`,
      );
    }

    const functions: [string, IFunction][] = [
      ...(launch ? [["Launch", launch.launchFunction] as [string, IFunction]] : []),
      ...(failure ? [["DeploymentFailure", failure.failureFunction] as [string, IFunction]] : []),
      ...(sweep ? [["Sweep", sweep.sweepFunction] as [string, IFunction]] : []),
    ];
    for (const [name, fn] of functions) {
      alarmWhenPositive(
        `${name}ErrorsAlarm`,
        fn.metricErrors({ period: PERIOD, statistic: "Sum" }),
        `The ${name} function failed (see its log group)`,
      );
    }

    if (launch) {
      alarmWhenPositive(
        "LaunchAbandonedAlarm",
        serviceMetric(METRIC.launchAbandoned),
        "An instance got the failure result on launch: its agent could not be installed or verified",
      );
      alarmWhenPositive(
        "LaunchFailedOpenAlarm",
        serviceMetric(METRIC.launchFailedOpen),
        "An instance was let in (CONTINUE) without a verified agent, for a fault that was not its own (SSM or Distributor unreachable, never registered, a package or pin missing, throttling, our own error) or behind an open breaker. The launch function's log line names the cause (field reason, fault)",
      );
      alarmWhenPositive(
        "LaunchBreakerOpenedAlarm",
        serviceMetric(METRIC.breakerOpened),
        "A group's breaker opened: several launches in a row failed their agent on the instance itself, so the group's launches are let in until one verifies again. Look for a bad AMI or a broken package release",
      );
      alarmWhenPositive(
        "OutdatedAgentInAmiAlarm",
        serviceMetric(METRIC.outdatedAgentInAmi),
        "A group's AMI starts an outdated CodeDeploy agent at boot: CodeDeploy's launch deployment can run on it before the upgrade. The launch report names the AMI; build it without the agent, or with the agent stopped and disabled",
      );
    }
    if (failure) {
      alarmWhenPositive(
        "RedeployGaveUpAlarm",
        serviceMetric(METRIC.redeployGaveUp),
        "A failed deployment was not redeployed: the agent was not to blame or the attempt cap was reached",
      );
    }

    // The name SST gave it (`<stage>-<app>-dashboard`), kept so a deployed dashboard is not replaced.
    const dashboardName = `${config.stage}-${SERVICE_NAME}-dashboard`;
    const dashboard = new Dashboard(this, "Dashboard", {
      dashboardName,
      defaultInterval: Duration.days(1),
    });
    const graph = (title: string, left: IMetric[], right: IMetric[] = []) =>
      new GraphWidget({ title, left, right, width: 12, height: 6 });
    dashboard.addWidgets(
      new TextWidget({
        markdown: `# agentfix ${config.stage}\nAgent installs on launch, agent repairs after failed deployments, and the queues between them.`,
        width: 24,
        height: 2,
      }),
    );
    // Installs happen on both paths (the failure path upgrades agents too).
    dashboard.addWidgets(
      graph("Agent installs", [
        serviceMetric(METRIC.installsSent),
        serviceMetric(METRIC.installsSucceeded),
        serviceMetric(METRIC.installsFailed),
        serviceMetric(METRIC.verified),
        serviceMetric(METRIC.verificationsFailed),
      ]),
    );
    if (launch)
      dashboard.addWidgets(
        graph("Launch: time to complete (seconds)", [
          serviceMetric(METRIC.timeToComplete, "Average", "average"),
          serviceMetric(METRIC.timeToComplete, "p90", "p90"),
          serviceMetric(METRIC.timeToComplete, "Maximum", "maximum"),
        ]),
        graph("Launch outcomes", [
          serviceMetric(METRIC.launchContinued),
          serviceMetric(METRIC.launchAbandoned),
          serviceMetric(METRIC.launchAlreadyCompleted),
          serviceMetric(METRIC.launchSkipped),
          serviceMetric(METRIC.launchPending),
          serviceMetric(METRIC.launchFailedOpen),
          serviceMetric(METRIC.heartbeats),
          serviceMetric(METRIC.outdatedAgentInAmi),
        ]),
      );
    if (failure)
      dashboard.addWidgets(
        graph("Redeploys", [
          serviceMetric(METRIC.redeployCreated),
          serviceMetric(METRIC.redeploySkipped),
          serviceMetric(METRIC.redeployGaveUp),
          serviceMetric(METRIC.redeployDryRun),
          serviceMetric(METRIC.agentUpgraded),
        ]),
      );
    if (launch && sweep)
      dashboard.addWidgets(
        graph(
          "Launch queue",
          [
            launch.queue.metricApproximateAgeOfOldestMessage({
              period: Duration.minutes(1),
              statistic: "Maximum",
            }),
          ],
          [
            launch.queue.metricApproximateNumberOfMessagesVisible({
              period: Duration.minutes(1),
              statistic: "Maximum",
            }),
            launch.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
              period: Duration.minutes(1),
              statistic: "Maximum",
              label: "dead letters",
            }),
          ],
        ),
        graph("Sweep", [serviceMetric(METRIC.sweepStale), serviceMetric(METRIC.sweepEnqueued)]),
      );
    dashboard.addWidgets(
      graph(
        "Function errors",
        functions.map(([name, fn]) => fn.metricErrors({ period: PERIOD, statistic: "Sum", label: name })),
      ),
      graph(
        "Function duration (p90, ms)",
        functions.map(([name, fn]) => fn.metricDuration({ period: PERIOD, statistic: "p90", label: name })),
      ),
    );

    this.dashboard = dashboard;
    const region = Stack.of(this).region;
    new CfnOutput(this, "DashboardUrl", {
      value: `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#dashboards:name=${dashboardName}`,
    });
  }
}
