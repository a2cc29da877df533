// CloudFormation's custom resource protocol for the functions that run while a stack deploys (the
// preflight check, the hook drains): what a request looks like, and the answer PUT to its pre-signed
// URL (https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/crpg-ref-responses.html).

export interface CustomResourceEvent<P> {
  RequestType: "Create" | "Update" | "Delete";
  ResponseURL: string;
  StackId: string;
  RequestId: string;
  LogicalResourceId: string;
  PhysicalResourceId?: string;
  ResourceProperties: P;
}

/** A request that is not CloudFormation's is refused by name, before anything is attempted. */
export function customResourceEvent<P>(event: unknown, expects: string): CustomResourceEvent<P> {
  const candidate = event as Partial<CustomResourceEvent<P>> | null;
  const valid =
    typeof candidate === "object" &&
    candidate !== null &&
    ["Create", "Update", "Delete"].includes(String(candidate.RequestType)) &&
    typeof candidate.ResponseURL === "string" &&
    typeof candidate.ResourceProperties === "object" &&
    candidate.ResourceProperties !== null;
  if (!valid)
    throw new TypeError(
      `Invalid custom resource event: expected CloudFormation's request (RequestType Create, Update or Delete, ResponseURL, ResourceProperties with ${expects})`,
    );
  return candidate as CustomResourceEvent<P>;
}

/** Answers CloudFormation: the pre-signed URL takes a PUT with no content type. */
export async function respond<P>(
  event: CustomResourceEvent<P>,
  answer: { status: "SUCCESS" | "FAILED"; reason: string; physicalId: string },
): Promise<void> {
  const body = JSON.stringify({
    Status: answer.status,
    Reason: answer.reason,
    PhysicalResourceId: answer.physicalId,
    StackId: event.StackId,
    RequestId: event.RequestId,
    LogicalResourceId: event.LogicalResourceId,
    Data: {},
  });
  const answered = await fetch(event.ResponseURL, {
    method: "PUT",
    headers: { "content-type": "", "content-length": String(Buffer.byteLength(body)) },
    body,
  });
  // Unanswered, CloudFormation waits for the resource up to an hour: fail the invocation so that
  // Lambda's asynchronous retries answer again.
  if (!answered.ok) throw new Error(`CloudFormation refused the answer: HTTP ${answered.status}`);
}
