/** Reading synthesized CloudFormation templates in tests. */

export const ACCOUNT = "123456789012";

type Json = Record<string, unknown>;

export interface Resource {
  id: string;
  Type: string;
  Properties: Json;
  DependsOn?: string[];
  Metadata?: Json;
}

export function resources(template: Json, type: string): Resource[] {
  return Object.entries((template.Resources ?? {}) as Record<string, Omit<Resource, "id">>)
    .filter(([, resource]) => resource.Type === type)
    .map(([id, resource]) => ({ ...resource, id, Properties: resource.Properties ?? {} }));
}

/** The one resource of `type` whose logical id starts with `prefix`. */
export function resource(template: Json, type: string, prefix: string): Resource {
  const found = resources(template, type).filter((candidate) => candidate.id.startsWith(prefix));
  if (found.length !== 1) {
    throw new Error(
      `expected one ${type} named ${prefix}*, found ${found.map((r) => r.id).join(", ") || "none"}`,
    );
  }
  return found[0] as Resource;
}

/**
 * Resolves the intrinsic functions CDK emits into plain strings, so ARNs and URLs can be compared:
 * pseudo parameters become values, references to the template's own resources become
 * `<Ref:LogicalId>` (an SQS queue's Ref becomes its URL), imports `<Import:Name>`.
 */
export function flatten(value: unknown, template: Json = {}, region = "us-east-1"): unknown {
  if (Array.isArray(value)) return value.map((item) => flatten(item, template, region));
  if (value === null || typeof value !== "object") return value;
  const object = value as Json;
  if ("Ref" in object) {
    const name = String(object.Ref);
    if (name === "AWS::Partition") return "aws";
    if (name === "AWS::AccountId") return ACCOUNT;
    if (name === "AWS::Region") return region;
    if (name === "AWS::URLSuffix") return "amazonaws.com";
    const target = (template.Resources as Record<string, Resource> | undefined)?.[name];
    if (target?.Type === "AWS::SQS::Queue") return `https://sqs.${region}.amazonaws.com/${ACCOUNT}/${name}`;
    return `<Ref:${name}>`;
  }
  if ("Fn::Join" in object) {
    const [separator, parts] = object["Fn::Join"] as [string, unknown[]];
    return parts.map((part) => String(flatten(part, template, region))).join(separator);
  }
  if ("Fn::ImportValue" in object)
    return `<Import:${String(flatten(object["Fn::ImportValue"], template, region))}>`;
  if ("Fn::GetAtt" in object) return `<GetAtt:${(object["Fn::GetAtt"] as string[]).join(".")}>`;
  if ("Fn::Sub" in object) {
    const pseudo: Record<string, string> = {
      "AWS::AccountId": ACCOUNT,
      "AWS::Region": region,
      "AWS::Partition": "aws",
    };
    return String(object["Fn::Sub"]).replace(
      /\$\{([^}]+)\}/g,
      (match, name: string) => pseudo[name] ?? match,
    );
  }
  return Object.fromEntries(
    Object.entries(object).map(([key, item]) => [key, flatten(item, template, region)]),
  );
}

export interface Statement {
  Sid?: string;
  Effect: string;
  Action: string[];
  Resource: string[];
  Condition?: Json;
}

const asArray = (value: unknown): unknown[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];

/** Every statement granted to a role: its inline policies and the AWS::IAM::Policy resources attached to it. */
export function roleStatements(template: Json, roleId: string): Statement[] {
  const role = (template.Resources as Record<string, Resource>)[roleId];
  if (!role) throw new Error(`no role ${roleId}`);
  const documents: unknown[] = asArray(role.Properties.Policies).map(
    (policy) => (policy as Json).PolicyDocument,
  );
  for (const policy of resources(template, "AWS::IAM::Policy")) {
    const roles = asArray(policy.Properties.Roles) as Json[];
    if (roles.some((ref) => ref.Ref === roleId)) documents.push(policy.Properties.PolicyDocument);
  }
  return documents.flatMap((document) =>
    asArray((flatten(document, template) as Json).Statement).map((raw) => {
      const statement = raw as Json;
      return {
        ...(statement as Omit<Statement, "Action" | "Resource">),
        Action: asArray(statement.Action).map(String),
        Resource: asArray(statement.Resource).map(String),
      };
    }),
  );
}

/** Statements of a role that allow `action`. */
export function allowing(statements: Statement[], action: string): Statement[] {
  return statements.filter((statement) => statement.Effect === "Allow" && statement.Action.includes(action));
}
